//! A token bucket for client events: a sustained rate with a burst allowance, and a count of refusals to spot abuse.

use std::time::{Duration, Instant};

/// The outcome of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead.
    Allow,
    /// Refuse this event (reply with an error).
    Refuse,
    /// Refused too often: close the socket.
    Disconnect,
}

/// Per-socket event budget.
#[derive(Debug)]
pub struct EventRate {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    refused: u32,
    refused_since: Instant,
    max_refused: u32,
}

impl EventRate {
    /// A budget of `per_second` sustained with `burst` extra, closing after `max_refused` refusals in a minute.
    pub fn new(per_second: u32, burst: u32, max_refused: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        EventRate {
            per_second: f64::from(per_second.max(1)),
            burst,
            tokens: burst,
            last: now,
            refused: 0,
            refused_since: now,
            max_refused,
        }
    }

    /// Spends one event at `now`.
    pub fn take(&mut self, now: Instant) -> RateDecision {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return RateDecision::Allow;
        }
        if now.saturating_duration_since(self.refused_since) > Duration::from_secs(60) {
            self.refused = 0;
            self.refused_since = now;
        }
        self.refused += 1;
        if self.refused > self.max_refused { RateDecision::Disconnect } else { RateDecision::Refuse }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate_then_disconnects_persistent_abuse() {
        let start = Instant::now();
        let mut rate = EventRate::new(10, 5, 3, start);
        for _ in 0..5 {
            assert_eq!(rate.take(start), RateDecision::Allow);
        }
        assert_eq!(rate.take(start), RateDecision::Refuse);
        assert_eq!(rate.take(start + Duration::from_millis(100)), RateDecision::Allow, "one token per 100 ms");
        assert_eq!(rate.take(start + Duration::from_millis(100)), RateDecision::Refuse);
        assert_eq!(rate.take(start + Duration::from_millis(100)), RateDecision::Refuse);
        assert_eq!(rate.take(start + Duration::from_millis(100)), RateDecision::Disconnect);
    }
}
