//! The published rule's two metrics as pluggable ones: the scorer's own NTK and region networks, measured exactly as
//! a candidate's "on" network is measured in the search.

use super::{MetricName, NetworkMetric, Probe};
use crate::genotype::Genotype;

/// Both NTK condition numbers, from one kernel.
pub struct Ntk;

impl NetworkMetric for Ntk {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::NtkSound, MetricName::NtkFaithful]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        let conditioning = probe.scorer.conditioning_of(genotype, repeat)?;
        Ok(vec![conditioning.sound, conditioning.faithful])
    }
}

/// The linear-region count.
pub struct Regions;

impl NetworkMetric for Regions {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::Regions]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        Ok(vec![probe.scorer.regions_of(genotype, repeat)?.regions as f64])
    }
}
