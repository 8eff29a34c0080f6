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

/// Returns the heap's free blocks to the kernel (the thresholds of [`keep_freed_blocks`] otherwise keep up to 1 GiB
/// of them resident). A search calls it between its parts, whose tensors differ in size, so that one part's freed
/// blocks do not add to the next one's peak (docs/PERFORMANCE.md, *Memory of a whole search*). Does nothing
/// outside glibc.
pub fn release_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel; live allocations are untouched.
    unsafe {
        libc::malloc_trim(0);
    }
}
