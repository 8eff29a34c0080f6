//! `spidernet train-supernet`: the minimal supernet trained with deadheading, no search.

use super::args::{DataArgs, ShapeArgs, load_data, positive};
use super::progress::Progress;
use anyhow::Context;
use clap::Args;
use spidernet::genotype::OpSet;
use spidernet::supernet::Supernet;
use spidernet::train::{self, TrainConfig};

#[derive(Args)]
pub struct TrainSupernetArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Training epochs.
    #[arg(long, default_value_t = 20, value_parser = positive)]
    epochs: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Trains and prints the last epoch's test accuracy and size.
pub fn run(args: TrainSupernetArgs) -> anyhow::Result<()> {
    let device = args.data.device.device()?;
    let data = load_data(&args.data.data, &args.data.options(), args.seed)?;
    let genotype = data.minimal_genotype(args.shape.reductions, args.shape.channels, OpSet::Published)?;
    let mut net = Supernet::builder(&genotype)
        .width(args.shape.channels)
        .seed(args.seed)
        .device(device)
        .build();
    eprintln!(
        "supernet: {} cells, {} edges, {} live ops, {} parameters",
        genotype.cells.len(),
        genotype.edge_count(),
        genotype.live_op_count(),
        net.parameter_count()
    );
    let config = TrainConfig {
        epochs: args.epochs,
        ..TrainConfig::default()
    };
    let mut progress = Progress::training(args.epochs);
    let reports = train::train_on(&mut net, &data, &config, args.seed, &mut progress)?;
    let last = reports.last().context("no epoch ran")?;
    println!(
        "test accuracy {:.2}% after {} epochs; {} live ops, {} parameters",
        100.0 * last.eval.map_or(f64::NAN, |e| e.accuracy),
        last.epoch,
        last.live_ops,
        last.parameters
    );
    Ok(())
}
