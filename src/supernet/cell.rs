//! One cell of the supernet: input rescalers, per-node batch norms and gated edges, run in node order.

use super::Pass;
use super::edge::EdgeNet;
use crate::genotype::{Cell, CellInput, DeadheadOutcome};
use crate::nn::blocks::{self, Conv};
use crate::nn::init::{self, InitScheme};
use crate::nn::layers::Layers;
use crate::nn::tensor_names as names;
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
    fn new(path: &nn::Path, input: &CellInput) -> Self {
        let projection = input.projection.map(|shape| {
            (
                blocks::conv(path / names::CONV, shape),
                blocks::batch_norm(path / names::BN, shape.c_out),
            )
        });
        Rescaler {
            projection,
            halvings: input.halvings,
        }
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

    fn reset(&self, scheme: InitScheme, rng: &mut ChaCha8Rng) {
        if let Some((conv, bn)) = &self.projection {
            init::reset_weight(&conv.ws, scheme, rng);
            init::reset_batch_norm(bn);
        }
    }
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

impl CellNet {
    /// Builds the tensors of cell `k` under `root`, at `channels` channels, reading `inputs`; `output_size` is the
    /// output's (H, W).
    pub fn new(
        root: &nn::Path,
        (k, cell): (usize, &Cell),
        channels: i64,
        inputs: &[CellInput],
        output_size: (i64, i64),
        pruner_init: f64,
    ) -> Self {
        let at = |name: String| blocks::path(root, &name);
        let rescalers = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| Rescaler::new(&at(names::input(k, i)), input))
            .collect();
        let node_norms = (0..cell.n_nodes)
            .map(|v| blocks::batch_norm(at(names::join(&names::node(k, v), names::BN)), channels))
            .collect();
        let edges = cell
            .edges
            .iter()
            .map(|edge| {
                let stride = cell.stride(edge) as i64;
                let net = EdgeNet::new(&at(names::edge(k, edge.id)), &edge.ops, channels, stride, pruner_init);
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

    /// Runs the cell on its dense inputs.
    pub fn forward(&self, cell: &Cell, inputs: &[Tensor], pass: &mut Pass) -> Tensor {
        let train = pass.mode.train;
        let mut inbox: Vec<Option<Tensor>> = (0..cell.n_nodes).map(|_| None).collect();
        for (i, (x, rescaler)) in inputs.iter().zip(&self.rescalers).enumerate() {
            inbox[i] = Some(rescaler.forward(x, train, &mut *pass.layers));
        }
        let output = cell.output();
        for (v, outgoing) in cell.evaluation_order() {
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
        // Only reachable if no path reaches the output, which a checked genotype rules out: the output node then
        // sees a zero input rather than the pass failing.
        let reference = &inputs[0];
        let (h, w) = self.output_size;
        let zeros = Tensor::zeros(
            [reference.size()[0], pass.layers.channels(self.channels), h, w],
            (reference.kind(), reference.device()),
        );
        pass.layers.batch_norm(&zeros, &self.node_norms[output], train)
    }

    /// Applies a deadhead outcome of the genotype to the tensors; `Supernet::deadhead` drops them from the
    /// variable store.
    pub fn apply_deadhead(&mut self, outcome: &DeadheadOutcome) {
        for (edge, op) in &outcome.killed {
            if let Some(net) = self.edges.get_mut(edge) {
                net.remove(*op);
            }
        }
        for edge in &outcome.removed_edges {
            self.edges.remove(edge);
        }
        let mut removed = outcome.removed_nodes.clone();
        removed.sort_unstable();
        for &node in removed.iter().rev() {
            if node < self.node_norms.len() {
                self.node_norms.remove(node);
            }
        }
    }

    /// The batch norm of node `v`.
    #[cfg(test)]
    pub(super) fn node_norm(&self, v: usize) -> &nn::BatchNorm {
        &self.node_norms[v]
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
