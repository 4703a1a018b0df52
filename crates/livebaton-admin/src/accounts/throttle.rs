//! Throttling of failed sign-ins, per account and per client address.
//!
//! A sliding window of failure times per key. The map is bounded: when it is full, the keys whose failures are all
//! older than the window are dropped first, then the oldest; an attacker cannot grow memory by inventing emails.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits for [`Throttle`].
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failures allowed per account within `window`.
    pub per_account: usize,
    /// Failures allowed per client address within `window`.
    pub per_address: usize,
    /// The sliding window.
    pub window: Duration,
    /// Most keys remembered.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { per_account: 5, per_address: 20, window: Duration::from_secs(15 * 60), max_keys: 10_000 }
    }
}

/// Sign-in attempts are refused for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-in attempts; try again in {} minute(s)", .retry_after.as_secs().div_ceil(60).max(1))]
pub struct Throttled {
    /// How long until the next attempt is allowed.
    pub retry_after: Duration,
}

/// Failed sign-in bookkeeping.
pub struct Throttle {
    config: ThrottleConfig,
    /// Key (`account:<email>` or `address:<ip>`) → failure times, oldest first. A std `Mutex`: a handful of deque
    /// operations per sign-in, no `.await` while held.
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle { config, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(email: &str, address: &str) -> [(String, bool); 2] {
        [(format!("account:{}", email.trim().to_lowercase()), true), (format!("address:{address}"), false)]
    }

    /// Whether an attempt for `email` from `address` may proceed at `now`.
    ///
    /// # Errors
    /// [`Throttled`] with the time to wait.
    pub fn check(&self, email: &str, address: &str, now: Instant) -> Result<(), Throttled> {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = Duration::ZERO;
        for (key, is_account) in Self::keys(email, address) {
            let limit = if is_account { self.config.per_account } else { self.config.per_address };
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|at| now.duration_since(*at) >= self.config.window) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times[times.len() - limit];
                    wait = wait.max(self.config.window.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(Throttled { retry_after: wait }) }
    }

    /// Records a failed attempt.
    pub fn record_failure(&self, email: &str, address: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() + 2 > self.config.max_keys {
            let window = self.config.window;
            failures.retain(|_, times| times.back().is_some_and(|at| now.duration_since(*at) < window));
            while failures.len() + 2 > self.config.max_keys {
                let oldest = failures.iter().min_by_key(|(_, times)| times.back().copied()).map(|(key, _)| key.clone());
                match oldest {
                    Some(key) => failures.remove(&key),
                    None => break,
                };
            }
        }
        for (key, is_account) in Self::keys(email, address) {
            let limit = if is_account { self.config.per_account } else { self.config.per_address };
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// Forgets an account's failures after a successful sign-in.
    pub fn record_success(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&format!("account:{}", email.trim().to_lowercase()));
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig { per_account: 3, per_address: 5, window: Duration::from_secs(60), max_keys: 50 })
    }

    #[test]
    fn an_account_is_throttled_after_its_limit_until_the_window_passes() {
        let throttle = throttle();
        let start = Instant::now();
        for n in 0..3 {
            assert!(throttle.check("A@x.io", "1.1.1.1", start).is_ok(), "attempt {n} allowed");
            throttle.record_failure("a@x.io", "1.1.1.1", start);
        }
        let refused = throttle.check("a@x.io", "2.2.2.2", start + Duration::from_secs(1)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(59));
        assert!(throttle.check("b@x.io", "2.2.2.2", start).is_ok(), "other accounts are not affected");
        assert!(throttle.check("a@x.io", "2.2.2.2", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..5 {
            throttle.record_failure(&format!("user{n}@x.io"), "9.9.9.9", now);
        }
        assert!(throttle.check("fresh@x.io", "9.9.9.9", now).is_err());
        assert!(throttle.check("fresh@x.io", "8.8.8.8", now).is_ok());
    }

    #[test]
    fn success_clears_the_account_and_memory_stays_bounded() {
        let throttle = throttle();
        let now = Instant::now();
        throttle.record_failure("a@x.io", "1.1.1.1", now);
        throttle.record_success("a@x.io");
        for n in 0..1_000 {
            throttle.record_failure(&format!("spray{n}@x.io"), &format!("10.0.{}.{}", n / 256, n % 256), now);
        }
        assert!(throttle.len() <= 50, "bounded: {}", throttle.len());
    }
}
