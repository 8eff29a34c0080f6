//! The subcommands as a user runs them: train → show → export, search → report, bench-memory, and their refusals.

mod common;

use common::{fails, path, scratch, spidernet, succeeds, turn};
use spidernet::genotype::{Genotype, InputShape};
use std::path::Path;

/// The settings every search here shares: a one-iteration search of a 4-channel R=1 network on 200 digits.
const TINY_SEARCH: &str = "--reductions 1 --channels 4 --iterations 1 --epochs-per-iteration 1 --search-samples 200";

/// Runs a tiny search into `run` with `extra` settings on top, which must succeed; returns its stdout.
fn search_into(run: &Path, extra: &str) -> String {
    let mut args = vec!["search", "--out", path(run)];
    args.extend(TINY_SEARCH.split_whitespace().chain(extra.split_whitespace()));
    succeeds(&args)
}

fn write_genotype(file: &Path, classes: usize) {
    let genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), classes).unwrap();
    std::fs::write(file, genotype.to_json()).unwrap();
}

#[test]
fn a_trained_genotype_is_shown_drawn_and_exported() {
    let _turn = turn();
    let dir = scratch("cli-train");
    let genotype = dir.join("genotype.json");
    write_genotype(&genotype, 10);
    let trained = dir.join("trained");
    let out = succeeds(&["train", path(&genotype), "--epochs", "1", "--out", path(&trained)]);
    assert!(out.contains("test accuracy") && out.contains("after 1 epochs"), "{out}");
    for file in ["genotype.json", "weights.safetensors", "normalization.json"] {
        assert!(trained.join(file).is_file(), "train --out left no {file}");
    }

    let svg = dir.join("cells.svg");
    let shown = succeeds(&["show", path(&trained), "--svg", path(&svg)]);
    assert!(shown.starts_with("R=1 C=4 input 1x8x8 classes 10: 2 cells"), "{shown}");
    assert!(shown.contains(&format!("cells drawn in {}", svg.display())), "{shown}");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    let onnx = dir.join("model.onnx");
    let exported = succeeds(&["export", path(&trained), "--onnx", path(&onnx)]);
    assert!(
        exported.starts_with(&format!("wrote {} (ONNX opset 13)", onnx.display())),
        "{exported}"
    );
    assert!(exported.contains("normalised with mean ["), "{exported}");
    assert!(std::fs::metadata(&onnx).unwrap().len() > 1000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_truncated_genotype_is_refused_with_each_cause_once() {
    let dir = scratch("cli-truncated");
    let whole = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap().to_json();
    let file = dir.join("truncated.json");
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
    let error = fails(&["show", path(&file)]);
    assert!(
        error.starts_with(&format!("error: genotype file {}: genotype JSON", file.display())),
        "{error}"
    );
    assert_eq!(error.matches("EOF while parsing").count(), 1, "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_refuses_a_genotype_made_for_other_data() {
    let dir = scratch("cli-mismatch");
    let genotype = dir.join("five-classes.json");
    write_genotype(&genotype, 5);
    let error = fails(&["train", path(&genotype), "--epochs", "1"]);
    assert!(
        error.contains("the network takes 1x8x8 images in 5 classes, but digits has 1x8x8 in 10"),
        "{error}"
    );
    let error = fails(&["train", path(&genotype), "--epochs", "0"]);
    assert!(
        error.contains("'0' for '--epochs <EPOCHS>': must be at least 1"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_rewrites_a_run_folder_with_its_charts() {
    let _turn = turn();
    let dir = scratch("cli-report");
    let run = dir.join("run");
    search_into(&run, "--strategy random --no-final");
    let html = dir.join("again.html");
    let charts = dir.join("charts");
    let out = succeeds(&["report", path(&run), "--out", path(&html), "--charts", path(&charts)]);
    assert!(out.contains(&format!("report written to {}", html.display())), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<html") && page.contains("<svg"),
        "not a report with charts"
    );
    let svgs = std::fs::read_dir(&charts)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"));
    assert!(svgs.count() >= 4, "too few chart files in {}", charts.display());
    let error = fails(&["report", path(&dir.join("no-such-run"))]);
    assert!(error.contains("no-such-run"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_memory_measures_each_grown_genotype_in_its_own_process() {
    let _turn = turn();
    let out = succeeds(&["bench-memory", "--batch", "2"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .map(|line| line.split_whitespace().collect())
        .collect();
    let edges: Vec<&str> = rows.iter().map(|row| row[1]).collect();
    assert_eq!(edges, ["9", "21", "33", "51", "69"], "{out}");
    for row in &rows {
        let ratio: f64 = row.last().unwrap().parse().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{out}");
    }
}

/// r_ntk of every candidate in a run folder's history, against the same mean computed from its repeats' `field` κ.
fn r_ntk_against(run: &Path, field: &str) -> Vec<(f64, f64)> {
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let mut pairs = Vec::new();
    for line in history.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        for decision in record["decisions"].as_array().unwrap() {
            for candidate in decision["tried"].as_array().unwrap() {
                let repeats = candidate["repeats"].as_array().unwrap();
                let ratio = |r: &serde_json::Value| {
                    let (on, off) = (
                        r["ntk_on"][field].as_f64().unwrap(),
                        r["ntk_off"][field].as_f64().unwrap(),
                    );
                    (on - off) / off
                };
                let mean = repeats.iter().map(ratio).sum::<f64>() / repeats.len() as f64;
                pairs.push((candidate["r_ntk"].as_f64().unwrap(), mean));
            }
        }
    }
    pairs
}

#[test]
fn ntk_faithful_scores_candidates_with_the_faithful_condition_number() {
    let _turn = turn();
    let dir = scratch("cli-ntk");
    // The default (sound) κ is what every other search test scores with; this one checks the switch.
    let run = dir.join("faithful");
    search_into(&run, "--no-final --seed 1 --ntk faithful");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["metrics"]["ntk_mode"], "faithful");
    // The settings that will run, the final training's augmentation included (digits: 8 px, no flips).
    let augment = &config["final_train"]["augment"];
    assert_eq!(
        (augment["pad"].as_u64(), augment["cutout"].as_u64()),
        (Some(1), Some(4)),
        "{augment}"
    );
    assert_eq!(augment["horizontal_flip"], false);
    let pairs = r_ntk_against(&run, "faithful");
    assert!(!pairs.is_empty(), "no candidate scored");
    for (recorded, recomputed) in pairs {
        assert!(
            (recorded - recomputed).abs() <= 1e-9 * recomputed.abs().max(1.0),
            "{recorded} ≠ {recomputed}"
        );
    }
    // The sound κ gives other ratios, so the check above tells the two modes apart.
    assert!(
        r_ntk_against(&run, "sound")
            .iter()
            .any(|(recorded, recomputed)| (recorded - recomputed).abs() > 1e-6),
        "the sound and faithful ratios coincide, so this test cannot tell the modes apart"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resuming_a_finished_run_redoes_nothing() {
    let _turn = turn();
    let dir = scratch("cli-finished");
    let run = dir.join("run");
    let first = search_into(&run, "--strategy none --final-epochs 1 --final-samples 200");
    let weights = run.join("weights.safetensors");
    let (bytes, modified) = (
        std::fs::read(&weights).unwrap(),
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
    );
    let output = spidernet(&["search", "--resume", path(&run)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("is already complete: nothing to resume"), "{stderr}");
    assert!(!stderr.contains("epoch"), "a finished run trained again: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().next(),
        first.lines().next()
    );
    assert_eq!(std::fs::read(&weights).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&weights).unwrap().modified().unwrap(), modified);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_memory_budget_below_the_initial_network_is_refused_before_anything_is_written() {
    let dir = scratch("cli-tiny-budget");
    let run = dir.join("run");
    let stderr = fails(&["search", "--out", path(&run), "--memory-budget", "1KiB"]);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_default();
    assert!(error.contains("the memory budget of 1.0 KiB is below the "), "{stderr}");
    assert!(
        error.contains("MiB that training this network needs (R=2, C=16, batch 64)"),
        "{stderr}"
    );
    assert!(!run.join("config.json").exists(), "a refused run left a run folder");
    assert!(!stderr.contains("iteration"), "it went on to search: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_folder_held_by_another_process_is_refused_at_once() {
    let dir = scratch("cli-locked");
    let held = spidernet::search::RunLock::acquire(&dir).unwrap();
    let holder = format!("process {}", std::process::id());
    for args in [
        vec!["search", "--out", path(&dir), "--reductions", "1", "--channels", "4"],
        vec!["search", "--resume", path(&dir)],
    ] {
        let started = std::time::Instant::now();
        let stderr = fails(&args);
        assert!(
            stderr.contains(&format!("{} is in use by {holder}", dir.display())),
            "{args:?}: {stderr}"
        );
        assert!(started.elapsed().as_secs() < 30, "{args:?} waited for the lock");
    }
    assert!(
        !dir.join("config.json").exists(),
        "the refused run wrote into the held folder"
    );
    drop(held);
    // Released, the folder is open again: resume now reaches the folder itself, which holds no run.
    let stderr = fails(&["search", "--resume", path(&dir)]);
    assert!(stderr.contains("is not a run folder"), "{stderr}");
    assert!(stderr.contains("nothing to resume: start it again"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resuming_a_folder_that_was_never_created_says_to_start_again() {
    let dir = scratch("cli-never-created");
    let missing = dir.join("killed-while-loading-data");
    let stderr = fails(&["search", "--resume", path(&missing)]);
    assert!(
        stderr.contains(&format!("cannot resume {}: there is no such folder", missing.display())),
        "{stderr}"
    );
    assert!(stderr.contains("nothing to resume: start it again"), "{stderr}");
    assert!(!missing.exists(), "a refused resume created the folder");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_names_a_corrupt_normalization_file() {
    let _turn = turn();
    let dir = scratch("cli-normalization");
    let genotype = dir.join("genotype.json");
    write_genotype(&genotype, 10);
    let trained = dir.join("trained");
    succeeds(&["train", path(&genotype), "--epochs", "1", "--out", path(&trained)]);
    let stats = trained.join("normalization.json");
    std::fs::write(&stats, "{\"mean\": [0.3").unwrap();
    let error = fails(&["export", path(&trained), "--onnx", path(&dir.join("model.onnx"))]);
    assert!(error.contains(&stats.display().to_string()), "{error}");
    assert!(
        !dir.join("model.onnx").exists(),
        "a model was written from a corrupt normalization file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
