//! The network a genotype describes, as shapes and counts without tensors (docs/ALGORITHM.md §2–§4): the stem,
//! each cell's dense inputs and their rescalers, the convolutions of every op, the batch-norm settings, and the
//! parameter counts that follow from them. The tensor code (`supernet`, `ops`), the exporter and the memory
//! estimate all read the architecture from here.

use super::network::Genotype;
use super::op::Op;

/// Batch-norm ε of every batch norm in the network (PyTorch's default).
pub const BATCH_NORM_EPS: f64 = 1e-5;
/// Batch-norm momentum of the running statistics (PyTorch's default).
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;
/// Kernel side of the stem convolution.
pub const STEM_KERNEL: i64 = 3;

/// Geometry of one bias-free convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// Kernel side.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Dilation.
    pub dilation: i64,
    /// Groups (c_in for depthwise).
    pub groups: i64,
}

impl ConvShape {
    /// A dense k×k convolution with stride and dilation 1.
    pub fn dense(c_in: i64, c_out: i64, kernel: i64) -> Self {
        ConvShape {
            c_in,
            c_out,
            kernel,
            stride: 1,
            dilation: 1,
            groups: 1,
        }
    }

    /// The two convolutions of a depthwise–pointwise block: depthwise k×k (stride, dilation), then pointwise 1×1.
    pub fn depthwise_pointwise(channels: i64, kernel: i64, stride: i64, dilation: i64) -> (ConvShape, ConvShape) {
        let depthwise = ConvShape {
            c_in: channels,
            c_out: channels,
            kernel,
            stride,
            dilation,
            groups: channels,
        };
        (depthwise, ConvShape::dense(channels, channels, 1))
    }

    /// Padding ceil((k·d − d + 1 − s) / 2), as the published implementation computes it.
    pub fn padding(&self) -> i64 {
        (self.kernel * self.dilation - self.dilation + 1 - self.stride + 1).div_euclid(2)
    }

    /// Dimensions of the weight: (c_out, c_in / groups, k, k).
    pub fn weight_dims(&self) -> [i64; 4] {
        [self.c_out, self.c_in / self.groups, self.kernel, self.kernel]
    }

    /// Scalars in the weight.
    pub fn weight_count(&self) -> usize {
        self.weight_dims().iter().product::<i64>() as usize
    }
}

/// One depthwise–pointwise convolution pair, followed by a batch norm.
pub type ConvBlock = (ConvShape, ConvShape);

impl Op {
    /// Kernel side: 1, 3 or 5 for the convolutions, 3 for the pools, 1 for identity.
    pub fn kernel(self) -> i64 {
        match self {
            Op::Identity | Op::Conv1x1 => 1,
            Op::MaxPool3x3 | Op::AvgPool3x3 | Op::SepConv3x3 | Op::DilConv3x3 | Op::Conv3x3 => 3,
            Op::SepConv5x5 | Op::DilConv5x5 => 5,
        }
    }

    /// The dense convolution of a ReLU–conv–BN op at `channels` channels and `stride`; None for the other ops.
    pub fn dense_conv(self, channels: i64, stride: i64) -> Option<ConvShape> {
        matches!(self, Op::Conv1x1 | Op::Conv3x3).then(|| ConvShape {
            stride,
            ..ConvShape::dense(channels, channels, self.kernel())
        })
    }

    /// Dilation of the depthwise convolutions: 2 for the dil-convs, 1 otherwise.
    pub fn dilation(self) -> i64 {
        match self {
            Op::DilConv3x3 | Op::DilConv5x5 => 2,
            _ => 1,
        }
    }

    /// The depthwise–pointwise blocks the op runs at `channels` channels and `stride`, in order: two for a
    /// sep-conv (the first with the edge's stride, a ReLU between them), one dilated block for a dil-conv, none
    /// for identity, the pools and the dense convolutions ([`Op::dense_conv`]).
    pub fn conv_blocks(self, channels: i64, stride: i64) -> Vec<ConvBlock> {
        let (kernel, dilation) = (self.kernel(), self.dilation());
        match self {
            Op::Identity | Op::MaxPool3x3 | Op::AvgPool3x3 | Op::Conv1x1 | Op::Conv3x3 => Vec::new(),
            Op::SepConv3x3 | Op::SepConv5x5 => vec![
                ConvShape::depthwise_pointwise(channels, kernel, stride, dilation),
                ConvShape::depthwise_pointwise(channels, kernel, 1, dilation),
            ],
            Op::DilConv3x3 | Op::DilConv5x5 => vec![ConvShape::depthwise_pointwise(channels, kernel, stride, dilation)],
        }
    }

    /// Trainable scalars of the op at `channels` channels, without its gate: 2Ck²+2C²+4C for a sep-conv,
    /// Ck²+C²+2C for a dil-conv, C²k²+2C for a dense convolution, 0 otherwise.
    pub fn parameter_count(self, channels: usize) -> usize {
        let blocks = self
            .conv_blocks(channels as i64, 1)
            .iter()
            .map(|(depthwise, pointwise)| {
                depthwise.weight_count() + pointwise.weight_count() + batch_norm_count(channels)
            })
            .sum::<usize>();
        let dense = self
            .dense_conv(channels as i64, 1)
            .map_or(0, |conv| conv.weight_count() + batch_norm_count(channels));
        blocks + dense
    }
}

/// Trainable scalars of a batch norm over `channels` channels (γ and β).
pub fn batch_norm_count(channels: usize) -> usize {
    2 * channels
}

/// One dense input of a cell: the stem (index 0) or the output of cell `index − 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellInput {
    /// Channels of the input tensor.
    pub channels: i64,
    /// Resolution level of the input tensor (the stem and cell 0 are at level 0, cell j at level j).
    pub level: usize,
    /// Halvings of resolution from the input to the cell's working resolution.
    pub halvings: usize,
    /// The 1×1 convolution (with a batch norm) that brings the input to the cell's width, when the widths differ.
    pub projection: Option<ConvShape>,
}

/// The network of a genotype built at a given width (channels of cell 0): the genotype's own width for the
/// trained network, a thinner one for the scoring networks.
#[derive(Clone, Copy, Debug)]
pub struct NetworkShape<'a> {
    /// The architecture.
    pub genotype: &'a Genotype,
    /// Channels of cell 0; cell k has `width · 2^k`.
    pub width: usize,
}

impl<'a> NetworkShape<'a> {
    /// The network of `genotype` at `width`.
    pub fn new(genotype: &'a Genotype, width: usize) -> Self {
        NetworkShape { genotype, width }
    }

    /// Channels of cell `k`: `width · 2^k` (saturating).
    pub fn cell_channels(&self, k: usize) -> usize {
        let factor = u32::try_from(k)
            .ok()
            .and_then(|k| 1usize.checked_shl(k))
            .unwrap_or(usize::MAX);
        self.width.saturating_mul(factor)
    }

    /// The stem: a 3×3 convolution from the image channels to cell 0's width, then a batch norm.
    pub fn stem(&self) -> ConvShape {
        ConvShape::dense(self.genotype.input.channels as i64, self.width as i64, STEM_KERNEL)
    }

    /// The dense inputs of cell `k`, in order: the stem, then every earlier cell's output.
    pub fn cell_inputs(&self, k: usize) -> Vec<CellInput> {
        let channels = self.cell_channels(k) as i64;
        let working = self.genotype.cell_input_level(k);
        std::iter::once((self.cell_channels(0), 0))
            .chain((0..k).map(|j| (self.cell_channels(j), j)))
            .map(|(c_in, level)| {
                let c_in = c_in as i64;
                CellInput {
                    channels: c_in,
                    level,
                    halvings: working.saturating_sub(level),
                    projection: (c_in != channels).then(|| ConvShape::dense(c_in, channels, 1)),
                }
            })
            .collect()
    }

    /// Trainable scalars of the whole network: stem, rescalers, node batch norms, live ops with one gate each,
    /// and towers. Equals `Supernet::parameter_count` for the same network.
    pub fn parameter_count(&self) -> usize {
        self.stem_parameter_count()
            + (0..self.genotype.cells.len())
                .map(|k| self.cell_parameter_count(k))
                .sum::<usize>()
    }

    /// Trainable scalars of the stem (convolution and batch norm).
    pub fn stem_parameter_count(&self) -> usize {
        self.stem().weight_count() + batch_norm_count(self.width)
    }

    /// Trainable scalars that belong to cell `k`: its input rescalers, node batch norms, live ops with their
    /// gates, and its tower.
    pub fn cell_parameter_count(&self, k: usize) -> usize {
        let cell = &self.genotype.cells[k];
        let c = self.cell_channels(k);
        let rescalers = self
            .cell_inputs(k)
            .iter()
            .filter_map(|input| input.projection)
            .map(|projection| projection.weight_count() + batch_norm_count(c))
            .sum::<usize>();
        let ops = cell
            .edges
            .iter()
            .flat_map(|e| &e.ops)
            .map(|&op| op.parameter_count(c) + 1)
            .sum::<usize>();
        let classes = self.genotype.classes;
        rescalers + cell.n_nodes * batch_norm_count(c) + ops + c * classes + classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::InputShape;

    #[test]
    fn op_parameter_counts_follow_the_closed_forms() {
        let c = 6;
        for op in Op::ALL {
            let k = op.kernel() as usize;
            let expected = match op {
                Op::SepConv3x3 | Op::SepConv5x5 => 2 * c * k * k + 2 * c * c + 4 * c,
                Op::DilConv3x3 | Op::DilConv5x5 => c * k * k + c * c + 2 * c,
                Op::Conv1x1 | Op::Conv3x3 => c * c * k * k + 2 * c,
                _ => 0,
            };
            assert_eq!(op.parameter_count(c), expected, "{op}");
        }
    }

    #[test]
    fn cell_inputs_are_the_stem_then_every_earlier_cell() {
        let genotype = Genotype::minimal(2, 4, InputShape::new(1, 8, 8), 10).unwrap();
        let shape = NetworkShape::new(&genotype, 4);
        let inputs = shape.cell_inputs(2);
        let summary: Vec<(i64, usize, usize, bool)> = inputs
            .iter()
            .map(|i| (i.channels, i.level, i.halvings, i.projection.is_some()))
            .collect();
        // Cell 2 works at level 1 with 16 channels: the stem and cell 0 come from level 0, cell 1 is at level 1.
        assert_eq!(summary, vec![(4, 0, 1, true), (4, 0, 1, true), (8, 1, 0, true)]);
        assert_eq!(inputs[2].projection, Some(ConvShape::dense(8, 16, 1)));
        // Cell 0 reads the stem at its own width: no projection.
        assert_eq!(shape.cell_inputs(0)[0].projection, None);
    }

    #[test]
    fn padding_keeps_size_at_stride_one_and_halves_with_ceil_at_two() {
        let ops = [
            Op::SepConv3x3,
            Op::SepConv5x5,
            Op::DilConv3x3,
            Op::DilConv5x5,
            Op::Conv1x1,
            Op::Conv3x3,
        ];
        for op in ops {
            for (stride, size, expected) in [(1, 7, 7), (2, 7, 4), (2, 8, 4)] {
                let dw = op
                    .dense_conv(4, stride)
                    .unwrap_or_else(|| op.conv_blocks(4, stride)[0].0);
                let out = (size + 2 * dw.padding() - dw.dilation * (dw.kernel - 1) - 1) / stride + 1;
                assert_eq!(out, expected, "{op} stride {stride} on {size}");
            }
        }
    }
}
