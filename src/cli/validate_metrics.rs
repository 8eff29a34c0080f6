//! `spidernet validate-metrics`: the metric-validation harness (docs/METRICS.md, *Validating the metrics*).

use super::args::{DataArgs, ShapeArgs, load_data, positive, print_ignoring_closed_pipe};
use super::choices::{ProfileChoice, parse_rule};
use clap::Args;
use spidernet::metrics::DecisionRule;
use spidernet::metrics::zero_cost::{Better, MetricName};
use spidernet::search::Profile;
use spidernet::stats::Interval;
use spidernet::train::Schedule;
use spidernet::validation::{
    self, Analysis, CHART_FILE, CandidateRecord, RESULT_FILE, Ranking, ValidationConfig, ValidationObserver,
};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ValidateMetricsArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    shape: ShapeArgs,
    /// The search profile whose training, scoring and growth make the states.
    #[arg(long, value_enum, default_value = "quick")]
    profile: ProfileChoice,
    /// One search per seed, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Search iterations per seed whose trained supernet is a state.
    #[arg(long, value_parser = positive, default_value_t = 2)]
    states: usize,
    /// Train the search phases on a seeded subset of this many images [default: all].
    #[arg(long, value_parser = positive)]
    search_samples: Option<usize>,
    /// Epochs of each continuation (with and without the split, from the state's weights).
    #[arg(long, value_parser = positive, default_value_t = 1)]
    continuation_epochs: usize,
    /// Images per continuation epoch, a seeded subset of the search's training images [default: all].
    #[arg(long, value_parser = positive)]
    continuation_samples: Option<usize>,
    /// Continuations per candidate, each with its own seed (two or more measure the noise floor).
    #[arg(long, value_parser = positive, default_value_t = 2)]
    replicates: usize,
    /// The metrics to validate, comma-separated, or "all".
    #[arg(long, value_delimiter = ',', default_value = "all")]
    metrics: Vec<String>,
    /// Decision rules to evaluate besides each metric alone, comma-separated: "published", or metrics joined by "+"
    /// [default: published and the combinations in docs/METRICS.md whose metrics were scored].
    #[arg(long, value_delimiter = ',', value_parser = parse_rule)]
    rules: Vec<DecisionRule>,
    /// Bootstrap resamples per interval.
    #[arg(long, value_parser = positive, default_value_t = 1000)]
    resamples: usize,
    /// The output folder: the measurements so far, validation.json and scatter.svg. Running again with the same
    /// settings continues where a stopped run left off.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the analysis as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only analyse what the output folder holds so far (with the settings it was started with), measuring
    /// nothing.
    #[arg(long)]
    analyse: bool,
}

/// The metrics `--metrics` names.
pub fn parse_metrics(names: &[String]) -> anyhow::Result<Vec<MetricName>> {
    if names.iter().any(|n| n.trim() == "all") {
        return Ok(MetricName::ALL.to_vec());
    }
    let mut metrics = Vec::new();
    for name in names {
        let metric = MetricName::parse(name)?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    Ok(metrics)
}

/// Prints one line per state and per finished continuation.
struct Progress {
    start: Instant,
}

impl ValidationObserver for Progress {
    fn state(&mut self, seed: u64, state: usize, candidates: usize) {
        eprintln!(
            "seed {seed}, state {state}: {candidates} candidates ({:.0} s)",
            self.start.elapsed().as_secs_f64()
        );
    }

    fn measured(&mut self, record: &CandidateRecord) {
        eprintln!(
            "  cell {} edge {}: replicate {} accuracy {:.2}% ({:.0} s)",
            record.cell,
            record.edge,
            record.accuracies.len() - 1,
            100.0 * record.accuracies.last().copied().unwrap_or(f64::NAN),
            self.start.elapsed().as_secs_f64()
        );
    }
}

fn number(value: Option<f64>, scale: f64) -> String {
    value.map_or("—".to_string(), |v| format!("{:+.3}", scale * v))
}

fn size(value: Option<f64>, scale: f64) -> String {
    value.map_or("—".to_string(), |v| format!("{:.3}", scale * v))
}

fn interval(value: Option<Interval>, scale: f64) -> String {
    value.map_or("—".to_string(), |i| {
        format!("[{:+.3}, {:+.3}]", scale * i.low, scale * i.high)
    })
}

/// One line of the table: a name, a direction, and four (value, interval) pairs.
fn row(cells: [&str; 10]) -> String {
    let [name, better, tau, tau_ci, rho, rho_ci, dec, dec_ci, pick, pick_ci] = cells;
    format!(
        "{name:<16} {better:<6} {tau:>7} {tau_ci:>18} {rho:>7} {rho_ci:>18} {dec:>7} {dec_ci:>18} {pick:>7} {pick_ci:>18}\n"
    )
}

fn ranking_row(name: &str, better: &str, r: &Ranking) -> String {
    row([
        name,
        better,
        &number(r.tau, 1.0),
        &interval(r.tau_interval, 1.0),
        &number(r.rho, 1.0),
        &interval(r.rho_interval, 1.0),
        &number(r.decision_tau, 1.0),
        &interval(r.decision_tau_interval, 1.0),
        &number(r.pick_gain, 100.0),
        &interval(r.pick_gain_interval, 100.0),
    ])
}

/// The analysis as a table: one row per metric and per rule, then the noise floor.
pub fn table(analysis: &Analysis) -> String {
    let mut text = format!(
        "{} candidates in {} decisions; mean gain {} points, a perfect pick adds {} points\n\n",
        analysis.candidates,
        analysis.decisions,
        number(analysis.mean_gain, 100.0),
        number(analysis.oracle_pick_gain, 100.0)
    );
    text.push_str(&row([
        "rule",
        "better",
        "τ",
        "95% CI",
        "ρ",
        "95% CI",
        "τ dec.",
        "95% CI",
        "pick",
        "95% CI (points)",
    ]));
    for metric in &analysis.metrics {
        let better = match metric.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        };
        text.push_str(&ranking_row(metric.metric.name(), better, &metric.ranking));
    }
    for rule in &analysis.rules {
        text.push_str(&ranking_row(&rule.rule, "", &rule.ranking));
    }
    let noise = &analysis.noise;
    text.push_str(&format!(
        "\nnoise floor ({} replicates): one replicate's gain varies by {} points around its candidate's mean; the \
         candidates' mean gains spread by {} points; retest τ {} {} (within decisions {} {})\n",
        noise.replicates,
        size(noise.replicate_std, 100.0),
        size(noise.candidate_std, 100.0),
        number(noise.retest_tau, 1.0),
        interval(noise.retest_tau_interval, 1.0),
        number(noise.retest_decision_tau, 1.0),
        interval(noise.retest_decision_tau_interval, 1.0),
    ));
    text
}

/// Runs the harness (or, with `--analyse`, only its analysis) and prints the analysis.
pub fn run(args: ValidateMetricsArgs) -> anyhow::Result<()> {
    let analysis = if args.analyse {
        validation::analyse_folder(&args.out, &args.rules)?
    } else {
        measure(&args)?
    };
    if args.json {
        print_ignoring_closed_pipe(&(serde_json::to_string_pretty(&analysis)? + "\n"))?;
    } else {
        print_ignoring_closed_pipe(&table(&analysis))?;
        eprintln!(
            "wrote {} and {}",
            args.out.join(RESULT_FILE).display(),
            args.out.join(CHART_FILE).display()
        );
    }
    Ok(())
}

/// Runs or continues the harness with the flags' settings.
fn measure(args: &ValidateMetricsArgs) -> anyhow::Result<Analysis> {
    let device = args.data.device.device()?;
    let metrics = parse_metrics(&args.metrics)?;
    let first_seed = *args
        .seeds
        .first()
        .ok_or_else(|| anyhow::anyhow!("--seeds names no seed"))?;
    let data = load_data(&args.data.data, &args.data.options(), first_seed)?;
    let profile: Profile = args.profile.into();
    let config = ValidationConfig {
        data: args.data.data.clone(),
        profile,
        reductions: args.shape.reductions,
        channels: args.shape.channels,
        seeds: args.seeds.clone(),
        states: args.states,
        search_samples: args.search_samples,
        continuation_epochs: args.continuation_epochs,
        continuation_schedule: Schedule::Cosine,
        continuation_samples: args.continuation_samples,
        replicates: args.replicates,
        metrics,
        scoring: profile.metrics(),
        resamples: args.resamples,
    };
    let mut progress = Progress { start: Instant::now() };
    validation::run(&config, &args.rules, &data, &args.out, device, &mut progress)
}
