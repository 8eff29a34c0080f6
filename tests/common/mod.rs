//! Helpers shared by the integration tests.

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
