//! What the search loop carries from one phase to the next: the run's folder, checkpoint and history, the settings
//! it follows, its data splits, the tensors a phase inherits, and its pace. The pace is fixed (the settings asked
//! for) or timed: then a planner hooks in once per phase, and each plan it makes is followed from then on and
//! recorded in `plans.jsonl` with the next commit.

use super::SearchObserver;
use super::budget::Plan;
use super::discretize::{self, Discretized};
use super::final_training::{Deadline, Schedule};
use super::iteration::{SearchData, grows_nothing, search_data, update_stop};
use super::planning::{Planner, RunClock, SplitSizes};
use super::record::{Checkpoint, IterationRecord};
use super::run::Run;
use super::run_dir::RunDir;
use super::settings::SearchConfig;
use crate::data::Dataset;
use crate::distributed;
use crate::genotype::Genotype;
use crate::system::hash::stable_hash;
use tch::{Device, Tensor};

/// The loop's state over one process's part of a run.
pub(super) struct Loop<'a> {
    /// The run folder.
    pub dir: &'a RunDir,
    asked: &'a SearchConfig,
    plans: &'a mut Vec<Plan>,
    /// Where the run stands.
    pub checkpoint: &'a mut Checkpoint,
    /// The records of the iterations done.
    pub history: Vec<IterationRecord>,
    /// The settings followed now: those asked for, sized by the last plan.
    pub settings: SearchConfig,
    /// The images the search phases train and validate on.
    pub splits: SearchData,
    /// The tensors the next phase starts from (`--inherit-weights`).
    pub inherited: Option<Vec<(String, Tensor)>>,
    data: &'a Dataset,
    sizes: SplitSizes,
    planner: Option<Planner>,
    clock: RunClock,
}

impl<'a> Loop<'a> {
    /// The loop's state where `run` stands, on `data`.
    pub fn open(run: &'a mut Run, data: &'a Dataset) -> anyhow::Result<Loop<'a>> {
        let (history, inherited) = run.take_progress();
        let (dir, asked, plans, checkpoint) = run.parts();
        let clock = RunClock::start(checkpoint.elapsed_seconds);
        let settings = asked.following(plans.last());
        let splits = search_data(data, &settings);
        let sizes = SplitSizes {
            search_available: data.train.len() - splits.validation.len(),
            validation: splits.validation.len(),
            final_available: data.train.len(),
        };
        let planner = Planner::new(&settings, clock, &history, plans);
        Ok(Loop {
            dir,
            asked,
            plans,
            checkpoint,
            history,
            settings,
            splits,
            inherited,
            data,
            sizes,
            planner,
            clock,
        })
    }

    /// Before the first iteration: a timed run measures its network and, without the mutation pass before
    /// training, makes its first plan; a search that can grow nothing ends at once.
    pub fn begin(&mut self, device: Device, observer: &mut dyn SearchObserver) -> anyhow::Result<()> {
        if let Some(planner) = self.planner.as_mut().filter(|p| p.needs_probe()) {
            planner.probe(
                &self.checkpoint.genotype,
                &self.settings,
                &self.splits.search_train,
                device,
            )?;
        }
        if self.checkpoint.stopped.is_none()
            && let Some(reason) = grows_nothing(&self.settings)
        {
            self.checkpoint.stopped = Some(reason);
            self.commit()?;
        }
        let unplanned = self.plans.is_empty() && !self.settings.premutate && self.checkpoint.stopped.is_none();
        if let Some(planner) = self.planner.as_mut().filter(|_| unplanned) {
            let plan = planner.at_start(&self.settings, self.plans, self.sizes);
            self.follow(plan, observer)?;
        }
        Ok(())
    }

    /// The number of the next iteration: 0 is the mutation pass before any training.
    pub fn next_iteration(&self) -> usize {
        match self.history.last() {
            Some(last) => last.iteration + 1,
            None if self.settings.premutate => 0,
            None => 1,
        }
    }

    /// Records a finished iteration, whose network was `trained` before its mutation pass: a timed run re-plans,
    /// the loop decides whether to stop, and the checkpoint commits it.
    pub fn finish_iteration(
        &mut self,
        record: IterationRecord,
        trained: &Genotype,
        observer: &mut dyn SearchObserver,
    ) -> anyhow::Result<()> {
        // Every rank grew the same network from the same gathered scores; its times are rank 0's.
        let group = distributed::group();
        group.ensure_identical("genotypes", || {
            Ok(stable_hash(&serde_json::to_vec(&self.checkpoint.genotype)?))
        })?;
        let record = group.decide(record)?;
        if let Some(planner) = self.planner.as_mut() {
            let grown = &self.checkpoint.genotype;
            let plan = planner.after_iteration(&record, trained, grown, &self.settings, self.plans, self.sizes);
            self.follow(plan, observer)?;
        }
        update_stop(self.checkpoint, &record, &self.settings);
        self.history.push(record);
        self.checkpoint.completed = self.history.len();
        self.checkpoint.elapsed_seconds = group.decide(self.clock.spent())?;
        if let Some(tensors) = &self.inherited {
            self.dir.save_inherited(self.checkpoint.completed, tensors)?;
        }
        self.commit()?;
        self.dir.forget_older_inherited(self.checkpoint.completed)?;
        observer.iteration(self.history.last().expect("just pushed"), &self.settings);
        Ok(())
    }

    /// The network the final training trains, written to `found-genotype.json`: the searched one, cut to its
    /// strongest ops with `--final-ops` when the last supernet training left gate records to rank them by.
    pub fn found_network(&self) -> anyhow::Result<(Genotype, Option<(usize, Discretized)>)> {
        let mut found = self.checkpoint.genotype.clone();
        let last_gates = self.history.iter().rev().map(|r| &r.gate_open).find(|g| !g.is_empty());
        let discretized = match (self.settings.final_ops, last_gates) {
            (Some(keep), Some(open)) => Some((keep, discretize::keep_top_ops(&mut found, open, keep))),
            _ => None,
        };
        self.dir.save_found_genotype(&found)?;
        Ok((found, discretized))
    }

    /// Before the final training of `found`: a timed run that has not started it plans it, and gets the deadline
    /// it must end by.
    pub fn before_final(
        &mut self,
        found: &Genotype,
        observer: &mut dyn SearchObserver,
    ) -> anyhow::Result<Option<Deadline>> {
        if !self.settings.final_training {
            return Ok(None);
        }
        let Some(planner) = self.planner.as_mut() else {
            return Ok(None);
        };
        let budget = planner.budget();
        let group = distributed::group();
        let started = group.share_outcome(
            self.dir.final_state().map(|state| state.is_some()),
            "to read the final training's checkpoint",
        )?;
        if !started {
            let searched = &self.checkpoint.genotype;
            let cheaper =
                self.settings.memory_of(found).total() as f64 / self.settings.memory_of(searched).total().max(1) as f64;
            let plan = planner.before_final(&self.settings, self.plans, self.sizes, cheaper);
            self.follow(plan, observer)?;
            self.checkpoint.elapsed_seconds = group.decide(self.clock.spent())?;
            self.commit()?;
        }
        Ok(Some(Deadline::after(budget, self.checkpoint.elapsed_seconds)))
    }

    /// After the final training: a timed run records the epochs it ended with, when they changed.
    pub fn after_final(&mut self, schedule: Schedule, observer: &mut dyn SearchObserver) -> anyhow::Result<()> {
        let changed = schedule
            .rescheduled
            .filter(|_| schedule.epochs != self.settings.final_train.epochs);
        if let (Some(planner), Some(change)) = (self.planner.as_ref(), changed) {
            let plan = planner.during_final(self.plans, schedule.epochs, change, self.checkpoint.elapsed_seconds);
            self.follow(plan, observer)?;
            // The run ends here, with no checkpoint to commit: the plan is recorded at once.
            self.dir.save_plans(self.plans)?;
        }
        Ok(())
    }

    /// Commits where the run stands: a timed run's plans, then the history, genotype and checkpoint. A plan is thus
    /// recorded with the step it sized, not before: a step cut short leaves no plan behind it (but for a crash
    /// between the two writes).
    fn commit(&self) -> anyhow::Result<()> {
        if !self.plans.is_empty() {
            self.dir.save_plans(self.plans)?;
        }
        self.dir.commit(&self.history, self.checkpoint)
    }

    /// The final epochs of the time budget's plan in force, if one was made.
    pub fn planned_final_epochs(&self) -> Option<usize> {
        self.plans.last().map(|plan| plan.final_epochs)
    }

    /// Wall seconds the run has spent, across processes.
    pub fn spent(&self) -> f64 {
        self.clock.spent()
    }

    /// Follows `plan` from now on (the search trains on the images it sizes); the next commit records it. In a
    /// distributed run every rank follows rank 0's plan, which rests on rank 0's clock.
    fn follow(&mut self, plan: Plan, observer: &mut dyn SearchObserver) -> anyhow::Result<()> {
        let plan = distributed::group().decide(plan)?;
        observer.plan(&plan);
        self.plans.push(plan);
        let before = self.settings.search_samples;
        self.settings = self.asked.following(self.plans.last());
        if self.settings.search_samples != before {
            self.splits = search_data(self.data, &self.settings);
        }
        Ok(())
    }
}
