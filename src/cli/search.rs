//! `spidernet search`: a new search or a resumed one, its progress, and the result lines.

use super::Exit;
use super::args::{self, DataArgs, ShapeArgs, load_data, positive};
use super::choices::{NtkChoice, OpSetChoice, ProfileChoice, StrategyChoice, parse_rule, per_profile};
use super::events::{self, JsonEvents};
use super::interrupt;
use super::progress::{self, Progress, Quiet};
use clap::Args;
use spidernet::data::Dataset;
use spidernet::genotype::OpSet;
use spidernet::memory::{self, format_size};
use spidernet::metrics::DecisionRule;
use spidernet::search::budget::TimeBudget;
use spidernet::search::{Profile, Run, RunDir, SearchConfig, Summary};
use spidernet::train::{Interrupted, OpCut};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Training-memory budget, e.g. 512MiB or 4GiB [default: half the machine's memory].
    #[arg(long, value_parser = memory::parse_size)]
    memory_budget: Option<u64>,
    /// Settings preset; the flags below override it.
    #[arg(long, value_enum, default_value = "quick")]
    profile: ProfileChoice,
    // Search iterations at most.
    #[arg(long, help = per_profile("Search iterations at most", |p| p.iterations().to_string()))]
    iterations: Option<usize>,
    /// Supernet training epochs per iteration.
    #[arg(long, default_value_t = 4, value_parser = positive)]
    epochs_per_iteration: usize,
    // Epochs of the final training from scratch.
    #[arg(long, help = per_profile("Epochs of the final training from scratch", |p| p.final_epochs().to_string()))]
    final_epochs: Option<usize>,
    /// How splits are chosen.
    #[arg(long, value_enum, default_value = "spidernet")]
    strategy: StrategyChoice,
    /// Which NTK condition number scores candidates.
    #[arg(long, value_enum, default_value = "sound")]
    ntk: NtkChoice,
    // The decision rule.
    #[arg(long, value_name = "RULE", value_parser = parse_rule, help = rule_help())]
    metrics: Option<DecisionRule>,
    /// The candidate ops of every edge.
    #[arg(long, value_enum, default_value = "published")]
    ops: OpSetChoice,
    /// Train the search phases on a seeded subset of this many images.
    #[arg(long, value_parser = positive)]
    search_samples: Option<usize>,
    /// Train the final network on a seeded subset of this many training images [default: all].
    #[arg(long, value_parser = positive)]
    final_samples: Option<usize>,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run folder [default: runs/<time>-<data>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Wall-time budget for search and final training together, e.g. 30m or 2h: the run is planned from measured
    /// throughput (search images, iterations, epochs, final epochs) and re-planned after every iteration.
    /// --iterations and --epochs-per-iteration then cap the plan.
    #[arg(long, value_name = "DURATION", value_parser = parse_budget,
          conflicts_with_all = ["final_epochs", "search_samples", "final_samples", "no_final"])]
    time_budget: Option<f64>,
    /// Start every training phase from the tensors the previous one trained, and the final training from the last
    /// supernet's, instead of fresh weights.
    #[arg(long)]
    inherit_weights: bool,
    // Before the final training, keep on each edge only the K ops whose gates were open longest.
    #[arg(long, value_name = "K", value_parser = positive, help = final_ops_help())]
    final_ops: Option<usize>,
    /// When no supernet training ranked the ops before the final training (--strategy none, a budgeted quick
    /// search), make the --final-ops cut this many epochs into the final training, ranked by its own gates: a whole
    /// number at that epoch's end, a fraction part-way through an epoch (0.25: a quarter into the first)
    /// [default: 1].
    #[arg(long, value_name = "EPOCHS")]
    final_ops_after: Option<f64>,
    // With --time-budget, the accuracy a split is expected to add at equal epochs, or "off".
    #[arg(long, value_name = "POINTS|off", requires = "time_budget", allow_negative_numbers = true,
          value_parser = parse_split_gain, help = split_gain_help())]
    split_gain: Option<SplitGain>,
    /// Skip the final training.
    #[arg(long)]
    no_final: bool,
    /// Print machine-readable JSON-lines events on stdout (human-readable lines stay on stderr).
    #[arg(long)]
    json: bool,
    /// Continue the search in this run folder from its last complete iteration (its settings are used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = [
        "out", "reductions", "channels", "memory_budget", "profile", "iterations", "epochs_per_iteration",
        "final_epochs", "strategy", "ntk", "metrics", "ops", "search_samples", "final_samples", "seed", "no_final", "data", "time_budget", "inherit_weights", "final_ops", "final_ops_after", "split_gain",
        "image_size", "flip",
    ])]
    resume: Option<PathBuf>,
}

/// The help of `--final-ops`, with each profile's value.
fn final_ops_help() -> String {
    per_profile(
        &format!(
            "Before the final training, keep on each edge only the K ops whose gates were open longest in the last supernet training (with no supernet training, after the final training's first epoch, by its gates); {} keeps every live op",
            OpSet::Published.ops().len()
        ),
        |p| p.final_ops().unwrap_or(OpSet::Published.ops().len()).to_string(),
    )
}

/// The help of `--metrics`, with each profile's rule.
fn rule_help() -> String {
    per_profile(
        "How each cell's split is chosen: \"published\" (κ must not rise, regions must rise), or metrics joined by \"+\" \
         (the best mean rank of their signals wins; see docs/METRICS.md for the names)",
        |p| p.metrics().rule.to_string(),
    )
}

impl SearchArgs {
    /// The search settings: the profile's, with every flag given applied on top.
    fn config(&self) -> anyhow::Result<SearchConfig> {
        let mut config = SearchConfig::new(
            Profile::from(self.profile),
            &self.data.data,
            self.shape.reductions,
            self.shape.channels,
            self.seed,
        );
        config.strategy = self.strategy.into();
        config.op_set = self.ops.into();
        config.metrics.ntk_mode = self.ntk.into();
        if let Some(rule) = &self.metrics {
            config.metrics.rule = rule.clone();
        }
        if let Some(iterations) = self.iterations {
            config.iterations = iterations;
        }
        if let Some(budget) = self.memory_budget {
            config.memory_budget = budget;
        }
        if let Some(epochs) = self.final_epochs {
            config.final_train.epochs = epochs;
        }
        config.search_samples = self.search_samples;
        config.data_options = self.data.options();
        config.final_samples = self.final_samples;
        config.train.epochs = self.epochs_per_iteration;
        config.final_training = !self.no_final;
        config.inherit_weights = self.inherit_weights;
        match self.split_gain {
            Some(SplitGain::Points(points)) => config.split_gain = Some(points / 100.0),
            Some(SplitGain::Off) => config.split_gain = None,
            None => {}
        }
        config.final_ops = args::final_ops(self.final_ops, config.final_ops);
        config.final_train.cut_ops = OpCut::asked(config.final_ops, self.final_ops_after)?;
        config.time_budget = self.time_budget.map(|seconds| TimeBudget {
            seconds,
            max_iterations: config.iterations,
            max_epochs_per_iteration: config.train.epochs,
        });
        Ok(config)
    }
}

/// Parses `--split-gain`: accuracy points (a percentage), finite and within ±100, or `off`.
fn parse_split_gain(text: &str) -> Result<SplitGain, String> {
    if text.trim() == "off" {
        return Ok(SplitGain::Off);
    }
    match text.trim().parse::<f64>() {
        Ok(points) if points.is_finite() && points.abs() <= 100.0 => Ok(SplitGain::Points(points)),
        _ => Err(format!(
            "{text:?} is not accuracy points: give a number such as 0.2 (a fifth of a point), or off"
        )),
    }
}

/// What `--split-gain` asks for.
#[derive(Clone, Copy, Debug)]
enum SplitGain {
    /// The gain a split is expected to add, in points.
    Points(f64),
    /// Splits are not weighed against their time.
    Off,
}

/// The help of `--split-gain`, with each profile's value.
fn split_gain_help() -> String {
    per_profile(
        "With --time-budget, the accuracy in points that a split is expected to add at equal epochs: a split is made \
         only when this exceeds what its slower training steps cost in final epochs, measured on this machine; off \
         grows regardless of time (docs/SEARCH.md, *Growth that counts time*)",
        |p| match p.split_gain() {
            Some(gain) => format!("{:.3}", 100.0 * gain),
            None => "off".to_string(),
        },
    )
}

/// Parses a duration such as `30m`, `2h` or `1h 30m` into seconds; at least 10 s.
fn parse_budget(text: &str) -> Result<f64, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration ({error}); write e.g. 30m or 2h"))?;
    if duration.as_secs() < 10 {
        return Err(format!(
            "{text:?} is under 10 s: a budget must leave time for a search pass and a final training"
        ));
    }
    Ok(duration.as_secs_f64())
}

/// `runs/<UTC time>-<last part of the data spec>`.
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

/// Runs the search, then prints the result, the run folder and the report. Under a launcher every rank runs the
/// loop and takes the same decisions; rank 0 alone opens the run folder, writes it and speaks
/// (docs/DISTRIBUTED.md, *A distributed search*).
pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let group = spidernet::distributed::init_from_env()?;
    let leader = group.is_leader();
    interrupt::install()?;
    let device = args.data.device.device()?;
    let Some((mut run, data)) = open_on_every_rank(&args, group, device)? else {
        return Ok(());
    };
    let config = run.planned_settings();
    let extent = match config.time_budget {
        Some(budget) => format!(
            "time budget {}",
            humantime::format_duration(std::time::Duration::from_secs(budget.seconds as u64))
        ),
        None => format!("up to {} iterations", config.iterations),
    };
    if leader {
        eprintln!(
            "search: {} strategy, R={} C={}, {extent}, memory budget {}, run folder {}{}",
            config.strategy,
            config.reductions,
            config.channels,
            format_size(config.memory_budget),
            run.dir().root().display(),
            match group.world() {
                1 => String::new(),
                world => format!(", {world} ranks"),
            }
        );
    }
    let outcome = if !leader {
        run.search(&data, device, &mut Quiet)
    } else if args.json {
        let mut observer = JsonEvents::new(Progress::search(false));
        run.search(&data, device, &mut observer)
    } else {
        let mut observer = Progress::search(progress::bars_wanted());
        run.search(&data, device, &mut observer)
    };
    let summary = match outcome {
        Ok(summary) => summary,
        Err(error) if error.downcast_ref::<Interrupted>().is_some() => {
            if leader {
                eprintln!(
                    "interrupted; resume with: spidernet search --resume {}",
                    run.dir().root().display()
                );
            }
            return Err(Exit {
                code: interrupt::interrupted_exit_code(),
            }
            .into());
        }
        Err(error) => return Err(error),
    };
    if !leader {
        return Ok(());
    }
    if summary.test_accuracy.is_some()
        && let Err(error) = super::eval::save_test_evaluation(run.dir().root(), &data)
    {
        eprintln!("warning: the test evaluation for the report could not be saved: {error:#}");
    }
    print_result(run.dir(), &summary, args.json);
    Ok(())
}

/// The run to search and its data, on every rank: rank 0 opens it (`open`) and shares it; None when it has nothing
/// left to do.
fn open_on_every_rank(
    args: &SearchArgs,
    group: &spidernet::distributed::ProcessGroup,
    device: tch::Device,
) -> anyhow::Result<Option<(Run, Dataset)>> {
    if group.world() > 1 && args.out.is_none() && args.resume.is_none() {
        anyhow::bail!(
            "a search of {} processes needs --out DIR (or --resume DIR): every rank, and a group that {} restarts, \
             must name the same run folder",
            group.world(),
            group.launch().launcher
        );
    }
    let (opened, data) = match group.is_leader() {
        true => match open(args, group.launch().restart_count) {
            Ok(Some((run, data))) => (Ok(Some(run)), Some(data)),
            Ok(None) => (Ok(None), None),
            Err(error) => (Err(error), None),
        },
        false => (Ok(None), None),
    };
    let Some(run) = Run::shared(opened, device)? else {
        return Ok(None);
    };
    let data = match data {
        Some(data) => data,
        None => {
            let settings = run.settings();
            load_data(&settings.data, &settings.data_options, settings.seed)?
        }
    };
    Ok(Some((run, data)))
}

/// Rank 0's part of starting a search: the run to continue (`--resume`, or the `--out` folder of a group its
/// launcher restarted, which resumes by itself) or a new one, with its data; None when the run has nothing left to
/// do (its result is printed).
fn open(args: &SearchArgs, restart_count: u64) -> anyhow::Result<Option<(Run, Dataset)>> {
    let restarted = args
        .out
        .as_ref()
        .filter(|_| restart_count > 0)
        .map(|out| RunDir::read_settings(out).map(|settings| settings.map(|_| out.clone())))
        .transpose()?
        .flatten();
    if let Some(root) = &restarted {
        eprintln!(
            "the group was restarted ({restart_count} so far): continuing the run in {}",
            root.display()
        );
    }
    match args.resume.as_ref().or(restarted.as_ref()) {
        Some(root) => resume(root, args.json),
        None => {
            let config = args.config()?;
            let data = load_data(&config.data, &config.data_options, config.seed)?;
            let root = args.out.clone().unwrap_or_else(|| default_run_dir(&config.data));
            Ok(Some((Run::start(&root, config, &data)?, data)))
        }
    }
}

/// Opens `root` to continue its run and loads its data; a finished run prints its result instead, and gives None.
fn resume(root: &Path, json: bool) -> anyhow::Result<Option<(Run, Dataset)>> {
    let run = Run::resume(root)?;
    if let Some(summary) = run.finished()? {
        // Nothing to train, so nothing to load: report what the run left.
        eprintln!("{} is already complete: nothing to resume", root.display());
        print_result(run.dir(), &summary, json);
        return Ok(None);
    }
    match run.dir().final_state()? {
        Some(state) => eprintln!(
            "resuming {}: the search is done, the final training continues after epoch {} of {}",
            root.display(),
            state.epochs_done(),
            state.epochs
        ),
        None => eprintln!(
            "resuming {} after {} completed steps",
            root.display(),
            run.checkpoint().completed
        ),
    }
    let settings = run.settings();
    let data = load_data(&settings.data, &settings.data_options, settings.seed)?;
    Ok(Some((run, data)))
}

/// The closing lines: accuracy and size, the run folder, and the report written into it.
fn print_result(dir: &RunDir, summary: &Summary, json: bool) {
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
    if json {
        eprintln!("{result}\n{folder}");
        events::emit(
            "final_result",
            serde_json::json!({ "summary": summary, "run_folder": dir.root() }),
        );
    } else {
        println!("{result}\n{folder}");
    }
}
