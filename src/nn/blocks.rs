//! The building blocks every op, the stem, the rescalers and the nodes are made of: bias-free convolutions and
//! batch norms with PyTorch's settings, and the memory format of the feature maps. The forward pass applies them
//! through `layers::Layers`; the ops (`ops`) compose them.

use crate::genotype::{BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, ConvShape};
use crate::nn::init;
use std::sync::atomic::{AtomicU8, Ordering};
use tch::{Tensor, nn};

/// Batch-norm settings used everywhere: PyTorch's eps and momentum, γ = 1, β = 0.
pub fn batch_norm(path: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        eps: BATCH_NORM_EPS,
        momentum: BATCH_NORM_MOMENTUM,
        affine: true,
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(path, channels, config)
}

/// The sub-path of `root` that a dotted tensor name (crate::nn::tensor_names) denotes.
pub fn path<'a>(root: &nn::Path<'a>, name: &str) -> nn::Path<'a> {
    let mut segments = name.split('.');
    let first = segments.next().unwrap_or_default();
    segments.fold(root / first, |path, segment| path / segment)
}

/// How the network's feature maps are laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryFormat {
    /// Channels-last on the CPU, where oneDNN's depthwise and dilated kernels, max-pool and batch norm are
    /// vectorised over channels (training 2.2–2.4× faster than NCHW, docs/PERFORMANCE.md); NCHW on CUDA.
    Auto,
    /// NCHW (contiguous) everywhere.
    Nchw,
    /// Channels-last (NHWC strides, NCHW shape) everywhere.
    ChannelsLast,
}

/// The process-wide choice; `Auto` until [`set_memory_format`]. One setting for the whole process, like libtorch's
/// thread count, because every network of a run (supernet, thin scoring copies, final network) must agree.
static MEMORY_FORMAT: AtomicU8 = AtomicU8::new(MemoryFormat::Auto as u8);

/// Sets the memory format of every network built or run from now on (benchmarks compare both layouts).
pub fn set_memory_format(format: MemoryFormat) {
    MEMORY_FORMAT.store(format as u8, Ordering::Relaxed);
}

/// The memory format in force.
pub fn memory_format() -> MemoryFormat {
    match MEMORY_FORMAT.load(Ordering::Relaxed) {
        x if x == MemoryFormat::Nchw as u8 => MemoryFormat::Nchw,
        x if x == MemoryFormat::ChannelsLast as u8 => MemoryFormat::ChannelsLast,
        _ => MemoryFormat::Auto,
    }
}

/// Whether feature maps on `device` are kept channels-last under the memory format in force.
pub fn uses_channels_last(device: tch::Device) -> bool {
    match memory_format() {
        MemoryFormat::Auto => device == tch::Device::Cpu,
        MemoryFormat::Nchw => false,
        MemoryFormat::ChannelsLast => true,
    }
}

/// `x` in the memory format the network's feature maps use on its device (see [`MemoryFormat`]). Later ops keep
/// the format.
pub fn preferred_layout(x: &Tensor) -> Tensor {
    if x.dim() == 4 && uses_channels_last(x.device()) {
        channels_last(x)
    } else {
        x.shallow_clone()
    }
}

/// A copy of the 4-d `x` with channels-last strides (a no-op copy when it already has them).
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Every `step`-th row and column from the first, as `x[:, :, ::step, ::step]`. Written as a 1×1 average pool
/// because its gradient then keeps the input's memory format; a strided view's gradient is always NCHW, which
/// sends a channels-last batch norm below it to a slow serial kernel.
pub fn subsample(x: &Tensor, step: i64) -> Tensor {
    x.avg_pool2d([1, 1], [step, step], [0, 0], false, true, None::<i64>)
}

/// Mean over the spatial dimensions: (N, C, H, W) → (N, C), written as a full-size average pool for the same
/// reason as `subsample`.
pub fn global_average(x: &Tensor) -> Tensor {
    let size = x.size();
    let (h, w) = (size[2], size[3]);
    x.avg_pool2d([h, w], [h, w], [0, 0], false, true, None::<i64>)
        .flatten(1, -1)
}

/// A bias-free convolution: its weight (c_out, c_in / groups, k, k) and geometry.
#[derive(Debug)]
pub struct Conv {
    /// The weight.
    pub ws: Tensor,
    /// Channels, kernel, stride, dilation and groups.
    pub shape: ConvShape,
}

impl Conv {
    /// Convolves `x` with `weight`, this convolution's weight or `replicas` copies of it stacked along the output
    /// channels (then run as `replicas` times as many groups). A stride-2, dilation-2 convolution only ever reads
    /// even rows and columns, so it runs as a plain stride-1 convolution on those: the same sums, without the
    /// dilated kernel's slow im2col path.
    pub fn apply_weight(&self, x: &Tensor, weight: &Tensor, replicas: i64) -> Tensor {
        let s = self.shape;
        let groups = s.groups * replicas;
        let reads_even_only = s.stride == 2 && s.dilation == 2 && s.kernel % 2 == 1 && s.padding() == s.kernel - 1;
        if reads_even_only {
            let even = subsample(x, 2);
            let pad = (s.kernel - 1) / 2;
            even.conv2d(weight, None::<Tensor>, [1, 1], [pad, pad], [1, 1], groups)
        } else {
            let p = s.padding();
            x.conv2d(
                weight,
                None::<Tensor>,
                [s.stride, s.stride],
                [p, p],
                [s.dilation, s.dilation],
                groups,
            )
        }
    }
}

/// A bias-free convolution with PyTorch's default initialisation, its weight registered as `weight` under `path`.
pub fn conv(path: nn::Path, shape: ConvShape) -> Conv {
    let dims = shape.weight_dims();
    Conv {
        ws: path.var(
            crate::nn::tensor_names::WEIGHT,
            &dims,
            init::pytorch_default_init(&dims),
        ),
        shape,
    }
}
