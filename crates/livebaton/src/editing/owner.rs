//! Who holds the baton in each editing session, how that changes, and the fencing tokens that prove it at save time.
//!
//! [`OwnerBoard`] observes the presence roster of every editing topic. After each change it recomputes the owner
//! (first eligible entry in sequence order); when the owner differs it bumps the session's epoch and tells every member
//! with an [`OwnerChanged`] message. A fencing [`OwnerToken`] names the epoch it was issued in, so a token from before
//! any hand-over is refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::draft::{Draft, DraftAuthor, DraftStore};
use super::kept::Keeper;
use super::presences::{EditingPresence, first_eligible};
use super::target::EditTarget;
use crate::presence::{Authority, PresenceObserver, PresenceState, RosterChange};
use crate::pubsub::{Message, PubSub};

/// Why the owner changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerChangeReason {
    /// The session got its first owner.
    First,
    /// The owner left and the next in line was promoted.
    Promoted,
    /// The owner is still here but another tab of the same user took over.
    Handover,
    /// The owner left and nobody present may edit.
    Vacated,
}

/// What a member's role became after an [`OwnerChanged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// This member now holds the baton.
    Promoted,
    /// This member held the baton and no longer does.
    Demoted,
    /// No change for this member.
    Unchanged,
}

/// Published on the session's presence topic whenever the owner changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnerChanged {
    /// The editing session.
    pub target: EditTarget,
    /// The new owner, if anyone may edit.
    pub owner: Option<EditingPresence>,
    /// The previous owner's view id.
    pub previous_owner: Option<String>,
    /// Why it changed.
    pub reason: OwnerChangeReason,
    /// The session's ownership epoch after the change.
    pub epoch: u64,
    /// The unsaved draft the new owner continues from: its version and author.
    pub draft: Option<DraftSummary>,
    /// When this node saw the change (the roster update that caused it), for measuring hand-over latency. Not sent
    /// to clients or other nodes.
    #[serde(skip)]
    pub observed_at: Option<std::time::Instant>,
}

/// Local only: every node observes the same roster changes and tells its own members, so no codec.
impl Message for OwnerChanged {
    fn event(&self) -> &str {
        "owner_changed"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

impl OwnerChanged {
    /// What the change means for the member `view_id`.
    pub fn role_change_for(&self, view_id: &str) -> RoleChange {
        let now = self.owner.as_ref().is_some_and(|owner| &*owner.view_id == view_id);
        let before = self.previous_owner.as_deref() == Some(view_id);
        match (before, now) {
            (false, true) => RoleChange::Promoted,
            (true, false) => RoleChange::Demoted,
            _ => RoleChange::Unchanged,
        }
    }
}

/// A draft's version and author, as told to a new owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftSummary {
    /// Draft version.
    pub version: u64,
    /// Who wrote it.
    pub updated_by: DraftAuthor,
}

/// The tab is not the owner of the editing session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .owner_name { Some(name) => format!("read-only: {name} is editing"), None => "read-only: you are not editing this".to_owned() })]
pub struct NotOwner {
    /// The current owner's display name, to show the user.
    pub owner_name: Option<String>,
}

/// Proof, taken just before a save, that a tab holds the baton. The store checks it again at commit time with
/// [`super::Editing::verify`] (or, on several nodes, [`super::Editing::verify_with_authority`]), together with the
/// row's `lock_version` against [`OwnerToken::base_lock_version`].
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerToken {
    pub(crate) target: EditTarget,
    pub(crate) view_id: Arc<str>,
    pub(crate) epoch: u64,
    pub(crate) base_lock_version: Option<i64>,
    pub(crate) draft_version: Option<u64>,
    /// The session's draft when the token was issued: what a save without its own values writes, and its base.
    pub(crate) draft: Option<Arc<Draft>>,
    /// With a shared roster: the leader and fence the shared roster had for the session when the token was issued.
    pub(crate) authority: Option<Authority>,
}

impl OwnerToken {
    /// The editing session.
    pub fn target(&self) -> &EditTarget {
        &self.target
    }

    /// The owner's view id.
    pub fn view_id(&self) -> &str {
        &self.view_id
    }

    /// The ownership epoch the token was issued in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The row version the session's draft was based on, if there is a draft.
    pub fn base_lock_version(&self) -> Option<i64> {
        self.base_lock_version
    }

    /// The draft version being saved, if there is a draft.
    pub fn draft_version(&self) -> Option<u64> {
        self.draft_version
    }

    /// The session's draft when the token was issued, if there was one: its values, and the base they are merged
    /// against ([`Draft::base_lock_version`], [`Draft::base_values`]).
    pub fn draft(&self) -> Option<&Arc<Draft>> {
        self.draft.as_ref()
    }

    /// With a shared roster, the shared roster's fence for this ownership (it changes with every owner change in the
    /// cluster, and never repeats within a Redis dataset).
    pub fn fence(&self) -> Option<u64> {
        self.authority.as_ref().map(|authority| authority.fence)
    }
}

/// Ownership of one session.
#[derive(Debug, Default)]
pub(crate) struct SessionOwner {
    pub(crate) owner: Option<EditingPresence>,
    /// The owner entry's id in the shared roster (with one).
    pub(crate) member: Option<Arc<str>>,
    pub(crate) epoch: u64,
}

/// Owners of every editing session on this node.
pub(crate) struct OwnerBoard {
    /// Session → owner and epoch. A std `Mutex`. Lock order, everywhere: tracker → observers list → this → draft store
    /// → PubSub registry. The observer takes it inside the tracker's lock; draft updates and fencing take it alone and
    /// never call the tracker while holding it (fencing reads the shared roster's authority from the tracker *before*
    /// taking it), so no cycle exists. A shared draft store only queues its write-through under it (a channel send).
    sessions: Mutex<HashMap<EditTarget, SessionOwner>>,
    /// Source of ownership epochs for every session. Never reset (not even when a session ends and starts again), so
    /// a token from any earlier ownership can never match again. Bumped only under `sessions`.
    epochs: AtomicU64,
    pub(crate) drafts: Arc<dyn DraftStore>,
    /// Takes the draft of a session whose last member left, so its author finds it when they come back.
    pub(crate) keeper: Keeper,
    pub(crate) pubsub: PubSub,
}

impl OwnerBoard {
    pub(crate) fn new(pubsub: PubSub, drafts: Arc<dyn DraftStore>, keeper: Keeper) -> Self {
        OwnerBoard { sessions: Mutex::new(HashMap::new()), epochs: AtomicU64::new(0), drafts, keeper, pubsub }
    }

    /// The user id of the owner of `target`'s session, if `view_id` is that owner.
    pub(crate) fn owner_user(&self, target: &EditTarget, view_id: &str) -> Option<String> {
        let sessions = self.lock();
        let owner = sessions.get(target)?.owner.as_ref()?;
        (*owner.view_id == *view_id).then(|| owner.user_id.clone())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<EditTarget, SessionOwner>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error a non-owner gets, naming the owner.
    pub(crate) fn not_owner(session: Option<&SessionOwner>) -> NotOwner {
        NotOwner { owner_name: session.and_then(|session| session.owner.as_ref()).map(|owner| owner.user_name.clone()) }
    }
}

impl PresenceObserver for OwnerBoard {
    fn watches(&self, topic: &str) -> bool {
        EditTarget::from_presence_topic(topic).is_some()
    }

    fn needs_immediate_diffs(&self) -> bool {
        // An owner change must never reach a client before the presence diff that caused it.
        true
    }

    fn on_change(&self, topic: &str, roster: &PresenceState, _change: &RosterChange) {
        let Some(target) = EditTarget::from_presence_topic(topic) else { return };
        let mut sessions = self.lock();
        if roster.topic_len(topic) == 0 {
            // The last editor is gone: the session ends, and its unsaved draft is kept for its author (every node of a
            // cluster sees this and keeps the same draft: the kept-draft store takes it once).
            sessions.remove(&target);
            if let Some(draft) = self.drafts.remove(&target) {
                self.keeper.keep(&target, draft);
            }
            return;
        }
        let first = first_eligible(roster.entries(topic));
        let member = first.and_then(|entry| entry.member.clone());
        let owner = first.map(EditingPresence::from_entry);
        let session = sessions.entry(target.clone()).or_default();
        let owner_view = owner.as_ref().map(|owner| &owner.view_id);
        if session.owner.as_ref().map(|owner| &owner.view_id) == owner_view {
            // Same tab still first; refresh its details (an update may have changed them).
            session.owner = owner;
            session.member = member;
            return;
        }
        let previous = session.owner.take();
        let reason = match (&previous, &owner) {
            (None, _) => OwnerChangeReason::First,
            (Some(_), None) => OwnerChangeReason::Vacated,
            (Some(previous), Some(_)) if roster.entry_by_key(topic, &previous.view_id).is_some() => {
                OwnerChangeReason::Handover
            }
            (Some(_), Some(_)) => OwnerChangeReason::Promoted,
        };
        session.epoch = self.epochs.fetch_add(1, Ordering::Relaxed) + 1;
        session.owner = owner.clone();
        session.member = member;
        let draft = self
            .drafts
            .get(&target)
            .map(|draft| DraftSummary { version: draft.version, updated_by: draft.updated_by.clone() });
        let message = OwnerChanged {
            target,
            owner,
            previous_owner: previous.map(|previous| previous.view_id.to_string()),
            reason,
            epoch: session.epoch,
            draft,
            observed_at: Some(std::time::Instant::now()),
        };
        // Local only: every node observes the same roster changes and tells its own members.
        self.pubsub.local_broadcast(topic, message);
    }
}
