//! Pluggable train-free metrics (docs/METRICS.md, *Metrics and rules*): one trait, [`NetworkMetric`], and every
//! metric a decision rule can use. A metric measures one genotype's network; a split's signal compares the
//! candidate's "on" genotype with the current one, repeat by repeat, on the same inputs and with the same weights by
//! tensor name.

mod cost;
mod naswot;
mod scorer;
mod synflow;
mod zico;

pub use cost::{Parameters, TimePerImage};
pub use naswot::{Naswot, naswot};
pub use scorer::{Ntk, Regions};
pub use synflow::{Synflow, synflow};
pub use zico::{Zico, zico};

use super::score::Scorer;
use crate::genotype::Genotype;
use crate::nn::init::InitScheme;
use crate::supernet::Supernet;
use crate::train::TrainConfig;
use std::collections::BTreeMap;
use tch::Tensor;

/// Every value a metric can yield, by the name `--metrics` and the reports use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    /// The NTK condition number over the non-null spectrum (lower is better).
    NtkSound,
    /// The reference's f32 λ_max/λ_min (lower is better).
    NtkFaithful,
    /// Distinct ReLU sign patterns over random crops (higher is better).
    Regions,
    /// Trainable parameters of the network at the probe's width (higher is better).
    Parameters,
    /// Measured seconds of one training step per image (lower is better).
    TimePerImage,
    /// log|K_H| of the ReLU codes' Hamming kernel over a batch (higher is better).
    Naswot,
    /// Σ|θ ⊙ ∂R/∂θ| with |θ| and an all-ones input (higher is better).
    Synflow,
    /// Σ over weight tensors of log Σ mean|g| / std(g) across batches (higher is better).
    Zico,
}

/// Which direction of a metric's signal is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// A larger value is better.
    Higher,
    /// A smaller value is better.
    Lower,
}

/// A name `--metrics` does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown metric {given:?}: the metrics are {}", MetricName::ALL.map(MetricName::name).join(", "))]
pub struct UnknownMetric {
    /// What was given.
    pub given: String,
}

impl MetricName {
    /// Every metric, in report order.
    pub const ALL: [MetricName; 8] = [
        MetricName::NtkSound,
        MetricName::NtkFaithful,
        MetricName::Regions,
        MetricName::Parameters,
        MetricName::TimePerImage,
        MetricName::Naswot,
        MetricName::Synflow,
        MetricName::Zico,
    ];

    /// The metric's name in flags, JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            MetricName::NtkSound => "ntk_sound",
            MetricName::NtkFaithful => "ntk_faithful",
            MetricName::Regions => "regions",
            MetricName::Parameters => "parameters",
            MetricName::TimePerImage => "time_per_image",
            MetricName::Naswot => "naswot",
            MetricName::Synflow => "synflow",
            MetricName::Zico => "zico",
        }
    }

    /// The metric named `text`.
    pub fn parse(text: &str) -> Result<MetricName, UnknownMetric> {
        MetricName::ALL
            .into_iter()
            .find(|m| m.name() == text.trim())
            .ok_or_else(|| UnknownMetric {
                given: text.to_string(),
            })
    }

    /// Which direction is good.
    pub fn better(self) -> Better {
        match self {
            MetricName::NtkSound | MetricName::NtkFaithful | MetricName::TimePerImage => Better::Lower,
            _ => Better::Higher,
        }
    }

    /// Whether the value is already a logarithm, so that a split's signal is a difference rather than a ratio.
    fn is_logarithm(self) -> bool {
        matches!(self, MetricName::Naswot | MetricName::Zico)
    }

    /// A split's signal from the metric's value with it (`on`) and without it (`off`): on − off for the metrics
    /// that are logarithms already, (on − off)/|off| for the others, as the published rule's r_ntk and r_lrc.
    pub fn signal(self, on: f64, off: f64) -> f64 {
        if self.is_logarithm() {
            on - off
        } else {
            (on - off) / off.abs()
        }
    }
}

/// What every metric measures a network with: the scorer's inputs, seeds and thin networks; the width of the
/// other metrics' networks; and the recipe whose steps are timed.
pub struct Probe<'a> {
    /// The search's scorer: the NTK and region networks, every repeat's inputs and initialisation seeds.
    pub scorer: &'a Scorer,
    /// Width of the networks of the other metrics; `None` takes the genotype's own channel count C.
    pub width: Option<usize>,
    /// The training recipe whose step `time_per_image` times (its batch size, optimiser and loss).
    pub recipe: &'a TrainConfig,
}

/// Initialisation of the networks of the published zero-cost proxies: PyTorch's default, which their papers
/// measured at.
const PROXY_INIT: InitScheme = InitScheme::PytorchDefault;

impl Probe<'_> {
    /// `genotype`'s network at the probe's width, with every gate open and the weights of `repeat`, drawn tensor by
    /// tensor from its name, so that a split's "on" and "off" networks agree wherever they share a tensor.
    pub fn network(&self, genotype: &Genotype, repeat: usize) -> Supernet {
        let mut net = Supernet::builder(genotype)
            .width(self.width.unwrap_or(genotype.channels))
            .init(PROXY_INIT, 0)
            .device(self.scorer.device())
            .build();
        net.reset_parameters_by_name(PROXY_INIT, self.scorer.init_seed(repeat));
        net
    }

    /// The labelled training images of `repeat` (the NTK's batches): images and labels, batch by batch.
    pub fn batches(&self, repeat: usize) -> (&[Tensor], &[Tensor]) {
        (self.scorer.inputs(repeat).0, self.scorer.labels(repeat))
    }
}

/// One pluggable train-free metric: it measures the network of a genotype and yields one or more named values.
pub trait NetworkMetric {
    /// The values it yields, in the order `measure` returns them.
    fn names(&self) -> &'static [MetricName];
    /// Its values for `genotype`'s network in `repeat`, in the order of `names`.
    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>>;
}

/// Every registered metric.
pub fn registry() -> Vec<Box<dyn NetworkMetric>> {
    vec![
        Box::new(Ntk),
        Box::new(Regions),
        Box::new(Parameters),
        Box::new(TimePerImage),
        Box::new(Naswot),
        Box::new(Synflow),
        Box::new(Zico),
    ]
}

/// The registered metrics that yield any of `wanted`.
pub fn metrics_for(wanted: &[MetricName]) -> Vec<Box<dyn NetworkMetric>> {
    registry()
        .into_iter()
        .filter(|metric| metric.names().iter().any(|name| wanted.contains(name)))
        .collect()
}

/// Per metric, its value in each repeat.
pub type Values = BTreeMap<MetricName, Vec<f64>>;

/// Every value of `metrics` for `genotype`, in every repeat of the probe's scorer.
pub fn measure(metrics: &[Box<dyn NetworkMetric>], genotype: &Genotype, probe: &Probe) -> anyhow::Result<Values> {
    let mut values = Values::new();
    for repeat in 0..probe.scorer.repeats() {
        for metric in metrics {
            let measured = metric.measure(genotype, probe, repeat)?;
            for (name, value) in metric.names().iter().zip(measured) {
                values.entry(*name).or_default().push(value);
            }
        }
    }
    Ok(values)
}

/// Per metric, a split's signal: the mean over repeats of [`MetricName::signal`] between the "on" values and the
/// current network's.
pub fn signals(on: &Values, off: &Values) -> BTreeMap<MetricName, f64> {
    on.iter()
        .filter_map(|(name, on_values)| {
            let off_values = off.get(name)?;
            let per_repeat: Vec<f64> = on_values
                .iter()
                .zip(off_values)
                .map(|(&a, &b)| name.signal(a, b))
                .collect();
            Some((*name, per_repeat.iter().sum::<f64>() / per_repeat.len().max(1) as f64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_listed() {
        for metric in MetricName::ALL {
            assert_eq!(MetricName::parse(metric.name()).unwrap(), metric);
            let json = serde_json::to_string(&metric).unwrap();
            assert_eq!(json, format!("\"{}\"", metric.name()));
        }
        let error = MetricName::parse("grasp").unwrap_err().to_string();
        assert!(error.contains("\"grasp\"") && error.contains("zico"), "{error}");
    }

    #[test]
    fn signals_are_ratios_except_for_logarithms_and_every_metric_is_registered() {
        assert_eq!(MetricName::NtkSound.signal(50.0, 100.0), -0.5);
        assert_eq!(MetricName::Naswot.signal(-50.0, -100.0), 50.0);
        assert_eq!(MetricName::Regions.signal(150.0, 100.0), 0.5);
        let on = Values::from([
            (MetricName::Regions, vec![2.0, 3.0]),
            (MetricName::Zico, vec![5.0, 7.0]),
        ]);
        let off = Values::from([
            (MetricName::Regions, vec![1.0, 2.0]),
            (MetricName::Zico, vec![4.0, 4.0]),
        ]);
        let got = signals(&on, &off);
        assert_eq!(got[&MetricName::Regions], 0.75);
        assert_eq!(got[&MetricName::Zico], 2.0);
        let registered: Vec<MetricName> = registry().iter().flat_map(|m| m.names().to_vec()).collect();
        assert_eq!(registered, MetricName::ALL.to_vec());
    }
}
