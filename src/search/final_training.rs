//! The final training (docs/ALGORITHM.md §9): the found genotype trained from scratch, checkpointed after
//! every epoch so that an interrupted run continues where it stopped. `spidernet train` runs the same code, so that
//! a genotype retrained with a search's seed and settings gets the search's final weights.

use super::iteration::fresh_network;
use super::record::{FINAL_CHECKPOINT_FORMAT, FinalCheckpoint, GateRecord, Summary};
use super::settings::SearchConfig;
use super::{Phase, RunDir, SearchObserver, budget, inherit};
use crate::artifacts::Artifacts;
use crate::data::{Dataset, Split};
use crate::genotype::Genotype;
use crate::nn::optim::Sgd;
use crate::seed::{self, Stream};
use crate::supernet::Supernet;
use crate::system::memory_probe::MemoryWindow;
use crate::train::{self, Checkpointing, EpochReport, Evaluation, Flow, OpCut, Resumed, TrainConfig};
use anyhow::Context;
use std::time::Instant;
use tch::{Device, Tensor};

/// The prefix of the network's tensors in a final-training tensors file.
const WEIGHTS_PREFIX: &str = "weights.";
/// The prefix of the optimiser's momentum buffers there.
const MOMENTUM_PREFIX: &str = "momentum.";

/// When a time-budgeted final training must end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deadline {
    /// Seconds of final training the budget leaves.
    seconds: f64,
    /// How far past them an epoch may end.
    slack: f64,
}

impl Deadline {
    /// The deadline of a run with `budget` seconds that spent `spent` before its final training; an epoch may end
    /// up to 5 % of the budget late.
    pub fn after(budget: f64, spent: f64) -> Self {
        Deadline {
            seconds: budget - spent,
            slack: 0.05 * budget,
        }
    }

    /// The epochs in all that fit, `done` of them taking `final_seconds` and the last `last_epoch_seconds`: at
    /// least one more than `done` would overrun, and never fewer than `done` or more than the planner's cap.
    pub fn epochs_that_fit(&self, final_seconds: f64, last_epoch_seconds: f64, done: usize) -> usize {
        let more = ((self.seconds - final_seconds) / last_epoch_seconds.max(1e-9))
            .floor()
            .max(0.0) as usize;
        (done + more).min(budget::MAX_FINAL_EPOCHS).max(done.max(1))
    }

    /// Whether another epoch as long as the last would end too late, after `final_seconds` of final training.
    pub fn next_epoch_overruns(&self, final_seconds: f64, last_epoch_seconds: f64) -> bool {
        final_seconds + last_epoch_seconds > self.seconds + self.slack
    }
}

/// Where and how a final training runs.
#[derive(Clone, Copy)]
pub struct FinalRun<'a> {
    /// The settings it follows (`final_train`, `final_samples`, the pruner, the seed): a search's, planned.
    pub config: &'a SearchConfig,
    /// The data: the training split to train on, the test split to evaluate.
    pub data: &'a Dataset,
    /// Where the network runs.
    pub device: Device,
    /// When the training must stop, if the run has a time budget.
    pub deadline: Option<Deadline>,
    /// Tensors to start from instead of fresh ones where names and shapes match (`--inherit-weights`).
    pub inherited: Option<&'a [(String, Tensor)]>,
    /// Whether the test split is evaluated after every epoch, for a learning curve (it trains the same weights).
    pub evaluate_each_epoch: bool,
}

/// How a final training's epochs were scheduled in the end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The epochs the schedule ended with.
    pub epochs: usize,
    /// The last change to them that a time budget made in this process; for a training continued from an earlier
    /// process, its first epoch stands in. None without epochs.
    pub rescheduled: Option<Rescheduling>,
}

/// A final training's re-plan of its epochs, and the measurement it rested on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rescheduling {
    /// Epochs finished when it was made.
    pub after_epochs: usize,
    /// Seconds of final training by then.
    pub at_seconds: f64,
    /// The seconds of the last finished epoch, which the remaining ones were taken to last.
    pub epoch_seconds: f64,
}

/// Runs (or continues) the final training of `run` in the run folder `dir`, saves the trained network there and
/// adds its figures to `summary`; returns how its epochs were scheduled.
pub(super) fn train_final(
    summary: &mut Summary,
    genotype: &Genotype,
    dir: &RunDir,
    run: &FinalRun,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<Schedule> {
    let peak_window = MemoryWindow::start(run.device);
    // A follower neither reads the folder's checkpoint (rank 0's start is shared) nor writes one.
    let outcome = final_training(genotype, run, dir.writes().then_some(dir), observer)?;
    crate::distributed::group().ensure_identical("final weights", || Ok(outcome.net.fingerprint()))?;
    summary.final_training_samples = outcome.samples;
    summary.final_training_seconds = outcome.seconds;
    summary.final_epochs = outcome.reports.len();
    let batch_size = run.config.final_train.batch_size;
    summary.final_train_images_per_second = train::images_per_second(&outcome.reports, outcome.samples, batch_size);
    let peak = peak_window.finish();
    // On CUDA the process's RSS says little about training memory; the device allocator's peak does.
    summary.final_training_peak_rss_bytes = peak.rss.filter(|_| run.device == Device::Cpu).map(|rss| rss.peak);
    summary.final_training_peak_device_bytes = peak.cuda.map(|cuda| cuda.allocated);
    summary.test_accuracy = Some(outcome.evaluation.accuracy);
    summary.test_loss = Some(outcome.evaluation.loss);
    summary.live_ops = outcome.net.genotype().live_op_count();
    summary.parameters = outcome.net.parameter_count();
    if dir.writes() {
        Artifacts::new(dir.root()).save(&outcome.net, run.data)?;
    }
    Ok(Schedule {
        epochs: outcome.scheduled_epochs,
        rescheduled: outcome.rescheduled.or_else(|| {
            outcome.reports.first().map(|first| Rescheduling {
                after_epochs: 1,
                at_seconds: first.seconds,
                epoch_seconds: first.seconds,
            })
        }),
    })
}

/// What a final training produced.
pub struct FinalOutcome {
    /// The trained network.
    pub net: Supernet,
    /// Its evaluation on the test split.
    pub evaluation: Evaluation,
    /// Training images each epoch trained on.
    pub samples: usize,
    /// Wall time of the training, across interruptions.
    pub seconds: f64,
    /// One report per epoch.
    pub reports: Vec<EpochReport>,
    /// The epochs its schedule ended with (a time budget may have changed them after the first).
    pub scheduled_epochs: usize,
    /// The last change a time budget made to them in this process.
    pub rescheduled: Option<Rescheduling>,
}

/// Trains `genotype` from scratch on the training split (or its seeded `final_samples` subset; each epoch on
/// `final_train.epoch_images` of its images, when set) with augmentation, then evaluates on the test split. With a
/// run folder to checkpoint in, every epoch is saved there, and a checkpoint found there is continued from.
pub fn final_training(
    genotype: &Genotype,
    run: &FinalRun,
    checkpoints: Option<&RunDir>,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<FinalOutcome> {
    let (config, data) = (run.config, run.data);
    let start = Instant::now();
    crate::system::allocator::release_freed_blocks();
    let start_here = starting_point(genotype, run, checkpoints)?;
    let (mut net, resumed, seconds_before, epochs) = shared_start(start_here, run)?;
    // A budgeted run may have rescheduled its epochs after the first; the checkpoint holds the count in force.
    let train_config = TrainConfig {
        epochs,
        augment: Some(
            config
                .final_train
                .augment
                .clone()
                .unwrap_or_else(|| config.final_train.augmentation_for(data)),
        ),
        ..config.final_train.clone()
    };
    let mut schedule = Scheduler {
        deadline: run.deadline,
        scheduled: epochs,
        rescheduled: None,
        cut: train_config.cut_ops.filter(|cut| cut.changes(net.genotype())),
    };
    observer.phase(Phase::Final, train_config.epochs);
    let train_seed = seed::derive(config.seed, Stream::BatchOrder, Phase::Final.seed_index());
    let subset = final_subset(&data.train, config.final_samples, config.seed);
    let train_split = subset.as_ref().unwrap_or(&data.train);
    let mut save = |net: &Supernet, optimizer: &Sgd, reports: &[EpochReport]| {
        let seconds = seconds_before + start.elapsed().as_secs_f64();
        let flow = schedule.after_epoch(seconds, reports);
        if let Some(dir) = checkpoints {
            save_epoch(dir, config, schedule.scheduled, net, optimizer, reports, seconds)?;
        }
        Ok(flow)
    };
    let checkpointing = Checkpointing {
        resumed,
        save: Some(&mut save),
    };
    let eval = run.evaluate_each_epoch.then_some(&data.test);
    let reports = train::train(
        &mut net,
        train_split,
        eval,
        &train_config,
        train_seed,
        observer,
        checkpointing,
    )
    .with_context(|| format!("{}", Phase::Final))?;
    let evaluation = train::evaluate(&net, &data.test, train_config.eval_batch_size)?;
    Ok(FinalOutcome {
        net,
        evaluation,
        samples: train_config.images_per_epoch(train_split.len()),
        seconds: seconds_before + start.elapsed().as_secs_f64(),
        reports,
        scheduled_epochs: schedule.scheduled,
        rescheduled: schedule.rescheduled,
    })
}

/// The network a final training starts from, the state to continue, the seconds already spent and the epochs
/// scheduled: a checkpoint's, when `checkpoints` holds one, else fresh (or inherited) weights.
fn starting_point(genotype: &Genotype, run: &FinalRun, checkpoints: Option<&RunDir>) -> anyhow::Result<Start> {
    let saved = match checkpoints {
        Some(dir) => dir.final_checkpoint(run.config.seed)?.map(|saved| (dir, saved)),
        None => None,
    };
    if let Some((dir, (state, tensors))) = saved {
        return restore(dir, run.config, run.device, state, tensors);
    }
    let mut net = fresh_network(genotype, run.config, run.device, Phase::Final);
    if let Some(tensors) = run.inherited {
        inherit::inherit(&mut net, tensors);
    }
    Ok((net, None, 0.0, run.config.final_train.epochs))
}

/// Where a final training starts: the network, the state to continue, the seconds already spent, the epochs.
type Start = (Supernet, Option<Resumed>, f64, usize);

/// What rank 0 continues from, for the other ranks, which have no checkpoint folder: the tensors follow by broadcast
/// (the weights when the training starts, the momentum buffers here).
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedStart {
    genotype: Genotype,
    gates: Vec<GateRecord>,
    reports: Vec<EpochReport>,
    seconds: f64,
    epochs: usize,
}

/// In a distributed run, every rank continues from rank 0's start (rank 0 alone reads the checkpoint folder); a
/// single process keeps its own.
fn shared_start(start: Start, run: &FinalRun) -> anyhow::Result<Start> {
    let group = crate::distributed::group();
    if group.world() == 1 {
        return Ok(start);
    }
    let (net, resumed, seconds, epochs) = start;
    let mine = resumed.as_ref().map(|resumed| SharedStart {
        genotype: net.genotype().clone(),
        gates: net
            .gate_histories()
            .into_iter()
            .map(|(op, history)| GateRecord { op, history })
            .collect(),
        reports: resumed.reports.clone(),
        seconds,
        epochs,
    });
    let Some(shared) = group.decide(mine)? else {
        return Ok((net, None, seconds, epochs));
    };
    let net = match resumed {
        // Rank 0 keeps what it read.
        Some(_) => net,
        None => {
            let mut net = fresh_network(&shared.genotype, run.config, run.device, Phase::Final);
            let gates = shared.gates.into_iter().map(|g| (g.op, g.history)).collect();
            net.restore_gate_histories(gates)
                .context("rank 0's gate histories do not fit its genotype")?;
            net
        }
    };
    let momentum = group
        .share_named_tensors(resumed.map(|resumed| resumed.momentum), run.device)?
        .context("rank 0 continues a training but shared no momentum buffers")?;
    let resumed = Resumed {
        reports: shared.reports,
        momentum,
    };
    Ok((net, Some(resumed), shared.seconds, shared.epochs))
}

/// A final training's epochs under a time budget's deadline, revised after every epoch.
struct Scheduler {
    deadline: Option<Deadline>,
    scheduled: usize,
    rescheduled: Option<Rescheduling>,
    /// The cut that makes the network smaller during the training (`TrainConfig::cut_ops`), if one does.
    cut: Option<OpCut>,
}

impl Scheduler {
    /// Whether the training goes on after the epochs of `reports`, `seconds` into the final training.
    fn after_epoch(&mut self, seconds: f64, reports: &[EpochReport]) -> Flow {
        let Some(deadline) = self.deadline else {
            return Flow::Continue;
        };
        let done = reports.len();
        let last = reports.last().map_or(0.0, |r| r.seconds);
        // The first epoch of the network that trains to the end is the first measurement of it: the epochs follow
        // it either way. Before a cut, epochs time a bigger network than the rest will train: only a budget
        // already spent stops the training there. The last scheduled epoch plans all the same, or the training
        // would end there.
        let first_measured = self
            .cut
            .filter(|cut| cut.made_within(self.scheduled))
            .map_or(1, |cut| (cut.epoch() + 1).min(self.scheduled));
        if done < first_measured {
            return if deadline.next_epoch_overruns(seconds, 0.0) {
                Flow::Stop
            } else {
                Flow::Continue
            };
        }
        let fit = deadline.epochs_that_fit(seconds, last, done);
        // Later epochs only add epochs, when deadheading has made them faster; one that would end too late is not
        // started.
        if (done == first_measured && fit != self.scheduled) || fit > self.scheduled {
            self.scheduled = fit;
            self.rescheduled = Some(Rescheduling {
                after_epochs: reports.len(),
                at_seconds: seconds,
                epoch_seconds: last,
            });
            Flow::Reschedule(fit)
        } else if deadline.next_epoch_overruns(seconds, last) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

/// The seeded subset of `samples` images of `train` that a final training uses; None when it uses them all.
pub fn final_subset(train: &Split, samples: Option<usize>, seed: u64) -> Option<Split> {
    let k = samples.filter(|&k| k < train.len())?;
    let mut rng = seed::rng(seed, Stream::DataSplit, seed::data_split::FINAL_SUBSET);
    Some(train.hold_out(k as f64 / train.len() as f64, &mut rng).1)
}

/// Writes the state after a finished epoch into `dir`'s checkpoint.
fn save_epoch(
    dir: &RunDir,
    config: &SearchConfig,
    epochs: usize,
    net: &Supernet,
    optimizer: &Sgd,
    reports: &[EpochReport],
    seconds: f64,
) -> anyhow::Result<()> {
    let mut tensors: Vec<(String, Tensor)> = net
        .named_tensors()
        .into_iter()
        .map(|(name, tensor)| (format!("{WEIGHTS_PREFIX}{name}"), tensor))
        .collect();
    tensors.extend(
        optimizer
            .momentum_buffers(net.named_tensors())
            .into_iter()
            .map(|(name, buffer)| (format!("{MOMENTUM_PREFIX}{name}"), buffer)),
    );
    let gates = net
        .gate_histories()
        .into_iter()
        .map(|(op, history)| GateRecord { op, history })
        .collect();
    let mut state = FinalCheckpoint {
        format: FINAL_CHECKPOINT_FORMAT,
        seed: config.seed,
        epochs,
        genotype: net.genotype().clone(),
        gates,
        reports: reports.to_vec(),
        seconds,
        tensors: String::new(),
    };
    dir.commit_final(&mut state, &tensors)
}

/// The network, the optimiser state, the seconds spent and the epochs scheduled, as a final-training checkpoint
/// left them.
fn restore(
    dir: &RunDir,
    config: &SearchConfig,
    device: Device,
    state: FinalCheckpoint,
    tensors: Vec<(String, Tensor)>,
) -> anyhow::Result<(Supernet, Option<Resumed>, f64, usize)> {
    let path = dir.final_checkpoint_path();
    if state.epochs_done() > state.epochs {
        anyhow::bail!(
            "{} records {} finished epochs of {}",
            path.display(),
            state.epochs_done(),
            state.epochs
        );
    }
    let (mut weights, mut momentum) = (Vec::new(), Vec::new());
    for (name, tensor) in tensors {
        if let Some(rest) = name.strip_prefix(WEIGHTS_PREFIX) {
            weights.push((rest.to_string(), tensor));
        } else if let Some(rest) = name.strip_prefix(MOMENTUM_PREFIX) {
            momentum.push((rest.to_string(), tensor.to_device(device)));
        } else {
            anyhow::bail!("{}: tensor {name} is neither weights nor momentum", state.tensors);
        }
    }
    let mut net = fresh_network(&state.genotype, config, device, Phase::Final);
    net.load_named_tensors(weights)
        .with_context(|| format!("{} does not fit the genotype of {}", state.tensors, path.display()))?;
    let gates = state.gates.into_iter().map(|g| (g.op, g.history)).collect();
    net.restore_gate_histories(gates)
        .with_context(|| format!("{}: the gate histories do not fit its genotype", path.display()))?;
    let resumed = Resumed {
        reports: state.reports,
        momentum,
    };
    Ok((net, Some(resumed), state.seconds, state.epochs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(seconds: &[f64]) -> Vec<EpochReport> {
        seconds
            .iter()
            .enumerate()
            .map(|(i, &seconds)| EpochReport {
                epoch: i + 1,
                lr: 0.1,
                train_loss: 1.0,
                train_accuracy: 0.5,
                eval: None,
                live_ops: 10,
                parameters: 100,
                deadhead: Default::default(),
                seconds,
                eval_seconds: 0.0,
            })
            .collect()
    }

    fn scheduler(cut_after: Option<f64>) -> Scheduler {
        Scheduler {
            deadline: Some(Deadline::after(100.0, 0.0)),
            scheduled: 2,
            rescheduled: None,
            cut: cut_after.map(|after_epoch| OpCut { after_epoch, keep: 2 }),
        }
    }

    #[test]
    fn epochs_before_a_cut_do_not_plan_the_rest_and_the_first_after_it_does() {
        // 60 s for the uncut epoch 1: on its own it says no second epoch fits in the 100 s.
        assert_eq!(scheduler(None).after_epoch(60.0, &epochs(&[60.0])), Flow::Reschedule(1));
        // A cut at the end of epoch 1 or part-way through it: epoch 1 times a network the rest will not train.
        for after in [1.0, 0.25] {
            let mut cut = scheduler(Some(after));
            assert_eq!(cut.after_epoch(60.0, &epochs(&[60.0])), Flow::Continue);
            assert_eq!(cut.rescheduled, None);
            // The cut network's epoch took 15 s: the 25 s left hold one more.
            assert_eq!(cut.after_epoch(75.0, &epochs(&[60.0, 15.0])), Flow::Reschedule(3));
            assert_eq!(cut.rescheduled.unwrap().after_epochs, 2);
        }
        // A cut part-way through epoch 2 leaves epoch 2 unmeasured as well...
        let mut second = Scheduler {
            scheduled: 4,
            ..scheduler(Some(1.5))
        };
        assert_eq!(second.after_epoch(30.0, &epochs(&[30.0])), Flow::Continue);
        assert_eq!(second.after_epoch(55.0, &epochs(&[30.0, 25.0])), Flow::Continue);
        assert_eq!(
            second.after_epoch(65.0, &epochs(&[30.0, 25.0, 10.0])),
            Flow::Reschedule(6)
        );
        // ...but not when it is the last scheduled one: that one plans, or the training would end there.
        let mut in_the_last = scheduler(Some(1.5));
        assert_eq!(in_the_last.after_epoch(30.0, &epochs(&[30.0])), Flow::Continue);
        assert_eq!(
            in_the_last.after_epoch(55.0, &epochs(&[30.0, 25.0])),
            Flow::Reschedule(3)
        );
        // A budget spent before the cut stops the training all the same.
        assert_eq!(scheduler(Some(1.0)).after_epoch(106.0, &epochs(&[106.0])), Flow::Stop);
        // A cut due at or after the end of the last scheduled epoch is never made: the first epoch plans, as
        // without one.
        let mut late = scheduler(Some(2.0));
        assert_eq!(late.after_epoch(60.0, &epochs(&[60.0])), Flow::Reschedule(1));
    }
}
