//! Random numbers for node names, dataset generations and reconnection jitter, without an RNG dependency.

use std::sync::atomic::{AtomicU64, Ordering};

/// A random 64-bit number from the standard library's randomly seeded hasher, fed a process-wide counter and the
/// time, so two calls never hash the same input.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}
