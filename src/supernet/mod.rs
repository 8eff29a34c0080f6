//! A differentiable network built from a `Genotype` at a given width (docs/ALGORITHM.md §2–§3).

mod cell;
mod edge;

pub use cell::CellNet;
pub use edge::{EdgeNet, GatedOp};

use crate::genotype::{DeadheadOutcome, Doomed, Genotype, Op};
use crate::nn::blocks::{self, Conv};
use crate::nn::init::{self, InitScheme};
use crate::nn::layers::{AveragingStatistics, Layers, Plain};
use crate::nn::pruner::{self, GateHistory, PrunerConfig, Verdict};
use crate::nn::tensor_names as names;
use crate::seed::{self, Stream};
use crate::system::hash::stable_hash;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use tch::{Device, Kind, Tensor, nn};

/// How a forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    /// Batch norms use batch statistics (and update running ones) when true.
    pub train: bool,
    /// Drop-path probability for every op but Identity; 0 turns it off.
    pub drop_path: f64,
    /// The batch is rows `start..start + n` of a global batch of `global` (data-parallel training): drop-path
    /// masks are drawn for the whole global batch, as one process would, and this share's rows kept.
    pub share: Option<BatchShare>,
}

/// Where a rank's batch sits in the global batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchShare {
    /// Rows of the global batch.
    pub global: usize,
    /// The first of this rank's rows.
    pub start: usize,
}

impl Mode {
    /// Training with the given drop-path probability.
    pub fn train(drop_path: f64) -> Self {
        Mode {
            train: true,
            drop_path,
            share: None,
        }
    }

    /// Evaluation: running statistics, no drop-path.
    pub fn eval() -> Self {
        Mode {
            train: false,
            drop_path: 0.0,
            share: None,
        }
    }
}

/// State threaded through one forward pass: the mode, the drop-path generator and, optionally, a sink for
/// every ReLU output (for the linear-region count).
pub struct Pass<'a> {
    /// How the pass runs.
    pub mode: Mode,
    /// Source of drop-path masks.
    pub rng: &'a mut ChaCha8Rng,
    /// Where ReLU outputs go, when recorded.
    pub relus: Option<&'a mut Vec<Tensor>>,
    /// How weights are applied.
    pub layers: &'a mut dyn Layers,
}

/// Why a set of named tensors does not fit a network.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A tensor has another shape than the genotype's network needs.
    #[error("tensor {name} has shape {found:?}, but the genotype needs {needed:?}")]
    Shape {
        name: String,
        found: Vec<i64>,
        needed: Vec<i64>,
    },
    /// Tensors the network needs are absent.
    #[error("{count} tensor(s) the genotype needs are missing, e.g. {example}")]
    Missing { count: usize, example: String },
    /// Tensors that belong to no part of the network.
    #[error("{count} tensor(s) do not belong to the genotype, e.g. {example}")]
    Foreign { count: usize, example: String },
}

/// Why saved gate histories do not fit a network.
#[derive(Debug, thiserror::Error)]
pub enum GateHistoryError {
    /// A live op has no saved history.
    #[error("no gate history for op {op} of edge {edge} in cell {cell}")]
    Missing { cell: usize, edge: u32, op: Op },
    /// A saved history names an op the network does not have.
    #[error("a gate history names op {op} of edge {edge} in cell {cell}, which the network does not have")]
    Foreign { cell: usize, edge: u32, op: Op },
}

/// An op removed by deadheading.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpRef {
    /// Cell index.
    pub cell: usize,
    /// Edge id within the cell.
    pub edge: u32,
    /// The op.
    pub op: Op,
}

/// What one end-of-epoch deadhead did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadheadReport {
    /// Ops removed for good.
    pub killed: Vec<OpRef>,
    /// Ops the rule condemned but kept, because they carried a cell's last input→output path.
    pub spared: Vec<OpRef>,
    /// Ops removed by a cut to each edge's strongest ops ([`Supernet::keep_strongest_ops`]), not by the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<OpRef>,
}

/// The supernet: stem, cells with gated ops, and one GAP + linear tower per cell.
pub struct Supernet {
    vs: nn::VarStore,
    genotype: Genotype,
    width: usize,
    pruner: PrunerConfig,
    stem: (Conv, nn::BatchNorm),
    cells: Vec<CellNet>,
    towers: Vec<nn::Linear>,
    drop_path_rng: RefCell<ChaCha8Rng>,
}

impl std::fmt::Debug for Supernet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supernet")
            .field("width", &self.width)
            .field("live_ops", &self.genotype.live_op_count())
            .finish()
    }
}

/// The settings of a new `Supernet` besides its genotype; `Supernet::builder` starts from the genotype's own
/// width, PyTorch-default weights from seed 0, the default pruner and the CPU.
#[derive(Clone, Debug)]
pub struct SupernetBuilder<'a> {
    genotype: &'a Genotype,
    width: usize,
    scheme: InitScheme,
    seed: u64,
    pruner: PrunerConfig,
    device: Device,
}

impl SupernetBuilder<'_> {
    /// Channels of cell 0 (doubling per cell), e.g. a scoring network's thinner width.
    pub fn width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Draws the weights with `scheme` from `seed`.
    pub fn init(mut self, scheme: InitScheme, seed: u64) -> Self {
        self.scheme = scheme;
        self.seed = seed;
        self
    }

    /// Draws the weights with the default scheme from `seed`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The gate constants.
    pub fn pruner(mut self, pruner: PrunerConfig) -> Self {
        self.pruner = pruner;
        self
    }

    /// Where the weights live.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The network, every tensor created under its name in crate::nn::tensor_names.
    pub fn build(self) -> Supernet {
        let vs = nn::VarStore::new(self.device);
        let root = vs.root();
        let genotype = self.genotype;
        let shape = genotype.at_width(self.width);
        let at = |name: &str| blocks::path(&root, name);
        let stem = (
            blocks::conv(at(&names::join(names::STEM, names::CONV)), shape.stem()),
            blocks::batch_norm(at(&names::join(names::STEM, names::BN)), self.width as i64),
        );
        let mut cells = Vec::new();
        let mut towers = Vec::new();
        for (k, cell) in genotype.cells.iter().enumerate() {
            let channels = shape.cell_channels(k) as i64;
            let (h, w) = genotype.cell_output_resolution(k);
            let inputs = shape.cell_inputs(k);
            let net = CellNet::new(
                &root,
                (k, cell),
                channels,
                &inputs,
                (h as i64, w as i64),
                self.pruner.init,
            );
            cells.push(net);
            let tower = at(&names::tower(k));
            towers.push(nn::linear(tower, channels, genotype.classes as i64, Default::default()));
        }
        let mut net = Supernet {
            vs,
            genotype: genotype.clone(),
            width: self.width,
            pruner: self.pruner,
            stem,
            cells,
            towers,
            drop_path_rng: RefCell::new(seed::rng(self.seed, Stream::DropPath, 0)),
        };
        net.reset_parameters(self.scheme, self.seed);
        net
    }
}

impl Supernet {
    /// Starts building the network of `genotype` (see `SupernetBuilder` for the defaults).
    pub fn builder(genotype: &Genotype) -> SupernetBuilder<'_> {
        SupernetBuilder {
            genotype,
            width: genotype.channels,
            scheme: InitScheme::PytorchDefault,
            seed: 0,
            pruner: PrunerConfig::default(),
            device: Device::Cpu,
        }
    }

    /// The architecture this network currently computes.
    pub fn genotype(&self) -> &Genotype {
        &self.genotype
    }

    /// Channels of cell 0.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The variable store holding every tensor, for optimisers and saving.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Logits of every cell's tower for a batch (N, C, H, W); the last entry is the classifier.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Vec<Tensor> {
        self.forward_with(x, mode, &mut Plain)
    }

    /// Logits of every tower, with weights applied through `layers` (e.g. replicated for per-sample gradients).
    pub fn forward_with(&self, x: &Tensor, mode: Mode, layers: &mut dyn Layers) -> Vec<Tensor> {
        let mut rng = self.drop_path_rng.borrow_mut();
        let mut pass = Pass {
            mode,
            rng: &mut rng,
            relus: None,
            layers,
        };
        self.run(x, &mut pass)
    }

    /// Recomputes every batch norm's running statistics from `batches` alone, with the ops and gates the network
    /// has now: each becomes the mean of its batch statistics over the batches (docs/ALGORITHM.md §9, *Batch-norm
    /// recalibration*). No weight changes and no drop-path is drawn. Returns the images seen; with none, the
    /// statistics are left as they were.
    pub fn recalibrate_batch_norms(&self, batches: impl IntoIterator<Item = Tensor>) -> usize {
        let mut seen = 0;
        tch::no_grad(|| {
            for (index, batch) in batches.into_iter().enumerate() {
                let mut layers = AveragingStatistics {
                    momentum: 1.0 / (index + 1) as f64,
                };
                self.forward_with(&batch, Mode::train(0.0), &mut layers);
                seen += batch.size()[0] as usize;
            }
        });
        seen
    }

    /// Logits of every tower, and the output of every ReLU in the network (one per live sep-conv), in node order.
    pub fn forward_with_relus(&self, x: &Tensor, mode: Mode) -> (Vec<Tensor>, Vec<Tensor>) {
        let mut rng = self.drop_path_rng.borrow_mut();
        let mut relus = Vec::new();
        let mut pass = Pass {
            mode,
            rng: &mut rng,
            relus: Some(&mut relus),
            layers: &mut Plain,
        };
        let logits = self.run(x, &mut pass);
        (logits, relus)
    }

    fn run(&self, x: &Tensor, pass: &mut Pass) -> Vec<Tensor> {
        let input = pass.layers.input(x);
        let stem = pass.layers.conv(&input, &self.stem.0);
        let stem = blocks::preferred_layout(&pass.layers.batch_norm(&stem, &self.stem.1, pass.mode.train));
        let mut outputs = vec![stem];
        let mut logits = Vec::with_capacity(self.cells.len());
        for (k, (net, cell)) in self.cells.iter().zip(&self.genotype.cells).enumerate() {
            let out = net.forward(cell, &outputs, pass);
            let pooled = blocks::global_average(&out);
            logits.push(pass.layers.linear(&pooled, &self.towers[k]));
            outputs.push(out);
        }
        logits
    }

    /// CE of the final head plus `aux_weight` times the CE of every earlier head, each with label smoothing ε =
    /// `label_smoothing` (PyTorch's).
    pub fn loss(logits: &[Tensor], labels: &Tensor, aux_weight: f64, label_smoothing: f64) -> Tensor {
        let cross_entropy = |head: &Tensor| {
            if label_smoothing == 0.0 {
                head.cross_entropy_for_logits(labels)
            } else {
                head.cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100, label_smoothing)
            }
        };
        let (last, aux) = logits.split_last().expect("a network has at least one cell");
        aux.iter().fold(cross_entropy(last), |total, head| {
            total + cross_entropy(head) * aux_weight
        })
    }

    /// Gate weights of every live op, in a fixed order (cell, edge id, op).
    pub fn pruner_weights(&self) -> Vec<Tensor> {
        self.gated_ops().map(|(_, _, op)| op.gate.shallow_clone()).collect()
    }

    /// The gate weight of one live op, if it exists.
    pub fn gate_weight(&self, cell: usize, edge: u32, op: Op) -> Option<Tensor> {
        self.gated_ops()
            .find(|&(k, id, gated)| k == cell && id == edge && gated.block.op == op)
            .map(|(_, _, gated)| gated.gate.shallow_clone())
    }

    fn gated_ops(&self) -> impl Iterator<Item = (usize, u32, &GatedOp)> {
        self.cells.iter().enumerate().flat_map(|(k, cell)| {
            cell.edges
                .iter()
                .flat_map(move |(&id, edge)| edge.ops.iter().map(move |op| (k, id, op)))
        })
    }

    /// Records, for every live op, whether its gate is open in this batch.
    pub fn track_gates(&mut self) {
        let open = pruner::open_gates(&self.pruner_weights());
        let mut open = open.into_iter();
        for cell in &mut self.cells {
            for edge in cell.edges.values_mut() {
                for op in &mut edge.ops {
                    op.history.record(open.next().unwrap_or(false));
                }
            }
        }
    }

    /// Every live op's gate history, for a checkpoint.
    pub fn gate_histories(&self) -> Vec<(OpRef, GateHistory)> {
        self.gated_ops()
            .map(|(cell, edge, gated)| {
                let op = OpRef {
                    cell,
                    edge,
                    op: gated.block.op,
                };
                (op, gated.history.clone())
            })
            .collect()
    }

    /// Restores the gate histories that `gate_histories` gave for a network of the same genotype: every live op
    /// must get one, and none may name an op the network lacks.
    pub fn restore_gate_histories(&mut self, saved: Vec<(OpRef, GateHistory)>) -> Result<(), GateHistoryError> {
        let mut saved: std::collections::HashMap<(usize, u32, Op), GateHistory> = saved
            .into_iter()
            .map(|(op, history)| ((op.cell, op.edge, op.op), history))
            .collect();
        for (k, cell) in self.cells.iter_mut().enumerate() {
            for (&id, edge) in cell.edges.iter_mut() {
                for gated in &mut edge.ops {
                    let key = (k, id, gated.block.op);
                    gated.history = saved.remove(&key).ok_or(GateHistoryError::Missing {
                        cell: k,
                        edge: id,
                        op: gated.block.op,
                    })?;
                }
            }
        }
        match saved.into_keys().min() {
            None => Ok(()),
            Some((cell, edge, op)) => Err(GateHistoryError::Foreign { cell, edge, op }),
        }
    }

    /// Clamps every gate weight to the configured bound.
    pub fn clamp_pruners(&self) {
        pruner::clamp_weights(&self.pruner_weights(), self.pruner.clamp_bound());
    }

    /// Ends an epoch of `batches_per_epoch` batches: applies the deadhead rule, removes dead ops from the
    /// genotype and the network, and drops nodes and edges left without a live path.
    pub fn deadhead(&mut self, batches_per_epoch: usize) -> DeadheadReport {
        let mut report = DeadheadReport::default();
        for k in 0..self.cells.len() {
            let mut doomed = Vec::new();
            for (&edge_id, edge) in self.cells[k].edges.iter_mut() {
                for op in &mut edge.ops {
                    let open_count = op.history.open_in_window(self.pruner.window_epochs);
                    if op.history.end_epoch(batches_per_epoch, &self.pruner) == Verdict::Dead {
                        doomed.push(Doomed {
                            edge_id,
                            op: op.block.op,
                            open_count,
                        });
                    }
                }
            }
            let (killed, spared) = self.remove_ops(k, &doomed);
            report.killed.extend(killed);
            report.spared.extend(spared);
        }
        report
    }

    /// Cuts every edge down to its `keep` ops whose gates were open on the most batches since the training began
    /// (ties in the edge's op order), removing the others as deadheading does; an op whose removal would leave its
    /// cell without a path stays (in `spared`). The removed ops are in the report's `cut`.
    pub fn keep_strongest_ops(&mut self, keep: usize) -> DeadheadReport {
        let mut report = DeadheadReport::default();
        for k in 0..self.cells.len() {
            let mut doomed = Vec::new();
            for (&edge_id, edge) in &self.cells[k].edges {
                let mut ranked: Vec<&GatedOp> = edge.ops.iter().collect();
                // Stable: equal counts keep the edge's op order.
                ranked.sort_by_key(|gated| std::cmp::Reverse(gated.history.total_open()));
                doomed.extend(ranked.iter().skip(keep.max(1)).map(|gated| Doomed {
                    edge_id,
                    op: gated.block.op,
                    open_count: gated.history.total_open(),
                }));
            }
            let (cut, spared) = self.remove_ops(k, &doomed);
            report.cut.extend(cut);
            report.spared.extend(spared);
        }
        report
    }

    /// Removes the `doomed` ops of cell `k` from the genotype and the network, with what they alone fed; returns
    /// the ops removed and those kept because they carried the cell's last path.
    fn remove_ops(&mut self, k: usize, doomed: &[Doomed]) -> (Vec<OpRef>, Vec<OpRef>) {
        if doomed.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let outcome: DeadheadOutcome = self.genotype.cells[k].deadhead(doomed);
        self.cells[k].apply_deadhead(&outcome);
        self.forget_dead_tensors(k, &outcome);
        let refs = |list: &[(u32, Op)]| {
            list.iter()
                .map(|&(edge, op)| OpRef { cell: k, edge, op })
                .collect::<Vec<_>>()
        };
        (refs(&outcome.killed), refs(&outcome.spared))
    }

    /// Drops the tensors of what deadheading removed from cell `k` out of the variable store, frozen, and renames
    /// the batch norms of the nodes after a removed node, which the genotype has renumbered. The store then holds
    /// exactly the live network, under the names its genotype gives it.
    fn forget_dead_tensors(&self, k: usize, outcome: &DeadheadOutcome) {
        let dead: Vec<String> = outcome
            .killed
            .iter()
            .map(|&(edge, op)| names::op(k, edge, op))
            .chain(outcome.removed_edges.iter().map(|&edge| names::edge(k, edge)))
            .collect();
        let mut removed_nodes = outcome.removed_nodes.clone();
        removed_nodes.sort_unstable();
        let mut variables = self
            .vs
            .variables_
            .lock()
            .expect("the variable store's lock is never poisoned");
        let store = &mut variables.named_variables;
        let moved: Vec<String> = store
            .keys()
            .filter(|name| {
                dead.iter().any(|owner| names::is_under(name, owner))
                    || names::split_node(name, k).is_some_and(|(v, _)| removed_nodes.partition_point(|&r| r <= v) > 0)
            })
            .cloned()
            .collect();
        // Everything moves out before anything moves back in, so that a renamed node never lands on a name that
        // is still to be removed.
        let taken: Vec<(String, Tensor)> = moved
            .into_iter()
            .filter_map(|name| store.remove(&name).map(|tensor| (name, tensor)))
            .collect();
        for (name, tensor) in taken {
            match names::split_node(&name, k) {
                Some((v, tail)) if removed_nodes.binary_search(&v).is_err() => {
                    let renumbered = v - removed_nodes.partition_point(|&r| r < v);
                    store.insert(names::join(&names::node(k, renumbered), tail), tensor);
                }
                _ => {
                    let _ = tensor.set_requires_grad(false);
                }
            }
        }
    }

    /// Trainable tensors of the live network (stem, rescalers, node BNs, live ops and their gates, towers).
    pub fn parameters(&self) -> Vec<Tensor> {
        self.named_tensors()
            .into_iter()
            .filter_map(|(_, tensor)| tensor.requires_grad().then_some(tensor))
            .collect()
    }

    /// A hash of every tensor's name and values (FNV-1a over the values as f64, which keeps every f32 bit): equal
    /// for bitwise-equal networks.
    pub fn fingerprint(&self) -> u64 {
        let mut bytes = Vec::new();
        for (name, tensor) in self.named_tensors() {
            bytes.extend_from_slice(name.as_bytes());
            let values = Vec::<f64>::try_from(tensor.reshape([-1]).to_kind(Kind::Double)).unwrap_or_default();
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
        stable_hash(&bytes)
    }

    /// The tensors that are not trained but kept (batch norms' running statistics), in name order.
    pub fn buffers(&self) -> Vec<Tensor> {
        self.named_tensors()
            .into_iter()
            .filter_map(|(_, tensor)| (!tensor.requires_grad()).then_some(tensor))
            .collect()
    }

    /// The tensors the NTK differentiates: every trainable weight (conv, linear, BN γ) and gate, sorted by name;
    /// biases and BN β are left out, as in the published implementation.
    pub fn weight_tensors(&self) -> Vec<Tensor> {
        self.named_tensors()
            .into_iter()
            .filter(|(name, tensor)| {
                let last = name.rsplit('.').next();
                tensor.requires_grad() && (last == Some(names::WEIGHT) || last == Some(names::GATE))
            })
            .map(|(_, tensor)| tensor)
            .collect()
    }

    /// Every tensor of the live network (weights, gates, BN statistics), sorted by the names of docs/EXPORT.md
    /// (crate::nn::tensor_names), under which the variable store holds them.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// Copies `tensors` (as `named_tensors` names them, e.g. read from weights.safetensors) into this network;
    /// every tensor must be present with its shape, and none may be left over.
    pub fn load_named_tensors(&mut self, tensors: Vec<(String, Tensor)>) -> Result<(), WeightsError> {
        let mut given: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        let mut missing = Vec::new();
        for (name, target) in self.named_tensors() {
            match given.remove(&name) {
                Some(source) if source.size() == target.size() => tch::no_grad(|| {
                    let mut target = target;
                    target.copy_(&source.to_device(target.device()).to_kind(target.kind()));
                }),
                Some(source) => {
                    return Err(WeightsError::Shape {
                        name,
                        found: source.size(),
                        needed: target.size(),
                    });
                }
                None => missing.push(name),
            }
        }
        let mut extra: Vec<String> = given.into_keys().collect();
        extra.sort();
        match (missing.first(), extra.first()) {
            (None, None) => Ok(()),
            (Some(name), _) => Err(WeightsError::Missing {
                count: missing.len(),
                example: name.clone(),
            }),
            (None, Some(name)) => Err(WeightsError::Foreign {
                count: extra.len(),
                example: name.clone(),
            }),
        }
    }

    /// Converts every tensor of the network to `kind` in place (e.g. f64 for synflow's products of weights).
    pub fn set_kind(&mut self, kind: Kind) {
        self.vs.set_kind(kind);
    }

    /// Number of scalars in `parameters`.
    pub fn parameter_count(&self) -> usize {
        self.parameters().iter().map(|t| t.numel()).sum()
    }

    /// Re-initialises every weight with `scheme` from `seed`, resets batch norms, gate weights and gate
    /// histories. The architecture, dead ops included, is kept.
    pub fn reset_parameters(&mut self, scheme: InitScheme, seed: u64) {
        let rng = &mut seed::rng(seed, Stream::Init, 0);
        init::reset_weight(&self.stem.0.ws, scheme, rng);
        init::reset_batch_norm(&self.stem.1);
        for (cell, tower) in self.cells.iter_mut().zip(&self.towers) {
            cell.reset(scheme, rng);
            init::reset_weight(&tower.ws, scheme, rng);
            if let Some(bias) = &tower.bs {
                init::reset_bias(bias, init::fans(&tower.ws).0, scheme, rng);
            }
        }
    }

    /// Like `reset_parameters`, but every random tensor is drawn from its own generator, seeded by `seed` and the
    /// tensor's name (docs/EXPORT.md). Two networks whose genotypes share an edge, input or tower then get the
    /// same values there, whatever else differs between them.
    pub fn reset_parameters_by_name(&mut self, scheme: InitScheme, seed: u64) {
        self.reset_parameters(scheme, seed);
        let rng_of = |name: &str| seed::rng(seed, Stream::Init, stable_hash(name.as_bytes()));
        for (name, tensor) in self.named_tensors() {
            if name.rsplit('.').next() == Some(names::WEIGHT) && tensor.dim() >= 2 {
                init::reset_weight(&tensor, scheme, &mut rng_of(&name));
            }
        }
        for (k, tower) in self.towers.iter().enumerate() {
            if let Some(bias) = &tower.bs {
                let name = names::join(&names::tower(k), names::BIAS);
                init::reset_bias(bias, init::fans(&tower.ws).0, scheme, &mut rng_of(&name));
            }
        }
    }

    /// Restarts the drop-path masks from `seed` for 0-based epoch `epoch` (each epoch draws its own stream, so a
    /// training resumed at an epoch boundary needs no generator state).
    pub fn seed_drop_path(&self, seed: u64, epoch: usize) {
        *self.drop_path_rng.borrow_mut() = seed::rng(seed, Stream::DropPath, epoch as u64);
    }

    /// Fraction of samples whose final-head prediction matches the label.
    pub fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
        logits
            .argmax(-1, false)
            .eq_tensor(labels)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::{InputShape, OpSet};

    fn value(net: &Supernet, name: &str) -> f64 {
        let named: std::collections::HashMap<String, Tensor> = net.named_tensors().into_iter().collect();
        named[name].mean(Kind::Float).double_value(&[])
    }

    #[test]
    fn the_fingerprint_tells_one_changed_bit() {
        let genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
        let (a, b) = (
            Supernet::builder(&genotype).build(),
            Supernet::builder(&genotype).build(),
        );
        assert_eq!(a.fingerprint(), b.fingerprint());
        let (_, tensor) = b
            .named_tensors()
            .into_iter()
            .find(|(_, t)| t.kind() == Kind::Float)
            .unwrap();
        let first = tensor.reshape([-1]).double_value(&[0]) as f32;
        let next = f32::from_bits(first.to_bits() ^ 1);
        tch::no_grad(|| {
            let _ = tensor.reshape([-1]).get(0).fill_(next as f64);
        });
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.buffers().len() + a.parameters().len(), a.named_tensors().len());
    }

    #[test]
    fn a_cut_keeps_each_edges_longest_open_ops_and_exactly_their_tensors() {
        let mut genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
        genotype.cells[0].split(0).unwrap();
        let mut net = Supernet::builder(&genotype).build();
        // Op i of an edge was open on (7 − i) · (edge + 1) batches, but on edge 0 of cell 1 every gate was open
        // equally long: ties keep the edge's op order.
        let histories = net
            .gate_histories()
            .into_iter()
            .map(|(op, _)| {
                let rank = Op::ALL.iter().position(|&o| o == op.op).unwrap() as u64;
                let batches = if (op.cell, op.edge) == (1, 0) {
                    3
                } else if op.op == Op::SepConv3x3 {
                    1000
                } else {
                    (7 - rank) * (u64::from(op.edge) + 1)
                };
                let mut history = GateHistory::default();
                for _ in 0..batches {
                    history.record(true);
                }
                (op, history)
            })
            .collect();
        net.restore_gate_histories(histories).unwrap();
        let edges: usize = net.genotype.cells.iter().map(|c| c.edges.len()).sum();
        let report = net.keep_strongest_ops(2);
        assert_eq!(report.cut.len(), 5 * edges);
        assert!(report.killed.is_empty() && report.spared.is_empty());
        for (k, cell) in net.genotype.cells.iter().enumerate() {
            for edge in &cell.edges {
                let expected = if (k, edge.id) == (1, 0) {
                    vec![Op::ALL[0], Op::ALL[1]]
                } else {
                    let mut two = vec![Op::ALL[0], Op::SepConv3x3];
                    two.sort_by_key(|op| Op::ALL.iter().position(|o| o == op));
                    two
                };
                assert_eq!(edge.ops, expected, "cell {k}, edge {}", edge.id);
            }
        }
        // The store holds exactly the tensors of a fresh network of the cut genotype.
        let mut fresh = Supernet::builder(&net.genotype).build();
        fresh.load_named_tensors(net.named_tensors()).unwrap();
        net.genotype.check().unwrap();
    }

    #[test]
    fn deadheading_drops_dead_tensors_and_renames_renumbered_nodes() {
        // Two stacked splits of cell 0 give nodes 0 → 1 → 2 → 3 (output) → 4; emptying edge 0 → 1 orphans nodes 1
        // and 2, so nodes 3 and 4 become 1 and 2.
        let mut genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
        let outer = genotype.cells[0].split(0).unwrap();
        genotype.cells[0].split(outer.edge_b).unwrap();
        let mut net = Supernet::builder(&genotype).build();
        for (name, tensor) in net.named_tensors() {
            for k in 0..2 {
                if let Some((v, "bn.weight")) = names::split_node(&name, k) {
                    tch::no_grad(|| {
                        let _ = tensor.shallow_clone().fill_((10 * k + v) as f64 + 1.0);
                    });
                }
            }
        }
        let doomed: Vec<Doomed> = OpSet::Published
            .ops()
            .iter()
            .map(|&op| Doomed {
                edge_id: outer.edge_a,
                op,
                open_count: 0,
            })
            .collect();
        let dead_gate = net.gate_weight(0, outer.edge_a, Op::Identity).unwrap();
        let outcome = net.genotype.cells[0].deadhead(&doomed);
        assert_eq!(outcome.removed_nodes, vec![1, 2]);
        net.cells[0].apply_deadhead(&outcome);
        net.forget_dead_tensors(0, &outcome);

        // Exactly the tensors of a fresh network of the new genotype: loading refuses missing or foreign ones.
        let mut fresh = Supernet::builder(&net.genotype).build();
        fresh.load_named_tensors(net.named_tensors()).unwrap();
        assert_eq!(value(&net, "cells.0.nodes.0.bn.weight"), 1.0);
        assert_eq!(value(&net, "cells.0.nodes.1.bn.weight"), 4.0);
        assert_eq!(value(&net, "cells.0.nodes.2.bn.weight"), 5.0);
        assert_eq!(
            value(&net, "cells.1.nodes.1.bn.weight"),
            12.0,
            "another cell's nodes keep their names"
        );
        // The renamed entries are the tensors the forward pass uses.
        let stored: std::collections::HashMap<String, Tensor> = net.named_tensors().into_iter().collect();
        let used = net.cells[0].node_norm(1).ws.as_ref().unwrap().data_ptr();
        assert_eq!(stored["cells.0.nodes.1.bn.weight"].data_ptr(), used);
        assert!(!dead_gate.requires_grad(), "a dead gate is frozen");
    }
}
