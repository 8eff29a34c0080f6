//! Supernet training: SGD with a cosine schedule, auxiliary towers, gate tracking and deadheading (docs/ALGORITHM.md §9).

use crate::data::{Augment, Batches, Dataset, Split};
use crate::distributed::{self, ProcessGroup};
use crate::genotype::Genotype;
use crate::nn::optim::Sgd;
use crate::seed::{self, Stream};
use crate::supernet::{BatchShare, DeadheadReport, Mode, Supernet};
use crate::system::alloc_failure::{self, AllocationFailure, Site};
use crate::system::native::SgdSettings;
use anyhow::Context;
use std::time::Instant;

/// Training settings; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Epochs T; the learning rate follows a cosine from `lr_max` towards 0 over them.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr_max: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay, applied to the tensors `decay` names.
    pub weight_decay: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Drop-path probability during training.
    pub drop_path: f64,
    /// Weight of each auxiliary tower's loss.
    pub aux_weight: f64,
    /// Whether the deadhead rule removes ops at epoch ends.
    pub deadhead: bool,
    /// Batch size for evaluation.
    pub eval_batch_size: usize,
    /// Augmentation of training batches, if any.
    pub augment: Option<Augment>,
    /// Nesterov momentum (the reference uses plain momentum).
    #[serde(default)]
    pub nesterov: bool,
    /// Label smoothing ε of every head's cross-entropy (0: none, as the reference).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Epochs of linear learning-rate warm-up, batch by batch, at the start (0: none, as the reference).
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Whether drop-path rises linearly from 0 in the first epoch to `drop_path` in the last (the reference keeps
    /// it constant).
    #[serde(default)]
    pub drop_path_ramp: bool,
    /// Whether the augmentation derived from the data includes cutout (the reference's does).
    #[serde(default = "cutout_by_default")]
    pub cutout: bool,
    /// The shape of the learning-rate curve (the reference's: a cosine stepped once per epoch).
    #[serde(default)]
    pub schedule: Schedule,
    /// Which tensors weight decay applies to (the reference's: all of them).
    #[serde(default)]
    pub decay: DecayScope,
    /// Training images, unaugmented, whose batch statistics replace the batch norms' running ones after the last
    /// epoch and before every evaluation, with the gates and ops the epoch ended with (0: none, as the reference).
    #[serde(default)]
    pub bn_recalibration: usize,
    /// The last this many epochs train with every gate weight held where it stands at their start: no gradient,
    /// momentum or decay moves it, so no gate flips and the network evaluated is the one they trained (0: the gates
    /// train to the end, as the reference).
    #[serde(default)]
    pub freeze_gates_epochs: usize,
    /// A cut of every edge to its strongest ops during the training, so that the epochs after it train a smaller,
    /// faster network (none: no cut, as the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_ops: Option<OpCut>,
    /// Images each epoch trains on, drawn afresh from the whole training split in every epoch's own order, so that
    /// over the epochs the network sees all of them (none: every image in every epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_images: Option<usize>,
}

/// A cut of every edge to the ops whose gates were open on the most batches, made during a training
/// ([`Supernet::keep_strongest_ops`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OpCut {
    /// Where the cut is made, in epochs from the start: a whole number at that epoch's end, a fraction part-way
    /// through the epoch it falls in (0.25: after the first quarter of the first epoch's batches).
    pub after_epoch: f64,
    /// Ops each edge keeps.
    pub keep: usize,
}

/// Where a final training cuts its network when no supernet training ranked the ops before it
/// (docs/ALGORITHM.md §5, *The cut during the final training*): at the end of the first epoch, so that every later
/// epoch trains the smaller network. A network a search already cut has no more ops to lose there.
pub const CUT_AFTER_EPOCH: f64 = 1.0;

impl OpCut {
    /// The cut that `--final-ops` (`keep`; none keeps every op) and `--final-ops-after` (`after`; none:
    /// [`CUT_AFTER_EPOCH`]) ask for. A point given with every op kept is refused, as there would be nothing to cut,
    /// and so is one that is not a positive number of epochs.
    pub fn asked(keep: Option<usize>, after: Option<f64>) -> anyhow::Result<Option<OpCut>> {
        if let Some(after) = after.filter(|after| !(after.is_finite() && *after > 0.0)) {
            anyhow::bail!(
                "--final-ops-after {after}: give a positive number of epochs (1: at the end of the first; 0.25: a \
                 quarter into it)"
            );
        }
        match (keep, after) {
            (None, Some(after_epoch)) => anyhow::bail!(
                "--final-ops-after {after_epoch}: there is no cut to make, as every op is kept; give --final-ops K \
                 with K below {} (the reference profile keeps every op)",
                crate::genotype::Op::ALL.len()
            ),
            (None, None) => Ok(None),
            (Some(keep), after) => Ok(Some(OpCut {
                after_epoch: after.unwrap_or(CUT_AFTER_EPOCH),
                keep,
            })),
        }
    }

    /// Whether the cut removes anything from `genotype`: whether an edge has more than `keep` ops.
    pub fn changes(&self, genotype: &Genotype) -> bool {
        genotype
            .cells
            .iter()
            .flat_map(|cell| &cell.edges)
            .any(|edge| edge.ops.len() > self.keep)
    }

    /// Whether a training of `epochs` makes the cut at all: never at its very end, which would leave a network no
    /// batch trained.
    pub fn made_within(&self, epochs: usize) -> bool {
        self.after_epoch < epochs as f64
    }

    /// The epoch (from 1) the cut falls in, or at whose end it falls.
    pub fn epoch(&self) -> usize {
        (self.after_epoch.ceil() as usize).max(1)
    }

    /// The batch (from 0) of its epoch after which the cut is made, in epochs of `batches` batches: the first
    /// whose end reaches the cut's point, and the last batch for a whole number.
    fn batch(&self, batches: usize) -> usize {
        let into_epoch = self.after_epoch - (self.epoch() - 1) as f64;
        ((into_epoch * batches as f64).ceil() as usize).clamp(1, batches.max(1)) - 1
    }

    /// The batch (from 0) of epoch `epoch` (from 0) after which the cut is made, in a training of `epochs` epochs
    /// of `batches` batches; none when the cut falls in another epoch or at the training's very end.
    fn batch_in(&self, epoch: usize, epochs: usize, batches: usize) -> Option<usize> {
        let batch = self.batch(batches);
        let at_the_very_end = epoch + 1 == epochs && batch + 1 == batches;
        (self.epoch() == epoch + 1 && self.made_within(epochs) && !at_the_very_end).then_some(batch)
    }
}

/// The shape of the learning rate over a training, before any warm-up (docs/ALGORITHM.md §9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// ½·lr_max·(1 + cos(π·epoch/epochs)), constant within an epoch, as the reference steps it.
    #[default]
    EpochCosine,
    /// The same cosine, computed per batch, so that it reaches 0 at the last batch.
    Cosine,
    /// Flat at lr_max through the warm-up, then falling linearly to 0 at the last batch (a one-cycle shape
    /// together with a warm-up).
    Linear,
}

/// Which trainable tensors weight decay pulls towards zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecayScope {
    /// Every trainable tensor: convolution and linear weights, batch-norm scales and shifts, biases and gates.
    #[default]
    All,
    /// Convolution and linear weights only (tensors of two or more dimensions).
    Weights,
}

impl DecayScope {
    /// Whether weight decay applies to `tensor`.
    pub fn decays(self, tensor: &tch::Tensor) -> bool {
        match self {
            DecayScope::All => true,
            DecayScope::Weights => tensor.dim() >= 2,
        }
    }
}

fn cutout_by_default() -> bool {
    true
}

impl TrainConfig {
    /// The images each epoch trains on, out of a training split of `split_images`.
    pub fn images_per_epoch(&self, split_images: usize) -> usize {
        self.epoch_images
            .map_or(split_images, |images| images.min(split_images))
    }

    /// `data`'s augmentation as this recipe runs it: without cutout when `cutout` is off.
    pub fn augmentation_for(&self, data: &Dataset) -> Augment {
        let mut augment = data.augment();
        if !self.cutout {
            augment.cutout_probability = 0.0;
        }
        augment
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 4,
            lr_max: 0.01,
            momentum: 0.9,
            weight_decay: 3e-4,
            batch_size: 64,
            drop_path: 0.2,
            aux_weight: 0.4,
            deadhead: true,
            eval_batch_size: 256,
            augment: None,
            nesterov: false,
            label_smoothing: 0.0,
            warmup_epochs: 0.0,
            drop_path_ramp: false,
            cutout: true,
            schedule: Schedule::EpochCosine,
            decay: DecayScope::All,
            bn_recalibration: 0,
            freeze_gates_epochs: 0,
            cut_ops: None,
            epoch_images: None,
        }
    }
}

/// Gate weights held fixed through an epoch: each value at its start, with the weight it is put back into after
/// every step.
struct FrozenGates(Vec<(tch::Tensor, tch::Tensor)>);

impl FrozenGates {
    /// The gates of `net` as they stand, when `epoch` (from 0) is one of `config`'s last `freeze_gates_epochs`.
    fn for_epoch(net: &Supernet, config: &TrainConfig, epoch: usize) -> Option<Self> {
        let frozen = config.freeze_gates_epochs > 0 && epoch + config.freeze_gates_epochs >= config.epochs;
        frozen.then(|| {
            let weights = net.pruner_weights().into_iter();
            FrozenGates(weights.map(|weight| (weight.detach().copy(), weight)).collect())
        })
    }

    /// Puts every gate weight back to its held value.
    fn restore(&mut self) {
        tch::no_grad(|| {
            for (held, weight) in &mut self.0 {
                weight.copy_(held);
            }
        });
    }
}

/// The optimiser of `train`: SGD with the configured momentum, and weight decay on the tensors `config.decay`
/// names, at `lr_max`.
pub fn optimizer(net: &Supernet, config: &TrainConfig) -> Sgd {
    let settings = SgdSettings {
        lr: config.lr_max,
        momentum: config.momentum,
        weight_decay: config.weight_decay,
        nesterov: config.nesterov,
    };
    let (decayed, undecayed) = net.parameters().into_iter().partition(|t| config.decay.decays(t));
    Sgd::with_decay_groups(decayed, undecayed, settings)
}

/// One training step on a batch: forward with drop-path `drop_path`, loss with the auxiliary towers, backward, gate
/// tracking and clamping, SGD step. Returns the loss and the logits of every tower.
pub fn step(
    net: &mut Supernet,
    optimizer: &mut Sgd,
    images: &tch::Tensor,
    labels: &tch::Tensor,
    config: &TrainConfig,
    drop_path: f64,
) -> anyhow::Result<(tch::Tensor, Vec<tch::Tensor>)> {
    data_parallel_step(net, optimizer, (images, labels), config, drop_path, None)
}

/// A training step of this rank's `share` of a global batch: as `step`, with the gradients averaged over the
/// group's ranks before the gates are tracked and the weights updated, so that every rank takes the same step.
/// None trains alone.
fn data_parallel_step(
    net: &mut Supernet,
    optimizer: &mut Sgd,
    (images, labels): (&tch::Tensor, &tch::Tensor),
    config: &TrainConfig,
    drop_path: f64,
    share: Option<(&ProcessGroup, BatchShare)>,
) -> anyhow::Result<(tch::Tensor, Vec<tch::Tensor>)> {
    let mode = Mode {
        share: share.map(|(_, rows)| rows),
        ..Mode::train(drop_path)
    };
    let logits = net.forward(images, mode);
    let loss = Supernet::loss(&logits, labels, config.aux_weight, config.label_smoothing);
    optimizer.zero_grad();
    loss.backward();
    if let Some((group, rows)) = share {
        average_gradients(net, group, labels.size()[0] as f64 / rows.global as f64)?;
    }
    net.track_gates();
    net.clamp_pruners();
    optimizer.step()?;
    Ok((loss, logits))
}

/// Replaces every gradient by the global batch's: each rank's mean-loss gradient weighted by its `share` of the
/// batch, summed over the group. A tensor without a gradient on some rank (no path to the loss there) counts as
/// zero where another rank has one; one without a gradient anywhere keeps none, as alone.
fn average_gradients(net: &Supernet, group: &ProcessGroup, share: f64) -> anyhow::Result<()> {
    let parameters = net.parameters();
    let defined: Vec<i64> = parameters.iter().map(|p| p.grad().defined() as i64).collect();
    let anywhere = tch::Tensor::from_slice(&defined);
    group.all_reduce_max(std::slice::from_ref(&anywhere))?;
    let anywhere = Vec::<i64>::try_from(&anywhere)?;
    let (shared, _): (Vec<_>, Vec<_>) = parameters
        .into_iter()
        .zip(anywhere)
        .partition(|(_, anywhere)| *anywhere != 0);
    let shared: Vec<tch::Tensor> = shared.into_iter().map(|(parameter, _)| parameter).collect();
    crate::system::native::zero_missing_grads(&shared)?;
    let mut gradients: Vec<tch::Tensor> = shared.iter().map(|parameter| parameter.grad()).collect();
    for gradient in &mut gradients {
        tch::no_grad(|| gradient.f_mul_scalar_(share).map(drop))?;
    }
    group.all_reduce_sum(&gradients)
}

/// Learning rate of 0-based epoch `epoch` out of `epochs`: ½ · lr_max · (1 + cos(π · epoch / epochs)).
pub fn cosine_lr(lr_max: f64, epoch: usize, epochs: usize) -> f64 {
    0.5 * lr_max * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs.max(1) as f64).cos())
}

/// Learning rate of 0-based batch `batch` of 0-based epoch `epoch` (of `batches` per epoch): the schedule's
/// rate, scaled by s / (warm-up steps) while the 1-based step s is within the warm-up.
pub fn learning_rate(config: &TrainConfig, epoch: usize, batch: usize, batches: usize) -> f64 {
    let warmup_steps = config.warmup_epochs * batches as f64;
    let step = (epoch * batches + batch + 1) as f64;
    let total = (config.epochs.max(1) * batches) as f64;
    let done = (step - 1.0) / total;
    let rate = match config.schedule {
        Schedule::EpochCosine => cosine_lr(config.lr_max, epoch, config.epochs),
        Schedule::Cosine => 0.5 * config.lr_max * (1.0 + (std::f64::consts::PI * done).cos()),
        Schedule::Linear if step <= warmup_steps => config.lr_max,
        Schedule::Linear => config.lr_max * ((total - step + 1.0) / (total - warmup_steps).max(1.0)).clamp(0.0, 1.0),
    };
    if step < warmup_steps {
        rate * step / warmup_steps
    } else {
        rate
    }
}

/// Drop-path probability in 0-based epoch `epoch`: constant, or with the ramp p · epoch / epochs.
pub fn drop_path_at(config: &TrainConfig, epoch: usize) -> f64 {
    if config.drop_path_ramp {
        config.drop_path * epoch as f64 / config.epochs.max(1) as f64
    } else {
        config.drop_path
    }
}

/// Loss and accuracy of the final head over a split.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy of the final head.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate of the epoch's last batch.
    pub lr: f64,
    /// Mean training loss (final head plus weighted auxiliary heads).
    pub train_loss: f64,
    /// Training accuracy of the final head, with drop-path on.
    pub train_accuracy: f64,
    /// Evaluation on the held-out split, when one was given.
    pub eval: Option<Evaluation>,
    /// Live ops after this epoch's deadhead.
    pub live_ops: usize,
    /// Trainable parameters after this epoch's deadhead.
    pub parameters: usize,
    /// Ops removed (or spared) at the end of this epoch.
    pub deadhead: DeadheadReport,
    /// Wall time of the epoch's training (batches, the end-of-epoch checks and deadhead).
    pub seconds: f64,
    /// Wall time of the evaluation after it (0 without one).
    #[serde(default)]
    pub eval_seconds: f64,
}

/// Why training stopped before its last epoch.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// The loss of a batch was NaN or infinite.
    #[error(
        "the training loss became {value} at epoch {epoch}, batch {batch} of {batches} (a learning rate too high?)"
    )]
    NonFiniteLoss {
        value: f64,
        epoch: usize,
        batch: usize,
        batches: usize,
    },
    /// A tensor of the network held a NaN or an infinity at the end of an epoch.
    #[error("tensor {tensor} held a non-finite value at the end of epoch {epoch}")]
    NonFiniteWeights { epoch: usize, tensor: String },
    /// libtorch could not allocate memory for a batch or the evaluation (docs/RELIABILITY.md).
    #[error(
        "could not allocate memory at epoch {epoch}, {place}: {message}. The run folder keeps its last checkpoint: \
         resume when more memory is free, or start again with a smaller --memory-budget or fewer --channels"
    )]
    OutOfMemory {
        epoch: usize,
        /// "batch 3 of 10", or "in its evaluation".
        place: String,
        message: String,
    },
}

/// `outcome`, with an allocation failure in it turned into [`TrainingError::OutOfMemory`] at `epoch`, `place`.
fn at_place<T>(outcome: anyhow::Result<T>, epoch: usize, place: impl FnOnce() -> String) -> anyhow::Result<T> {
    outcome.map_err(|error| match error.downcast_ref::<AllocationFailure>() {
        Some(failure) => TrainingError::OutOfMemory {
            epoch,
            place: place(),
            message: failure.message.clone(),
        }
        .into(),
        None => error,
    })
}

/// The run was asked to stop (a SIGINT or SIGTERM, docs/SEARCH.md, *Interrupts*): the work since its last
/// checkpoint is abandoned, and a resume redoes it.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The first tensor of `net` holding a NaN or an infinity, if any.
fn first_non_finite(net: &Supernet) -> Option<String> {
    tch::no_grad(|| {
        net.named_tensors()
            .into_iter()
            .find(|(_, tensor)| tensor.isfinite().all().int64_value(&[]) == 0)
            .map(|(name, _)| name)
    })
}

/// Receives progress while training runs.
pub trait TrainObserver {
    /// Called after each batch.
    fn batch(&mut self, _epoch: usize, _batch: usize, _batches: usize, _loss: f64) {}
    /// Called after each epoch.
    fn epoch(&mut self, _report: &EpochReport) {}
    /// Asked after each epoch: true ends the training there (the learning-rate schedule is not shortened).
    fn should_stop(&mut self) -> bool {
        false
    }
    /// Asked after each batch and each scored candidate: true abandons the run there with [`Interrupted`].
    fn interrupted(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl TrainObserver for Silent {}

/// A training stopped at an epoch boundary, to be continued. The network given to [`train`] must already
/// hold that epoch's genotype, tensors and gate histories.
pub struct Resumed {
    /// The reports of the epochs done.
    pub reports: Vec<EpochReport>,
    /// The optimiser's momentum buffers at that point, as [`Sgd::momentum_buffers`] gave them.
    pub momentum: Vec<(String, tch::Tensor)>,
}

/// Whether a training goes on after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flow {
    /// On to the next epoch.
    Continue,
    /// End here (the learning-rate schedule is not shortened).
    Stop,
    /// Go on, but with this many epochs in all: the cosine schedule of the epochs left follows the new count.
    Reschedule(usize),
}

/// Called after every finished epoch with the network, the optimiser and the reports so far; it says whether the
/// training goes on, and an error stops it.
pub type SaveEpoch<'a> = &'a mut dyn FnMut(&Supernet, &Sgd, &[EpochReport]) -> anyhow::Result<Flow>;

/// How a training is checkpointed: where it starts from, and what saves each finished epoch. The default starts at
/// epoch 1 and saves nothing.
#[derive(Default)]
pub struct Checkpointing<'a> {
    /// The state to continue from; None starts at epoch 1.
    pub resumed: Option<Resumed>,
    /// Saves an epoch's state and decides whether the training goes on; None goes on to the last epoch.
    pub save: Option<SaveEpoch<'a>>,
}

/// Trains `net` on `train` for `config.epochs` epochs and evaluates on `eval` (if any) after each, continued from
/// `checkpointing.resumed` and saving every epoch through `checkpointing.save`. `seed` drives batch order,
/// augmentation and drop-path masks; every random stream is seeded per epoch, so a run continued from a saved epoch
/// is bitwise the run that was not interrupted (on CPU).
pub fn train(
    net: &mut Supernet,
    train: &Split,
    eval: Option<&Split>,
    config: &TrainConfig,
    seed: u64,
    observer: &mut dyn TrainObserver,
    mut checkpointing: Checkpointing,
) -> anyhow::Result<Vec<EpochReport>> {
    let images = config.images_per_epoch(train.len());
    if batches_per_epoch(images, config.batch_size) == 0 {
        anyhow::bail!(
            "an epoch trains on {images} of the training split's {} samples, fewer than one batch of {}",
            train.len(),
            config.batch_size
        );
    }
    let mut optimizer = optimizer(net, config);
    let mut config = config.clone();
    let mut reports = Vec::with_capacity(config.epochs);
    if let Some(resumed) = checkpointing.resumed.take() {
        optimizer
            .load_momentum_buffers(net.named_tensors(), resumed.momentum)
            .context("the saved optimiser state does not fit the network")?;
        reports = resumed.reports;
    }
    let group = distributed::group();
    if config.batch_size < group.world() {
        anyhow::bail!(
            "a batch of {} images cannot be shared by {} ranks: give each at least one",
            config.batch_size,
            group.world()
        );
    }
    // Every rank starts from rank 0's weights, as PyTorch's DDP does.
    group.broadcast(&net.named_tensors().into_iter().map(|(_, t)| t).collect::<Vec<_>>(), 0)?;
    while reports.len() < config.epochs {
        let epoch = reports.len();
        let start = Instant::now();
        let totals = train_epoch(net, &mut optimizer, train, &config, seed, epoch, observer)?;
        let report = finish_epoch(net, (train, eval), &config, (seed, epoch), totals, start)?;
        reports.push(report);
        let flow = match checkpointing.save.as_mut() {
            Some(save) => save(net, &optimizer, &reports)?,
            None => Flow::Continue,
        };
        observer.epoch(reports.last().expect("just pushed"));
        // Rank 0's clock and signals decide for every rank.
        let (flow, stop) = group.decide((flow, observer.should_stop()))?;
        match flow {
            Flow::Stop => break,
            Flow::Reschedule(epochs) => config.epochs = epochs.max(reports.len()),
            Flow::Continue => {}
        }
        if stop {
            break;
        }
    }
    // The network handed back gets the statistics an evaluated epoch gets; with an evaluation every epoch it
    // already has them.
    if eval.is_none()
        && let Some(last) = reports.len().checked_sub(1)
    {
        recalibrate(net, train, &config, seed, last)?;
    }
    Ok(reports)
}

/// The value of a batch's `loss`, or the error that names where it stopped being finite (1-based epoch and batch).
fn finite_loss(loss: &tch::Tensor, epoch: usize, batch: usize, batches: usize) -> Result<f64, TrainingError> {
    let value = loss.double_value(&[]);
    match value.is_finite() {
        true => Ok(value),
        false => Err(TrainingError::NonFiniteLoss {
            value,
            epoch,
            batch,
            batches,
        }),
    }
}

/// Sums over the batches of one epoch, and the cut made part-way through it.
struct EpochTotals {
    loss: f64,
    correct: f64,
    seen: usize,
    batches: usize,
    cut: DeadheadReport,
}

/// Trains epoch `epoch` (from 0): the batches of `train` in the epoch's seeded order (its first
/// `config.epoch_images` images, when set), augmented and with drop-path masks drawn from the epoch's own streams.
fn train_epoch(
    net: &mut Supernet,
    optimizer: &mut Sgd,
    train: &Split,
    config: &TrainConfig,
    seed: u64,
    epoch: usize,
    observer: &mut dyn TrainObserver,
) -> anyhow::Result<EpochTotals> {
    let batches = batches_per_epoch(config.images_per_epoch(train.len()), config.batch_size);
    let device = net.device();
    let drop_path = drop_path_at(config, epoch);
    let group = distributed::group();
    net.seed_drop_path(seed, epoch);
    let mut frozen = FrozenGates::for_epoch(net, config, epoch);
    let part_way = part_way_cut(config, epoch, batches);
    let mut augment_rng = seed::rng(seed, Stream::Augment, epoch as u64);
    let mut totals = EpochTotals {
        loss: 0.0,
        correct: 0.0,
        seen: 0,
        batches,
        cut: DeadheadReport::default(),
    };
    for (index, (images, labels)) in epoch_batches(train, batches, config.batch_size, (seed, epoch), device).enumerate()
    {
        // Every rank augments the whole global batch, so that the augmentation stream is the same for any number
        // of ranks, then trains on its share of it.
        let global = labels.size()[0] as usize;
        let rows = group.shard(global);
        let share = BatchShare {
            global,
            start: rows.start,
        };
        let mine = |tensor: tch::Tensor| match group.world() {
            1 => tensor,
            _ => tensor.narrow(0, rows.start as i64, rows.len() as i64),
        };
        let labels = mine(labels);
        let trained = alloc_failure::guard(|| {
            alloc_failure::inject(Site::Training, device);
            let images = mine(match &config.augment {
                Some(augment) => augment.apply(&images, &mut augment_rng),
                None => images,
            });
            optimizer.set_lr(learning_rate(config, epoch, index, batches));
            match group.world() {
                1 => step(net, optimizer, &images, &labels, config, drop_path),
                _ => data_parallel_step(
                    net,
                    optimizer,
                    (&images, &labels),
                    config,
                    drop_path,
                    Some((group, share)),
                ),
            }
        });
        let (loss, logits) = at_place(trained, epoch + 1, || format!("batch {} of {batches}", index + 1))?;
        if let Some(frozen) = frozen.as_mut() {
            frozen.restore();
        }
        if let Some((_, keep)) = part_way.filter(|&(after, _)| after == index) {
            totals.cut = net.keep_strongest_ops(keep);
        }
        let loss_value = finite_loss(&loss, epoch + 1, index + 1, batches)?;
        let n = labels.size()[0] as usize;
        totals.loss += loss_value * n as f64;
        totals.correct += Supernet::accuracy(logits.last().expect("one head at least"), &labels) * n as f64;
        totals.seen += n;
        observer.batch(epoch + 1, index + 1, batches, loss_value);
        // A signal reaches each rank at its own moment: all stop at the same batch.
        if group.any(observer.interrupted())? {
            return Err(Interrupted.into());
        }
    }
    let mut sums = [totals.loss, totals.correct, totals.seen as f64];
    group.sum_f64(&mut sums)?;
    totals.loss = sums[0];
    totals.correct = sums[1];
    totals.seen = sums[2] as usize;
    Ok(totals)
}

/// The `batches` training batches of epoch `epoch` (from 0) of a training seeded by `seed`: drawn in the epoch's own
/// order of the whole of `train`.
fn epoch_batches(
    train: &Split,
    batches: usize,
    batch_size: usize,
    (seed, epoch): (u64, usize),
    device: tch::Device,
) -> Batches<'_> {
    let mut order = seed::rng(seed, Stream::BatchOrder, epoch as u64);
    Batches::drawn(train, batches * batch_size, batch_size, &mut order, device)
}

/// The cut of `config` that falls part-way through epoch `epoch` (from 0) of `batches`, as the batch (from 0) it
/// follows and the ops each edge keeps; a cut at the epoch's end is made with its deadheading, in `finish_epoch`.
fn part_way_cut(config: &TrainConfig, epoch: usize, batches: usize) -> Option<(usize, usize)> {
    let cut = config.cut_ops?;
    let after = cut
        .batch_in(epoch, config.epochs, batches)
        .filter(|&after| after + 1 < batches)?;
    Some((after, cut.keep))
}

/// Ends epoch `epoch` (from 0) of a training on `train` seeded by `seed`, trained since `start`: checks the
/// weights, deadheads, evaluates `eval` if given (after recalibrating the batch norms), and reports.
fn finish_epoch(
    net: &mut Supernet,
    (train, eval): (&Split, Option<&Split>),
    config: &TrainConfig,
    (seed, epoch): (u64, usize),
    totals: EpochTotals,
    start: Instant,
) -> anyhow::Result<EpochReport> {
    if let Some(tensor) = first_non_finite(net) {
        return Err(TrainingError::NonFiniteWeights {
            epoch: epoch + 1,
            tensor,
        }
        .into());
    }
    let batches = totals.batches;
    let mut deadhead = if config.deadhead {
        net.deadhead(batches)
    } else {
        DeadheadReport::default()
    };
    let at_the_end = config
        .cut_ops
        .filter(|cut| cut.batch_in(epoch, config.epochs, batches) == Some(batches - 1))
        .map(|cut| net.keep_strongest_ops(cut.keep));
    for outcome in [Some(totals.cut), at_the_end].into_iter().flatten() {
        deadhead.cut.extend(outcome.cut);
        deadhead.spared.extend(outcome.spared);
    }
    // Batch norms normalise with each rank's own batch statistics; their running statistics, which evaluation
    // uses, are rank 0's on every rank from here on.
    distributed::group().broadcast(&net.buffers(), 0)?;
    let seconds = start.elapsed().as_secs_f64();
    let eval_start = Instant::now();
    let eval = eval
        .map(|split| {
            recalibrate(net, train, config, seed, epoch)?;
            let evaluated = alloc_failure::guard(|| evaluate(net, split, config.eval_batch_size));
            at_place(evaluated, epoch + 1, || "in its evaluation".to_string())
        })
        .transpose()?;
    Ok(EpochReport {
        epoch: epoch + 1,
        lr: learning_rate(config, epoch, batches - 1, batches),
        train_loss: totals.loss / totals.seen as f64,
        train_accuracy: totals.correct / totals.seen as f64,
        eval,
        live_ops: net.genotype().live_op_count(),
        parameters: net.parameter_count(),
        deadhead,
        seconds,
        eval_seconds: eval_start.elapsed().as_secs_f64(),
    })
}

/// Recalibrates the batch norms after epoch `epoch` (from 0), when `config` asks for it, and gives every rank rank
/// 0's statistics.
fn recalibrate(net: &Supernet, train: &Split, config: &TrainConfig, seed: u64, epoch: usize) -> anyhow::Result<()> {
    if config.bn_recalibration == 0 {
        return Ok(());
    }
    let recalibrated = alloc_failure::guard(|| Ok(recalibrate_batch_norms(net, train, config, seed, epoch)));
    at_place(recalibrated, epoch + 1, || {
        "recomputing the batch norms' statistics".to_string()
    })?;
    distributed::group().broadcast(&net.buffers(), 0)
}

/// Replaces the batch norms' running statistics with the mean batch statistics of `config.bn_recalibration`
/// unaugmented images of `train`, drawn for epoch `epoch` (from 0), in batches of at most `config.eval_batch_size`
/// (docs/ALGORITHM.md §9, *Batch-norm recalibration*). The last step can close or open a gate, and deadheading can
/// remove ops, while the running statistics still average the steps before: recomputing them with the network as
/// it ends the epoch keeps its evaluation from collapsing. `train` does it before every evaluation of an epoch and
/// after the last epoch. Does nothing when `config.bn_recalibration` is 0.
pub fn recalibrate_batch_norms(net: &Supernet, train: &Split, config: &TrainConfig, seed: u64, epoch: usize) -> usize {
    let images = config.bn_recalibration.min(train.len());
    let batch_size = config.eval_batch_size.min(images);
    // A batch norm in train mode needs two values per channel; one image of 1×1 maps has one.
    if batch_size < 2 {
        return 0;
    }
    let mut order = seed::rng(seed, Stream::Recalibration, epoch as u64);
    let batches = Batches::shuffled(train, batch_size, &mut order, net.device())
        .take(images / batch_size)
        .map(|(images, _)| images);
    net.recalibrate_batch_norms(batches)
}

/// Batches of an epoch over `images` images: the last, partial batch is left out.
pub fn batches_per_epoch(images: usize, batch_size: usize) -> usize {
    images / batch_size.max(1)
}

/// Training images per second over `reports`, each epoch over `images` images in batches of `batch_size`; None
/// without a timed epoch.
pub fn images_per_second(reports: &[EpochReport], images: usize, batch_size: usize) -> Option<f64> {
    let per_epoch = batches_per_epoch(images, batch_size) * batch_size;
    let seconds: f64 = reports.iter().map(|r| r.seconds).sum();
    (seconds > 0.0).then(|| (reports.len() * per_epoch) as f64 / seconds)
}

/// Loss and accuracy of the final head with batch norms in eval mode. In a distributed run each rank evaluates its
/// share of the split and the sums are added up, so every rank returns the whole split's figures.
pub fn evaluate(net: &Supernet, split: &Split, batch_size: usize) -> anyhow::Result<Evaluation> {
    let group = distributed::group();
    let shard;
    let mine = if group.world() == 1 {
        split
    } else {
        let rows = group.shard(split.len());
        shard = split.select(&(rows.start as i64..rows.end as i64).collect::<Vec<_>>());
        &shard
    };
    let mut sums = tch::no_grad(|| {
        let (mut loss, mut correct) = (0.0, 0.0);
        for (images, labels) in Batches::in_order(mine, batch_size, net.device()) {
            let logits = net.forward(&images, Mode::eval());
            let last = logits.last().expect("one head at least");
            let n = labels.size()[0] as f64;
            loss += last.cross_entropy_for_logits(&labels).double_value(&[]) * n;
            correct += Supernet::accuracy(last, &labels) * n;
        }
        [loss, correct]
    });
    group.sum_f64(&mut sums)?;
    let n = split.len().max(1) as f64;
    Ok(Evaluation {
        loss: sums[0] / n,
        accuracy: sums[1] / n,
    })
}

/// Trains on a data set's training split and evaluates on its test split.
pub fn train_on(
    net: &mut Supernet,
    data: &Dataset,
    config: &TrainConfig,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> anyhow::Result<Vec<EpochReport>> {
    train(
        net,
        &data.train,
        Some(&data.test),
        config,
        seed,
        observer,
        Checkpointing::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_matches_the_reference_values() {
        let lrs: Vec<f64> = (0..4).map(|e| cosine_lr(0.01, e, 4)).collect();
        let expected = [0.01, 0.008536, 0.005, 0.001464];
        for (lr, want) in lrs.iter().zip(expected) {
            assert!((lr - want).abs() < 1e-6, "{lr} vs {want}");
        }
    }

    #[test]
    fn warm_up_rises_linearly_per_batch_then_follows_the_cosine() {
        let config = TrainConfig {
            epochs: 4,
            lr_max: 0.1,
            warmup_epochs: 1.5,
            ..TrainConfig::default()
        };
        // 10 batches per epoch: 15 warm-up steps.
        assert!((learning_rate(&config, 0, 0, 10) - 0.1 / 15.0).abs() < 1e-12);
        assert!((learning_rate(&config, 0, 9, 10) - 0.1 * 10.0 / 15.0).abs() < 1e-12);
        let second = cosine_lr(0.1, 1, 4);
        assert!((learning_rate(&config, 1, 3, 10) - second * 14.0 / 15.0).abs() < 1e-12);
        assert_eq!(learning_rate(&config, 1, 4, 10), second);
        assert_eq!(learning_rate(&config, 3, 0, 10), cosine_lr(0.1, 3, 4));
        let plain = TrainConfig {
            warmup_epochs: 0.0,
            ..config
        };
        assert_eq!(learning_rate(&plain, 0, 0, 10), 0.1);
    }

    #[test]
    fn per_batch_schedules_fall_to_zero_at_the_last_batch_and_linear_is_flat_through_the_warm_up() {
        let cosine = TrainConfig {
            epochs: 2,
            lr_max: 0.1,
            schedule: Schedule::Cosine,
            ..TrainConfig::default()
        };
        // 10 batches per epoch, 20 steps: step k (0-based) has the cosine at k/20.
        assert_eq!(learning_rate(&cosine, 0, 0, 10), 0.1);
        assert!((learning_rate(&cosine, 1, 0, 10) - 0.05).abs() < 1e-12, "half way");
        let last = learning_rate(&cosine, 1, 9, 10);
        assert!((last - 0.05 * (1.0 + (std::f64::consts::PI * 19.0 / 20.0).cos())).abs() < 1e-12);
        let linear = TrainConfig {
            schedule: Schedule::Linear,
            warmup_epochs: 0.5,
            ..cosine
        };
        // 5 warm-up steps rising to 0.1, then 15 steps falling by 0.1/15 each.
        assert!((learning_rate(&linear, 0, 0, 10) - 0.02).abs() < 1e-12);
        assert_eq!(learning_rate(&linear, 0, 4, 10), 0.1);
        assert_eq!(learning_rate(&linear, 0, 5, 10), 0.1);
        assert!((learning_rate(&linear, 0, 6, 10) - 0.1 * 14.0 / 15.0).abs() < 1e-12);
        assert!((learning_rate(&linear, 1, 9, 10) - 0.1 / 15.0).abs() < 1e-12);
        let rescheduled = TrainConfig {
            epochs: 4,
            ..linear.clone()
        };
        assert!(
            learning_rate(&rescheduled, 1, 9, 10) > learning_rate(&linear, 1, 9, 10),
            "more epochs stretch the fall"
        );
    }

    #[test]
    fn a_cut_falls_after_the_first_batch_that_reaches_its_point_and_never_at_the_very_end() {
        // In epochs of 10 batches: the end of epoch 1, a quarter into it (after its 3rd batch, the first whose end
        // passes 2.5 batches), and half-way through epoch 2.
        let due = |after, epochs| -> Vec<(usize, usize)> {
            (0..epochs)
                .flat_map(|epoch| (0..10).map(move |batch| (epoch, batch)))
                .filter(|&(epoch, batch)| cut_at(after).batch_in(epoch, epochs, 10) == Some(batch))
                .collect()
        };
        assert_eq!(due(1.0, 3), [(0, 9)]);
        assert_eq!(due(0.25, 3), [(0, 2)]);
        assert_eq!(due(1.5, 3), [(1, 4)]);
        assert_eq!(
            (cut_at(1.0).epoch(), cut_at(0.25).epoch(), cut_at(1.5).epoch()),
            (1, 1, 2)
        );
        // Within the only epoch, but not at its end: that would leave a network no batch trained.
        assert_eq!(due(0.25, 1), [(0, 2)]);
        assert!(due(1.0, 1).is_empty() && due(2.0, 2).is_empty() && due(0.99, 1).is_empty());
        // A point inside the first batch: the cut follows that batch.
        assert_eq!(cut_at(0.01).batch_in(0, 2, 10), Some(0));
        assert!(!cut_at(0.25).made_within(0) && cut_at(0.25).made_within(1) && !cut_at(1.0).made_within(1));
    }

    #[test]
    fn a_cut_asked_for_must_lie_a_positive_number_of_epochs_in_and_have_ops_to_remove() {
        assert_eq!(OpCut::asked(Some(2), None).unwrap(), Some(cut_at(CUT_AFTER_EPOCH)));
        assert_eq!(OpCut::asked(Some(2), Some(0.5)).unwrap(), Some(cut_at(0.5)));
        assert_eq!(OpCut::asked(None, None).unwrap(), None);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let message = OpCut::asked(Some(2), Some(bad)).unwrap_err().to_string();
            assert!(message.contains("positive number of epochs"), "{bad}: {message}");
        }
        let message = OpCut::asked(None, Some(1.0)).unwrap_err().to_string();
        assert!(message.contains("no cut to make"), "{message}");
    }

    fn cut_at(after_epoch: f64) -> OpCut {
        OpCut { after_epoch, keep: 2 }
    }

    #[test]
    fn decay_on_weights_leaves_out_vectors_and_scalars() {
        let conv = tch::Tensor::zeros([4, 3, 3, 3], (tch::Kind::Float, tch::Device::Cpu));
        let bn = tch::Tensor::zeros([4], (tch::Kind::Float, tch::Device::Cpu));
        let gate = tch::Tensor::zeros([] as [i64; 0], (tch::Kind::Float, tch::Device::Cpu));
        let linear = tch::Tensor::zeros([10, 4], (tch::Kind::Float, tch::Device::Cpu));
        let weights = [&conv, &bn, &gate, &linear].map(|t| DecayScope::Weights.decays(t));
        assert_eq!(weights, [true, false, false, true]);
        assert!([&conv, &bn, &gate, &linear].iter().all(|t| DecayScope::All.decays(t)));
    }

    #[test]
    fn the_drop_path_ramp_starts_at_zero_and_the_reference_rule_is_constant() {
        let mut config = TrainConfig {
            epochs: 4,
            drop_path: 0.2,
            ..TrainConfig::default()
        };
        assert_eq!(drop_path_at(&config, 0), 0.2);
        config.drop_path_ramp = true;
        let ramp: Vec<f64> = (0..4).map(|e| drop_path_at(&config, e)).collect();
        assert_eq!(ramp, [0.0, 0.05, 0.1, 0.15000000000000002]);
    }
}
