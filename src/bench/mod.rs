//! Fixed, seeded benchmark workloads (docs/PERFORMANCE.md): supernet training and evaluation throughput, scoring
//! one candidate, one search iteration, with peak memory. `bench/twin.py` runs the same workloads in PyTorch.

use crate::data::{self, DataOptions, Split};
use crate::genotype::{Genotype, InputShape};
use crate::init::InitScheme;
use crate::memory_probe::PeakRss;
use crate::metrics::MetricsConfig;
use crate::metrics::candidate::Candidate;
use crate::metrics::score::Scorer;
use crate::pruner::PrunerConfig;
use crate::search::{self, Checkpoint, Profile, RunDir, SearchConfig, SearchObserver};
use crate::supernet::{Mode, Supernet};
use crate::train::{self, TrainConfig, TrainObserver};
use anyhow::Context;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Training batch size of every workload.
pub const BATCH: i64 = 64;
/// Evaluation batch size.
pub const EVAL_BATCH: i64 = 256;
/// Cell whose first edge is the scored candidate of workload (c).
const SCORED_CELL: usize = 1;

/// One workload's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    /// Workload id, e.g. `a-train-initial`.
    pub workload: String,
    /// Always "spidernet" here ("pytorch" for the twin).
    pub side: &'static str,
    /// Unit of the values.
    pub unit: &'static str,
    /// Median over the repeats.
    pub median: f64,
    /// One value per repeat.
    pub values: Vec<f64>,
    /// Trainable parameters of the network, where there is one.
    pub parameters: Option<usize>,
    /// Peak resident memory of the process while the workload ran.
    pub peak_rss_bytes: Option<u64>,
}

/// How long each workload runs.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Timed repeats per workload; medians are over these.
    pub repeats: usize,
    /// Training steps (or evaluation passes) per repeat.
    pub steps: usize,
    /// Candidates scored in workload (c).
    pub score_runs: usize,
    /// Where the networks run.
    pub device: Device,
}

/// Waits for queued GPU work, so that timings cover it; nothing to wait for on the CPU.
fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn measurement(workload: &str, unit: &'static str, values: Vec<f64>) -> Measurement {
    Measurement {
        workload: workload.to_string(),
        side: "spidernet",
        unit,
        median: median(&values),
        values,
        parameters: None,
        peak_rss_bytes: None,
    }
}

/// The minimal genotype of the benchmarks: R=2, C=16, 28×28 grayscale input, 10 classes (9 edges).
pub fn initial_genotype() -> Genotype {
    Genotype::minimal(2, 16, InputShape::new(1, 28, 28), 10).expect("28x28 fits two reductions")
}

/// The minimal genotype grown by seeded random edge splits to at least `edges` edges in all.
pub fn grown_genotype(edges: usize) -> Genotype {
    let mut genotype = initial_genotype();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    while genotype.cells.iter().map(|c| c.edges.len()).sum::<usize>() < edges {
        let cell = rng.random_range(0..genotype.cells.len());
        let target = &mut genotype.cells[cell];
        let id = target.edges[rng.random_range(0..target.edges.len())].id;
        target.split(id).expect("an existing edge can be split");
    }
    genotype
}

/// The candidate of workload (c): splitting the first edge of cell 1 of the minimal genotype.
pub fn scored_candidate() -> (Genotype, u32) {
    let genotype = initial_genotype();
    let edge = genotype.cells[SCORED_CELL].edges[0].id;
    (genotype, edge)
}

/// Writes initial.json, grown.json and candidate.json (the split genotype and its new edges) for the twin.
pub fn write_genotypes(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    initial_genotype().save(&dir.join("initial.json"))?;
    grown_genotype(30).save(&dir.join("grown.json"))?;
    let (genotype, edge) = scored_candidate();
    let candidate = Candidate::split(&genotype, SCORED_CELL, edge)?;
    let text = serde_json::json!({
        "on": serde_json::from_str::<serde_json::Value>(&candidate.on.to_json())?,
        "new_edges": candidate.new_edges,
        "cell": SCORED_CELL,
    })
    .to_string();
    let path = dir.join("candidate.json");
    crate::atomic::write_atomic(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

fn random_batch(genotype: &Genotype, n: i64, seed: i64, device: Device) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let shape = genotype.input;
    let images = Tensor::randn(
        [n, shape.channels as i64, shape.height as i64, shape.width as i64],
        (Kind::Float, Device::Cpu),
    );
    let labels = Tensor::randint(genotype.classes as i64, [n], (Kind::Int64, Device::Cpu));
    (images.to_device(device), labels.to_device(device))
}

fn network(genotype: &Genotype, device: Device) -> Supernet {
    Supernet::new(
        genotype,
        genotype.channels,
        InitScheme::PytorchDefault,
        PrunerConfig::default(),
        device,
        0,
    )
}

/// (a) Training throughput in images/s: the real training step (drop-path, auxiliary towers, gates, SGD) on
/// batches of 64, after 3 warm-up steps; deadheading is off so that the network stays the same.
pub fn training(name: &str, genotype: &Genotype, config: &BenchConfig) -> anyhow::Result<Measurement> {
    let window = PeakRss::start().ok();
    let mut net = network(genotype, config.device);
    let train_config = TrainConfig {
        deadhead: false,
        ..TrainConfig::default()
    };
    let mut optimizer = train::optimizer(&net, &train_config)?;
    let (images, labels) = random_batch(genotype, 4 * BATCH, 1, config.device);
    let mut run = |steps: usize| {
        for i in 0..steps {
            let b = (i % 4) as i64;
            let x = images.narrow(0, b * BATCH, BATCH);
            let y = labels.narrow(0, b * BATCH, BATCH);
            let _ = train::step(&mut net, &mut optimizer, &x, &y, &train_config);
        }
    };
    run(3);
    synchronize(config.device);
    let values = (0..config.repeats)
        .map(|_| {
            let start = Instant::now();
            run(config.steps);
            synchronize(config.device);
            (config.steps as i64 * BATCH) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    let mut result = measurement(&format!("a-train-{name}"), "images/s", values);
    result.parameters = Some(net.parameter_count());
    result.peak_rss_bytes = window.and_then(|w| w.finish().ok()).map(|r| r.peak);
    Ok(result)
}

/// (b) Evaluation throughput in images/s: evaluation-mode forward passes without gradients, batches of 256.
pub fn evaluation(name: &str, genotype: &Genotype, config: &BenchConfig) -> Measurement {
    let net = network(genotype, config.device);
    let (images, _) = random_batch(genotype, EVAL_BATCH, 2, config.device);
    let values = tch::no_grad(|| {
        let _ = net.forward(&images, Mode::eval());
        synchronize(config.device);
        (0..config.repeats)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..config.steps {
                    let _ = net.forward(&images, Mode::eval());
                }
                synchronize(config.device);
                (config.steps as i64 * EVAL_BATCH) as f64 / start.elapsed().as_secs_f64()
            })
            .collect()
    });
    let mut result = measurement(&format!("b-eval-{name}"), "images/s", values);
    result.parameters = Some(net.parameter_count());
    result
}

/// (c) Seconds to score one candidate with the reference's settings (3 repeats; NTK on 3×64 images at width 3,
/// LRC on 3×1,000 crops at width 1), through the search's own scorer.
pub fn scoring(config: &BenchConfig) -> anyhow::Result<Measurement> {
    let (genotype, edge) = scored_candidate();
    let (images, labels) = random_batch(&genotype, 1000, 3, Device::Cpu);
    let split = Split { images, labels };
    let scorer = Scorer::new(&split, MetricsConfig::default(), 0, config.device);
    let mut values = Vec::with_capacity(config.score_runs);
    for _ in 0..config.score_runs.max(1) {
        let start = Instant::now();
        scorer.score_candidate(&genotype, SCORED_CELL, edge)?;
        synchronize(config.device);
        values.push(start.elapsed().as_secs_f64());
    }
    Ok(measurement("c-score-candidate", "s", values))
}

struct Quiet;
impl TrainObserver for Quiet {}
impl SearchObserver for Quiet {}

/// (d) Seconds for one search iteration on Fashion-MNIST (1 epoch on 1,000 images, then the mutation pass with
/// the quick profile's scoring), with the peak memory; None when Fashion-MNIST is not installed.
pub fn search_iteration(config: &BenchConfig, scratch: &Path) -> anyhow::Result<Option<Measurement>> {
    let loaded = match data::load(
        "fashion-mnist",
        &DataOptions::default(),
        0,
        data::cache_dir().as_deref(),
    ) {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::warn!("workload d skipped: {error:#}");
            return Ok(None);
        }
    };
    let mut search_config = SearchConfig::new(Profile::Quick, "fashion-mnist", 2, 16, 0);
    search_config.iterations = 1;
    search_config.premutate = false;
    search_config.final_training = false;
    search_config.search_samples = Some(1000);
    search_config.train.epochs = 1;
    let mut values = Vec::new();
    let window = PeakRss::start().ok();
    for repeat in 0..config.repeats.max(1) {
        let root = scratch.join(format!("search-{repeat}"));
        let _ = std::fs::remove_dir_all(&root);
        let dir = RunDir::create(&root, &search_config)?;
        let genotype = Genotype::minimal(2, 16, loaded.dataset.shape, loaded.dataset.classes)?;
        let start = Instant::now();
        search::run(
            &dir,
            &search_config,
            &loaded.dataset,
            Checkpoint::start(genotype, 0),
            config.device,
            &mut Quiet,
        )?;
        values.push(start.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&root);
    }
    let mut result = measurement("d-search-iteration", "s", values);
    result.peak_rss_bytes = window.and_then(|w| w.finish().ok()).map(|r| r.peak);
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grown_genotype_is_seeded_and_has_about_thirty_edges() {
        let grown = grown_genotype(30);
        let edges: usize = grown.cells.iter().map(|c| c.edges.len()).sum();
        assert!((30..=31).contains(&edges), "{edges} edges");
        assert_eq!(grown, grown_genotype(30));
        assert!(grown.check().is_ok());
        let initial: usize = initial_genotype().cells.iter().map(|c| c.edges.len()).sum();
        assert_eq!(initial, 9);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
