//! Fixed, seeded benchmark workloads (docs/PERFORMANCE.md): (a) supernet training and (b) evaluation throughput,
//! (c) scoring one candidate, (d) one search iteration, each with its peak memory. `bench/twin.py` runs the same
//! workloads in PyTorch from the files `write_files` leaves, so that one run measures the ratio.

mod evaluation;
mod files;
mod genotypes;
mod inputs;
mod memory;
mod ops;
mod scoring;
mod search_iteration;
mod stats;
mod training;

pub use evaluation::evaluation;
pub use files::write_files;
pub use genotypes::{GROWN_SPLITS, SCORED_CELL, grown_genotype, initial_genotype, scored_candidate};
pub use memory::{
    MEMORY_INPUT, MEMORY_SPLITS, MEMORY_STEPS, MemoryRow, SEARCH_BUDGET_FACTORS, SearchMemoryRow, compare_estimates,
    compare_search_budgets, probe, probe_search, search_budgets, search_probe_config,
};
pub use ops::{EDGE_SHAPES, EdgeShape, op_timings, op_workload};
pub use scoring::{scoring, scoring_in_cell};
pub use search_iteration::search_iteration;
pub use stats::{Measurement, median};
pub use training::training;

use crate::metrics::MetricsConfig;
use crate::search::{Profile, SearchConfig};
use tch::Device;

/// One of the four workloads, named by its letter on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// (a) Training throughput of the initial and the grown genotype.
    Train,
    /// (b) Evaluation throughput of the same genotypes.
    Eval,
    /// (c) Seconds to score one candidate with the reference's metric settings.
    Score,
    /// (d) Seconds for one search iteration on a Fashion-MNIST subset.
    Search,
    /// (e) Milliseconds per forward and backward pass of each op alone, at every edge shape.
    Ops,
}

impl Workload {
    /// Parses a letter `a`, `b`, `c` or `d`.
    pub fn parse(letter: &str) -> Result<Workload, String> {
        match letter.trim() {
            "a" => Ok(Workload::Train),
            "b" => Ok(Workload::Eval),
            "c" => Ok(Workload::Score),
            "d" => Ok(Workload::Search),
            "e" => Ok(Workload::Ops),
            other => Err(format!(
                "--workload {other}: not a workload; use a (training), b (evaluation), c (scoring), d (search \
                 iteration) or e (each op alone), comma-separated"
            )),
        }
    }
}

/// Sizes and settings shared by every workload; `bench/twin.py` reads them from `bench.json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchConfig {
    /// Timed repeats per workload; medians are over these.
    pub repeats: usize,
    /// Training steps (or evaluation passes) per repeat of (a) and (b).
    pub steps: usize,
    /// Untimed steps (or passes) before the first repeat.
    pub warmup: usize,
    /// Training batch size of (a).
    pub batch: usize,
    /// Evaluation batch size of (b).
    pub eval_batch: usize,
    /// libtorch intra-op threads.
    pub threads: usize,
    /// Metric settings of (c): the reference profile's, or tiny ones with `quick`.
    pub metrics: MetricsConfig,
    /// Training images of the search iteration (d).
    pub search_samples: usize,
    /// Tiny sizes for tests, not for measurements.
    pub quick: bool,
    /// Where the networks run.
    #[serde(skip)]
    pub device: Device,
}

impl BenchConfig {
    /// The benchmark's settings: batch 64 for training, 256 for evaluation, 3 warm-up steps, the reference
    /// profile's metrics; `quick` shrinks every size so that a test runs in seconds.
    pub fn new(repeats: usize, steps: usize, threads: usize, quick: bool, device: Device) -> Self {
        let reference = SearchConfig::new(Profile::Reference, "fashion-mnist", 2, 16, 0).metrics;
        if quick {
            BenchConfig {
                repeats,
                steps: 1,
                warmup: 1,
                batch: 8,
                eval_batch: 16,
                threads,
                metrics: MetricsConfig {
                    repeats: 1,
                    ntk_batches: 1,
                    ntk_batch_size: 4,
                    lrc_batches: 1,
                    lrc_batch_size: 100,
                    ..reference
                },
                search_samples: 128,
                quick,
                device,
            }
        } else {
            BenchConfig {
                repeats,
                steps,
                warmup: 3,
                batch: 64,
                eval_batch: 256,
                threads,
                metrics: reference,
                search_samples: 1000,
                quick,
                device,
            }
        }
    }
}

/// Runs the chosen workloads in the order a, b, c, d, e (initial genotype before grown) and hands each result to
/// `emit` as soon as it is measured.
pub fn run(config: &BenchConfig, workloads: &[Workload], emit: &mut dyn FnMut(&Measurement)) -> anyhow::Result<()> {
    let wants = |w: Workload| workloads.contains(&w);
    let genotypes = [("initial", initial_genotype()), ("grown", grown_genotype())];
    if wants(Workload::Train) {
        for (name, genotype) in &genotypes {
            emit(&training(name, genotype, config)?);
        }
    }
    if wants(Workload::Eval) {
        for (name, genotype) in &genotypes {
            emit(&evaluation(name, genotype, config));
        }
    }
    if wants(Workload::Score) {
        emit(&scoring(config)?);
        emit(&scoring_in_cell(config)?);
    }
    if wants(Workload::Search) {
        let scratch = std::env::temp_dir().join(format!("spidernet-bench-{}", std::process::id()));
        let result = search_iteration(config, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        emit(&result?);
    }
    if wants(Workload::Ops) {
        for result in op_timings(config) {
            emit(&result);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_letters_parse_and_unknown_ones_are_named() {
        assert_eq!(Workload::parse("a"), Ok(Workload::Train));
        assert_eq!(Workload::parse(" d"), Ok(Workload::Search));
        assert!(
            Workload::parse("x")
                .unwrap_err()
                .contains("--workload x: not a workload")
        );
    }

    #[test]
    fn the_benchmark_scores_with_the_reference_profile() {
        let config = BenchConfig::new(5, 10, 2, false, Device::Cpu);
        assert_eq!(config.metrics, MetricsConfig::default());
        assert_eq!((config.batch, config.eval_batch), (64, 256));
        assert!(BenchConfig::new(1, 1, 1, true, Device::Cpu).metrics.ntk_batch_size < 64);
    }
}
