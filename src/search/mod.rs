//! The SpiderNet search loop (docs/ALGORITHM.md §1): train with deadheading, grow each cell by the
//! best train-free-scored split that fits the memory budget, re-initialise, repeat; then train the result from
//! scratch. A run starts and resumes in one place, [`Run`].

pub mod budget;
mod discretize;
mod final_training;
mod inherit;
mod iteration;
mod mutate;
mod planning;
pub mod record;
mod run;
mod run_dir;
mod run_lock;
mod settings;
mod state;
pub mod time_cost;

pub use discretize::Discretized;
pub use final_training::{Deadline, FinalOutcome, FinalRun, Rescheduling, final_training};
pub(crate) use inherit::{inherit, renamed_for_splits};
pub(crate) use iteration::{SearchData, fresh_network, search_data};
pub use mutate::Strategy;
pub(crate) use mutate::mutation_pass;
pub use record::{Checkpoint, GateOpen, IterationRecord, Mutation, Summary};
pub use run::{Run, TrainingFolder};
pub use run_dir::RunDir;
pub use run_lock::RunLock;
pub use settings::{DeadheadWindow, Profile, SearchConfig};

use crate::data::Dataset;
use crate::metrics::{CandidateReport, SkippedCandidate};
use crate::seed;
use crate::train::TrainObserver;
use iteration::Ground;
use state::Loop;
use tch::Device;

/// The file of a run folder that holds the genotype the search found and handed to the final training (after
/// `--final-ops`): `spidernet train` on it with the run's seed and settings retrains the run's final network.
pub const FOUND_GENOTYPE_FILE: &str = "found-genotype.json";

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

/// Runs the search of `run` on `data` to its end: iterations of supernet training and growth until the loop stops,
/// then the final training of the network found. Called through [`Run::search`].
fn run(run: &mut Run, data: &Dataset, device: Device, observer: &mut dyn SearchObserver) -> anyhow::Result<Summary> {
    let mut state = Loop::open(run, data)?;
    state.begin(device, observer)?;
    while state.checkpoint.stopped.is_none() {
        let iteration = state.next_iteration();
        observer.iteration_started(iteration);
        let trained = state.checkpoint.genotype.clone();
        let ground = Ground {
            config: &state.settings,
            splits: &state.splits,
            device,
            planned_final_epochs: state.planned_final_epochs(),
        };
        let genotype = &mut state.checkpoint.genotype;
        let record = iteration::run_iteration(iteration, &ground, genotype, &mut state.inherited, observer)?;
        state.finish_iteration(record, &trained, observer)?;
    }
    let reason = state.checkpoint.stopped.clone().unwrap_or_default();
    observer.stopped(&reason);
    let (found, discretized) = state.found_network()?;
    let deadline = state.before_final(&found, observer)?;
    let mut summary = iteration::search_summary(&state.checkpoint.genotype, &state.settings, &state.history, reason);
    summary.run_seconds = state.spent();
    if state.settings.final_training {
        if let Some((keep, outcome)) = &discretized {
            observer.discretized(*keep, outcome);
        }
        let final_run = FinalRun {
            config: &state.settings,
            data,
            device,
            deadline,
            inherited: state.inherited.as_deref(),
            evaluate_each_epoch: false,
        };
        let schedule = final_training::train_final(&mut summary, &found, state.dir, &final_run, observer)?;
        summary.run_seconds = state.checkpoint.elapsed_seconds + summary.final_training_seconds;
        state.after_final(schedule, observer)?;
    }
    state.dir.save_summary(&summary)?;
    state.dir.remove_final_checkpoint()?;
    Ok(summary)
}
