//! Scoring candidate splits: NTK and LRC ratios between the "on" and "off" networks, acceptance, and the
//! min-max combination that picks one split per cell (docs/ALGORITHM.md §7, §13.1–13.3).

use super::candidate::{Candidate, scoring_network};
use super::lrc::{self, RegionCount};
use super::ntk::{self, Conditioning};
use super::replicas;
use super::rule::DecisionRule;
use super::zero_cost::{self, MetricName, NetworkMetric, Probe, Values};
use crate::data::Split;
use crate::distributed::{self, ProcessGroup};
use crate::genotype::{Genotype, InputShape};
use crate::memory;
use crate::nn::init::{Fan, InitScheme};
use crate::seed::{self, Stream};
use crate::supernet::{Mode, Supernet};
use crate::system::alloc_failure::{self, AllocationFailure, Site};
use crate::train::TrainConfig;
use anyhow::Context;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tch::{Device, Tensor};

/// Which NTK condition number drives acceptance and choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NtkMode {
    /// κ over the non-null spectrum, in f64 (the default).
    Sound,
    /// The reference's f32 λ_max/λ_min.
    Faithful,
}

impl NtkMode {
    /// The metric that is this κ.
    pub fn metric(self) -> MetricName {
        match self {
            NtkMode::Sound => MetricName::NtkSound,
            NtkMode::Faithful => MetricName::NtkFaithful,
        }
    }
}

/// Settings of the train-free scoring; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsConfig {
    /// Repeats averaged per metric.
    pub repeats: usize,
    /// Width of the NTK network's first cell.
    pub ntk_width: usize,
    /// Batches of NTK samples.
    pub ntk_batches: usize,
    /// Samples per NTK batch.
    pub ntk_batch_size: usize,
    /// Relative eigenvalue cut of the sound κ.
    pub ntk_threshold: f64,
    /// Condition number used by the search.
    pub ntk_mode: NtkMode,
    /// Width of the LRC network's first cell.
    pub lrc_width: usize,
    /// Batches of LRC crops.
    pub lrc_batches: usize,
    /// Crops per LRC batch.
    pub lrc_batch_size: usize,
    /// Side of an LRC crop.
    pub lrc_crop: usize,
    /// Accepted candidates per cell after which the walk of the published rule stops.
    pub candidates_per_cell: usize,
    /// How a cell's split is chosen among its candidates (`--metrics`); runs recorded before rules existed used
    /// the published one.
    #[serde(default)]
    pub rule: DecisionRule,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            repeats: 3,
            ntk_width: 3,
            ntk_batches: 3,
            ntk_batch_size: 64,
            ntk_threshold: 1e-9,
            ntk_mode: NtkMode::Sound,
            lrc_width: 1,
            lrc_batches: 3,
            lrc_batch_size: 1000,
            lrc_crop: 3,
            candidates_per_cell: 3,
            rule: DecisionRule::Published,
        }
    }
}

/// Both metrics of one repeat, on and off.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RepeatReport {
    /// NTK of the network with the split.
    pub ntk_on: Conditioning,
    /// NTK of the same network with the new edges off.
    pub ntk_off: Conditioning,
    /// Linear regions with the split.
    pub lrc_on: RegionCount,
    /// Linear regions with the new edges off.
    pub lrc_off: RegionCount,
}

/// Everything measured about one candidate split. Whether it was accepted follows from `rejection`; the JSON
/// form still carries an `accepted` field for readers of history.jsonl.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct CandidateReport {
    /// Cell index.
    pub cell: usize,
    /// Id of the edge that would be split.
    pub edge: u32,
    /// Source node of that edge.
    pub from: usize,
    /// Target node of that edge.
    pub to: usize,
    /// Per-repeat raw values.
    pub repeats: Vec<RepeatReport>,
    /// Mean of (κ_on − κ_off)/κ_off over repeats, with the configured κ.
    pub r_ntk: f64,
    /// Mean of (LRC_on − LRC_off)/LRC_off over repeats.
    pub r_lrc: f64,
    /// The signals of the other metrics the decision rule reads (docs/METRICS.md); empty for the published rule.
    #[serde(default)]
    pub signals: BTreeMap<MetricName, f64>,
    /// Why it is not eligible under the decision rule (for the published rule: r_lrc > 0, r_ntk ≤ 0, both finite);
    /// `None` when it is.
    pub rejection: Option<String>,
    /// Its score among the cell's eligible candidates under the decision rule (lower is better).
    pub score: Option<f64>,
    /// Wall time spent scoring it.
    pub seconds: f64,
}

impl CandidateReport {
    /// A report of edge `edge` of cell `cell` from its signals alone (no per-repeat values, no timing, no score),
    /// its acceptance decided by the published rule: how recorded signals are decided again.
    pub fn from_signals(cell: usize, edge: u32, r_ntk: f64, r_lrc: f64, signals: BTreeMap<MetricName, f64>) -> Self {
        CandidateReport {
            cell,
            edge,
            from: 0,
            to: 0,
            repeats: Vec::new(),
            r_ntk,
            r_lrc,
            signals,
            rejection: acceptance(r_ntk, r_lrc).err(),
            score: None,
            seconds: 0.0,
        }
    }

    /// Whether the candidate passed acceptance.
    pub fn accepted(&self) -> bool {
        self.rejection.is_none()
    }

    /// Its signal of `metric`: r_ntk for the κ of `mode`, r_lrc for regions, otherwise from `signals` (NaN when
    /// not measured).
    pub fn signal(&self, metric: MetricName, mode: NtkMode) -> f64 {
        if metric == mode.metric() {
            self.r_ntk
        } else if metric == MetricName::Regions {
            self.r_lrc
        } else {
            self.signals.get(&metric).copied().unwrap_or(f64::NAN)
        }
    }
}

impl serde::Serialize for CandidateReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // The count must be exact for formats that write it (CBOR, between ranks): 12 fields, `signals` omitted when
        // empty.
        let fields = if self.signals.is_empty() { 11 } else { 12 };
        let mut record = serializer.serialize_struct("CandidateReport", fields)?;
        record.serialize_field("cell", &self.cell)?;
        record.serialize_field("edge", &self.edge)?;
        record.serialize_field("from", &self.from)?;
        record.serialize_field("to", &self.to)?;
        record.serialize_field("repeats", &self.repeats)?;
        record.serialize_field("r_ntk", &self.r_ntk)?;
        record.serialize_field("r_lrc", &self.r_lrc)?;
        if self.signals.is_empty() {
            record.skip_field("signals")?;
        } else {
            record.serialize_field("signals", &self.signals)?;
        }
        record.serialize_field("accepted", &self.accepted())?;
        record.serialize_field("rejection", &self.rejection)?;
        record.serialize_field("score", &self.score)?;
        record.serialize_field("seconds", &self.seconds)?;
        record.end()
    }
}

/// A candidate that could not be scored because libtorch could not allocate its memory (docs/RELIABILITY.md,
/// *Allocation failures*). The walk goes on without it, and with fewer NTK copies per pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SkippedCandidate {
    /// Cell index.
    pub cell: usize,
    /// Id of the edge that would be split.
    pub edge: u32,
    /// Source node of that edge.
    pub from: usize,
    /// Target node of that edge.
    pub to: usize,
    /// libtorch's message.
    pub reason: String,
    /// NTK copies per pass it was scored with.
    pub ntk_copies: usize,
    /// The most NTK copies per pass for the rest of the mutation pass.
    pub ntk_copies_after: usize,
    /// Wall time until it failed.
    pub seconds: f64,
}

/// What the candidate walk reports about one candidate.
#[derive(Clone, Copy, Debug)]
pub enum CandidateEvent<'a> {
    /// It was scored.
    Scored(&'a CandidateReport),
    /// It could not be scored.
    Skipped(&'a SkippedCandidate),
}

/// The outcome of scoring one cell.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CellDecision {
    /// Cell index.
    pub cell: usize,
    /// Every candidate scored, in the order tried.
    pub tried: Vec<CandidateReport>,
    /// Candidates that could not be scored, in the order tried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedCandidate>,
    /// The edge to split, if any candidate was accepted.
    pub chosen: Option<u32>,
}

fn ratio(on: f64, off: f64) -> f64 {
    (on - off) / off
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

/// The published acceptance rule: regions must grow, κ must not, and both ratios must be finite.
pub fn acceptance(r_ntk: f64, r_lrc: f64) -> Result<(), String> {
    if !r_ntk.is_finite() || !r_lrc.is_finite() {
        Err(format!("non-finite ratio (r_ntk {r_ntk}, r_lrc {r_lrc})"))
    } else if r_lrc <= 0.0 {
        Err(format!("linear regions did not grow (r_lrc {r_lrc:.4})"))
    } else if r_ntk > 0.0 {
        Err(format!("NTK conditioning got worse (r_ntk {r_ntk:.4})"))
    } else {
        Ok(())
    }
}

/// Inputs shared by every candidate of a repeat, so candidates are compared on the same data.
struct RepeatInputs {
    ntk: Vec<Tensor>,
    /// The labels of the `ntk` images, batch by batch.
    labels: Vec<Tensor>,
    lrc: Vec<Tensor>,
}

fn repeat_inputs(train: &Split, config: &MetricsConfig, seed: u64, repeat: usize, device: Device) -> RepeatInputs {
    let mut rng = seed::rng(seed, Stream::Metrics, repeat as u64);
    let mut order: Vec<i64> = (0..train.len() as i64).collect();
    order.shuffle(&mut rng);
    let chunks: Vec<Tensor> = order
        .chunks(config.ntk_batch_size.max(1))
        .take(config.ntk_batches)
        .map(Tensor::from_slice)
        .collect();
    let pick = |from: &Tensor| -> Vec<Tensor> {
        chunks
            .iter()
            .map(|chunk| from.index_select(0, chunk).to_device(device))
            .collect()
    };
    let (ntk, labels) = (pick(&train.images), pick(&train.labels));
    let lrc = (0..config.lrc_batches)
        .map(|_| lrc::random_crops(train, config.lrc_batch_size, config.lrc_crop, &mut rng).to_device(device))
        .collect();
    RepeatInputs { ntk, labels, lrc }
}

fn regions(net: &Supernet, batches: &[Tensor]) -> RegionCount {
    tch::no_grad(|| {
        let patterns: Vec<Tensor> = batches
            .iter()
            .map(|batch| {
                let samples = batch.size()[0] as usize;
                lrc::sign_pattern(&net.forward_with_relus(batch, Mode::train(0.0)).1, samples)
            })
            .collect();
        lrc::count_regions(&patterns)
    })
}

/// Copies of `genotype`'s network at `width` one replicated NTK pass runs on batches of `batch`: the largest power
/// of two up to `most` whose activations fit in `allowance` (at most `NTK_MEMORY`) by the analytic estimate.
/// Powers of two keep the widths (copies × 3, 6, 12 channels) multiples of 16, which oneDNN's vectorised
/// channels-last kernels need: 13 copies ran 2× slower than 16.
fn ntk_copies(genotype: &Genotype, width: usize, batch: usize, allowance: u64, most: usize) -> usize {
    let per_copy = memory::estimate(genotype, width, batch).activations.max(1);
    let fit = (allowance.min(NTK_MEMORY) / per_copy).clamp(1, most.clamp(1, NTK_MAX_COPIES) as u64);
    1 << fit.ilog2()
}

/// Memory the replicated NTK passes may take, by the activation estimate (measured peaks come within 10 % of it;
/// 16 copies of the minimal genotype's width-3 network at 28×28 peaked at 2.5 GiB).
const NTK_MEMORY: u64 = 3 << 30;

/// More copies than this make the passes no faster on the CPU (measured: 8 and 16 copies alike, 32 slower).
const NTK_MAX_COPIES: usize = 16;

/// Which scoring network an observer sees: the current network (every candidate's "off" network) or a
/// candidate's "on" network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The current network, measured once per cell decision.
    Off,
    /// The network with `edge` of `cell` split.
    On {
        /// Cell of the split edge.
        cell: usize,
        /// The split edge.
        edge: u32,
    },
}

/// Which metric a scoring network is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The NTK condition number.
    Ntk,
    /// The linear-region count.
    Lrc,
}

/// Sees every network the scorer measures, with the weights of the repeat it is measured in; for the NTK, also
/// the gradient rows G its κ comes from. `score --dump` writes them out.
pub trait NetworkObserver {
    /// `net`, about to be measured for `metric` in `repeat`; `gradients` are the NTK's rows (NTK networks only).
    fn network(
        &mut self,
        role: Role,
        metric: Metric,
        repeat: usize,
        net: &Supernet,
        gradients: Option<&Tensor>,
    ) -> anyhow::Result<()>;
}

/// The observer of the search, which looks at nothing.
pub struct Unobserved;

impl NetworkObserver for Unobserved {
    fn network(&mut self, _: Role, _: Metric, _: usize, _: &Supernet, _: Option<&Tensor>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What one scoring of a network needs besides the network: the repeat's inputs and settings, and who watches.
struct Measure<'a> {
    role: Role,
    repeat: usize,
    inputs: &'a RepeatInputs,
    threshold: f64,
    copies: usize,
    observer: &'a mut dyn NetworkObserver,
}

impl Measure<'_> {
    fn conditioning(&mut self, net: &Supernet) -> anyhow::Result<Conditioning> {
        // Channels-last lets oneDNN's depthwise kernels vectorise over the copies' channels (blocks::MemoryFormat).
        let channels_last = crate::nn::blocks::uses_channels_last(net.device());
        let rows = replicas::gradient_rows(net, &self.inputs.ntk, Mode::train(0.0), self.copies, channels_last)?;
        self.observer
            .network(self.role, Metric::Ntk, self.repeat, net, Some(&rows))?;
        Ok(ntk::conditioning(&rows, self.threshold)?)
    }

    fn regions(&mut self, net: &Supernet) -> anyhow::Result<RegionCount> {
        self.observer.network(self.role, Metric::Lrc, self.repeat, net, None)?;
        Ok(regions(net, &self.inputs.lrc))
    }
}

/// What the current network, without any split, measures in each repeat: the NTK and LRC of every candidate's
/// "off" network. The off network is the current one plus an inert node, and weights are drawn per tensor name,
/// so it computes the same function with the same weights for every candidate of one genotype.
pub struct Baseline {
    repeats: Vec<(Conditioning, RegionCount)>,
    /// The values of the decision rule's other metrics.
    extra: Values,
    genotype: Genotype,
}

/// Initialisation of the NTK networks (docs/ALGORITHM.md §7).
const NTK_INIT: InitScheme = InitScheme::KaimingNormal(Fan::Out);
/// Initialisation of the LRC networks (docs/ALGORITHM.md §7).
const LRC_INIT: InitScheme = InitScheme::KaimingNormal(Fan::In);

/// The train-free scorer for one data set.
pub struct Scorer {
    config: MetricsConfig,
    device: Device,
    seed: u64,
    inputs: Vec<RepeatInputs>,
    memory_allowance: u64,
    /// The most NTK copies per pass; halved after a candidate fails to allocate.
    most_copies: AtomicUsize,
    /// The training recipe whose step the `time_per_image` metric times.
    recipe: TrainConfig,
}

impl Scorer {
    /// A scorer drawing its inputs from `train`; `seed` fixes inputs, initialisations and candidate order.
    pub fn new(train: &Split, config: MetricsConfig, seed: u64, device: Device) -> Self {
        let inputs = (0..config.repeats)
            .map(|r| repeat_inputs(train, &config, seed, r, device))
            .collect();
        Scorer {
            config,
            device,
            seed,
            inputs,
            memory_allowance: NTK_MEMORY,
            most_copies: AtomicUsize::new(NTK_MAX_COPIES),
            recipe: TrainConfig::default(),
        }
    }

    /// Times `time_per_image` with `recipe`'s training step (the default recipe's otherwise).
    pub fn with_recipe(mut self, recipe: TrainConfig) -> Self {
        self.recipe = recipe;
        self
    }

    /// The registered metrics that yield the decision rule's signals beyond r_ntk and r_lrc.
    fn extra_metrics(&self) -> Vec<Box<dyn NetworkMetric>> {
        zero_cost::metrics_for(&self.config.rule.extra_metrics(self.config.ntk_mode))
    }

    /// The values of the decision rule's other metrics for `genotype`'s network (none for the published rule).
    fn extra_values(&self, genotype: &Genotype) -> anyhow::Result<Values> {
        let probe = Probe {
            scorer: self,
            width: None,
            recipe: &self.recipe,
        };
        zero_cost::measure(&self.extra_metrics(), genotype, &probe)
    }

    /// NTK copies per pass for the network of `genotype`.
    fn copies_for(&self, genotype: &Genotype) -> usize {
        let batch = self.config.ntk_batch_size.max(1);
        let most = self.most_copies.load(Ordering::SeqCst);
        ntk_copies(genotype, self.config.ntk_width, batch, self.memory_allowance, most)
    }

    /// Caps the memory the NTK's replicated passes may take (by the memory estimate) at `bytes`, e.g. the search's
    /// memory budget; the default and the ceiling are `NTK_MEMORY`. At least one copy always runs.
    pub fn with_memory_allowance(mut self, bytes: u64) -> Self {
        self.memory_allowance = bytes.min(NTK_MEMORY);
        self
    }

    fn crop(&self) -> InputShape {
        InputShape {
            channels: 1,
            height: self.config.lrc_crop,
            width: self.config.lrc_crop,
        }
    }

    /// The seed from which repeat `r` draws every network's weights, tensor by tensor.
    pub fn init_seed(&self, r: usize) -> u64 {
        seed::derive(self.seed, Stream::Init, r as u64)
    }

    /// Measures the current network once per repeat; `score_against` then needs only the "on" networks.
    pub fn baseline(&self, genotype: &Genotype) -> anyhow::Result<Baseline> {
        self.baseline_observed(genotype, &mut Unobserved)
    }

    /// `baseline`, showing each network to `observer` as it is measured.
    pub fn baseline_observed(
        &self,
        genotype: &Genotype,
        observer: &mut dyn NetworkObserver,
    ) -> anyhow::Result<Baseline> {
        let (mut ntk_net, mut lrc_net) = (self.ntk_network(genotype), self.lrc_network(genotype));
        let copies = self.copies_for(genotype);
        let mut repeats = Vec::with_capacity(self.inputs.len());
        for repeat in 0..self.inputs.len() {
            ntk_net.reset_parameters_by_name(NTK_INIT, self.init_seed(repeat));
            lrc_net.reset_parameters_by_name(LRC_INIT, self.init_seed(repeat));
            let mut measure = self.measure(Role::Off, repeat, copies, &mut *observer);
            repeats.push((measure.conditioning(&ntk_net)?, measure.regions(&lrc_net)?));
        }
        Ok(Baseline {
            repeats,
            extra: self.extra_values(genotype)?,
            genotype: genotype.clone(),
        })
    }

    fn measure<'a>(
        &'a self,
        role: Role,
        repeat: usize,
        copies: usize,
        observer: &'a mut dyn NetworkObserver,
    ) -> Measure<'a> {
        Measure {
            role,
            repeat,
            inputs: &self.inputs[repeat],
            threshold: self.config.ntk_threshold,
            copies,
            observer,
        }
    }

    /// The inputs of `repeat`: the NTK's batches of training images and the LRC's batches of crops.
    pub fn inputs(&self, repeat: usize) -> (&[Tensor], &[Tensor]) {
        let inputs = &self.inputs[repeat];
        (&inputs.ntk, &inputs.lrc)
    }

    /// The scoring settings.
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// The labels of `repeat`'s NTK images, batch by batch.
    pub fn labels(&self, repeat: usize) -> &[Tensor] {
        &self.inputs[repeat].labels
    }

    /// The repeats the scorer averages over.
    pub fn repeats(&self) -> usize {
        self.inputs.len()
    }

    /// The device its networks run on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The NTK condition numbers of `genotype`'s scoring network in `repeat`: what a candidate whose "on"
    /// genotype this is measures there.
    pub fn conditioning_of(&self, genotype: &Genotype, repeat: usize) -> anyhow::Result<Conditioning> {
        let mut net = self.ntk_network(genotype);
        net.reset_parameters_by_name(NTK_INIT, self.init_seed(repeat));
        let copies = self.copies_for(genotype);
        self.measure(Role::Off, repeat, copies, &mut Unobserved)
            .conditioning(&net)
    }

    /// The linear-region count of `genotype`'s scoring network in `repeat`.
    pub fn regions_of(&self, genotype: &Genotype, repeat: usize) -> anyhow::Result<RegionCount> {
        let mut net = self.lrc_network(genotype);
        net.reset_parameters_by_name(LRC_INIT, self.init_seed(repeat));
        self.measure(Role::Off, repeat, 1, &mut Unobserved).regions(&net)
    }

    /// `genotype`'s NTK scoring network, before a repeat draws its weights.
    fn ntk_network(&self, genotype: &Genotype) -> Supernet {
        scoring_network(genotype, self.config.ntk_width, NTK_INIT, None, self.device)
    }

    /// `genotype`'s LRC scoring network (on crops), before a repeat draws its weights.
    fn lrc_network(&self, genotype: &Genotype) -> Supernet {
        scoring_network(
            genotype,
            self.config.lrc_width,
            LRC_INIT,
            Some(self.crop()),
            self.device,
        )
    }

    /// Scores splitting `edge` of `cell` (acceptance decided, no score yet), measuring the baseline first.
    pub fn score_candidate(&self, genotype: &Genotype, cell: usize, edge: u32) -> anyhow::Result<CandidateReport> {
        let start = Instant::now();
        let mut report = self.score_against(&self.baseline(genotype)?, cell, edge)?;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Scores splitting `edge` of `cell` of the baseline's genotype against that baseline. The report's seconds
    /// leave out the baseline, which every candidate of the genotype shares.
    pub fn score_against(&self, baseline: &Baseline, cell: usize, edge: u32) -> anyhow::Result<CandidateReport> {
        self.score_against_observed(baseline, cell, edge, &mut Unobserved)
    }

    /// `score_against`, showing each "on" network to `observer` as it is measured.
    pub fn score_against_observed(
        &self,
        baseline: &Baseline,
        cell: usize,
        edge: u32,
        observer: &mut dyn NetworkObserver,
    ) -> anyhow::Result<CandidateReport> {
        let start = Instant::now();
        let genotype = &baseline.genotype;
        let candidate = Candidate::split(genotype, cell, edge)?;
        let original = &genotype.cells[cell];
        let parent = original.edge(edge).expect("split succeeded, so the edge exists");
        let (from, to) = (parent.from, parent.to);
        let copies = self.copies_for(&candidate.on);
        let mut ntk_net = candidate.network(self.config.ntk_width, NTK_INIT, None, self.device);
        let mut lrc_net = candidate.network(self.config.lrc_width, LRC_INIT, Some(self.crop()), self.device);
        let mut repeats = Vec::with_capacity(self.config.repeats);
        for (repeat, (ntk_off, lrc_off)) in baseline.repeats.iter().enumerate() {
            ntk_net.reset_parameters_by_name(NTK_INIT, self.init_seed(repeat));
            lrc_net.reset_parameters_by_name(LRC_INIT, self.init_seed(repeat));
            let mut measure = self.measure(Role::On { cell, edge }, repeat, copies, &mut *observer);
            repeats.push(RepeatReport {
                ntk_on: measure.conditioning(&ntk_net)?,
                ntk_off: *ntk_off,
                lrc_on: measure.regions(&lrc_net)?,
                lrc_off: *lrc_off,
            });
        }
        let kappa = |c: &Conditioning| match self.config.ntk_mode {
            NtkMode::Sound => c.sound,
            NtkMode::Faithful => c.faithful,
        };
        let r_ntk = mean(repeats.iter().map(|r| ratio(kappa(&r.ntk_on), kappa(&r.ntk_off))));
        let r_lrc = mean(
            repeats
                .iter()
                .map(|r| ratio(r.lrc_on.regions as f64, r.lrc_off.regions as f64)),
        );
        let verdict = acceptance(r_ntk, r_lrc);
        let signals = if baseline.extra.is_empty() {
            BTreeMap::new()
        } else {
            zero_cost::signals(&self.extra_values(&candidate.on)?, &baseline.extra)
        };
        Ok(CandidateReport {
            cell,
            edge,
            from,
            to,
            repeats,
            r_ntk,
            r_lrc,
            signals,
            rejection: verdict.err(),
            score: None,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Scores splitting each of `edges` of `cell` against `baseline`, every one (no walk, no early stop), and
    /// decides by the rule as the search does; what `spidernet score` reports.
    pub fn score_edges(
        &self,
        baseline: &Baseline,
        cell: usize,
        edges: &[u32],
        observer: &mut dyn NetworkObserver,
    ) -> anyhow::Result<CellDecision> {
        let group = distributed::group();
        let mut tried = Vec::with_capacity(edges.len());
        for turn in edges.chunks(group.world()) {
            let mine = turn
                .get(group.rank())
                .map(|&edge| self.score_against_observed(baseline, cell, edge, &mut *observer))
                .transpose();
            for outcome in gather(group, mine.map(|report| report.map(Outcome::Scored)))? {
                if let Outcome::Scored(report) = outcome {
                    tried.push(report);
                }
            }
        }
        let chosen = self.config.rule.choose(&mut tried, self.config.ntk_mode);
        Ok(CellDecision {
            cell,
            tried,
            skipped: Vec::new(),
            chosen,
        })
    }

    /// Walks the cell's edges in a seeded random order, then decides by the rule. The published rule's walk stops
    /// once enough candidates are accepted; a ranked rule scores every edge. `round` varies the order between
    /// search iterations. A candidate whose memory libtorch cannot allocate is skipped, and later ones run half
    /// as many NTK copies; a failure in measuring the current network ends the walk with an error.
    /// `on_candidate` sees each candidate as it is scored or skipped; an error from it ends the walk.
    pub fn decide(
        &self,
        genotype: &Genotype,
        cell: usize,
        round: u64,
        on_candidate: &mut dyn FnMut(CandidateEvent) -> anyhow::Result<()>,
    ) -> anyhow::Result<CellDecision> {
        let Some(target) = genotype.cells.get(cell) else {
            anyhow::bail!(
                "cell {cell} does not exist (the genotype has {} cells)",
                genotype.cells.len()
            );
        };
        let mut order: Vec<u32> = target.edges.iter().map(|e| e.id).collect();
        order.shuffle(&mut seed::rng(
            self.seed,
            Stream::Candidates,
            seed::candidate_walk(round, cell),
        ));
        let (mut tried, mut skipped) = (Vec::new(), Vec::new());
        let baseline = match alloc_failure::guard(|| self.baseline(genotype)) {
            Err(error) if error.is::<AllocationFailure>() => {
                return Err(error.context(format!(
                    "cannot score cell {cell}: its current network does not fit in memory (a smaller --memory-budget \
                     keeps the network smaller)"
                )));
            }
            measured => measured?,
        };
        // In a distributed run the ranks score the walk in turns, one candidate each, and gather the outcomes, which
        // every rank then takes in walk order: the same candidates, reports and stop as one process.
        let group = distributed::group();
        'walk: for turn in order.chunks(group.world()) {
            let mine = turn
                .get(group.rank())
                .map(|&edge| self.walk_step(genotype, &baseline, cell, edge))
                .transpose();
            for outcome in gather(group, mine)? {
                match outcome {
                    Outcome::Scored(report) => {
                        on_candidate(CandidateEvent::Scored(&report))?;
                        tried.push(report);
                    }
                    Outcome::Skipped(skip) => {
                        // A rank that did not hit the failure itself runs later candidates with fewer copies too.
                        self.most_copies.fetch_min(skip.ntk_copies_after, Ordering::SeqCst);
                        on_candidate(CandidateEvent::Skipped(&skip))?;
                        skipped.push(skip);
                    }
                }
                let refusing = self.config.rule.can_refuse();
                if refusing && tried.iter().filter(|r| r.accepted()).count() >= self.config.candidates_per_cell {
                    break 'walk;
                }
            }
        }
        let chosen = self.config.rule.choose(&mut tried, self.config.ntk_mode);
        Ok(CellDecision {
            cell,
            tried,
            skipped,
            chosen,
        })
    }

    /// Scores splitting `edge` in the walk: its report, or its skip when libtorch could not allocate its memory.
    fn walk_step(&self, genotype: &Genotype, baseline: &Baseline, cell: usize, edge: u32) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        let scored = alloc_failure::guard(|| {
            alloc_failure::inject(Site::Scoring, self.device);
            self.score_against(baseline, cell, edge)
        });
        match scored {
            Ok(report) => Ok(Outcome::Scored(report)),
            Err(error) => match error.downcast_ref::<AllocationFailure>() {
                Some(failure) => Ok(Outcome::Skipped(self.skip(genotype, cell, edge, failure, start))),
                None => Err(error),
            },
        }
    }

    /// Records `failure` of splitting `edge` and halves the NTK copies of every later candidate.
    fn skip(
        &self,
        genotype: &Genotype,
        cell: usize,
        edge: u32,
        failure: &AllocationFailure,
        start: Instant,
    ) -> SkippedCandidate {
        let parent = genotype.cells[cell]
            .edge(edge)
            .expect("the walk visits the cell's own edges");
        let ntk_copies = Candidate::split(genotype, cell, edge).map_or(1, |c| self.copies_for(&c.on));
        let ntk_copies_after = (ntk_copies / 2).max(1);
        self.most_copies.fetch_min(ntk_copies_after, Ordering::SeqCst);
        SkippedCandidate {
            cell,
            edge,
            from: parent.from,
            to: parent.to,
            reason: failure.message.clone(),
            ntk_copies,
            ntk_copies_after,
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

/// What scoring one candidate of a walk came to.
#[derive(serde::Serialize, serde::Deserialize)]
enum Outcome {
    /// Scored.
    Scored(CandidateReport),
    /// Skipped for memory.
    Skipped(SkippedCandidate),
}

/// Every rank's outcome of one turn, in rank order (ranks with no candidate left pass None). A single process
/// keeps its own; otherwise the outcomes travel as CBOR, which keeps non-finite ratios, and an error on any rank
/// becomes an error on every rank.
fn gather(group: &ProcessGroup, mine: anyhow::Result<Option<Outcome>>) -> anyhow::Result<Vec<Outcome>> {
    if group.world() == 1 {
        return Ok(mine?.into_iter().collect());
    }
    let shared: Result<Option<Outcome>, String> = mine.map_err(|error| format!("{error:#}"));
    let mut bytes = Vec::new();
    ciborium::into_writer(&shared, &mut bytes).context("encoding a candidate's outcome")?;
    let mut outcomes = Vec::new();
    for (rank, bytes) in group.all_gather_bytes(&bytes)?.iter().enumerate() {
        let theirs: Result<Option<Outcome>, String> =
            ciborium::from_reader(bytes.as_slice()).with_context(|| format!("decoding rank {rank}'s outcome"))?;
        match theirs {
            Ok(outcome) => outcomes.extend(outcome),
            Err(message) => anyhow::bail!("rank {rank} failed to score its candidate: {message}"),
        }
    }
    Ok(outcomes)
}

/// Min-max combination over accepted candidates: s_lrc = 1 − normalised r_lrc, s_ntk = normalised r_ntk,
/// score = their mean; the lowest wins, ties going to the first tried. Writes each accepted score.
pub fn combine(reports: &mut [CandidateReport]) -> Option<u32> {
    let accepted: Vec<usize> = (0..reports.len()).filter(|&i| reports[i].accepted()).collect();
    // None when every value is the same: the reference then gives that metric a score of 0.
    let range = |values: Vec<f64>| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        move |v: f64| (max > min).then(|| (v - min) / (max - min))
    };
    let lrc_norm = range(accepted.iter().map(|&i| reports[i].r_lrc).collect());
    let ntk_norm = range(accepted.iter().map(|&i| reports[i].r_ntk).collect());
    let mut best: Option<(f64, usize)> = None;
    for &i in &accepted {
        let s_lrc = lrc_norm(reports[i].r_lrc).map_or(0.0, |n| 1.0 - n);
        let s_ntk = ntk_norm(reports[i].r_ntk).unwrap_or(0.0);
        let score = (s_lrc + s_ntk) / 2.0;
        reports[i].score = Some(score);
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| reports[i].edge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(edge: u32, r_ntk: f64, r_lrc: f64) -> CandidateReport {
        let verdict = acceptance(r_ntk, r_lrc);
        CandidateReport {
            cell: 0,
            edge,
            from: 0,
            to: 1,
            repeats: Vec::new(),
            r_ntk,
            r_lrc,
            signals: BTreeMap::new(),
            rejection: verdict.err(),
            score: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn json_carries_accepted_in_its_place_and_reads_back() {
        for (r_ntk, accepted) in [(-0.1, true), (0.1, false)] {
            let original = report(3, r_ntk, 0.2);
            let json = serde_json::to_string(&original).unwrap();
            let expected = format!(r#""r_lrc":0.2,"accepted":{accepted},"rejection":"#);
            assert!(json.contains(&expected), "{json}");
            let back: CandidateReport = serde_json::from_str(&json).unwrap();
            assert_eq!(back, original);
            assert_eq!(back.accepted(), accepted);
        }
    }

    #[test]
    fn ntk_copies_are_powers_of_two_within_the_allowance() {
        let input = InputShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let genotype = Genotype::minimal(2, 16, input, 10).unwrap();
        let per_copy = memory::estimate(&genotype, 3, 64).activations;
        let most = NTK_MAX_COPIES;
        assert_eq!(
            ntk_copies(&genotype, 3, 64, 1, most),
            1,
            "at least one copy always runs"
        );
        assert_eq!(ntk_copies(&genotype, 3, 64, u64::MAX, most), NTK_MAX_COPIES);
        assert_eq!(ntk_copies(&genotype, 3, 64, u64::MAX, 4), 4, "a lowered ceiling holds");
        assert_eq!(ntk_copies(&genotype, 3, 64, u64::MAX, 0), 1);
        for fit in [2, 3, 5, 7, 9] {
            let copies = ntk_copies(&genotype, 3, 64, per_copy * fit, most);
            assert!(
                copies.is_power_of_two() && copies as u64 <= fit && 2 * copies as u64 > fit,
                "{fit}: {copies}"
            );
        }
    }

    #[test]
    fn acceptance_needs_more_regions_and_no_worse_conditioning_and_finite_values() {
        assert!(acceptance(-0.1, 0.2).is_ok());
        assert!(acceptance(0.0, 0.2).is_ok());
        assert!(acceptance(0.1, 0.2).unwrap_err().contains("NTK"));
        assert!(acceptance(-0.1, 0.0).unwrap_err().contains("regions"));
        assert!(acceptance(f64::NAN, 0.2).unwrap_err().contains("non-finite"));
        assert!(acceptance(-0.1, f64::INFINITY).unwrap_err().contains("non-finite"));
    }

    #[test]
    fn combination_is_the_mean_of_min_max_scores_over_accepted_only() {
        let mut reports = vec![
            report(4, -1.0, 0.25), // best NTK, worst LRC: (1 + 0) / 2
            report(7, 0.3, 0.90),  // rejected: NTK got worse
            report(9, 0.0, 0.75),  // worst NTK, best LRC: (0 + 1) / 2
            report(2, -0.5, 0.5),  // (0.5 + 0.5) / 2
        ];
        let chosen = combine(&mut reports);
        let scores: Vec<Option<f64>> = reports.iter().map(|r| r.score).collect();
        assert_eq!(scores, vec![Some(0.5), None, Some(0.5), Some(0.5)]);
        assert_eq!(chosen, Some(4), "a tie goes to the first tried");
        reports[3].r_lrc = 0.625;
        assert_eq!(combine(&mut reports), Some(2));
        assert_eq!(reports[3].score, Some(0.375));
    }

    #[test]
    fn equal_values_score_zero_and_nothing_accepted_chooses_nothing() {
        let mut same = vec![report(1, -0.2, 0.4), report(2, -0.2, 0.4)];
        assert_eq!(combine(&mut same), Some(1));
        assert_eq!(same[1].score, Some(0.0));
        let mut none = vec![report(1, 0.2, 0.4), report(2, -0.2, -0.4)];
        assert_eq!(combine(&mut none), None);
    }
}
