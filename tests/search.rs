//! The search end to end: the memory gate, both strategies, the run folder, and resuming after a kill.

mod common;

use common::{final_epochs_done, scratch, turn};
use spidernet::data::{DataSource, Digits};
use spidernet::genotype::{Genotype, InputShape};
use spidernet::memory;
use spidernet::search::{
    self, Checkpoint, IterationRecord, Profile, Run, RunDir, SearchConfig, SearchObserver, Strategy,
};
use spidernet::train::TrainObserver;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tch::Device;

struct Quiet;
impl TrainObserver for Quiet {}
impl SearchObserver for Quiet {}

fn small_config(strategy: Strategy) -> SearchConfig {
    let mut config = SearchConfig::new(Profile::Quick, "digits", 1, 4, 3);
    config.strategy = strategy;
    config.iterations = 3;
    config.train.epochs = 1;
    config.final_train.epochs = 3;
    config.metrics.repeats = 1;
    config.metrics.ntk_batches = 1;
    config.metrics.ntk_batch_size = 8;
    config.metrics.lrc_batch_size = 200;
    config.search_samples = Some(400);
    // Gate records from one epoch of a 4-channel supernet rank ops too loosely to cut its edges to 2 ops and keep
    // the accuracy bounds below: these tests train every live op; final_ops has a test of its own.
    config.final_ops = None;
    config.final_train.cut_ops = None;
    config
}

/// A search with `config` on the digits in a fresh folder `name`: the folder and what the search returned.
fn try_run(config: &SearchConfig, name: &str) -> (RunDir, anyhow::Result<search::Summary>) {
    let data = Digits::default().load(config.seed).unwrap();
    let mut run = Run::start(&scratch(name), config.clone(), &data).unwrap();
    let result = run.search(&data, Device::Cpu, &mut Quiet);
    (run.dir().clone(), result)
}

fn run(config: &SearchConfig, name: &str) -> (RunDir, search::Summary) {
    let (dir, summary) = try_run(config, name);
    (dir, summary.unwrap())
}

#[test]
fn both_strategies_grow_the_network_and_fill_the_run_folder() {
    let _turn = turn();
    for strategy in [Strategy::Spidernet, Strategy::Random] {
        let mut config = small_config(strategy);
        if strategy == Strategy::Random {
            // Half the images for twice the epochs: the same number of steps on a seeded subset.
            config.final_samples = Some(719);
            config.final_train.epochs *= 2;
        }
        let (dir, summary) = run(&config, &format!("{strategy:?}"));
        let history: Vec<IterationRecord> = dir.history().unwrap();
        assert_eq!(
            history.first().unwrap().iteration,
            0,
            "the pre-training mutation pass is recorded"
        );
        let applied: usize = history
            .iter()
            .map(|r| r.mutations.iter().filter(|m| m.applied).count())
            .sum();
        assert!(applied > 0, "{strategy:?} applied no split");
        let genotype = Genotype::load(&dir.genotype_path()).unwrap();
        assert!(
            genotype.cells.iter().map(|c| c.edges.len()).sum::<usize>() > 5,
            "the minimal R=1 net has 5 edges"
        );
        if strategy == Strategy::Spidernet {
            assert!(
                history.iter().any(|r| !r.decisions.is_empty()),
                "scored candidates are logged"
            );
        } else {
            assert!(history.iter().all(|r| r.decisions.is_empty()));
        }
        for record in history.iter().filter(|r| r.iteration > 0) {
            assert!(record.validation_accuracy.is_some());
        }
        // Three epochs of a 4-channel network reach about 37 % here (chance is 10 %): well above chance, and a
        // test loss below the ln 10 of a uniform guess.
        let (accuracy, loss) = (summary.test_accuracy.unwrap(), summary.test_loss.unwrap());
        assert!(accuracy > 0.25, "{strategy:?}: test accuracy {accuracy}");
        assert!(loss < 10f64.ln(), "{strategy:?}: test loss {loss}");
        assert_eq!(summary.live_ops, genotype.live_op_count());
        let expected_samples = if strategy == Strategy::Random { 719 } else { 1438 };
        assert_eq!(summary.final_training_samples, expected_samples);
        let peak = summary
            .final_training_peak_rss_bytes
            .expect("peak RSS is measured on CPU");
        assert!(
            peak > 100 << 20,
            "the process holds libtorch and the data: peak {peak} bytes"
        );
        for file in [
            "config.json",
            "summary.json",
            "weights.safetensors",
            "checkpoint/state.json",
        ] {
            assert!(dir.root().join(file).exists(), "{file} missing");
        }
        // Tensor names follow genotype.json: every op tensor belongs to a live op of the saved genotype.
        let weights = tch::Tensor::read_safetensors(dir.weights_path()).unwrap();
        let genotype = spidernet::genotype::Genotype::load(&dir.genotype_path()).unwrap();
        let mut op_tensors = 0;
        for (name, _) in &weights {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() > 4 && parts[0] == "cells" && parts[2] == "edges" {
                let cell = &genotype.cells[parts[1].parse::<usize>().unwrap()];
                let edge = cell
                    .edge(parts[3].parse().unwrap())
                    .unwrap_or_else(|| panic!("{name}: no such edge"));
                assert!(
                    edge.ops.iter().any(|op| op.name() == parts[4]),
                    "{name}: no such live op"
                );
                op_tensors += 1;
            } else {
                assert!(
                    ["stem", "cells", "towers"].contains(&parts[0]),
                    "{name} is not a documented name"
                );
            }
        }
        let gates = weights.iter().filter(|(name, _)| name.ends_with(".gate")).count();
        assert_eq!(gates, genotype.live_op_count(), "one gate per live op");
        assert!(op_tensors > gates);
        let _ = std::fs::remove_dir_all(dir.root());
    }
}

#[test]
fn a_small_budget_stops_growth_and_no_applied_split_exceeds_it() {
    let _turn = turn();
    let mut config = small_config(Strategy::Random);
    config.final_training = false;
    config.iterations = 6;
    let data = Digits::default().load(config.seed).unwrap();
    let minimal = Genotype::minimal(1, 4, data.shape, data.classes).unwrap();
    let base = memory::estimate(&minimal, 4, config.train.batch_size).total();
    // Room for a few splits, not for six iterations of growth.
    config.memory_budget = base * 2;
    let (dir, summary) = run(&config, "budget");
    let history = dir.history().unwrap();
    let mutations: Vec<_> = history.iter().flat_map(|r| r.mutations.clone()).collect();
    assert!(mutations.iter().any(|m| m.applied), "some split must fit");
    assert!(mutations.iter().any(|m| !m.applied), "some split must be refused");
    for m in &mutations {
        assert_eq!(m.applied, m.estimated_bytes <= config.memory_budget, "{m:?}");
    }
    for record in &history {
        assert!(record.memory.total() <= config.memory_budget);
    }
    assert!(
        summary.stopped.contains("memory budget"),
        "stopped: {}",
        summary.stopped
    );
    let _ = std::fs::remove_dir_all(dir.root());
}

fn spidernet(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spidernet"));
    command.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// Runs `spidernet search` on the digits at R = 1, C = 4 with `flags`, and keeps what it printed.
fn small_search_output(flags: &[&str]) -> std::process::Output {
    let mut args = vec!["search", "--reductions", "1", "--channels", "4"];
    args.extend(flags);
    spidernet(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn history_lines(root: &Path) -> usize {
    std::fs::read_to_string(root.join("history.jsonl")).map_or(0, |t| t.lines().count())
}

/// Waits until `reached` holds for the running `child`, failing if it ends first or takes two minutes.
fn wait_until(child: &mut std::process::Child, mut reached: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !reached() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not reach {what}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it reached {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `command`, SIGKILLs it as soon as `reached` holds, and waits for it.
fn kill_when(mut command: Command, reached: impl FnMut() -> bool, what: &str) {
    let mut child = command.spawn().unwrap();
    wait_until(&mut child, reached, what);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Starts `command` with its stderr captured, sends it SIGTERM as soon as `reached` holds, and returns its exit
/// status, its stderr and the seconds it took to exit after the signal.
fn terminate_when(mut command: Command, reached: impl FnMut() -> bool, what: &str) -> (i32, String, f64) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    wait_until(&mut child, reached, what);
    let signalled = Instant::now();
    // SAFETY: kill(2) on the child's pid has no memory effects in this process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let output = child.wait_with_output().unwrap();
    let code = output.status.code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        signalled.elapsed().as_secs_f64(),
    )
}

#[test]
fn a_final_training_killed_or_terminated_after_an_epoch_resumes_to_bitwise_the_same_weights() {
    let _turn = turn();
    let settings = "--strategy random --reductions 1 --channels 4 --iterations 1 --epochs-per-iteration 1 --search-samples 300 --final-epochs 6 --final-samples 640 --seed 6";
    let search = |out: &Path| {
        let mut command = spidernet(&["search", "--out", &out.display().to_string()]);
        command.args(settings.split(' '));
        command
    };
    let whole = scratch("final-whole");
    assert!(search(&whole).status().unwrap().success());
    let weights = |root: &Path| std::fs::read(root.join("weights.safetensors")).unwrap();
    let accuracy = |root: &Path| RunDir::open(root).unwrap().0.summary().unwrap().unwrap().test_accuracy;
    let resumes_to_the_whole_run = |root: &Path| {
        let done = final_epochs_done(root);
        assert!(
            (1..6).contains(&done) && !root.join("summary.json").exists(),
            "stopped mid-final-training ({done} epochs recorded)"
        );
        let status = spidernet(&["search", "--resume", &root.display().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(weights(root) == weights(&whole), "the resumed weights differ");
        assert_eq!(accuracy(root), accuracy(&whole));
        assert!(
            !root.join("checkpoint/final.json").exists(),
            "the finished run keeps no final checkpoint"
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.join("checkpoint"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().contains("final-epoch-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    };

    let killed = scratch("final-killed");
    kill_when(
        search(&killed),
        || final_epochs_done(&killed) >= 1,
        "its first final epoch",
    );
    resumes_to_the_whole_run(&killed);

    // SIGTERM (as from kill, SLURM or Kubernetes) stops at the next batch, says how to resume, and exits 143.
    let terminated = scratch("final-terminated");
    let (code, stderr, seconds) = terminate_when(
        search(&terminated),
        || final_epochs_done(&terminated) >= 1,
        "its first final epoch",
    );
    assert_eq!(code, 143, "{stderr}");
    let hint = format!(
        "interrupted; resume with: spidernet search --resume {}",
        terminated.display()
    );
    assert!(stderr.contains(&hint), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(seconds < 10.0, "it took {seconds:.1} s to stop");
    resumes_to_the_whole_run(&terminated);
    for root in [&whole, &killed, &terminated] {
        let _ = std::fs::remove_dir_all(root);
    }
}

#[test]
fn a_search_killed_in_its_third_iteration_resumes_to_the_same_genotype() {
    let _turn = turn();
    // With inherited weights, so that the tensors saved for the next iteration are resumed from too.
    let settings = "--strategy random --reductions 1 --channels 4 --iterations 5 --epochs-per-iteration 1 --search-samples 300 --no-final --inherit-weights --seed 4";
    let search = |out: &Path| {
        let mut command = spidernet(&["search", "--out", &out.display().to_string()]);
        command.args(settings.split(' '));
        command
    };
    let whole = scratch("whole");
    assert!(search(&whole).status().unwrap().success());

    let killed = scratch("killed");
    // Records 0 (pre-training pass), 1 and 2 are written: iteration 3 is running.
    kill_when(search(&killed), || history_lines(&killed) >= 3, "its third iteration");
    assert!(history_lines(&killed) < 6, "killed before the end");
    let killed_arg = killed.display().to_string();
    let status = spidernet(&["search", "--resume", &killed_arg]).status().unwrap();
    assert!(status.success());
    let resumed = Genotype::load(&killed.join("genotype.json")).unwrap();
    let uninterrupted = Genotype::load(&whole.join("genotype.json")).unwrap();
    assert_eq!(resumed, uninterrupted);
    assert_eq!(history_lines(&killed), history_lines(&whole));
    // Training, too, continued exactly: the inherited tensors were resumed from, not fresh ones.
    let accuracies = |root: &Path| -> Vec<Option<f64>> {
        let (dir, _, _) = RunDir::open(root).unwrap();
        dir.history().unwrap().iter().map(|r| r.validation_accuracy).collect()
    };
    assert_eq!(accuracies(&killed), accuracies(&whole));
    let _ = std::fs::remove_dir_all(&whole);
    let _ = std::fs::remove_dir_all(&killed);
}

#[test]
fn a_run_folder_can_be_resumed_from_the_moment_it_is_created() {
    let config = small_config(Strategy::Random);
    let data = Digits::default().load(config.seed).unwrap();
    let root = scratch("created");
    let created = Run::start(&root, config.clone(), &data).unwrap();
    let genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
    assert_eq!(created.checkpoint().genotype, genotype);
    // A second run on the same folder is refused while the first holds it.
    let error = format!("{:#}", Run::resume(&root).unwrap_err());
    assert!(error.contains("is in use by process"), "{error}");
    drop(created);
    // What a run interrupted before its first step leaves: resume starts it from the beginning.
    let run = Run::resume(&root).unwrap();
    assert_eq!((run.checkpoint().completed, &run.checkpoint().genotype), (0, &genotype));
    assert!(run.dir().history().unwrap().is_empty() && run.plans().is_empty());
    assert_eq!(run.settings(), &{
        let mut recorded = config;
        recorded.record_final_augmentation(&data);
        recorded
    });
    drop(run);
    // The temporaries of writes a crash cut short go when the run resumes; the run's own files stay.
    let strays = [
        root.join(".config.json.tmp-77-0"),
        root.join("checkpoint/.state.json.tmp-77-3"),
    ];
    for stray in &strays {
        std::fs::write(stray, "half").unwrap();
    }
    std::fs::write(root.join(".lock"), "77\n").unwrap();
    let run = Run::resume(&root).unwrap();
    assert!(strays.iter().all(|stray| !stray.exists()));
    let dir = run.dir();
    assert!(root.join(".lock").exists() && dir.checkpoint_path().exists() && dir.config_path().exists());
    drop(run);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn corrupt_or_mismatched_checkpoints_are_refused_and_left_alone() {
    let _turn = turn();
    let mut config = small_config(Strategy::Random);
    config.iterations = 1;
    config.final_training = false;
    let (dir, _) = run(&config, "corrupt");
    let state = dir.checkpoint_path();
    let good = std::fs::read_to_string(&state).unwrap();

    std::fs::write(&state, &good[..good.len() / 2]).unwrap();
    let error = Run::resume(dir.root()).unwrap_err();
    assert!(format!("{error:#}").contains("state.json is corrupt"), "{error:#}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), good[..good.len() / 2]);

    std::fs::write(&state, good.replace("\"seed\": 3", "\"seed\": 99")).unwrap();
    let error = format!("{:#}", Run::resume(dir.root()).unwrap_err());
    assert!(error.contains("does not match") && error.contains("seed 99"), "{error}");

    let data = Digits::default().load(config.seed).unwrap();
    let error = format!("{:#}", Run::start(dir.root(), config, &data).unwrap_err());
    assert!(error.contains("already holds a run"), "{error}");
    let _ = std::fs::remove_dir_all(dir.root());
}

#[test]
fn json_events_go_to_stdout_one_object_per_line_and_logs_to_stderr() {
    let _turn = turn();
    let root = scratch("json-events");
    let output = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args([
            "search",
            "--json",
            "--iterations",
            "1",
            "--epochs-per-iteration",
            "1",
            "--final-epochs",
            "1",
            "--reductions",
            "1",
            "--channels",
            "4",
            "--search-samples",
            "300",
            "--final-samples",
            "300",
            "--seed",
            "3",
        ])
        .arg("--out")
        .arg(&root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"iteration_started"));
    assert_eq!(names.last(), Some(&"final_result"));
    assert_eq!(
        names.iter().filter(|n| **n == "iteration_finished").count(),
        2,
        "iterations 0 and 1"
    );
    assert!(
        names.contains(&"candidate_scored") && names.contains(&"epoch_finished"),
        "{names:?}"
    );
    let applied = events.iter().filter(|e| e["event"] == "mutation_applied");
    for event in applied {
        assert!(
            event["r_ntk"].is_number() && event["mutation"]["applied"] == true,
            "{event}"
        );
    }
    let last = events.last().unwrap();
    assert_eq!(last["run_folder"].as_str(), Some(root.to_str().unwrap()));
    assert!(last["summary"]["test_accuracy"].is_number());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("search stopped") && stderr.contains("test accuracy"),
        "{stderr}"
    );
    let report = std::fs::read_to_string(root.join("report.html")).expect("the search writes report.html");
    let accuracy = last["summary"]["test_accuracy"].as_f64().unwrap();
    assert!(
        report.contains(&format!("test accuracy {:.2} %", 100.0 * accuracy)),
        "the report shows the final test accuracy"
    );
    assert!(
        stderr.contains(&format!("report: {}", root.join("report.html").display())),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_non_finite_loss_stops_the_search_and_keeps_the_last_good_checkpoint() {
    let _turn = turn();
    let mut config = small_config(Strategy::Random);
    config.train.lr_max = 1e30;
    let (dir, result) = try_run(&config, "non-finite");
    let root = dir.root().to_path_buf();
    let error = result.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.starts_with("search iteration 1: the training loss became") && message.contains("at epoch 1, batch"),
        "{message}"
    );
    // The premutation pass was committed before training began, and the folder still resumes from it.
    let (_, _, checkpoint) = RunDir::open(&root).unwrap();
    assert_eq!(checkpoint.completed, 1);
    assert!(checkpoint.stopped.is_none());
    assert!(!root.join("weights.safetensors").exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn strategy_none_trains_the_initial_genotype_without_searching() {
    let _turn = turn();
    let mut config = small_config(Strategy::Unchanged);
    config.final_train.epochs = 1;
    let (dir, summary) = run(&config, "strategy-none");
    let data = Digits::default().load(config.seed).unwrap();
    let initial = Genotype::minimal(config.reductions, config.channels, data.shape, data.classes).unwrap();
    let (_, _, checkpoint) = RunDir::open(dir.root()).unwrap();
    assert_eq!(
        checkpoint.genotype, initial,
        "the search left the initial genotype as it was"
    );
    // The final training may deadhead ops, but it adds nothing: the same edges, each with a subset of its ops.
    let trained = Genotype::load(&dir.genotype_path()).unwrap();
    for (after, before) in trained.cells.iter().zip(&initial.cells) {
        let ids = |cell: &spidernet::genotype::Cell| cell.edges.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(after), ids(before));
        for edge in &after.edges {
            let original = before.edge(edge.id).unwrap();
            assert!(edge.ops.iter().all(|op| original.ops.contains(op)));
        }
    }
    assert!(
        dir.history().unwrap().is_empty(),
        "nothing was scored or trained before the final training"
    );
    assert_eq!(summary.iterations, 0);
    assert!(summary.stopped.starts_with("strategy none"), "{}", summary.stopped);
    assert!(summary.test_accuracy.is_some());
    assert!(dir.root().join("weights.safetensors").is_file());
    let _ = std::fs::remove_dir_all(dir.root());
}

#[test]
fn a_time_budgeted_search_plans_from_measurements_records_its_plans_and_ends_near_its_budget() {
    let _turn = turn();
    let root = scratch("time-budget");
    let start = Instant::now();
    let status = spidernet(&[
        "search",
        "--time-budget",
        "20s",
        "--reductions",
        "1",
        "--channels",
        "4",
        // The quick profile's default expected gain would end the search before its first pass.
        "--split-gain",
        "off",
        "--out",
        &root.display().to_string(),
    ])
    .status()
    .unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success());
    let (dir, asked, _) = RunDir::open(&root).unwrap();
    let summary = dir.summary().unwrap().unwrap();
    // Loose bounds: the budget is 20 s; a loaded test machine may run late, never twice over.
    assert!(
        summary.run_seconds <= 30.0 && wall <= 40.0,
        "{} s in the run, {wall} s in all",
        summary.run_seconds
    );
    assert!(
        summary.run_seconds >= 8.0,
        "the plan used little of the budget: {} s",
        summary.run_seconds
    );
    assert!(summary.final_epochs >= 1 && summary.test_accuracy.is_some());
    // Every plan is in plans.jsonl, the last one ruling; config.json keeps the settings asked for.
    let plans = dir.plans().unwrap();
    let made: Vec<&str> = plans.iter().map(|p| p.made.as_str()).collect();
    assert_eq!(made.first(), Some(&"start"), "{made:?}");
    let final_plans = &made[made.len().saturating_sub(2)..];
    assert!(
        final_plans.contains(&"before the final training"),
        "the final training is planned: {made:?}"
    );
    assert_eq!(
        (asked.iterations, asked.search_samples, asked.final_samples),
        (Profile::Quick.iterations(), None, None)
    );
    assert_eq!(asked.split_gain, None);
    assert!(
        !dir.history().unwrap().is_empty(),
        "the search grew before the final training"
    );
    let followed = asked.following(plans.last());
    let last = plans.last().unwrap();
    assert_eq!(followed.final_train.epochs, last.final_epochs);
    // Each final epoch draws its images from the whole training split: no fixed subset.
    assert!(plans.iter().all(|p| p.final_draws_afresh), "{plans:?}");
    assert_eq!(
        (followed.final_samples, followed.final_train.epoch_images),
        (None, Some(last.final_samples))
    );
    assert_eq!(summary.final_training_samples, last.final_samples);
    assert_eq!(followed.iterations, last.iterations);
    assert_eq!(followed.search_samples, Some(plans[0].search_samples));
    assert!(plans.iter().all(|p| p.search_samples == plans[0].search_samples));
    assert!(dir.history().unwrap().iter().all(|r| r.plans.is_empty()));
    assert!(
        plans
            .iter()
            .all(|p| p.seconds_per_image > 0.0 && p.predicted_seconds <= 20.0 + 1e-9 || p.spent_seconds > 20.0)
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn final_ops_cuts_every_edge_of_the_trained_network_to_k_ops() {
    let _turn = turn();
    let mut config = small_config(Strategy::Random);
    config.iterations = 1;
    config.final_train.epochs = 1;
    config.final_ops = Some(2);
    let (dir, summary) = run(&config, "final-ops");
    let trained = Genotype::load(&dir.genotype_path()).unwrap();
    let searched: Checkpoint = serde_json::from_str(&std::fs::read_to_string(dir.checkpoint_path()).unwrap()).unwrap();
    assert!(trained.cells.iter().flat_map(|c| &c.edges).all(|e| e.ops.len() <= 2));
    assert!(searched.genotype.live_op_count() > trained.live_op_count());
    assert_eq!(summary.live_ops, trained.live_op_count());
    // The ranking came from the last training's gate records.
    let history = dir.history().unwrap();
    assert!(!history.last().unwrap().gate_open.is_empty());
    let _ = std::fs::remove_dir_all(dir.root());
}

#[test]
fn a_network_no_supernet_training_ranked_is_cut_after_its_first_final_epoch_by_its_own_gates() {
    let _turn = turn();
    let root = scratch("final-ops-after");
    let search = |flags: &[&str]| small_search_output(&[&["--strategy", "none"], flags].concat());
    let out = root.display().to_string();
    // The final training's epoch reports, from a successful run's JSON events.
    let epoch_reports = |output: std::process::Output| -> Vec<serde_json::Value> {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["event"] == "epoch_finished")
            .map(|event| event["report"].clone())
            .collect()
    };
    let epochs = epoch_reports(search(&["--final-epochs", "3", "--json", "--out", &out]));
    assert_eq!(epochs.len(), 3);
    let cut = |report: &serde_json::Value| report["deadhead"]["cut"].as_array().map_or(0, Vec::len);
    let found = Genotype::load(&root.join("found-genotype.json")).unwrap();
    let trained = Genotype::load(&root.join("genotype.json")).unwrap();
    let edges: usize = found.cells.iter().map(|c| c.edges.len()).sum();
    assert_eq!(
        found.live_op_count(),
        7 * edges,
        "nothing is cut before the final training"
    );
    assert!(
        cut(&epochs[0]) > 0,
        "the cut is made after epoch 1: {:?}",
        epochs[0]["deadhead"]
    );
    assert!(epochs[0]["live_ops"].as_u64().unwrap() as usize <= 2 * edges);
    assert_eq!((cut(&epochs[1]), cut(&epochs[2])), (0, 0), "and only then");
    assert!(trained.cells.iter().flat_map(|c| &c.edges).all(|e| e.ops.len() <= 2));
    let (_, asked, _) = RunDir::open(&root).unwrap();
    let recorded = asked.final_train.cut_ops.expect("config.json records the cut");
    assert_eq!(
        (recorded.after_epoch, recorded.keep),
        (1.0, Profile::Quick.final_ops().unwrap())
    );
    let _ = std::fs::remove_dir_all(&root);

    // `--final-ops-after` picks the epoch, `--final-ops` the ops kept.
    let later = search(&[
        "--final-ops-after",
        "2",
        "--final-ops",
        "3",
        "--no-final",
        "--out",
        &out,
    ]);
    assert!(later.status.success(), "{}", String::from_utf8_lossy(&later.stderr));
    let (_, asked, _) = RunDir::open(&root).unwrap();
    let recorded = asked.final_train.cut_ops.unwrap();
    assert_eq!((recorded.after_epoch, recorded.keep), (2.0, 3));
    let _ = std::fs::remove_dir_all(&root);

    // A fraction cuts part-way through an epoch: within the only epoch of a 1-epoch training, where a cut at its
    // end would leave the cut network untrained and is not made.
    for (after, cut_part_way) in [("0.5", true), ("1", false)] {
        let flags = [
            "--final-epochs",
            "1",
            "--final-ops-after",
            after,
            "--json",
            "--out",
            &out,
        ];
        let epochs = epoch_reports(search(&flags));
        assert_eq!(epochs.len(), 1);
        assert_eq!(
            cut(&epochs[0]) > 0,
            cut_part_way,
            "--final-ops-after {after}: {:?}",
            epochs[0]["deadhead"]
        );
        let trained = Genotype::load(&root.join("genotype.json")).unwrap();
        if cut_part_way {
            assert!(trained.cells.iter().flat_map(|c| &c.edges).all(|e| e.ops.len() <= 2));
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    // The reference profile keeps every op: there is nothing to cut.
    let refused = search(&["--profile", "reference", "--final-ops-after", "1", "--out", &out]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--final-ops-after 1: there is no cut to make"),
        "{stderr}"
    );
    assert!(!root.join("config.json").exists(), "a refused run left a run folder");
    let _ = std::fs::remove_dir_all(&root);
}

/// Copies the files of `from` and its subfolders into `to`.
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_time_budgeted_run_interrupted_mid_search_by_the_earlier_format_resumes_to_the_end() {
    let _turn = turn();
    // `search --time-budget 40s --reductions 1 --channels 4 --seed 5`, killed during iteration 1 by the code
    // before plans had a file of their own: config.json holds the plans and the settings they chose.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-time-budget-interrupted");
    let root = scratch("time-budget-fixture");
    copy_folder(&fixture, &root);
    let config_json = std::fs::read(root.join("config.json")).unwrap();
    let run = Run::resume(&root).unwrap();
    let earlier = run.plans().to_vec();
    assert_eq!(earlier.iter().map(|p| p.made.as_str()).collect::<Vec<_>>(), ["start"]);
    // Its config.json already follows its plan: following it again changes no size (a plan's final_samples of
    // the whole training split reads as all of it).
    let (asked, followed) = (run.settings(), run.planned_settings());
    assert_eq!(
        (
            followed.search_samples,
            followed.iterations,
            followed.train.epochs,
            followed.final_train.epochs
        ),
        (
            asked.search_samples,
            asked.iterations,
            asked.train.epochs,
            asked.final_train.epochs
        )
    );
    assert_eq!((asked.final_samples, followed.final_samples), (None, Some(1438)));
    assert_eq!(
        (run.checkpoint().completed, run.checkpoint().stopped.as_deref()),
        (1, None)
    );
    let spent_before = run.checkpoint().elapsed_seconds;
    drop(run);

    let status = spidernet(&["search", "--resume", &root.display().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (dir, _, checkpoint) = RunDir::open(&root).unwrap();
    let plans = dir.plans().unwrap();
    assert_eq!(plans[0], earlier[0], "the earlier plan is kept");
    assert!(
        plans.iter().any(|p| p.made == "before the final training"),
        "{:?}",
        plans.iter().map(|p| &p.made).collect::<Vec<_>>()
    );
    assert!(
        checkpoint.completed >= 2 && checkpoint.stopped.is_some(),
        "{checkpoint:?}"
    );
    let summary = dir.summary().unwrap().unwrap();
    assert!(summary.test_accuracy.is_some() && summary.final_epochs >= 1);
    assert!(
        summary.run_seconds > spent_before,
        "the clock went on from the earlier process"
    );
    assert_eq!(
        std::fs::read(root.join("config.json")).unwrap(),
        config_json,
        "config.json is never rewritten"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn train_on_the_found_genotype_with_the_search_seed_gives_the_search_final_weights_bitwise() {
    let _turn = turn();
    let root = scratch("retrain-found");
    let settings = "--strategy random --reductions 1 --channels 4 --iterations 1 --epochs-per-iteration 1 --search-samples 300 --final-epochs 2 --final-samples 640 --seed 11";
    let mut search = spidernet(&["search", "--out", &root.display().to_string()]);
    search.args(settings.split(' '));
    assert!(search.status().unwrap().success());
    let found = root.join(search::FOUND_GENOTYPE_FILE);
    let searched: Checkpoint =
        serde_json::from_str(&std::fs::read_to_string(root.join("checkpoint/state.json")).unwrap()).unwrap();
    let found_genotype = Genotype::load(&found).unwrap();
    assert!(
        found_genotype.live_op_count() < searched.genotype.live_op_count(),
        "the found genotype is the searched one cut to 2 ops per edge"
    );
    let train = |seed: &str, out: &Path| {
        let found = found.display().to_string();
        let out = out.display().to_string();
        let args = [
            "train",
            &found,
            "--seed",
            seed,
            "--epochs",
            "2",
            "--train-samples",
            "640",
            "--out",
            &out,
        ];
        assert!(spidernet(&args).status().unwrap().success());
        std::fs::read(Path::new(&out).join("weights.safetensors")).unwrap()
    };
    let weights = std::fs::read(root.join("weights.safetensors")).unwrap();
    assert!(
        train("11", &root.join("same-seed")) == weights,
        "train with the search's seed differs"
    );
    assert_eq!(
        Genotype::load(&root.join("same-seed/genotype.json")).unwrap(),
        Genotype::load(&root.join("genotype.json")).unwrap()
    );
    assert!(
        train("12", &root.join("other-seed")) != weights,
        "another seed trains other weights"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The rank of each value from 1, largest first, ties sharing their mean rank.
fn ranks_descending(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .map(|v| {
            let above = values.iter().filter(|w| *w > v).count() as f64;
            let tied = values.iter().filter(|w| *w == v).count() as f64;
            above + (tied + 1.0) / 2.0
        })
        .collect()
}

#[test]
fn a_ranked_rule_scores_every_edge_and_splits_at_the_best_mean_rank() {
    use spidernet::metrics::zero_cost::MetricName;
    let _turn = turn();
    let mut config = small_config(Strategy::Spidernet);
    config.metrics.rule = spidernet::metrics::DecisionRule::parse("naswot+parameters").unwrap();
    config.iterations = 1;
    config.final_training = false;
    let (dir, _) = run(&config, "ranked-rule");
    let history = dir.history().unwrap();
    let start = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
    let mut decisions = 0;
    for record in &history {
        for decision in &record.decisions {
            decisions += 1;
            let naswot: Vec<f64> = decision.tried.iter().map(|r| r.signals[&MetricName::Naswot]).collect();
            let parameters: Vec<f64> = decision
                .tried
                .iter()
                .map(|r| r.signals[&MetricName::Parameters])
                .collect();
            assert!(
                parameters.iter().all(|&p| p > 0.0),
                "a split adds parameters: {parameters:?}"
            );
            let expected: Vec<f64> = ranks_descending(&naswot)
                .iter()
                .zip(ranks_descending(&parameters))
                .map(|(a, b)| (a + b) / 2.0)
                .collect();
            let scores: Vec<f64> = decision.tried.iter().map(|r| r.score.unwrap()).collect();
            assert_eq!(scores, expected, "cell {}", decision.cell);
            assert!(decision.tried.iter().all(|r| r.accepted()));
            let best = scores.iter().copied().fold(f64::INFINITY, f64::min);
            let first_best = decision.tried[scores.iter().position(|&s| s == best).unwrap()].edge;
            assert_eq!(decision.chosen, Some(first_best));
            if record.iteration == 0 {
                assert_eq!(
                    decision.tried.len(),
                    start.cells[decision.cell].edges.len(),
                    "a ranked rule scores every edge of the cell"
                );
            }
        }
    }
    assert!(decisions >= 2, "{decisions} decisions");
}

#[test]
fn a_time_budgeted_search_weighs_each_split_by_its_measured_step_time() {
    let _turn = turn();
    let root = scratch("split-gain");
    // An expected gain of 0.01 points: a split is worth its time only if it measured less than 0.75 % slower.
    let status = spidernet(&[
        "search",
        "--time-budget",
        "15s",
        "--reductions",
        "1",
        "--channels",
        "4",
        "--split-gain",
        "0.01",
        "--out",
        &root.display().to_string(),
    ])
    .status()
    .unwrap();
    assert!(status.success());
    let (dir, asked, _) = RunDir::open(&root).unwrap();
    assert_eq!(asked.split_gain, Some(0.0001), "points are stored as a fraction");
    assert_eq!(
        Profile::Reference.split_gain(),
        None,
        "the reference profile grows as published"
    );
    let plans = dir.plans().unwrap();
    let history = dir.history().unwrap();
    let premutation = &history[0];
    assert!(!premutation.mutations.is_empty());
    for mutation in history.iter().flat_map(|r| &r.mutations) {
        let time = mutation.time.as_ref().expect("every split that fits is timed");
        assert!(time.seconds_per_image_before > 0.0 && time.seconds_per_image_after > 0.0);
        assert_eq!(time.expected_gain, 0.0001);
        assert_eq!(
            time.worth,
            time.seconds_per_image_after < time.seconds_per_image_before * (0.0001f64 / 0.0134).exp()
        );
        assert_eq!(mutation.applied, time.worth);
        assert_eq!(mutation.refusal(), (!time.worth).then_some("not worth its time"));
    }
    for mutation in &premutation.mutations {
        let time = mutation.time.as_ref().unwrap();
        assert_eq!(time.final_epochs, None, "the first plan needs the first pass's time");
    }
    for record in &history[1..] {
        let previous = match record.iteration - 1 {
            0 => "start".to_string(),
            n => format!("after iteration {n}"),
        };
        let in_force = plans.iter().rev().find(|p| p.made == previous);
        for mutation in &record.mutations {
            let time = mutation.time.as_ref().unwrap();
            assert_eq!(
                time.final_epochs,
                in_force.map(|p| p.final_epochs),
                "the plan in force when the pass ran"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);

    // `off` grows regardless of time: nothing is timed, every split that fits is made.
    let budgeted = |out: &Path, flags: &[&str]| {
        let out = out.display().to_string();
        small_search_output(&[&["--time-budget", "10s", "--out", &out], flags].concat())
    };
    let unweighed = scratch("split-gain-off");
    let run = |gain: &str| budgeted(&unweighed, &["--split-gain", gain]);
    let refused = run("a lot");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("\"a lot\" is not accuracy points") && stderr.contains("or off"),
        "{stderr}"
    );
    assert!(run("off").status.success());
    let (dir, asked, _) = RunDir::open(&unweighed).unwrap();
    assert_eq!(asked.split_gain, None);
    let mutations: Vec<_> = dir.history().unwrap().into_iter().flat_map(|r| r.mutations).collect();
    assert!(!mutations.is_empty());
    assert!(mutations.iter().all(|m| m.time.is_none() && m.applied));
    let _ = std::fs::remove_dir_all(&unweighed);

    // The quick profile's measured gain is negative: no split can pay, so nothing is scored or trained before the
    // final training, which gets the whole budget.
    let quick = scratch("split-gain-quick");
    let output = budgeted(&quick, &[]);
    assert!(output.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("no split can be worth its time"), "{printed}");
    let (dir, asked, _) = RunDir::open(&quick).unwrap();
    assert_eq!(asked.split_gain, Profile::Quick.split_gain());
    assert!(dir.history().unwrap().is_empty(), "no pass was scored");
    let summary = dir.summary().unwrap().unwrap();
    assert!(
        summary.stopped.starts_with("no split can be worth its time"),
        "{}",
        summary.stopped
    );
    assert_eq!((summary.iterations, summary.search_scoring_seconds), (0, 0.0));
    assert!(summary.final_epochs >= 1 && summary.test_accuracy.is_some());
    let plans = dir.plans().unwrap();
    assert!(plans.iter().any(|p| p.made == "before the final training"), "{plans:?}");
    let _ = std::fs::remove_dir_all(&quick);
}

#[test]
fn a_checkpointed_training_killed_after_an_epoch_continues_to_the_same_weights_and_curve() {
    let _turn = turn();
    let root = scratch("train-checkpoint");
    let genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
    let genotype_file = root.join("genotype.json");
    std::fs::write(&genotype_file, genotype.to_json()).unwrap();
    let train = |name: &str, epochs: &str| {
        let file = genotype_file.display().to_string();
        let dir = |what: &str| root.join(format!("{name}-{what}")).display().to_string();
        let mut command = spidernet(&[
            "train",
            &file,
            "--epochs",
            epochs,
            "--train-samples",
            "640",
            "--seed",
            "3",
        ]);
        command.args([
            "--checkpoint",
            &dir("checkpoint"),
            "--curve",
            &dir("curve.jsonl"),
            "--out",
            &dir("out"),
        ]);
        command
    };
    let weights = |name: &str| std::fs::read(root.join(format!("{name}-out/weights.safetensors"))).unwrap();
    let curve = |name: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(root.join(format!("{name}-curve.jsonl"))).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    };
    assert!(train("whole", "4").status().unwrap().success());

    let checkpoint = root.join("killed-checkpoint");
    kill_when(
        train("killed", "4"),
        || final_epochs_done(&checkpoint) == 1,
        "its first epoch",
    );
    assert_eq!(final_epochs_done(&checkpoint), 1);
    assert!(train("killed", "4").status().unwrap().success());
    assert!(weights("killed") == weights("whole"), "the continued weights differ");
    let accuracies = |points: &[serde_json::Value]| -> Vec<f64> {
        points.iter().map(|p| p["eval"]["accuracy"].as_f64().unwrap()).collect()
    };
    let (whole, killed) = (curve("whole"), curve("killed"));
    assert_eq!(
        killed.len(),
        4,
        "the curve holds every epoch, the first from the checkpoint"
    );
    assert_eq!(accuracies(&killed), accuracies(&whole));

    // Other settings in the same folder are refused, naming its config.json.
    let mut other = train("killed", "5");
    let output = other.stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("config.json") && stderr.contains("other settings"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
