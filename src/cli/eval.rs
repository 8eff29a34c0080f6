//! `spidernet eval`: a run's trained network on a labelled data set: accuracy, loss, per-class accuracy and the
//! confusion matrix.

use super::args::{DeviceChoice, data_of_run, parse_image_size, print_ignoring_closed_pipe};
use anyhow::Context;
use clap::{Args, ValueEnum};
use spidernet::artifacts::{self, Artifacts};
use spidernet::data::{self, DataOptions, Split};
use spidernet::inference::{EvalReport, TrainedModel, evaluate};
use spidernet::report::confusion_svg;
use std::path::PathBuf;
use tch::Tensor;

/// Which part of the data set to evaluate.
#[derive(Clone, Copy, ValueEnum)]
enum SplitChoice {
    Test,
    Train,
    All,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A run folder holding a trained network (from `search`, or `train --out`).
    run: PathBuf,
    /// Data set, as for `search` (digits, fashion-mnist[:DIR], idx:DIR, cifar10:DIR, folder:DIR, …); default: the
    /// run's own (digits for a `train --out` folder).
    #[arg(long)]
    data: Option<String>,
    /// Resize the images of a folder: data set to SIZE or HEIGHTxWIDTH pixels; default: the run's own setting.
    #[arg(long, value_name = "SIZE", value_parser = parse_image_size)]
    image_size: Option<(usize, usize)>,
    /// Which split to evaluate: test, train, or all (both).
    #[arg(long, value_enum, default_value = "test")]
    split: SplitChoice,
    /// Seed of the train/test split of sources without a fixed one (digits, folder: without train/ and test/);
    /// default: the run's seed (0 for a `train --out` folder).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Draw the confusion matrix as SVG into this file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write the normalised images, labels and final logits as safetensors (tensors `images`, `labels`, `logits`).
    #[arg(long, value_name = "FILE")]
    outputs: Option<PathBuf>,
    /// Leave the run folder untouched (by default the report is saved there as eval.json, for `spidernet report`).
    #[arg(long)]
    no_save: bool,
    /// Device to run on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

impl EvalArgs {
    /// The data source, its options and the split seed: the flags, else the run's own.
    fn data_source(&self, model: &TrainedModel) -> (String, DataOptions, u64) {
        data_of_run(self.data.as_deref(), self.image_size, self.seed, model.settings())
    }
}

/// The chosen split, normalised with the network's statistics (not the data set's own).
fn load_split(args: &EvalArgs, model: &TrainedModel) -> anyhow::Result<(String, Split)> {
    let (spec, options, seed) = args.data_source(model);
    let raw = data::source(&spec, &options)?.read(seed)?;
    let dataset = raw.normalize(model.normalization().clone());
    let genotype_path = Artifacts::new(model.dir()).genotype_path();
    dataset
        .check_fits(model.genotype())
        .with_context(|| format!("{} cannot be evaluated on --data {spec}", genotype_path.display()))?;
    let split = match args.split {
        SplitChoice::Test => dataset.test,
        SplitChoice::Train => dataset.train,
        SplitChoice::All => Split {
            images: Tensor::cat(&[&dataset.train.images, &dataset.test.images], 0),
            labels: Tensor::cat(&[&dataset.train.labels, &dataset.test.labels], 0),
        },
    };
    Ok((spec, split))
}

fn text_report(report: &EvalReport) -> String {
    let mut text = format!(
        "{} ({} split): {} images\naccuracy {:.2}% ({}/{}), loss {:.4}\n\n{:<16} {:>7} {:>8} {:>9}\n",
        report.data,
        report.split,
        report.images,
        100.0 * report.accuracy,
        report.correct,
        report.images,
        report.loss,
        "class",
        "images",
        "correct",
        "accuracy"
    );
    for class in &report.per_class {
        let accuracy = class.accuracy.map_or("—".to_string(), |a| format!("{:.1}%", 100.0 * a));
        text += &format!(
            "{:<16} {:>7} {:>8} {:>9}\n",
            class.name, class.images, class.correct, accuracy
        );
    }
    text + &confusion_text(report)
}

/// The matrix as text, for up to 20 classes.
fn confusion_text(report: &EvalReport) -> String {
    let classes = report.confusion.len();
    if classes > 20 {
        return format!("\nconfusion matrix: {classes} classes, see --json or --svg\n");
    }
    let mut text = "\nconfusion matrix (rows: true class, columns: predicted class, in class order)\n".to_string();
    for (class, row) in report.per_class.iter().zip(&report.confusion) {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
        text += &format!("{:<16}{}\n", class.name, cells.join(""));
    }
    text
}

/// Evaluates a finished search's network on its own test split and saves eval.json, for the report's confusion
/// matrix; `data` is the run's data set, normalised with the run's statistics.
pub fn save_test_evaluation(root: &std::path::Path, data: &spidernet::data::Dataset) -> anyhow::Result<()> {
    let model = TrainedModel::load(root, tch::Device::Cpu)?;
    let (report, _) = evaluate(&model, &data.test, &data.name, "test", false);
    report.save(root)
}

/// Evaluates, prints, and writes what was asked for.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = TrainedModel::load(&args.run, args.device.device()?)?;
    let (spec, split) = load_split(&args, &model)?;
    let split_name = args
        .split
        .to_possible_value()
        .expect("no skipped variant")
        .get_name()
        .to_string();
    let (report, outputs) = evaluate(&model, &split, &spec, &split_name, args.outputs.is_some());
    if let (Some(path), Some(outputs)) = (&args.outputs, outputs) {
        artifacts::write_tensors(path, &outputs.named())?;
    }
    if let Some(path) = &args.svg {
        spidernet::system::atomic::write_atomic(path, confusion_svg(&report).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.no_save {
        report.save(model.dir())?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        text_report(&report)
    };
    print_ignoring_closed_pipe(&text)
}
