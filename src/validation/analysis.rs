//! The harness's statistics: how well each metric's signal, and each decision rule, ranks the candidates by their
//! measured gain, against the noise floor of the gains themselves. Gains and pick gains are in accuracy (a
//! fraction); every interval is a 95 % percentile bootstrap.

use super::ValidationConfig;
use super::records::{CandidateRecord, Records};
use super::states::rule_scores;
use crate::metrics::DecisionRule;
use crate::metrics::zero_cost::{Better, MetricName};
use crate::stats::{Interval, bootstrap_interval, grouped_kendall_tau, kendall_tau, spearman_rho};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// How reproducible the ground truth is.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Noise {
    /// Continuations per candidate.
    pub replicates: usize,
    /// Standard deviation of one replicate's gain around its candidate's mean gain, pooled over candidates (needs
    /// two replicates).
    pub replicate_std: Option<f64>,
    /// Standard deviation of the candidates' mean gains: the differences there are to find.
    pub candidate_std: Option<f64>,
    /// Kendall τ of replicate 0's gains with replicate 1's, over all candidates: the most any metric can reach.
    pub retest_tau: Option<f64>,
    /// Its interval.
    pub retest_tau_interval: Option<Interval>,
    /// The same within decisions.
    pub retest_decision_tau: Option<f64>,
    /// Its interval.
    pub retest_decision_tau_interval: Option<Interval>,
}

/// How well one ranking of the candidates predicts their gain: over all candidates, and within each decision (the
/// candidates of one cell of one state, which is all a rule ever compares).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ranking {
    /// Kendall τ-b of the ranking with the mean gain, over all candidates (metrics only: a rule's scores are
    /// relative to their decision).
    pub tau: Option<f64>,
    /// Its interval, resampling candidates.
    pub tau_interval: Option<Interval>,
    /// Spearman ρ over all candidates.
    pub rho: Option<f64>,
    /// Its interval, resampling candidates.
    pub rho_interval: Option<Interval>,
    /// Kendall τ over the pairs within a decision.
    pub decision_tau: Option<f64>,
    /// Its interval, resampling decisions.
    pub decision_tau_interval: Option<Interval>,
    /// Mean over decisions of the gain of the candidate ranked first, minus the decision's mean gain (what the
    /// choice adds over a random split).
    pub pick_gain: Option<f64>,
    /// Its interval, resampling decisions.
    pub pick_gain_interval: Option<Interval>,
}

/// One metric used as a rule on its own: its signal, oriented so that higher is better.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricResult {
    /// The metric.
    pub metric: MetricName,
    /// Which direction of its signal is good.
    pub better: Better,
    /// How its ranking predicts the gain.
    #[serde(flatten)]
    pub ranking: Ranking,
}

/// A decision rule that combines metrics.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RuleResult {
    /// The rule's name.
    pub rule: String,
    /// What it does.
    pub description: String,
    /// How its ranking predicts the gain (within decisions).
    #[serde(flatten)]
    pub ranking: Ranking,
}

/// Everything the harness concludes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Analysis {
    /// Candidates with every replicate measured.
    pub candidates: usize,
    /// Decisions (cells of states) they fall into.
    pub decisions: usize,
    /// Mean gain over all candidates.
    pub mean_gain: Option<f64>,
    /// Mean over decisions of the best candidate's gain minus the decision's mean: what a perfect rule would add.
    pub oracle_pick_gain: Option<f64>,
    /// The noise floor.
    pub noise: Noise,
    /// Each metric as a rule on its own.
    pub metrics: Vec<MetricResult>,
    /// The rules that combine metrics.
    pub rules: Vec<RuleResult>,
}

/// The candidates with their mean gains and decision groups, ready for statistics.
struct Table<'a> {
    candidates: Vec<&'a CandidateRecord>,
    /// Per candidate, the gain of each replicate.
    replicate_gains: Vec<Vec<f64>>,
    /// Per candidate, the mean gain.
    gains: Vec<f64>,
    /// Per candidate, its decision's index.
    groups: Vec<usize>,
    /// Per decision, its candidates' indices.
    members: Vec<Vec<usize>>,
}

impl<'a> Table<'a> {
    fn new(records: &'a Records, replicates: usize) -> Table<'a> {
        let measured = records.gains(replicates);
        let mut index: BTreeMap<(u64, usize, usize), usize> = BTreeMap::new();
        let mut groups = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, (candidate, _)) in measured.iter().enumerate() {
            let next = index.len();
            let group = *index.entry(candidate.decision()).or_insert(next);
            if group == members.len() {
                members.push(Vec::new());
            }
            members[group].push(i);
            groups.push(group);
        }
        let gains = measured
            .iter()
            .map(|(_, g)| g.iter().sum::<f64>() / g.len().max(1) as f64)
            .collect();
        let (candidates, replicate_gains) = measured.into_iter().unzip();
        Table {
            candidates,
            replicate_gains,
            gains,
            groups,
            members,
        }
    }

    /// The items of `drawn` decisions, as (values, gains, groups) with each draw its own group.
    fn within(&self, drawn: &[usize], values: &[f64], gains: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for (draw, &decision) in drawn.iter().enumerate() {
            for &i in &self.members[decision] {
                out.0.push(values[i]);
                out.1.push(gains[i]);
                out.2.push(draw);
            }
        }
        out
    }

    /// Mean over `decisions` of the gain of the candidate with the highest value (the first on ties; a value of
    /// −∞ everywhere means no split, gain 0), minus the decision's mean gain.
    fn pick_gain(&self, decisions: &[usize], values: &[f64]) -> Option<f64> {
        let picks: Vec<f64> =
            decisions
                .iter()
                .filter_map(|&d| {
                    let members = &self.members[d];
                    let mean = members.iter().map(|&i| self.gains[i]).sum::<f64>() / members.len() as f64;
                    let best = members.iter().copied().filter(|&i| !values[i].is_nan()).fold(
                        None,
                        |best: Option<usize>, i| match best {
                            Some(b) if values[b] >= values[i] => Some(b),
                            _ => Some(i),
                        },
                    )?;
                    let picked = if values[best] == f64::NEG_INFINITY {
                        0.0
                    } else {
                        self.gains[best]
                    };
                    Some(picked - mean)
                })
                .collect();
        (!picks.is_empty()).then(|| picks.iter().sum::<f64>() / picks.len() as f64)
    }

    fn ranking(&self, values: &[f64], pooled: bool, resamples: usize, rng: &mut ChaCha8Rng) -> Ranking {
        let n = self.candidates.len();
        let decisions: Vec<usize> = (0..self.members.len()).collect();
        let by_candidates = |statistic: fn(&[f64], &[f64]) -> Option<f64>, rng: &mut ChaCha8Rng| {
            bootstrap_interval(n, resamples, rng, |drawn| {
                let (v, g): (Vec<f64>, Vec<f64>) = drawn.iter().map(|&i| (values[i], self.gains[i])).unzip();
                statistic(&v, &g)
            })
        };
        let mut ranking = Ranking::default();
        if pooled {
            ranking.tau = kendall_tau(values, &self.gains);
            ranking.tau_interval = by_candidates(kendall_tau, rng);
            ranking.rho = spearman_rho(values, &self.gains);
            ranking.rho_interval = by_candidates(spearman_rho, rng);
        }
        ranking.decision_tau = grouped_kendall_tau(values, &self.gains, &self.groups);
        ranking.decision_tau_interval = bootstrap_interval(decisions.len(), resamples, rng, |drawn| {
            let (v, g, groups) = self.within(drawn, values, &self.gains);
            grouped_kendall_tau(&v, &g, &groups)
        });
        ranking.pick_gain = self.pick_gain(&decisions, values);
        ranking.pick_gain_interval =
            bootstrap_interval(decisions.len(), resamples, rng, |drawn| self.pick_gain(drawn, values));
        ranking
    }

    fn noise(&self, replicates: usize, resamples: usize, rng: &mut ChaCha8Rng) -> Noise {
        let std = |values: &[f64]| {
            (values.len() >= 2).then(|| {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
            })
        };
        let mut noise = Noise {
            replicates,
            replicate_std: None,
            candidate_std: std(&self.gains),
            retest_tau: None,
            retest_tau_interval: None,
            retest_decision_tau: None,
            retest_decision_tau_interval: None,
        };
        if replicates < 2 || self.candidates.is_empty() {
            return noise;
        }
        let variances: Vec<f64> = self
            .replicate_gains
            .iter()
            .filter_map(|g| std(g).map(|s| s * s))
            .collect();
        noise.replicate_std = Some((variances.iter().sum::<f64>() / variances.len() as f64).sqrt());
        let first: Vec<f64> = self.replicate_gains.iter().map(|g| g[0]).collect();
        let second: Vec<f64> = self.replicate_gains.iter().map(|g| g[1]).collect();
        noise.retest_tau = kendall_tau(&first, &second);
        noise.retest_tau_interval = bootstrap_interval(first.len(), resamples, rng, |drawn| {
            let (a, b): (Vec<f64>, Vec<f64>) = drawn.iter().map(|&i| (first[i], second[i])).unzip();
            kendall_tau(&a, &b)
        });
        noise.retest_decision_tau = grouped_kendall_tau(&first, &second, &self.groups);
        noise.retest_decision_tau_interval = bootstrap_interval(self.members.len(), resamples, rng, |drawn| {
            let (a, b, groups) = self.within(drawn, &first, &second);
            grouped_kendall_tau(&a, &b, &groups)
        });
        noise
    }
}

/// A metric's signal with its good direction made "higher".
fn oriented(metric: MetricName, signal: f64) -> f64 {
    match metric.better() {
        Better::Higher => signal,
        Better::Lower => -signal,
    }
}

/// The analysis of everything `records` holds with every replicate measured, for each metric and each of
/// `rules`; `rng` drives the bootstrap.
pub fn analyse(config: &ValidationConfig, records: &Records, rules: &[DecisionRule], rng: &mut ChaCha8Rng) -> Analysis {
    let table = Table::new(records, config.replicates);
    let resamples = config.resamples;
    let metrics = config
        .metrics
        .iter()
        .map(|&metric| {
            let values: Vec<f64> = table
                .candidates
                .iter()
                .map(|c| c.signals.get(&metric).map_or(f64::NAN, |&s| oriented(metric, s)))
                .collect();
            MetricResult {
                metric,
                better: metric.better(),
                ranking: table.ranking(&values, true, resamples, rng),
            }
        })
        .collect();
    // Each rule's candidates by their score within their decision (lower is better), the ones it refuses below
    // them all, and no split when it refuses every candidate.
    let rules = rules
        .iter()
        .map(|rule| {
            let mut values = vec![f64::NEG_INFINITY; table.candidates.len()];
            for members in &table.members {
                let decision: Vec<&CandidateRecord> = members.iter().map(|&i| table.candidates[i]).collect();
                let scores = rule_scores(&decision, rule, config.scoring.ntk_mode);
                for (&i, score) in members.iter().zip(scores) {
                    values[i] = score.map_or(f64::NEG_INFINITY, |s| -s);
                }
            }
            RuleResult {
                rule: rule.to_string(),
                description: rule.description(),
                ranking: table.ranking(&values, false, resamples, rng),
            }
        })
        .collect();
    let decisions: Vec<usize> = (0..table.members.len()).collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Analysis {
        candidates: table.candidates.len(),
        decisions: table.members.len(),
        mean_gain: mean(&table.gains),
        oracle_pick_gain: table.pick_gain(&decisions, &table.gains),
        noise: table.noise(config.replicates, resamples, rng),
        metrics,
        rules,
    }
}
