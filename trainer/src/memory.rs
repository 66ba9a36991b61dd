//! How the process takes memory from the system. A training step allocates and frees hundreds of
//! megabytes (fc6's gradient and its new weights and velocity are 151 MB each). glibc serves every
//! block over 32 MB with a fresh `mmap` and unmaps it when freed, so the next step's blocks arrive
//! as new pages the kernel must fault in and zero again. Keeping freed blocks makes training
//! faster, at the cost of a process that keeps its peak size (the figures are in
//! docs/benchmarks-history.md, "Freed memory kept").

/// From now on, serve large blocks from the heap and keep what is freed for the next ones.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; it is called before other threads
    // allocate (and is thread-safe in glibc regardless).
    unsafe {
        // No block through mmap (blocks too large for a thread's arena go to the main heap)...
        libc::mallopt(libc::M_MMAP_MAX, 0);
        // ...and the heap's free top returned to the system only past 2 GB.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
