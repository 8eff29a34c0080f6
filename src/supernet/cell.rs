//! One cell of the supernet: input rescalers, per-node batch norms and gated edges, run in node order.

use super::Pass;
use super::edge::EdgeNet;
use crate::blocks::{self, Conv, ConvShape};
use crate::genotype::{Cell, DeadheadOutcome};
use crate::init::{self, InitScheme};
use crate::layers::Layers;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tch::{Tensor, nn};

/// Brings one dense input to the cell's width (1×1 conv + BN when channels differ) and resolution (every
/// second row and column, once per halving).
#[derive(Debug)]
pub struct Rescaler {
    projection: Option<(Conv, nn::BatchNorm)>,
    halvings: usize,
}

impl Rescaler {
    fn new(path: &nn::Path, c_in: i64, c_out: i64, halvings: usize) -> Self {
        let projection = (c_in != c_out).then(|| {
            let shape = ConvShape {
                c_in,
                c_out,
                kernel: 1,
                stride: 1,
                dilation: 1,
                groups: 1,
            };
            (
                blocks::conv(path / "conv", shape),
                blocks::batch_norm(path / "bn", c_out),
            )
        });
        Rescaler { projection, halvings }
    }

    fn forward(&self, x: &Tensor, train: bool, layers: &mut dyn Layers) -> Tensor {
        let mut y = match &self.projection {
            Some((conv, bn)) => {
                let projected = layers.conv(x, conv);
                layers.batch_norm(&projected, bn, train)
            }
            None => x.shallow_clone(),
        };
        if self.halvings > 0 {
            y = blocks::subsample(&y, 1 << self.halvings);
        }
        y
    }

    fn parameters(&self) -> Vec<Tensor> {
        match &self.projection {
            Some((conv, bn)) => batch_norm_parameters(bn)
                .into_iter()
                .chain([conv.ws.shallow_clone()])
                .collect(),
            None => Vec::new(),
        }
    }

    fn reset(&self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        if let Some((conv, bn)) = &self.projection {
            init::reset_weight(&conv.ws, scheme, rng);
            init::reset_batch_norm(bn);
        }
    }
}

/// γ and β of a batch norm.
pub fn batch_norm_parameters(bn: &nn::BatchNorm) -> Vec<Tensor> {
    bn.ws.iter().chain(bn.bs.iter()).map(Tensor::shallow_clone).collect()
}

/// The tensors of one cell.
#[derive(Debug)]
pub struct CellNet {
    /// Width of every node in this cell.
    pub channels: i64,
    rescalers: Vec<Rescaler>,
    node_norms: Vec<nn::BatchNorm>,
    /// Gated ops per edge id.
    pub edges: BTreeMap<u32, EdgeNet>,
    output_size: (i64, i64),
    pruner_init: f64,
}

/// Where each dense input of a cell comes from: its channel count and how many halvings bring it to the cell.
#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    /// Channels of the input tensor.
    pub channels: i64,
    /// Halvings of resolution from the input to the cell's working resolution.
    pub halvings: usize,
}

impl CellNet {
    /// Builds the tensors of `cell` at `channels` channels under `path`; `output_size` is the output's (H, W).
    pub fn new(
        path: &nn::Path,
        cell: &Cell,
        channels: i64,
        inputs: &[InputSpec],
        output_size: (i64, i64),
        pruner_init: f64,
    ) -> Self {
        let rescalers = inputs
            .iter()
            .enumerate()
            .map(|(i, spec)| Rescaler::new(&(path / format!("input{i}")), spec.channels, channels, spec.halvings))
            .collect();
        let node_norms = (0..cell.n_nodes)
            .map(|v| blocks::batch_norm(path / format!("node{v}"), channels))
            .collect();
        let edges = cell
            .edges
            .iter()
            .map(|edge| {
                let stride = cell.stride(edge) as i64;
                let net = EdgeNet::new(
                    &(path / format!("edge{}", edge.id)),
                    &edge.ops,
                    channels,
                    stride,
                    pruner_init,
                );
                (edge.id, net)
            })
            .collect();
        CellNet {
            channels,
            rescalers,
            node_norms,
            edges,
            output_size,
            pruner_init,
        }
    }

    /// Runs the cell on its dense inputs; edges in `disabled` contribute nothing.
    pub fn forward(&self, cell: &Cell, inputs: &[Tensor], disabled: &[u32], pass: &mut Pass) -> Tensor {
        let train = pass.mode.train;
        let mut inbox: Vec<Option<Tensor>> = (0..cell.n_nodes).map(|_| None).collect();
        for (i, (x, rescaler)) in inputs.iter().zip(&self.rescalers).enumerate() {
            inbox[i] = Some(rescaler.forward(x, train, &mut *pass.layers));
        }
        let output = cell.output();
        for v in 0..cell.n_nodes {
            let outgoing: Vec<_> = cell
                .edges
                .iter()
                .filter(|e| e.from == v && !disabled.contains(&e.id))
                .collect();
            if v != output && outgoing.is_empty() {
                continue;
            }
            let Some(sum) = inbox[v].take() else {
                continue;
            };
            let h = pass.layers.batch_norm(&sum, &self.node_norms[v], train);
            if v == output {
                return h;
            }
            for edge in outgoing {
                let Some(y) = self.edges.get(&edge.id).and_then(|e| e.forward(&h, pass)) else {
                    continue;
                };
                inbox[edge.to] = Some(match inbox[edge.to].take() {
                    Some(acc) => acc + y,
                    None => y,
                });
            }
        }
        // Every path to the output is switched off: the output node sees a zero input.
        let reference = &inputs[0];
        let (h, w) = self.output_size;
        let zeros = Tensor::zeros(
            [reference.size()[0], pass.layers.channels(self.channels), h, w],
            (reference.kind(), reference.device()),
        );
        pass.layers.batch_norm(&zeros, &self.node_norms[output], train)
    }

    /// Applies a deadhead outcome of the genotype to the tensors.
    pub fn apply_deadhead(&mut self, outcome: &DeadheadOutcome) {
        for (edge, op) in &outcome.killed {
            if let Some(net) = self.edges.get_mut(edge) {
                net.remove(*op);
            }
        }
        for edge in &outcome.removed_edges {
            if let Some(mut net) = self.edges.remove(edge) {
                for op in &mut net.ops {
                    op.freeze();
                }
            }
        }
        let mut removed = outcome.removed_nodes.clone();
        removed.sort_unstable();
        for &node in removed.iter().rev() {
            if node < self.node_norms.len() {
                self.node_norms.remove(node);
            }
        }
    }

    /// Every tensor of the live cell, named relative to the cell as docs/EXPORT.md describes.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, rescaler) in self.rescalers.iter().enumerate() {
            if let Some((conv, bn)) = &rescaler.projection {
                out.push((format!("inputs.{i}.conv.weight"), conv.ws.shallow_clone()));
                out.extend(blocks::batch_norm_tensors(&format!("inputs.{i}.bn"), bn));
            }
        }
        for (v, norm) in self.node_norms.iter().enumerate() {
            out.extend(blocks::batch_norm_tensors(&format!("nodes.{v}.bn"), norm));
        }
        for (id, edge) in &self.edges {
            for op in &edge.ops {
                let prefix = format!("edges.{id}.{}", op.block.op.name());
                out.push((format!("{prefix}.gate"), op.pruner.shallow_clone()));
                out.extend(
                    op.block
                        .named_tensors()
                        .into_iter()
                        .map(|(name, tensor)| (format!("{prefix}.{name}"), tensor)),
                );
            }
        }
        out
    }

    /// Trainable tensors of the live parts of the cell, pruners included.
    pub fn parameters(&self) -> Vec<Tensor> {
        let mut out: Vec<Tensor> = self.rescalers.iter().flat_map(Rescaler::parameters).collect();
        out.extend(self.node_norms.iter().flat_map(batch_norm_parameters));
        for edge in self.edges.values() {
            for op in &edge.ops {
                out.extend(op.block.parameters());
                out.push(op.pruner.shallow_clone());
            }
        }
        out
    }

    /// Re-initialises every live tensor of the cell and resets the gates.
    pub fn reset(&mut self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        for rescaler in &self.rescalers {
            rescaler.reset(scheme, rng);
        }
        for norm in &self.node_norms {
            init::reset_batch_norm(norm);
        }
        for edge in self.edges.values_mut() {
            edge.reset(scheme, self.pruner_init, rng);
        }
    }
}
