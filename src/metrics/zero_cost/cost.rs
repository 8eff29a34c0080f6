//! What a network costs: its trainable parameters, and the measured time of one training step per image on the
//! machine that runs the probe.

use super::{MetricName, NetworkMetric, Probe};
use crate::genotype::Genotype;
use crate::train;
use std::time::Instant;
use tch::Tensor;

/// Trainable parameters of the network at the probe's width, every gate open.
pub struct Parameters;

impl NetworkMetric for Parameters {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::Parameters]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        Ok(vec![probe.network(genotype, repeat).parameter_count() as f64])
    }
}

/// Seconds per image of a training step (forward, loss, backward, SGD update) of the network at the probe's width,
/// on a batch of the recipe's size: the median of `TIMED_STEPS` steps after one untimed step.
pub struct TimePerImage;

/// Steps timed per measurement.
const TIMED_STEPS: usize = 3;

impl NetworkMetric for TimePerImage {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::TimePerImage]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        let mut net = probe.network(genotype, repeat);
        let (images, labels) = probe.batches(repeat);
        let (images, labels) = (Tensor::f_cat(images, 0)?, Tensor::f_cat(labels, 0)?);
        let size = probe.recipe.batch_size.max(1) as i64;
        // The images repeated until there are enough for one batch of the recipe's size.
        let available = images.size()[0].max(1);
        let index = Tensor::f_arange(size, (tch::Kind::Int64, images.device()))?.f_remainder(available)?;
        let (batch, batch_labels) = (images.f_index_select(0, &index)?, labels.f_index_select(0, &index)?);
        let mut optimizer = train::optimizer(&net, probe.recipe);
        let mut seconds = Vec::with_capacity(TIMED_STEPS);
        for step in 0..=TIMED_STEPS {
            let start = Instant::now();
            let (loss, _) = train::step(&mut net, &mut optimizer, &batch, &batch_labels, probe.recipe, 0.0)?;
            loss.double_value(&[]);
            if step > 0 {
                seconds.push(start.elapsed().as_secs_f64());
            }
        }
        seconds.sort_by(f64::total_cmp);
        Ok(vec![seconds[seconds.len() / 2] / size as f64])
    }
}
