//! Command line of spidernet: parse, wire, print.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spidernet::data::{DataSource, Digits};
use spidernet::genotype::Genotype;
use spidernet::init::InitScheme;
use spidernet::pruner::PrunerConfig;
use spidernet::supernet::Supernet;
use spidernet::train::{self, EpochReport, TrainConfig, TrainObserver};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "spidernet", version, about = "Neural architecture search the SpiderNet way")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the minimal supernet (every edge holds all 7 gated ops) with deadheading, and report test accuracy.
    TrainSupernet(TrainSupernetArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum DataChoice {
    /// The embedded UCI optical digits (1,797 images, 8×8, 10 classes).
    Digits,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceChoice {
    Cpu,
    Cuda,
}

#[derive(clap::Args)]
struct TrainSupernetArgs {
    /// Data set.
    #[arg(long, value_enum, default_value = "digits")]
    data: DataChoice,
    /// Reduction cells R (the network has R+1 cells).
    #[arg(long, default_value_t = 2)]
    reductions: usize,
    /// Channels C of the first cell (doubling per reduction).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device to train on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::TrainSupernet(args) => train_supernet(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn device(choice: DeviceChoice) -> anyhow::Result<tch::Device> {
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        DeviceChoice::Cuda => anyhow::bail!("--device cuda: no CUDA device is available to libtorch"),
    }
}

fn train_supernet(args: TrainSupernetArgs) -> anyhow::Result<()> {
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    let device = device(args.device)?;
    let data = match args.data {
        DataChoice::Digits => Digits::default().load(args.seed)?,
    };
    let genotype = Genotype::minimal(args.reductions, args.channels, data.shape, data.classes)
        .with_context(|| format!("--reductions {} --channels {}", args.reductions, args.channels))?;
    eprintln!(
        "data {}: {} train / {} test images of {}x{}x{}, {} classes",
        data.name,
        data.train.len(),
        data.test.len(),
        data.shape.channels,
        data.shape.height,
        data.shape.width,
        data.classes
    );
    let pruner = PrunerConfig::default();
    let mut net = Supernet::new(
        &genotype,
        args.channels,
        InitScheme::PytorchDefault,
        pruner,
        device,
        args.seed,
    );
    eprintln!(
        "supernet: {} cells, {} edges, {} live ops, {} parameters",
        genotype.cells.len(),
        genotype.edge_count(),
        genotype.live_op_count(),
        net.parameter_count()
    );
    let config = TrainConfig {
        epochs: args.epochs,
        ..TrainConfig::default()
    };
    let mut progress = EpochProgress::new(args.epochs);
    let reports = train::train_on(&mut net, &data, &config, args.seed, &mut progress)?;
    let last = reports.last().context("no epoch ran")?;
    println!(
        "test accuracy {:.2}% after {} epochs; {} live ops, {} parameters",
        100.0 * last.eval.accuracy,
        last.epoch,
        last.live_ops,
        last.parameters
    );
    Ok(())
}

/// One progress bar per epoch, then a summary line.
struct EpochProgress {
    epochs: usize,
    bar: Option<ProgressBar>,
}

impl EpochProgress {
    fn new(epochs: usize) -> Self {
        EpochProgress { epochs, bar: None }
    }
}

impl TrainObserver for EpochProgress {
    fn batch(&mut self, epoch: usize, batch: usize, batches: usize, loss: f64) {
        let epochs = self.epochs;
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(batches as u64);
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_prefix(format!("epoch {epoch:>3}/{epochs}"));
            bar
        });
        bar.set_position(batch as u64);
        bar.set_message(format!("loss {loss:.3}"));
    }

    fn epoch(&mut self, report: &EpochReport) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let mut line = format!(
            "epoch {:>3}/{}  lr {:.5}  loss {:.4}  train {:5.1}%  test {:5.1}%  live ops {:>3}  params {:>7}  {:.1}s",
            report.epoch,
            self.epochs,
            report.lr,
            report.train_loss,
            100.0 * report.train_accuracy,
            100.0 * report.eval.accuracy,
            report.live_ops,
            report.parameters,
            report.seconds
        );
        if !report.deadhead.killed.is_empty() {
            line.push_str(&format!("  deadheaded {}", report.deadhead.killed.len()));
        }
        eprintln!("{line}");
    }
}
