//! ZiCo (Li et al., ICLR 2023): the inverse coefficient of variation of the gradients across batches. For each
//! weight tensor, the cross-entropy's gradient is taken on several batches; per scalar, the mean of |g| over the
//! batches divided by the standard deviation of g; the tensor contributes the log of the sum of those ratios (over
//! the scalars whose deviation is not 0), and the score sums the tensors.

use super::{MetricName, NetworkMetric, Probe};
use crate::genotype::Genotype;
use crate::supernet::{Mode, Supernet};
use tch::{Kind, Tensor};

/// ZiCo over the probe's labelled NTK batches.
pub struct Zico;

impl NetworkMetric for Zico {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::Zico]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        let net = probe.network(genotype, repeat);
        let (images, labels) = probe.batches(repeat);
        Ok(vec![zico(&net, images, labels)?])
    }
}

/// ZiCo of `net` over `images` and their `labels`, batch by batch (at least two batches), in train mode without
/// drop-path, with the final head's cross-entropy, over the convolution and linear weights. The standard deviation
/// is the population one (divided by the number of batches), as the published code computes it.
pub fn zico(net: &Supernet, images: &[Tensor], labels: &[Tensor]) -> anyhow::Result<f64> {
    anyhow::ensure!(
        images.len() >= 2,
        "ZiCo needs at least 2 batches of images, got {}",
        images.len()
    );
    let weights: Vec<Tensor> = net.parameters().into_iter().filter(|t| t.dim() >= 2).collect();
    let mut per_weight: Vec<Vec<Tensor>> = weights.iter().map(|_| Vec::new()).collect();
    for (batch, batch_labels) in images.iter().zip(labels) {
        let logits = net.forward(batch, Mode::train(0.0));
        let loss = logits
            .last()
            .expect("a network has a tower")
            .f_cross_entropy_loss::<Tensor>(batch_labels, None, tch::Reduction::Mean, -100, 0.0)?;
        let grads = Tensor::f_run_backward(&[loss], &weights, false, false)?;
        for ((collected, grad), weight) in per_weight.iter_mut().zip(grads).zip(&weights) {
            let grad = if grad.defined() { grad } else { weight.f_zeros_like()? };
            collected.push(grad.f_to_kind(Kind::Double)?.f_flatten(0, -1)?);
        }
    }
    let mut total = 0.0;
    for collected in per_weight {
        let stacked = Tensor::f_stack(&collected, 0)?;
        let mean_abs = stacked.f_abs()?.f_mean_dim([0i64].as_slice(), false, Kind::Double)?;
        let std = stacked.f_std_dim([0i64].as_slice(), false, false)?;
        let varies = std.f_ne(0.0)?;
        let ratio = mean_abs
            .f_masked_select(&varies)?
            .f_div(&std.f_masked_select(&varies)?)?;
        let sum = ratio.f_sum(Kind::Double)?.double_value(&[]);
        if sum != 0.0 {
            total += sum.ln();
        }
    }
    Ok(total)
}
