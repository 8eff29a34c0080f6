//! ONNX export: two grown, briefly trained networks run in onnxruntime and give our logits to 1e-4; the weights'
//! names follow genotype.json and load back into the same network; bad run folders are refused.

mod common;

use common::{scratch, turn};
use spidernet::data::{DataSource, Dataset, Digits};
use spidernet::export::{export_run, load_trained};
use spidernet::genotype::{Genotype, Op};
use spidernet::init::InitScheme;
use spidernet::pruner::PrunerConfig;
use spidernet::search::save_trained;
use spidernet::supernet::{Mode, Supernet};
use spidernet::train::{self, Silent, TrainConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Device;

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh, which installs torch, onnx and onnxruntime",
        python.display()
    );
    python
}

/// Grows the minimal genotype by `splits` seeded-order splits per cell and kills a few ops.
fn grown(data: &Dataset, reductions: usize, channels: usize, splits: usize, stride: usize) -> Genotype {
    let mut genotype = Genotype::minimal(reductions, channels, data.shape, data.classes).unwrap();
    for cell in &mut genotype.cells {
        for k in 0..splits {
            let id = cell.edges[(k * stride) % cell.edges.len()].id;
            cell.split(id).unwrap();
        }
        let id = cell.edges[0].id;
        cell.kill_op(id, Op::SepConv5x5).unwrap();
        cell.kill_op(id, Op::MaxPool3x3).unwrap();
    }
    genotype
}

/// Trains briefly (so batch-norm statistics and weights are far from their initial values), closes one gate, and
/// saves the network into a run folder; returns the folder and the trained network.
fn trained_run(name: &str, data: &Dataset, genotype: &Genotype) -> (PathBuf, Supernet) {
    let mut net = Supernet::new(
        genotype,
        genotype.channels,
        InitScheme::PytorchDefault,
        PrunerConfig::default(),
        Device::Cpu,
        3,
    );
    let config = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    train::train(&mut net, &data.train, None, &config, 3, &mut Silent).unwrap();
    // A closed gate multiplies its op by exactly zero; the export must leave that op out.
    let edge = &net.genotype().cells[0].edges[1];
    let (edge_id, op) = (edge.id, edge.ops[0]);
    let gate = net.gate_weight(0, edge_id, op).unwrap();
    tch::no_grad(|| {
        let _ = gate.shallow_clone().fill_(-0.5);
    });
    let dir = scratch(name);
    save_trained(&dir, &net, &data.normalization).unwrap();
    (dir, net)
}

fn check_in_onnxruntime(name: &str, data: &Dataset, genotype: &Genotype) -> f64 {
    let (dir, net) = trained_run(name, data, genotype);
    let onnx = dir.join("model.onnx");
    let report = export_run(&dir, &onnx, Some(&data.normalization)).unwrap();
    assert!(report.nodes > 10 && report.bytes > 1000, "{report:?}");

    let inputs = data.test.images.narrow(0, 0, 100);
    let ours = tch::no_grad(|| net.forward(&inputs, Mode::eval()).pop().unwrap());
    // The saved weights load back into a fresh network of the saved genotype and give the same logits.
    let (saved_genotype, tensors) = load_trained(&dir).unwrap();
    assert_eq!(&saved_genotype, net.genotype());
    let mut fresh = Supernet::new(
        &saved_genotype,
        saved_genotype.channels,
        InitScheme::KaimingNormal(spidernet::init::Fan::In),
        PrunerConfig::default(),
        Device::Cpu,
        99,
    );
    fresh.load_named_tensors(tensors).unwrap();
    let reloaded = tch::no_grad(|| fresh.forward(&inputs, Mode::eval()).pop().unwrap());
    assert_eq!(f64::try_from((&reloaded - &ours).abs().max()).unwrap(), 0.0);

    let (inputs_path, logits_path) = (dir.join("inputs.npy"), dir.join("logits.npy"));
    inputs.write_npy(&inputs_path).unwrap();
    ours.write_npy(&logits_path).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/onnx-check.py");
    let output = Command::new(python())
        .arg(script)
        .args([&onnx, &inputs_path, &logits_path])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "onnx-check failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["opset"], 13);
    eprintln!("{name}: {result}");
    let _ = std::fs::remove_dir_all(&dir);
    result["max_abs_diff"].as_f64().unwrap()
}

#[test]
fn two_grown_networks_give_our_logits_in_onnxruntime() {
    let _turn = turn();
    let data = Digits::default().load(0).unwrap();
    let first = grown(&data, 2, 8, 3, 1);
    let second = grown(&data, 1, 12, 6, 3);
    assert_ne!(first, second);
    assert!(second.cells.iter().all(|c| c.edges.len() >= 6));
    for (name, genotype) in [("export-a", &first), ("export-b", &second)] {
        let diff = check_in_onnxruntime(name, &data, genotype);
        assert!(diff <= 1e-4, "{name}: {diff}");
    }
}

#[test]
fn runs_without_weights_or_with_foreign_weights_are_refused() {
    let _turn = turn();
    let data = Digits::default().load(0).unwrap();
    let genotype = grown(&data, 1, 4, 1, 1);
    let (dir, _) = trained_run("export-bad", &data, &genotype);
    let onnx = dir.join("model.onnx");

    // Weights of another genotype.
    let other = grown(&data, 1, 4, 2, 1);
    other.save(&dir.join("genotype.json")).unwrap();
    let error = format!("{:#}", export_run(&dir, &onnx, None).unwrap_err());
    assert!(
        error.contains("weights.safetensors does not match") && error.contains("genotype.json"),
        "{error}"
    );
    assert!(!onnx.exists(), "nothing is written on error");

    std::fs::remove_file(dir.join("weights.safetensors")).unwrap();
    let error = format!("{:#}", export_run(&dir, &onnx, None).unwrap_err());
    assert!(error.contains("has no weights.safetensors"), "{error}");

    let garbage = dir.join("weights.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let error = format!("{:#}", export_run(&dir, &onnx, None).unwrap_err());
    assert!(
        error.contains("cannot read") && error.contains("weights.safetensors"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
