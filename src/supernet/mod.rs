//! A differentiable network built from a `Genotype` at a given width (docs/ALGORITHM.md §2–§3).

mod cell;
mod count;
mod edge;

pub use cell::{CellNet, InputSpec, batch_norm_parameters};
pub use count::{cell_parameter_count, parameter_count, stem_parameter_count};
pub use edge::{EdgeNet, GatedOp};

use crate::blocks::{self, Conv, ConvShape};
use crate::genotype::{DeadheadOutcome, Doomed, Genotype, GenotypeError, Op};
use crate::hash::stable_hash;
use crate::init::{self, InitScheme};
use crate::layers::{Layers, Plain};
use crate::pruner::{self, PrunerConfig, Verdict};
use crate::seed::{self, Stream};
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
}

impl Mode {
    /// Training with the given drop-path probability.
    pub fn train(drop_path: f64) -> Self {
        Mode { train: true, drop_path }
    }

    /// Evaluation: running statistics, no drop-path.
    pub fn eval() -> Self {
        Mode {
            train: false,
            drop_path: 0.0,
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
    disabled: Vec<Vec<u32>>,
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

impl Supernet {
    /// Builds the network of `genotype` with `width` channels in cell 0 (doubling per cell), initialised by
    /// `scheme` from `seed`.
    pub fn new(
        genotype: &Genotype,
        width: usize,
        scheme: InitScheme,
        pruner: PrunerConfig,
        device: Device,
        seed: u64,
    ) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let width_of = |k: usize| (width << k) as i64;
        let in_channels = genotype.input.channels as i64;
        let stem_shape = ConvShape {
            c_in: in_channels,
            c_out: width_of(0),
            kernel: 3,
            stride: 1,
            dilation: 1,
            groups: 1,
        };
        let stem = (
            blocks::conv(&root / "stem" / "conv", stem_shape),
            blocks::batch_norm(&root / "stem" / "bn", width_of(0)),
        );
        let mut cells = Vec::new();
        let mut towers = Vec::new();
        for (k, cell) in genotype.cells.iter().enumerate() {
            let level = genotype.cell_input_level(k);
            // Dense inputs: the stem (level 0), then every earlier cell's output (cell j at level j).
            let inputs: Vec<InputSpec> = std::iter::once((width_of(0), 0))
                .chain((0..k).map(|j| (width_of(j), j)))
                .map(|(channels, input_level)| InputSpec {
                    channels,
                    halvings: level.saturating_sub(input_level),
                })
                .collect();
            let (h, w) = genotype.cell_output_resolution(k);
            let path = &root / format!("cell{k}");
            cells.push(CellNet::new(
                &path,
                cell,
                width_of(k),
                &inputs,
                (h as i64, w as i64),
                pruner.init,
            ));
            let tower = nn::linear(
                &root / format!("tower{k}"),
                width_of(k),
                genotype.classes as i64,
                Default::default(),
            );
            towers.push(tower);
        }
        let disabled = vec![Vec::new(); genotype.cells.len()];
        let mut net = Supernet {
            vs,
            genotype: genotype.clone(),
            width,
            pruner,
            stem,
            cells,
            towers,
            disabled,
            drop_path_rng: RefCell::new(seed::rng(seed, Stream::DropPath, 0)),
        };
        net.reset_parameters(scheme, seed);
        net
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
            let out = net.forward(cell, &outputs, &self.disabled[k], pass);
            let pooled = blocks::global_average(&out);
            logits.push(pass.layers.linear(&pooled, &self.towers[k]));
            outputs.push(out);
        }
        logits
    }

    /// CE of the final head plus `aux_weight` times the CE of every earlier head.
    pub fn loss(logits: &[Tensor], labels: &Tensor, aux_weight: f64) -> Tensor {
        let (last, aux) = logits.split_last().expect("a network has at least one cell");
        aux.iter().fold(last.cross_entropy_for_logits(labels), |total, head| {
            total + head.cross_entropy_for_logits(labels) * aux_weight
        })
    }

    /// Switches an edge on or off without removing it.
    pub fn set_edge_enabled(&mut self, cell: usize, edge: u32, enabled: bool) -> Result<(), GenotypeError> {
        let known = self.genotype.cells.get(cell).and_then(|c| c.edge(edge)).is_some();
        if !known {
            return Err(GenotypeError::UnknownEdge { cell, edge });
        }
        let disabled = &mut self.disabled[cell];
        disabled.retain(|&e| e != edge);
        if !enabled {
            disabled.push(edge);
        }
        Ok(())
    }

    /// Gate weights of every live op, in a fixed order (cell, edge id, op).
    pub fn pruner_weights(&self) -> Vec<Tensor> {
        self.gated_ops().map(|(_, _, op)| op.pruner.shallow_clone()).collect()
    }

    /// The gate weight of one live op, if it exists.
    pub fn gate_weight(&self, cell: usize, edge: u32, op: Op) -> Option<Tensor> {
        self.gated_ops()
            .find(|&(k, id, gated)| k == cell && id == edge && gated.block.op == op)
            .map(|(_, _, gated)| gated.pruner.shallow_clone())
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
            if doomed.is_empty() {
                continue;
            }
            let outcome: DeadheadOutcome = self.genotype.cells[k].deadhead(&doomed);
            self.cells[k].apply_deadhead(&outcome);
            self.disabled[k].retain(|e| !outcome.removed_edges.contains(e));
            let refs = |list: &[(u32, Op)]| {
                list.iter()
                    .map(|&(edge, op)| OpRef { cell: k, edge, op })
                    .collect::<Vec<_>>()
            };
            report.killed.extend(refs(&outcome.killed));
            report.spared.extend(refs(&outcome.spared));
        }
        report
    }

    /// Trainable tensors of the live network (stem, rescalers, node BNs, live ops and their pruners, towers).
    pub fn parameters(&self) -> Vec<Tensor> {
        let mut out = vec![self.stem.0.ws.shallow_clone()];
        out.extend(batch_norm_parameters(&self.stem.1));
        for (cell, tower) in self.cells.iter().zip(&self.towers) {
            out.extend(cell.parameters());
            out.push(tower.ws.shallow_clone());
            out.extend(tower.bs.iter().map(Tensor::shallow_clone));
        }
        out
    }

    /// The tensors the NTK differentiates: every trainable weight (conv, linear, BN γ) and gate, sorted by name;
    /// biases and BN β are left out, as in the reference.
    pub fn weight_tensors(&self) -> Vec<Tensor> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(name, tensor)| tensor.requires_grad() && (name.ends_with(".weight") || name.ends_with(".pruner")))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.into_iter().map(|(_, tensor)| tensor).collect()
    }

    /// Every tensor of the live network (weights, gates, BN statistics) under the names of docs/EXPORT.md, which
    /// follow `genotype.json` (`cells.<cell>.edges.<edge id>.<op>.…`); dead ops are left out.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named = vec![("stem.conv.weight".to_string(), self.stem.0.ws.shallow_clone())];
        named.extend(blocks::batch_norm_tensors("stem.bn", &self.stem.1));
        for (k, (cell, tower)) in self.cells.iter().zip(&self.towers).enumerate() {
            named.extend(
                cell.named_tensors()
                    .into_iter()
                    .map(|(name, tensor)| (format!("cells.{k}.{name}"), tensor)),
            );
            named.push((format!("towers.{k}.weight"), tower.ws.shallow_clone()));
            if let Some(bias) = &tower.bs {
                named.push((format!("towers.{k}.bias"), bias.shallow_clone()));
            }
        }
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
        let named = self.named_tensors();
        for (name, tensor) in &named {
            let is_bias = name.starts_with("towers.") && name.ends_with(".bias");
            if !(is_bias || (name.ends_with(".weight") && tensor.dim() >= 2)) {
                continue;
            }
            let rng = &mut seed::rng(seed, Stream::Init, stable_hash(name.as_bytes()));
            if is_bias {
                let weight_name = name.replace(".bias", ".weight");
                let fan_in = named
                    .iter()
                    .find(|(n, _)| *n == weight_name)
                    .map_or(1.0, |(_, w)| init::fans(w).0);
                init::reset_bias(tensor, fan_in, scheme, rng);
            } else {
                init::reset_weight(tensor, scheme, rng);
            }
        }
    }

    /// Restarts the drop-path masks from `seed`.
    pub fn seed_drop_path(&self, seed: u64) {
        *self.drop_path_rng.borrow_mut() = seed::rng(seed, Stream::DropPath, 0);
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
