//! `spidernet bench-memory`: the memory estimate against the measured peak, one child process per genotype; with
//! `--search`, whole short searches against their memory budget, one child process per budget.

use super::args::positive;
use anyhow::Context;
use clap::Args;
use spidernet::bench::{self, MEMORY_INPUT, MEMORY_STEPS};
use spidernet::memory::format_size;

#[derive(Args)]
pub struct BenchMemoryArgs {
    /// Training batch size.
    #[arg(long, default_value_t = 64, value_parser = positive)]
    batch: usize,
    /// Measure one genotype grown by this many splits in this process and print its byte count (used internally).
    #[arg(long, hide = true)]
    probe_splits: Option<usize>,
    /// Run short searches at memory budgets from tight to loose and compare each one's peak with its budget.
    #[arg(long)]
    search: bool,
    /// Data set of the searches (`--search`), as `search --data` takes it.
    #[arg(long, default_value = "fashion-mnist", requires = "search")]
    data: String,
    /// Run one search at this budget in this process and print its measurement as JSON (used internally).
    #[arg(long, hide = true, requires = "search")]
    probe_search_budget: Option<u64>,
}

/// The table of `--search`: every search's peak beyond the loaded data against its budget.
fn run_searches(args: &BenchMemoryArgs) -> anyhow::Result<()> {
    let data = spidernet::data::load(
        &args.data,
        &Default::default(),
        0,
        spidernet::data::cache_dir().as_deref(),
    )?
    .dataset;
    if let Some(budget) = args.probe_search_budget {
        let row = bench::probe_search(&data, &args.data, budget)?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(());
    }
    let program = std::env::current_exe().context("cannot find this executable to run the probes")?;
    let config = bench::search_probe_config(&args.data, 0);
    println!(
        "search memory, {} ({}x{}x{}), R={} C={}, {} iterations of {} epoch and {} final epoch on {} images, CPU",
        args.data,
        data.shape.channels,
        data.shape.height,
        data.shape.width,
        config.reductions,
        config.channels,
        config.iterations,
        config.train.epochs,
        config.final_train.epochs,
        config.search_samples.unwrap_or_default()
    );
    println!(
        "{:>11} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "budget", "edges", "estimate", "loaded", "training", "scoring", "final", "peak added", "of budget"
    );
    let budgets = bench::search_budgets(&data, &args.data)?;
    let mut worst: Option<bench::SearchMemoryRow> = None;
    bench::compare_search_budgets(
        &program,
        &["bench-memory", "--search", "--data", &args.data],
        &budgets,
        &mut |row| {
            println!(
                "{:>11} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>8.0}%",
                format_size(row.budget),
                row.edges,
                format_size(row.estimate),
                format_size(row.loaded),
                format_size(row.parts.training),
                format_size(row.parts.scoring),
                format_size(row.parts.final_training),
                format_size(row.measured),
                100.0 * row.measured as f64 / row.budget as f64
            );
            let share = |r: &bench::SearchMemoryRow| r.measured as f64 / r.budget as f64;
            if worst.as_ref().is_none_or(|w| share(row) > share(w)) {
                worst = Some(row.clone());
            }
        },
    )?;
    if let Some(worst) = worst {
        println!(
            "worst: {} peak added at a budget of {} ({:+.0}%)",
            format_size(worst.measured),
            format_size(worst.budget),
            100.0 * (worst.measured as f64 / worst.budget as f64 - 1.0)
        );
    }
    Ok(())
}

/// Prints the table, or with `--probe-splits` one measurement.
pub fn run(args: BenchMemoryArgs) -> anyhow::Result<()> {
    if args.search {
        return run_searches(&args);
    }
    if let Some(splits) = args.probe_splits {
        println!("{}", bench::probe(splits, args.batch)?);
        return Ok(());
    }
    let program = std::env::current_exe().context("cannot find this executable to run the probes")?;
    println!(
        "training memory, {}x{}x{} input, R=2, C=16, batch {}, {MEMORY_STEPS} SGD steps, CPU",
        MEMORY_INPUT.channels, MEMORY_INPUT.height, MEMORY_INPUT.width, args.batch
    );
    println!(
        "{:>7} {:>6} {:>10} {:>12} {:>12} {:>7}",
        "splits", "edges", "params", "estimate", "measured", "ratio"
    );
    bench::compare_estimates(&program, &["bench-memory"], args.batch, &mut |row| {
        println!(
            "{:>7} {:>6} {:>10} {:>12} {:>12} {:>7.2}",
            row.splits,
            row.edges,
            row.parameters,
            format_size(row.estimate),
            format_size(row.measured),
            row.estimate as f64 / row.measured as f64
        );
    })
}
