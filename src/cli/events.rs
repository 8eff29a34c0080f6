//! `--json`: machine-readable JSON-lines events on stdout, one object per line with an `event` field, while the
//! human-readable lines keep going to stderr.

use super::progress::Progress;
use serde_json::{Value, json};
use spidernet::metrics::{CandidateReport, SkippedCandidate};
use spidernet::search::budget::Plan;
use spidernet::search::{Discretized, IterationRecord, Phase, SearchConfig, SearchObserver};
use spidernet::train::{EpochReport, TrainObserver};
use std::io::Write;

/// Writes one event line to stdout; a closed stdout is not worth failing a search over.
pub fn emit(event: &str, mut fields: Value) {
    if let Value::Object(map) = &mut fields {
        map.insert("event".to_string(), Value::String(event.to_string()));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{fields}").and_then(|()| out.flush());
}

/// An observer that shows progress like [`Progress`] and also emits every event as JSON.
pub struct JsonEvents {
    progress: Progress,
    /// The iteration whose training is running (0: final training).
    phase: usize,
}

impl JsonEvents {
    /// Events on stdout, the iteration lines of `progress` on stderr.
    pub fn new(progress: Progress) -> Self {
        JsonEvents { progress, phase: 0 }
    }
}

impl TrainObserver for JsonEvents {
    fn batch(&mut self, epoch: usize, batch: usize, batches: usize, loss: f64) {
        self.progress.batch(epoch, batch, batches, loss);
    }

    fn epoch(&mut self, report: &EpochReport) {
        self.progress.epoch(report);
        emit("epoch_finished", json!({ "iteration": self.phase, "report": report }));
    }

    fn interrupted(&self) -> bool {
        self.progress.interrupted()
    }
}

impl SearchObserver for JsonEvents {
    fn iteration_started(&mut self, iteration: usize) {
        emit("iteration_started", json!({ "iteration": iteration }));
    }

    fn phase(&mut self, phase: Phase, epochs: usize) {
        self.progress.phase(phase, epochs);
        match phase {
            Phase::Search(iteration) => {
                self.phase = iteration;
                emit("training_started", json!({ "iteration": iteration, "epochs": epochs }));
            }
            Phase::Final => {
                // The events' format: `iteration` 0 stands for the final training.
                self.phase = 0;
                emit("final_training_started", json!({ "iteration": 0, "epochs": epochs }));
            }
            // The premutation pass trains nothing: no training event.
            Phase::Premutation => {}
        }
    }

    fn candidate(&mut self, report: &CandidateReport) {
        self.progress.candidate(report);
        emit("candidate_scored", json!({ "report": report }));
    }

    fn candidate_skipped(&mut self, skip: &SkippedCandidate) {
        self.progress.candidate_skipped(skip);
        emit("candidate_skipped", json!({ "skip": skip }));
    }

    fn iteration(&mut self, record: &IterationRecord, config: &SearchConfig) {
        self.progress.iteration(record, config);
        if !record.deadheaded.is_empty() {
            emit(
                "ops_deadheaded",
                json!({ "iteration": record.iteration, "ops": record.deadheaded }),
            );
        }
        for mutation in &record.mutations {
            let scored = record
                .decisions
                .iter()
                .flat_map(|d| &d.tried)
                .find(|c| c.cell == mutation.cell && c.edge == mutation.edge);
            emit(
                if mutation.applied {
                    "mutation_applied"
                } else {
                    "mutation_refused"
                },
                json!({
                    "iteration": record.iteration,
                    "mutation": mutation,
                    "r_ntk": scored.map(|c| c.r_ntk),
                    "r_lrc": scored.map(|c| c.r_lrc),
                    "score": scored.and_then(|c| c.score),
                }),
            );
        }
        emit(
            "iteration_finished",
            json!({
                "iteration": record.iteration,
                "validation_accuracy": record.validation_accuracy,
                "parameters": record.parameters,
                "memory_bytes": record.memory.total(),
                "memory_budget": record.memory_budget,
                "live_ops": record.live_ops,
                "edges_per_cell": record.edges_per_cell,
                "training_seconds": record.training_seconds,
                "scoring_seconds": record.scoring_seconds,
            }),
        );
    }

    fn stopped(&mut self, reason: &str) {
        self.progress.stopped(reason);
        emit("search_stopped", json!({ "reason": reason }));
    }

    fn plan(&mut self, plan: &Plan) {
        self.progress.plan(plan);
        emit("plan", json!({ "plan": plan }));
    }

    fn discretized(&mut self, keep: usize, outcome: &Discretized) {
        self.progress.discretized(keep, outcome);
        emit(
            "final_ops",
            json!({ "keep": keep, "removed": outcome.removed, "kept": outcome.kept }),
        );
    }
}
