//! The gated ops of one edge: each live op with its pruner weight and gate history.

use super::Pass;
use crate::genotype::Op;
use crate::nn::init::InitScheme;
use crate::nn::ops::OpBlock;
use crate::nn::pruner::GateHistory;
use crate::nn::tensor_names as names;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use tch::{Tensor, nn};

/// One op on an edge, with its gate.
#[derive(Debug)]
pub struct GatedOp {
    /// The op's weights.
    pub block: OpBlock,
    /// The gate weight w; the op contributes while w > 0.
    pub gate: Tensor,
    /// Gate-open counts for the deadhead rule.
    pub history: GateHistory,
}

impl GatedOp {
    fn new(edge: &nn::Path, op: Op, channels: i64, stride: i64, pruner_init: f64) -> Self {
        let path = edge / op.name();
        GatedOp {
            block: OpBlock::new(&path, op, channels, stride),
            gate: path.var(names::GATE, &[], nn::Init::Const(pruner_init)),
            history: GateHistory::default(),
        }
    }

    /// The gated output, with drop-path when `drop_path` > 0 (never on Identity): each sample's output is
    /// zeroed with probability p, and kept ones are scaled by 1/(1−p).
    pub fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let train = pass.mode.train;
        let drop_path = pass.mode.drop_path;
        let output = self
            .block
            .forward_recording(x, train, pass.relus.as_deref_mut(), &mut *pass.layers);
        let y = pass.layers.gate(&self.gate, &output);
        if drop_path > 0.0 && self.block.op != Op::Identity {
            let rng = &mut *pass.rng;
            let keep = 1.0 - drop_path;
            let rows = y.size()[0] as usize;
            let (drawn, start) = match pass.mode.share {
                Some(share) => (share.global, share.start),
                None => (rows, 0),
            };
            let mask: Vec<f32> = (0..drawn)
                .map(|_| {
                    if rng.random::<f64>() < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let mask = Tensor::from_slice(&mask[start..start + rows])
                .view([-1, 1, 1, 1])
                .to_kind(y.kind())
                .to_device(y.device());
            y * mask
        } else {
            y
        }
    }

    fn reset(&mut self, scheme: InitScheme, pruner_init: f64, rng: &mut ChaCha8Rng) {
        self.block.reset(scheme, rng);
        tch::no_grad(|| {
            let _ = self.gate.fill_(pruner_init);
        });
        self.history = GateHistory::default();
    }
}

/// The live ops of one edge.
#[derive(Debug)]
pub struct EdgeNet {
    /// Live ops in genotype order.
    pub ops: Vec<GatedOp>,
}

impl EdgeNet {
    /// Builds the given ops under the edge's `path`, each under its op name.
    pub fn new(path: &nn::Path, ops: &[Op], channels: i64, stride: i64, pruner_init: f64) -> Self {
        EdgeNet {
            ops: ops
                .iter()
                .map(|&op| GatedOp::new(path, op, channels, stride, pruner_init))
                .collect(),
        }
    }

    /// Sum of the gated outputs of every live op.
    pub fn forward(&self, x: &Tensor, pass: &mut Pass) -> Option<Tensor> {
        self.ops.iter().map(|op| op.forward(x, pass)).reduce(|a, b| a + b)
    }

    /// Removes `op`; returns whether it was present. Its tensors leave the variable store with
    /// `Supernet::deadhead`.
    pub fn remove(&mut self, op: Op) -> bool {
        let before = self.ops.len();
        self.ops.retain(|g| g.block.op != op);
        self.ops.len() < before
    }

    /// Re-initialises every op and resets its gate.
    pub fn reset(&mut self, scheme: InitScheme, pruner_init: f64, rng: &mut ChaCha8Rng) {
        for op in &mut self.ops {
            op.reset(scheme, pruner_init, rng);
        }
    }
}
