//! What the user asks of a search: the profiles and their numbers, every setting of a run (`config.json`), and
//! the memory a network needs under those settings. A time budget's plans never change these; the loop follows
//! [`SearchConfig::following`] the last plan instead.

use super::budget::{Plan, TimeBudget};
use super::mutate::Strategy;
use super::time_cost;
use crate::data::{DataOptions, Dataset};
use crate::genotype::{Genotype, OpSet};
use crate::memory::{self, MemoryEstimate};
use crate::metrics::MetricsConfig;
use crate::nn::pruner::PrunerConfig;
use crate::train::{CUT_AFTER_EPOCH, OpCut, TrainConfig};
use serde::{Deserialize, Serialize};

/// A preset of search settings; every number that differs between the presets lives in its methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Minutes on a laptop CPU: few iterations, a short final training, lighter NTK sampling.
    Quick,
    /// The published settings.
    Reference,
}

impl Profile {
    /// Search iterations at most.
    pub fn iterations(self) -> usize {
        match self {
            Profile::Quick => 2,
            Profile::Reference => 30,
        }
    }

    /// Epochs of the final training from scratch.
    pub fn final_epochs(self) -> usize {
        match self {
            Profile::Quick => 30,
            Profile::Reference => 600,
        }
    }

    /// Ops per edge the final network keeps (`--final-ops`); None keeps every live op. At equal wall time the
    /// quick profile's cheaper network trains for more epochs, and the measurement in docs/RESULTS.md found that
    /// to pay by far.
    pub fn final_ops(self) -> Option<usize> {
        match self {
            Profile::Quick => Some(2),
            Profile::Reference => None,
        }
    }

    /// Under a time budget, the accuracy a split is expected to add at equal epochs, weighed against the final
    /// epochs it costs (`--split-gain`): for `quick` the gain the metric-validation study measured for its rule's
    /// pick ([`time_cost::MEASURED_SPLIT_GAIN`]); `reference` grows as published, whatever the time.
    pub fn split_gain(self) -> Option<f64> {
        match self {
            Profile::Quick => Some(time_cost::MEASURED_SPLIT_GAIN),
            Profile::Reference => None,
        }
    }

    /// The train-free scoring settings: the published NTK sampling (3 repeats of 3×64 images), or for `quick`
    /// 2 repeats of 2×16 images.
    pub fn metrics(self) -> MetricsConfig {
        match self {
            Profile::Reference => MetricsConfig::default(),
            Profile::Quick => MetricsConfig {
                repeats: 2,
                ntk_batches: 2,
                ntk_batch_size: 16,
                ..MetricsConfig::default()
            },
        }
    }

    /// How long the deadhead window of a training phase is.
    pub fn deadhead_window(self) -> DeadheadWindow {
        match self {
            Profile::Reference => DeadheadWindow::Fixed,
            Profile::Quick => DeadheadWindow::WithinPhase,
        }
    }

    /// The training recipe of the search phases (docs/ALGORITHM.md §9), at 4 epochs: the published one
    /// for `reference`, and for `quick` the one measured best for short CPU runs (docs/RESULTS.md, *Final-training
    /// recipe*): lr 0.1, no drop-path, no cutout, no auxiliary loss.
    pub fn recipe(self) -> TrainConfig {
        match self {
            Profile::Reference => TrainConfig::default(),
            Profile::Quick => TrainConfig {
                lr_max: 0.1,
                drop_path: 0.0,
                aux_weight: 0.0,
                cutout: false,
                ..TrainConfig::default()
            },
        }
    }

    /// The final training's recipe: the search phases' one for [`Profile::final_epochs`] epochs, and for `quick`
    /// with the batch norms recalibrated before every evaluation and the gates frozen for the last epoch
    /// (docs/ALGORITHM.md §9, *Batch-norm recalibration* and *Frozen gates*).
    pub fn final_recipe(self) -> TrainConfig {
        let (bn_recalibration, freeze_gates_epochs) = match self {
            Profile::Reference => (0, 0),
            Profile::Quick => (2048, 1),
        };
        TrainConfig {
            epochs: self.final_epochs(),
            bn_recalibration,
            freeze_gates_epochs,
            cut_ops: self.final_ops().map(|keep| OpCut {
                after_epoch: CUT_AFTER_EPOCH,
                keep,
            }),
            ..self.recipe()
        }
    }
}

/// Every setting of a search, as the user asked for it; stored as `config.json` in the run folder when the run is
/// created and never rewritten.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Data set, as given on the command line.
    pub data: String,
    /// How the data set is read (image size, flips).
    #[serde(default)]
    pub data_options: DataOptions,
    /// Reduction cells R of the starting genotype. From then on the genotype carries R and C; a resumed run
    /// checks that they agree with these (`RunDir::open`).
    pub reductions: usize,
    /// Channels C of cell 0 of the starting genotype.
    pub channels: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// How mutations are chosen.
    pub strategy: Strategy,
    /// Search iterations at most.
    pub iterations: usize,
    /// Whether one mutation pass runs before the first training (as the reference does).
    pub premutate: bool,
    /// Stop after this many iterations in a row without an applied mutation.
    pub patience: usize,
    /// Training-memory budget in bytes.
    pub memory_budget: u64,
    /// Use a seeded subset of this many training images for the search's training phases.
    pub search_samples: Option<usize>,
    /// Train the final network on a seeded subset of this many training images (all of them when unset).
    #[serde(default)]
    pub final_samples: Option<usize>,
    /// Fraction of the training data held out for validation during the search.
    pub validation_fraction: f64,
    /// Training of each search iteration (epochs T per iteration).
    pub train: TrainConfig,
    /// Final training from scratch. Its augmentation comes from the data: `record_final_augmentation` writes it in
    /// before the run folder is created, so that config.json shows it; left unset, it is derived when training.
    pub final_train: TrainConfig,
    /// Whether the final training runs at the end.
    pub final_training: bool,
    /// Train-free scoring settings.
    pub metrics: MetricsConfig,
    /// Pruner constants.
    pub pruner: PrunerConfig,
    /// How long the deadhead window is in each training phase; runs recorded before the rule existed used
    /// the fixed window.
    #[serde(default)]
    pub deadhead_window: DeadheadWindow,
    /// Wall-time budget of search and final training together; when set, plans choose `search_samples`,
    /// `iterations`, `train.epochs`, `final_train.epochs` and the images of each final epoch (see
    /// [`SearchConfig::following`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget: Option<TimeBudget>,
    /// Whether each training phase starts from the tensors the previous one trained (the final training from the
    /// last supernet's) instead of fresh ones, as the reference does.
    #[serde(default)]
    pub inherit_weights: bool,
    /// Before the final training, keep on each edge only this many ops, those whose gates were open longest in
    /// the last supernet training (none: every live op). A run with no supernet training (strategy none) has no
    /// gate records: its final training makes the cut instead (`final_train.cut_ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_ops: Option<usize>,
    /// Under a time budget, the accuracy a split is expected to add at equal epochs (`--split-gain`): a split is
    /// made only when this exceeds what its slower steps cost in final epochs (`time_cost::weigh`). None (the
    /// reference profile, `--split-gain off`, and runs recorded before the quick profile had a default): splits are
    /// not weighed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_gain: Option<f64>,
    /// The candidate ops of every edge (`--ops`); runs recorded before the option existed used the published ones.
    #[serde(default, skip_serializing_if = "OpSet::is_published")]
    pub op_set: OpSet,
}

/// How many epochs the deadhead window of a training phase spans (docs/ALGORITHM.md §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadheadWindow {
    /// Always `pruner.window_epochs` (4), as published: a phase shorter than that never deadheads.
    #[default]
    Fixed,
    /// `pruner.window_epochs`, but never more than the phase's epochs, so that the window fills within every
    /// search iteration and ops whose gates stay closed leave before the next mutation pass.
    WithinPhase,
}

impl SearchConfig {
    /// The settings of `profile` for a search on `data` with R reductions and C channels.
    pub fn new(profile: Profile, data: &str, reductions: usize, channels: usize, seed: u64) -> Self {
        SearchConfig {
            data: data.to_string(),
            reductions,
            channels,
            seed,
            strategy: Strategy::Spidernet,
            iterations: profile.iterations(),
            premutate: true,
            patience: 2,
            memory_budget: memory::default_budget(),
            search_samples: None,
            data_options: DataOptions::default(),
            final_samples: None,
            validation_fraction: 0.1,
            train: profile.recipe(),
            final_train: profile.final_recipe(),
            final_training: true,
            metrics: profile.metrics(),
            pruner: PrunerConfig::default(),
            deadhead_window: profile.deadhead_window(),
            time_budget: None,
            inherit_weights: false,
            final_ops: profile.final_ops(),
            split_gain: profile.split_gain(),
            op_set: OpSet::Published,
        }
    }

    /// The settings a run follows once `plan` is made: these, with the plan's sizes in place of the ones asked for.
    pub fn following(&self, plan: Option<&Plan>) -> SearchConfig {
        let mut settings = self.clone();
        if let Some(plan) = plan {
            settings.search_samples = Some(plan.search_samples);
            settings.iterations = plan.iterations;
            settings.train.epochs = plan.epochs_per_iteration;
            settings.final_train.epochs = plan.final_epochs;
            match plan.final_draws_afresh {
                true => settings.final_train.epoch_images = Some(plan.final_samples),
                false => settings.final_samples = Some(plan.final_samples),
            }
        }
        settings
    }

    /// The expected gain of a split that this search weighs against its cost in final epochs: only under a time
    /// budget, with `--split-gain` set.
    pub fn weighed_split_gain(&self) -> Option<f64> {
        self.time_budget.and(self.split_gain)
    }

    /// The pruner of a training phase of `epochs` epochs, its window set by `deadhead_window`.
    pub fn pruner_for(&self, epochs: usize) -> PrunerConfig {
        let window_epochs = match self.deadhead_window {
            DeadheadWindow::Fixed => self.pruner.window_epochs,
            DeadheadWindow::WithinPhase => self.pruner.window_epochs.min(epochs.max(1)),
        };
        PrunerConfig {
            window_epochs,
            ..self.pruner.clone()
        }
    }

    /// Sets the final training's augmentation to the one `data` calls for (crop padding, cutout and flips scaled to
    /// its images), so that the settings record what will run.
    pub fn record_final_augmentation(&mut self, data: &Dataset) {
        self.final_train.augment = Some(self.final_train.augmentation_for(data));
    }

    /// The training memory of `genotype` under these settings by the estimate of docs/ALGORITHM.md §8,
    /// taken at the larger of the search's and the final training's batch sizes. Every memory figure of a search
    /// (the budget check, each split's refusal, the records, the planner's cost) comes from here.
    pub fn memory_of(&self, genotype: &Genotype) -> MemoryEstimate {
        memory::estimate(genotype, genotype.channels, self.memory_batch())
    }

    /// The batch size the memory estimate is taken at.
    fn memory_batch(&self) -> usize {
        self.train.batch_size.max(self.final_train.batch_size)
    }

    /// Refuses a memory budget below what training `genotype` (the run's initial or current network) needs: such a
    /// run could never fit, so it does not start.
    pub fn check_memory_budget(&self, genotype: &Genotype) -> anyhow::Result<()> {
        let needed = self.memory_of(genotype).total();
        if needed > self.memory_budget {
            anyhow::bail!(
                "the memory budget of {} is below the {} that training this network needs (R={}, C={}, batch {}); give --memory-budget {}MiB or more, or fewer --channels",
                memory::format_size(self.memory_budget),
                memory::format_size(needed),
                genotype.reductions,
                genotype.channels,
                self.memory_batch(),
                needed.div_ceil(1 << 20)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_window_fits_each_phase_and_the_reference_window_is_fixed() {
        let quick = SearchConfig::new(Profile::Quick, "digits", 1, 4, 0);
        assert_eq!(quick.deadhead_window, DeadheadWindow::WithinPhase);
        let windows: Vec<usize> = [1, 2, 4, 30]
            .iter()
            .map(|&e| quick.pruner_for(e).window_epochs)
            .collect();
        assert_eq!(windows, [1, 2, 4, 4]);
        let reference = SearchConfig::new(Profile::Reference, "digits", 1, 4, 0);
        assert_eq!(reference.pruner_for(2).window_epochs, 4);
        assert_eq!(
            reference.pruner_for(2).min_open_fraction,
            reference.pruner.min_open_fraction
        );
        // A config.json written before the rule existed reads as the fixed window it ran with.
        let mut old = serde_json::to_value(&quick).unwrap();
        old.as_object_mut().unwrap().remove("deadhead_window");
        let old: SearchConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.pruner_for(2).window_epochs, 4);
    }

    #[test]
    fn only_the_quick_final_training_recalibrates_freezes_its_last_epoch_and_cuts_after_its_first() {
        let quick = Profile::Quick.final_recipe();
        assert_eq!((quick.bn_recalibration, quick.freeze_gates_epochs), (2048, 1));
        assert_eq!(
            quick.cut_ops,
            Some(OpCut {
                after_epoch: 1.0,
                keep: Profile::Quick.final_ops().unwrap()
            })
        );
        let reference = Profile::Reference.final_recipe();
        assert_eq!(
            reference,
            TrainConfig {
                epochs: Profile::Reference.final_epochs(),
                ..Profile::Reference.recipe()
            },
            "the reference's final training is its search recipe, longer"
        );
        assert_eq!((reference.bn_recalibration, reference.freeze_gates_epochs), (0, 0));
        // A config.json written before frozen gates existed reads as the training it ran: gates free to the end.
        let mut old = serde_json::to_value(SearchConfig::new(Profile::Quick, "digits", 1, 4, 0)).unwrap();
        old["final_train"]
            .as_object_mut()
            .unwrap()
            .remove("freeze_gates_epochs");
        old["final_train"].as_object_mut().unwrap().remove("cut_ops");
        let old: SearchConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.final_train.freeze_gates_epochs, 0);
        assert_eq!(
            old.final_train.cut_ops, None,
            "nor was its network cut during its final training"
        );
    }

    #[test]
    fn a_plan_sets_the_sizes_the_run_follows_and_nothing_else() {
        let asked = SearchConfig::new(Profile::Quick, "digits", 1, 4, 0);
        assert_eq!(asked.following(None), asked);
        let plan = Plan {
            made: "start".into(),
            spent_seconds: 1.0,
            budget_seconds: 60.0,
            search_samples: 500,
            iterations: 1,
            epochs_per_iteration: 3,
            final_epochs: 7,
            final_samples: 900,
            final_draws_afresh: true,
            predicted_seconds: 59.0,
            seconds_per_image: 0.001,
            seconds_per_pass: 2.0,
            growth: 1.2,
            next_cost: 1.0,
            search_over: false,
        };
        let followed = asked.following(Some(&plan));
        assert_eq!(
            (
                followed.search_samples,
                followed.iterations,
                followed.train.epochs,
                followed.final_train.epochs,
                followed.final_train.epoch_images,
                followed.final_samples
            ),
            (Some(500), 1, 3, 7, Some(900), None),
            "each final epoch draws its 900 images from the whole training split"
        );
        let unplanned = SearchConfig {
            search_samples: asked.search_samples,
            iterations: asked.iterations,
            train: asked.train.clone(),
            final_train: asked.final_train.clone(),
            ..followed
        };
        assert_eq!(unplanned, asked);
        // A plan recorded before fresh draws existed keeps its run on the one seeded subset it started with.
        let recorded = Plan {
            final_draws_afresh: false,
            ..plan
        };
        let resumed = asked.following(Some(&recorded));
        assert_eq!(
            (resumed.final_samples, resumed.final_train.epoch_images),
            (Some(900), None)
        );
    }
}
