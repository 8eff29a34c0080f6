//! SIGINT and SIGTERM during a search (docs/SEARCH.md, *Interrupts*): the first asks the run to stop at its next
//! safe point, a second ends the process at once.

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Set by the handlers: whether a signal came, and which came last.
static RECEIVED: AtomicBool = AtomicBool::new(false);
static LAST: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers for this process; later calls do nothing.
pub fn install() -> anyhow::Result<()> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it acts only on a signal that finds the flag already set: the second one.
        flag::register_conditional_shutdown(signal, exit_code(signal).into(), &RECEIVED)
            .and_then(|_| flag::register_usize(signal, &LAST, signal as usize))
            .and_then(|_| flag::register(signal, &RECEIVED))
            .with_context(|| format!("cannot install a handler for signal {signal}"))?;
    }
    Ok(())
}

/// The last signal received since [`install`], if one came.
pub fn received() -> Option<i32> {
    RECEIVED
        .load(Ordering::SeqCst)
        .then(|| LAST.load(Ordering::SeqCst) as i32)
}

/// The exit status of a process stopped by `signal`, as shells report it: 128 + the signal's number (130 for
/// SIGINT, 143 for SIGTERM).
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// The exit status for an interrupted run: that of the signal received, SIGINT's if none is recorded.
pub fn interrupted_exit_code() -> u8 {
    exit_code(received().unwrap_or(SIGINT))
}
