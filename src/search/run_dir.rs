//! The run folder: config, genotype, history, checkpoint, weights and summary, all written atomically.

use super::FOUND_GENOTYPE_FILE;
use super::budget::Plan;
use super::record::{Checkpoint, FINAL_CHECKPOINT_FORMAT, FinalCheckpoint, IterationRecord, Summary};
use super::settings::SearchConfig;
use crate::artifacts;
use crate::genotype::Genotype;
use crate::system::atomic::{write_atomic, write_json};
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The prefix of a final-training tensors file's names.
const FINAL_TENSORS_PREFIX: &str = "final-epoch-";
/// The prefix of an inherited-tensors file's names.
const INHERITED_TENSORS_PREFIX: &str = "inherited-";

/// A final-training checkpoint and its tensors, by name.
pub type SavedFinalTraining = (FinalCheckpoint, Vec<(String, Tensor)>);

/// Why a folder without `config.json` cannot be resumed, and what to do instead.
pub const NOTHING_TO_RESUME: &str =
    "a search stopped before it wrote config.json has nothing to resume: start it again with the same command";

/// Paths of one run. In a distributed run only rank 0 writes the folder: the other ranks hold a follower's
/// `RunDir` (`RunDir::follower`), whose writes do nothing and whose reads of the loop (`summary`, `final_state`)
/// find nothing; what they continue from, rank 0 sends.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
    writes: bool,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))
}

/// Writes `items` to `path` atomically, one JSON object per line.
fn write_lines<T: Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// The objects of a JSON-lines text, one per non-blank line.
pub(super) fn parse_lines<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<Vec<T>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| serde_json::from_str(line).with_context(|| format!("line {} is corrupt", n + 1)))
        .collect()
}

impl RunDir {
    /// Creates a new run folder whose checkpoint is `start`; refuses one that already holds a run. `config.json`
    /// comes last, so that a folder that has one can always be resumed.
    pub fn create(root: &Path, config: &SearchConfig, start: &Checkpoint) -> anyhow::Result<RunDir> {
        let dir = RunDir {
            root: root.to_path_buf(),
            writes: true,
        };
        if dir.config_path().exists() {
            bail!(
                "{} already holds a run; resume it with --resume {} or choose another --out",
                root.display(),
                root.display()
            );
        }
        std::fs::create_dir_all(dir.checkpoint_dir()).with_context(|| format!("cannot create {}", root.display()))?;
        // A search killed while creating this folder may have left the temporary of its first checkpoint.
        dir.remove_stray_temporaries()?;
        dir.commit(&[], start)?;
        write_json(&dir.config_path(), config)?;
        Ok(dir)
    }

    /// Opens an existing run folder for resuming.
    pub fn open(root: &Path) -> anyhow::Result<(RunDir, SearchConfig, Checkpoint)> {
        let dir = RunDir {
            root: root.to_path_buf(),
            writes: true,
        };
        if !dir.config_path().exists() {
            bail!(
                "{} is not a run folder: it has no config.json ({NOTHING_TO_RESUME})",
                root.display()
            );
        }
        let config: SearchConfig = read_json(&dir.config_path())?;
        let checkpoint: Checkpoint = read_json(&dir.checkpoint_path())?;
        checkpoint
            .check()
            .with_context(|| dir.checkpoint_path().display().to_string())?;
        let g = &checkpoint.genotype;
        if checkpoint.seed != config.seed || g.reductions != config.reductions || g.channels != config.channels {
            bail!(
                "{} does not match {}: seed {} / reductions {} / channels {} against seed {} / reductions {} / channels {}",
                dir.checkpoint_path().display(),
                dir.config_path().display(),
                checkpoint.seed,
                g.reductions,
                g.channels,
                config.seed,
                config.reductions,
                config.channels
            );
        }
        Ok((dir, config, checkpoint))
    }

    /// The settings of the run in `root`, read without opening it for resuming; None when the folder has no
    /// `config.json` (a `train --out` folder).
    pub fn read_settings(root: &Path) -> anyhow::Result<Option<SearchConfig>> {
        let dir = RunDir {
            root: root.to_path_buf(),
            writes: true,
        };
        let path = dir.config_path();
        path.exists().then(|| read_json(&path)).transpose()
    }

    /// The folder of rank 0's run, as a rank other than 0 knows it: it writes nothing there and reads nothing
    /// (what it continues from, rank 0 sends).
    pub fn follower(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
            writes: false,
        }
    }

    /// Whether this process writes the folder: false on a follower.
    pub fn writes(&self) -> bool {
        self.writes
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// `genotype.json`: the current (or final) architecture.
    pub fn genotype_path(&self) -> PathBuf {
        self.root.join(artifacts::GENOTYPE_FILE)
    }

    /// `history.jsonl`: one record per iteration.
    pub fn history_path(&self) -> PathBuf {
        self.root.join("history.jsonl")
    }

    /// `checkpoint/`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// `checkpoint/state.json`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint_dir().join("state.json")
    }

    /// `checkpoint/final.json`: the final training's state after its last finished epoch.
    pub fn final_checkpoint_path(&self) -> PathBuf {
        self.checkpoint_dir().join("final.json")
    }

    /// `weights.safetensors`: the final network.
    pub fn weights_path(&self) -> PathBuf {
        self.root.join(artifacts::WEIGHTS_FILE)
    }

    /// `summary.json`.
    pub fn summary_path(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// The history records written so far.
    pub fn history(&self) -> anyhow::Result<Vec<IterationRecord>> {
        let path = self.history_path();
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        parse_lines(&text).with_context(|| path.display().to_string())
    }

    /// Records an iteration: history (rewritten whole, so a crash never leaves half a line), genotype, then the
    /// checkpoint that makes it count.
    pub fn commit(&self, history: &[IterationRecord], checkpoint: &Checkpoint) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        self.save_history(history)?;
        self.save_genotype(&checkpoint.genotype)?;
        write_json(&self.checkpoint_path(), checkpoint)
    }

    /// Rewrites `history.jsonl` whole.
    pub fn save_history(&self, history: &[IterationRecord]) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        write_lines(&self.history_path(), history)
    }

    /// `plans.jsonl`: a time budget's plans, one per line, oldest first.
    pub fn plans_path(&self) -> PathBuf {
        self.root.join("plans.jsonl")
    }

    /// The plans made so far. A folder written before plans had a file of their own keeps them in `config.json`'s
    /// `plans`, whose settings already follow the last.
    pub fn plans(&self) -> anyhow::Result<Vec<Plan>> {
        let path = self.plans_path();
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            return Plan::parse_plans(&text).with_context(|| path.display().to_string());
        }
        #[derive(serde::Deserialize)]
        struct EarlierConfig {
            #[serde(default)]
            plans: Vec<Plan>,
        }
        let earlier: EarlierConfig = read_json(&self.config_path())?;
        Ok(earlier.plans)
    }

    /// Rewrites `plans.jsonl` whole.
    pub fn save_plans(&self, plans: &[Plan]) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        write_lines(&self.plans_path(), plans)
    }

    /// Writes `genotype.json`.
    pub fn save_genotype(&self, genotype: &Genotype) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        genotype
            .save(&self.genotype_path())
            .with_context(|| format!("cannot write {}", self.genotype_path().display()))
    }

    /// `summary.json`, once the run has finished.
    pub fn summary(&self) -> anyhow::Result<Option<Summary>> {
        if !self.writes {
            return Ok(None);
        }
        let path = self.summary_path();
        path.exists().then(|| read_json(&path)).transpose()
    }

    /// The summary of a run that has nothing left to do: its loop stopped and its summary, written last, is there.
    /// None while a step is left (an interrupted final training included).
    pub fn finished(&self, checkpoint: &Checkpoint) -> anyhow::Result<Option<Summary>> {
        if checkpoint.stopped.is_none() {
            return Ok(None);
        }
        self.summary()
    }

    /// Records a finished final-training epoch: its tensors into `checkpoint/final-epoch-<n>.safetensors`, then
    /// `final.json`, which names that file and makes the epoch count; then removes the previous epoch's tensors.
    /// A crash at any point leaves the last recorded epoch whole.
    pub fn commit_final(&self, state: &mut FinalCheckpoint, tensors: &[(String, Tensor)]) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        state.tensors = format!("{FINAL_TENSORS_PREFIX}{}.safetensors", state.epochs_done());
        artifacts::write_tensors(&self.checkpoint_dir().join(&state.tensors), tensors)?;
        write_json(&self.final_checkpoint_path(), state)?;
        self.remove_final_tensors(Some(&state.tensors))
    }

    /// The final training's last recorded epoch and its tensors, if a final training was interrupted; an error
    /// when the files are there but unreadable or belong to another run.
    pub fn final_checkpoint(&self, seed: u64) -> anyhow::Result<Option<SavedFinalTraining>> {
        let Some(state) = self.final_state()? else {
            return Ok(None);
        };
        let path = self.final_checkpoint_path();
        if state.format != FINAL_CHECKPOINT_FORMAT {
            bail!(
                "{}: final-training checkpoint format {} is not the supported {}",
                path.display(),
                state.format,
                FINAL_CHECKPOINT_FORMAT
            );
        }
        if state.seed != seed {
            bail!(
                "{} belongs to seed {}, but the run's config says seed {}",
                path.display(),
                state.seed,
                seed
            );
        }
        state
            .genotype
            .check()
            .with_context(|| format!("{}: the genotype is invalid", path.display()))?;
        let tensors_path = self.checkpoint_dir().join(&state.tensors);
        let tensors = Tensor::read_safetensors(&tensors_path)
            .with_context(|| format!("cannot read {} (named by {})", tensors_path.display(), path.display()))?;
        Ok(Some((state, tensors)))
    }

    /// `final.json` alone (no tensors), if a final training was interrupted.
    pub fn final_state(&self) -> anyhow::Result<Option<FinalCheckpoint>> {
        if !self.writes {
            return Ok(None);
        }
        let path = self.final_checkpoint_path();
        path.exists().then(|| read_json(&path)).transpose()
    }

    /// Removes the final training's checkpoint and the inherited tensors once the run's result is saved.
    pub fn remove_final_checkpoint(&self) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        let path = self.final_checkpoint_path();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("cannot remove {}", path.display())),
        }
        self.remove_tensor_files(INHERITED_TENSORS_PREFIX, None)?;
        self.remove_final_tensors(None)
    }

    /// Removes every final-training tensors file but `keep`.
    fn remove_final_tensors(&self, keep: Option<&str>) -> anyhow::Result<()> {
        self.remove_tensor_files(FINAL_TENSORS_PREFIX, keep)
    }

    /// `checkpoint/inherited-<completed>.safetensors`: the tensors the next phase inherits after `completed`
    /// recorded iterations (`--inherit-weights`).
    fn inherited_path(&self, completed: usize) -> PathBuf {
        self.checkpoint_dir()
            .join(format!("{INHERITED_TENSORS_PREFIX}{completed}.safetensors"))
    }

    /// Writes the tensors the next phase inherits after `completed` iterations; call before the commit that
    /// records them, and `forget_older_inherited` after it.
    pub fn save_inherited(&self, completed: usize, tensors: &[(String, Tensor)]) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        artifacts::write_tensors(&self.inherited_path(completed), tensors)
    }

    /// The tensors saved after `completed` iterations, if there are any.
    pub fn inherited(&self, completed: usize) -> anyhow::Result<Option<Vec<(String, Tensor)>>> {
        let path = self.inherited_path(completed);
        if !path.exists() {
            return Ok(None);
        }
        let tensors = Tensor::read_safetensors(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Some(tensors))
    }

    /// Removes the inherited tensors of every step but `completed`.
    pub fn forget_older_inherited(&self, completed: usize) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        let keep = self.inherited_path(completed);
        let keep = keep.file_name().and_then(|name| name.to_str());
        self.remove_tensor_files(INHERITED_TENSORS_PREFIX, keep)
    }

    /// Removes every file of `checkpoint/` whose name starts with `prefix`, but `keep`.
    fn remove_tensor_files(&self, prefix: &str, keep: Option<&str>) -> anyhow::Result<()> {
        let dir = self.checkpoint_dir();
        let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Leftover temporary files of an interrupted write (".<prefix>…") go too.
            if name.trim_start_matches('.').starts_with(prefix) && Some(name.as_str()) != keep {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// Removes the temporary files that writes cut short by a crash left in the folder and its `checkpoint/`; call
    /// only while holding the folder's lock, since a running search's writes look the same.
    pub fn remove_stray_temporaries(&self) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        for dir in [self.root.clone(), self.checkpoint_dir()] {
            let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                if crate::system::atomic::is_temporary(&entry.file_name()) {
                    std::fs::remove_file(entry.path())
                        .with_context(|| format!("cannot remove {}", entry.path().display()))?;
                }
            }
        }
        Ok(())
    }

    /// Writes `found-genotype.json`: the network the final training trains.
    pub fn save_found_genotype(&self, found: &Genotype) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        let path = self.root.join(FOUND_GENOTYPE_FILE);
        found
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Writes `summary.json`.
    pub fn save_summary(&self, summary: &Summary) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        write_json(&self.summary_path(), summary)
    }
}
