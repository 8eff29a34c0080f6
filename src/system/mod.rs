//! Process-level machinery: the heap allocator's tuning, allocation failures turned into errors, atomic file
//! writes, stable hashing, the native (C++) libtorch calls, and the memory probe.

pub mod alloc_failure;
pub mod allocator;
pub mod atomic;
pub(crate) mod hash;
pub(crate) mod memory_probe;
pub mod native;
