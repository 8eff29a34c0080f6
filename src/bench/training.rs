//! Workload (a): supernet training throughput, through the real training step.

use super::stats::{self, Measurement};
use super::{BenchConfig, inputs};
use crate::genotype::Genotype;
use crate::supernet::Supernet;
use crate::system::memory_probe::MemoryWindow;
use crate::train::{self, TrainConfig};

/// Distinct batches cycled through, so that no step reuses the previous step's input.
const BATCHES: usize = 4;

/// Images/s of `train::step` (forward with drop-path 0.2 and open gates, the loss with auxiliary towers, backward,
/// gate tracking and clamping, SGD with momentum and weight decay) on random batches, after `warmup` untimed steps.
/// Deadheading is off: it only acts at epoch ends, and the network must stay the same between repeats.
pub fn training(name: &str, genotype: &Genotype, config: &BenchConfig) -> anyhow::Result<Measurement> {
    let window = MemoryWindow::start(config.device);
    let device = config.device;
    let mut net = Supernet::builder(genotype).device(device).build();
    let train_config = TrainConfig {
        batch_size: config.batch,
        deadhead: false,
        ..TrainConfig::default()
    };
    let mut optimizer = train::optimizer(&net, &train_config);
    let batch = config.batch as i64;
    let (images, labels) = inputs::random_batch(genotype.input, genotype.classes, BATCHES * config.batch, 1, device);
    let mut step = 0usize;
    let mut failure = None;
    let mut run = |steps: usize| {
        for _ in 0..steps {
            let offset = (step % BATCHES) as i64 * batch;
            let x = images.narrow(0, offset, batch);
            let y = labels.narrow(0, offset, batch);
            if let Err(error) = train::step(&mut net, &mut optimizer, &x, &y, &train_config, train_config.drop_path) {
                failure.get_or_insert(error);
            }
            step += 1;
        }
    };
    run(config.warmup);
    stats::synchronize(device);
    let seconds = stats::timed(config.repeats, device, || run(config.steps));
    if let Some(error) = failure {
        return Err(error);
    }
    let images_per_second = seconds
        .iter()
        .map(|s| (config.steps * config.batch) as f64 / s)
        .collect();
    let mut result = Measurement::new(
        &format!("a-train-{name}"),
        "images/s",
        images_per_second,
        config.threads,
    );
    result.parameters = Some(net.parameter_count());
    result.edges = Some(genotype.edge_count());
    result.batch = Some(config.batch);
    Ok(result.with_memory(window))
}
