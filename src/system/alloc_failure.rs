//! Allocation failures reported by libtorch, turned into errors at the candidate or batch that met them
//! (docs/RELIABILITY.md, *Allocation failures*).
//!
//! libtorch reports a failed allocation as an error ("DefaultCPUAllocator: can't allocate memory", "CUDA out of
//! memory"). Where our code allocates explicitly it uses tch's fallible `f_` calls, whose `TchError` carries that
//! message. Deep inside a forward or backward pass tch's infallible calls turn the same error into a panic;
//! [`guard`] catches that one kind of panic at the boundary of a candidate or a batch, so that it becomes the same
//! error, and lets every other panic through untouched.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::{Device, Kind, TchError, Tensor};

/// libtorch could not allocate memory; `message` is its own first line, e.g. "DefaultCPUAllocator: can't
/// allocate memory: you tried to allocate 1048576 bytes. Error code 12 (Cannot allocate memory)".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("could not allocate memory: {message}")]
pub struct AllocationFailure {
    /// libtorch's message, cut to its first line.
    pub message: String,
}

/// Phrases of libtorch's allocators (CPU, CUDA, MPS) when an allocation fails.
const ALLOCATOR_PHRASES: [&str; 3] = ["can't allocate memory", "not enough memory", "out of memory"];

impl AllocationFailure {
    /// The failure `text` reports, if it is an allocation failure; the text may be a `TchError`'s message or
    /// the message of the panic tch raised for it.
    pub fn from_message(text: &str) -> Option<Self> {
        if !ALLOCATOR_PHRASES.iter().any(|phrase| text.contains(phrase)) {
            return None;
        }
        // A panic from tch reads `called `Result::unwrap()` on an `Err` value: Torch("…")`, its newlines escaped.
        let body = match text.split_once("Torch(\"") {
            Some((_, quoted)) => {
                let quoted = quoted.strip_suffix("\")").unwrap_or(quoted);
                quoted.split("\\n").next().unwrap_or(quoted)
            }
            None => text,
        };
        let line = body.lines().next().unwrap_or(body);
        // The CPU allocator's check prefixes its message with "[enforce fail at alloc_cpu.cpp:127] err == 0. ".
        let line = line.find("DefaultCPUAllocator").map_or(line, |start| &line[start..]);
        Some(AllocationFailure {
            message: line.trim().to_string(),
        })
    }

    /// The allocation failure somewhere in `error`'s chain, if any.
    pub fn in_error(error: &anyhow::Error) -> Option<Self> {
        error.chain().find_map(|cause| {
            if let Some(failure) = cause.downcast_ref::<AllocationFailure>() {
                return Some(failure.clone());
            }
            match cause.downcast_ref::<TchError>() {
                Some(TchError::Torch(message)) => Self::from_message(message),
                _ => None,
            }
        })
    }
}

thread_local! {
    /// How many [`guard`]s this thread is inside; while above 0 the panic hook keeps allocation failures quiet.
    static GUARDED: Cell<usize> = const { Cell::new(0) };
}

/// The text a panic carried, when it was a string.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Wraps the panic hook once per process, so that an allocation failure caught by a [`guard`] prints nothing:
/// the error it becomes is reported instead. Every other panic is printed as before.
fn quiet_caught_failures() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let guarded = GUARDED.with(|depth| depth.get() > 0);
            let allocation = panic_text(info.payload()).is_some_and(|t| AllocationFailure::from_message(t).is_some());
            if !(guarded && allocation) {
                previous(info);
            }
        }));
    });
}

/// Runs `work`; an allocation failure inside it, whether returned as a `TchError` or raised as tch's panic,
/// comes back as an error holding an [`AllocationFailure`]. Other errors pass unchanged, other panics unwind on.
/// `work` must leave nothing half-updated that the caller keeps: the scorer drops the candidate's networks, and a
/// training stops at the failed batch and keeps its last checkpoint.
pub fn guard<T>(work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    quiet_caught_failures();
    GUARDED.with(|depth| depth.set(depth.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(work));
    GUARDED.with(|depth| depth.set(depth.get() - 1));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => match AllocationFailure::in_error(&error) {
            Some(failure) if error.downcast_ref::<AllocationFailure>().is_none() => Err(failure.into()),
            _ => Err(error),
        },
        Err(payload) => match panic_text(payload.as_ref()).and_then(AllocationFailure::from_message) {
            Some(failure) => Err(failure.into()),
            None => panic::resume_unwind(payload),
        },
    }
}

/// Where a test can make an allocation fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The scoring of a candidate split.
    Scoring,
    /// A training batch (supernet or final training).
    Training,
}

/// The environment variable of the test hook: `scoring:N` or `training:N` makes the N-th candidate scored, or
/// the N-th batch trained, by this process (1-based) meet a real allocation failure in libtorch.
pub const INJECT_VARIABLE: &str = "SPIDERNET_INJECT_ALLOCATION_FAILURE";

fn injection() -> Option<(Site, usize)> {
    static PARSED: OnceLock<Option<(Site, usize)>> = OnceLock::new();
    *PARSED.get_or_init(|| {
        let value = std::env::var(INJECT_VARIABLE).ok()?;
        let parsed = value.split_once(':').and_then(|(site, n)| {
            let site = match site {
                "scoring" => Site::Scoring,
                "training" => Site::Training,
                _ => return None,
            };
            n.parse::<usize>().ok().filter(|&n| n > 0).map(|n| (site, n))
        });
        if parsed.is_none() {
            tracing::warn!("{INJECT_VARIABLE}={value:?} is not scoring:N or training:N (N ≥ 1); ignored");
        }
        parsed
    })
}

/// Counts one unit of work at `site`; when the test hook names this one, asks libtorch for 2⁶⁰ bytes on `device`
/// through tch's infallible call, the way a pass deep in the network meets a failed allocation. Does nothing
/// without the hook.
pub fn inject(site: Site, device: Device) {
    static SCORED: AtomicUsize = AtomicUsize::new(0);
    static TRAINED: AtomicUsize = AtomicUsize::new(0);
    let Some((target, n)) = injection() else { return };
    let counter = match site {
        Site::Scoring => &SCORED,
        Site::Training => &TRAINED,
    };
    let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if target == site && count == n {
        let _ = Tensor::empty([1i64 << 58], (Kind::Float, device));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_messages_are_recognised_and_cut_to_their_first_line() {
        let panic = r#"called `Result::unwrap()` on an `Err` value: Torch("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 bytes. Error code 12 (Cannot allocate memory)\nException raised from alloc_cpu")"#;
        let failure = AllocationFailure::from_message(panic).unwrap();
        assert_eq!(
            failure.message,
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 bytes. Error code 12 (Cannot allocate memory)"
        );
        let unescaped =
            r#"called `Result::unwrap()` on an `Err` value: Torch("DefaultCPUAllocator: not enough memory (2 bytes)")"#;
        assert_eq!(
            AllocationFailure::from_message(unescaped).unwrap().message,
            "DefaultCPUAllocator: not enough memory (2 bytes)"
        );
        let cuda = "CUDA out of memory. Tried to allocate 2.00 GiB\nException raised from malloc";
        assert_eq!(
            AllocationFailure::from_message(cuda).unwrap().message,
            "CUDA out of memory. Tried to allocate 2.00 GiB"
        );
        assert!(AllocationFailure::from_message("shape '[2, 3]' is invalid for input of size 5").is_none());
    }

    #[test]
    fn a_real_failed_allocation_becomes_an_error_both_ways() {
        let huge = [1i64 << 58];
        let fallible = guard(|| Ok(Tensor::f_empty(huge, (Kind::Float, Device::Cpu))?));
        let panicking = guard(|| Ok(Tensor::empty(huge, (Kind::Float, Device::Cpu))));
        for outcome in [fallible, panicking] {
            let error = outcome.unwrap_err();
            let failure = error
                .downcast_ref::<AllocationFailure>()
                .expect("an allocation failure");
            assert!(failure.message.contains("DefaultCPUAllocator"), "{}", failure.message);
            assert!(!failure.message.contains('\n'));
        }
    }

    #[test]
    fn other_errors_pass_and_other_panics_unwind() {
        let error = guard::<()>(|| anyhow::bail!("not memory")).unwrap_err();
        assert_eq!(error.to_string(), "not memory");
        assert!(error.downcast_ref::<AllocationFailure>().is_none());
        let shape = panic::catch_unwind(|| guard(|| Ok(Tensor::zeros([5], (Kind::Float, Device::Cpu)).view([2, 3]))));
        assert!(
            shape.is_err(),
            "a panic that is not an allocation failure must unwind on"
        );
    }
}
