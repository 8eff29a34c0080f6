//! Workload (c): seconds to score one candidate split through the search's own scorer.

use super::genotypes::{SCORED_CELL, scored_candidate};
use super::stats::{self, Measurement};
use super::{BenchConfig, inputs};
use crate::metrics::score::Scorer;

/// Random 28×28 training images the scorer draws its NTK batches and LRC crops from.
const POOL: usize = 1000;

/// Seconds of `Scorer::score_candidate` for splitting the first edge of cell 1 of the minimal genotype: both
/// thin networks built, then every repeat (re-initialisation, NTK per-sample backward passes of the on and off
/// networks, LRC forward passes of both). The scorer draws its inputs when it is made, outside the timing.
pub fn scoring(config: &BenchConfig) -> anyhow::Result<Measurement> {
    let window = stats::memory_window();
    let (genotype, edge) = scored_candidate();
    let pool = inputs::random_split(genotype.input, genotype.classes, POOL, 3);
    let scorer = Scorer::new(&pool, config.metrics.clone(), 0, config.device);
    let mut failure = None;
    let seconds = stats::timed(config.repeats, config.device, || {
        if let Err(error) = scorer.score_candidate(&genotype, SCORED_CELL, edge) {
            failure.get_or_insert(error);
        }
    });
    if let Some(error) = failure {
        return Err(error.context(format!("scoring edge {edge} of cell {SCORED_CELL}")));
    }
    let mut result = Measurement::new("c-score-candidate", "s", seconds, config.threads);
    result.edges = Some(genotype.edge_count() + 2);
    result.batch = Some(config.metrics.ntk_batch_size);
    Ok(result.with_memory(window))
}
