//! Allocation failures under a search (docs/RELIABILITY.md, *Allocation failures*): the test hook makes libtorch
//! really fail to allocate at a chosen candidate or training batch.

mod common;

use common::{scratch, turn};
use spidernet::search::{IterationRecord, RunDir};
use spidernet::system::alloc_failure::INJECT_VARIABLE;
use std::path::Path;
use std::process::{Command, Output};

const TINY_SEARCH: &str = "--reductions 1 --channels 4 --iterations 1 --epochs-per-iteration 1 --search-samples 300 \
                           --seed 3";

fn search(run: &Path, extra: &str, injection: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spidernet"));
    command.args(["search", "--out", run.to_str().unwrap()]);
    command.args(TINY_SEARCH.split_whitespace().chain(extra.split_whitespace()));
    match injection {
        Some(value) => command.env(INJECT_VARIABLE, value),
        None => command.env_remove(INJECT_VARIABLE),
    };
    command.output().unwrap()
}

fn history(run: &Path) -> Vec<IterationRecord> {
    IterationRecord::parse_history(&std::fs::read_to_string(run.join("history.jsonl")).unwrap()).unwrap()
}

#[test]
fn a_candidate_that_cannot_allocate_is_skipped_recorded_and_the_search_goes_on() {
    let _turn = turn();
    let (plain_run, failing_run) = (scratch("alloc-plain"), scratch("alloc-scoring"));
    let plain = search(&plain_run, "--no-final", None);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let failing = search(&failing_run, "--no-final", Some("scoring:2"));
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert!(failing.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("skipped, could not allocate memory (DefaultCPUAllocator"),
        "{stderr}"
    );

    // The mutation pass before training scores first: its second candidate is the one that failed.
    let (expected, got) = (&history(&plain_run)[0], &history(&failing_run)[0]);
    let skipped: Vec<_> = got.decisions.iter().flat_map(|d| &d.skipped).collect();
    assert_eq!(skipped.len(), 1, "{:?}", got.decisions);
    let skip = skipped[0];
    let walk: Vec<_> = expected.decisions.iter().flat_map(|d| &d.tried).collect();
    assert_eq!(
        (skip.cell, skip.edge),
        (walk[1].cell, walk[1].edge),
        "the second candidate of the walk"
    );
    assert!(skip.reason.contains("can't allocate memory") || skip.reason.contains("not enough memory"));
    assert_eq!(skip.ntk_copies_after, (skip.ntk_copies / 2).max(1));
    let scored: Vec<_> = got.decisions.iter().flat_map(|d| &d.tried).collect();
    assert!(scored.iter().all(|r| (r.cell, r.edge) != (skip.cell, skip.edge)));
    // The first candidate was scored before the failure, exactly as without it, and the walk went on after it.
    assert_eq!(
        (scored[0].edge, scored[0].r_ntk, scored[0].r_lrc),
        (walk[0].edge, walk[0].r_ntk, walk[0].r_lrc)
    );
    assert_eq!(scored[0].repeats, walk[0].repeats);
    assert!(scored.len() >= 2, "{scored:?}");
    for run in [plain_run, failing_run] {
        let _ = std::fs::remove_dir_all(run);
    }
}

#[test]
fn a_training_batch_that_cannot_allocate_stops_with_advice_and_the_checkpoint_resumes() {
    let _turn = turn();
    let run = scratch("alloc-training");
    let settings = "--strategy random --final-epochs 1 --final-samples 256";
    let failed = search(&run, settings, Some("training:3"));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("error: search iteration 1: could not allocate memory at epoch 1, batch 3 of")
            && stderr.contains("DefaultCPUAllocator")
            && stderr.contains("The run folder keeps its last checkpoint")
            && stderr.contains("a smaller --memory-budget"),
        "{stderr}"
    );
    let (_, _, checkpoint) = RunDir::open(&run).unwrap();
    assert_eq!(
        checkpoint.completed, 1,
        "the mutation pass before training is the last checkpoint"
    );
    let resumed = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(["search", "--resume", run.to_str().unwrap()])
        .env_remove(INJECT_VARIABLE)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(run.join("weights.safetensors").is_file());
    let _ = std::fs::remove_dir_all(run);
}
