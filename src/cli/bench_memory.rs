//! `spidernet bench-memory`: the memory estimate against the measured peak, one child process per genotype.

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
}

/// Prints the table, or with `--probe-splits` one measurement.
pub fn run(args: BenchMemoryArgs) -> anyhow::Result<()> {
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
