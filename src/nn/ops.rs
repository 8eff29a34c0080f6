//! The seven candidate operations (docs/ALGORITHM.md §4), at a fixed channel count and stride.

use crate::genotype::{ConvBlock, ConvShape, Op};
use crate::nn::blocks::{Conv, batch_norm, conv, subsample};
use crate::nn::init::{self, InitScheme};
use crate::nn::layers::Layers;
use crate::nn::tensor_names as names;
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
    fn new(path: &nn::Path, (depthwise, pointwise): ConvBlock) -> Self {
        DepthwisePointwise {
            depthwise: conv(path / names::DEPTHWISE, depthwise),
            pointwise: conv(path / names::POINTWISE, pointwise),
            bn: batch_norm(path / names::BN, pointwise.c_out),
        }
    }

    fn forward(&self, x: &Tensor, train: bool, layers: &mut dyn Layers) -> Tensor {
        let y = layers.conv(x, &self.depthwise);
        let y = layers.conv(&y, &self.pointwise);
        layers.batch_norm(&y, &self.bn, train)
    }

    fn reset(&self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        init::reset_weight(&self.depthwise.ws, scheme, rng);
        init::reset_weight(&self.pointwise.ws, scheme, rng);
        init::reset_batch_norm(&self.bn);
    }
}

/// ReLU → dense convolution → BN: the dense op set's convolutions.
#[derive(Debug)]
struct ReluConvBn {
    conv: Conv,
    bn: nn::BatchNorm,
}

impl ReluConvBn {
    fn new(path: &nn::Path, shape: ConvShape) -> Self {
        ReluConvBn {
            conv: conv(path / names::CONV, shape),
            bn: batch_norm(path / names::BN, shape.c_out),
        }
    }

    fn reset(&self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        init::reset_weight(&self.conv.ws, scheme, rng);
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
    Dense(Box<ReluConvBn>),
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
        let mut blocks = op.conv_blocks(channels, stride).into_iter();
        let body = match (op, blocks.next(), blocks.next()) {
            _ if let Some(shape) = op.dense_conv(channels, stride) => {
                Body::Dense(Box::new(ReluConvBn::new(path, shape)))
            }
            (Op::MaxPool3x3, ..) => Body::MaxPool,
            (Op::AvgPool3x3, ..) => Body::AvgPool,
            (_, Some(first), Some(second)) => Body::Separable(Box::new((
                DepthwisePointwise::new(&(path / names::FIRST), first),
                DepthwisePointwise::new(&(path / names::SECOND), second),
            ))),
            (_, Some(only), None) => Body::Dilated(Box::new(DepthwisePointwise::new(path, only))),
            _ => Body::Identity,
        };
        OpBlock { op, stride, body }
    }

    /// Applies the op; `train` selects batch or running statistics in its batch norms.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_recording(x, train, None, &mut crate::nn::layers::Plain)
    }

    /// Applies the op through `layers` and, when `relus` is given, appends the output of its ReLU (the sep-convs'
    /// and the dense convolutions').
    pub fn forward_recording(
        &self,
        x: &Tensor,
        train: bool,
        relus: Option<&mut Vec<Tensor>>,
        layers: &mut dyn Layers,
    ) -> Tensor {
        let (s, k) = (self.stride, self.op.kernel());
        match &self.body {
            Body::Identity if s == 1 => x.shallow_clone(),
            Body::Identity => subsample(x, s),
            Body::MaxPool => x.max_pool2d([k, k], [s, s], [k / 2, k / 2], [1, 1], false),
            Body::AvgPool => x.avg_pool2d([k, k], [s, s], [k / 2, k / 2], false, true, None::<i64>),
            Body::Separable(pair) => {
                let hidden = pair.0.forward(x, train, layers).relu();
                if let Some(relus) = relus {
                    relus.push(hidden.shallow_clone());
                }
                pair.1.forward(&hidden, train, layers)
            }
            Body::Dilated(body) => body.forward(x, train, layers),
            Body::Dense(body) => {
                let hidden = x.relu();
                if let Some(relus) = relus {
                    relus.push(hidden.shallow_clone());
                }
                let y = layers.conv(&hidden, &body.conv);
                layers.batch_norm(&y, &body.bn, train)
            }
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
            Body::Dense(body) => body.reset(scheme, rng),
        }
    }
}
