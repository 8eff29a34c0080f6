//! The metric-validation harness (docs/METRICS.md, *Validating the metrics*): does a train-free metric predict what
//! a split is worth in our search space? It takes real search states, scores every candidate split of every cell
//! with every registered metric, measures each split's gain by a short continuation of training with and without
//! it from the same weights, and reports rank correlations with bootstrap intervals, per metric and per decision
//! rule, against the noise floor of the gains themselves.
//!
//! Everything it measures goes to files in its output folder as it is measured, so a run stopped at any point
//! continues where it stopped when started again with the same settings.

mod analysis;
mod chart;
mod continuation;
mod records;
mod states;

pub use analysis::{Analysis, MetricResult, Noise, Ranking, RuleResult, analyse};
pub use chart::scatter_chart;
pub use records::{BaselineRecord, CandidateRecord, Records};

use crate::data::Dataset;
use crate::metrics::zero_cost::MetricName;
use crate::metrics::{DecisionRule, MetricsConfig};
use crate::search::{Profile, SearchConfig};
use crate::system::atomic::write_json;
use crate::train::Schedule;
use std::path::Path;
use tch::Device;

/// What the harness runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValidationConfig {
    /// Data set, as given on the command line.
    pub data: String,
    /// The search profile whose training, scoring settings and growth make the states.
    pub profile: Profile,
    /// Reduction cells R of the starting genotype.
    pub reductions: usize,
    /// Channels C of the starting genotype.
    pub channels: usize,
    /// One search per seed; each gives `states` states.
    pub seeds: Vec<u64>,
    /// Search iterations per seed whose trained supernet is a state (the first after one iteration's training).
    pub states: usize,
    /// Train on a seeded subset of this many images in the search phases [default: all].
    pub search_samples: Option<usize>,
    /// Epochs of each continuation.
    pub continuation_epochs: usize,
    /// The learning-rate schedule of each continuation: the search recipe's rate annealed per batch to 0 at its
    /// end (`cosine`), so that the accuracy it ends at is not that of a network still moving at the peak rate.
    /// Folders started before the field existed ran the search's per-epoch cosine, which stays at the peak rate
    /// through a one-epoch continuation.
    #[serde(default)]
    pub continuation_schedule: Schedule,
    /// Images per continuation epoch, a seeded subset of the search's training images [default: all].
    pub continuation_samples: Option<usize>,
    /// Continuations per candidate, each with its own seed; two or more measure the noise floor.
    pub replicates: usize,
    /// The metrics scored.
    pub metrics: Vec<MetricName>,
    /// Settings of the NTK and region scoring (the profile's unless given).
    pub scoring: MetricsConfig,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
}

impl ValidationConfig {
    /// The settings of the search of `seed` whose states the harness takes.
    pub fn search(&self, seed: u64) -> SearchConfig {
        let mut search = SearchConfig::new(self.profile, &self.data, self.reductions, self.channels, seed);
        search.search_samples = self.search_samples;
        search.metrics = self.scoring.clone();
        search
    }
}

/// The file that records the settings of a harness folder; a second run must match it.
pub const CONFIG_FILE: &str = "validation-config.json";
/// The analysis, written after every run.
pub const RESULT_FILE: &str = "validation.json";
/// The scatter chart of every metric's signal against the gain.
pub const CHART_FILE: &str = "scatter.svg";

/// Receives the harness's progress.
pub trait ValidationObserver {
    /// A state is ready: `candidates` splits to measure.
    fn state(&mut self, _seed: u64, _state: usize, _candidates: usize) {}
    /// A candidate (or, with `edge` None, the state's baseline) finished one continuation.
    fn measured(&mut self, _record: &CandidateRecord) {}
}

/// The rules analysed when none are given: the published one, and rank combinations of the published metrics and
/// of the zero-cost proxies (docs/METRICS.md).
pub const DEFAULT_RULES: [&str; 5] = [
    "published",
    "ntk_sound+regions",
    "naswot+zico",
    "synflow+zico",
    "naswot+synflow+zico",
];

/// `rules`, or when empty the default rules whose metrics `config` scores; an error for a given rule that reads an
/// unscored metric.
fn rules_for(config: &ValidationConfig, rules: &[DecisionRule]) -> anyhow::Result<Vec<DecisionRule>> {
    let scored = |rule: &DecisionRule| {
        rule.metrics(config.scoring.ntk_mode)
            .iter()
            .all(|m| config.metrics.contains(m) || ALWAYS_SCORED.contains(m))
    };
    if rules.is_empty() {
        let defaults = DEFAULT_RULES
            .iter()
            .map(|text| DecisionRule::parse(text).expect("a valid rule"));
        return Ok(defaults.filter(|rule| scored(rule)).collect());
    }
    for rule in rules {
        anyhow::ensure!(
            scored(rule),
            "rule {rule} reads a metric the harness folder did not score (it scores {} and the published ones)",
            config.metrics.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(rules.to_vec())
}

/// The metrics every candidate is scored by, whatever `--metrics` says: the published rule's.
pub(crate) const ALWAYS_SCORED: [MetricName; 3] = [MetricName::NtkSound, MetricName::NtkFaithful, MetricName::Regions];

/// Runs (or continues) the harness in `out`, and writes its analysis of `rules` (the default ones when empty)
/// and its chart there.
pub fn run(
    config: &ValidationConfig,
    rules: &[DecisionRule],
    data: &Dataset,
    out: &Path,
    device: Device,
    observer: &mut dyn ValidationObserver,
) -> anyhow::Result<Analysis> {
    anyhow::ensure!(!config.seeds.is_empty(), "no seeds to run");
    anyhow::ensure!(config.states >= 1, "at least one state per seed is needed");
    anyhow::ensure!(!config.metrics.is_empty(), "no metrics to validate");
    let rules = rules_for(config, rules)?;
    let mut records = Records::open(out, config)?;
    for &seed in &config.seeds {
        states::measure_seed(config, seed, data, device, &mut records, observer)?;
    }
    write_analysis(config, &rules, &records, out)
}

/// Analyses what the harness folder `out` holds so far, without measuring anything, and writes the analysis and
/// chart there: a look at a long run while it goes, or after it stopped.
pub fn analyse_folder(out: &Path, rules: &[DecisionRule]) -> anyhow::Result<Analysis> {
    let config = Records::saved_config(out)?;
    let rules = rules_for(&config, rules)?;
    let records = Records::open(out, &config)?;
    write_analysis(&config, &rules, &records, out)
}

fn write_analysis(
    config: &ValidationConfig,
    rules: &[DecisionRule],
    records: &Records,
    out: &Path,
) -> anyhow::Result<Analysis> {
    let analysis = analyse(
        config,
        records,
        rules,
        &mut crate::seed::rng(config.seeds[0], crate::seed::Stream::Metrics, 0),
    );
    write_json(&out.join(RESULT_FILE), &analysis)?;
    let chart = scatter_chart(records, &config.metrics, config.replicates)?;
    crate::system::atomic::write_atomic(&out.join(CHART_FILE), chart.as_bytes())
        .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.join(CHART_FILE).display()))?;
    Ok(analysis)
}
