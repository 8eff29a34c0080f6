//! `spidernet train`: a genotype trained from scratch, with augmentation, and optionally saved for export.

use super::args::{DataArgs, load_data, positive};
use super::progress::Progress;
use clap::Args;
use spidernet::artifacts::Artifacts;
use spidernet::genotype::Genotype;
use spidernet::supernet::Supernet;
use spidernet::train::{self, TrainConfig};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The architecture to train.
    genotype: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Training epochs.
    #[arg(long, default_value_t = 30, value_parser = positive)]
    epochs: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained network here (genotype.json, weights.safetensors, normalization.json), ready for export.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Trains, prints the test accuracy, and saves the network when asked.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let device = args.data.device.device()?;
    let genotype = Genotype::load(&args.genotype)?;
    let data = load_data(&args.data.data, &args.data.options(), args.seed)?;
    if genotype.input != data.shape || genotype.classes != data.classes {
        anyhow::bail!(
            "{}: the genotype expects {}x{}x{} images in {} classes, but {} has {}x{}x{} in {}",
            args.genotype.display(),
            genotype.input.channels,
            genotype.input.height,
            genotype.input.width,
            genotype.classes,
            data.name,
            data.shape.channels,
            data.shape.height,
            data.shape.width,
            data.classes
        );
    }
    let config = TrainConfig {
        epochs: args.epochs,
        augment: Some(data.augment()),
        ..TrainConfig::default()
    };
    let mut net = Supernet::builder(&genotype).seed(args.seed).device(device).build();
    let mut progress = Progress::training(args.epochs);
    train::train(&mut net, &data.train, None, &config, args.seed, &mut progress)?;
    let evaluation = train::evaluate(&net, &data.test, config.eval_batch_size);
    println!(
        "test accuracy {:.2}% after {} epochs; {} live ops, {} parameters",
        100.0 * evaluation.accuracy,
        args.epochs,
        net.genotype().live_op_count(),
        net.parameter_count()
    );
    if let Some(dir) = &args.out {
        Artifacts::new(dir).save(&net, &data.normalization)?;
        println!("trained network saved in {}", dir.display());
    }
    Ok(())
}
