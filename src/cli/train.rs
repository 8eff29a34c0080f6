//! `spidernet train`: a genotype trained from scratch, with augmentation, and optionally saved for export.

use super::args::{self, DataArgs, load_data, positive};
use super::choices::{DecayChoice, ProfileChoice, ScheduleChoice};
use super::progress::Progress;
use anyhow::Context;
use clap::Args;
use spidernet::artifacts::Artifacts;
use spidernet::data::Dataset;
use spidernet::genotype::Genotype;
use spidernet::search::{FinalOutcome, FinalRun, SearchConfig, SearchObserver, TrainingFolder, final_training};
use spidernet::system::atomic::write_atomic;
use spidernet::train::{DecayScope, EpochReport, OpCut, Schedule, TrainConfig, TrainObserver};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The architecture to train.
    genotype: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Training epochs [default: the profile's final training].
    #[arg(long, value_parser = positive)]
    epochs: Option<usize>,
    /// The search profile whose final training this is: its recipe, pruner and seeds.
    #[arg(long, value_enum, default_value = "quick")]
    profile: ProfileChoice,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Train on a seeded subset of this many training images [default: all].
    #[arg(long, value_parser = positive)]
    train_samples: Option<usize>,
    /// Seed for every random choice: with a search's seed, the network is initialised and trained as that search's
    /// final training was.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained network here (genotype.json, weights.safetensors, normalization.json), ready for export.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Evaluate the test split after every epoch and write the learning curve here, one JSON object per epoch
    /// (for studying recipes; choosing by the test split overfits it).
    #[arg(long, value_name = "FILE")]
    curve: Option<PathBuf>,
    /// Keep a checkpoint in this folder after every epoch, and continue from the one it holds when started again
    /// with the same settings (a long training survives being stopped).
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
}

/// The final-training recipe, flag by flag; each unset flag keeps the profile's value.
#[derive(Args)]
pub struct RecipeArgs {
    /// Peak learning rate of the schedule.
    #[arg(long)]
    lr: Option<f64>,
    /// Shape of the learning rate over the training.
    #[arg(long, value_enum)]
    schedule: Option<ScheduleChoice>,
    /// Weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Which tensors weight decay applies to.
    #[arg(long, value_enum)]
    decay: Option<DecayChoice>,
    /// Mini-batch size.
    #[arg(long, value_parser = positive)]
    batch_size: Option<usize>,
    /// Epochs of linear learning-rate warm-up, batch by batch.
    #[arg(long)]
    warmup_epochs: Option<f64>,
    /// Nesterov momentum: true or false.
    #[arg(long)]
    nesterov: Option<bool>,
    /// Label smoothing of the cross-entropy.
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Drop-path probability.
    #[arg(long)]
    drop_path: Option<f64>,
    /// Whether drop-path rises linearly from 0 over the epochs: true or false.
    #[arg(long)]
    drop_path_ramp: Option<bool>,
    /// Weight of the auxiliary towers' loss.
    #[arg(long)]
    aux_weight: Option<f64>,
    /// Probability of cutout per training image (0 turns cutout off).
    #[arg(long)]
    cutout_probability: Option<f64>,
    /// Padding of the random crop, in pixels (0 turns cropping off).
    #[arg(long)]
    crop_padding: Option<usize>,
    /// Whether the deadhead rule removes ops whose gates stay closed during this training: true or false.
    #[arg(long)]
    deadhead: Option<bool>,
    /// Training images whose batch statistics replace the batch norms' running ones after the last epoch and
    /// before every evaluation (0: none).
    #[arg(long, value_name = "IMAGES")]
    bn_recalibration: Option<usize>,
    /// Train the last N epochs with every gate held where it stands at their start, so that the network evaluated
    /// is the one those epochs trained (0: the gates train to the end).
    #[arg(long, value_name = "EPOCHS")]
    freeze_gates: Option<usize>,
    /// After --final-ops-after's epoch, every edge keeps only its K ops whose gates were open longest; 7 keeps every
    /// op [default: the profile's, 2 for quick, every op for reference].
    #[arg(long, value_name = "K", value_parser = positive)]
    final_ops: Option<usize>,
    /// How many epochs into the training the --final-ops cut is made: a whole number at that epoch's end, a
    /// fraction part-way through an epoch (0.25: a quarter into the first) [default: 1].
    #[arg(long, value_name = "EPOCHS")]
    final_ops_after: Option<f64>,
}

impl RecipeArgs {
    /// `base` with every given flag applied, after checking the values are in range.
    fn apply(&self, mut base: TrainConfig) -> anyhow::Result<TrainConfig> {
        let check = |name: &str, value: Option<f64>, low: f64, high: f64| match value {
            Some(v) if !(low..=high).contains(&v) || !v.is_finite() => {
                anyhow::bail!("--{name} {v} is out of range: it must lie in [{low}, {high}]")
            }
            _ => Ok(()),
        };
        check("lr", self.lr, 1e-8, 10.0)?;
        check("warmup-epochs", self.warmup_epochs, 0.0, 1e6)?;
        check("label-smoothing", self.label_smoothing, 0.0, 0.99)?;
        check("drop-path", self.drop_path, 0.0, 0.99)?;
        check("aux-weight", self.aux_weight, 0.0, 100.0)?;
        check("cutout-probability", self.cutout_probability, 0.0, 1.0)?;
        check("weight-decay", self.weight_decay, 0.0, 1.0)?;
        base.lr_max = self.lr.unwrap_or(base.lr_max);
        base.batch_size = self.batch_size.unwrap_or(base.batch_size);
        base.warmup_epochs = self.warmup_epochs.unwrap_or(base.warmup_epochs);
        base.nesterov = self.nesterov.unwrap_or(base.nesterov);
        base.label_smoothing = self.label_smoothing.unwrap_or(base.label_smoothing);
        base.drop_path = self.drop_path.unwrap_or(base.drop_path);
        base.drop_path_ramp = self.drop_path_ramp.unwrap_or(base.drop_path_ramp);
        base.aux_weight = self.aux_weight.unwrap_or(base.aux_weight);
        base.weight_decay = self.weight_decay.unwrap_or(base.weight_decay);
        base.schedule = self.schedule.map_or(base.schedule, Schedule::from);
        base.decay = self.decay.map_or(base.decay, DecayScope::from);
        base.deadhead = self.deadhead.unwrap_or(base.deadhead);
        base.bn_recalibration = self.bn_recalibration.unwrap_or(base.bn_recalibration);
        base.freeze_gates_epochs = self.freeze_gates.unwrap_or(base.freeze_gates_epochs);
        let keep = args::final_ops(self.final_ops, base.cut_ops.map(|cut| cut.keep));
        let after = self
            .final_ops_after
            .or(keep.and(base.cut_ops.map(|cut| cut.after_epoch)));
        base.cut_ops = OpCut::asked(keep, after)?;
        if let Some(augment) = base.augment.as_mut() {
            augment.cutout_probability = self.cutout_probability.unwrap_or(augment.cutout_probability);
            augment.pad = self.crop_padding.unwrap_or(augment.pad);
        }
        Ok(base)
    }
}

/// One line of the learning curve.
#[derive(serde::Serialize)]
struct CurvePoint<'a> {
    #[serde(flatten)]
    report: &'a EpochReport,
    /// Training seconds so far, evaluations left out.
    elapsed_seconds: f64,
}

/// Shows progress and, when asked, rewrites the learning curve after every epoch.
struct CurveObserver {
    progress: Progress,
    path: Option<PathBuf>,
    text: String,
    elapsed: f64,
    error: Option<anyhow::Error>,
}

impl TrainObserver for CurveObserver {
    fn batch(&mut self, epoch: usize, batch: usize, batches: usize, loss: f64) {
        self.progress.batch(epoch, batch, batches, loss);
    }

    fn epoch(&mut self, report: &EpochReport) {
        self.progress.epoch(report);
        self.record(report);
    }

    fn should_stop(&mut self) -> bool {
        self.error.is_some()
    }
}

impl CurveObserver {
    /// Adds the epoch of `report` to the curve and rewrites the curve file, if any.
    fn record(&mut self, report: &EpochReport) {
        self.elapsed += report.seconds;
        let Some(path) = &self.path else { return };
        let point = CurvePoint {
            report,
            elapsed_seconds: self.elapsed,
        };
        let written = serde_json::to_string(&point)
            .map_err(anyhow::Error::from)
            .and_then(|line| {
                self.text.push_str(&line);
                self.text.push('\n');
                write_atomic(path, self.text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
            });
        if let Err(error) = written {
            self.error.get_or_insert(error);
        }
    }
}

impl SearchObserver for CurveObserver {}

impl TrainArgs {
    /// The settings of a search with this profile and seed, whose final training trains `genotype` on `data`, with
    /// the recipe flags applied.
    fn settings(&self, genotype: &Genotype, data: &Dataset) -> anyhow::Result<SearchConfig> {
        let mut settings = SearchConfig::new(
            self.profile.into(),
            &self.data.data,
            genotype.reductions,
            genotype.channels,
            self.seed,
        );
        settings.data_options = self.data.options();
        settings.record_final_augmentation(data);
        settings.final_train.epochs = self.epochs.unwrap_or(settings.final_train.epochs);
        settings.final_train = self.recipe.apply(settings.final_train)?;
        settings.final_samples = self.train_samples;
        Ok(settings)
    }
}

/// Trains, prints the test accuracy, and saves the network when asked.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let group = spidernet::distributed::init_from_env()?;
    // Rank 0 speaks for the run and owns its files (the checkpoint folder included); the other ranks train in
    // silence and continue from what rank 0 read.
    let leader = group.is_leader();
    let device = args.data.device.device()?;
    let genotype = Genotype::load(&args.genotype)?;
    let data = load_data(&args.data.data, &args.data.options(), args.seed)?;
    data.check_fits(&genotype)
        .with_context(|| args.genotype.display().to_string())?;
    let settings = args.settings(&genotype, &data)?;
    let folder = args
        .checkpoint
        .as_deref()
        .filter(|_| leader)
        .map(|root| TrainingFolder::open(root, &settings, &genotype))
        .transpose()?;
    let mut observer = CurveObserver {
        progress: match leader {
            true => Progress::training(settings.final_train.epochs),
            false => Progress::default(),
        },
        path: args.curve.clone().filter(|_| leader),
        text: String::new(),
        elapsed: 0.0,
        error: None,
    };
    // A continued training's curve starts with the epochs its checkpoint records.
    if let Some(saved) = folder.as_ref().map(|f| f.dir().final_state()).transpose()?.flatten() {
        for report in &saved.reports {
            observer.record(report);
        }
        eprintln!(
            "continuing from {} after {} of {} epochs",
            folder.as_ref().expect("read from it").dir().root().display(),
            saved.epochs_done(),
            saved.epochs
        );
    }
    let run = FinalRun {
        config: &settings,
        data: &data,
        device,
        deadline: None,
        inherited: None,
        evaluate_each_epoch: args.curve.is_some(),
    };
    let outcome = final_training(&genotype, &run, folder.as_ref().map(TrainingFolder::dir), &mut observer)?;
    if let Some(error) = observer.error {
        return Err(error);
    }
    report(
        group,
        &outcome,
        settings.final_train.batch_size,
        args.out.as_deref(),
        &data,
    )
}

/// Checks that the ranks agree; then rank 0 prints the outcome and saves the network in `out`, if given.
fn report(
    group: &spidernet::distributed::ProcessGroup,
    outcome: &FinalOutcome,
    batch_size: usize,
    out: Option<&std::path::Path>,
    data: &Dataset,
) -> anyhow::Result<()> {
    let leader = group.is_leader();
    if group.world() > 1 {
        let traffic = group.traffic();
        group.ensure_identical("weights", || Ok(outcome.net.fingerprint()))?;
        if leader {
            println!(
                "{} ranks, identical weights (fingerprint {:016x})",
                group.world(),
                outcome.net.fingerprint()
            );
            let steps = outcome.reports.len() * spidernet::train::batches_per_epoch(outcome.samples, batch_size);
            println!(
                "rank 0's collectives: {} calls, {:.1} KiB per step over {steps} steps, {:.2} s ({:.1} % of the \
                 training's {:.1} s)",
                traffic.collectives,
                traffic.bytes as f64 / 1024.0 / steps.max(1) as f64,
                traffic.seconds,
                100.0 * traffic.seconds / outcome.seconds,
                outcome.seconds
            );
        }
    }
    if !leader {
        return Ok(());
    }
    println!(
        "test accuracy {:.2}% after {} epochs on {} images; {} live ops, {} parameters",
        100.0 * outcome.evaluation.accuracy,
        outcome.reports.len(),
        outcome.samples,
        outcome.net.genotype().live_op_count(),
        outcome.net.parameter_count()
    );
    if let Some(dir) = out {
        Artifacts::new(dir).save(&outcome.net, data)?;
        println!("trained network saved in {}", dir.display());
    }
    Ok(())
}
