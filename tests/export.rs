//! ONNX export: three grown, briefly trained networks (one of the dense op set) run in onnxruntime and give our
//! logits to 1e-4; the weights'
//! names follow genotype.json and load back into the same network; bad run folders and outputs are refused.

mod common;

use common::{python, scratch, turn};
use spidernet::artifacts::Artifacts;
use spidernet::data::{DataSource, Dataset, Digits};
use spidernet::export::export_run;
use spidernet::genotype::{Genotype, Op, OpSet};
use spidernet::nn::init::InitScheme;
use spidernet::supernet::{Mode, Supernet};
use spidernet::train::{self, Silent, TrainConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Grows the minimal genotype of `op_set` by `splits` seeded-order splits per cell and kills a few ops.
fn grown_with(
    data: &Dataset,
    op_set: OpSet,
    (reductions, channels): (usize, usize),
    splits: usize,
    stride: usize,
) -> Genotype {
    let mut genotype = Genotype::minimal_with(reductions, channels, data.shape, data.classes, op_set).unwrap();
    let killed = match op_set {
        OpSet::Published => Op::SepConv5x5,
        OpSet::Dense => Op::Conv1x1,
    };
    for cell in &mut genotype.cells {
        for k in 0..splits {
            let id = cell.edges[(k * stride) % cell.edges.len()].id;
            cell.split(id).unwrap();
        }
        let id = cell.edges[0].id;
        cell.kill_op(id, killed).unwrap();
        cell.kill_op(id, Op::MaxPool3x3).unwrap();
    }
    genotype
}

/// `grown_with` the published ops.
fn grown(data: &Dataset, reductions: usize, channels: usize, splits: usize, stride: usize) -> Genotype {
    grown_with(data, OpSet::Published, (reductions, channels), splits, stride)
}

/// Asserts that a tensor name of weights.safetensors is a documented path (docs/EXPORT.md) to a stem, cell input,
/// node, live op or tower that exists in `genotype`.
fn assert_names_a_place_in(name: &str, genotype: &Genotype) {
    let parts: Vec<&str> = name.split('.').collect();
    let index = |i: usize| parts.get(i).and_then(|p| p.parse::<usize>().ok());
    let cell = || index(1).and_then(|k| genotype.cells.get(k));
    let bn = ["weight", "bias", "running_mean", "running_var"];
    let found = match parts.as_slice() {
        ["stem", "conv", "weight"] => true,
        ["stem", "bn", part] => bn.contains(part),
        ["towers", _, "weight" | "bias"] => cell().is_some(),
        ["cells", _, "inputs", _, "conv", "weight"] => cell().is_some_and(|c| index(3).is_some_and(|i| i < c.n_inputs)),
        ["cells", _, "inputs", _, "bn", part] => {
            bn.contains(part) && cell().is_some_and(|c| index(3).is_some_and(|i| i < c.n_inputs))
        }
        ["cells", _, "nodes", _, "bn", part] => {
            bn.contains(part) && cell().is_some_and(|c| index(3).is_some_and(|v| v < c.n_nodes))
        }
        ["cells", _, "edges", id, op, ..] => cell()
            .and_then(|c| c.edge(id.parse().ok()?))
            .is_some_and(|edge| edge.ops.iter().any(|o| o.name() == *op)),
        _ => false,
    };
    assert!(found, "{name} names nothing in genotype.json");
}

/// Trains briefly (so batch-norm statistics and weights are far from their initial values), closes one gate, and
/// saves the network into a run folder; returns the folder and the trained network.
fn trained_run(name: &str, data: &Dataset, genotype: &Genotype) -> (PathBuf, Supernet) {
    let mut net = Supernet::builder(genotype).seed(3).build();
    let config = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    train::train(&mut net, &data.train, None, &config, 3, &mut Silent, Default::default()).unwrap();
    // A closed gate multiplies its op by exactly zero; the export must leave that op out.
    let edge = &net.genotype().cells[0].edges[1];
    let (edge_id, op) = (edge.id, edge.ops[0]);
    let gate = net.gate_weight(0, edge_id, op).unwrap();
    tch::no_grad(|| {
        let _ = gate.shallow_clone().fill_(-0.5);
    });
    let dir = scratch(name);
    Artifacts::new(&dir).save(&net, data).unwrap();
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
    let (saved_genotype, tensors) = Artifacts::new(&dir).load_trained().unwrap();
    assert_eq!(&saved_genotype, net.genotype());
    let saved = Genotype::load(&dir.join("genotype.json")).unwrap();
    for (tensor, _) in &tensors {
        assert_names_a_place_in(tensor, &saved);
    }
    let gates = tensors.iter().filter(|(name, _)| name.ends_with(".gate")).count();
    assert_eq!(gates, saved.live_op_count(), "one gate per live op");
    let mut fresh = Supernet::builder(&saved_genotype)
        .init(InitScheme::KaimingNormal(spidernet::nn::init::Fan::In), 99)
        .build();
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
    let metadata = &result["metadata"];
    assert_eq!(metadata["normalization_mean"], format!("{:?}", data.normalization.mean));
    assert_eq!(metadata["normalization_std"], format!("{:?}", data.normalization.std));
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
    // The dense op set: ReLU–conv–BN at 1×1 and 3×3, strided on the reduction cells' input edges.
    let dense = grown_with(&data, OpSet::Dense, (2, 8), 3, 2);
    assert!(
        dense
            .cells
            .iter()
            .flat_map(|c| &c.edges)
            .any(|e| e.ops.contains(&Op::Conv3x3))
    );
    for (name, genotype) in [("export-a", &first), ("export-b", &second), ("export-dense", &dense)] {
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

    // An output path that cannot be written (its folder is a file): the error names it.
    genotype.save(&dir.join("genotype.json")).unwrap();
    let unwritable = dir.join("genotype.json").join("model.onnx");
    let error = format!("{:#}", export_run(&dir, &unwritable, None).unwrap_err());
    assert!(
        error.contains("cannot write") && error.contains(&unwritable.display().to_string()),
        "{error}"
    );
    export_run(&dir, &onnx, None).unwrap();
    assert!(onnx.exists());

    let not_a_run = scratch("export-not-a-run");
    let error = format!("{:#}", export_run(&not_a_run, &onnx, None).unwrap_err());
    assert!(error.contains("has no genotype.json"), "{error}");
    let _ = std::fs::remove_dir_all(&not_a_run);

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

#[test]
fn a_run_folder_written_before_the_single_tensor_namespace_still_loads_and_scores_as_recorded() {
    let _turn = turn();
    // Written by commit 5aece6f (`search --reductions 1 --channels 4 --iterations 2 --epochs-per-iteration 2
    // --search-samples 400 --final-epochs 2 --seed 3`), when the network held its tensors under other names and
    // translated them on save.
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-before-tensor-names");
    let read = |file: &str| std::fs::read_to_string(run.join(file)).unwrap();
    let config: spidernet::search::SearchConfig = serde_json::from_str(&read("config.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    let (genotype, tensors) = Artifacts::new(&run).load_trained().unwrap();
    let mut net = Supernet::builder(&genotype).build();
    net.load_named_tensors(tensors).unwrap();
    assert_eq!(net.parameter_count() as u64, summary["parameters"].as_u64().unwrap());
    let data = spidernet::data::load(&config.data, &config.data_options, config.seed, None)
        .unwrap()
        .dataset;
    assert_eq!(
        Artifacts::new(&run).load_normalization().unwrap(),
        Some(data.normalization.clone())
    );
    let evaluation = train::evaluate(&net, &data.test, config.final_train.eval_batch_size).unwrap();
    assert_eq!(evaluation.accuracy, summary["test_accuracy"].as_f64().unwrap());
    let recorded_loss = summary["test_loss"].as_f64().unwrap();
    assert!(
        (evaluation.loss - recorded_loss).abs() < 1e-6,
        "{} against {recorded_loss}",
        evaluation.loss
    );
    let onnx = scratch("export-old-run").join("model.onnx");
    let report = export_run(&run, &onnx, None).unwrap();
    assert!(report.nodes > 10, "{report:?}");
    let _ = std::fs::remove_dir_all(onnx.parent().unwrap());
}
