//! The SpiderNet search loop (docs/ALGORITHM.md §1, §9): train with deadheading, grow each cell by the best
//! train-free-scored split that fits the memory budget, re-initialise, repeat; then train the result from scratch.

pub mod budget;
mod discretize;
mod final_training;
mod inherit;
mod mutate;
mod planning;
pub mod record;
mod run_dir;
mod run_lock;

pub use discretize::Discretized;
pub use final_training::{Deadline, FinalOutcome, FinalRun, Rescheduling, final_subset, final_training};
pub use mutate::Strategy;
pub use record::{Checkpoint, GateOpen, IterationRecord, Mutation, Summary};
pub use run_dir::{NOTHING_TO_RESUME, RunDir};
pub use run_lock::{LOCK_FILE, LockError, RunLock};

use planning::{Planner, RunClock, SplitSizes};

use crate::data::{DataOptions, Dataset, Split};
use crate::genotype::Genotype;
use crate::memory;
use crate::metrics::{CandidateReport, MetricsConfig, SkippedCandidate};
use crate::pruner::PrunerConfig;
use crate::seed::{self, Stream};
use crate::supernet::Supernet;
use crate::train::{self, EpochReport, TrainConfig, TrainObserver};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::Device;

/// Ops per edge the quick profile's final network keeps (`--final-ops`): at equal wall time its cheaper network
/// trains for more epochs, and the measurement in docs/RESULTS.md found that to pay by far.
pub const QUICK_FINAL_OPS: usize = 2;

/// The training recipe of a profile's search phases and final training (docs/ALGORITHM.md §9), at 4 epochs:
/// the published one for `reference`, and for `quick` the one measured best for short CPU runs (docs/RESULTS.md,
/// *Final-training recipe*): lr 0.1, no drop-path, no cutout, no auxiliary loss.
pub fn recipe(profile: Profile) -> TrainConfig {
    match profile {
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

/// The final training of a profile, which `spidernet train` uses too: its recipe for 600 epochs (reference) or
/// 30 (quick).
pub fn final_recipe(profile: Profile) -> TrainConfig {
    let epochs = match profile {
        Profile::Reference => 600,
        Profile::Quick => 30,
    };
    TrainConfig {
        epochs,
        ..recipe(profile)
    }
}

/// Every setting of a search; stored as `config.json` in the run folder.
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
    /// Wall-time budget of search and final training together; when set, the planner chooses `search_samples`,
    /// `iterations`, `train.epochs`, `final_train.epochs` and `final_samples`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget: Option<budget::TimeBudget>,
    /// Whether each training phase starts from the tensors the previous one trained (the final training from the
    /// last supernet's) instead of fresh ones, as the reference does.
    #[serde(default)]
    pub inherit_weights: bool,
    /// Before the final training, keep on each edge only this many ops, those whose gates were open longest in
    /// the last supernet training (none: every live op). The quick profile keeps 2 (docs/RESULTS.md); a run with no
    /// supernet training (strategy none) has no gate records and keeps every op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_ops: Option<usize>,
    /// Every plan made so far, oldest first; the settings above follow the last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<budget::Plan>,
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

/// A preset of search settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Minutes on a laptop CPU: 2 iterations, 30 final epochs, NTK on 2 repeats of 2×16 images.
    Quick,
    /// The reference's settings: 30 iterations, 600 final epochs, NTK on 3 repeats of 3×64 images.
    Reference,
}

impl SearchConfig {
    /// The settings of `profile` for a search on `data` with R reductions and C channels.
    pub fn new(profile: Profile, data: &str, reductions: usize, channels: usize, seed: u64) -> Self {
        let reference = profile == Profile::Reference;
        let metrics = if reference {
            MetricsConfig::default()
        } else {
            MetricsConfig {
                repeats: 2,
                ntk_batches: 2,
                ntk_batch_size: 16,
                ..MetricsConfig::default()
            }
        };
        SearchConfig {
            data: data.to_string(),
            reductions,
            channels,
            seed,
            strategy: Strategy::Spidernet,
            iterations: if reference { 30 } else { 2 },
            premutate: true,
            patience: 2,
            memory_budget: memory::default_budget(),
            search_samples: None,
            data_options: DataOptions::default(),
            final_samples: None,
            validation_fraction: 0.1,
            train: recipe(profile),
            final_train: final_recipe(profile),
            final_training: true,
            metrics,
            pruner: PrunerConfig::default(),
            deadhead_window: if reference {
                DeadheadWindow::Fixed
            } else {
                DeadheadWindow::WithinPhase
            },
            time_budget: None,
            inherit_weights: false,
            final_ops: (!reference).then_some(QUICK_FINAL_OPS),
            plans: Vec::new(),
        }
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
}

/// A step of a search run: the mutation pass before any training, a search iteration, or the final training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Iteration 0: one mutation pass on the untrained minimal network.
    Premutation,
    /// Iteration n ≥ 1: supernet training, then a mutation pass.
    Search(usize),
    /// The final network trained from scratch.
    Final,
}

impl Phase {
    /// The phase of history record `iteration` (0 is the premutation pass).
    pub fn of_iteration(iteration: usize) -> Phase {
        if iteration == 0 {
            Phase::Premutation
        } else {
            Phase::Search(iteration)
        }
    }

    /// The index its networks' initialisation and batch order are drawn with.
    pub fn seed_index(self) -> u64 {
        match self {
            Phase::Premutation => 0,
            Phase::Search(iteration) => iteration as u64,
            Phase::Final => seed::FINAL_NETWORK,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Premutation => f.write_str("the mutation pass before training"),
            Phase::Search(iteration) => write!(f, "search iteration {iteration}"),
            Phase::Final => f.write_str("the final training"),
        }
    }
}

/// Receives what the search does, for progress display and logs.
pub trait SearchObserver: TrainObserver {
    /// An iteration begins (iteration 0 is the mutation pass before any training).
    fn iteration_started(&mut self, _iteration: usize) {}
    /// A training phase begins: a search iteration's supernet training, or the final training.
    fn phase(&mut self, _phase: Phase, _epochs: usize) {}
    /// A candidate was scored.
    fn candidate(&mut self, _report: &CandidateReport) {}
    /// A candidate could not be scored: libtorch could not allocate its memory.
    fn candidate_skipped(&mut self, _skip: &SkippedCandidate) {}
    /// An iteration finished and was checkpointed.
    fn iteration(&mut self, _record: &IterationRecord, _config: &SearchConfig) {}
    /// The search loop stopped.
    fn stopped(&mut self, _reason: &str) {}
    /// A time-budgeted run made or revised its plan.
    fn plan(&mut self, _plan: &budget::Plan) {}
    /// `--final-ops` cut every edge down to `keep` ops before the final training.
    fn discretized(&mut self, _keep: usize, _outcome: &Discretized) {}
}

/// The splits a search trains, validates and tests on.
struct SearchData {
    search_train: Split,
    validation: Split,
}

fn search_data(data: &Dataset, config: &SearchConfig) -> SearchData {
    let mut rng = seed::rng(config.seed, Stream::DataSplit, seed::data_split::SEARCH);
    let (rest, validation) = data.train.hold_out(config.validation_fraction, &mut rng);
    let search_train = match config.search_samples {
        Some(k) if k < rest.len() => rest.hold_out(k as f64 / rest.len() as f64, &mut rng).1,
        _ => rest,
    };
    SearchData {
        search_train,
        validation,
    }
}

/// Refuses a memory budget below what training `genotype` (the run's initial or current network) needs by the
/// estimate of docs/ALGORITHM.md §8: such a run could never fit, so it does not start.
pub fn check_memory_budget(genotype: &Genotype, config: &SearchConfig) -> anyhow::Result<()> {
    let batch = memory_batch(config);
    let needed = memory_needed(genotype, config);
    if needed > config.memory_budget {
        anyhow::bail!(
            "the memory budget of {} is below the {} that training this network needs (R={}, C={}, batch {}); give --memory-budget {}MiB or more, or fewer --channels",
            memory::format_size(config.memory_budget),
            memory::format_size(needed),
            genotype.reductions,
            genotype.channels,
            batch,
            needed.div_ceil(1 << 20)
        );
    }
    Ok(())
}

/// Bytes that training `genotype` needs under `config` by the estimate, at the larger of its two batch sizes.
pub fn memory_needed(genotype: &Genotype, config: &SearchConfig) -> u64 {
    memory::estimate(genotype, genotype.channels, memory_batch(config)).total()
}

/// The batch size the memory estimate is taken at: the larger of the search's and the final training's.
fn memory_batch(config: &SearchConfig) -> usize {
    config.train.batch_size.max(config.final_train.batch_size)
}

/// Runs (or resumes) a search in `dir` from `checkpoint`, then the final training unless disabled.
pub fn run(
    dir: &RunDir,
    config: &SearchConfig,
    data: &Dataset,
    mut checkpoint: Checkpoint,
    device: Device,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<Summary> {
    if let Some(summary) = dir.finished(&checkpoint)? {
        observer.stopped(checkpoint.stopped.as_deref().unwrap_or_default());
        return Ok(summary);
    }
    check_memory_budget(&checkpoint.genotype, config)?;
    // A time budget's plans rewrite the settings as the run goes: this copy follows them into config.json.
    let mut config = config.clone();
    let clock = RunClock::start(checkpoint.elapsed_seconds);
    let mut history = dir.history()?;
    history.truncate(checkpoint.completed);
    let mut splits = search_data(data, &config);
    let sizes = SplitSizes {
        search_available: data.train.len() - splits.validation.len(),
        validation: splits.validation.len(),
        final_available: data.train.len(),
    };
    let mut planner = Planner::new(&config, clock, &history);
    let mut inherited = match config.inherit_weights {
        true => dir.inherited(checkpoint.completed)?,
        false => None,
    };
    if let Some(planner) = planner.as_mut().filter(|p| p.needs_probe()) {
        planner.probe(&checkpoint.genotype, &config, &splits.search_train, device)?;
    }
    if config.strategy == Strategy::Unchanged && checkpoint.stopped.is_none() {
        checkpoint.stopped = Some("strategy none: the initial genotype is trained as it is".to_string());
        dir.commit(&history, &checkpoint)?;
    }
    let unplanned = config.plans.is_empty() && !config.premutate && checkpoint.stopped.is_none();
    if let Some(planner) = planner.as_mut().filter(|_| unplanned) {
        let plan = planner.at_start(&mut config, sizes);
        observer.plan(&plan);
        dir.save_config(&config)?;
        splits = search_data(data, &config);
    }
    while checkpoint.stopped.is_none() {
        let iteration = match history.last() {
            Some(last) => last.iteration + 1,
            None if config.premutate => 0,
            None => 1,
        };
        observer.iteration_started(iteration);
        let trained = checkpoint.genotype.clone();
        let genotype = &mut checkpoint.genotype;
        let mut record = run_iteration(iteration, &config, &splits, genotype, &mut inherited, device, observer)?;
        if let Some(planner) = planner.as_mut() {
            let first = config.plans.is_empty();
            let plan = planner.after_iteration(&mut record, &trained, &checkpoint.genotype, &mut config, sizes);
            observer.plan(&plan);
            dir.save_config(&config)?;
            if first {
                splits = search_data(data, &config);
            }
        }
        update_stop(&mut checkpoint, &record, &config);
        history.push(record);
        checkpoint.completed = history.len();
        checkpoint.elapsed_seconds = clock.spent();
        if let Some(tensors) = &inherited {
            dir.save_inherited(checkpoint.completed, tensors)?;
        }
        dir.commit(&history, &checkpoint)?;
        dir.forget_older_inherited(checkpoint.completed)?;
        observer.iteration(history.last().expect("just pushed"), &config);
    }
    let reason = checkpoint.stopped.clone().unwrap_or_default();
    observer.stopped(&reason);
    // The network the final training trains: the searched one, cut to its strongest ops with --final-ops when the
    // last supernet training left gate records to rank them by.
    let mut final_genotype = checkpoint.genotype.clone();
    let discretized = match config.final_ops {
        Some(keep) => history
            .iter()
            .rev()
            .map(|r| &r.gate_open)
            .find(|g| !g.is_empty())
            .map(|open| (keep, discretize::keep_top_ops(&mut final_genotype, open, keep))),
        None => None,
    };
    let mut deadline = None;
    if let Some(planner) = planner.as_mut().filter(|_| config.final_training) {
        if dir.final_state()?.is_none() {
            let batch = config.final_train.batch_size;
            let cheaper = memory::estimate(&final_genotype, final_genotype.channels, batch).total() as f64
                / memory::estimate(&checkpoint.genotype, checkpoint.genotype.channels, batch)
                    .total()
                    .max(1) as f64;
            let plan = planner.before_final(history.last_mut(), &mut config, sizes, cheaper);
            observer.plan(&plan);
            dir.save_config(&config)?;
            checkpoint.elapsed_seconds = clock.spent();
            dir.commit(&history, &checkpoint)?;
        }
        deadline = Some(Deadline::after(planner.budget(), checkpoint.elapsed_seconds));
    }
    let mut summary = search_summary(&checkpoint.genotype, &config, &history, reason);
    summary.run_seconds = clock.spent();
    if config.final_training {
        let genotype = final_genotype;
        if let Some((keep, outcome)) = &discretized {
            observer.discretized(*keep, outcome);
        }
        let run = FinalRun {
            config: &config,
            data,
            device,
            dir: Some(dir),
            deadline,
            inherited: inherited.as_deref(),
        };
        let schedule = final_training::train_final(&mut summary, &genotype, &run, observer)?;
        summary.run_seconds = checkpoint.elapsed_seconds + summary.final_training_seconds;
        let changed = schedule
            .rescheduled
            .filter(|_| schedule.epochs != config.final_train.epochs);
        if let (Some(planner), Some(change)) = (planner.as_mut(), changed) {
            let plan = planner.during_final(&mut config, schedule.epochs, change, checkpoint.elapsed_seconds);
            observer.plan(&plan);
            if let Some(last) = history.last_mut() {
                last.plans.push(plan);
            }
            dir.save_history(&history)?;
            dir.save_config(&config)?;
        }
    }
    dir.save_summary(&summary)?;
    dir.remove_final_checkpoint()?;
    Ok(summary)
}

/// Counts the iterations without an applied split and decides whether the loop stops after `record`.
fn update_stop(checkpoint: &mut Checkpoint, record: &IterationRecord, config: &SearchConfig) {
    let applied = record.mutations.iter().filter(|m| m.applied).count();
    let refused = record.mutations.len() - applied;
    checkpoint.stale = if applied == 0 && record.iteration > 0 {
        checkpoint.stale + 1
    } else {
        0
    };
    checkpoint.stopped = if record.iteration >= config.iterations {
        Some(format!("reached {} iterations", config.iterations))
    } else if applied == 0 && refused > 0 {
        Some("the memory budget leaves no room for the chosen splits".to_string())
    } else if checkpoint.stale >= config.patience {
        Some(format!(
            "no mutation was accepted for {} iterations in a row",
            checkpoint.stale
        ))
    } else {
        None
    };
}

/// The summary of the search alone: the final genotype's size and the time spent searching.
fn search_summary(genotype: &Genotype, config: &SearchConfig, history: &[IterationRecord], stopped: String) -> Summary {
    Summary {
        stopped,
        iterations: history.iter().filter(|r| r.iteration > 0).count(),
        live_ops: genotype.live_op_count(),
        edges_per_cell: genotype.cells.iter().map(|c| c.edges.len()).collect(),
        parameters: genotype.parameter_count(),
        estimated_memory_bytes: memory::estimate(genotype, genotype.channels, config.train.batch_size).total(),
        test_accuracy: None,
        test_loss: None,
        search_training_seconds: history.iter().map(|r| r.training_seconds).sum(),
        search_scoring_seconds: history.iter().map(|r| r.scoring_seconds).sum(),
        final_training_seconds: 0.0,
        final_training_peak_rss_bytes: None,
        final_training_peak_device_bytes: None,
        final_training_samples: 0,
        final_epochs: 0,
        run_seconds: 0.0,
        final_train_images_per_second: None,
    }
}

/// One iteration: train the supernet (none for iteration 0), then one mutation pass over every cell.
/// With `--inherit-weights`, `inherited` holds the tensors the previous phase trained (renamed for the genotype
/// its pass grew); the iteration starts from them and leaves its own there.
fn run_iteration(
    iteration: usize,
    config: &SearchConfig,
    splits: &SearchData,
    genotype: &mut Genotype,
    inherited: &mut Option<Vec<(String, tch::Tensor)>>,
    device: Device,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<IterationRecord> {
    let start = Instant::now();
    let mut last_epoch: Option<EpochReport> = None;
    let mut deadheaded = Vec::new();
    let mut images_per_second = None;
    let mut gate_open = Vec::new();
    let live_before = genotype.live_op_count();
    let phase = Phase::of_iteration(iteration);
    if phase != Phase::Premutation {
        crate::allocator::release_freed_blocks();
        let mut net = fresh_network(genotype, config, device, phase);
        if let Some(tensors) = inherited.as_deref() {
            inherit::inherit(&mut net, tensors);
        }
        observer.phase(phase, config.train.epochs);
        let train_seed = seed::derive(config.seed, Stream::BatchOrder, phase.seed_index());
        let reports = train::train(
            &mut net,
            &splits.search_train,
            Some(&splits.validation),
            &config.train,
            train_seed,
            observer,
        )
        .with_context(|| format!("{phase}"))?;
        let batches = splits.search_train.len() / config.train.batch_size.max(1);
        images_per_second = train::images_per_second(&reports, batches * config.train.batch_size);
        deadheaded = reports.iter().flat_map(|r| r.deadhead.killed.clone()).collect();
        last_epoch = reports.last().cloned();
        *genotype = net.genotype().clone();
        gate_open = net
            .gate_histories()
            .into_iter()
            .map(|(op, history)| GateOpen {
                op,
                open: history.total_open(),
            })
            .collect();
        if config.inherit_weights {
            *inherited = Some(net.named_tensors().into_iter().map(|(n, t)| (n, t.detach())).collect());
        }
    }
    let training_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    crate::allocator::release_freed_blocks();
    let (decisions, mutations) =
        mutate::mutation_pass(iteration, config, &splits.search_train, genotype, device, observer)?;
    if let Some(tensors) = inherited.take() {
        *inherited = Some(inherit::renamed_for_splits(tensors, &mutations));
    }
    let scoring_seconds = start.elapsed().as_secs_f64();
    let evaluation = last_epoch.as_ref().and_then(|r| r.eval);
    Ok(IterationRecord {
        iteration,
        validation_accuracy: evaluation.map(|e| e.accuracy),
        validation_loss: evaluation.map(|e| e.loss),
        train_loss: last_epoch.map(|r| r.train_loss),
        pruned_share: (phase != Phase::Premutation).then(|| deadheaded.len() as f64 / live_before.max(1) as f64),
        deadheaded,
        parameters: genotype.parameter_count(),
        memory: memory::estimate(genotype, genotype.channels, config.train.batch_size),
        memory_budget: config.memory_budget,
        live_ops: genotype.live_op_count(),
        edges_per_cell: genotype.cells.iter().map(|c| c.edges.len()).collect(),
        decisions,
        mutations,
        training_seconds,
        scoring_seconds,
        train_images_per_second: images_per_second,
        gate_open,
        plans: Vec::new(),
    })
}

/// The network of `genotype` with fresh PyTorch-default weights, seeded from the run's seed and `phase`, with the
/// phase's deadhead window.
pub(super) fn fresh_network(genotype: &Genotype, config: &SearchConfig, device: Device, phase: Phase) -> Supernet {
    let init_seed = seed::derive(config.seed, Stream::Init, phase.seed_index());
    let epochs = match phase {
        Phase::Final => config.final_train.epochs,
        Phase::Premutation | Phase::Search(_) => config.train.epochs,
    };
    let pruner = config.pruner_for(epochs);
    Supernet::builder(genotype)
        .seed(init_seed)
        .pruner(pruner)
        .device(device)
        .build()
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
}
