//! `spidernet validate-metrics` at a tiny size on the digits: its statistics against scipy's on the same numbers,
//! and a second run that continues from the files instead of measuring again.

mod common;

use common::{path, python, scratch, succeeds, turn};
use std::process::Command;

const TINY: [&str; 16] = [
    "--seeds",
    "0",
    "--states",
    "1",
    "--search-samples",
    "300",
    "--continuation-samples",
    "200",
    "--replicates",
    "2",
    "--metrics",
    "naswot,parameters,ntk_sound",
    "--resamples",
    "200",
    "--channels",
    "8",
];

#[test]
fn the_harness_agrees_with_scipy_and_continues_from_its_files() {
    let _turn = turn();
    let out = scratch("validate-metrics");
    let mut args = vec!["validate-metrics", "--out", path(&out), "--json"];
    args.extend(TINY);
    let analysis: serde_json::Value = serde_json::from_str(&succeeds(&args)).unwrap();
    let candidates = analysis["candidates"].as_u64().unwrap();
    assert!(candidates >= 6, "every edge of every cell is a candidate: {candidates}");
    assert_eq!(analysis["decisions"].as_u64(), Some(3), "one decision per cell");
    let metrics: Vec<&str> = analysis["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["naswot", "parameters", "ntk_sound"]);
    assert!(out.join("scatter.svg").exists());

    // scipy on the numbers in the harness's own files: mean gain per candidate against each metric's signal,
    // oriented so that higher is better.
    let script = r#"
import json, sys
from scipy.stats import kendalltau, spearmanr
folder = sys.argv[1]
baselines = {(b["seed"], b["state"], b["replicate"]): b["accuracy"] for b in map(json.loads, open(folder + "/baselines.jsonl"))}
candidates = [json.loads(line) for line in open(folder + "/candidates.jsonl")]
gains = [sum(a - baselines[(c["seed"], c["state"], r)] for r, a in enumerate(c["accuracies"])) / len(c["accuracies"])
         for c in candidates]
out = {}
for metric, sign in (("naswot", 1), ("parameters", 1), ("ntk_sound", -1)):
    signal = [sign * c["signals"][metric] for c in candidates]
    out[metric] = [kendalltau(signal, gains).statistic, spearmanr(signal, gains).statistic]
first = [c["accuracies"][0] - baselines[(c["seed"], c["state"], 0)] for c in candidates]
second = [c["accuracies"][1] - baselines[(c["seed"], c["state"], 1)] for c in candidates]
out["retest"] = [kendalltau(first, second).statistic, 0]
print(json.dumps(out))
"#;
    let output = Command::new(python()).args(["-c", script]).arg(&out).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let scipy: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut compared = 0;
    for metric in analysis["metrics"].as_array().unwrap() {
        let name = metric["metric"].as_str().unwrap();
        for (field, position) in [("tau", 0), ("rho", 1)] {
            let theirs = scipy[name][position].as_f64();
            match (metric[field].as_f64(), theirs) {
                (Some(ours), Some(theirs)) => {
                    assert!(
                        (ours - theirs).abs() < 1e-12,
                        "{name} {field}: ours {ours}, scipy {theirs}"
                    );
                    compared += 1;
                }
                // scipy gives NaN (JSON null) where a side is constant; the harness gives no value.
                (None, None) => {}
                (ours, theirs) => panic!("{name} {field}: ours {ours:?}, scipy {theirs:?}"),
            }
        }
    }
    assert!(
        compared >= 4,
        "at least two metrics had defined correlations: {compared}"
    );
    if let Some(theirs) = scipy["retest"][0].as_f64() {
        let ours = analysis["noise"]["retest_tau"].as_f64().unwrap();
        assert!((ours - theirs).abs() < 1e-12, "retest τ: ours {ours}, scipy {theirs}");
    }

    // The trained state is kept, so that a second run need not train it again.
    assert!(out.join("states/seed0-state1.safetensors").exists());
    assert!(out.join("states/seed0-state1.genotype.json").exists());

    // A second run with the same settings measures nothing again: same files, same analysis.
    let candidates_file = std::fs::read(out.join("candidates.jsonl")).unwrap();
    let again: serde_json::Value = serde_json::from_str(&succeeds(&args)).unwrap();
    assert_eq!(std::fs::read(out.join("candidates.jsonl")).unwrap(), candidates_file);
    assert_eq!(again, analysis);

    // --analyse reads the folder alone, with the settings it was started with.
    let analysed = succeeds(&["validate-metrics", "--out", path(&out), "--json", "--analyse"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&analysed).unwrap(), analysis);
    let rules: Vec<&str> = analysis["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["published", "ntk_sound+regions"],
        "the default rules whose metrics were scored"
    );

    // A rule of one metric ranks each decision as that metric does.
    let mut ranked = vec!["validate-metrics", "--out", path(&out), "--json", "--analyse"];
    ranked.extend(["--rules", "naswot,published"]);
    let ranked: serde_json::Value = serde_json::from_str(&succeeds(&ranked)).unwrap();
    let naswot_rule = &ranked["rules"][0];
    let naswot_metric = ranked["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "naswot")
        .unwrap();
    assert_eq!(naswot_rule["rule"], "naswot");
    for field in ["decision_tau", "pick_gain"] {
        assert_eq!(naswot_rule[field], naswot_metric[field], "{field}");
    }
    for field in ["rule", "decision_tau", "pick_gain"] {
        assert_eq!(ranked["rules"][1][field], analysis["rules"][0][field], "{field}");
    }
    let error = common::fails(&[
        "validate-metrics",
        "--out",
        path(&out),
        "--analyse",
        "--rules",
        "zico+naswot",
    ]);
    assert!(
        error.contains("zico+naswot") && error.contains("did not score"),
        "{error}"
    );
    let empty = scratch("validate-metrics-empty");
    let error = common::fails(&["validate-metrics", "--out", path(&empty), "--analyse"]);
    assert!(error.contains("validation-config.json"), "{error}");

    // Other settings in the same folder are refused, naming the file that holds the first ones.
    let mut other = args.clone();
    let position = other.iter().position(|a| *a == "--replicates").unwrap();
    other[position + 1] = "3";
    let error = common::fails(&other);
    assert!(error.contains("validation-config.json"), "{error}");
}
