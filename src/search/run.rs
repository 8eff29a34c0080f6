//! One home for a run (docs/SEARCH.md, *The run folder*): a search starts or resumes here, and nowhere else. A
//! [`Run`] holds its folder's lock for as long as it lives, so no second process works on the same folder.

use super::SearchObserver;
use super::budget::Plan;
use super::record::{Checkpoint, IterationRecord, Summary};
use super::run_dir::{NOTHING_TO_RESUME, RunDir};
use super::run_lock::{LockError, RunLock};
use super::settings::SearchConfig;
use crate::data::Dataset;
use crate::distributed;
use crate::genotype::Genotype;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// A search run: its locked folder, the settings it was asked for, the plans a time budget made, and where it
/// stands. In a distributed run, rank 0 holds the run and its folder's lock; every other rank holds a follower's
/// copy of it ([`Run::shared`]).
#[derive(Debug)]
pub struct Run {
    dir: RunDir,
    settings: SearchConfig,
    plans: Vec<Plan>,
    checkpoint: Checkpoint,
    /// The records of the iterations the checkpoint counts.
    history: Vec<IterationRecord>,
    /// The tensors the next phase inherits (`--inherit-weights`), as the checkpoint left them.
    inherited: Option<Vec<(String, Tensor)>>,
    _lock: Option<RunLock>,
}

/// What the other ranks of a distributed run receive of the run rank 0 opened; the inherited tensors follow by
/// broadcast.
#[derive(Serialize, Deserialize)]
struct SharedRun {
    root: PathBuf,
    settings: SearchConfig,
    plans: Vec<Plan>,
    checkpoint: Checkpoint,
    history: Vec<IterationRecord>,
}

impl Run {
    /// Creates the run folder `root` for a new search on `data` with `settings`: records the final training's
    /// augmentation, refuses a memory budget the initial network does not fit, takes the folder's lock, and
    /// writes the first checkpoint and `config.json`. A folder that already holds a run is refused.
    pub fn start(root: &Path, mut settings: SearchConfig, data: &Dataset) -> anyhow::Result<Run> {
        settings.record_final_augmentation(data);
        let genotype = data.minimal_genotype(settings.reductions, settings.channels, settings.op_set)?;
        settings.check_memory_budget(&genotype)?;
        std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        let lock = RunLock::acquire(root)?;
        let checkpoint = Checkpoint::start(genotype, settings.seed);
        let dir = RunDir::create(root, &settings, &checkpoint)?;
        Ok(Run {
            dir,
            settings,
            plans: Vec::new(),
            checkpoint,
            history: Vec::new(),
            inherited: None,
            _lock: Some(lock),
        })
    }

    /// Opens the run folder `root` to continue it: takes its lock, reads its settings, plans and checkpoint,
    /// removes what writes cut short by a crash left behind, and refuses a search whose network no longer fits its
    /// memory budget.
    pub fn resume(root: &Path) -> anyhow::Result<Run> {
        let lock = RunLock::acquire(root).map_err(|error| match error {
            LockError::NoFolder { .. } => anyhow::anyhow!(
                "cannot resume {}: there is no such folder ({NOTHING_TO_RESUME})",
                root.display()
            ),
            other => other.into(),
        })?;
        let (dir, settings, checkpoint) = RunDir::open(root)?;
        dir.remove_stray_temporaries()?;
        if checkpoint.stopped.is_none() {
            settings.check_memory_budget(&checkpoint.genotype)?;
        }
        let plans = dir.plans()?;
        let mut history = dir.history()?;
        history.truncate(checkpoint.completed);
        let inherited = match settings.inherit_weights {
            true => dir.inherited(checkpoint.completed)?,
            false => None,
        };
        Ok(Run {
            dir,
            settings,
            plans,
            checkpoint,
            history,
            inherited,
            _lock: Some(lock),
        })
    }

    /// In a distributed run, the run rank 0 `opened` on every rank: rank 0 keeps its own, and every other rank gets
    /// a follower's copy, whose folder it neither reads nor writes (their `opened` is not read). None where rank 0
    /// opened a run that has nothing left to do; rank 0's error fails every rank. A single process keeps `opened`.
    pub fn shared(opened: anyhow::Result<Option<Run>>, device: Device) -> anyhow::Result<Option<Run>> {
        let group = distributed::group();
        if group.world() == 1 {
            return opened;
        }
        let mine = match &opened {
            Ok(run) => Ok(run.as_ref().map(|run| SharedRun {
                root: run.dir.root().to_path_buf(),
                settings: run.settings.clone(),
                plans: run.plans.clone(),
                checkpoint: run.checkpoint.clone(),
                history: run.history.clone(),
            })),
            Err(_) => Err(anyhow::anyhow!("rank 0 could not open the run")),
        };
        let shared = match group.share_outcome(mine, "to open the run folder") {
            Ok(shared) => shared,
            Err(error) => return Err(opened.err().unwrap_or(error)),
        };
        let Some(shared) = shared else {
            return opened;
        };
        let leader_inherited = opened.as_ref().ok().and_then(|run| {
            let tensors = run.as_ref()?.inherited.as_ref()?;
            Some(
                tensors
                    .iter()
                    .map(|(name, t)| (name.clone(), t.shallow_clone()))
                    .collect(),
            )
        });
        let inherited = group.share_named_tensors(leader_inherited, device)?;
        if group.is_leader() {
            return opened;
        }
        Ok(Some(Run {
            dir: RunDir::follower(&shared.root),
            settings: shared.settings,
            plans: shared.plans,
            checkpoint: shared.checkpoint,
            history: shared.history,
            inherited,
            _lock: None,
        }))
    }

    /// The run folder.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// The settings the run was asked for (`config.json`).
    pub fn settings(&self) -> &SearchConfig {
        &self.settings
    }

    /// The settings the run follows now: those asked for, sized by the last plan.
    pub fn planned_settings(&self) -> SearchConfig {
        self.settings.following(self.plans.last())
    }

    /// The plans its time budget made so far, oldest first.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// Where the run stands: the last committed checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The summary of a run that has nothing left to do; None while a step is left.
    pub fn finished(&self) -> anyhow::Result<Option<Summary>> {
        self.dir.finished(&self.checkpoint)
    }

    /// Runs the search to its end on `data` (the data set its settings name), then the final training unless
    /// disabled; a finished run returns its summary at once.
    pub fn search(
        &mut self,
        data: &Dataset,
        device: Device,
        observer: &mut dyn SearchObserver,
    ) -> anyhow::Result<Summary> {
        if let Some(summary) = self.finished()? {
            observer.stopped(self.checkpoint.stopped.as_deref().unwrap_or_default());
            return Ok(summary);
        }
        let genotype = &self.checkpoint.genotype;
        data.check_fits(genotype)
            .with_context(|| format!("cannot continue {}", self.dir.root().display()))?;
        super::run(self, data, device, observer)
    }

    /// The parts the search loop works on: the folder, the settings asked for, the plans and the checkpoint.
    pub(super) fn parts(&mut self) -> (&RunDir, &SearchConfig, &mut Vec<Plan>, &mut Checkpoint) {
        (&self.dir, &self.settings, &mut self.plans, &mut self.checkpoint)
    }

    /// Hands the search loop the iteration records and inherited tensors it continues from.
    pub(super) fn take_progress(&mut self) -> (Vec<IterationRecord>, Option<Vec<(String, Tensor)>>) {
        (std::mem::take(&mut self.history), self.inherited.take())
    }
}

/// The folder in which `spidernet train --checkpoint` keeps its state after every epoch: the run folder of a
/// search that is over, whose final training is the training asked for. A second process with the same settings
/// and genotype continues where the first stopped; with others it is refused. Holds the folder's lock.
#[derive(Debug)]
pub struct TrainingFolder {
    dir: RunDir,
    _lock: RunLock,
}

/// Why the checkpoint of a training folder says its search is over.
const TRAINING_ONLY: &str = "a training folder: only the final training runs (spidernet train --checkpoint)";

impl TrainingFolder {
    /// Opens the training folder `root` for training `genotype` with `settings`, creating it when it holds none.
    pub fn open(root: &Path, settings: &SearchConfig, genotype: &Genotype) -> anyhow::Result<TrainingFolder> {
        std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        let lock = RunLock::acquire(root)?;
        let dir = match RunDir::read_settings(root)? {
            None => {
                let mut start = Checkpoint::start(genotype.clone(), settings.seed);
                start.stopped = Some(TRAINING_ONLY.to_string());
                RunDir::create(root, settings, &start)?
            }
            Some(_) => {
                let (dir, saved, checkpoint) = RunDir::open(root)?;
                anyhow::ensure!(
                    saved == *settings,
                    "{} holds a training with other settings: continue it with the flags it was started with, or \
                     choose another --checkpoint folder",
                    dir.config_path().display()
                );
                anyhow::ensure!(
                    checkpoint.genotype == *genotype,
                    "{} holds the training of another genotype: choose another --checkpoint folder",
                    dir.checkpoint_path().display()
                );
                dir.remove_stray_temporaries()?;
                dir
            }
        };
        Ok(TrainingFolder { dir, _lock: lock })
    }

    /// The folder, for the final training's checkpoints.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }
}
