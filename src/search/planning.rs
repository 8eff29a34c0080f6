//! A time-budgeted run's measurements and re-plans (docs/SEARCH.md, "Time budget"): it times the first training
//! steps and every iteration and asks `budget::plan` what fits. The plans it returns are the run's record of its
//! own; the settings asked for stay as they are.

use super::Phase;
use super::budget::{self, Plan, PlanInput};
use super::final_training::Rescheduling;
use super::iteration::fresh_network;
use super::record::IterationRecord;
use super::settings::SearchConfig;
use crate::data::{Batches, Split};
use crate::genotype::Genotype;
use crate::train;
use std::time::Instant;
use tch::Device;

/// Training steps timed by the probe, after as many untimed ones.
const PROBE_STEPS: usize = 4;

/// What the planner has measured so far.
#[derive(Clone, Copy, Debug)]
struct Measured {
    seconds_per_image: f64,
    seconds_per_pass: f64,
    growth: f64,
    next_cost: f64,
}

/// Wall time of a run across the processes that worked on it.
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    before: f64,
    start: Instant,
}

impl RunClock {
    /// A clock that starts now, after `before` seconds of earlier processes.
    pub fn start(before: f64) -> Self {
        RunClock {
            before,
            start: Instant::now(),
        }
    }

    /// Wall seconds spent by the run so far.
    pub fn spent(&self) -> f64 {
        self.before + self.start.elapsed().as_secs_f64()
    }
}

/// The planner of a run with a time budget.
pub struct Planner {
    budget_seconds: f64,
    clock: RunClock,
    measured: Option<Measured>,
}

/// The activation bytes of `genotype`'s training step, the planner's measure of a network's cost per image.
fn activations(genotype: &Genotype, config: &SearchConfig) -> f64 {
    config.memory_of(genotype).activations as f64
}

impl Planner {
    /// The planner of `config`'s budget, if it has one, timed by `clock`; what earlier processes measured is read
    /// back from `history` and `plans`.
    pub fn new(config: &SearchConfig, clock: RunClock, history: &[IterationRecord], plans: &[Plan]) -> Option<Planner> {
        let budget_seconds = config.time_budget?.seconds;
        let last_plan = plans.last();
        let seconds_per_image = history
            .iter()
            .rev()
            .find_map(|r| r.train_images_per_second)
            .map(|ips| 1.0 / ips)
            .or(last_plan.map(|p| p.seconds_per_image));
        let measured = match (seconds_per_image, last_plan, history.last()) {
            (Some(seconds_per_image), Some(plan), Some(last)) => Some(Measured {
                seconds_per_image,
                seconds_per_pass: last.scoring_seconds,
                growth: plan.growth,
                next_cost: plan.next_cost,
            }),
            _ => None,
        };
        Some(Planner {
            budget_seconds,
            clock,
            measured,
        })
    }

    /// The budget in seconds.
    pub fn budget(&self) -> f64 {
        self.budget_seconds
    }

    /// Whether nothing has been measured yet, so that `probe` must run before the first plan.
    pub fn needs_probe(&self) -> bool {
        self.measured.is_none()
    }

    /// Times a few training steps of `genotype`'s network on `split` (a throwaway copy: the run's streams are
    /// untouched) and keeps the seconds per image.
    pub fn probe(
        &mut self,
        genotype: &Genotype,
        config: &SearchConfig,
        split: &Split,
        device: Device,
    ) -> anyhow::Result<()> {
        let mut net = fresh_network(genotype, config, device, Phase::Search(1));
        let mut optimizer = train::optimizer(&net, &config.train);
        let batch = config.train.batch_size;
        let batches: Vec<_> = Batches::in_order(split, batch, device).take(PROBE_STEPS).collect();
        if batches.len() < PROBE_STEPS {
            anyhow::bail!(
                "the search data hold {} images, too few to time {PROBE_STEPS} batches of {batch} for the time budget",
                split.len()
            );
        }
        // One untimed round first: the first steps pay for allocation and kernel selection.
        let mut start = Instant::now();
        for (step, (images, labels)) in batches.iter().cycle().take(2 * PROBE_STEPS).enumerate() {
            if step == PROBE_STEPS {
                start = Instant::now();
            }
            let _ = train::step(
                &mut net,
                &mut optimizer,
                images,
                labels,
                &config.train,
                config.train.drop_path,
            )?;
        }
        let seconds_per_image = start.elapsed().as_secs_f64() / (PROBE_STEPS * batch) as f64;
        // Until a pass is timed, assume one costs as much as training 2,000 images.
        self.measured = Some(Measured {
            seconds_per_image,
            seconds_per_pass: 2000.0 * seconds_per_image,
            growth: 1.0,
            next_cost: 1.0,
        });
        Ok(())
    }

    /// The first plan, from the probe alone (a run without the pass before training makes it before iteration 1).
    pub fn at_start(&mut self, config: &SearchConfig, plans: &[Plan], sizes: SplitSizes) -> Plan {
        let measured = self.measured.expect("probed before the first plan");
        self.replan(measured, "start", config, plans, sizes, 0, None)
    }

    /// The plan after `record`, whose network (`trained`, before the record's mutation pass) grew into `grown`.
    pub fn after_iteration(
        &mut self,
        record: &IterationRecord,
        trained: &Genotype,
        grown: &Genotype,
        config: &SearchConfig,
        plans: &[Plan],
        sizes: SplitSizes,
    ) -> Plan {
        let ratio = activations(grown, config) / activations(trained, config).max(1.0);
        let previous = self.measured.expect("probed before the first iteration");
        let seconds_per_image = match record.train_images_per_second {
            Some(ips) => 1.0 / ips,
            // Iteration 0 trains nothing: the probe's figure stands.
            None => previous.seconds_per_image,
        };
        let measured = Measured {
            seconds_per_image,
            seconds_per_pass: record.scoring_seconds,
            growth: ratio.max(1.0),
            next_cost: ratio,
        };
        let made = match record.iteration {
            0 => "start".to_string(),
            n => format!("after iteration {n}"),
        };
        let done = record.iteration;
        self.replan(measured, &made, config, plans, sizes, done, None)
    }

    /// The last plan, before the final training: the remaining time goes to final epochs. `cost_scale` is the
    /// final network's cost against the searched one's (below 1 when `--final-ops` cut it down; the memory
    /// estimate is the cost model, as for growth).
    pub fn before_final(&mut self, config: &SearchConfig, plans: &[Plan], sizes: SplitSizes, cost_scale: f64) -> Plan {
        let mut measured = self.measured.expect("probed or measured before the final training");
        measured.next_cost *= cost_scale;
        let done = config.iterations;
        self.replan(
            measured,
            "before the final training",
            config,
            plans,
            sizes,
            done,
            Some(done),
        )
    }

    /// The final training's own re-plan, made after its first epoch (which timed the final network) and after any
    /// later epoch that left room for more, when it changed the epochs to `epochs`.
    pub fn during_final(&self, plans: &[Plan], epochs: usize, change: Rescheduling, spent_before: f64) -> Plan {
        let last = plans.last().expect("a plan precedes the final training");
        let samples = last.final_samples.max(1) as f64;
        let spent = spent_before + change.at_seconds;
        Plan {
            made: "during the final training".to_string(),
            spent_seconds: spent,
            final_epochs: epochs,
            predicted_seconds: spent + epochs.saturating_sub(change.after_epochs) as f64 * change.epoch_seconds,
            seconds_per_image: change.epoch_seconds / samples,
            ..last.clone()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn replan(
        &mut self,
        measured: Measured,
        made: &str,
        config: &SearchConfig,
        plans: &[Plan],
        sizes: SplitSizes,
        done: usize,
        max_iterations: Option<usize>,
    ) -> Plan {
        self.measured = Some(measured);
        let limits = config.time_budget.expect("a planner has a budget");
        let input = PlanInput {
            budget_seconds: self.budget_seconds,
            spent_seconds: self.clock.spent(),
            seconds_per_image: measured.seconds_per_image,
            seconds_per_pass: measured.seconds_per_pass,
            growth: measured.growth,
            next_cost: measured.next_cost,
            search_images_available: sizes.search_available,
            validation_images: sizes.validation,
            final_images_available: sizes.final_available,
            iterations_done: done,
            search_images: plans.first().map(|p| p.search_samples),
            max_iterations: max_iterations.unwrap_or(limits.max_iterations),
            max_epochs_per_iteration: limits.max_epochs_per_iteration,
            batch_size: config.final_train.batch_size,
        };
        budget::plan(&input, made)
    }
}

/// The sizes of the splits a plan divides.
#[derive(Clone, Copy, Debug)]
pub struct SplitSizes {
    /// Training images the search may use (the training split less validation).
    pub search_available: usize,
    /// Validation images.
    pub validation: usize,
    /// The whole training split, for the final training.
    pub final_available: usize,
}
