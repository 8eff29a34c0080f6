//! What the search writes down: one record per iteration, the checkpoint, and the final summary.

use super::budget::Plan;
use super::time_cost::SplitCost;
use crate::genotype::Genotype;
use crate::memory::MemoryEstimate;
use crate::metrics::CellDecision;
use crate::nn::pruner::GateHistory;
use crate::supernet::OpRef;
use crate::train::EpochReport;
use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Why a cell's chosen split was or was not applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    /// Cell index.
    pub cell: usize,
    /// Edge split (its id before the split).
    pub edge: u32,
    /// Source and target node of that edge.
    pub from: usize,
    /// Target node.
    pub to: usize,
    /// Estimated training memory after the split, in bytes.
    pub estimated_bytes: u64,
    /// Whether it was applied (false: it did not fit the memory budget, or was not worth its time).
    pub applied: bool,
    /// Under a time budget with `--split-gain`, what the split costs in final epochs and whether it pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<SplitCost>,
}

impl Mutation {
    /// Why it was not applied, in a few words; None when it was. A split that does not fit the memory budget is
    /// never timed, so a timed one that was refused was not worth its time.
    pub fn refusal(&self) -> Option<&'static str> {
        match (&self.applied, &self.time) {
            (true, _) => None,
            (false, Some(time)) if !time.worth => Some("not worth its time"),
            (false, _) => Some("no room"),
        }
    }
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// 0 for the mutation pass before the first training, then 1, 2, …
    pub iteration: usize,
    /// Validation accuracy of the supernet after this iteration's training (none for iteration 0).
    pub validation_accuracy: Option<f64>,
    /// Validation loss of the final head.
    pub validation_loss: Option<f64>,
    /// Mean training loss of the last epoch.
    pub train_loss: Option<f64>,
    /// Ops removed by deadheading during this iteration's training.
    pub deadheaded: Vec<OpRef>,
    /// The share of the live ops that deadheading removed during this iteration's training (none for iteration 0
    /// and for records written before it was kept).
    #[serde(default)]
    pub pruned_share: Option<f64>,
    /// Parameters of the genotype at the end of the iteration (width C).
    pub parameters: usize,
    /// Estimated training memory at the end of the iteration.
    pub memory: MemoryEstimate,
    /// The budget it is checked against, in bytes.
    pub memory_budget: u64,
    /// Live ops at the end of the iteration.
    pub live_ops: usize,
    /// Edges per cell at the end of the iteration.
    pub edges_per_cell: Vec<usize>,
    /// Candidates scored per cell (empty for the random strategy).
    pub decisions: Vec<CellDecision>,
    /// Splits chosen, applied or refused for memory.
    pub mutations: Vec<Mutation>,
    /// Seconds spent training the supernet.
    pub training_seconds: f64,
    /// Seconds spent choosing mutations (scoring).
    pub scoring_seconds: f64,
    /// Training images per second of this iteration's supernet (batches only; none for iteration 0).
    #[serde(default)]
    pub train_images_per_second: Option<f64>,
    /// Batches on which each live op's gate was open during this iteration's training, for `--final-ops`
    /// (empty for iteration 0 and for records written before it was kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_open: Vec<GateOpen>,
    /// The plans a time-budgeted run made after this iteration, as runs written before `plans.jsonl` kept them;
    /// read back and kept as they were, never written anew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<Plan>,
}

impl IterationRecord {
    /// The records of a `history.jsonl` text, one JSON object per non-blank line.
    pub fn parse_history(text: &str) -> anyhow::Result<Vec<IterationRecord>> {
        super::run_dir::parse_lines(text)
    }
}

/// How long one op's gate was open in a training phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateOpen {
    /// The op.
    #[serde(flatten)]
    pub op: OpRef,
    /// Batches on which its gate was open.
    pub open: u64,
}

/// Version of the checkpoint format.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// The state a search resumes from, written atomically after every iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format of this file.
    pub format: u32,
    /// Iterations finished (0 = the pre-training mutation pass is done).
    pub completed: usize,
    /// Iterations in a row that applied no mutation.
    pub stale: usize,
    /// Set when the search loop has ended, with the reason.
    pub stopped: Option<String>,
    /// Architecture after the last completed iteration.
    pub genotype: Genotype,
    /// Seed of the run, to detect a checkpoint that does not belong to its config.
    pub seed: u64,
    /// Wall seconds the run had spent when this was written, across every process that worked on it.
    #[serde(default)]
    pub elapsed_seconds: f64,
}

impl Checkpoint {
    /// The state before anything ran.
    pub fn start(genotype: Genotype, seed: u64) -> Self {
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            completed: 0,
            stale: 0,
            stopped: None,
            genotype,
            seed,
            elapsed_seconds: 0.0,
        }
    }

    /// Refuses a checkpoint read back that this version cannot resume: another format, an invalid genotype, or
    /// seconds that are not a finite, non-negative number.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.format != CHECKPOINT_FORMAT {
            anyhow::bail!(
                "checkpoint format {} is not the supported {}",
                self.format,
                CHECKPOINT_FORMAT
            );
        }
        if !(self.elapsed_seconds.is_finite() && self.elapsed_seconds >= 0.0) {
            anyhow::bail!("elapsed_seconds {} is not a duration", self.elapsed_seconds);
        }
        self.genotype.check().context("the checkpoint's genotype is invalid")
    }
}

/// Version of the final-training checkpoint format.
pub const FINAL_CHECKPOINT_FORMAT: u32 = 1;

/// `checkpoint/final.json`: the state of a final training after its last finished epoch, written atomically after
/// every epoch. Its tensors (weights and momentum) are in the file it names, written before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalCheckpoint {
    /// Format of this file.
    pub format: u32,
    /// Seed of the run, to detect a checkpoint that does not belong to its config.
    pub seed: u64,
    /// Epochs the final training was planned with.
    pub epochs: usize,
    /// The architecture after that epoch's deadhead.
    pub genotype: Genotype,
    /// Every live op's gate history.
    pub gates: Vec<GateRecord>,
    /// The reports of the epochs done, oldest first.
    pub reports: Vec<EpochReport>,
    /// Seconds of final training so far, across every process that worked on it.
    pub seconds: f64,
    /// The file in `checkpoint/` that holds the network's tensors and the optimiser's momentum.
    pub tensors: String,
}

impl FinalCheckpoint {
    /// Epochs finished.
    pub fn epochs_done(&self) -> usize {
        self.reports.len()
    }
}

/// One op's gate history in a final-training checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    /// The op.
    #[serde(flatten)]
    pub op: OpRef,
    /// Its gate-open counts.
    pub history: GateHistory,
}

/// `summary.json`: what the run found and how it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Why the search loop stopped.
    pub stopped: String,
    /// Search iterations completed.
    pub iterations: usize,
    /// Live ops of the final genotype.
    pub live_ops: usize,
    /// Edges per cell of the final genotype.
    pub edges_per_cell: Vec<usize>,
    /// Parameters of the final genotype.
    pub parameters: usize,
    /// Estimated training memory of the final genotype.
    pub estimated_memory_bytes: u64,
    /// Test accuracy after final training, if it ran.
    pub test_accuracy: Option<f64>,
    /// Test loss after final training, if it ran.
    pub test_loss: Option<f64>,
    /// Seconds of supernet training during the search.
    pub search_training_seconds: f64,
    /// Seconds of scoring during the search.
    pub search_scoring_seconds: f64,
    /// Seconds of final training.
    pub final_training_seconds: f64,
    /// Final-training epochs run (fewer than planned when a time budget ran out).
    #[serde(default)]
    pub final_epochs: usize,
    /// Wall seconds of the whole run, search and final training, across every process that worked on it.
    #[serde(default)]
    pub run_seconds: f64,
    /// Training images per second of the final training (batches only).
    #[serde(default)]
    pub final_train_images_per_second: Option<f64>,
    /// Training images each final epoch trained on (0 without final training).
    #[serde(default)]
    pub final_training_samples: usize,
    /// Peak resident memory of the whole process during final training, data and runtime included (CPU runs on
    /// Linux only).
    #[serde(default)]
    pub final_training_peak_rss_bytes: Option<u64>,
    /// Peak device memory held by tensors during final training, from libtorch's caching allocator (CUDA runs
    /// only); compare with `estimated_memory_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_training_peak_device_bytes: Option<u64>,
}
