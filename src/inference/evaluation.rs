//! `eval`: a trained network's accuracy, loss, per-class accuracy and confusion matrix on a labelled split.

use super::TrainedModel;
use crate::data::{Batches, Split};
use crate::system::atomic::{read_if_present, write_json};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

/// How the network did on one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub name: String,
    /// Images of this class in the split.
    pub images: usize,
    /// Of those, classified correctly.
    pub correct: usize,
    /// `correct / images`; None when the split has no image of this class.
    pub accuracy: Option<f64>,
}

/// What `eval` measures; also written as `eval.json` in the run folder, where the report finds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The `--data` source evaluated.
    pub data: String,
    /// Which of its splits: test, train or all.
    pub split: String,
    /// Images evaluated.
    pub images: usize,
    /// Of those, classified correctly.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
    /// Mean cross-entropy of the final classifier.
    pub loss: f64,
    /// One entry per class, in class order.
    pub per_class: Vec<ClassResult>,
    /// `confusion[true][predicted]`: image counts, rows by true class.
    pub confusion: Vec<Vec<usize>>,
}

/// The network's inputs and outputs on the split, kept when asked so that others can check them: normalised
/// images (N, C, H, W) f32, labels (N) i64 and final logits (N, classes) f32.
pub struct Outputs {
    /// The images as the network saw them.
    pub images: Tensor,
    /// Their classes.
    pub labels: Tensor,
    /// The final classifier's logits.
    pub logits: Tensor,
}

impl Outputs {
    /// The three tensors under the names `images`, `labels` and `logits`.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        vec![
            ("images".to_string(), self.images.shallow_clone()),
            ("labels".to_string(), self.labels.shallow_clone()),
            ("logits".to_string(), self.logits.shallow_clone()),
        ]
    }
}

/// Evaluates `model` on `split` (already normalised with the model's statistics), named `data` / `split_name` in
/// the report; keeps the outputs when `keep_outputs`.
pub fn evaluate(
    model: &TrainedModel,
    split: &Split,
    data: &str,
    split_name: &str,
    keep_outputs: bool,
) -> (EvalReport, Option<Outputs>) {
    let classes = model.class_names().len();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut loss_sum = 0.0;
    let mut kept = Vec::new();
    for (images, labels) in Batches::in_order(split, model.batch_size(), Device::Cpu) {
        let logits = model.logits(&images);
        loss_sum += logits
            .cross_entropy_loss::<Tensor>(&labels, None, Reduction::Sum, -100, 0.0)
            .double_value(&[]);
        let predicted = Vec::<i64>::try_from(logits.argmax(-1, false)).unwrap_or_default();
        let truth = Vec::<i64>::try_from(&labels).unwrap_or_default();
        for (t, p) in truth.iter().zip(&predicted) {
            confusion[*t as usize][*p as usize] += 1;
        }
        if keep_outputs {
            kept.push(logits);
        }
    }
    let images = split.len();
    let correct = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class = (0..classes)
        .map(|class| {
            let (row, correct) = (confusion[class].iter().sum::<usize>(), confusion[class][class]);
            ClassResult {
                class,
                name: model.class_names()[class].clone(),
                images: row,
                correct,
                accuracy: (row > 0).then(|| correct as f64 / row as f64),
            }
        })
        .collect();
    let report = EvalReport {
        data: data.to_string(),
        split: split_name.to_string(),
        images,
        correct,
        accuracy: correct as f64 / images.max(1) as f64,
        loss: loss_sum / images.max(1) as f64,
        per_class,
        confusion,
    };
    let outputs = keep_outputs.then(|| Outputs {
        images: split.images.shallow_clone(),
        labels: split.labels.shallow_clone(),
        logits: if kept.is_empty() {
            Tensor::zeros([0, classes as i64], (Kind::Float, Device::Cpu))
        } else {
            Tensor::cat(&kept, 0)
        },
    });
    (report, outputs)
}

/// `eval.json`: the last evaluation of a run folder's network.
pub const EVAL_FILE: &str = "eval.json";

impl EvalReport {
    /// Writes the report as `eval.json` in `dir`, atomically and synced.
    pub fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        write_json(&dir.join(EVAL_FILE), self)
    }

    /// The report of `eval.json` in `dir`; None when the network was never evaluated there.
    pub fn load(dir: &std::path::Path) -> anyhow::Result<Option<EvalReport>> {
        let path = dir.join(EVAL_FILE);
        let Some(text) = read_if_present(&path)? else {
            return Ok(None);
        };
        let report = serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
        Ok(Some(report))
    }
}
