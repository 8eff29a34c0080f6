//! One mutation pass: for each cell in turn, choose a split (scored or random) and apply it if the network
//! still fits the memory budget and, under a time budget with `--split-gain`, if the split is worth the final
//! epochs its slower steps cost.

use super::SearchObserver;
use super::record::Mutation;
use super::settings::SearchConfig;
use super::time_cost::{self, SplitCost};
use crate::data::Split;
use crate::genotype::Genotype;
use crate::metrics::CandidateEvent;
use crate::metrics::CellDecision;
use crate::metrics::score::Scorer;
use crate::metrics::zero_cost::{NetworkMetric, Probe, TimePerImage};
use crate::seed::{self, Stream};
use crate::train::Interrupted;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tch::Device;

/// How a cell's split is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Train-free scoring by NTK condition number and linear regions (docs/ALGORITHM.md §7).
    Spidernet,
    /// A uniformly random edge per cell, no scoring (the baseline of docs/ALGORITHM.md §13.10).
    Random,
    /// No growth: the initial genotype goes straight to the final training (a baseline).
    #[serde(rename = "none")]
    Unchanged,
}

impl std::fmt::Display for Strategy {
    /// The name the command line takes (`--strategy spidernet`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::Spidernet => "spidernet",
            Strategy::Random => "random",
            Strategy::Unchanged => "none",
        })
    }
}

/// Times a training step of `current` and of `grown` (the search recipe's batch, at the genotypes' own width) and
/// weighs the slowdown against `gain`, with the final epochs of the plan in force, if any. Timings differ from rank
/// to rank, so in a process group every rank measures and rank 0's verdict is everyone's.
fn split_cost(
    scorer: &Scorer,
    config: &SearchConfig,
    planned: Option<usize>,
    (current, grown): (&Genotype, &Genotype),
    gain: f64,
) -> anyhow::Result<SplitCost> {
    let probe = Probe {
        scorer,
        width: None,
        recipe: &config.train,
    };
    let seconds = |genotype: &Genotype| -> anyhow::Result<f64> { Ok(TimePerImage.measure(genotype, &probe, 0)?[0]) };
    let (before, after) = (seconds(current)?, seconds(grown)?);
    crate::distributed::group().decide(time_cost::weigh(before, after, planned, gain))
}

/// Chooses and applies at most one split per cell, cells in order so that cell k+1 sees cell k's split.
/// `planned_final_epochs` are those of the time budget's plan in force, if one was made.
pub fn mutation_pass(
    iteration: usize,
    config: &SearchConfig,
    planned_final_epochs: Option<usize>,
    train: &Split,
    genotype: &mut Genotype,
    device: Device,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<(Vec<CellDecision>, Vec<Mutation>)> {
    let round = iteration as u64;
    let scorer = (config.strategy == Strategy::Spidernet).then(|| {
        Scorer::new(
            train,
            config.metrics.clone(),
            seed::derive(config.seed, Stream::Metrics, round),
            device,
        )
        .with_memory_allowance(config.memory_budget)
        .with_recipe(config.train.clone())
    });
    let mut decisions = Vec::new();
    let mut mutations = Vec::new();
    for cell in 0..genotype.cells.len() {
        let chosen = match &scorer {
            Some(scorer) => {
                let mut seen = |event: CandidateEvent| {
                    match event {
                        CandidateEvent::Scored(report) => observer.candidate(report),
                        CandidateEvent::Skipped(skip) => observer.candidate_skipped(skip),
                    }
                    // Every rank sees the same candidates in the same order: they agree on a stop here.
                    if crate::distributed::group().any(observer.interrupted())? {
                        return Err(Interrupted.into());
                    }
                    Ok(())
                };
                let decision = scorer.decide(genotype, cell, round, &mut seen)?;
                let chosen = decision.chosen;
                decisions.push(decision);
                chosen
            }
            None if config.strategy == Strategy::Unchanged => None,
            None => {
                let edges = &genotype.cells[cell].edges;
                let mut rng = seed::rng(config.seed, Stream::Candidates, seed::candidate_walk(round, cell));
                edges.get(rng.random_range(0..edges.len())).map(|e| e.id)
            }
        };
        let Some(edge) = chosen else { continue };
        let parent = genotype.cells[cell].edge(edge).expect("chosen from this cell").clone();
        let mut grown = genotype.clone();
        grown.cells[cell].split(edge)?;
        let estimated_bytes = config.memory_of(&grown).total();
        let fits = estimated_bytes <= config.memory_budget;
        let time = match (&scorer, config.weighed_split_gain()) {
            (Some(scorer), Some(gain)) if fits => Some(split_cost(
                scorer,
                config,
                planned_final_epochs,
                (genotype, &grown),
                gain,
            )?),
            _ => None,
        };
        let applied = fits && time.as_ref().is_none_or(|t| t.worth);
        if applied {
            *genotype = grown;
        }
        mutations.push(Mutation {
            cell,
            edge,
            from: parent.from,
            to: parent.to,
            estimated_bytes,
            applied,
            time,
        });
    }
    Ok((decisions, mutations))
}
