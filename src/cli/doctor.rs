//! `spidernet doctor`: what the binary runs on, and whether `--device cuda` can work.

use super::args::DeviceChoice;
use clap::Args;

#[derive(Args)]
pub struct DoctorArgs {
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Exit non-zero unless this device can be used (cuda: libtorch's CUDA backend, a driver and a device).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
    /// Join the distributed group the launcher set up (torchrun, SLURM) and check every collective on known values:
    /// each rank reports its own checks (with --json, one JSON line per rank) and fails if one is wrong.
    #[arg(long)]
    distributed: bool,
}

/// Prints the report; fails with the reason when the asked-for device cannot work.
pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    if args.distributed {
        return check_distributed(args.json);
    }
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

/// One rank's report of `doctor --distributed`.
#[derive(serde::Serialize)]
struct RankReport<'a> {
    launch: &'a spidernet::distributed::Launch,
    checks: &'a [spidernet::distributed::CollectiveCheck],
}

/// Joins the group, runs every collective check, and reports this rank's.
fn check_distributed(json: bool) -> anyhow::Result<()> {
    let group = spidernet::distributed::ProcessGroup::from_env()?;
    let checks = spidernet::distributed::check_collectives(&group)?;
    let launch = group.launch();
    if json {
        // One write per line, so that the ranks' lines do not interleave on a shared stdout.
        let line = serde_json::to_string(&RankReport {
            launch,
            checks: &checks,
        })? + "\n";
        std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes())?;
    } else {
        let mut text = format!(
            "rank {} of {} ({}, store {}):\n",
            launch.rank,
            launch.world,
            launch.launcher,
            launch.store_address()
        );
        for check in &checks {
            text += &format!(
                "  {:<17} {:<9} {:>9} elements  {:>9.3} ms  {}\n",
                check.collective,
                check.kind,
                check.elements,
                check.seconds * 1e3,
                if check.ok { "ok" } else { "WRONG" }
            );
        }
        std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())?;
    }
    let wrong: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} of {} {}", c.collective, c.elements, c.kind))
        .collect();
    anyhow::ensure!(
        wrong.is_empty(),
        "rank {}: wrong results from {}",
        launch.rank,
        wrong.join(", ")
    );
    Ok(())
}
