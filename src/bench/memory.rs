//! `spidernet bench-memory`: the analytic training-memory estimate against the measured peak RSS, on genotypes
//! grown by seeded random splits; and with `--search`, whole short searches at budgets from tight to loose against
//! their budget. Each measurement runs in a process of its own, so that memory one run freed cannot hide the next
//! one's peak.

use super::genotypes::randomly_grown;
use crate::data::Dataset;
use crate::genotype::{Genotype, InputShape};
use crate::memory;
use crate::search::{self, Profile, Run, SearchConfig, SearchObserver};
use crate::supernet::Supernet;
use crate::system::memory_probe::PeakRss;
use crate::train::TrainObserver;
use crate::train::{self, TrainConfig};
use anyhow::Context;
use std::path::Path;
use tch::Device;
use tch::{Kind, Tensor};

/// The benchmark shape: Fashion-MNIST-sized input, R=2, C=16.
pub const MEMORY_INPUT: InputShape = InputShape::new(1, 28, 28);
const REDUCTIONS: usize = 2;
const CHANNELS: usize = 16;
/// SGD steps each probe measures.
pub const MEMORY_STEPS: usize = 3;
/// Splits of the measured genotypes, from the minimal network to a large one.
pub const MEMORY_SPLITS: [usize; 5] = [0, 6, 12, 21, 30];

/// One measured genotype.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryRow {
    /// Seeded random splits applied to the minimal genotype.
    pub splits: usize,
    /// Edges of the genotype.
    pub edges: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// The analytic estimate, bytes.
    pub estimate: u64,
    /// The measured peak RSS added by training, bytes.
    pub measured: u64,
}

/// Measures, in this process, the peak RSS that training the genotype of `splits` splits adds (the probe that
/// [`compare_estimates`] runs in a child process).
pub fn probe(splits: usize, batch: usize) -> anyhow::Result<u64> {
    let genotype = randomly_grown(MEMORY_INPUT, REDUCTIONS, CHANNELS, splits, 0);
    measure_training_peak(&genotype, CHANNELS, batch, MEMORY_STEPS)
}

/// Resident memory added by `steps` SGD training steps of `genotype` at `width` on random batches of `batch`:
/// the peak RSS during the steps minus the RSS before the network was built.
pub fn measure_training_peak(genotype: &Genotype, width: usize, batch: usize, steps: usize) -> anyhow::Result<u64> {
    let window = PeakRss::start()?;
    let mut net = Supernet::builder(genotype).width(width).build();
    let config = TrainConfig::default();
    let mut optimizer = train::optimizer(&net, &config);
    let input = genotype.input;
    for _ in 0..steps {
        let images = Tensor::randn(
            [
                batch as i64,
                input.channels as i64,
                input.height as i64,
                input.width as i64,
            ],
            (Kind::Float, Device::Cpu),
        );
        let labels = Tensor::randint(genotype.classes as i64, [batch as i64], (Kind::Int64, Device::Cpu));
        let _ = train::step(&mut net, &mut optimizer, &images, &labels, &config, config.drop_path)?;
    }
    Ok(window.finish()?.added)
}
/// Runs `program` with `probe_args` and `--batch B --probe-splits N` (a command that prints [`probe`]'s byte count)
/// once per genotype of [`MEMORY_SPLITS`], and sets each measurement beside the estimate; `row` receives each as it
/// is measured.
pub fn compare_estimates(
    program: &Path,
    probe_args: &[&str],
    batch: usize,
    row: &mut dyn FnMut(&MemoryRow),
) -> anyhow::Result<()> {
    for splits in MEMORY_SPLITS {
        let output = std::process::Command::new(program)
            .args(probe_args)
            .args(["--batch", &batch.to_string(), "--probe-splits", &splits.to_string()])
            .output()
            .with_context(|| format!("cannot run the memory probe {}", program.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "memory probe for {splits} splits failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let measured: u64 = text
            .trim()
            .parse()
            .with_context(|| format!("memory probe for {splits} splits printed {text:?}, not a byte count"))?;
        let genotype = randomly_grown(MEMORY_INPUT, REDUCTIONS, CHANNELS, splits, 0);
        row(&MemoryRow {
            splits,
            edges: genotype.edge_count(),
            parameters: genotype.at_width(CHANNELS).parameter_count(),
            estimate: memory::estimate(&genotype, CHANNELS, batch).total(),
            measured,
        });
    }
    Ok(())
}

/// The searches `bench-memory --search` measures: R=2, C=16 on the whole data set given, the quick profile with
/// 3 iterations of one epoch on 2,000 images, then one final epoch on 2,000 images, at `budget` bytes.
pub fn search_probe_config(spec: &str, budget: u64) -> SearchConfig {
    let mut config = SearchConfig::new(Profile::Quick, spec, REDUCTIONS, CHANNELS, 0);
    config.iterations = 3;
    config.train.epochs = 1;
    config.search_samples = Some(SEARCH_PROBE_SAMPLES);
    config.final_samples = Some(SEARCH_PROBE_SAMPLES);
    config.final_train.epochs = 1;
    config.memory_budget = budget;
    config
}

/// Images each phase of a measured search trains on.
const SEARCH_PROBE_SAMPLES: usize = 2000;

/// Budgets `bench-memory --search` tries, as multiples of what the initial network needs: from tight (growth stops
/// at once) to loose (growth is not limited by memory in 3 iterations).
pub const SEARCH_BUDGET_FACTORS: [f64; 5] = [1.1, 1.25, 1.5, 2.0, 4.0];

/// One measured search.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchMemoryRow {
    /// The memory budget, bytes.
    pub budget: u64,
    /// The estimate for the searched network (before any `--final-ops` cut), bytes.
    pub estimate: u64,
    /// Edges of the searched network.
    pub edges: usize,
    /// Resident memory once the data were loaded, bytes.
    pub loaded: u64,
    /// The peak resident memory of the whole search and final training, minus `loaded`, bytes.
    pub measured: u64,
    /// The same peak over the parts of the run: supernet training with its validation, scoring (and the rest of
    /// each mutation pass), and the final training with its test evaluation.
    pub parts: PartPeaks,
}

/// Peak resident memory beyond the loaded data, per part of a search, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartPeaks {
    /// Supernet training, validation included.
    pub training: u64,
    /// Mutation passes: scoring, deadheading, checkpoints.
    pub scoring: u64,
    /// The final training and its test evaluation.
    pub final_training: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Training,
    Scoring,
    FinalTraining,
}

/// Reads and resets the peak resident memory whenever the search moves from one part to the next.
struct PartWatcher {
    loaded: u64,
    window: Option<PeakRss>,
    part: Part,
    epochs_left: usize,
    peaks: PartPeaks,
}

impl PartWatcher {
    fn start(loaded: u64) -> Self {
        PartWatcher {
            loaded,
            window: PeakRss::start().ok(),
            // The mutation pass before any training comes first.
            part: Part::Scoring,
            epochs_left: 0,
            peaks: PartPeaks::default(),
        }
    }

    /// Ends the current part's window, keeping its peak, and opens `next`'s.
    fn switch(&mut self, next: Part) {
        if let Some(reading) = self.window.take().and_then(|window| window.finish().ok()) {
            let peak = reading.peak.saturating_sub(self.loaded);
            let slot = match self.part {
                Part::Training => &mut self.peaks.training,
                Part::Scoring => &mut self.peaks.scoring,
                Part::FinalTraining => &mut self.peaks.final_training,
            };
            *slot = (*slot).max(peak);
        }
        self.window = PeakRss::start().ok();
        self.part = next;
    }
}

impl TrainObserver for PartWatcher {
    fn epoch(&mut self, _report: &crate::train::EpochReport) {
        if self.part == Part::Training {
            self.epochs_left = self.epochs_left.saturating_sub(1);
            if self.epochs_left == 0 {
                self.switch(Part::Scoring);
            }
        }
    }
}

impl SearchObserver for PartWatcher {
    fn phase(&mut self, phase: search::Phase, epochs: usize) {
        match phase {
            search::Phase::Search(_) => {
                self.switch(Part::Training);
                self.epochs_left = epochs;
            }
            search::Phase::Final => self.switch(Part::FinalTraining),
            search::Phase::Premutation => {}
        }
    }
}

/// Runs, in this process, the search of [`search_probe_config`] at `budget` in a scratch folder, and measures its
/// peak resident memory beyond the loaded data (the probe that [`compare_search_budgets`] runs in a child).
pub fn probe_search(data: &Dataset, spec: &str, budget: u64) -> anyhow::Result<SearchMemoryRow> {
    let config = search_probe_config(spec, budget);
    let root = std::env::temp_dir().join(format!("spidernet-bench-memory-{}-{budget}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut run = Run::start(&root, config, data)?;
    // Loading leaves freed blocks in the heap, which training would reuse unseen; the baseline is live data only.
    crate::system::allocator::release_freed_blocks();
    let loaded = PeakRss::start()?.baseline();
    let mut watcher = PartWatcher::start(loaded);
    let searched = run.search(data, Device::Cpu, &mut watcher);
    // Closes the last part's window; every reset of the kernel's peak happens in the watcher.
    watcher.switch(Part::Scoring);
    let parts = watcher.peaks;
    let _ = std::fs::remove_dir_all(&root);
    searched?;
    let searched = &run.checkpoint().genotype;
    Ok(SearchMemoryRow {
        budget,
        estimate: run.settings().memory_of(searched).total(),
        edges: searched.edge_count(),
        loaded,
        measured: parts.training.max(parts.scoring).max(parts.final_training),
        parts,
    })
}

/// The budgets of [`SEARCH_BUDGET_FACTORS`] for `data`, in bytes.
pub fn search_budgets(data: &Dataset, spec: &str) -> anyhow::Result<Vec<u64>> {
    let genotype = Genotype::minimal(REDUCTIONS, CHANNELS, data.shape, data.classes)?;
    let needed = search_probe_config(spec, 0).memory_of(&genotype).total();
    Ok(SEARCH_BUDGET_FACTORS
        .iter()
        .map(|factor| (needed as f64 * factor) as u64)
        .collect())
}

/// Runs `program` with `probe_args` and `--probe-search-budget B` (a command that prints [`probe_search`]'s row as
/// JSON) once per budget, in a process each; `row` receives each as it is measured.
pub fn compare_search_budgets(
    program: &Path,
    probe_args: &[&str],
    budgets: &[u64],
    row: &mut dyn FnMut(&SearchMemoryRow),
) -> anyhow::Result<()> {
    for &budget in budgets {
        let output = std::process::Command::new(program)
            .args(probe_args)
            .args(["--probe-search-budget", &budget.to_string()])
            .output()
            .with_context(|| format!("cannot run the memory probe {}", program.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "the search at a budget of {} failed: {}",
                memory::format_size(budget),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let measured: SearchMemoryRow = serde_json::from_str(text.trim())
            .with_context(|| format!("the search probe printed {text:?}, not a measurement"))?;
        row(&measured);
    }
    Ok(())
}
