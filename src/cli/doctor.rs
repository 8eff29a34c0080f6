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
}

/// Prints the report; fails with the reason when the asked-for device cannot work.
pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
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
