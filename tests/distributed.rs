//! The distributed engine (docs/DISTRIBUTED.md) under torchrun from the venv that set-up installs: 2 processes on
//! 127.0.0.1, Gloo.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The venv's torchrun; set-up must leave it runnable (its shebang at the venv's final path).
fn torchrun() -> std::path::PathBuf {
    let python = common::python();
    python.with_file_name("torchrun")
}

/// `spidernet ARGS` under `torchrun --standalone --nproc-per-node N --no-python`, each rank on one thread.
fn launch(processes: usize, args: &[&str]) -> Output {
    Command::new(torchrun())
        .args([
            "--standalone",
            "--nproc-per-node",
            &processes.to_string(),
            "--no-python",
        ])
        .arg(env!("CARGO_BIN_EXE_spidernet"))
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .env("SPIDERNET_DIST_TIMEOUT", "60s")
        .output()
        .expect("running torchrun")
}

#[test]
fn torchrun_runs_after_set_up() {
    let output = Command::new(torchrun())
        .arg("--help")
        .output()
        .expect("running torchrun --help");
    assert!(
        output.status.success(),
        "torchrun --help failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("--nproc-per-node"));
}

/// The pattern `doctor --distributed` sends: rank r contributes (r + 1)·(i mod 7 + 1) at element i.
fn pattern_sum(elements: usize, scale: f64) -> f64 {
    (0..elements).map(|i| (i % 7 + 1) as f64 * scale).sum()
}

#[test]
fn collectives_give_the_right_values_on_two_ranks() {
    let _turn = common::turn();
    let output = launch(2, &["doctor", "--distributed", "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut ranks: Vec<u64> = reports.iter().map(|r| r["launch"]["rank"].as_u64().unwrap()).collect();
    ranks.sort();
    assert_eq!(ranks, [0, 1], "{stdout}");
    let world = 2.0;
    for report in &reports {
        assert_eq!(report["launch"]["launcher"], "torchrun");
        assert_eq!(report["launch"]["world"], 2);
        let checks = report["checks"].as_array().unwrap();
        let kinds: std::collections::BTreeSet<&str> = checks.iter().map(|c| c["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds.len(), 5, "four tensor kinds and bytes: {kinds:?}");
        assert!(
            checks.iter().any(|c| c["elements"].as_u64().unwrap() > 5_000_000),
            "a check spans buckets"
        );
        for check in checks {
            let (collective, elements) = (
                check["collective"].as_str().unwrap(),
                check["elements"].as_u64().unwrap(),
            );
            let got = check["result_sum"].as_f64().unwrap();
            let expected = match collective {
                "all_reduce_sum" => pattern_sum(elements as usize, world * (world + 1.0) / 2.0),
                "all_reduce_max" => pattern_sum(elements as usize, world),
                // The last rank is the root.
                "broadcast" => pattern_sum(elements as usize, world),
                // Rank r's text is "rank r;" repeated 1000·(r + 1) times.
                "all_gather_bytes" => {
                    let text = "rank 0;".repeat(1000) + &"rank 1;".repeat(2000);
                    text.bytes().map(f64::from).sum()
                }
                "broadcast_bytes" => "rank 0;".repeat(1000).bytes().map(f64::from).sum(),
                other => panic!("unknown collective {other}"),
            };
            assert_eq!(got, expected, "{check}");
            assert_eq!(check["ok"], true, "{check}");
        }
    }
}

#[test]
fn a_rank_that_cannot_reach_the_store_fails_in_time_and_names_the_address() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(["doctor", "--distributed"])
        .env("RANK", "1")
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("SPIDERNET_DIST_TIMEOUT", "3s")
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    let address = format!("127.0.0.1:{port}");
    assert!(
        stderr.contains(&format!(
            "rank 1 of 2 could not join the group through the store at {address} within 3s"
        )),
        "{stderr}"
    );
    // The client retries until its timeout, then gives up within one more retry delay.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(3),
        "gave up before its timeout: {elapsed:?}"
    );
}

/// The genotype the data-parallel tests train: a small grown network of a budgeted digits search.
fn small_genotype() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-time-budget-interrupted/genotype.json")
}

/// (train loss, test accuracy) per epoch.
type Curve = Vec<(f64, f64)>;

/// The curve of a `--curve` file.
fn curve(path: &std::path::Path) -> Curve {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let point: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                point["train_loss"].as_f64().unwrap(),
                point["eval"]["accuracy"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The arguments of `spidernet train` on the small genotype and digits, then `flags`.
fn digits_training(flags: &[&str]) -> Vec<String> {
    let genotype = small_genotype();
    let mut args = vec![
        "train".to_string(),
        common::path(&genotype).to_string(),
        "--data".into(),
        "digits".into(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    args
}

/// Trains the small genotype on digits for 8 epochs at global batch `batch`, alone and on 2 ranks; returns both
/// curves and the 2-rank run's stdout.
fn alone_and_on_two_ranks(batch: usize) -> (Curve, Curve, String) {
    let dir = common::scratch(&format!("data-parallel-{batch}"));
    let args = |curve: &std::path::Path| {
        let batch = batch.to_string();
        digits_training(&[
            "--epochs",
            "8",
            "--batch-size",
            &batch,
            "--seed",
            "3",
            "--curve",
            common::path(curve),
        ])
    };
    let (one, two) = (dir.join("one.jsonl"), dir.join("two.jsonl"));
    let alone = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(args(&one))
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(alone.status.success(), "{}", String::from_utf8_lossy(&alone.stderr));
    let args = args(&two);
    let output = launch(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (curve(&one), curve(&two), stdout)
}

/// The largest relative gap between the two curves' training losses.
fn largest_loss_gap(one: &[(f64, f64)], two: &[(f64, f64)]) -> f64 {
    assert_eq!((one.len(), two.len()), (8, 8));
    one.iter()
        .zip(two)
        .map(|((a, _), (b, _))| (b - a).abs() / a)
        .fold(0.0, f64::max)
}

#[test]
fn data_parallel_training_keeps_the_ranks_identical_and_follows_one_process() {
    let _turn = common::turn();
    // The same global batches, augmentation and drop-path masks on 2 ranks as alone: only the batch norms'
    // statistics differ, over 32 images per rank against 64. Measured: training losses 2-25 % apart.
    let (one, two, stdout) = alone_and_on_two_ranks(64);
    // Both ranks' fingerprints were gathered and compared by the run itself; rank 0 alone reports.
    assert_eq!(
        stdout.matches("2 ranks, identical weights (fingerprint ").count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("test accuracy").count(),
        1,
        "only rank 0 speaks: {stdout}"
    );
    assert_ne!(one, two, "per-rank batch norms must show");
    assert!(largest_loss_gap(&one, &two) < 0.35, "{one:?}\n{two:?}");
    // With 128 images per rank the batch statistics nearly agree, and so do the curves (measured: within 1.2 %).
    let (one, two, _) = alone_and_on_two_ranks(256);
    assert!(largest_loss_gap(&one, &two) < 0.03, "{one:?}\n{two:?}");
}

/// `spidernet score GENOTYPE ARGS --json` alone, then on 2 ranks: both outputs, with timings left out.
fn scored_alone_and_on_two_ranks(args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let genotype = small_genotype();
    let mut all = vec!["score", common::path(&genotype), "--data", "digits", "--json"];
    all.extend_from_slice(args);
    let alone = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(&all)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(alone.status.success(), "{}", String::from_utf8_lossy(&alone.stderr));
    let shared = launch(2, &all);
    let stdout = String::from_utf8_lossy(&shared.stdout);
    assert!(
        shared.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&shared.stderr)
    );
    let untimed = |bytes: &[u8]| {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).expect("one JSON document, from rank 0");
        for cell in value["cells"].as_array_mut().unwrap() {
            for report in cell["tried"].as_array_mut().unwrap() {
                report.as_object_mut().unwrap().remove("seconds");
            }
        }
        value
    };
    (untimed(&alone.stdout), untimed(&shared.stdout))
}

#[test]
fn candidates_scored_on_two_ranks_are_those_of_one_process() {
    let _turn = common::turn();
    for rule in ["published", "naswot+parameters"] {
        let light = [
            "--repeats",
            "2",
            "--ntk-batches",
            "1",
            "--ntk-batch-size",
            "16",
            "--lrc-batches",
            "1",
        ];
        let mut args = vec!["--seed", "1", "--metrics", rule];
        args.extend(light);
        let (alone, shared) = scored_alone_and_on_two_ranks(&args);
        let tried: usize = alone["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["tried"].as_array().unwrap().len())
            .sum();
        assert!(tried >= 5, "{rule}: {tried} candidates");
        // Every report (its edge, every repeat's κ and regions, r_ntk, r_lrc, signals, verdict, score) and every
        // cell's choice, exactly.
        assert_eq!(alone, shared, "{rule}");
    }
}

#[test]
fn a_two_rank_training_killed_after_an_epoch_continues_to_the_same_weights() {
    let _turn = common::turn();
    let dir = common::scratch("data-parallel-checkpoint");
    let train = |name: &str| {
        let folder = dir.join(name);
        digits_training(&["--epochs", "4", "--seed", "5", "--checkpoint", common::path(&folder)])
    };
    let fingerprint = |output: &Output| -> String {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with("2 ranks, identical weights"))
            .expect("the fingerprint line");
        line.to_string()
    };
    let whole = train("whole");
    let whole = fingerprint(&launch(2, &whole.iter().map(String::as_str).collect::<Vec<_>>()));

    // The same run, killed (torchrun and both ranks, SIGKILL) once rank 0 has checkpointed its first epoch.
    let killed = train("killed");
    let mut child = Command::new(torchrun())
        .args(["--standalone", "--nproc-per-node", "2", "--no-python"])
        .arg(env!("CARGO_BIN_EXE_spidernet"))
        .args(&killed)
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while common::final_epochs_done(&dir.join("killed")) < 1 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // torchrun starts its workers in sessions of their own: kill them by parent, then torchrun.
    let workers = Command::new("pgrep")
        .args(["-P", &child.id().to_string()])
        .output()
        .unwrap();
    let workers: Vec<i32> = String::from_utf8_lossy(&workers.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(workers.len(), 2, "two workers under torchrun");
    for pid in workers.iter().copied().chain([child.id() as i32]) {
        // SAFETY: kill(2) on another process has no memory effects in this process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    child.wait().unwrap();
    // The workers are torchrun's children, not ours: wait until they are gone.
    while workers
        .iter()
        .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = common::final_epochs_done(&dir.join("killed"));
    assert!((1..4).contains(&done), "killed after {done} epochs");

    // Run again: rank 0 reads the checkpoint, rank 1 continues from what it broadcasts.
    let continued = launch(2, &killed.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&continued.stderr).into_owned();
    assert!(stderr.contains(&format!("after {done} of 4 epochs")), "{stderr}");
    assert_eq!(fingerprint(&continued), whole, "the continued weights differ");
}
