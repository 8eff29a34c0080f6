//! One home for a run (docs/SEARCH.md, *The run folder*): a search starts or resumes here, and nowhere else. A
//! [`Run`] holds its folder's lock for as long as it lives, so no second process works on the same folder.

use super::SearchObserver;
use super::budget::Plan;
use super::record::{Checkpoint, Summary};
use super::run_dir::{NOTHING_TO_RESUME, RunDir};
use super::run_lock::{LockError, RunLock};
use super::settings::SearchConfig;
use crate::data::Dataset;
use anyhow::Context;
use std::path::Path;
use tch::Device;

/// A search run: its locked folder, the settings it was asked for, the plans a time budget made, and where it
/// stands.
#[derive(Debug)]
pub struct Run {
    dir: RunDir,
    settings: SearchConfig,
    plans: Vec<Plan>,
    checkpoint: Checkpoint,
    _lock: RunLock,
}

impl Run {
    /// Creates the run folder `root` for a new search on `data` with `settings`: records the final training's
    /// augmentation, refuses a memory budget the initial network does not fit, takes the folder's lock, and
    /// writes the first checkpoint and `config.json`. A folder that already holds a run is refused.
    pub fn start(root: &Path, mut settings: SearchConfig, data: &Dataset) -> anyhow::Result<Run> {
        settings.record_final_augmentation(data);
        let genotype = data.minimal_genotype(settings.reductions, settings.channels)?;
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
            _lock: lock,
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
        Ok(Run {
            dir,
            settings,
            plans,
            checkpoint,
            _lock: lock,
        })
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
}
