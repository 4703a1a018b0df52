//! The allocator tuning and the malloc-trim thread (mirrors `src/allocator.rs`). Its own test binary, and one test:
//! glibc's statistics and the process's resident memory are global, so no other test may allocate meanwhile (the
//! library's unit tests hash passwords, 19 MiB each, and spawn blocking threads with arenas of their own).

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::time::{Duration, Instant};

use livebaton_admin::allocator::{MMAP_THRESHOLD, start_trimmer, tune};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap().to_owned();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
}

#[test]
fn large_blocks_stay_mapped_and_the_trimmer_returns_freed_pages() {
    tune();
    // glibc's `mallinfo2` counts mapped blocks in `hblks`: after `tune`, a block of the threshold's size is mapped
    // even after a larger mapped block was freed (which, untuned, raises the threshold above it).
    drop(std::hint::black_box(vec![0u8; 19 << 20]));
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let before = unsafe { libc::mallinfo2() }.hblks;
    let block = std::hint::black_box(vec![0u8; MMAP_THRESHOLD as usize]);
    let during = unsafe { libc::mallinfo2() }.hblks;
    drop(block);
    assert_eq!(during, before + 1, "a 256 KiB block gets its own mapping");

    // After many small blocks are freed in the middle of the heap (below a block that stays, so glibc cannot give
    // them back by shrinking the heap), the trimmer releases their pages: the process's resident memory drops.
    start_trimmer(Duration::from_millis(50)).unwrap();
    let blocks: Vec<Vec<u8>> = (0..32 * 1024).map(|_| vec![1u8; 1024]).collect();
    let stays = std::hint::black_box(vec![1u8; 1024]);
    let full = rss_kib();
    drop(blocks);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rss_kib() + 16 * 1024 > full {
        assert!(Instant::now() < deadline, "RSS stayed at {} KiB (was {full} KiB)", rss_kib());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stays);
}
