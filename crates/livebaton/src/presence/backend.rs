//! Where a presence entry's place in the order comes from.
//!
//! On one node the tracker's own roster is the authority: it numbers entries under the same lock that inserts them, so
//! numbering and insertion are one step and no member can believe it is first while an earlier entry exists. A shared
//! backend (Redis, in the multi-node work) numbers entries for every node in one atomic step instead.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so backends can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared roster backend failed.
#[derive(Debug, thiserror::Error)]
#[error("presence backend unavailable: {0}")]
pub struct RosterBackendError(pub String);

/// Assigns the sequence numbers that order each topic's entries.
pub trait RosterBackend: Send + Sync + 'static {
    /// Reserves a sequence number for a new entry on `topic`, or returns `None` when this node's roster is the
    /// authority and should number the entry itself.
    fn reserve<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Option<u64>, RosterBackendError>>;
}

/// The single-node backend: this node's roster numbers its own entries.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalRoster;

impl RosterBackend for LocalRoster {
    fn reserve<'a>(&'a self, _topic: &'a str) -> BoxFuture<'a, Result<Option<u64>, RosterBackendError>> {
        Box::pin(std::future::ready(Ok(None)))
    }
}
