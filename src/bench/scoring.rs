//! Workload (c): seconds to score one candidate split through the search's own scorer, alone and as one of a
//! cell's candidates.

use super::genotypes::{SCORED_CELL, scored_candidate};
use super::stats::{self, Measurement};
use super::{BenchConfig, inputs};
use crate::metrics::score::Scorer;
use crate::system::memory_probe::MemoryWindow;

/// Random 28×28 training images the scorer draws its NTK batches and LRC crops from.
const POOL: usize = 1000;

/// Seconds of `Scorer::score_candidate` for splitting the first edge of cell 1 of the minimal genotype: both
/// thin networks built, then every repeat (re-initialisation, NTK per-sample backward passes of the on and off
/// networks, LRC forward passes of both). The scorer draws its inputs when it is made, outside the timing.
pub fn scoring(config: &BenchConfig) -> anyhow::Result<Measurement> {
    score_timed(config, "c-score-candidate", |scorer, genotype, edge| {
        scorer.score_candidate(genotype, SCORED_CELL, edge).map(|_| ())
    })
}

/// Seconds per candidate when every edge of cell 1 of the minimal genotype is scored, as a cell decision
/// does: one baseline measurement of the current network, then each split's "on" networks; the total over the
/// cell's edges, baseline included.
pub fn scoring_in_cell(config: &BenchConfig) -> anyhow::Result<Measurement> {
    let (genotype, _) = scored_candidate();
    let edges: Vec<u32> = genotype.cells[SCORED_CELL].edges.iter().map(|e| e.id).collect();
    let mut result = score_timed(config, "c-score-in-cell", |scorer, genotype, _| {
        let baseline = scorer.baseline(genotype)?;
        for &edge in &edges {
            scorer.score_against(&baseline, SCORED_CELL, edge)?;
        }
        Ok(())
    })?;
    result.scale(1.0 / edges.len() as f64);
    Ok(result)
}

fn score_timed(
    config: &BenchConfig,
    name: &str,
    score: impl Fn(&Scorer, &crate::genotype::Genotype, u32) -> anyhow::Result<()>,
) -> anyhow::Result<Measurement> {
    let window = MemoryWindow::start(config.device);
    let (genotype, edge) = scored_candidate();
    let pool = inputs::random_split(genotype.input, genotype.classes, POOL, 3);
    let scorer = Scorer::new(&pool, config.metrics.clone(), 0, config.device);
    let mut failure = None;
    let seconds = stats::timed(config.repeats, config.device, || {
        if let Err(error) = score(&scorer, &genotype, edge) {
            failure.get_or_insert(error);
        }
    });
    if let Some(error) = failure {
        return Err(error.context(format!("scoring edge {edge} of cell {SCORED_CELL}")));
    }
    let mut result = Measurement::new(name, "s", seconds, config.threads);
    result.edges = Some(genotype.edge_count() + 2);
    result.batch = Some(config.metrics.ntk_batch_size);
    Ok(result.with_memory(window))
}
