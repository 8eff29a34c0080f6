//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Tests that train take turns: run concurrently on two cores, libtorch's worker threads oversubscribe the machine
/// and every test slows down many times over.
#[allow(dead_code)]
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Waits for this test's turn; the turn lasts as long as the guard.
#[allow(dead_code)]
pub fn turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh, empty scratch folder for one test, unique per process.
#[allow(dead_code)]
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spidernet-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether the summary table has a row for `class` with these training and test counts.
#[allow(dead_code)]
pub fn has_row(table: &str, class: &str, train: usize, test: usize) -> bool {
    let counts = [train.to_string(), test.to_string()];
    table.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        line.contains(class) && words.len() >= 2 && words[words.len() - 2..] == counts
    })
}

/// Says, where it shows even when the test passes, that `test` skipped what it checks and why. The line goes to
/// the process's stderr directly, past the test harness's output capture.
#[allow(dead_code)]
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason}");
}

/// Whether Fashion-MNIST is installed. Absent, the test is skipped visibly, unless SPIDERNET_REQUIRE_FASHION_MNIST=1
/// (set by CI, which installs it): then its absence fails the test.
#[allow(dead_code)]
pub fn fashion_mnist_or_skip(test: &str) -> bool {
    let dir = spidernet::data::FASHION_MNIST_DIR;
    if std::path::Path::new(dir).is_dir() {
        return true;
    }
    if std::env::var("SPIDERNET_REQUIRE_FASHION_MNIST").is_ok_and(|v| v == "1") {
        panic!("{dir} is absent but SPIDERNET_REQUIRE_FASHION_MNIST=1: install dataset-fashion-mnist");
    }
    skip(
        test,
        &format!("{dir} is absent (apt-get install dataset-fashion-mnist)"),
    );
    false
}

/// Runs the binary with `args` (2 threads), waiting for it.
#[allow(dead_code)]
pub fn spidernet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(args)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .unwrap()
}

/// Runs a command that must succeed and returns its stdout.
#[allow(dead_code)]
pub fn succeeds(args: &[&str]) -> String {
    let output = spidernet(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail and returns its stderr.
#[allow(dead_code)]
pub fn fails(args: &[&str]) -> String {
    let output = spidernet(args);
    assert!(!output.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// A path as the &str a command line takes.
#[allow(dead_code)]
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The venv's Python that set-up installs (torch, onnx, onnxruntime, onnx2torch and spidernet_torch).
#[allow(dead_code)]
pub fn python() -> std::path::PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh, which installs torch, onnx, onnxruntime and spidernet_torch",
        python.display()
    );
    python
}

/// Final-training epochs recorded in a run folder's (or `train --checkpoint` folder's) checkpoint, 0 when there is
/// none.
#[allow(dead_code)]
pub fn final_epochs_done(root: &Path) -> usize {
    std::fs::read_to_string(root.join("checkpoint/final.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|state| state["reports"].as_array().map(Vec::len))
        .unwrap_or(0)
}
