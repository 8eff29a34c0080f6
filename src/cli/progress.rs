//! What the command line shows while training and searching: progress bars on a terminal, one line per epoch
//! or iteration on stderr.

use indicatif::{ProgressBar, ProgressStyle};
use spidernet::memory::format_size;
use spidernet::metrics::{CandidateReport, SkippedCandidate};
use spidernet::search::budget::Plan;
use spidernet::search::{Discretized, IterationRecord, Phase, SearchConfig, SearchObserver};
use spidernet::train::{EpochReport, TrainObserver};

/// Progress of training phases and candidate scoring.
#[derive(Default)]
pub struct Progress {
    epochs: usize,
    label: String,
    bar: Option<ProgressBar>,
    scoring: Option<ProgressBar>,
    /// Print a line per epoch (for plain training); searches print a line per iteration instead.
    pub epoch_lines: bool,
    /// Draw progress bars (only when both stdout and stderr are terminals, and not with --json).
    pub bars: bool,
}

/// What a rank other than 0 shows of a distributed run: nothing, though it hears an interrupt as rank 0 does.
pub struct Quiet;

impl TrainObserver for Quiet {
    fn interrupted(&self) -> bool {
        super::interrupt::received().is_some()
    }
}

impl SearchObserver for Quiet {}

/// The line that says a candidate could not be scored.
fn skipped_line(skip: &SkippedCandidate) -> String {
    format!(
        "cell {} edge {}→{}: skipped, could not allocate memory ({}); NTK passes now run at most {} copies",
        skip.cell, skip.from, skip.to, skip.reason, skip.ntk_copies_after
    )
}

/// Whether progress bars belong on this terminal: both output streams must be terminals.
pub fn bars_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

impl Progress {
    /// Progress for `epochs` epochs of plain training, with a line per epoch.
    pub fn training(epochs: usize) -> Self {
        Progress {
            epochs,
            label: "epoch".to_string(),
            epoch_lines: true,
            bars: bars_wanted(),
            ..Progress::default()
        }
    }

    /// Progress of a search: a line per iteration, and bars when `bars`.
    pub fn search(bars: bool) -> Self {
        Progress {
            bars,
            ..Progress::default()
        }
    }

    fn clear(&mut self) {
        for bar in [self.bar.take(), self.scoring.take()].into_iter().flatten() {
            bar.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl TrainObserver for Progress {
    fn batch(&mut self, epoch: usize, batch: usize, batches: usize, loss: f64) {
        if !self.bars {
            return;
        }
        let (label, epochs) = (&self.label, self.epochs);
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(batches as u64);
            bar.set_style(style("{prefix} [{bar:30}] {pos}/{len} {msg}"));
            bar
        });
        bar.set_prefix(format!("{label} {epoch:>3}/{epochs}"));
        bar.set_position(batch as u64);
        bar.set_message(format!("loss {loss:.3}"));
    }

    fn epoch(&mut self, report: &EpochReport) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.epoch_lines {
            return;
        }
        let eval = report
            .eval
            .map(|e| format!("  test {:5.1}%", 100.0 * e.accuracy))
            .unwrap_or_default();
        let mut line = format!(
            "{} {:>3}/{}  lr {:.5}  loss {:.4}  train {:5.1}%{eval}  live ops {:>3}  params {:>7}  {:.1}s",
            self.label,
            report.epoch,
            self.epochs,
            report.lr,
            report.train_loss,
            100.0 * report.train_accuracy,
            report.live_ops,
            report.parameters,
            report.seconds
        );
        if !report.deadhead.cut.is_empty() {
            line.push_str(&format!(
                "  cut {} (each edge keeps its strongest)",
                report.deadhead.cut.len()
            ));
        }
        if !report.deadhead.killed.is_empty() {
            line.push_str(&format!("  deadheaded {}", report.deadhead.killed.len()));
        }
        eprintln!("{line}");
    }

    fn interrupted(&self) -> bool {
        super::interrupt::received().is_some()
    }
}

impl SearchObserver for Progress {
    fn phase(&mut self, phase: Phase, epochs: usize) {
        self.clear();
        self.epochs = epochs;
        self.label = match phase {
            Phase::Search(iteration) => format!("iteration {iteration} epoch"),
            Phase::Final => "final epoch".to_string(),
            // The premutation pass trains nothing, so no epoch line follows.
            Phase::Premutation => String::new(),
        };
    }

    fn candidate(&mut self, report: &CandidateReport) {
        if !self.bars {
            return;
        }
        let bar = self.scoring.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} scoring {pos} candidates  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        bar.inc(1);
        let verdict = if report.accepted() { "accepted" } else { "rejected" };
        bar.set_message(format!(
            "cell {} edge {}→{}: r_ntk {:+.3} r_lrc {:+.3} {verdict}",
            report.cell, report.from, report.to, report.r_ntk, report.r_lrc
        ));
    }

    fn iteration(&mut self, record: &IterationRecord, config: &SearchConfig) {
        self.clear();
        let accuracy = record
            .validation_accuracy
            .map(|a| format!("val {:5.1}%", 100.0 * a))
            .unwrap_or_else(|| "val    — ".to_string());
        let pruned = record
            .pruned_share
            .map(|share| format!(" ({:.0} % pruned)", 100.0 * share))
            .unwrap_or_default();
        let edges: Vec<String> = record.edges_per_cell.iter().map(usize::to_string).collect();
        let splits: Vec<String> = record
            .mutations
            .iter()
            .map(|m| {
                let refused = m.refusal().map(|why| format!(" ({why})")).unwrap_or_default();
                format!("c{} {}→{}{refused}", m.cell, m.from, m.to)
            })
            .collect();
        let splits = if splits.is_empty() {
            "none".to_string()
        } else {
            splits.join(", ")
        };
        eprintln!(
            "iteration {:>2}/{}  {accuracy}  params {:>8}  memory {} of {}  ops {:>3}{pruned}  edges {}  splits: {splits}  ({:.0}s train, {:.0}s scoring)",
            record.iteration,
            config.iterations,
            record.parameters,
            format_size(record.memory.total()),
            format_size(record.memory_budget),
            record.live_ops,
            edges.join("/"),
            record.training_seconds,
            record.scoring_seconds
        );
    }

    fn candidate_skipped(&mut self, skip: &SkippedCandidate) {
        self.clear();
        eprintln!("{}", skipped_line(skip));
    }

    fn stopped(&mut self, reason: &str) {
        self.clear();
        eprintln!("search stopped: {reason}");
    }

    fn plan(&mut self, plan: &Plan) {
        self.clear();
        eprintln!("{}", plan.describe());
    }

    fn discretized(&mut self, keep: usize, outcome: &Discretized) {
        self.clear();
        let kept = match outcome.kept.len() {
            0 => String::new(),
            n => format!(" ({n} kept to hold a cell together)"),
        };
        eprintln!(
            "final ops: every edge keeps its {keep} longest-open ops; {} ops removed{kept}",
            outcome.removed.len()
        );
    }
}
