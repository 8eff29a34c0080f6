//! `spidernet score`: the train-free metrics of candidate splits, through the search's own scorer, with an
//! optional dump of every network and input behind them.

use super::args::{DeviceChoice, data_of_run, parse_image_size, positive, print_ignoring_closed_pipe};
use super::choices::{NtkChoice, parse_rule};
use anyhow::{Context, bail};
use clap::Args;
use spidernet::artifacts::Artifacts;
use spidernet::data;
use spidernet::genotype::Genotype;
use spidernet::metrics::dump::ScoringDump;
use spidernet::metrics::score::Scorer;
use spidernet::metrics::{CandidateReport, CellDecision, DecisionRule, MetricsConfig, NetworkObserver, Unobserved};
use spidernet::search::{RunDir, SearchConfig};
use std::path::{Path, PathBuf};

/// The metric settings; each defaults to the run's (for a run folder) or to the search's default.
#[derive(Args)]
struct MetricArgs {
    /// Repeats averaged per metric.
    #[arg(long, value_parser = positive)]
    repeats: Option<usize>,
    /// Which NTK condition number decides acceptance and the score.
    #[arg(long, value_enum)]
    ntk: Option<NtkChoice>,
    /// Channels of the NTK network's first cell.
    #[arg(long, value_parser = positive)]
    ntk_width: Option<usize>,
    /// Batches of NTK samples.
    #[arg(long, value_parser = positive)]
    ntk_batches: Option<usize>,
    /// Samples per NTK batch.
    #[arg(long, value_parser = positive)]
    ntk_batch_size: Option<usize>,
    /// Relative eigenvalue cut of the sound κ.
    #[arg(long)]
    ntk_threshold: Option<f64>,
    /// Channels of the LRC network's first cell.
    #[arg(long, value_parser = positive)]
    lrc_width: Option<usize>,
    /// Batches of LRC crops.
    #[arg(long, value_parser = positive)]
    lrc_batches: Option<usize>,
    /// Crops per LRC batch.
    #[arg(long, value_parser = positive)]
    lrc_batch_size: Option<usize>,
    /// Side of an LRC crop.
    #[arg(long, value_parser = positive)]
    lrc_crop: Option<usize>,
    /// The decision rule: "published", or metrics joined by "+" (docs/METRICS.md).
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    metrics: Option<DecisionRule>,
}

impl MetricArgs {
    fn apply(&self, mut config: MetricsConfig) -> anyhow::Result<MetricsConfig> {
        config.repeats = self.repeats.unwrap_or(config.repeats);
        config.ntk_mode = self.ntk.map_or(config.ntk_mode, Into::into);
        config.ntk_width = self.ntk_width.unwrap_or(config.ntk_width);
        config.ntk_batches = self.ntk_batches.unwrap_or(config.ntk_batches);
        config.ntk_batch_size = self.ntk_batch_size.unwrap_or(config.ntk_batch_size);
        config.ntk_threshold = self.ntk_threshold.unwrap_or(config.ntk_threshold);
        config.lrc_width = self.lrc_width.unwrap_or(config.lrc_width);
        config.lrc_batches = self.lrc_batches.unwrap_or(config.lrc_batches);
        config.lrc_batch_size = self.lrc_batch_size.unwrap_or(config.lrc_batch_size);
        config.lrc_crop = self.lrc_crop.unwrap_or(config.lrc_crop);
        if let Some(rule) = &self.metrics {
            config.rule = rule.clone();
        }
        if !(config.ntk_threshold.is_finite() && (0.0..1.0).contains(&config.ntk_threshold)) {
            bail!(
                "--ntk-threshold {} is out of range: it must lie in [0, 1)",
                config.ntk_threshold
            );
        }
        Ok(config)
    }
}

#[derive(Args)]
pub struct ScoreArgs {
    /// A genotype file, or a run folder (its genotype.json, scored on the run's data with the run's seed and
    /// metric settings unless given).
    #[arg(value_name = "GENOTYPE|RUN_DIR")]
    target: PathBuf,
    /// Score only this cell's candidates [default: every cell].
    #[arg(long)]
    cell: Option<usize>,
    /// Score only the split of this edge id of --cell [default: every edge].
    #[arg(long, requires = "cell")]
    edge: Option<u32>,
    /// Seed of the inputs and of the scoring networks' weights [default: the run's, else 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Data set the inputs are drawn from, as for `search` [default: the run's, else digits].
    #[arg(long)]
    data: Option<String>,
    /// Resize the images of a folder: data set to SIZE or HEIGHTxWIDTH pixels.
    #[arg(long, value_name = "SIZE", value_parser = parse_image_size)]
    image_size: Option<(usize, usize)>,
    #[command(flatten)]
    metrics: MetricArgs,
    /// Print the decisions as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write every scoring network (genotype, width, tensors) and the inputs into this new folder, with a
    /// manifest (docs/METRICS.md, Dump format).
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
    /// With --dump, also write the NTK's gradient rows G of every network and repeat (samples × parameters floats
    /// each).
    #[arg(long, requires = "dump")]
    dump_gradients: bool,
    /// Device to score on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

/// What is scored and with what: the genotype, the run's settings when the target is a run folder.
fn target(path: &Path) -> anyhow::Result<(Genotype, Option<SearchConfig>)> {
    if path.is_dir() {
        let genotype = Genotype::load(&Artifacts::new(path).genotype_path())?;
        return Ok((genotype, RunDir::read_settings(path)?));
    }
    Ok((Genotype::load(path)?, None))
}

/// The cells and, per cell, the edges to score; a cell or edge that does not exist is named.
fn chosen_splits(
    genotype: &Genotype,
    cell: Option<usize>,
    edge: Option<u32>,
) -> anyhow::Result<Vec<(usize, Vec<u32>)>> {
    let count = genotype.cells.len();
    let cells: Vec<usize> = match cell {
        Some(k) if k >= count => bail!(
            "--cell {k} does not exist: the genotype has {count} cells (0–{})",
            count - 1
        ),
        Some(k) => vec![k],
        None => (0..count).collect(),
    };
    cells
        .into_iter()
        .map(|k| {
            let mut ids: Vec<u32> = genotype.cells[k].edges.iter().map(|e| e.id).collect();
            ids.sort_unstable();
            match edge {
                Some(e) if !ids.contains(&e) => {
                    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
                    bail!(
                        "--edge {e} does not exist in cell {k}: its edges are {}",
                        list.join(", ")
                    )
                }
                Some(e) => Ok((k, vec![e])),
                None => Ok((k, ids)),
            }
        })
        .collect()
}

fn kappa(report: &CandidateReport, config: &MetricsConfig, repeat: usize) -> (f64, f64) {
    let r = &report.repeats[repeat];
    match config.ntk_mode {
        spidernet::metrics::NtkMode::Sound => (r.ntk_on.sound, r.ntk_off.sound),
        spidernet::metrics::NtkMode::Faithful => (r.ntk_on.faithful, r.ntk_off.faithful),
    }
}

/// One row per candidate and repeat; the candidate's ratios, verdict and score on its first row.
fn table(decisions: &[CellDecision], config: &MetricsConfig) -> String {
    let mode = format!("{:?}", config.ntk_mode).to_lowercase();
    let mut text = format!(
        "{:>4} {:>4} {:>6} {:>3} {:>11} {:>11} {:>7} {:>11} {:>8} {:>8} {:>6} {}\n",
        "cell",
        "edge",
        "split",
        "rep",
        format!("κ_on {mode}"),
        "κ_off",
        "dropped",
        "regions",
        "r_ntk",
        "r_lrc",
        "score",
        "verdict"
    );
    for decision in decisions {
        for report in &decision.tried {
            for (repeat, r) in report.repeats.iter().enumerate() {
                let (on, off) = kappa(report, config, repeat);
                let regions = format!("{}/{}", r.lrc_on.regions, r.lrc_off.regions);
                let dropped = format!("{}/{}", r.ntk_on.dropped, r.ntk_off.dropped);
                let split = format!("{}→{}", report.from, report.to);
                let candidate_columns = if repeat == 0 {
                    let chosen = decision.chosen == Some(report.edge);
                    let verdict = match &report.rejection {
                        None if chosen => "accepted, chosen".to_string(),
                        None => "accepted".to_string(),
                        Some(reason) => format!("rejected: {reason}"),
                    };
                    let score = report.score.map_or("—".to_string(), |s| format!("{s:.3}"));
                    format!("{:>+8.4} {:>+8.4} {score:>6} {verdict}", report.r_ntk, report.r_lrc)
                } else {
                    String::new()
                };
                let line = format!(
                    "{:>4} {:>4} {split:>6} {repeat:>3} {on:>11.4e} {off:>11.4e} {dropped:>7} {regions:>11} {candidate_columns}",
                    report.cell, report.edge
                );
                text += line.trim_end();
                text.push('\n');
            }
        }
    }
    text
}

/// Scores the chosen splits, prints them, and writes the dump when asked.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    // Under a launcher the candidates are shared out among the ranks, and rank 0 prints the decisions.
    let group = spidernet::distributed::init_from_env()?;
    if group.world() > 1 && args.dump.is_some() {
        bail!("--dump is not supported with more than one process: each rank sees only its own candidates");
    }
    let (genotype, settings) = target(&args.target)?;
    let splits = chosen_splits(&genotype, args.cell, args.edge)?;
    let (spec, options, seed) = data_of_run(args.data.as_deref(), args.image_size, args.seed, settings.as_ref());
    let metrics = args.metrics.apply(
        settings
            .as_ref()
            .map_or_else(MetricsConfig::default, |s| s.metrics.clone()),
    )?;
    let data = data::load(&spec, &options, seed, data::cache_dir().as_deref())?.dataset;
    data.check_fits(&genotype)
        .with_context(|| format!("{} cannot be scored on --data {spec}", args.target.display()))?;
    let mut dump = args
        .dump
        .as_deref()
        .map(|dir| ScoringDump::create(dir, genotype.input, args.dump_gradients))
        .transpose()?;
    let scorer = Scorer::new(&data.train, metrics.clone(), seed, args.device.device()?);
    let mut unobserved = Unobserved;
    let observer: &mut dyn NetworkObserver = match dump.as_mut() {
        Some(dump) => dump,
        None => &mut unobserved,
    };
    let baseline = scorer.baseline_observed(&genotype, &mut *observer)?;
    let decisions = splits
        .iter()
        .map(|(cell, edges)| scorer.score_edges(&baseline, *cell, edges, &mut *observer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(dump) = dump {
        let reports: Vec<CandidateReport> = decisions.iter().flat_map(|d| d.tried.clone()).collect();
        let dir = dump.finish(&genotype, &scorer, &spec, seed, &reports)?;
        eprintln!("scoring networks and inputs written to {}", dir.display());
    }
    if !group.is_leader() {
        return Ok(());
    }
    let text = if args.json {
        let value = serde_json::json!({"data": spec, "seed": seed, "metrics": metrics, "cells": decisions});
        serde_json::to_string_pretty(&value)? + "\n"
    } else {
        table(&decisions, &metrics)
    };
    print_ignoring_closed_pipe(&text)
}
