//! Per-sample NTK gradients in one backward pass per chunk of samples.
//!
//! Each sample's gradient is a backward pass through the whole batch's graph, because train-mode batch norms
//! couple the samples. Instead of one such pass per sample, the network is run as R independent copies side by
//! side along the channel dimension: every copy sees the whole batch, with its own leaf copy of every weight, and
//! copy r is differentiated only through sample r's logits. One backward then yields R gradient rows, and each
//! kernel works on R times wider tensors, which is where the time goes at the NTK's widths of 3–12 channels.
//! Convolutions run with R times the groups, batch norms are per channel anyway, and the towers are batched
//! matrix products.

use crate::genotype::{BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};
use crate::nn::blocks::Conv;
use crate::nn::layers::Layers;
use crate::supernet::{Mode, Supernet};
use std::collections::HashMap;
use tch::{Kind, TchError, Tensor, nn};

/// Weights applied as `count` independent copies, stacked along the channels (copy r owns channels
/// r·C … r·C + C − 1 of every feature map). Every weight the NTK differentiates (conv and linear weights,
/// BN γ, gate weights) becomes a leaf of shape (count, …); biases and BN β are shared constants.
pub struct Replicated {
    count: i64,
    channels_last: bool,
    leaves: Vec<Tensor>,
    by_address: HashMap<usize, usize>,
}

impl Replicated {
    /// `count` copies; `channels_last` stores the replicated input channel-innermost (the network's own feature
    /// maps follow `blocks::preferred_layout` from the stem on).
    pub fn new(count: i64, channels_last: bool) -> Self {
        Replicated {
            count,
            channels_last,
            leaves: Vec::new(),
            by_address: HashMap::new(),
        }
    }

    /// The leaves created so far, in first-use order.
    pub fn leaves(&self) -> &[Tensor] {
        &self.leaves
    }

    /// The replicated leaf of `weight`, created on first use and shared by later uses of the same tensor.
    fn leaf(&mut self, weight: &Tensor) -> Tensor {
        let address = weight.data_ptr() as usize;
        if let Some(&index) = self.by_address.get(&address) {
            return self.leaves[index].shallow_clone();
        }
        let mut shape = vec![self.count];
        shape.extend(weight.size());
        let leaf = weight
            .detach()
            .unsqueeze(0)
            .expand(shape.as_slice(), false)
            .contiguous()
            .set_requires_grad(true);
        self.by_address.insert(address, self.leaves.len());
        self.leaves.push(leaf.shallow_clone());
        leaf
    }

    /// A constant (bias, β, running statistic) repeated for every copy.
    fn shared(&self, tensor: &Tensor) -> Tensor {
        tensor.detach().repeat([self.count])
    }
}

impl Layers for Replicated {
    fn input(&mut self, x: &Tensor) -> Tensor {
        let copies = x.repeat([1, self.count, 1, 1]);
        if self.channels_last {
            crate::nn::blocks::channels_last(&copies)
        } else {
            copies
        }
    }

    fn conv(&mut self, x: &Tensor, conv: &Conv) -> Tensor {
        let leaf = self.leaf(&conv.ws);
        let mut shape = conv.ws.size();
        shape[0] *= self.count;
        conv.apply_weight(x, &leaf.reshape(shape.as_slice()), self.count)
    }

    fn batch_norm(&mut self, x: &Tensor, bn: &nn::BatchNorm, train: bool) -> Tensor {
        let gamma = bn.ws.as_ref().map(|g| self.leaf(g).reshape([-1]));
        let beta = bn.bs.as_ref().map(|b| self.shared(b));
        // Batch statistics need no running ones; eval mode reads copies of them and never updates them.
        let (mean, var) = if train {
            (None, None)
        } else {
            (Some(self.shared(&bn.running_mean)), Some(self.shared(&bn.running_var)))
        };
        Tensor::batch_norm(
            x,
            gamma.as_ref(),
            beta.as_ref(),
            mean.as_ref(),
            var.as_ref(),
            train,
            BATCH_NORM_MOMENTUM,
            BATCH_NORM_EPS,
            true,
        )
    }

    fn gate(&mut self, weight: &Tensor, output: &Tensor) -> Tensor {
        let w = self.leaf(weight);
        let step = w.detach().gt(0.0).to_kind(output.kind());
        // As in `pruner::gate`: the value is the 0/1 step, the derivative with respect to w is 1.
        let straight_through = (&w - w.detach()) + step;
        let per_copy = output.size()[1] / self.count;
        let per_channel = straight_through.repeat_interleave_self_int(per_copy, 0, None::<i64>);
        output * per_channel.view([1, -1, 1, 1])
    }

    fn linear(&mut self, x: &Tensor, linear: &nn::Linear) -> Tensor {
        let weight = self.leaf(&linear.ws);
        let n = x.size()[0];
        let features = x.view([n, self.count, -1]);
        let y = Tensor::einsum("ngc,goc->ngo", &[features, weight], None::<i64>);
        let y = match &linear.bs {
            Some(bias) => y + bias.detach(),
            None => y,
        };
        y.reshape([n, -1])
    }

    fn channels(&self, logical: i64) -> i64 {
        logical * self.count
    }
}

/// Per-sample gradient rows G (n × P) of the sum of each sample's final logits, for every weight the NTK
/// differentiates, with at most `max_copies` samples per backward pass. Equal to `ntk::gradient_rows` over
/// `Supernet::weight_tensors` up to the order of columns and rounding, so G·Gᵀ is the same kernel. The backward
/// passes and G itself are allocated through tch's fallible calls.
pub fn gradient_rows(
    net: &Supernet,
    batches: &[Tensor],
    mode: Mode,
    max_copies: usize,
    channels_last: bool,
) -> Result<Tensor, TchError> {
    let mut chunks = Vec::new();
    for batch in batches {
        let samples = batch.size()[0];
        let step = (max_copies.max(1) as i64).min(samples.max(1));
        for start in (0..samples).step_by(step as usize) {
            let count = step.min(samples - start);
            let mut layers = Replicated::new(count, channels_last);
            let logits = net
                .forward_with(batch, mode, &mut layers)
                .pop()
                .expect("one head at least");
            let classes = logits.size()[1] / count;
            // Copy r is differentiated through sample start + r only.
            let target = logits
                .view([samples, count, classes])
                .narrow(0, start, count)
                .diagonal(0, 0, 1)
                .sum(Kind::Float);
            let leaves = layers.leaves();
            let grads = Tensor::f_run_backward(&[target], leaves, false, false)?;
            chunks.push(super::ntk::gradient_columns(&grads, leaves, count)?);
        }
    }
    Tensor::f_cat(&chunks, 0)
}
