//! glibc malloc tuning: a fixed mmap threshold, applied once at start-up before the runtime's threads exist, and a
//! thread that gives freed pages back after bursts ([`start_trimmer`]).
//!
//! glibc raises its mmap threshold to the size of the largest mapped block ever freed (up to 32 MiB), and its trim
//! threshold to twice that. The first Argon2 hash (password-auth's 19 MiB working memory) is mapped and freed, so
//! from then on every sign-in's 19 MiB comes from a heap arena and stays resident after it is freed, in each arena
//! that a sign-in ran on. A fixed threshold keeps every such block in its own mapping, returned to the system when
//! it is freed. Measured (`BENCHMARKS.md`, "RSS per idle connection"): the server's RSS after start-up and one
//! sign-in went from 51 to 13 MiB, and with 3,000 idle connections from 81 to 42 MiB. What a connection costs is
//! unchanged; limiting glibc to one arena was tried as well and saved only about 0.5 KiB per connection more, not
//! worth making every thread allocate from one lock.

/// Allocations at least this large get their own mapping, returned to the system when freed. Larger than any
/// frame the server builds (frames are at most 64 KiB in, and `presence_state` goes out in chunks).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Applies the tuning. Call from `main` before starting any thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    debug_assert_eq!(applied, 1, "glibc accepts a fixed mmap threshold");
}

/// Not glibc: nothing to tune.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// Free heap bytes glibc must have gained since the last trim for the trimmer to trim again.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_AFTER_FREED: usize = 256 << 10;

/// Starts a thread that hands freed heap memory back to the system after bursts. Every `period` it reads how many
/// bytes are free inside glibc's heaps (`mallinfo2`: it walks the free lists, no system call), and calls
/// `malloc_trim(0)` when they grew by 256 KiB or more since the last trim.
///
/// Why: a join storm, or a burst of broadcasts to slow readers, allocates frames, presence lists and queue slots in
/// between the blocks connections keep; once freed they are holes in pages that also hold live blocks, and glibc
/// only returns the top of a heap by itself. `malloc_trim` releases the whole free pages inside the heaps
/// (`madvise(MADV_DONTNEED)`). Measured (`BENCHMARKS.md`, "RSS per idle connection"): after a join storm of 5,000
/// clients in one room, idle connections hold about half as much. Why not simply every period: `malloc_trim` walks
/// each arena under its lock and advises every free page again, 1–9 ms with 1,000–5,000 idle connections; reading
/// the statistics walks the same lists (about 0.6 ms with 1,000) but makes no system call. A server that freed
/// nothing does not trim.
///
/// `period` zero: no thread. Counted in `livebaton_malloc_trims_total` and
/// `livebaton_malloc_trim_microseconds_total`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn start_trimmer(period: std::time::Duration) -> std::io::Result<()> {
    if period.is_zero() {
        return Ok(());
    }
    let mut trimmed_at = free_heap_bytes();
    std::thread::Builder::new().name("malloc-trim".into()).spawn(move || {
        loop {
            std::thread::sleep(period);
            let free = free_heap_bytes();
            // Reused since the last trim: later frees count from here.
            trimmed_at = trimmed_at.min(free);
            if free - trimmed_at >= TRIM_AFTER_FREED {
                let started = std::time::Instant::now();
                // SAFETY: malloc_trim only releases free memory; it is thread-safe (it locks each arena in turn).
                unsafe { libc::malloc_trim(0) };
                metrics::counter!("livebaton_malloc_trims_total").increment(1);
                metrics::counter!("livebaton_malloc_trim_microseconds_total")
                    .increment(started.elapsed().as_micros() as u64);
                trimmed_at = free_heap_bytes();
            }
        }
    })?;
    Ok(())
}

/// Not glibc: other allocators return memory their own way.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn start_trimmer(_period: std::time::Duration) -> std::io::Result<()> {
    Ok(())
}

/// Bytes free inside glibc's heaps (all arenas), excluding blocks mapped on their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_heap_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics (locking each arena in turn).
    let info = unsafe { libc::mallinfo2() };
    info.fordblks + info.fsmblks
}
