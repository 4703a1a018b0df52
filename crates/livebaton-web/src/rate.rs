//! A token bucket for client events: a sustained rate with a burst allowance, and a count of refusals to spot abuse.

use std::time::Instant;

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
///
/// 40 bytes, not 64: every connection's task holds one for the connection's whole life, and 24 bytes more made that
/// task a size class bigger (see `the_connection_task_stays_small`). So `f32` rates and one `Instant`: the start of the
/// minute in which refusals are counted is kept as its age.
#[derive(Debug)]
pub struct EventRate {
    /// The last event.
    last: Instant,
    per_second: f32,
    burst: f32,
    tokens: f32,
    refused: u32,
    max_refused: u32,
    /// Microseconds since the current minute of refusals started, as of `last` (saturating: only compared with 60 s).
    window_micros: u32,
}

/// Refusals are counted per minute.
const REFUSAL_WINDOW_MICROS: u32 = 60_000_000;

impl EventRate {
    /// A budget of `per_second` sustained with `burst` extra, closing after `max_refused` refusals in a minute.
    pub fn new(per_second: u32, burst: u32, max_refused: u32, now: Instant) -> Self {
        let burst = burst.max(1) as f32;
        EventRate {
            last: now,
            per_second: per_second.max(1) as f32,
            burst,
            tokens: burst,
            refused: 0,
            max_refused,
            window_micros: 0,
        }
    }

    /// Spends one event at `now`.
    pub fn take(&mut self, now: Instant) -> RateDecision {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        let elapsed_micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        self.window_micros = self.window_micros.saturating_add(elapsed_micros);
        self.tokens = (self.tokens + elapsed.as_secs_f32() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return RateDecision::Allow;
        }
        if self.window_micros > REFUSAL_WINDOW_MICROS {
            self.refused = 0;
            self.window_micros = 0;
        }
        self.refused += 1;
        if self.refused > self.max_refused { RateDecision::Disconnect } else { RateDecision::Refuse }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[test]
    fn refusals_are_counted_per_minute() {
        let start = Instant::now();
        let mut rate = EventRate::new(1, 1, 2, start);
        assert_eq!(rate.take(start), RateDecision::Allow);
        // Two refusals, 40 s apart: tokens come back at 1 per second, so each is preceded by an allowed event.
        let at = |seconds: u64, millis: u64| start + Duration::from_secs(seconds) + Duration::from_millis(millis);
        for (seconds, expected) in [(0, RateDecision::Refuse), (40, RateDecision::Refuse)] {
            if seconds > 0 {
                assert_eq!(rate.take(at(seconds, 0)), RateDecision::Allow);
            }
            assert_eq!(rate.take(at(seconds, 1)), expected);
        }
        // A third refusal within the minute closes; the same a minute after the first starts a new count.
        let mut late = EventRate::new(1, 1, 2, start);
        let mut early = EventRate::new(1, 1, 2, start);
        for rate in [&mut late, &mut early] {
            assert_eq!(rate.take(start), RateDecision::Allow);
            assert_eq!(rate.take(at(0, 1)), RateDecision::Refuse);
            assert_eq!(rate.take(at(40, 0)), RateDecision::Allow);
            assert_eq!(rate.take(at(40, 1)), RateDecision::Refuse);
        }
        assert_eq!(early.take(at(50, 0)), RateDecision::Allow);
        assert_eq!(early.take(at(50, 1)), RateDecision::Disconnect, "three refusals in 50 s");
        assert_eq!(late.take(at(61, 0)), RateDecision::Allow);
        assert_eq!(late.take(at(61, 1)), RateDecision::Refuse, "the first refusal was more than a minute ago");
    }

    #[test]
    fn stays_small() {
        assert!(std::mem::size_of::<EventRate>() <= 40);
    }
}
