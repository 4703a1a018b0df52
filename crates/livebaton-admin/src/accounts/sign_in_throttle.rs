//! The sign-in throttle the application uses: the node's own ([`Throttle`]) on a single node; in a cluster, the one in
//! Redis ([`RedisThrottle`]) that every node counts on, with the node's own as the fallback while Redis fails (sign-in
//! keeps working, throttled per node, and says so in the log).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::redis_throttle::{RedisAttempt, RedisThrottle};
use super::throttle::{Attempt, Throttle, ThrottleConfig, Throttled};

/// How often a Redis failure is logged at most (each failed sign-in would log one otherwise).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Failed sign-in bookkeeping for the sign-in page and `POST /api/tokens`. See the module documentation.
pub struct SignInThrottle {
    /// The node's own count: the whole throttle on a single node, the fallback in a cluster.
    local: Throttle,
    /// The cluster's count, when the node is part of one.
    shared: Option<RedisThrottle>,
    /// When a Redis failure was last logged, ms since `started` (0: never). An atomic: read and set by concurrent
    /// sign-ins, and a lost update only logs one line more or less.
    warned_at: AtomicU64,
    started: Instant,
}

/// An attempt that has been counted as a failure until it says otherwise.
#[must_use = "an attempt dropped without a verdict stays counted as a failure"]
pub enum SignInAttempt<'a> {
    /// Counted by the node.
    Local(Attempt<'a>),
    /// Counted in Redis.
    Shared(&'a SignInThrottle, RedisAttempt),
}

impl SignInThrottle {
    /// The node's own throttle.
    pub fn local(config: ThrottleConfig) -> Self {
        SignInThrottle {
            local: Throttle::new(config),
            shared: None,
            warned_at: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// The cluster's throttle in Redis, with a local one of the same limits for when Redis fails.
    pub fn shared(redis: RedisThrottle, config: ThrottleConfig) -> Self {
        SignInThrottle { shared: Some(redis), ..Self::local(config) }
    }

    /// Whether the nodes of a cluster share this throttle.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn redis_failed(&self, error: &livebaton::redis::RedisError) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
        let last = self.warned_at.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= u64::try_from(WARN_EVERY.as_millis()).unwrap_or(0);
        if due && self.warned_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            tracing::warn!(%error, "the shared sign-in throttle is unreachable: counting on this node alone until it is back");
        }
    }

    /// Whether an attempt for `email` from `address` could start now, without counting one.
    ///
    /// # Errors
    /// [`Throttled`] with the time to wait.
    pub async fn check(&self, email: &str, address: IpAddr) -> Result<(), Throttled> {
        if let Some(redis) = &self.shared {
            match redis.check(email, address).await {
                Ok(verdict) => return verdict,
                Err(error) => self.redis_failed(&error),
            }
        }
        self.local.check(email, address, Instant::now())
    }

    /// Starts an attempt: checks its keys and, if all are open, counts it as a failure on each, in one step.
    ///
    /// # Errors
    /// [`Throttled`] with the time to wait; nothing is counted then.
    pub async fn begin(&self, email: &str, address: IpAddr) -> Result<SignInAttempt<'_>, Throttled> {
        if let Some(redis) = &self.shared {
            match redis.begin(email, address).await {
                Ok(verdict) => return verdict.map(|attempt| SignInAttempt::Shared(self, attempt)),
                Err(error) => self.redis_failed(&error),
            }
        }
        self.local.begin(email, address, Instant::now()).map(SignInAttempt::Local)
    }
}

impl SignInAttempt<'_> {
    /// The password was right: forgets the account's failures and gives the address its count back.
    pub async fn succeeded(self) {
        match self {
            SignInAttempt::Local(attempt) => attempt.succeeded(),
            SignInAttempt::Shared(throttle, attempt) => {
                if let Some(redis) = &throttle.shared
                    && let Err(error) = redis.succeeded(attempt).await
                {
                    throttle.redis_failed(&error);
                }
            }
        }
    }

    /// The password was wrong: the attempt stays counted (the same as dropping it).
    pub fn failed(self) {}
}
