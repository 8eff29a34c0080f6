//! Helpers shared by the integration tests.

use std::sync::{Mutex, MutexGuard};

/// Tests that train take turns: run concurrently on two cores, libtorch's worker threads oversubscribe the machine
/// and every test slows down many times over.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Waits for this test's turn; the turn lasts as long as the guard.
pub fn turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
