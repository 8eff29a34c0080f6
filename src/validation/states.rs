//! Real search states, and every candidate split of every cell in them scored and continued. A seed's states are
//! the search's own trajectory: the minimal genotype, the mutation pass before training (when the profile has it),
//! then per iteration the supernet trained with deadheading (a state) and the published rule's mutation pass.

use super::continuation::Continuation;
use super::records::{BaselineRecord, CandidateRecord, Records};
use super::{ValidationConfig, ValidationObserver};
use crate::data::Dataset;
use crate::genotype::Genotype;
use crate::metrics::candidate::Candidate;
use crate::metrics::score::Scorer;
use crate::metrics::zero_cost::{self, MetricName, Probe};
use crate::metrics::{CandidateReport, DecisionRule, NtkMode};
use crate::search::{
    Mutation, Phase, SearchConfig, SearchData, SearchObserver, fresh_network, mutation_pass, search_data,
};
use crate::seed::{self, Stream};
use crate::train::{self, Checkpointing, Silent, TrainObserver};
use tch::{Device, Tensor};

/// The search's own progress is not shown: the harness reports per candidate.
struct Quiet;
impl TrainObserver for Quiet {}
impl SearchObserver for Quiet {}

/// Builds every state of `seed`'s search and measures what `records` lacks of it.
pub(super) fn measure_seed(
    config: &ValidationConfig,
    seed: u64,
    data: &Dataset,
    device: Device,
    records: &mut Records,
    observer: &mut dyn ValidationObserver,
) -> anyhow::Result<()> {
    let search = config.search(seed);
    let splits = search_data(data, &search);
    let mut genotype = data.minimal_genotype(config.reductions, config.channels, search.op_set)?;
    // The search's own mutation pass after `iteration` (0: before training), unbudgeted.
    let grow = |iteration: usize, genotype: &mut Genotype| {
        mutation_pass(
            iteration,
            &search,
            None,
            &splits.search_train,
            genotype,
            device,
            &mut Quiet,
        )
    };
    if search.premutate {
        grow(0, &mut genotype)?;
    }
    for state in 1..=config.states {
        let trained = match records.saved_state(seed, state)? {
            Some((saved_genotype, tensors)) => {
                genotype = saved_genotype;
                tensors
            }
            None => {
                let phase = Phase::Search(state);
                let mut net = fresh_network(&genotype, &search, device, phase);
                let order_seed = seed::derive(seed, Stream::BatchOrder, phase.seed_index());
                train::train(
                    &mut net,
                    &splits.search_train,
                    None,
                    &search.train,
                    order_seed,
                    &mut Silent,
                    Checkpointing::default(),
                )?;
                genotype = net.genotype().clone();
                let tensors: Vec<(String, Tensor)> =
                    net.named_tensors().into_iter().map(|(n, t)| (n, t.detach())).collect();
                records.save_state(seed, state, &genotype, &tensors)?;
                tensors
            }
        };
        let at = State {
            config,
            search: &search,
            splits: &splits,
            seed,
            state,
            genotype: &genotype,
            trained: &trained,
            device,
        };
        at.measure(records, observer)?;
        if state < config.states {
            grow(state, &mut genotype)?;
        }
    }
    Ok(())
}

/// One trained state of one search.
struct State<'a> {
    config: &'a ValidationConfig,
    search: &'a SearchConfig,
    splits: &'a SearchData,
    seed: u64,
    state: usize,
    genotype: &'a Genotype,
    trained: &'a [(String, Tensor)],
    device: Device,
}

impl State<'_> {
    /// Every candidate of the state: (cell, edge).
    fn candidates(&self) -> Vec<(usize, u32)> {
        self.genotype
            .cells
            .iter()
            .enumerate()
            .flat_map(|(k, cell)| cell.edges.iter().map(move |e| (k, e.id)))
            .collect()
    }

    fn measure(&self, records: &mut Records, observer: &mut dyn ValidationObserver) -> anyhow::Result<()> {
        let candidates = self.candidates();
        observer.state(self.seed, self.state, candidates.len());
        if candidates
            .iter()
            .any(|&(cell, edge)| records.candidate(self.seed, self.state, cell, edge).is_none())
        {
            for record in self.score()? {
                if records
                    .candidate(self.seed, self.state, record.cell, record.edge)
                    .is_none()
                {
                    records.put_candidate(record)?;
                }
            }
        }
        let continuation = Continuation {
            search: self.search,
            train: &self.splits.search_train,
            validation: &self.splits.validation,
            epochs: self.config.continuation_epochs,
            schedule: self.config.continuation_schedule,
            samples: self.config.continuation_samples,
            device: self.device,
        };
        for replicate in 0..self.config.replicates {
            if records.baseline(self.seed, self.state, replicate).is_none() {
                let evaluation = continuation.evaluate(self.genotype, self.trained, None, replicate)?;
                records.add_baseline(BaselineRecord {
                    seed: self.seed,
                    state: self.state,
                    replicate,
                    accuracy: evaluation.accuracy,
                    loss: evaluation.loss,
                })?;
            }
            for &(cell, edge) in &candidates {
                let mut record = records
                    .candidate(self.seed, self.state, cell, edge)
                    .expect("scored above")
                    .clone();
                if record.accuracies.len() > replicate {
                    continue;
                }
                let split = Candidate::split(self.genotype, cell, edge)?;
                let parent = self.genotype.cells[cell]
                    .edge(edge)
                    .expect("a candidate is an edge of its cell");
                let mutation = Mutation {
                    cell,
                    edge,
                    from: parent.from,
                    to: parent.to,
                    estimated_bytes: 0,
                    applied: true,
                    time: None,
                };
                let evaluation = continuation.evaluate(&split.on, self.trained, Some(&mutation), replicate)?;
                record.accuracies.push(evaluation.accuracy);
                record.losses.push(evaluation.loss);
                observer.measured(&record);
                records.put_candidate(record)?;
            }
        }
        Ok(())
    }

    /// Every candidate scored by every metric, with the published rule's score among its cell's candidates. The
    /// scorer is the one the search's mutation pass after this state uses (same seed, same inputs).
    fn score(&self) -> anyhow::Result<Vec<CandidateRecord>> {
        let scorer = Scorer::new(
            &self.splits.search_train,
            self.search.metrics.clone(),
            seed::derive(self.seed, Stream::Metrics, self.state as u64),
            self.device,
        );
        let probe = Probe {
            scorer: &scorer,
            width: None,
            recipe: &self.search.train,
        };
        let mut wanted = self.config.metrics.clone();
        wanted.extend(super::ALWAYS_SCORED);
        let metrics = zero_cost::metrics_for(&wanted);
        let off = zero_cost::measure(&metrics, self.genotype, &probe)?;
        let mut all = Vec::new();
        for cell in 0..self.genotype.cells.len() {
            let mut records = Vec::new();
            for edge in self.genotype.cells[cell].edges.iter().map(|e| e.id) {
                let on = Candidate::split(self.genotype, cell, edge)?.on;
                let signals = zero_cost::signals(&zero_cost::measure(&metrics, &on, &probe)?, &off);
                records.push(CandidateRecord {
                    seed: self.seed,
                    state: self.state,
                    cell,
                    edge,
                    signals,
                    published_score: None,
                    accuracies: Vec::new(),
                    losses: Vec::new(),
                });
            }
            let decision: Vec<&CandidateRecord> = records.iter().collect();
            let scores = rule_scores(&decision, &DecisionRule::Published, self.search.metrics.ntk_mode);
            for (record, score) in records.iter_mut().zip(scores) {
                record.published_score = score;
            }
            all.extend(records);
        }
        Ok(all)
    }
}

/// The score of each of one decision's candidates under `rule` (lower is better; None where the rule refuses
/// it), from their signals, through the search's own [`DecisionRule::choose`].
pub(super) fn rule_scores(records: &[&CandidateRecord], rule: &DecisionRule, mode: NtkMode) -> Vec<Option<f64>> {
    let signal = |r: &CandidateRecord, name| r.signals.get(&name).copied().unwrap_or(f64::NAN);
    let mut reports: Vec<CandidateReport> = records
        .iter()
        .map(|r| {
            let (r_ntk, r_lrc) = (signal(r, mode.metric()), signal(r, MetricName::Regions));
            CandidateReport::from_signals(r.cell, r.edge, r_ntk, r_lrc, r.signals.clone())
        })
        .collect();
    rule.choose(&mut reports, mode);
    reports
        .into_iter()
        .map(|r| if r.accepted() { r.score } else { None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(edge: u32, r_ntk: f64, r_lrc: f64) -> CandidateRecord {
        CandidateRecord {
            seed: 0,
            state: 1,
            cell: 0,
            edge,
            signals: [(MetricName::NtkSound, r_ntk), (MetricName::Regions, r_lrc)].into(),
            published_score: None,
            accuracies: Vec::new(),
            losses: Vec::new(),
        }
    }

    #[test]
    fn rule_scores_are_the_searchs_decisions_over_the_recorded_signals() {
        let records = [record(1, -1.0, 0.25), record(2, 0.3, 0.9), record(3, 0.0, 0.75)];
        let decision: Vec<&CandidateRecord> = records.iter().collect();
        let scores = rule_scores(&decision, &DecisionRule::Published, NtkMode::Sound);
        assert_eq!(scores, vec![Some(0.5), None, Some(0.5)]);
        assert_eq!(
            rule_scores(&decision, &DecisionRule::Published, NtkMode::Faithful),
            vec![None, None, None],
            "no faithful κ measured"
        );
        let ranked = DecisionRule::parse("ntk_sound+regions").unwrap();
        assert_eq!(
            rule_scores(&decision, &ranked, NtkMode::Sound),
            vec![Some(2.0), Some(2.0), Some(2.0)],
            "κ ranks 1, 3, 2 and regions 3, 1, 2: every mean rank is 2"
        );
    }
}
