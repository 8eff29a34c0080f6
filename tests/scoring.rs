//! `spidernet score`: the search's own scorer from the command line, and its dump recomputed in PyTorch.

mod common;

use common::{fails, path, python, scratch, succeeds, turn};
use spidernet::data::{self, DataOptions};
use spidernet::genotype::{Genotype, InputShape};
use spidernet::metrics::score::Scorer;
use spidernet::metrics::{CandidateReport, MetricsConfig};
use std::path::Path;
use std::process::Command;

/// The minimal R=2 C=4 genotype for the digits with cell 1 split twice. Two reductions do not fit the LRC's
/// 3×3 crops as a genotype's input, which the dump must handle.
fn grown_genotype(dir: &Path) -> (Genotype, std::path::PathBuf) {
    let mut genotype = Genotype::minimal(2, 4, InputShape::new(1, 8, 8), 10).unwrap();
    let first = genotype.cells[1].edges[0].id;
    let split = genotype.cells[1].split(first).unwrap();
    genotype.cells[1].split(split.edge_b).unwrap();
    let file = dir.join("genotype.json");
    std::fs::write(&file, genotype.to_json()).unwrap();
    (genotype, file)
}

/// Two repeats on smaller inputs than the search's, to keep the test short; the code path is the same.
const SMALL: [&str; 6] = ["--repeats", "2", "--ntk-batch-size", "16", "--lrc-batch-size", "300"];

fn small_config() -> MetricsConfig {
    MetricsConfig {
        repeats: 2,
        ntk_batch_size: 16,
        lrc_batch_size: 300,
        ..MetricsConfig::default()
    }
}

#[test]
fn score_json_reports_what_the_searchs_own_walk_measures() {
    let _turn = turn();
    let dir = scratch("score-json");
    let (genotype, file) = grown_genotype(&dir);
    let mut args = vec!["score", path(&file), "--seed", "7", "--json"];
    args.extend(SMALL);
    let json: serde_json::Value = serde_json::from_str(&succeeds(&args)).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3);
    for (k, cell) in cells.iter().enumerate() {
        let tried: Vec<CandidateReport> = serde_json::from_value(cell["tried"].clone()).unwrap();
        let mut edges: Vec<u32> = tried.iter().map(|r| r.edge).collect();
        edges.sort_unstable();
        let mut expected: Vec<u32> = genotype.cells[k].edges.iter().map(|e| e.id).collect();
        expected.sort_unstable();
        assert_eq!(edges, expected, "every edge of cell {k} is scored");
        for report in &tried {
            assert_eq!(report.repeats.len(), 2);
            assert_eq!(
                report.accepted(),
                report.r_lrc > 0.0 && report.r_ntk <= 0.0,
                "{report:?}"
            );
            assert_eq!(report.score.is_some(), report.accepted());
            for repeat in &report.repeats {
                assert_eq!(repeat.ntk_on.samples, 3 * 16);
                assert_eq!(repeat.lrc_on.samples, 3 * 300);
            }
        }
        let best = tried
            .iter()
            .filter(|r| r.accepted())
            .min_by(|a, b| a.score.unwrap().total_cmp(&b.score.unwrap()));
        assert_eq!(cell["chosen"].as_u64(), best.map(|r| r.edge as u64));
    }

    // The search's own walk, in this process, measures exactly the same numbers for every candidate it tries.
    let data = data::load("digits", &DataOptions::default(), 7, None).unwrap().dataset;
    let scorer = Scorer::new(&data.train, small_config(), 7, tch::Device::Cpu);
    let walked = scorer.decide(&genotype, 1, 0, &mut |_| Ok(())).unwrap();
    let cli: Vec<CandidateReport> = serde_json::from_value(cells[1]["tried"].clone()).unwrap();
    assert!(!walked.tried.is_empty());
    for report in &walked.tried {
        let same = cli.iter().find(|r| r.edge == report.edge).unwrap();
        assert_eq!(
            (same.r_ntk, same.r_lrc, &same.repeats),
            (report.r_ntk, report.r_lrc, &report.repeats)
        );
    }

    let error = fails(&["score", path(&file), "--cell", "3"]);
    assert!(
        error.contains("--cell 3 does not exist: the genotype has 3 cells (0–2)"),
        "{error}"
    );
    let error = fails(&["score", path(&file), "--cell", "1", "--edge", "99"]);
    assert!(
        error.contains("--edge 99 does not exist in cell 1: its edges are "),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dump_is_recomputed_in_pytorch_to_the_last_region() {
    let _turn = turn();
    let dir = scratch("score-dump");
    let (genotype, file) = grown_genotype(&dir);
    let dump = dir.join("dump");
    // One candidate: recomputing the NTK one backward per sample takes PyTorch about 2 s per network and repeat.
    let edge = genotype.cells[1].edges[1].id.to_string();
    let mut args = vec![
        "score",
        path(&file),
        "--cell",
        "1",
        "--edge",
        &edge,
        "--dump",
        path(&dump),
        "--dump-gradients",
        "--json",
    ];
    args.extend(SMALL);
    let json: serde_json::Value = serde_json::from_str(&succeeds(&args)).unwrap();
    let candidates = json["cells"][0]["tried"].as_array().unwrap().len();
    assert_eq!(candidates, 1);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dump.join("scoring.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["candidates"].as_array().unwrap().len(), candidates);
    // One on network per candidate and metric, and the current network once per metric.
    assert_eq!(manifest["networks"].as_array().unwrap().len(), 2 * candidates + 2);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "the temporary folder is gone");

    // This checkout's package, whatever version set-up installed last.
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let output = Command::new(python())
        .env("PYTHONPATH", package)
        .args(["-m", "spidernet_torch.scoring", path(&dump)])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let values = 2 * (2 * candidates + 2);
    assert!(
        stderr.contains(&format!("{values} of {values} values agree")),
        "{stderr}"
    );
    assert!(
        stdout.contains("from the dumped G: sound rel 0.0e+00, faithful rel 0.0e+00"),
        "{stdout}"
    );

    // A folder that already holds something, and one that cannot be created, are refused; nothing is left.
    let error = fails(&["score", path(&file), "--cell", "1", "--dump", path(&dump)]);
    assert!(error.contains(&format!("{} is not empty", dump.display())), "{error}");
    let blocked = dir.join("genotype.json").join("dump");
    let error = fails(&[
        "score",
        path(&file),
        "--cell",
        "1",
        "--edge",
        "0",
        "--dump",
        path(&blocked),
    ]);
    assert!(
        error.contains(&format!("cannot create the dump folder {}", blocked.display())),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every cell decision recorded by the searches in docs/results, made before decision rules were pluggable, is
/// made again, edge for edge and score for score, by the published rule from the recorded r_ntk and r_lrc; and the
/// reference profile keeps that rule.
#[test]
fn the_published_rule_remakes_every_recorded_decision_and_the_reference_profile_keeps_it() {
    use spidernet::metrics::{DecisionRule, NtkMode};
    use spidernet::search::{IterationRecord, Profile};
    assert_eq!(Profile::Reference.metrics().rule, DecisionRule::Published);
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results/budget-30m/runs");
    let mut remade = 0;
    for seed in 0..3 {
        let history = runs.join(format!("spidernet-seed{seed}/history.jsonl"));
        let text = std::fs::read_to_string(&history).unwrap_or_else(|e| panic!("{}: {e}", history.display()));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let record: IterationRecord = serde_json::from_str(line).unwrap();
            for decision in &record.decisions {
                let mut reports = decision.tried.clone();
                for report in &mut reports {
                    report.score = None;
                }
                let chosen = DecisionRule::Published.choose(&mut reports, NtkMode::Sound);
                assert_eq!(chosen, decision.chosen, "{}: cell {}", history.display(), decision.cell);
                let scores =
                    |r: &[CandidateReport]| r.iter().map(|r| (r.edge, r.score, r.accepted())).collect::<Vec<_>>();
                assert_eq!(scores(&reports), scores(&decision.tried));
                remade += 1;
            }
        }
    }
    assert!(remade >= 9, "only {remade} decisions found");
}
