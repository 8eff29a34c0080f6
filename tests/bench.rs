//! The benchmark harness: our JSON output on tiny sizes, and the PyTorch twin building the same networks (same
//! parameter counts, same logits on our weights) and printing the same fields.

mod common;

use common::{scratch, turn};
use serde_json::Value;
use spidernet::genotype::Op;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    python
}

fn twin(genotypes: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/twin.py");
    Command::new(python())
        .arg(script)
        .arg("--genotypes")
        .arg(genotypes)
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

/// `spidernet bench` on `workloads` at the tiny test sizes, one repeat on one thread, JSON lines out.
fn ours_quick(workloads: &str, extra: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args([
            "bench",
            "--workload",
            workloads,
            "--repeats",
            "1",
            "--threads",
            "1",
            "--quick",
            "--json",
        ])
        .args(extra)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect()
}

/// Checks a measurement's timings: positive and finite, and its median is the median of its values.
fn check_timings(m: &Value) {
    let mut values: Vec<f64> = m["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no values in {m}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(!values.is_empty(), "{m}");
    assert!(values.iter().all(|v| v.is_finite() && *v > 0.0), "{m}");
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let reported = m["median"].as_f64().unwrap();
    assert!(
        (reported - median).abs() <= 1e-9 * median,
        "median {reported} of {values:?}"
    );
}

fn names(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["workload"].as_str().unwrap()).collect()
}

#[test]
fn bench_and_its_twin_measure_the_same_networks() {
    let _turn = turn();
    let dir = scratch("bench");
    let genotypes = dir.join("genotypes");
    let output = ours_quick("a,c", &["--write-genotypes".as_ref(), genotypes.as_os_str()]);
    let ours = json_lines(&output);
    assert_eq!(
        names(&ours),
        [
            "a-train-initial",
            "a-train-grown",
            "c-score-candidate",
            "c-score-in-cell"
        ]
    );
    for m in &ours {
        check_timings(m);
        assert!(m["peak_rss_bytes"].as_u64().unwrap() > 0, "{m}");
    }
    assert_eq!(ours[0]["unit"], "images/s");
    let throughput = |m: &Value| m["median"].as_f64().unwrap();
    assert!(
        throughput(&ours[1]) < throughput(&ours[0]),
        "the grown network (31 edges) must train slower than the initial one (9)"
    );
    assert_eq!(
        (ours[0]["edges"].as_u64(), ours[1]["edges"].as_u64()),
        (Some(9), Some(31))
    );
    assert_eq!(
        (ours[2]["unit"].as_str(), ours[3]["unit"].as_str()),
        (Some("s"), Some("s"))
    );

    let counts = json_lines(&twin(&genotypes, &["--count-only"]));
    let networks: Vec<&str> = counts.iter().map(|c| c["network"].as_str().unwrap()).collect();
    assert_eq!(networks, ["initial", "grown", "candidate-ntk", "candidate-lrc"]);
    for c in &counts {
        assert_eq!(c["spidernet"], c["pytorch"], "{c}");
    }
    assert_eq!(counts[0]["pytorch"], ours[0]["parameters"]);
    assert_eq!(counts[1]["pytorch"], ours[1]["parameters"]);

    let logits = json_lines(&twin(&genotypes, &["--check"]));
    assert_eq!(logits.len(), 4, "eval and train logits of both genotypes");

    let theirs = json_lines(&twin(&genotypes, &["--workload", "a,c"]));
    // The twin has no in-cell scoring: the reference scores every candidate from scratch.
    assert_eq!(names(&theirs), names(&ours)[..3]);
    for (m, t) in ours.iter().zip(&theirs) {
        check_timings(t);
        for field in ["unit", "parameters", "edges", "batch", "threads", "device"] {
            assert_eq!(m[field], t[field], "{field} of {m} against {t}");
        }
        // Auto is channels-last on the CPU; the twin runs NCHW unless told otherwise.
        assert_eq!(
            (m["memory_format"].as_str(), t["memory_format"].as_str()),
            (Some("channels-last"), Some("nchw"))
        );
    }

    // Ours in the other layout: the fields say which layout ran.
    let nchw = ours_quick("a", &["--memory-format".as_ref(), "nchw".as_ref()]);
    let nchw = json_lines(&nchw);
    assert_eq!(names(&nchw), ["a-train-initial", "a-train-grown"]);
    assert!(
        nchw.iter()
            .all(|m| m["memory_format"] == "nchw" && m["device"] == "cpu"),
        "{nchw:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn workload_e_times_every_op_at_every_edge_shape() {
    let _turn = turn();
    let records = json_lines(&ours_quick("e", &[]));
    let expected: Vec<String> = spidernet::bench::EDGE_SHAPES
        .iter()
        .flat_map(|&shape| Op::ALL.map(|op| spidernet::bench::op_workload(op, shape)))
        .collect();
    assert_eq!(names(&records), expected);
    let milliseconds = |name: &str| {
        let record = records.iter().find(|r| r["workload"] == name).unwrap();
        assert_eq!(record["unit"], "ms");
        record["median"].as_f64().unwrap()
    };
    assert!(expected.iter().all(|name| milliseconds(name) > 0.0));
    assert!(
        records
            .iter()
            .all(|r| r["memory_format"] == "channels-last" && r["device"] == "cpu"),
        "{records:?}"
    );
    // Two depthwise-pointwise blocks with 5×5 kernels cost more than passing the input through.
    assert!(milliseconds("e-op-sep_conv_5x5-cell0-s1") > milliseconds("e-op-identity-cell0-s1"));
}

#[test]
fn bad_arguments_are_refused_with_the_value() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_spidernet"))
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(run(&["bench", "--workload", "a,x"]).contains("--workload x: not a workload"));
    assert!(run(&["bench", "--repeats", "0"]).contains("'0' for '--repeats <REPEATS>': must be at least 1"));
    assert!(run(&["bench", "--threads", "two"]).contains("'two' for '--threads <THREADS>': not a whole number"));
    let missing = scratch("bench-missing");
    let output = twin(&missing, &["--count-only"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bench.json"));
}

#[test]
fn pytorch_baselines_train_for_their_budget_and_print_the_summary_fields() {
    let _turn = turn();
    if !common::fashion_mnist_or_skip("pytorch_baselines_train_for_their_budget_and_print_the_summary_fields") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/baselines.py");
    let baseline = |model: &str, limits: &[&str]| {
        let output = Command::new(python())
            .arg(&script)
            .args(["--model", model, "--train-samples", "1000", "--test-samples", "500"])
            .args(limits)
            .output()
            .unwrap();
        json_lines(&output)[0].clone()
    };
    for (model, parameters) in [("cnn", Some(421_642)), ("resnet", None)] {
        // Three epochs, however fast the machine: the amount of training is fixed, so the bound holds on a busy
        // one too.
        let summary = baseline(model, &["--time-budget", "10m", "--max-epochs", "3"]);
        assert_eq!(summary["strategy"], format!("pytorch-{model}"));
        assert_eq!(summary["final_training_samples"], 1000);
        assert_eq!(summary["stopped"], "reached 3 epochs");
        // Three epochs on 1,000 images get well above chance (10 %): about 75 % for the CNN and 60 % for the
        // ResNet, whose first epoch is still near 30 %.
        let curve = summary["curve"].as_array().unwrap();
        let best = curve
            .iter()
            .map(|c| c["test_accuracy"].as_f64().unwrap())
            .fold(0.0, f64::max);
        assert!(best > 0.4, "{model}: best test accuracy {best}");
        assert_eq!(summary["test_accuracy"], curve.last().unwrap()["test_accuracy"]);
        assert!(summary["test_loss"].as_f64().unwrap() < 10f64.ln(), "{summary}");
        assert_eq!(curve.len() as u64, summary["epochs"].as_u64().unwrap());
        assert!(
            curve
                .windows(2)
                .all(|w| w[0]["seconds"].as_f64() < w[1]["seconds"].as_f64())
        );
        if let Some(count) = parameters {
            assert_eq!(summary["parameters"], count, "conv 32, conv 64, linear 128, linear 10");
        }
    }
    // A budget stops the run: the clock starts after loading, and only the last evaluation (500 images) may pass
    // the budget.
    let budget = 2.0;
    let summary = baseline("cnn", &["--time-budget", "2s"]);
    let seconds = summary["final_training_seconds"].as_f64().unwrap();
    assert!(
        (budget..budget + 5.0).contains(&seconds),
        "{seconds} s for a {budget} s budget"
    );
    assert!(
        summary["stopped"].as_str().unwrap().contains("time budget"),
        "{summary}"
    );
    // The standard recipe plans its one-cycle schedule to the budget: it trains until the budget, less its final
    // evaluation, is spent, and never stops early.
    let budget = 20.0;
    let summary = baseline("resnet9", &["--time-budget", "20s"]);
    let seconds = summary["final_training_seconds"].as_f64().unwrap();
    assert!(
        (budget - 3.0..budget + 1.0).contains(&seconds),
        "{seconds} s for a {budget} s budget"
    );
    assert_eq!(summary["stopped"], "the time budget of 20 s was spent");
    assert_eq!(summary["parameters"], 412_666, "ResNet-9 at width 16");
    assert!(summary["epochs"].as_u64().unwrap() >= 2, "{summary}");
    // How many steps fit in 20 s depends on the machine (80 at 424 images/s on a 2-core EPYC, which ended at
    // 29–38 %), so the bar is twice chance: the network learnt, whatever the speed.
    assert!(summary["test_accuracy"].as_f64().unwrap() > 0.2, "{summary}");
    // At equal epochs instead: the schedule is planned over them, and the run ends with them.
    let summary = baseline("resnet9", &["--time-budget", "10m", "--epochs", "2"]);
    assert_eq!(summary["stopped"], "the 2 planned epochs are done");
    assert_eq!(summary["epochs"], 2);
    let refused = Command::new(python())
        .arg(&script)
        .args(["--model", "cnn", "--time-budget", "soon"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--time-budget soon: not a duration"));
}
