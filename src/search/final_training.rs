//! The final training (docs/ALGORITHM.md §9): the searched genotype trained from scratch, checkpointed after every
//! epoch so that an interrupted run continues where it stopped.

use super::record::{FINAL_CHECKPOINT_FORMAT, FinalCheckpoint, GateRecord, Summary};
use super::{Phase, RunDir, SearchConfig, SearchObserver, fresh_network};
use crate::artifacts::Artifacts;
use crate::data::{Dataset, Split};
use crate::genotype::Genotype;
use crate::memory_probe::MemoryWindow;
use crate::optim::Sgd;
use crate::seed::{self, Stream};
use crate::supernet::Supernet;
use crate::train::{self, Checkpointing, EpochReport, Evaluation, Resumed, TrainConfig};
use anyhow::Context;
use std::time::Instant;
use tch::{Device, Tensor};

/// The prefix of the network's tensors in a final-training tensors file.
const WEIGHTS_PREFIX: &str = "weights.";
/// The prefix of the optimiser's momentum buffers there.
const MOMENTUM_PREFIX: &str = "momentum.";

/// Runs (or continues) the final training in `dir`, saves the trained network into the run folder and adds its
/// figures to `summary`.
pub(super) fn train_final(
    summary: &mut Summary,
    dir: &RunDir,
    genotype: &Genotype,
    config: &SearchConfig,
    data: &Dataset,
    device: Device,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<()> {
    let peak_window = MemoryWindow::start(device);
    let outcome = final_training(genotype, config, data, device, observer, Some(dir))?;
    summary.final_training_samples = outcome.samples;
    summary.final_training_seconds = outcome.seconds;
    let peak = peak_window.finish();
    // On CUDA the process's RSS says little about training memory; the device allocator's peak does.
    summary.final_training_peak_rss_bytes = peak.rss.filter(|_| device == Device::Cpu).map(|rss| rss.peak);
    summary.final_training_peak_device_bytes = peak.cuda.map(|cuda| cuda.allocated);
    summary.test_accuracy = Some(outcome.evaluation.accuracy);
    summary.test_loss = Some(outcome.evaluation.loss);
    summary.live_ops = outcome.net.genotype().live_op_count();
    summary.parameters = outcome.net.parameter_count();
    Artifacts::new(dir.root()).save(&outcome.net, &data.normalization)
}

/// What a final training produced.
pub struct FinalOutcome {
    /// The trained network.
    pub net: Supernet,
    /// Its evaluation on the test split.
    pub evaluation: Evaluation,
    /// Training images it was trained on.
    pub samples: usize,
    /// Wall time of the training, across interruptions.
    pub seconds: f64,
    /// One report per epoch.
    pub reports: Vec<EpochReport>,
}

/// Trains `genotype` from scratch on the training split (or its seeded `final_samples` subset) with augmentation,
/// then evaluates on the test split. With a run folder, every epoch is checkpointed there, and a checkpoint found
/// there is continued from.
pub fn final_training(
    genotype: &Genotype,
    config: &SearchConfig,
    data: &Dataset,
    device: Device,
    observer: &mut dyn SearchObserver,
    dir: Option<&RunDir>,
) -> anyhow::Result<FinalOutcome> {
    let start = Instant::now();
    let train_config = TrainConfig {
        augment: config.final_train.augment.clone().or_else(|| Some(data.augment())),
        ..config.final_train.clone()
    };
    let saved = match dir {
        Some(dir) => dir.final_checkpoint(config.seed)?,
        None => None,
    };
    let (mut net, resumed, seconds_before) = match saved {
        Some((state, tensors)) => restore(
            dir.expect("a checkpoint comes from a folder"),
            config,
            device,
            state,
            tensors,
        )?,
        None => (fresh_network(genotype, config, device, Phase::Final), None, 0.0),
    };
    observer.phase(Phase::Final, train_config.epochs);
    let train_seed = seed::derive(config.seed, Stream::BatchOrder, Phase::Final.seed_index());
    let subset;
    let train_split: &Split = match config.final_samples {
        Some(k) if k < data.train.len() => {
            let mut rng = seed::rng(config.seed, Stream::DataSplit, seed::data_split::FINAL_SUBSET);
            subset = data.train.hold_out(k as f64 / data.train.len() as f64, &mut rng).1;
            &subset
        }
        _ => &data.train,
    };
    let mut save = |net: &Supernet, optimizer: &Sgd, reports: &[EpochReport]| match dir {
        Some(dir) => save_epoch(
            dir,
            config,
            net,
            optimizer,
            reports,
            seconds_before + start.elapsed().as_secs_f64(),
        ),
        None => Ok(()),
    };
    let checkpointing = Checkpointing {
        resumed,
        save: &mut save,
    };
    let reports = train::train_resumable(
        &mut net,
        train_split,
        None,
        &train_config,
        train_seed,
        observer,
        checkpointing,
    )
    .with_context(|| format!("{}", Phase::Final))?;
    let evaluation = train::evaluate(&net, &data.test, train_config.eval_batch_size);
    Ok(FinalOutcome {
        net,
        evaluation,
        samples: train_split.len(),
        seconds: seconds_before + start.elapsed().as_secs_f64(),
        reports,
    })
}

/// Writes the state after a finished epoch into `dir`'s checkpoint.
fn save_epoch(
    dir: &RunDir,
    config: &SearchConfig,
    net: &Supernet,
    optimizer: &Sgd,
    reports: &[EpochReport],
    seconds: f64,
) -> anyhow::Result<()> {
    let mut tensors: Vec<(String, Tensor)> = net
        .named_tensors()
        .into_iter()
        .map(|(name, tensor)| (format!("{WEIGHTS_PREFIX}{name}"), tensor))
        .collect();
    tensors.extend(
        optimizer
            .momentum_buffers(net)
            .into_iter()
            .map(|(name, buffer)| (format!("{MOMENTUM_PREFIX}{name}"), buffer)),
    );
    let gates = net
        .gate_histories()
        .into_iter()
        .map(|(op, history)| GateRecord { op, history })
        .collect();
    let mut state = FinalCheckpoint {
        format: FINAL_CHECKPOINT_FORMAT,
        seed: config.seed,
        epochs: config.final_train.epochs,
        genotype: net.genotype().clone(),
        gates,
        reports: reports.to_vec(),
        seconds,
        tensors: String::new(),
    };
    dir.commit_final(&mut state, &tensors)
}

/// The network, the optimiser state and the seconds spent, as a final-training checkpoint left them.
fn restore(
    dir: &RunDir,
    config: &SearchConfig,
    device: Device,
    state: FinalCheckpoint,
    tensors: Vec<(String, Tensor)>,
) -> anyhow::Result<(Supernet, Option<Resumed>, f64)> {
    let path = dir.final_checkpoint_path();
    if state.epochs != config.final_train.epochs {
        anyhow::bail!(
            "{} was written for {} final epochs, but the run's config says {}",
            path.display(),
            state.epochs,
            config.final_train.epochs
        );
    }
    let (mut weights, mut momentum) = (Vec::new(), Vec::new());
    for (name, tensor) in tensors {
        if let Some(rest) = name.strip_prefix(WEIGHTS_PREFIX) {
            weights.push((rest.to_string(), tensor));
        } else if let Some(rest) = name.strip_prefix(MOMENTUM_PREFIX) {
            momentum.push((rest.to_string(), tensor.to_device(device)));
        } else {
            anyhow::bail!("{}: tensor {name} is neither weights nor momentum", state.tensors);
        }
    }
    let mut net = fresh_network(&state.genotype, config, device, Phase::Final);
    net.load_named_tensors(weights)
        .with_context(|| format!("{} does not fit the genotype of {}", state.tensors, path.display()))?;
    let gates = state.gates.into_iter().map(|g| (g.op, g.history)).collect();
    net.restore_gate_histories(gates)
        .with_context(|| format!("{}: the gate histories do not fit its genotype", path.display()))?;
    let resumed = Resumed {
        reports: state.reports,
        momentum,
    };
    Ok((net, Some(resumed), state.seconds))
}
