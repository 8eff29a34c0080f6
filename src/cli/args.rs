//! Arguments several subcommands share, their parsers, and the steps every command starts with: the device, the
//! data and the minimal genotype.

use clap::{Args, ValueEnum};
use spidernet::data::{self, DataOptions, Dataset};

/// A count that must be at least 1 (epochs, repeats, samples, …).
pub fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a whole number".into()),
    }
}

/// The ops per edge that `--final-ops K` keeps, `default` when the flag is absent: none (every op) for a K of at
/// least the number of ops there are.
pub fn final_ops(flag: Option<usize>, default: Option<usize>) -> Option<usize> {
    match flag {
        Some(keep) if keep >= spidernet::genotype::Op::ALL.len() => None,
        Some(keep) => Some(keep),
        None => default,
    }
}

/// Parses `32` or `28x32` (height x width) into (height, width).
pub fn parse_image_size(text: &str) -> Result<(usize, usize), String> {
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

/// Where the networks run.
#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
}

impl DeviceChoice {
    /// The device, or why `cuda` cannot work here.
    pub fn device(self) -> anyhow::Result<tch::Device> {
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda => spidernet::doctor::cuda_device(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum FlipChoice {
    Auto,
    On,
    Off,
}

/// The data set and how it is read.
#[derive(Args)]
pub struct DataArgs {
    /// Data set: digits (embedded), fashion-mnist[:DIR] (default DIR /usr/share/datasets/fashion-mnist), idx:DIR,
    /// cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR or folder:DIR (one subfolder of PNG/JPEG images per class).
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Resize the images of a folder: data set to SIZE or HEIGHTxWIDTH pixels.
    #[arg(long, value_name = "SIZE", value_parser = parse_image_size)]
    image_size: Option<(usize, usize)>,
    /// Horizontal flips in augmentation: auto (on unless the data are digits or characters), on or off.
    #[arg(long, value_enum, default_value = "auto")]
    flip: FlipChoice,
    /// Device to train on.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceChoice,
}

impl DataArgs {
    /// The loading options these flags ask for.
    pub fn options(&self) -> DataOptions {
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

/// The two SpiderNet knobs.
#[derive(Args)]
pub struct ShapeArgs {
    /// Reduction cells R (the network has R+1 cells).
    #[arg(long, default_value_t = 2)]
    pub reductions: usize,
    /// Channels C of the first cell (doubling per reduction).
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
}

/// The data a command reads for a run: the flags where given, else the run's own (`--data`, its data options and
/// its seed), else the digits with seed 0. A `--data` other than the run's drops the run's data options.
pub fn data_of_run(
    data: Option<&str>,
    image_size: Option<(usize, usize)>,
    seed: Option<u64>,
    settings: Option<&spidernet::search::SearchConfig>,
) -> (String, DataOptions, u64) {
    let spec = (data.map(str::to_string))
        .or_else(|| settings.map(|s| s.data.clone()))
        .unwrap_or_else(|| "digits".to_string());
    let mut options = match (data, settings) {
        (None, Some(settings)) => settings.data_options.clone(),
        _ => DataOptions::default(),
    };
    options.image_size = image_size.or(options.image_size);
    (spec, options, seed.or(settings.map(|s| s.seed)).unwrap_or(0))
}

/// Loads `spec` and prints its summary and how long it took to stderr (rank 0 only, in a distributed run).
pub fn load_data(spec: &str, options: &DataOptions, seed: u64) -> anyhow::Result<Dataset> {
    let loaded = data::load(spec, options, seed, data::cache_dir().as_deref())?;
    // In a distributed run, rank 0 speaks for all.
    if !spidernet::distributed::group().is_leader() {
        return Ok(loaded.dataset);
    }
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

/// Prints to stdout; a reader that stops early (`| head`) is not an error.
pub fn print_ignoring_closed_pipe(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
