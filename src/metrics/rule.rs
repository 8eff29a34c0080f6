//! Decision rules (`--metrics`, docs/METRICS.md, *Metrics and rules*): how one cell's scored candidates become
//! one split, or none. The search, `spidernet score` and the validation harness all choose through
//! [`DecisionRule::choose`], so a rule the harness measures is exactly the rule a search applies.

use super::score::{CandidateReport, NtkMode, combine};
use super::zero_cost::{Better, MetricName, UnknownMetric};
use std::fmt;

/// How a cell's split is chosen among its scored candidates.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DecisionRule {
    /// SpiderNet's: a candidate is accepted when the linear regions grow and κ does not rise; the accepted one
    /// with the lowest mean of min-max normalised r_ntk and (1 − r_lrc) wins; no split when none is accepted.
    #[default]
    Published,
    /// Every candidate is eligible; the one with the best mean rank over these metrics' signals (each in its
    /// good direction, ties sharing their mean rank) wins, the first tried on ties.
    Ranked(Vec<MetricName>),
}

/// A `--metrics` value that names no rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A metric name is unknown.
    #[error("--metrics {given:?}: {source}")]
    Unknown {
        /// The whole value.
        given: String,
        /// The unknown name.
        source: UnknownMetric,
    },
    /// The list is empty or names a metric twice.
    #[error(
        "--metrics {given:?} is not a rule: give \"published\" or one or more distinct metric names joined by \"+\""
    )]
    Malformed {
        /// The whole value.
        given: String,
    },
}

impl DecisionRule {
    /// The rule `text` names: `published`, or metric names joined by `+` (for example `naswot+zico`).
    pub fn parse(text: &str) -> Result<DecisionRule, RuleError> {
        let text = text.trim();
        if text == "published" {
            return Ok(DecisionRule::Published);
        }
        let mut metrics = Vec::new();
        for part in text.split('+') {
            if part.trim().is_empty() {
                return Err(RuleError::Malformed { given: text.into() });
            }
            let metric = MetricName::parse(part).map_err(|source| RuleError::Unknown {
                given: text.into(),
                source,
            })?;
            if metrics.contains(&metric) {
                return Err(RuleError::Malformed { given: text.into() });
            }
            metrics.push(metric);
        }
        Ok(DecisionRule::Ranked(metrics))
    }

    /// The metrics whose signals the rule reads, with the κ of `mode` for the published rule.
    pub fn metrics(&self, mode: NtkMode) -> Vec<MetricName> {
        match self {
            DecisionRule::Published => vec![mode.metric(), MetricName::Regions],
            DecisionRule::Ranked(metrics) => metrics.clone(),
        }
    }

    /// The metrics the rule reads beyond the r_ntk and r_lrc every candidate report carries.
    pub fn extra_metrics(&self, mode: NtkMode) -> Vec<MetricName> {
        self.metrics(mode)
            .into_iter()
            .filter(|&m| m != mode.metric() && m != MetricName::Regions)
            .collect()
    }

    /// What the rule does, in a line.
    pub fn description(&self) -> String {
        match self {
            DecisionRule::Published => {
                "SpiderNet's: accept when regions grow and κ does not; the lowest mean of min-max scores wins".into()
            }
            DecisionRule::Ranked(metrics) if metrics.len() == 1 => {
                format!(
                    "the best {} signal wins; every candidate is eligible",
                    metrics[0].name()
                )
            }
            DecisionRule::Ranked(_) => {
                format!("the best mean rank over {} wins; every candidate is eligible", self)
            }
        }
    }

    /// Whether the rule can refuse every candidate of a cell; a ranked rule always picks one.
    pub fn can_refuse(&self) -> bool {
        matches!(self, DecisionRule::Published)
    }

    /// Decides among one cell's `reports`: writes each candidate's eligibility (`rejection`) and score (lower is
    /// better; the mean rank for a ranked rule, from 1) and returns the chosen edge.
    pub fn choose(&self, reports: &mut [CandidateReport], mode: NtkMode) -> Option<u32> {
        let DecisionRule::Ranked(metrics) = self else {
            return combine(reports);
        };
        let mut total = vec![0.0; reports.len()];
        for &metric in metrics {
            let values: Vec<f64> = reports.iter().map(|r| r.signal(metric, mode)).collect();
            for (sum, rank) in total.iter_mut().zip(ranks(&values, metric.better())) {
                *sum += rank;
            }
        }
        let mut best: Option<usize> = None;
        for (i, report) in reports.iter_mut().enumerate() {
            report.rejection = None;
            report.score = Some(total[i] / metrics.len() as f64);
            if best.is_none_or(|b| total[i] < total[b]) {
                best = Some(i);
            }
        }
        best.map(|i| reports[i].edge)
    }
}

/// The rank of each value from 1 (the best in direction `better`), tied values sharing their mean rank and
/// values that are not finite ranked after every finite one.
fn ranks(values: &[f64], better: Better) -> Vec<f64> {
    let key = |v: f64| match (v.is_finite(), better) {
        (false, _) => f64::INFINITY,
        (true, Better::Lower) => v,
        (true, Better::Higher) => -v,
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| key(values[a]).total_cmp(&key(values[b])));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && key(values[order[end]]) == key(values[order[start]]) {
            end += 1;
        }
        let shared = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = shared;
        }
        start = end;
    }
    ranks
}

impl fmt::Display for DecisionRule {
    /// The name `--metrics` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecisionRule::Published => f.write_str("published"),
            DecisionRule::Ranked(metrics) => {
                let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
                f.write_str(&names.join("+"))
            }
        }
    }
}

impl TryFrom<String> for DecisionRule {
    type Error = RuleError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        DecisionRule::parse(&text)
    }
}

impl From<DecisionRule> for String {
    fn from(rule: DecisionRule) -> String {
        rule.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn report(edge: u32, r_ntk: f64, r_lrc: f64, naswot: f64) -> CandidateReport {
        CandidateReport::from_signals(0, edge, r_ntk, r_lrc, BTreeMap::from([(MetricName::Naswot, naswot)]))
    }

    #[test]
    fn rules_parse_print_and_refuse_bad_names() {
        for text in ["published", "naswot", "naswot+zico", "parameters+time_per_image"] {
            let rule = DecisionRule::parse(text).unwrap();
            assert_eq!(rule.to_string(), text);
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(serde_json::from_str::<DecisionRule>(&json).unwrap(), rule);
        }
        let unknown = DecisionRule::parse("naswot+grasp").unwrap_err().to_string();
        assert!(
            unknown.contains("\"naswot+grasp\"") && unknown.contains("\"grasp\""),
            "{unknown}"
        );
        for malformed in ["", "naswot+", "zico+zico"] {
            let error = DecisionRule::parse(malformed).unwrap_err();
            assert!(matches!(error, RuleError::Malformed { .. }), "{malformed}: {error}");
        }
        assert!(serde_json::from_str::<DecisionRule>("\"synflow+\"").is_err());
    }

    #[test]
    fn ranks_share_ties_and_put_non_finite_values_last() {
        assert_eq!(ranks(&[3.0, 1.0, 2.0], Better::Higher), vec![1.0, 3.0, 2.0]);
        assert_eq!(ranks(&[3.0, 1.0, 2.0], Better::Lower), vec![3.0, 1.0, 2.0]);
        assert_eq!(
            ranks(&[5.0, f64::NAN, 5.0, 1.0], Better::Higher),
            vec![1.5, 4.0, 1.5, 3.0]
        );
    }

    #[test]
    fn a_ranked_rule_averages_ranks_and_takes_every_candidate() {
        // r_lrc ranks edges 1, 2, 3 as 3, 2, 1; naswot ranks them 1, 3, 2: mean ranks 2, 2.5, 1.5.
        let mut reports = [
            report(1, 0.5, 0.1, 9.0),
            report(2, 0.5, 0.2, 1.0),
            report(3, 0.5, 0.3, 5.0),
        ];
        assert!(
            reports.iter().all(|r| !r.accepted()),
            "κ rose: the published rule refuses all"
        );
        let mut published = reports.clone();
        assert_eq!(DecisionRule::Published.choose(&mut published, NtkMode::Sound), None);
        let rule = DecisionRule::parse("regions+naswot").unwrap();
        assert_eq!(rule.choose(&mut reports, NtkMode::Sound), Some(3));
        let scores: Vec<f64> = reports.iter().map(|r| r.score.unwrap()).collect();
        assert_eq!(scores, vec![2.0, 2.5, 1.5]);
        assert!(reports.iter().all(CandidateReport::accepted));
        assert_eq!(
            DecisionRule::parse("ntk_sound")
                .unwrap()
                .choose(&mut reports, NtkMode::Sound),
            Some(1),
            "all tie on κ: the first tried"
        );
    }

    #[test]
    fn the_published_rule_reads_the_configured_kappa() {
        assert_eq!(
            DecisionRule::Published.metrics(NtkMode::Faithful),
            vec![MetricName::NtkFaithful, MetricName::Regions]
        );
        let rule = DecisionRule::parse("regions+zico+ntk_sound").unwrap();
        assert_eq!(rule.extra_metrics(NtkMode::Sound), vec![MetricName::Zico]);
        assert!(DecisionRule::Published.can_refuse() && !rule.can_refuse());
    }
}
