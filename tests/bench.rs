//! The benchmark harness: our JSON output, and the PyTorch twin building networks of exactly our size.

mod common;

use common::{scratch, turn};
use std::path::Path;
use std::process::Command;

#[test]
fn bench_reports_positive_medians_and_the_twin_builds_the_same_networks() {
    let _turn = turn();
    let dir = scratch("bench");
    let genotypes = dir.join("genotypes");
    let output = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args([
            "bench",
            "--workload",
            "b",
            "--repeats",
            "1",
            "--steps",
            "1",
            "--threads",
            "1",
            "--json",
        ])
        .arg("--write-genotypes")
        .arg(&genotypes)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ours: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = ours.iter().map(|m| m["workload"].as_str().unwrap()).collect();
    assert_eq!(names, ["b-eval-initial", "b-eval-grown"]);
    for m in &ours {
        assert!(m["median"].as_f64().unwrap() > 0.0 && m["unit"] == "images/s", "{m}");
    }

    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    let twin = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/twin.py");
    let output = Command::new(python)
        .arg(twin)
        .arg("--genotypes")
        .arg(&genotypes)
        .arg("--count-only")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let theirs: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(theirs.len(), 2);
    for (m, t) in ours.iter().zip(&theirs) {
        assert_eq!(m["parameters"], t["parameters"], "{m} against {t}");
    }

    let error = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(["bench", "--workload", "x"])
        .output()
        .unwrap();
    assert!(!error.status.success());
    assert!(String::from_utf8_lossy(&error.stderr).contains("--workload x: not a workload"));
    let _ = std::fs::remove_dir_all(&dir);
}
