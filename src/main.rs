//! Command line of spidernet: parse, wire, print.

mod events;
mod progress;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use progress::Progress;
use spidernet::data::{self, DataOptions, Dataset};
use spidernet::genotype::Genotype;
use spidernet::init::InitScheme;
use spidernet::memory::{self, format_size};
use spidernet::metrics::NtkMode;
use spidernet::pruner::PrunerConfig;
use spidernet::search::{self, Checkpoint, Profile, RunDir, SearchConfig, Strategy};
use spidernet::supernet::Supernet;
use spidernet::train::{self, TrainConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "spidernet", version, about = "Neural architecture search the SpiderNet way")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Search an architecture: grow cells by scored edge splits, prune ops, then train the result from scratch.
    Search(SearchArgs),
    /// Train a genotype (genotype.json) from scratch and report its test accuracy.
    Train(TrainArgs),
    /// Train the minimal supernet (every edge holds all 7 gated ops) with deadheading.
    TrainSupernet(TrainSupernetArgs),
    /// Summarise a genotype (genotype.json or a run folder) cell by cell, and optionally draw its cells as SVG.
    Show(ShowArgs),
    /// Compare the analytic training-memory estimate with the measured peak RSS on several genotypes.
    BenchMemory(BenchMemoryArgs),
    /// Time the benchmark workloads (training, evaluation, scoring, a search iteration) and print medians.
    Bench(BenchArgs),
    /// Export a run's trained network as an ONNX model (its weights.safetensors already follow genotype.json).
    Export(ExportArgs),
    /// Write the HTML report of a run folder (charts, chosen splits, final cells), optionally against a second run.
    Report(ReportArgs),
    /// Report what this binary runs on: libtorch, its CUDA backend, the GPUs, the CPU and the loaded libraries.
    Doctor(DoctorArgs),
}

#[derive(Args)]
struct DoctorArgs {
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Exit non-zero unless this device can be used (cuda: libtorch's CUDA backend, a driver and a device).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

#[derive(Args)]
struct ReportArgs {
    /// The run folder.
    run: PathBuf,
    /// A second run folder on the same data (e.g. a random-search baseline), overlaid on the charts.
    #[arg(long, value_name = "RUN_DIR")]
    compare: Option<PathBuf>,
    /// Where to write the report [default: RUN/report.html].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write each chart as its own SVG file into this folder.
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
}

#[derive(Args)]
struct ShowArgs {
    /// A genotype.json, or a run folder holding one.
    genotype: PathBuf,
    /// Write a drawing of every cell to this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Training batch size the memory estimate assumes.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

#[derive(Args)]
struct BenchMemoryArgs {
    /// Training batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Measure one genotype grown by this many splits in this process and print JSON (used internally).
    #[arg(long, hide = true)]
    probe_splits: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FlipChoice {
    Auto,
    On,
    Off,
}

impl DataArgs {
    fn options(&self) -> DataOptions {
        DataOptions {
            image_size: self.image_size,
            flip: match self.flip {
                FlipChoice::Auto => None,
                FlipChoice::On => Some(true),
                FlipChoice::Off => Some(false),
            },
        }
    }
}

/// Parses `32` or `28x32` (height x width) into (height, width).
fn parse_image_size(text: &str) -> Result<(usize, usize), String> {
    let parse = |part: &str| match part.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "'{text}' is not an image size: use SIZE or HEIGHTxWIDTH, e.g. 32 or 28x32"
        )),
        Ok(n) => Ok(n),
    };
    match text.split_once(['x', 'X']) {
        Some((height, width)) => Ok((parse(height)?, parse(width)?)),
        None => parse(text).map(|side| (side, side)),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceChoice {
    Cpu,
    Cuda,
}

#[derive(Args)]
struct DataArgs {
    /// Data set: digits (embedded), fashion-mnist[:DIR] (default DIR /usr/share/datasets/fashion-mnist), idx:DIR,
    /// cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR or folder:DIR (one subfolder of PNG/JPEG images per class).
    #[arg(long, default_value = "digits")]
    data: String,
    /// Resize the images of a folder: data set to SIZE or HEIGHTxWIDTH pixels.
    #[arg(long, value_name = "SIZE", value_parser = parse_image_size)]
    image_size: Option<(usize, usize)>,
    /// Horizontal flips in augmentation: auto (on unless the data are digits or characters), on or off.
    #[arg(long, value_enum, default_value = "auto")]
    flip: FlipChoice,
    /// Device to train on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

/// The two SpiderNet knobs.
#[derive(Args)]
struct ShapeArgs {
    /// Reduction cells R (the network has R+1 cells).
    #[arg(long, default_value_t = 2)]
    reductions: usize,
    /// Channels C of the first cell (doubling per reduction).
    #[arg(long, default_value_t = 16)]
    channels: usize,
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Training-memory budget, e.g. 512MiB or 4GiB [default: half the machine's memory].
    #[arg(long, value_parser = memory::parse_size)]
    memory_budget: Option<u64>,
    /// Settings preset; the flags below override it.
    #[arg(long, value_enum, default_value = "quick")]
    profile: Profile,
    /// Search iterations at most [quick: 2, reference: 30].
    #[arg(long)]
    iterations: Option<usize>,
    /// Supernet training epochs per iteration.
    #[arg(long, default_value_t = 4)]
    epochs_per_iteration: usize,
    /// Epochs of the final training from scratch [quick: 30, reference: 600].
    #[arg(long)]
    final_epochs: Option<usize>,
    /// How splits are chosen.
    #[arg(long, value_enum, default_value = "spidernet")]
    strategy: Strategy,
    /// Which NTK condition number scores candidates.
    #[arg(long, value_enum, default_value = "sound")]
    ntk: NtkChoice,
    /// Train the search phases on a seeded subset of this many images.
    #[arg(long)]
    search_samples: Option<usize>,
    /// Train the final network on a seeded subset of this many training images [default: all].
    #[arg(long)]
    final_samples: Option<usize>,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run folder [default: runs/<time>-<data>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the final training.
    #[arg(long)]
    no_final: bool,
    /// Print machine-readable JSON-lines events on stdout (human-readable lines stay on stderr).
    #[arg(long)]
    json: bool,
    /// Continue the search in this run folder from its last complete iteration (its settings are used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = [
        "out", "reductions", "channels", "memory_budget", "profile", "iterations", "epochs_per_iteration",
        "final_epochs", "strategy", "ntk", "search_samples", "final_samples", "seed", "no_final", "data",
        "image_size", "flip",
    ])]
    resume: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum NtkChoice {
    Sound,
    Faithful,
}

#[derive(Args)]
struct TrainArgs {
    /// The architecture to train.
    genotype: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Training epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained network here (genotype.json, weights.safetensors, normalization.json), ready for export.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// Workloads to run: a (training), b (evaluation), c (scoring one candidate), d (one search iteration); none
    /// only writes the files of --write-genotypes.
    #[arg(long, default_value = "a,b,c,d", value_delimiter = ',')]
    workload: Vec<String>,
    /// Timed repeats per workload; the medians are over these.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Training steps (or evaluation passes) per repeat of a and b.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// libtorch intra-op threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON object per workload instead of a table.
    #[arg(long)]
    json: bool,
    /// Device the workloads run on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
    /// Feature-map memory format: auto (channels-last on the CPU, NCHW on CUDA), nchw or channels-last.
    #[arg(long, value_enum, default_value = "auto")]
    memory_format: spidernet::ops::MemoryFormat,
    /// Write the files the PyTorch twin reads (genotypes, bench.json, check tensors) into this folder.
    #[arg(long, value_name = "DIR")]
    write_genotypes: Option<PathBuf>,
    /// Tiny sizes, for tests only.
    #[arg(long, hide = true)]
    quick: bool,
}

#[derive(Args)]
struct ExportArgs {
    /// A run folder holding a trained network (from `search`, or `train --out`).
    run: PathBuf,
    /// Write the network as an ONNX model (opset 13) to this file.
    #[arg(long, value_name = "FILE")]
    onnx: PathBuf,
}

#[derive(Args)]
struct TrainSupernetArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Training epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> ExitCode {
    spidernet::allocator::keep_freed_blocks();
    let cli = Cli::parse();
    // Library warnings go to stderr; RUST_LOG adjusts the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::Search(args) => search_command(args),
        Command::Train(args) => train_command(args),
        Command::TrainSupernet(args) => train_supernet(args),
        Command::BenchMemory(args) => bench_memory(args),
        Command::Show(args) => show_command(args),
        Command::Report(args) => report_command(args),
        Command::Export(args) => export_command(args),
        Command::Bench(args) => bench_command(args),
        Command::Doctor(args) => doctor_command(args),
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
        DeviceChoice::Cuda => spidernet::doctor::cuda_device(),
    }
}

fn doctor_command(args: DoctorArgs) -> anyhow::Result<()> {
    let report = spidernet::doctor::report();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    match args.device {
        DeviceChoice::Cuda => report.cuda_device().map(|_| ()),
        DeviceChoice::Cpu => Ok(()),
    }
}

fn load_data(spec: &str, options: &DataOptions, seed: u64) -> anyhow::Result<Dataset> {
    let loaded = data::load(spec, options, seed, data::cache_dir().as_deref())?;
    eprint!("{}", data::summary(&loaded.dataset));
    eprintln!(
        "loaded in {:.1}s; normalisation statistics {}",
        loaded.seconds,
        if loaded.statistics_cached {
            "from the cache"
        } else {
            "computed"
        }
    );
    Ok(loaded.dataset)
}

fn search_config(args: &SearchArgs) -> anyhow::Result<SearchConfig> {
    if args.epochs_per_iteration == 0 {
        anyhow::bail!("--epochs-per-iteration must be at least 1");
    }
    let mut config = SearchConfig::new(
        args.profile,
        &args.data.data,
        args.shape.reductions,
        args.shape.channels,
        args.seed,
    );
    config.strategy = args.strategy;
    config.metrics.ntk_mode = match args.ntk {
        NtkChoice::Sound => NtkMode::Sound,
        NtkChoice::Faithful => NtkMode::Faithful,
    };
    if let Some(iterations) = args.iterations {
        config.iterations = iterations;
    }
    if let Some(budget) = args.memory_budget {
        config.memory_budget = budget;
    }
    if let Some(epochs) = args.final_epochs {
        config.final_train.epochs = epochs;
    }
    config.search_samples = args.search_samples;
    config.data_options = args.data.options();
    config.final_samples = args.final_samples;
    for (flag, value) in [
        ("--search-samples", args.search_samples),
        ("--final-samples", args.final_samples),
    ] {
        if value == Some(0) {
            anyhow::bail!("{flag} must be at least 1");
        }
    }
    config.train.epochs = args.epochs_per_iteration;
    config.final_training = !args.no_final;
    Ok(config)
}

/// The minimal genotype for `data`, or an error naming the data set when its images are too small.
fn minimal_genotype(data: &Dataset, reductions: usize, channels: usize) -> anyhow::Result<Genotype> {
    Genotype::minimal(reductions, channels, data.shape, data.classes).with_context(|| {
        format!(
            "--data {} with --reductions {reductions} --channels {channels}",
            data.name
        )
    })
}

fn default_run_dir(data: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "")
        .trim_end_matches('Z')
        .to_string();
    let data: String = data
        .split(['/', ':'])
        .rfind(|part| !part.is_empty())
        .unwrap_or("data")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    PathBuf::from("runs").join(format!("{stamp}-{data}"))
}

fn search_command(args: SearchArgs) -> anyhow::Result<()> {
    let device = device(args.data.device)?;
    let (dir, config, checkpoint, data) = match &args.resume {
        Some(root) => {
            let (dir, config, checkpoint) = RunDir::open(root)?;
            eprintln!(
                "resuming {} after {} completed steps",
                root.display(),
                checkpoint.completed
            );
            (dir, config, checkpoint, None)
        }
        None => {
            let config = search_config(&args)?;
            let data = load_data(&config.data, &config.data_options, config.seed)?;
            let genotype = minimal_genotype(&data, config.reductions, config.channels)?;
            let root = args.out.clone().unwrap_or_else(|| default_run_dir(&config.data));
            let dir = RunDir::create(&root, &config)?;
            let checkpoint = Checkpoint::start(genotype, config.seed);
            (dir, config, checkpoint, Some(data))
        }
    };
    let data = match data {
        Some(data) => data,
        None => load_data(&config.data, &config.data_options, config.seed)?,
    };
    eprintln!(
        "search: {} strategy, R={} C={}, up to {} iterations, memory budget {}, run folder {}",
        match config.strategy {
            Strategy::Spidernet => "spidernet",
            Strategy::Random => "random",
        },
        config.reductions,
        config.channels,
        config.iterations,
        format_size(config.memory_budget),
        dir.root().display()
    );
    let summary = if args.json {
        let mut observer = events::JsonEvents::new(Progress::search(false));
        search::run(&dir, &config, &data, checkpoint, device, &mut observer)?
    } else {
        let mut observer = Progress::search(progress::bars_wanted());
        search::run(&dir, &config, &data, checkpoint, device, &mut observer)?
    };
    let result = match summary.test_accuracy {
        Some(accuracy) => format!(
            "test accuracy {:.2}% with {} parameters, {} live ops, edges per cell {:?}",
            100.0 * accuracy,
            summary.parameters,
            summary.live_ops,
            summary.edges_per_cell
        ),
        None => format!("search done (no final training); {} live ops", summary.live_ops),
    };
    let report = dir.root().join("report.html");
    let folder = match spidernet::report::write_report(dir.root(), None, &report, None) {
        Ok(()) => format!("run folder: {}\nreport: {}", dir.root().display(), report.display()),
        Err(error) => format!(
            "run folder: {}\nthe report could not be written: {error:#}",
            dir.root().display()
        ),
    };
    if args.json {
        eprintln!("{result}\n{folder}");
        events::emit(
            "final_result",
            serde_json::json!({ "summary": summary, "run_folder": dir.root() }),
        );
    } else {
        println!("{result}\n{folder}");
    }
    Ok(())
}

fn bench_command(args: BenchArgs) -> anyhow::Result<()> {
    use spidernet::bench::{self, BenchConfig, Workload};
    let workloads = args
        .workload
        .iter()
        .filter(|w| w.as_str() != "none")
        .map(|w| Workload::parse(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    for (flag, value) in [
        ("--repeats", args.repeats),
        ("--steps", args.steps),
        ("--threads", args.threads),
    ] {
        if value == 0 {
            anyhow::bail!("{flag} 0: must be at least 1");
        }
    }
    let threads = i32::try_from(args.threads).map_err(|_| anyhow::anyhow!("--threads {}: too many", args.threads))?;
    tch::set_num_threads(threads);
    spidernet::ops::set_memory_format(args.memory_format);
    let config = BenchConfig::new(args.repeats, args.steps, args.threads, args.quick, device(args.device)?);
    if let Some(dir) = &args.write_genotypes {
        bench::write_files(dir, &config)?;
    }
    bench::run(&config, &workloads, &mut |m| {
        if args.json {
            println!("{}", serde_json::to_string(m).expect("measurements serialize"));
        } else if let Some(reason) = &m.skipped {
            println!("{:<20} skipped: {reason}", m.workload);
        } else {
            let memory = match (m.peak_device_allocated_bytes, m.peak_rss_bytes) {
                (Some(bytes), _) => format!("  peak device memory {}", format_size(bytes)),
                (None, Some(bytes)) => format!("  peak RSS {}", format_size(bytes)),
                (None, None) => String::new(),
            };
            let median = m.median.unwrap_or(f64::NAN);
            println!("{:<20} {median:>10.2} {:<9}{memory}", m.workload, m.unit);
        }
        if let (true, Some(reason)) = (args.json, &m.skipped) {
            eprintln!("workload {} skipped: {reason}", m.workload);
        }
    })
}

fn export_command(args: ExportArgs) -> anyhow::Result<()> {
    let stats_path = args.run.join("normalization.json");
    let normalization = search::load_normalization(&args.run)?;
    let report = spidernet::export::export_run(&args.run, &args.onnx, normalization.as_ref())?;
    if normalization.is_none() {
        eprintln!(
            "warning: {} is missing; the model's metadata does not record the input normalisation",
            stats_path.display()
        );
    }
    println!(
        "wrote {} (ONNX opset {}): {} nodes, {} weights after folding batch norms, {}",
        args.onnx.display(),
        spidernet::export::OPSET,
        report.nodes,
        report.weights,
        format_size(report.bytes as u64)
    );
    let shape = report.input;
    println!(
        "input \"{}\": (batch, {}, {}, {}) images scaled to [0, 1], then {}; output \"{}\": (batch, {}) logits",
        spidernet::export::INPUT,
        shape.channels,
        shape.height,
        shape.width,
        match &normalization {
            Some(n) => format!("normalised with mean {:?}, std {:?}", n.mean, n.std),
            None => "normalised with the training statistics (not recorded in this run folder)".to_string(),
        },
        spidernet::export::OUTPUT,
        report.classes
    );
    Ok(())
}

fn report_command(args: ReportArgs) -> anyhow::Result<()> {
    let out = args.out.unwrap_or_else(|| args.run.join("report.html"));
    spidernet::report::write_report(&args.run, args.compare.as_deref(), &out, args.charts.as_deref())?;
    println!("report written to {}", out.display());
    if let Some(dir) = &args.charts {
        println!("charts written to {}", dir.display());
    }
    Ok(())
}

fn show_command(args: ShowArgs) -> anyhow::Result<()> {
    let path = if args.genotype.is_dir() {
        args.genotype.join("genotype.json")
    } else {
        args.genotype.clone()
    };
    let genotype = Genotype::load(&path)?;
    let mut text = spidernet::show::summary(&genotype, args.batch);
    if let Some(svg) = &args.svg {
        spidernet::atomic::write_atomic(svg, spidernet::show::cells_svg(&genotype).as_bytes())
            .with_context(|| format!("cannot write {}", svg.display()))?;
        text.push_str(&format!("\ncells drawn in {}\n", svg.display()));
    }
    print_ignoring_closed_pipe(&text)
}

/// Prints to stdout; a reader that stops early (`| head`) is not an error.
fn print_ignoring_closed_pipe(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn train_command(args: TrainArgs) -> anyhow::Result<()> {
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    let device = device(args.data.device)?;
    let genotype = Genotype::load(&args.genotype)?;
    let data = load_data(&args.data.data, &args.data.options(), args.seed)?;
    if genotype.input != data.shape || genotype.classes != data.classes {
        anyhow::bail!(
            "{}: the genotype expects {}x{}x{} images in {} classes, but {} has {}x{}x{} in {}",
            args.genotype.display(),
            genotype.input.channels,
            genotype.input.height,
            genotype.input.width,
            genotype.classes,
            data.name,
            data.shape.channels,
            data.shape.height,
            data.shape.width,
            data.classes
        );
    }
    let config = TrainConfig {
        epochs: args.epochs,
        augment: Some(data.augment()),
        ..TrainConfig::default()
    };
    let pruner = PrunerConfig::default();
    let mut net = Supernet::new(
        &genotype,
        genotype.channels,
        InitScheme::PytorchDefault,
        pruner,
        device,
        args.seed,
    );
    let mut progress = Progress::training(args.epochs);
    train::train(&mut net, &data.train, None, &config, args.seed, &mut progress)?;
    let evaluation = train::evaluate(&net, &data.test, config.eval_batch_size);
    println!(
        "test accuracy {:.2}% after {} epochs; {} live ops, {} parameters",
        100.0 * evaluation.accuracy,
        args.epochs,
        net.genotype().live_op_count(),
        net.parameter_count()
    );
    if let Some(dir) = &args.out {
        search::save_trained(dir, &net, &data.normalization)?;
        println!("trained network saved in {}", dir.display());
    }
    Ok(())
}

fn train_supernet(args: TrainSupernetArgs) -> anyhow::Result<()> {
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    let device = device(args.data.device)?;
    let data = load_data(&args.data.data, &args.data.options(), args.seed)?;
    let genotype = minimal_genotype(&data, args.shape.reductions, args.shape.channels)?;
    let pruner = PrunerConfig::default();
    let mut net = Supernet::new(
        &genotype,
        args.shape.channels,
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
    let mut progress = Progress::training(args.epochs);
    let reports = train::train_on(&mut net, &data, &config, args.seed, &mut progress)?;
    let last = reports.last().context("no epoch ran")?;
    println!(
        "test accuracy {:.2}% after {} epochs; {} live ops, {} parameters",
        100.0 * last.eval.map_or(f64::NAN, |e| e.accuracy),
        last.epoch,
        last.live_ops,
        last.parameters
    );
    Ok(())
}

/// The benchmark workload: Fashion-MNIST-shaped input, R=2, C=16, grown by seeded random splits.
const BENCH_INPUT: spidernet::genotype::InputShape = spidernet::genotype::InputShape {
    channels: 1,
    height: 28,
    width: 28,
};

fn bench_memory(args: BenchMemoryArgs) -> anyhow::Result<()> {
    use spidernet::memory_probe::{grown_genotype, measure_training_peak};
    if let Some(splits) = args.probe_splits {
        let genotype = grown_genotype(BENCH_INPUT, 2, 16, splits, 0);
        let measured = measure_training_peak(&genotype, 16, args.batch, 3)?;
        println!("{measured}");
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find this executable to run the probes")?;
    println!(
        "training memory, 1x28x28 input, R=2, C=16, batch {}, 3 SGD steps, CPU",
        args.batch
    );
    println!(
        "{:>7} {:>6} {:>10} {:>12} {:>12} {:>7}",
        "splits", "edges", "params", "estimate", "measured", "ratio"
    );
    for splits in [0, 6, 12, 21, 30] {
        // Each genotype runs in its own process, so memory freed by one cannot hide the next one's peak.
        let output = std::process::Command::new(&exe)
            .args([
                "bench-memory",
                "--batch",
                &args.batch.to_string(),
                "--probe-splits",
                &splits.to_string(),
            ])
            .output()
            .context("cannot run a memory probe")?;
        if !output.status.success() {
            anyhow::bail!("memory probe failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let measured: u64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .context("probe output")?;
        let genotype = grown_genotype(BENCH_INPUT, 2, 16, splits, 0);
        let estimate = memory::estimate(&genotype, 16, args.batch).total();
        println!(
            "{:>7} {:>6} {:>10} {:>12} {:>12} {:>7.2}",
            splits,
            genotype.edge_count(),
            spidernet::supernet::parameter_count(&genotype, 16),
            format_size(estimate),
            format_size(measured),
            estimate as f64 / measured as f64
        );
    }
    Ok(())
}
