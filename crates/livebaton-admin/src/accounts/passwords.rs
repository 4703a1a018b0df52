//! Password hashing (Argon2id) off the async runtime, bounded, with equal time for unknown accounts.
//!
//! One Argon2id computation holds about 19 MiB for tens of milliseconds on a blocking thread. Unbounded, 40
//! concurrent sign-ins took the process from 14 to 739 MiB, so every hash and every verification goes through a
//! [`PasswordHasher`]: a semaphore of about one permit per core. The permit moves into the blocking task, so a
//! request that is cancelled while its hash runs keeps the permit until the hash is done: the bound holds for the
//! threads, not only for the requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a sign-in waits for a free hashing slot before it is answered 503.
pub const HASH_PATIENCE: Duration = Duration::from_secs(2);

/// Every hashing slot stayed busy for the hasher's patience.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("signing in is busy right now; try again in a moment")]
pub struct HashingBusy {
    /// When to try again.
    pub retry_after: Duration,
}

/// Runs Argon2id computations, at most `permits` at a time.
#[derive(Debug)]
pub struct PasswordHasher {
    /// One permit per computation allowed at once. A tokio semaphore: waiting for it must not block a worker.
    permits: Arc<Semaphore>,
    /// How long [`PasswordHasher::permit`] waits.
    patience: Duration,
    /// Computations started, for tests and metrics.
    computed: AtomicU64,
}

/// The right to run one Argon2id computation; the slot is free again when it is dropped.
#[derive(Debug)]
pub struct HashPermit {
    _slot: OwnedSemaphorePermit,
}

impl PasswordHasher {
    /// A hasher running at most `permits` (at least 1) computations at once; a request waits at most `patience`
    /// for a slot.
    pub fn new(permits: usize, patience: Duration) -> Self {
        PasswordHasher { permits: Arc::new(Semaphore::new(permits.max(1))), patience, computed: AtomicU64::new(0) }
    }

    /// The process's hasher: one permit per core (`available_parallelism`), [`HASH_PATIENCE`]. The server's state
    /// and the command-line tools share it, so their hashes count against the same bound.
    pub fn shared() -> Arc<PasswordHasher> {
        static SHARED: OnceLock<Arc<PasswordHasher>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                Arc::new(PasswordHasher::new(cores, HASH_PATIENCE))
            })
            .clone()
    }

    /// Waits at most the hasher's patience for a slot.
    ///
    /// # Errors
    /// [`HashingBusy`] when every slot stayed busy.
    pub async fn permit(&self) -> Result<HashPermit, HashingBusy> {
        let busy = HashingBusy { retry_after: self.patience.max(Duration::from_secs(1)) };
        match tokio::time::timeout(self.patience, self.permits.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(HashPermit { _slot: slot }),
            // The semaphore is never closed; a timeout is the only real failure.
            Ok(Err(_)) | Err(_) => Err(busy),
        }
    }

    /// A slot if one is free now.
    pub fn try_permit(&self) -> Option<HashPermit> {
        self.permits.clone().try_acquire_owned().ok().map(|slot| HashPermit { _slot: slot })
    }

    /// A slot, however long it takes (command-line tools and start-up, where nobody is waiting on a socket).
    pub async fn permit_patiently(&self) -> HashPermit {
        let slot = self.permits.clone().acquire_owned().await.expect("the hashing semaphore is never closed");
        HashPermit { _slot: slot }
    }

    /// Number of Argon2id computations this hasher started.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// Hashes `password` as an Argon2id PHC string, holding `permit` until the computation ends.
    pub async fn hash(&self, permit: HashPermit, password: &str) -> String {
        let password = password.to_owned();
        self.run(permit, move || password_auth::generate_hash(password)).await.expect("password hashing does not panic")
    }

    /// Checks `password` against `hash`, or against a fixed dummy hash when there is no account, so an unknown email
    /// takes as long as a wrong password and response times do not reveal which emails exist. Holds `permit` until
    /// the computation ends.
    pub async fn verify(&self, permit: HashPermit, password: &str, hash: Option<&str>) -> bool {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        let known = hash.is_some();
        let matches = self.run(permit, move || {
            let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
            password_auth::verify_password(password, hash).is_ok()
        });
        matches.await.unwrap_or(false) && known
    }

    /// Runs `work` on the blocking pool; the permit is released when `work` returns, even if the caller is gone.
    async fn run<T: Send + 'static>(&self, permit: HashPermit, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        self.computed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("livebaton_password_hashes_total").increment(1);
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .ok()
    }
}

/// Hashes a password as an Argon2id PHC string through the [shared](PasswordHasher::shared) hasher, waiting for a
/// slot as long as it takes (for accounts created by the command line and at start-up).
pub async fn hash_password(password: &str) -> String {
    let hasher = PasswordHasher::shared();
    let permit = hasher.permit_patiently().await;
    hasher.hash(permit, password).await
}

/// [`PasswordHasher::verify`] through the [shared](PasswordHasher::shared) hasher, waiting for a slot as long as it
/// takes. Request handlers use their state's hasher with its bounded wait instead.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let hasher = PasswordHasher::shared();
    let permit = hasher.permit_patiently().await;
    hasher.verify(permit, password, hash).await
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password_auth::generate_hash("livebaton dummy password, never matches a real account"))
}

/// Hashes the dummy once at start-up, so the first unknown-email login is not faster than later ones.
pub async fn warm_up() {
    let hasher = PasswordHasher::shared();
    let permit = hasher.permit_patiently().await;
    let _ = hasher.run(permit, dummy_hash).await;
}

/// Minimum password length for accounts created through the CLI or at start-up.
pub const MIN_PASSWORD_LEN: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// A hasher with one slot refuses a second computation while the first holds it, and serves it once released.
    #[tokio::test]
    async fn a_full_hasher_refuses_after_its_patience() {
        let hasher = PasswordHasher::new(1, Duration::from_millis(50));
        let held = hasher.try_permit().expect("one slot");
        assert!(hasher.try_permit().is_none());
        assert_eq!(hasher.permit().await.unwrap_err().retry_after, Duration::from_secs(1));
        drop(held);
        let permit = hasher.permit().await.expect("free again");
        assert!(!hasher.verify(permit, "guess", None).await, "an unknown account never matches");
        assert_eq!(hasher.computed(), 1);
    }

    /// The permit stays taken until the blocking computation ends, even when the caller stopped waiting.
    #[tokio::test]
    async fn a_cancelled_verification_keeps_its_slot_until_the_hash_is_done() {
        let hasher = Arc::new(PasswordHasher::new(1, Duration::from_secs(5)));
        let permit = hasher.try_permit().expect("one slot");
        let task = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.verify(permit, "guess", None).await }
        });
        while hasher.computed() == 0 {
            tokio::task::yield_now().await;
        }
        task.abort();
        assert!(hasher.try_permit().is_none(), "the computation still holds the slot");
        let permit = hasher.permit().await.expect("released when the computation ends");
        drop(permit);
        assert_eq!(hasher.computed(), 1);
    }
}
