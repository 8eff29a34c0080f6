//! Export of a trained run: an ONNX model written by our own exporter (opset 13), from the run's genotype and its
//! weights.safetensors (whose tensor names follow genotype.json; docs/EXPORT.md).

mod graph;
pub(crate) mod proto;

pub use graph::{ExportError, INPUT, OUTPUT};

use crate::artifacts::Artifacts;
use crate::data::Normalization;
use crate::genotype::Genotype;
use crate::system::atomic::write_atomic;
use anyhow::Context;
use prost::Message;
use proto::{ModelProto, OperatorSetIdProto, StringStringEntryProto};
use std::path::Path;
use tch::Tensor;

/// ONNX opset the graph is written for: supported by every current runtime and converter.
pub const OPSET: i64 = 13;
/// ONNX IR version that goes with opset 13.
const IR_VERSION: i64 = 7;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportReport {
    /// Operator nodes in the graph.
    pub nodes: usize,
    /// Weight scalars stored in the model (after folding).
    pub weights: usize,
    /// Size of the .onnx file in bytes.
    pub bytes: usize,
    /// Shape of one input image.
    pub input: crate::genotype::InputShape,
    /// Number of logits per image.
    pub classes: usize,
}

fn entry(key: &str, value: String) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key.into()),
        value: Some(value),
    }
}

/// The ONNX model of `genotype` with its trained `tensors`; `normalization`, when known, is recorded in the
/// metadata so users can prepare inputs.
pub fn onnx_model(
    genotype: &Genotype,
    tensors: Vec<(String, Tensor)>,
    normalization: Option<&Normalization>,
) -> Result<ModelProto, ExportError> {
    let graph = graph::build(genotype, &graph::Weights::new(tensors))?;
    let mut metadata = vec![
        entry("genotype", genotype.to_json()),
        entry(
            "input",
            format!(
                "{INPUT}: float32 (batch, {}, {}, {}); pixels scaled to [0, 1], then (x - mean) / std per channel",
                genotype.input.channels, genotype.input.height, genotype.input.width
            ),
        ),
    ];
    if let Some(n) = normalization {
        metadata.push(entry("normalization_mean", format!("{:?}", n.mean)));
        metadata.push(entry("normalization_std", format!("{:?}", n.std)));
    }
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("spidernet".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some("Architecture found by spidernet; logits of the final classifier.".into()),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        metadata_props: metadata,
    })
}

/// Writes the ONNX model of the trained network in `run` to `out`, atomically.
pub fn export_run(run: &Path, out: &Path, normalization: Option<&Normalization>) -> anyhow::Result<ExportReport> {
    let (genotype, tensors) = Artifacts::new(run).load_trained()?;
    let model = onnx_model(&genotype, tensors, normalization).with_context(|| run.display().to_string())?;
    let graph = model.graph.as_ref().expect("built above");
    let report = ExportReport {
        nodes: graph.node.len(),
        weights: graph
            .initializer
            .iter()
            .filter(|t| t.data_type == Some(proto::data_type::FLOAT))
            .map(|t| t.dims.iter().product::<i64>().max(1) as usize)
            .sum(),
        bytes: model.encoded_len(),
        input: genotype.input,
        classes: genotype.classes,
    };
    write_atomic(out, &model.encode_to_vec()).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(report)
}
