//! `spidernet export`: a run's trained network as an ONNX model.

use clap::Args;
use spidernet::artifacts::Artifacts;
use spidernet::export;
use spidernet::memory::format_size;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A run folder holding a trained network (from `search`, or `train --out`).
    run: PathBuf,
    /// Write the network as an ONNX model (opset 13) to this file.
    #[arg(long, value_name = "FILE")]
    onnx: PathBuf,
}

/// Writes the model and describes its input and output.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let files = Artifacts::new(&args.run);
    let normalization = files.load_normalization()?;
    let report = export::export_run(&args.run, &args.onnx, normalization.as_ref())?;
    if normalization.is_none() {
        eprintln!(
            "warning: {} is missing; the model's metadata does not record the input normalisation",
            files.normalization_path().display()
        );
    }
    println!(
        "wrote {} (ONNX opset {}): {} nodes, {} weights after folding batch norms, {}",
        args.onnx.display(),
        export::OPSET,
        report.nodes,
        report.weights,
        format_size(report.bytes as u64)
    );
    let shape = report.input;
    let normalised = match &normalization {
        Some(n) => format!("normalised with mean {:?}, std {:?}", n.mean, n.std),
        None => "normalised with the training statistics (not recorded in this run folder)".to_string(),
    };
    println!(
        "input \"{}\": (batch, {}, {}, {}) images scaled to [0, 1], then {normalised}; output \"{}\": (batch, {}) logits",
        export::INPUT,
        shape.channels,
        shape.height,
        shape.width,
        export::OUTPUT,
        report.classes
    );
    Ok(())
}
