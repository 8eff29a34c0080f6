//! Weight initialisation schemes (docs/ALGORITHM.md §10), applied explicitly because tch's defaults differ from PyTorch's.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use tch::{Tensor, nn};

/// Which fan a Kaiming initialisation scales by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fan {
    /// Input fan: (C_in / groups) · k².
    In,
    /// Output fan: C_out · k².
    Out,
}

/// How weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// PyTorch's defaults: conv and linear weights and linear bias ~ U(±1/√fan_in).
    PytorchDefault,
    /// Kaiming normal, std = √2/√fan, with zero linear bias (the scoring networks' init).
    KaimingNormal(Fan),
}

/// Fan-in and fan-out of a weight of shape (out, in/groups, k...) or (out, in).
pub fn fans(weight: &Tensor) -> (f64, f64) {
    let size = weight.size();
    let receptive: i64 = size.iter().skip(2).product();
    let fan_in = (size.get(1).copied().unwrap_or(1) * receptive) as f64;
    let fan_out = (size[0] * receptive) as f64;
    (fan_in, fan_out)
}

/// The tch init that reproduces PyTorch's default for a weight of these dimensions.
pub fn pytorch_default_init(dims: &[i64]) -> nn::Init {
    let receptive: i64 = dims.iter().skip(2).product();
    let fan_in = (dims.get(1).copied().unwrap_or(1) * receptive) as f64;
    let bound = 1.0 / fan_in.sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// Overwrites `tensor` with values drawn by `draw`, keeping its shape, kind and device.
fn fill_with(tensor: &Tensor, mut draw: impl FnMut() -> f64) {
    let values: Vec<f32> = (0..tensor.numel()).map(|_| draw() as f32).collect();
    let source = Tensor::from_slice(&values)
        .view(tensor.size().as_slice())
        .to_kind(tensor.kind())
        .to_device(tensor.device());
    tch::no_grad(|| tensor.shallow_clone().copy_(&source));
}

fn uniform(tensor: &Tensor, bound: f64, rng: &mut impl Rng) {
    match Uniform::new_inclusive(-bound, bound) {
        Ok(dist) => fill_with(tensor, || dist.sample(rng)),
        Err(_) => fill_with(tensor, || 0.0),
    }
}

fn normal(tensor: &Tensor, std: f64, rng: &mut impl Rng) {
    fill_with(tensor, || {
        let z: f64 = StandardNormal.sample(rng);
        std * z
    });
}

/// Redraws a conv or linear weight in place from `rng`.
pub fn reset_weight(weight: &Tensor, scheme: InitScheme, rng: &mut impl Rng) {
    let (fan_in, fan_out) = fans(weight);
    match scheme {
        InitScheme::PytorchDefault => uniform(weight, 1.0 / fan_in.sqrt(), rng),
        InitScheme::KaimingNormal(fan) => {
            let fan = if fan == Fan::In { fan_in } else { fan_out };
            normal(weight, (2.0 / fan).sqrt(), rng);
        }
    }
}

/// Redraws a linear bias in place from `rng`, given the layer's fan-in.
pub fn reset_bias(bias: &Tensor, fan_in: f64, scheme: InitScheme, rng: &mut impl Rng) {
    match scheme {
        InitScheme::PytorchDefault => uniform(bias, 1.0 / fan_in.sqrt(), rng),
        InitScheme::KaimingNormal(_) => fill_with(bias, || 0.0),
    }
}

/// Resets a batch norm to γ = 1, β = 0, running mean 0 and running variance 1.
pub fn reset_batch_norm(bn: &nn::BatchNorm) {
    tch::no_grad(|| {
        if let Some(ws) = &bn.ws {
            let _ = ws.shallow_clone().fill_(1.0);
        }
        if let Some(bs) = &bn.bs {
            let _ = bs.shallow_clone().zero_();
        }
        let _ = bn.running_mean.shallow_clone().zero_();
        let _ = bn.running_var.shallow_clone().fill_(1.0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_follow_pytorch_for_depthwise_and_linear() {
        let dw = Tensor::zeros([16, 1, 3, 3], tch::kind::FLOAT_CPU);
        assert_eq!(fans(&dw), (9.0, 144.0));
        let linear = Tensor::zeros([10, 64], tch::kind::FLOAT_CPU);
        assert_eq!(fans(&linear), (64.0, 10.0));
    }

    #[test]
    fn schemes_give_the_documented_spread() {
        let rng = &mut crate::seed::rng(0, crate::seed::Stream::Init, 0);
        let w = Tensor::zeros([256, 64, 3, 3], tch::kind::FLOAT_CPU);
        reset_weight(&w, InitScheme::PytorchDefault, rng);
        let bound = 1.0 / (64.0f64 * 9.0).sqrt();
        let max = w.abs().max().double_value(&[]);
        assert!(max <= bound && max > 0.95 * bound, "max {max} bound {bound}");
        reset_weight(&w, InitScheme::KaimingNormal(Fan::Out), rng);
        let std = w.std(true).double_value(&[]);
        let expected = (2.0 / (256.0f64 * 9.0)).sqrt();
        assert!((std / expected - 1.0).abs() < 0.02, "std {std} expected {expected}");
        reset_weight(&w, InitScheme::KaimingNormal(Fan::In), rng);
        let std = w.std(true).double_value(&[]);
        let expected = (2.0 / (64.0f64 * 9.0)).sqrt();
        assert!((std / expected - 1.0).abs() < 0.02, "std {std} expected {expected}");
    }
}
