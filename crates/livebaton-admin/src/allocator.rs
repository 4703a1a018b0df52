//! glibc malloc tuning, applied once at start-up before the runtime's threads exist.
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
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

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

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// glibc's `mallinfo2` counts mapped blocks in `hblks`: after `tune`, a block of the threshold's size is mapped
    /// even after a larger mapped block was freed (which, untuned, raises the threshold above it).
    #[test]
    fn large_blocks_stay_mapped_after_a_larger_one_was_freed() {
        super::tune();
        drop(std::hint::black_box(vec![0u8; 19 << 20]));
        let before = unsafe { libc::mallinfo2() }.hblks;
        let block = std::hint::black_box(vec![0u8; super::MMAP_THRESHOLD as usize]);
        let during = unsafe { libc::mallinfo2() }.hblks;
        drop(block);
        assert_eq!(during, before + 1, "a 256 KiB block gets its own mapping");
    }
}
