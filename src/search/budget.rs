//! The time-budget planner (docs/SEARCH.md, "Time budget"): from measured throughput, how many images the search
//! trains on, how many iterations of how many epochs it runs, and how many final epochs fit, so that search and
//! final training together end within the budget. Pure arithmetic: the search measures, this module decides.

use serde::{Deserialize, Serialize};

/// The largest share of the budget the search phases may take; the final training gets the rest.
pub const SEARCH_SHARE: f64 = 0.3;
/// The fewest images a search phase trains on before the planner gives up iterations or epochs instead.
pub const MIN_SEARCH_IMAGES: usize = 1000;
/// The most final epochs a plan asks for, however large the budget.
pub const MAX_FINAL_EPOCHS: usize = 300;
/// Forward-only evaluation costs about this share of a training step per image.
pub const EVAL_COST: f64 = 0.35;
/// The most of the final training's time that whole epochs on all images may leave idle; past it, the plan runs one
/// epoch more on a subset sized to fill the time.
pub const MAX_IDLE_SHARE: f64 = 0.1;

/// A run's time budget and the limits its plans stay within.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeBudget {
    /// Wall seconds for search and final training together.
    pub seconds: f64,
    /// Iterations a plan may ask for at most (the profile's or `--iterations`).
    pub max_iterations: usize,
    /// Epochs per iteration a plan may ask for at most (`--epochs-per-iteration`).
    pub max_epochs_per_iteration: usize,
}

/// What the planner knows when it plans.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanInput {
    /// The whole budget, in seconds.
    pub budget_seconds: f64,
    /// Seconds spent so far (probe, search and final training, across processes).
    pub spent_seconds: f64,
    /// Training seconds per image of the last measured network (forward, backward, step).
    pub seconds_per_image: f64,
    /// Seconds of one mutation pass over every cell.
    pub seconds_per_pass: f64,
    /// How much costlier each further iteration's network is than the one before (≥ 1; activations after a pass
    /// over those before it).
    pub growth: f64,
    /// How much costlier than the measured network the next one to train is (the pass since the measurement
    /// may have grown it).
    pub next_cost: f64,
    /// Images the search phases may train on (the training split less validation).
    pub search_images_available: usize,
    /// Images of the validation split, evaluated after every search epoch.
    pub validation_images: usize,
    /// Images of the training split, all of which the final training uses when it can.
    pub final_images_available: usize,
    /// Iterations finished so far (the pass before training not counted).
    pub iterations_done: usize,
    /// The images the search phases train on, once fixed (after the first plan it never changes).
    pub search_images: Option<usize>,
    /// Iterations wanted at most.
    pub max_iterations: usize,
    /// Epochs per iteration wanted at most.
    pub max_epochs_per_iteration: usize,
    /// The final training's batch size: it trains on one batch at least.
    pub batch_size: usize,
}

/// A plan: the settings the rest of the run follows, and what it rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// When it was made: "start", "after iteration N" or "before the final training".
    pub made: String,
    /// Seconds spent when it was made.
    pub spent_seconds: f64,
    /// The budget, in seconds.
    pub budget_seconds: f64,
    /// Images each search phase trains on.
    pub search_samples: usize,
    /// Search iterations in all (done ones included).
    pub iterations: usize,
    /// Epochs of each remaining iteration.
    pub epochs_per_iteration: usize,
    /// Final-training epochs.
    pub final_epochs: usize,
    /// Images each final epoch trains on.
    pub final_samples: usize,
    /// Whether each final epoch draws its `final_samples` images afresh from the whole training split, so that the
    /// epochs together reach every image (plans made before this existed: one seeded subset for every epoch).
    #[serde(default)]
    pub final_draws_afresh: bool,
    /// Seconds the whole run is predicted to take under this plan.
    pub predicted_seconds: f64,
    /// The measured training seconds per image it rests on.
    pub seconds_per_image: f64,
    /// The measured seconds per mutation pass it rests on.
    pub seconds_per_pass: f64,
    /// The growth per iteration it assumes.
    pub growth: f64,
    /// How much costlier than the measured network it takes the next one to be.
    pub next_cost: f64,
    /// Whether the search was over when it was made, so that only the final training was left to plan.
    #[serde(default)]
    pub search_over: bool,
}

impl Plan {
    /// The plans of a `plans.jsonl` text, one JSON object per non-blank line.
    pub fn parse_plans(text: &str) -> anyhow::Result<Vec<Plan>> {
        super::run_dir::parse_lines(text)
    }

    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let (search, pass) = match self.search_over {
            true => (String::new(), String::new()),
            false => (
                format!(
                    "{} of {} on {} images, then ",
                    counted(self.iterations, "iteration"),
                    counted(self.epochs_per_iteration, "epoch"),
                    self.search_samples
                ),
                format!(", {:.1} s per mutation pass", self.seconds_per_pass),
            ),
        };
        let images = if self.final_draws_afresh {
            "images each"
        } else {
            "images"
        };
        format!(
            "plan ({}): {search}{} on {} {images}; predicted {:.1} of {:.1} min ({:.2} ms per training image{pass})",
            self.made,
            counted(self.final_epochs, "final epoch"),
            self.final_samples,
            self.predicted_seconds / 60.0,
            self.budget_seconds / 60.0,
            1000.0 * self.seconds_per_image,
        )
    }
}

/// "1 epoch", "2 epochs".
fn counted(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Seconds of `iterations` more iterations of `epochs` epochs on `images` images, the first at cost factor
/// `first_cost` and each later one `growth` times the one before; each ends with a mutation pass.
fn search_seconds(input: &PlanInput, iterations: usize, epochs: usize, images: usize) -> f64 {
    let per_epoch = |cost: f64| {
        let train = images as f64 * input.seconds_per_image * cost;
        let validate = input.validation_images as f64 * input.seconds_per_image * cost * EVAL_COST;
        train + validate
    };
    (0..iterations)
        .map(|i| {
            let cost = input.next_cost * input.growth.powi(i as i32);
            epochs as f64 * per_epoch(cost) + input.seconds_per_pass * input.growth.powi(i as i32)
        })
        .sum()
}

/// The plan for what is left of the budget.
pub fn plan(input: &PlanInput, made: &str) -> Plan {
    let remaining_iterations = input.max_iterations.saturating_sub(input.iterations_done);
    let search_left = (SEARCH_SHARE * input.budget_seconds - input.spent_seconds).max(0.0);
    let most_images = input.search_images_available.max(1);
    // The most iterations, then the most epochs, whose images fit the search's share.
    let mut choice = (0, 1, input.search_images.unwrap_or(most_images.min(MIN_SEARCH_IMAGES)));
    'search: for iterations in (1..=remaining_iterations).rev() {
        for epochs in (1..=input.max_epochs_per_iteration.max(1)).rev() {
            let images = match input.search_images {
                Some(fixed) => fixed,
                None => {
                    let unit =
                        search_seconds(input, iterations, epochs, 1) - search_seconds(input, iterations, epochs, 0);
                    let fixed = search_seconds(input, iterations, epochs, 0);
                    (((search_left - fixed) / unit).floor().max(0.0) as usize).min(most_images)
                }
            };
            let floor = match input.search_images {
                Some(_) => 0,
                None => MIN_SEARCH_IMAGES.min(most_images),
            };
            if images >= floor && search_seconds(input, iterations, epochs, images) <= search_left {
                choice = (iterations, epochs, images);
                break 'search;
            }
        }
    }
    let (iterations, epochs, images) = choice;
    let search = search_seconds(input, iterations, epochs, images);
    // The final network is the last searched one, grown by its final pass.
    let final_cost = input.next_cost * input.growth.powi(iterations as i32);
    let final_left = (input.budget_seconds - input.spent_seconds - search).max(0.0);
    let per_image = input.seconds_per_image * final_cost;
    let full_epoch = input.final_images_available as f64 * per_image;
    let least = input.batch_size.min(input.final_images_available);
    let fit = final_left / full_epoch;
    let whole = (fit.floor() as usize).min(MAX_FINAL_EPOCHS);
    let (final_epochs, final_samples) =
        if whole >= 1 && (whole == MAX_FINAL_EPOCHS || fit - fit.floor() <= MAX_IDLE_SHARE * fit) {
            (whole, input.final_images_available)
        } else {
            // Whole epochs would leave too much idle (or not even one fits): one epoch more, each on as many images
            // as fill the time, drawn afresh from all of them every epoch.
            let epochs = whole + 1;
            let samples =
                ((final_left / per_image / epochs as f64).floor() as usize).clamp(least, input.final_images_available);
            (epochs, samples)
        };
    let predicted = input.spent_seconds + search + final_epochs as f64 * final_samples as f64 * per_image;
    Plan {
        made: made.to_string(),
        spent_seconds: input.spent_seconds,
        budget_seconds: input.budget_seconds,
        search_samples: images,
        iterations: input.iterations_done + iterations,
        epochs_per_iteration: epochs,
        final_epochs,
        final_samples,
        final_draws_afresh: true,
        predicted_seconds: predicted,
        seconds_per_image: input.seconds_per_image,
        seconds_per_pass: input.seconds_per_pass,
        growth: input.growth,
        next_cost: input.next_cost,
        search_over: remaining_iterations == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fashion() -> PlanInput {
        PlanInput {
            budget_seconds: 1800.0,
            spent_seconds: 40.0,
            seconds_per_image: 0.005,
            seconds_per_pass: 30.0,
            growth: 1.3,
            next_cost: 1.0,
            search_images_available: 54_000,
            validation_images: 6_000,
            final_images_available: 60_000,
            iterations_done: 0,
            search_images: None,
            max_iterations: 2,
            max_epochs_per_iteration: 4,
            batch_size: 64,
        }
    }

    /// Seconds the plan spends, recomputed from its own figures.
    fn cost(input: &PlanInput, plan: &Plan) -> f64 {
        let iterations = plan.iterations - input.iterations_done;
        let search = search_seconds(input, iterations, plan.epochs_per_iteration, plan.search_samples);
        let per_image = input.seconds_per_image * input.next_cost * input.growth.powi(iterations as i32);
        input.spent_seconds + search + (plan.final_epochs * plan.final_samples) as f64 * per_image
    }

    #[test]
    fn a_plan_fits_its_budget_and_gives_the_search_at_most_its_share() {
        for budget in [300.0, 1800.0, 7200.0] {
            let input = PlanInput {
                budget_seconds: budget,
                ..fashion()
            };
            let plan = plan(&input, "start");
            let total = cost(&input, &plan);
            assert!((total - plan.predicted_seconds).abs() < 1e-6, "{plan:?}");
            assert!(total <= budget, "{total} > {budget}: {plan:?}");
            let iterations = plan.iterations;
            let search = search_seconds(&input, iterations, plan.epochs_per_iteration, plan.search_samples);
            assert!(search <= SEARCH_SHARE * budget - input.spent_seconds + 1e-9, "{plan:?}");
            // Nothing large is left over: another final epoch would not fit.
            let per_epoch = plan.final_samples as f64 * input.seconds_per_image * input.growth.powi(iterations as i32);
            assert!(
                total + per_epoch > budget || plan.final_epochs == MAX_FINAL_EPOCHS,
                "{plan:?}"
            );
        }
    }

    fn plan_for(budget_seconds: f64) -> Plan {
        plan(
            &PlanInput {
                budget_seconds,
                ..fashion()
            },
            "start",
        )
    }

    #[test]
    fn the_half_hour_plan_on_fashion_mnist_is_what_the_arithmetic_says() {
        let plan = plan(&fashion(), "start");
        // Search share: 0.3 · 1800 − 40 = 500 s. Two iterations of 4 epochs cost, per image,
        // 4 · 0.005 · (1 + 1.3) = 0.046 s, and 6,000 validation images per epoch and two passes cost
        // 4 · 6000 · 0.005 · 0.35 · 2.3 + 30 · 2.3 = 165.6 s; (500 − 165.6) / 0.046 = 7,269 images.
        assert_eq!((plan.iterations, plan.epochs_per_iteration), (2, 4));
        assert_eq!(plan.search_samples, 7269);
        // The final network costs 1.3² = 1.69 times the first: 60,000 images take 507 s per epoch; 1800 − 40
        // − 499.97 s leave 1260.03 s, 2.49 epochs. Two whole epochs would leave 0.49 / 2.49 = 19 % of it idle,
        // more than MAX_IDLE_SHARE: 3 epochs, each on 1260.03 / 0.00845 / 3 = 49,705 images.
        assert_eq!((plan.final_epochs, plan.final_samples), (3, 49_705));
        // At 2,200 s, 1540 s are left for 3.04 epochs: 3 whole ones on all images leave 1 % idle.
        let roomy = plan_for(2200.0);
        assert_eq!((roomy.final_epochs, roomy.final_samples), (3, 60_000));
    }

    #[test]
    fn new_plans_draw_final_images_afresh_and_recorded_ones_keep_their_subset() {
        let made = plan(&fashion(), "start");
        assert!(made.final_draws_afresh);
        let mut line = serde_json::to_value(&made).expect("a plan serialises");
        line.as_object_mut().expect("an object").remove("final_draws_afresh");
        let recorded = Plan::parse_plans(&line.to_string()).expect("a recorded plan parses");
        assert!(!recorded[0].final_draws_afresh, "{recorded:?}");
        assert!(
            !recorded[0].describe().contains("images each"),
            "{}",
            recorded[0].describe()
        );
    }

    #[test]
    fn a_plan_made_once_the_search_is_over_describes_only_the_final_training() {
        let start = plan(&fashion(), "start");
        assert!(!start.search_over);
        let line = start.describe();
        assert!(
            line.starts_with(
                "plan (start): 2 iterations of 4 epochs on 7269 images, then 3 final epochs on 49705 images each; predicted"
            ) && line.ends_with("s per mutation pass)"),
            "{line}"
        );
        let over = PlanInput {
            iterations_done: 2,
            ..fashion()
        };
        let last = plan(&over, "before the final training");
        assert!(last.search_over);
        let line = last.describe();
        let final_part = format!(
            "plan (before the final training): {} final epochs on",
            last.final_epochs
        );
        assert!(line.starts_with(&final_part), "{line}");
        assert!(!line.contains("iteration") && !line.contains("mutation pass"), "{line}");
    }

    #[test]
    fn a_tight_budget_gives_up_epochs_then_iterations_then_final_images() {
        let tight = PlanInput {
            budget_seconds: 200.0,
            ..fashion()
        };
        let plan = plan(&tight, "start");
        // 0.3 · 200 − 40 = 20 s: one pass is 30 s, so no iteration fits.
        assert_eq!(plan.iterations, 0);
        // 160 s of final training at 0.005 s per image: 32,000 images in one epoch.
        assert_eq!((plan.final_epochs, plan.final_samples), (1, 32_000));
        assert!(cost(&tight, &plan) <= 200.0);

        let less = PlanInput {
            budget_seconds: 600.0,
            ..fashion()
        };
        let plan = super::plan(&less, "start");
        assert!(
            plan.iterations >= 1 && plan.search_samples >= MIN_SEARCH_IMAGES,
            "{plan:?}"
        );
        assert!(cost(&less, &plan) <= 600.0);
    }

    #[test]
    fn a_replan_keeps_the_search_images_and_counts_the_iterations_done() {
        let input = PlanInput {
            spent_seconds: 300.0,
            iterations_done: 1,
            search_images: Some(7269),
            seconds_per_image: 0.007,
            next_cost: 1.3,
            ..fashion()
        };
        let plan = super::plan(&input, "after iteration 1");
        assert_eq!(plan.search_samples, 7269);
        assert!(plan.iterations <= 2);
        assert!(cost(&input, &plan) <= input.budget_seconds, "{plan:?}");
        // Over budget already: nothing more to search, and the least final training that can run.
        let late = PlanInput {
            spent_seconds: 2000.0,
            ..input
        };
        let plan = super::plan(&late, "after iteration 1");
        assert_eq!((plan.iterations, plan.final_epochs, plan.final_samples), (1, 1, 64));
    }
}
