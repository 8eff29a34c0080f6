//! `spidernet report`: the HTML report of a run folder, optionally against a second run.

use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
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

/// Writes the report (and the charts) and says where.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args.out.unwrap_or_else(|| args.run.join("report.html"));
    spidernet::report::write_report(&args.run, args.compare.as_deref(), &out, args.charts.as_deref())?;
    println!("report written to {}", out.display());
    if let Some(dir) = &args.charts {
        println!("charts written to {}", dir.display());
    }
    Ok(())
}
