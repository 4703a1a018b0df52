//! The timings every Redis link shares: how long to wait for a connection and for an answer, how often to check a
//! subscription, how to pace reconnecting. The PubSub backend's and the roster's public settings carry them.

use std::time::Duration;

use super::Backoff;

/// How a link waits for Redis and reconnects to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkConfig {
    /// How long one connection attempt may take.
    pub(crate) connect_timeout: Duration,
    /// How long Redis may take to answer one command before the connection counts as lost.
    pub(crate) command_timeout: Duration,
    /// How often a subscribing connection is checked with a `PING`, so a silently dead connection is noticed.
    pub(crate) ping_interval: Duration,
    /// The first delay between reconnection attempts (the very first retry is immediate).
    pub(crate) reconnect_min: Duration,
    /// The longest delay between reconnection attempts.
    pub(crate) reconnect_max: Duration,
}

impl LinkConfig {
    /// A fresh backoff for one outage (or one series of retries).
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(self.reconnect_min, self.reconnect_max)
    }
}
