//! Workload (d): one iteration of the real search loop on a Fashion-MNIST subset.

use super::BenchConfig;
use super::stats::{self, Measurement, median};
use crate::data::{self, DataOptions, FASHION_MNIST_DIR};
use crate::metrics::CandidateReport;
use crate::search::{Profile, Run, SearchConfig, SearchObserver};
use crate::system::memory_probe::MemoryWindow;
use crate::train::TrainObserver;
use std::path::Path;
use std::time::Instant;

/// Counts the candidates the mutation pass scores.
#[derive(Default)]
struct Candidates(usize);

impl TrainObserver for Candidates {}

impl SearchObserver for Candidates {
    fn candidate(&mut self, _report: &CandidateReport) {
        self.0 += 1;
    }
}

/// The search settings of the workload: the default (quick) profile's scoring, R=2, C=16, seed 0, no pre-training
/// mutation pass, one iteration of one epoch on `search_samples` training images, no final training.
fn search_config(config: &BenchConfig) -> SearchConfig {
    let mut search = SearchConfig::new(Profile::Quick, "fashion-mnist", 2, 16, 0);
    search.iterations = 1;
    search.premutate = false;
    search.final_training = false;
    search.search_samples = Some(config.search_samples);
    search.train.epochs = 1;
    if config.quick {
        search.metrics = config.metrics.clone();
    }
    search
}

/// Seconds of `Run::search` for one iteration: a fresh supernet trained one epoch (with validation on the held-out
/// 10 %, 6,000 images, and deadheading), then the mutation pass over the three cells, run folder writes included.
/// Data loading is outside the timing. Skipped, with the reason, when Fashion-MNIST is not installed.
pub fn search_iteration(config: &BenchConfig, scratch: &Path) -> anyhow::Result<Measurement> {
    const NAME: &str = "d-search-iteration";
    if !Path::new(FASHION_MNIST_DIR).is_dir() {
        return Ok(Measurement {
            workload: NAME.to_string(),
            side: "spidernet",
            unit: "s",
            threads: config.threads,
            skipped: Some(format!(
                "Fashion-MNIST is not installed in {FASHION_MNIST_DIR} (Debian: apt-get install dataset-fashion-mnist)"
            )),
            ..Default::default()
        });
    }
    let loaded = data::load(
        "fashion-mnist",
        &DataOptions::default(),
        0,
        data::cache_dir().as_deref(),
    )?;
    let dataset = &loaded.dataset;
    let search_config = search_config(config);
    let window = MemoryWindow::start(config.device);
    let (mut seconds, mut training, mut scoring, mut candidates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for repeat in 0..config.repeats {
        let root = scratch.join(format!("search-{repeat}"));
        let _ = std::fs::remove_dir_all(&root);
        let mut run = Run::start(&root, search_config.clone(), dataset)?;
        let mut observer = Candidates::default();
        let start = Instant::now();
        let summary = run.search(dataset, config.device, &mut observer)?;
        stats::synchronize(config.device);
        seconds.push(start.elapsed().as_secs_f64());
        training.push(summary.search_training_seconds);
        scoring.push(summary.search_scoring_seconds);
        candidates.push(observer.0 as f64);
        let _ = std::fs::remove_dir_all(&root);
    }
    let mut result = Measurement::new(NAME, "s", seconds, config.threads);
    result.batch = Some(search_config.train.batch_size);
    result.edges = Some(9);
    result.details = [
        ("training_s", median(&training)),
        ("scoring_s", median(&scoring)),
        ("candidates", median(&candidates)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(result.with_memory(window))
}
