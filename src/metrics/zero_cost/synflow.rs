//! Synaptic flow (Tanaka et al., NeurIPS 2020; as a zero-cost proxy, Abdelfattah et al., ICLR 2021): with every
//! tensor replaced by its absolute value, R is the sum of the network's output for an all-ones input, and the score
//! is Σ|θ ⊙ ∂R/∂θ| over the convolution and linear weights. It is computed in f64, as published, because the
//! products of absolute weights overflow f32 in deeper networks.

use super::{MetricName, NetworkMetric, Probe};
use crate::genotype::Genotype;
use crate::supernet::{Mode, Supernet};
use tch::{Kind, Tensor};

/// Synaptic flow of the network at the probe's width.
pub struct Synflow;

impl NetworkMetric for Synflow {
    fn names(&self) -> &'static [MetricName] {
        &[MetricName::Synflow]
    }

    fn measure(&self, genotype: &Genotype, probe: &Probe, repeat: usize) -> anyhow::Result<Vec<f64>> {
        let mut net = probe.network(genotype, repeat);
        Ok(vec![synflow(&mut net)?])
    }
}

/// Synaptic flow of `net`, whose tensors it replaces by their absolute values in f64. Batch norms run on their
/// running statistics (those of a new network are the identity), so the flow is the convolutions' and towers'.
pub fn synflow(net: &mut Supernet) -> anyhow::Result<f64> {
    tch::no_grad(|| {
        for (_, tensor) in net.named_tensors() {
            let _ = tensor.shallow_clone().f_abs_()?;
        }
        anyhow::Ok(())
    })?;
    net.set_kind(Kind::Double);
    let input = net.genotype().input;
    let ones = Tensor::f_ones(
        [1, input.channels as i64, input.height as i64, input.width as i64],
        (Kind::Double, net.device()),
    )?;
    let logits = net.forward(&ones, Mode::eval());
    let flow = logits.last().expect("a network has a tower").f_sum(Kind::Double)?;
    let weights: Vec<Tensor> = net.parameters().into_iter().filter(|t| t.dim() >= 2).collect();
    let grads = Tensor::f_run_backward(&[flow], &weights, false, false)?;
    let mut total = 0.0;
    for (weight, grad) in weights.iter().zip(&grads) {
        if grad.defined() {
            total += weight.f_mul(grad)?.f_abs()?.f_sum(Kind::Double)?.double_value(&[]);
        }
    }
    Ok(total)
}
