//! The roster's settings, and what it reports: its errors, its connection's state and its counters.

use std::time::Duration;

use ::redis::RedisError;

use crate::redis_link::LinkConfig;

/// Settings for a [`RedisRoster`](super::RedisRoster).
#[derive(Clone, Debug)]
pub struct RedisRosterConfig {
    /// Prefix of every Redis key and of the event channel. Nodes share a roster only with the same prefix (and Redis);
    /// tests isolate themselves with unique prefixes.
    pub prefix: String,
    /// How long a node's liveness lease lasts without a refresh. A crashed node's entries are removed once it ran out.
    pub lease: Duration,
    /// How often a node refreshes its lease and looks for dead nodes.
    pub refresh: Duration,
    /// After Redis lost its data: how long remote entries stay listed waiting for their nodes to re-assert them.
    pub reassert_grace: Duration,
    /// How long a join may wait for Redis before `track` fails.
    pub join_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer one command before the connection counts as lost.
    pub command_timeout: Duration,
    /// How often the subscribing connection is checked with a `PING`.
    pub ping_interval: Duration,
    /// The first delay between reconnection (and retry) attempts.
    pub reconnect_min: Duration,
    /// The longest delay between reconnection (and retry) attempts.
    pub reconnect_max: Duration,
    /// TTL of shared documents in Redis, renewed by every write: a safety net so the documents of topics whose nodes
    /// all died do not stay forever.
    pub doc_ttl: Duration,
    /// How many of this node's writes may wait for Redis before the queue is compacted (changes of own entries folded
    /// into one re-assert of their current state, superseded document writes dropped) and joins fail at once. Reached
    /// only while Redis is away.
    pub queue_capacity: usize,
}

impl Default for RedisRosterConfig {
    fn default() -> Self {
        RedisRosterConfig {
            prefix: "livebaton:presence".to_owned(),
            lease: Duration::from_secs(5),
            refresh: Duration::from_secs(1),
            reassert_grace: Duration::from_secs(5),
            join_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            doc_ttl: Duration::from_secs(24 * 3600),
            queue_capacity: 4096,
        }
    }
}

impl RedisRosterConfig {
    /// Whether the settings can work.
    pub(super) fn check(&self) -> Result<(), RedisRosterError> {
        if self.prefix.is_empty() {
            return Err(RedisRosterError::Config("the key prefix is empty"));
        }
        if self.refresh.is_zero() || self.refresh >= self.lease {
            return Err(RedisRosterError::Config("refresh must be shorter than the lease (and not zero)"));
        }
        if self.queue_capacity == 0 {
            return Err(RedisRosterError::Config("queue_capacity must be at least 1"));
        }
        Ok(())
    }

    /// The timings of the roster's Redis link.
    pub(super) fn link(&self) -> LinkConfig {
        LinkConfig {
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            ping_interval: self.ping_interval,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
        }
    }

    /// The channel every roster event and document change is published on.
    pub(super) fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }
}

/// Why a [`RedisRoster`](super::RedisRoster) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisRosterError {
    /// The URL is not a Redis URL, or the CA certificate given with it cannot be used.
    #[error("invalid Redis URL or CA certificate: {0}")]
    InvalidUrl(#[source] RedisError),
    /// Redis refused the user or password of the URL (or wants one and the URL has none). Not retried.
    #[error(
        "Redis at {redis} refused to authenticate the presence roster ({reason}); check the user and password in the \
         Redis URL"
    )]
    Authentication {
        /// Host and port, without credentials.
        redis: String,
        /// Redis's answer.
        reason: String,
    },
    /// Redis could not be reached or did not answer in time.
    #[error("could not reach Redis at {redis} for the presence roster: {reason}")]
    Unavailable {
        /// Host and port, without credentials.
        redis: String,
        /// What went wrong.
        reason: String,
    },
    /// Redis refused a command (for example a missing permission, or scripting disabled).
    #[error("Redis at {redis} refused a presence roster command: {reason}")]
    Refused {
        /// Host and port, without credentials.
        redis: String,
        /// Redis's answer.
        reason: String,
    },
    /// A setting cannot work.
    #[error("invalid Redis roster configuration: {0}")]
    Config(&'static str),
}

/// The state of a node's connection to the roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisRosterStatus {
    /// Subscribed to the roster's events.
    pub connected: bool,
    /// The replica was reloaded after the latest (re)connection.
    pub synced: bool,
    /// How many times the subscription was lost and made again.
    pub reconnects: u64,
}

/// Counters of a [`RedisRoster`](super::RedisRoster), for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisRosterStats {
    /// Events applied to the replica.
    pub events: u64,
    /// Gaps in a topic's versions (each reloaded the topic).
    pub gaps: u64,
    /// Full reloads of the replica.
    pub resyncs: u64,
    /// Times Redis was found to have lost the roster (a new dataset generation).
    pub resets: u64,
    /// Other nodes this node declared dead and removed.
    pub reaped_nodes: u64,
    /// Times this node re-asserted its entries.
    pub reconciles: u64,
    /// Writes of own changes that Redis executed.
    pub writes: u64,
    /// Writes retried after a lost connection.
    pub retries: u64,
    /// Writes waiting in the queue now (see [`RedisRosterConfig::queue_capacity`]).
    pub queued: u64,
    /// Writes dropped from the queue or folded into a re-assert while Redis was away.
    pub coalesced: u64,
}
