//! Workload (b): evaluation throughput, batch norms on running statistics, no gradients.

use super::stats::{self, Measurement};
use super::{BenchConfig, inputs};
use crate::genotype::Genotype;
use crate::supernet::{Mode, Supernet};
use crate::system::memory_probe::MemoryWindow;

/// Images/s of evaluation-mode forward passes (every tower, as `train::evaluate` runs them) under `no_grad`, on
/// one random batch of `eval_batch` images, after `warmup` untimed passes.
pub fn evaluation(name: &str, genotype: &Genotype, config: &BenchConfig) -> Measurement {
    let window = MemoryWindow::start(config.device);
    let device = config.device;
    let net = Supernet::builder(genotype).device(device).build();
    let (images, _) = inputs::random_batch(genotype.input, genotype.classes, config.eval_batch, 2, device);
    let seconds = tch::no_grad(|| {
        for _ in 0..config.warmup {
            let _ = net.forward(&images, Mode::eval());
        }
        stats::synchronize(device);
        stats::timed(config.repeats, device, || {
            for _ in 0..config.steps {
                let _ = net.forward(&images, Mode::eval());
            }
        })
    });
    let images_per_second = seconds
        .iter()
        .map(|s| (config.steps * config.eval_batch) as f64 / s)
        .collect();
    let mut result = Measurement::new(&format!("b-eval-{name}"), "images/s", images_per_second, config.threads);
    result.parameters = Some(net.parameter_count());
    result.edges = Some(genotype.edge_count());
    result.batch = Some(config.eval_batch);
    result.with_memory(window)
}
