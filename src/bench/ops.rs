//! Workload (e): each candidate op alone, forward and backward, at every edge shape of the benchmark network
//! (R = 2, C = 16, 28×28 input, batch 64): where a network's training time goes, op by op (docs/PERFORMANCE.md,
//! *Where the training time goes*).

use super::BenchConfig;
use super::stats::{self, Measurement};
use crate::genotype::Op;
use crate::nn::blocks::preferred_layout;
use crate::nn::ops::OpBlock;
use crate::system::memory_probe::MemoryWindow;
use tch::{Kind, Tensor, nn};

/// One edge shape: the cell, its channels, the side of the edge's input and the edge's stride.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeShape {
    /// Cell index (0 is the normal cell, 1 and 2 reduce).
    pub cell: usize,
    /// Channels the op works on.
    pub channels: i64,
    /// Height and width of its input.
    pub side: i64,
    /// 2 on a reduction cell's input edges, else 1.
    pub stride: i64,
}

/// Every edge shape of an R = 2, C = 16 network on 28×28 images: a reduction cell's input edges halve the
/// resolution, its interior edges work on the halved one.
pub const EDGE_SHAPES: [EdgeShape; 5] = [
    EdgeShape {
        cell: 0,
        channels: 16,
        side: 28,
        stride: 1,
    },
    EdgeShape {
        cell: 1,
        channels: 32,
        side: 28,
        stride: 2,
    },
    EdgeShape {
        cell: 1,
        channels: 32,
        side: 14,
        stride: 1,
    },
    EdgeShape {
        cell: 2,
        channels: 64,
        side: 14,
        stride: 2,
    },
    EdgeShape {
        cell: 2,
        channels: 64,
        side: 7,
        stride: 1,
    },
];

/// The workload id of `op` at `shape`, e.g. `e-op-sep_conv_3x3-cell1-s2`.
pub fn op_workload(op: Op, shape: EdgeShape) -> String {
    format!("e-op-{}-cell{}-s{}", op.name(), shape.cell, shape.stride)
}

/// Milliseconds per forward and backward pass of every op at every edge shape, in training mode (batch-norm
/// statistics from the batch), on random inputs in the network's memory format.
pub fn op_timings(config: &BenchConfig) -> Vec<Measurement> {
    let batch = config.batch as i64;
    let mut results = Vec::new();
    for shape in EDGE_SHAPES {
        for op in Op::ALL {
            let window = MemoryWindow::start(config.device);
            let store = nn::VarStore::new(config.device);
            let block = OpBlock::new(&store.root(), op, shape.channels, shape.stride);
            let x = preferred_layout(&Tensor::randn(
                [batch, shape.channels, shape.side, shape.side],
                (Kind::Float, config.device),
            ))
            .set_requires_grad(true);
            let run = |steps: usize| {
                for _ in 0..steps {
                    block.forward_t(&x, true).sum(Kind::Float).backward();
                }
            };
            run(config.warmup);
            stats::synchronize(config.device);
            let seconds = stats::timed(config.repeats, config.device, || run(config.steps));
            let milliseconds = seconds.iter().map(|s| 1000.0 * s / config.steps as f64).collect();
            let mut result = Measurement::new(&op_workload(op, shape), "ms", milliseconds, config.threads);
            result.batch = Some(config.batch);
            results.push(result.with_memory(window));
        }
    }
    results
}
