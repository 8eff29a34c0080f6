//! What the harness has measured so far, kept in its output folder: one line per candidate and per baseline
//! continuation, each file rewritten whole (atomically) after every measurement, so that a stopped run loses at
//! most the continuation under way.

use super::{CONFIG_FILE, ValidationConfig};
use crate::genotype::Genotype;
use crate::metrics::zero_cost::MetricName;
use crate::system::atomic::{read_if_present, write_atomic, write_atomic_with, write_json};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// A trained state: its genotype (after deadheading) and its tensors by name.
pub type SavedState = (Genotype, Vec<(String, Tensor)>);

/// A state's continuation without any split, for one replicate.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaselineRecord {
    /// The search's seed.
    pub seed: u64,
    /// The state (search iteration).
    pub state: usize,
    /// The continuation's replicate.
    pub replicate: usize,
    /// Validation accuracy after the continuation.
    pub accuracy: f64,
    /// Validation loss after the continuation.
    pub loss: f64,
}

/// One candidate split of one state: every metric's signal, and each replicate's validation accuracy after the
/// continuation with the split.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CandidateRecord {
    /// The search's seed.
    pub seed: u64,
    /// The state (search iteration).
    pub state: usize,
    /// The cell.
    pub cell: usize,
    /// The split edge.
    pub edge: u32,
    /// Per metric, the split's signal (docs/METRICS.md, *Metrics and rules*).
    pub signals: BTreeMap<MetricName, f64>,
    /// The published rule's score among the accepted candidates of its cell (lower is better); None if rejected.
    pub published_score: Option<f64>,
    /// Validation accuracy after each replicate's continuation with the split, in replicate order.
    pub accuracies: Vec<f64>,
    /// Validation loss after each replicate's continuation with the split.
    pub losses: Vec<f64>,
}

impl CandidateRecord {
    /// The decision this candidate belongs to: (seed, state, cell).
    pub fn decision(&self) -> (u64, usize, usize) {
        (self.seed, self.state, self.cell)
    }
}

/// Everything measured so far, and where it is kept.
pub struct Records {
    folder: PathBuf,
    /// The candidates measured so far (some may lack replicates).
    pub candidates: Vec<CandidateRecord>,
    /// The baseline continuations measured so far.
    pub baselines: Vec<BaselineRecord>,
}

const CANDIDATES_FILE: &str = "candidates.jsonl";
const BASELINES_FILE: &str = "baselines.jsonl";

fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let Some(text) = read_if_present(path)? else {
        return Ok(Vec::new());
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {} is not a harness record", path.display(), i + 1))
        })
        .collect()
}

fn write_lines<T: serde::Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

impl Records {
    /// The settings `folder` was started with.
    pub fn saved_config(folder: &Path) -> anyhow::Result<ValidationConfig> {
        let path = folder.join(CONFIG_FILE);
        let text = read_if_present(&path)?
            .ok_or_else(|| anyhow::anyhow!("{} is not a harness folder: it has no {CONFIG_FILE}", folder.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a harness configuration", path.display()))
    }

    /// The records of `folder` (created if needed), which must have been started with `config`.
    pub fn open(folder: &Path, config: &ValidationConfig) -> anyhow::Result<Records> {
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
        let config_path = folder.join(CONFIG_FILE);
        match read_if_present(&config_path)? {
            Some(text) => {
                let saved: ValidationConfig = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a harness configuration", config_path.display()))?;
                anyhow::ensure!(
                    &saved == config,
                    "{} was started with other settings ({}); continue it with the same ones or use another folder",
                    folder.display(),
                    config_path.display()
                );
            }
            None => write_json(&config_path, config)?,
        }
        Ok(Records {
            folder: folder.to_path_buf(),
            candidates: read_lines(&folder.join(CANDIDATES_FILE))?,
            baselines: read_lines(&folder.join(BASELINES_FILE))?,
        })
    }

    /// The files that keep state `state` of `seed`'s search: its genotype and its trained tensors.
    fn state_files(&self, seed: u64, state: usize) -> (PathBuf, PathBuf) {
        let stem = self.folder.join("states").join(format!("seed{seed}-state{state}"));
        (stem.with_extension("genotype.json"), stem.with_extension("safetensors"))
    }

    /// A state saved by an earlier run: its genotype and trained tensors, so that a restart need not train it again.
    pub fn saved_state(&self, seed: u64, state: usize) -> anyhow::Result<Option<SavedState>> {
        let (genotype_file, tensors_file) = self.state_files(seed, state);
        if !genotype_file.exists() || !tensors_file.exists() {
            return Ok(None);
        }
        let genotype = Genotype::load(&genotype_file)?;
        let tensors = Tensor::read_safetensors(&tensors_file)
            .with_context(|| format!("cannot read the saved state {}", tensors_file.display()))?;
        Ok(Some((genotype, tensors)))
    }

    /// Keeps a trained state (tensors first, so that a genotype file means both are complete).
    pub fn save_state(
        &self,
        seed: u64,
        state: usize,
        genotype: &Genotype,
        tensors: &[(String, Tensor)],
    ) -> anyhow::Result<()> {
        let (genotype_file, tensors_file) = self.state_files(seed, state);
        let folder = genotype_file.parent().expect("the states folder");
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
        write_atomic_with(&tensors_file, |temp| {
            Tensor::write_safetensors(tensors, temp).map_err(|error| std::io::Error::other(error.to_string()))
        })
        .with_context(|| format!("cannot write {}", tensors_file.display()))?;
        write_atomic(&genotype_file, genotype.to_json().as_bytes())
            .with_context(|| format!("cannot write {}", genotype_file.display()))
    }

    /// The baseline of (`seed`, `state`, `replicate`), if measured.
    pub fn baseline(&self, seed: u64, state: usize, replicate: usize) -> Option<&BaselineRecord> {
        self.baselines
            .iter()
            .find(|b| (b.seed, b.state, b.replicate) == (seed, state, replicate))
    }

    /// The candidate (`seed`, `state`, `cell`, `edge`), if scored.
    pub fn candidate(&self, seed: u64, state: usize, cell: usize, edge: u32) -> Option<&CandidateRecord> {
        self.candidates
            .iter()
            .find(|c| (c.seed, c.state, c.cell, c.edge) == (seed, state, cell, edge))
    }

    /// Adds a baseline and saves.
    pub fn add_baseline(&mut self, record: BaselineRecord) -> anyhow::Result<()> {
        self.baselines.push(record);
        write_lines(&self.folder.join(BASELINES_FILE), &self.baselines)
    }

    /// Adds or replaces a candidate and saves.
    pub fn put_candidate(&mut self, record: CandidateRecord) -> anyhow::Result<()> {
        let key = (record.seed, record.state, record.cell, record.edge);
        match self
            .candidates
            .iter_mut()
            .find(|c| (c.seed, c.state, c.cell, c.edge) == key)
        {
            Some(existing) => *existing = record,
            None => self.candidates.push(record),
        }
        write_lines(&self.folder.join(CANDIDATES_FILE), &self.candidates)
    }

    /// Per candidate with every replicate, its gains (accuracy with the split minus the baseline's, per replicate),
    /// with the candidate; candidates whose state lacks a baseline are left out.
    pub fn gains(&self, replicates: usize) -> Vec<(&CandidateRecord, Vec<f64>)> {
        self.candidates
            .iter()
            .filter(|c| c.accuracies.len() >= replicates)
            .filter_map(|c| {
                let gains = (0..replicates)
                    .map(|r| Some(c.accuracies[r] - self.baseline(c.seed, c.state, r)?.accuracy))
                    .collect::<Option<Vec<f64>>>()?;
                Some((c, gains))
            })
            .collect()
    }
}
