//! `spidernet bench`: the benchmark workloads, as a table or as JSON lines for `bench/table.py`.

use super::args::{DeviceChoice, positive};
use super::choices::MemoryFormatChoice;
use clap::Args;
use spidernet::bench::{self, BenchConfig, Measurement, Workload};
use spidernet::memory::format_size;
use std::path::PathBuf;

#[derive(Args)]
pub struct BenchArgs {
    /// Workloads to run: a (training), b (evaluation), c (scoring one candidate), d (one search iteration), e (each
    /// op alone, forward and backward, at every edge shape; not in the default set); none only writes the files of
    /// --write-genotypes.
    #[arg(long, default_value = "a,b,c,d", value_delimiter = ',')]
    workload: Vec<String>,
    /// Timed repeats per workload; the medians are over these.
    #[arg(long, default_value_t = 5, value_parser = positive)]
    repeats: usize,
    /// Training steps (or evaluation passes) per repeat of a and b.
    #[arg(long, default_value_t = 10, value_parser = positive)]
    steps: usize,
    /// libtorch intra-op threads.
    #[arg(long, default_value_t = 2, value_parser = positive)]
    threads: usize,
    /// Print one JSON object per workload instead of a table.
    #[arg(long)]
    json: bool,
    /// Device the workloads run on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
    /// Feature-map memory format: auto (channels-last on the CPU, NCHW on CUDA), nchw or channels-last.
    #[arg(long, value_enum, default_value = "auto")]
    memory_format: MemoryFormatChoice,
    /// Write the files the PyTorch twin reads (genotypes, bench.json, check tensors) into this folder.
    #[arg(long, value_name = "DIR")]
    write_genotypes: Option<PathBuf>,
    /// Tiny sizes, for tests only.
    #[arg(long, hide = true)]
    quick: bool,
}

/// Runs the chosen workloads and prints each result as it comes.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let workloads = args
        .workload
        .iter()
        .filter(|w| w.as_str() != "none")
        .map(|w| Workload::parse(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let threads = i32::try_from(args.threads).map_err(|_| anyhow::anyhow!("--threads {}: too many", args.threads))?;
    tch::set_num_threads(threads);
    spidernet::nn::blocks::set_memory_format(args.memory_format.into());
    let config = BenchConfig::new(
        args.repeats,
        args.steps,
        args.threads,
        args.quick,
        args.device.device()?,
    );
    if let Some(dir) = &args.write_genotypes {
        bench::write_files(dir, &config)?;
    }
    bench::run(&config, &workloads, &mut |m| print(m, args.json))
}

fn print(m: &Measurement, json: bool) {
    if json {
        println!("{}", serde_json::to_string(m).expect("measurements serialize"));
        if let Some(reason) = &m.skipped {
            eprintln!("workload {} skipped: {reason}", m.workload);
        }
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
}
