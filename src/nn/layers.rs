//! How a forward pass applies the network's weights. The network walks its graph once; a `Layers` decides
//! what each convolution, batch norm, gate and linear layer does with its tensors, so the same walk serves
//! training (`Plain`) and the NTK's replicated per-sample gradients (`metrics::replicas`).

use crate::genotype::{BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};
use crate::nn::blocks::Conv;
use crate::nn::pruner;
use tch::{Tensor, nn, nn::Module};

/// The operations of a forward pass that touch weights.
pub trait Layers {
    /// Brings the network's input batch into this pass's layout.
    fn input(&mut self, x: &Tensor) -> Tensor;
    /// Applies a bias-free convolution.
    fn conv(&mut self, x: &Tensor, conv: &Conv) -> Tensor;
    /// Applies a batch norm; `train` selects batch statistics.
    fn batch_norm(&mut self, x: &Tensor, bn: &nn::BatchNorm, train: bool) -> Tensor;
    /// Multiplies an op's output by the gate of its pruner weight (see `pruner::gate`).
    fn gate(&mut self, weight: &Tensor, output: &Tensor) -> Tensor;
    /// Applies a tower's linear layer to pooled features (N, channels).
    fn linear(&mut self, x: &Tensor, linear: &nn::Linear) -> Tensor;
    /// Channels a feature map of `logical` channels has in this layout.
    fn channels(&self, logical: i64) -> i64;
}

/// The network's weights applied as they are; batch norms in train mode update their running statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Layers for Plain {
    fn input(&mut self, x: &Tensor) -> Tensor {
        x.shallow_clone()
    }

    fn conv(&mut self, x: &Tensor, conv: &Conv) -> Tensor {
        conv.apply_weight(x, &conv.ws, 1)
    }

    fn batch_norm(&mut self, x: &Tensor, bn: &nn::BatchNorm, train: bool) -> Tensor {
        batch_norm(x, bn, train, BATCH_NORM_MOMENTUM)
    }

    fn gate(&mut self, weight: &Tensor, output: &Tensor) -> Tensor {
        pruner::gate(weight, output)
    }

    fn linear(&mut self, x: &Tensor, linear: &nn::Linear) -> Tensor {
        linear.forward(x)
    }

    fn channels(&self, logical: i64) -> i64 {
        logical
    }
}

/// A batch norm over `x`; in train mode it normalises with the batch's statistics and folds them into the running
/// ones with weight `momentum`.
fn batch_norm(x: &Tensor, bn: &nn::BatchNorm, train: bool, momentum: f64) -> Tensor {
    Tensor::batch_norm(
        x,
        bn.ws.as_ref(),
        bn.bs.as_ref(),
        Some(&bn.running_mean),
        Some(&bn.running_var),
        train,
        momentum,
        BATCH_NORM_EPS,
        true,
    )
}

/// The weights applied as `Plain` applies them, but batch norms fold a batch's statistics into their running ones
/// with weight `momentum`: 1/k for the k-th of a series of batches makes the running statistics the mean over the
/// series (PyTorch's cumulative `momentum=None`).
#[derive(Clone, Copy, Debug)]
pub struct AveragingStatistics {
    /// Weight of this batch's statistics in the running ones.
    pub momentum: f64,
}

impl Layers for AveragingStatistics {
    fn input(&mut self, x: &Tensor) -> Tensor {
        Plain.input(x)
    }

    fn conv(&mut self, x: &Tensor, conv: &Conv) -> Tensor {
        Plain.conv(x, conv)
    }

    fn batch_norm(&mut self, x: &Tensor, bn: &nn::BatchNorm, train: bool) -> Tensor {
        batch_norm(x, bn, train, self.momentum)
    }

    fn gate(&mut self, weight: &Tensor, output: &Tensor) -> Tensor {
        Plain.gate(weight, output)
    }

    fn linear(&mut self, x: &Tensor, linear: &nn::Linear) -> Tensor {
        Plain.linear(x, linear)
    }

    fn channels(&self, logical: i64) -> i64 {
        Plain.channels(logical)
    }
}
