//! Reconnecting with exponential backoff and jitter, so that many nodes losing Redis together do not come back in
//! lockstep.

use std::time::Duration;

use super::random::random_u64;

/// Exponential backoff with jitter: 0, then `min`, `2 min`, … up to `max`, each randomised to between half and all.
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff whose first delay is zero, then `min` (at least 1 ms) doubling up to `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Backoff { next: Duration::ZERO, min, max: max.max(min) }
    }

    /// How long to wait before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = if delay.is_zero() { self.min } else { (delay * 2).min(self.max) };
        // Half of the delay, plus a random part of the other half.
        let half = delay / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random_u64() % nanos.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_once_then_grows_to_the_maximum_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        let bounds = [100, 200, 400, 800, 800, 800];
        for full in bounds.map(Duration::from_millis) {
            let delay = backoff.next_delay();
            assert!(delay >= full / 2 && delay <= full, "{delay:?} not within half of {full:?}");
        }
    }
}
