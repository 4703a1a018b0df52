//! Where the roster's authority lives: in this node ([`LocalRoster`]) or shared by every node (the Redis roster).
//!
//! On one node the tracker's own roster is the authority: it numbers entries under the same lock that inserts them, so
//! numbering and insertion are one step and no member can believe it is first while an earlier entry exists.
//!
//! A shared roster ([`RosterBackend::node_id`] is `Some`) numbers every node's entries in one atomic step instead, and
//! answers a join with what the joiner must see first ([`JoinOutcome::earlier`]). The tracker then:
//! - asks it to number each join and waits for the answer ([`RosterBackend::join`]);
//! - applies its own leaves, closes, updates and swaps locally first (those calls are synchronous) and hands them to
//!   [`RosterBackend::submit`], which writes them through in the order submitted;
//! - receives the other nodes' changes through the [`super::RosterHandle`] given to [`RosterBackend::attach`].

use std::sync::Arc;

use super::RosterHandle;
use super::replica::JoinOutcome;
use super::shapes::Meta;
use super::state::Authority;

pub use crate::BoxFuture;

/// A shared roster backend failed.
#[derive(Debug, thiserror::Error)]
#[error("presence backend unavailable: {0}")]
pub struct RosterBackendError(pub String);

/// A join to be numbered by a shared roster.
#[derive(Clone, Debug)]
pub struct JoinCall {
    /// The topic.
    pub topic: Arc<str>,
    /// The new entry's id in the shared roster.
    pub member: Arc<str>,
    /// Presence key.
    pub key: Arc<str>,
    /// The entry's `phx_ref`.
    pub phx_ref: Arc<str>,
    /// Metadata.
    pub fields: Arc<Meta>,
    /// Whether the entry may lead the topic ([`super::TrackOptions::may_lead`]).
    pub eligible: bool,
    /// Reclaim identity: a lingering entry of the same tab (on any node) is taken over with its place.
    pub tab: Option<Arc<str>>,
    /// The highest place this node knows on the topic: a shared roster that lost its data (Redis restarted) numbers
    /// new entries after it, so they never get ahead of entries that are about to be re-asserted. (A backend may read
    /// a newer value through [`super::RosterHandle::topic_position`] when it sends the join.)
    pub floor: u64,
    /// The topic's version this node's replica has (0: none), so the answer carries only what it may be missing. (As
    /// `floor`, a backend may read a newer one when it sends the join.)
    pub known_ver: u64,
}

/// A change to one of this node's entries, written through after it was applied locally.
#[derive(Clone, Debug)]
pub enum OwnOp {
    /// The entry left.
    Leave {
        /// The topic.
        topic: Arc<str>,
        /// The entry.
        member: Arc<str>,
    },
    /// The entry's page closed; the entry lingers, reclaimable by `tab` (on any node) until it leaves.
    Close {
        /// The topic.
        topic: Arc<str>,
        /// The entry.
        member: Arc<str>,
        /// Reclaim identity.
        tab: Arc<str>,
    },
    /// The entry's metadata changed.
    Update {
        /// The topic.
        topic: Arc<str>,
        /// The entry.
        member: Arc<str>,
        /// Presence key.
        key: Arc<str>,
        /// New `phx_ref`.
        phx_ref: Arc<str>,
        /// New metadata.
        fields: Arc<Meta>,
        /// Whether it may lead the topic now.
        eligible: bool,
    },
    /// Two entries exchanged places (`(member, seq before the swap)` each). The shared roster applies it only if both
    /// are still where this node saw them; otherwise this node reloads the topic.
    Swap {
        /// The topic.
        topic: Arc<str>,
        /// One entry and its place before.
        first: (Arc<str>, u64),
        /// The other entry and its place before.
        second: (Arc<str>, u64),
    },
}

/// The shared roster's verdict on a fencing token's leader.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorityCheck {
    /// The token's leader still leads, with the same fence, and its node is alive.
    pub valid: bool,
    /// The current leader's metadata, to name them to the user.
    pub leader_fields: Option<Arc<Meta>>,
}

/// Numbers presence entries, and with a shared roster, carries this node's entries to the others and theirs here.
pub trait RosterBackend: Send + Sync + 'static {
    /// This node's id in a shared roster (the prefix of its entries' member ids), or `None` when this node's roster
    /// is the authority.
    fn node_id(&self) -> Option<&str> {
        None
    }

    /// Called once by the tracker built on this backend: a shared roster applies other nodes' changes through
    /// `handle`.
    fn attach(&self, handle: RosterHandle) {
        let _ = handle;
    }

    /// Numbers a join (shared rosters only).
    ///
    /// # Errors
    /// [`RosterBackendError`] when the shared roster cannot be reached in time; nothing was tracked.
    fn join<'a>(&'a self, call: JoinCall) -> BoxFuture<'a, Result<JoinOutcome, RosterBackendError>> {
        let _ = call;
        Box::pin(std::future::ready(Err(RosterBackendError("this roster is not shared".to_owned()))))
    }

    /// Writes a change of an own entry through, after every change submitted before it. Must not block.
    fn submit(&self, op: OwnOp) {
        let _ = op;
    }

    /// Whether this node can currently vouch for its view of the shared roster (its liveness lease is fresh). A node
    /// that cannot refuses fencing checks, since the others may already have declared it dead.
    fn is_healthy(&self) -> bool {
        true
    }

    /// Asks the shared roster, atomically, whether `authority` is still the current leader of `topic`.
    ///
    /// # Errors
    /// [`RosterBackendError`] when the shared roster cannot be reached.
    fn check_authority<'a>(
        &'a self,
        topic: &'a str,
        authority: &'a Authority,
    ) -> BoxFuture<'a, Result<AuthorityCheck, RosterBackendError>> {
        let _ = (topic, authority);
        Box::pin(std::future::ready(Ok(AuthorityCheck { valid: true, leader_fields: None })))
    }

    /// Waits until everything submitted so far has been written through (for tests and orderly shutdown).
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The single-node backend: this node's roster numbers its own entries.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalRoster;

impl RosterBackend for LocalRoster {}
