//! Limits of one WebSocket connection, each configurable.

use std::time::Duration;

/// Settings for every socket.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Largest frame (message) accepted from a client; larger closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// Most channels one socket may join at once.
    pub max_channels: usize,
    /// Client events allowed per second (sustained); heartbeats do not count.
    pub events_per_second: u32,
    /// Client events allowed in a burst above the sustained rate.
    pub event_burst: u32,
    /// Events refused for rate within one minute before the socket is closed (1008).
    pub max_refused_events: u32,
    /// Frames queued for a client that reads too slowly; when full the socket is closed (1008).
    pub outbound_queue: usize,
    /// A socket that sends nothing for this long, not even a pong, is closed (1001) and its presences leave at once.
    /// The endpoint checks its sockets every quarter of the timeout (at least once a second): one silent for half the
    /// timeout is sent a WebSocket ping, which browsers and WebSocket libraries answer by themselves, so a client never
    /// needs to heartbeat faster than Phoenix's 30 s; one silent for the timeout less one check period is closed, so
    /// a dead peer is gone within the timeout (10 s: between 9 and 10 s after its last frame).
    pub idle_timeout: Duration,
    /// Most sockets served at once; an upgrade beyond it is answered 503 with `Retry-After`, so a flood of
    /// connections cannot exhaust the process's file descriptors.
    pub max_sockets: usize,
    /// Most sockets served at once for one client address (when the application names it, see
    /// [`crate::endpoint::LiveEndpoint::accept_from`]); beyond it the upgrade is answered 429 with `Retry-After`.
    /// 0: no limit per address.
    pub max_sockets_per_address: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            max_frame_bytes: 64 * 1024,
            max_channels: 100,
            events_per_second: 50,
            event_burst: 100,
            max_refused_events: 200,
            outbound_queue: 256,
            idle_timeout: Duration::from_secs(10),
            max_sockets: 100_000,
            max_sockets_per_address: 1_000,
        }
    }
}
