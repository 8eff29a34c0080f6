//! Heap settings for training and scoring, which free and reallocate feature maps of a few MiB every step.

/// Keeps freed feature maps in the heap instead of returning them to the kernel. glibc serves blocks above its
/// mmap threshold (128 KiB at first, growing to at most 32 MiB) with fresh mappings, and the kernel zeroes every
/// page of each one on first touch: 11 % of a training step's profile. A fixed 256 MiB threshold and a 1 GiB
/// trim threshold let freed blocks be reused. Does nothing outside glibc.
pub fn keep_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any worker thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
