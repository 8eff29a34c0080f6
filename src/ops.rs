//! The seven candidate operations (docs/ALGORITHM.md §4), at a fixed channel count and stride.

use crate::blocks::{Conv, ConvShape, batch_norm, batch_norm_tensors, conv, subsample};
use crate::genotype::Op;
use crate::init::{self, InitScheme};
use crate::layers::Layers;
use rand_chacha::ChaCha8Rng;
use tch::{Tensor, nn};

/// Depthwise conv → pointwise 1×1 conv → BN: the shared body of sep-conv and dil-conv.
#[derive(Debug)]
struct DepthwisePointwise {
    depthwise: Conv,
    pointwise: Conv,
    bn: nn::BatchNorm,
}

impl DepthwisePointwise {
    fn new(path: &nn::Path, channels: i64, kernel: i64, stride: i64, dilation: i64) -> Self {
        let (depthwise, pointwise) = ConvShape::depthwise_pointwise(channels, kernel, stride, dilation);
        DepthwisePointwise {
            depthwise: conv(path / "dw", depthwise),
            pointwise: conv(path / "pw", pointwise),
            bn: batch_norm(path / "bn", channels),
        }
    }

    fn forward(&self, x: &Tensor, train: bool, layers: &mut dyn Layers) -> Tensor {
        let y = layers.conv(x, &self.depthwise);
        let y = layers.conv(&y, &self.pointwise);
        layers.batch_norm(&y, &self.bn, train)
    }

    fn named_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![
            (format!("{prefix}depthwise.weight"), self.depthwise.ws.shallow_clone()),
            (format!("{prefix}pointwise.weight"), self.pointwise.ws.shallow_clone()),
        ];
        out.extend(batch_norm_tensors(&format!("{prefix}bn"), &self.bn));
        out
    }

    fn parameters(&self) -> Vec<Tensor> {
        let mut out = vec![self.depthwise.ws.shallow_clone(), self.pointwise.ws.shallow_clone()];
        out.extend(self.bn.ws.iter().map(Tensor::shallow_clone));
        out.extend(self.bn.bs.iter().map(Tensor::shallow_clone));
        out
    }

    fn reset(&self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        init::reset_weight(&self.depthwise.ws, scheme, rng);
        init::reset_weight(&self.pointwise.ws, scheme, rng);
        init::reset_batch_norm(&self.bn);
    }
}

#[derive(Debug)]
enum Body {
    Identity,
    MaxPool,
    AvgPool,
    Separable(Box<(DepthwisePointwise, DepthwisePointwise)>),
    Dilated(Box<DepthwisePointwise>),
}

/// One candidate operation with its weights.
#[derive(Debug)]
pub struct OpBlock {
    /// Which of the seven ops this is.
    pub op: Op,
    /// Spatial stride (1, or 2 on a reduction cell's input edges).
    pub stride: i64,
    body: Body,
}

impl OpBlock {
    /// Builds `op` for `channels` channels and the given stride, registering its weights under `path`.
    pub fn new(path: &nn::Path, op: Op, channels: i64, stride: i64) -> Self {
        let body = match op {
            Op::Identity => Body::Identity,
            Op::MaxPool3x3 => Body::MaxPool,
            Op::AvgPool3x3 => Body::AvgPool,
            Op::SepConv3x3 | Op::SepConv5x5 => {
                let kernel = if op == Op::SepConv3x3 { 3 } else { 5 };
                Body::Separable(Box::new((
                    DepthwisePointwise::new(&(path / "first"), channels, kernel, stride, 1),
                    DepthwisePointwise::new(&(path / "second"), channels, kernel, 1, 1),
                )))
            }
            Op::DilConv3x3 | Op::DilConv5x5 => {
                let kernel = if op == Op::DilConv3x3 { 3 } else { 5 };
                Body::Dilated(Box::new(DepthwisePointwise::new(path, channels, kernel, stride, 2)))
            }
        };
        OpBlock { op, stride, body }
    }

    /// Applies the op; `train` selects batch or running statistics in its batch norms.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_recording(x, train, None, &mut crate::layers::Plain)
    }

    /// Applies the op through `layers` and, when `relus` is given, appends the output of its ReLU (sep-convs only).
    pub fn forward_recording(
        &self,
        x: &Tensor,
        train: bool,
        relus: Option<&mut Vec<Tensor>>,
        layers: &mut dyn Layers,
    ) -> Tensor {
        let s = self.stride;
        match &self.body {
            Body::Identity if s == 1 => x.shallow_clone(),
            Body::Identity => subsample(x, s),
            Body::MaxPool => x.max_pool2d([3, 3], [s, s], [1, 1], [1, 1], false),
            Body::AvgPool => x.avg_pool2d([3, 3], [s, s], [1, 1], false, true, None::<i64>),
            Body::Separable(pair) => {
                let hidden = pair.0.forward(x, train, layers).relu();
                if let Some(relus) = relus {
                    relus.push(hidden.shallow_clone());
                }
                pair.1.forward(&hidden, train, layers)
            }
            Body::Dilated(body) => body.forward(x, train, layers),
        }
    }

    /// The op's tensors with names relative to the op (docs/EXPORT.md): `depthwise.weight`, `pointwise.weight`,
    /// `bn.*` for dil-convs, the same under `first.` and `second.` for sep-convs, nothing for the others.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        match &self.body {
            Body::Identity | Body::MaxPool | Body::AvgPool => Vec::new(),
            Body::Separable(pair) => {
                let mut out = pair.0.named_tensors("first.");
                out.extend(pair.1.named_tensors("second."));
                out
            }
            Body::Dilated(body) => body.named_tensors(""),
        }
    }

    /// The op's trainable tensors (conv weights, BN γ and β).
    pub fn parameters(&self) -> Vec<Tensor> {
        match &self.body {
            Body::Identity | Body::MaxPool | Body::AvgPool => Vec::new(),
            Body::Separable(pair) => {
                let mut out = pair.0.parameters();
                out.extend(pair.1.parameters());
                out
            }
            Body::Dilated(body) => body.parameters(),
        }
    }

    /// Re-initialises the op's weights and batch norms.
    pub fn reset(&self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        match &self.body {
            Body::Identity | Body::MaxPool | Body::AvgPool => {}
            Body::Separable(pair) => {
                pair.0.reset(scheme, rng);
                pair.1.reset(scheme, rng);
            }
            Body::Dilated(body) => body.reset(scheme, rng),
        }
    }
}

/// Parameters of `op` at `channels` channels, without its pruner: 2Ck²+2C²+4C for sep-conv, Ck²+C²+2C for dil-conv.
pub fn op_parameter_count(op: Op, channels: usize) -> usize {
    let c = channels;
    match op {
        Op::Identity | Op::MaxPool3x3 | Op::AvgPool3x3 => 0,
        Op::SepConv3x3 => 2 * c * 9 + 2 * c * c + 4 * c,
        Op::SepConv5x5 => 2 * c * 25 + 2 * c * c + 4 * c,
        Op::DilConv3x3 => c * 9 + c * c + 2 * c,
        Op::DilConv5x5 => c * 25 + c * c + 2 * c,
    }
}
