//! The command line: one module per subcommand, the shared arguments in `args`, progress and JSON events for the
//! search.

mod args;
mod bench;
mod bench_memory;
mod choices;
mod doctor;
mod eval;
mod events;
mod export;
mod interrupt;
mod predict;
mod progress;
mod report;
mod score;
mod search;
mod show;
mod train;
mod train_supernet;
mod validate_metrics;

use clap::{Parser, Subcommand};

/// A failure already explained on stderr, which ends the process with this exit status.
#[derive(Debug, thiserror::Error)]
#[error("exit status {code}")]
pub struct Exit {
    /// The process's exit status.
    pub code: u8,
}

/// The parsed command line.
#[derive(Parser)]
#[command(name = "spidernet", version, about = "Neural architecture search the SpiderNet way")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Search an architecture: grow cells by scored edge splits, prune ops, then train the result from scratch.
    Search(search::SearchArgs),
    /// Train a genotype (genotype.json) from scratch and report its test accuracy.
    Train(train::TrainArgs),
    /// Train the minimal supernet (every edge holds all 7 gated ops) with deadheading.
    TrainSupernet(train_supernet::TrainSupernetArgs),
    /// Summarise a genotype (genotype.json or a run folder) cell by cell, and optionally draw its cells as SVG.
    Show(show::ShowArgs),
    /// Compare the analytic training-memory estimate with the measured peak RSS on several genotypes.
    BenchMemory(bench_memory::BenchMemoryArgs),
    /// Time the benchmark workloads (training, evaluation, scoring, a search iteration) and print medians.
    Bench(bench::BenchArgs),
    /// Export a run's trained network as an ONNX model (its weights.safetensors already follow genotype.json).
    Export(export::ExportArgs),
    /// Classify PNG, JPEG or IDX images with a run's trained network: the top classes and their probabilities.
    Predict(predict::PredictArgs),
    /// Evaluate a run's trained network on a labelled data set: accuracy, loss, per-class accuracy, confusion matrix.
    Eval(eval::EvalArgs),
    /// Score candidate splits with the train-free metrics (κ, linear regions) as the search does; optionally dump
    /// every scoring network and input so that the numbers can be recomputed elsewhere.
    Score(score::ScoreArgs),
    /// Validate the train-free metrics: score every candidate split of real search states, measure each split's
    /// gain by a short continuation of training, and report rank correlations with bootstrap intervals.
    ValidateMetrics(validate_metrics::ValidateMetricsArgs),
    /// Write the HTML report of a run folder (charts, chosen splits, final cells), optionally against a second run.
    Report(report::ReportArgs),
    /// Report what this binary runs on: libtorch, its CUDA backend, the GPUs, the CPU and the loaded libraries.
    Doctor(doctor::DoctorArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Search(args) => search::run(args),
            Command::Train(args) => train::run(args),
            Command::TrainSupernet(args) => train_supernet::run(args),
            Command::Show(args) => show::run(args),
            Command::BenchMemory(args) => bench_memory::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Export(args) => export::run(args),
            Command::Predict(args) => predict::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Score(args) => score::run(args),
            Command::ValidateMetrics(args) => validate_metrics::run(args),
            Command::Report(args) => report::run(args),
            Command::Doctor(args) => doctor::run(args),
        }
    }
}
