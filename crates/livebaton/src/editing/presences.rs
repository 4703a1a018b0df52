//! Editors as the roster lists them, and the pure rule that picks the owner.
//!
//! The owner is the first *eligible* entry in sequence order: the earliest tab whose user may edit. Ownership is per
//! tab: another tab of the owner's user is a spectator that can take over at once (see `Editing::take_here`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::presence::{Entry, PresenceMeta};

/// One editor's tab in an editing session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditingPresence {
    /// The page (view) id: the presence key.
    pub view_id: Arc<str>,
    /// Place in the queue: lower came first.
    pub seq: u64,
    /// The user's id.
    pub user_id: String,
    /// The user's display name.
    pub user_name: String,
    /// Whether this editor may hold the baton now (the application lets them edit, and they have not yielded).
    pub can_edit: bool,
    /// Their rank ([`super::Editor::rank`]).
    pub rank: i32,
    /// Whether they stepped back ([`super::Editor::yielded`]).
    pub yielded: bool,
    /// The browser tab, if known.
    pub tab_id: Option<String>,
    /// Wall-clock join time in ms (informative; the order is `seq`).
    pub joined_at: u64,
}

impl EditingPresence {
    /// Reads an editor from a roster meta written by `Editing::track_editing_session`.
    pub fn from_meta(view_id: &Arc<str>, meta: &PresenceMeta) -> Self {
        let text = |field: &str| meta.get_str(field).unwrap_or_default().to_owned();
        EditingPresence {
            view_id: view_id.clone(),
            seq: meta.seq,
            user_id: text("user_id"),
            user_name: text("user_name"),
            can_edit: meta.get("can_edit").and_then(serde_json::Value::as_bool).unwrap_or(false),
            rank: meta
                .get("rank")
                .and_then(serde_json::Value::as_i64)
                .and_then(|rank| i32::try_from(rank).ok())
                .unwrap_or(0),
            yielded: meta.get("yielded").and_then(serde_json::Value::as_bool).unwrap_or(false),
            tab_id: meta.get_str("tab_id").map(str::to_owned),
            joined_at: meta.get("joined_at").and_then(serde_json::Value::as_u64).unwrap_or(0),
        }
    }

    pub(crate) fn from_entry(entry: &Entry) -> Self {
        Self::from_meta(&entry.key, &entry.meta)
    }
}

/// What one tab may do in an editing session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditingRole {
    /// This tab holds the baton: it may edit and save.
    Owner {
        /// Every editor, in queue order.
        presences: Vec<EditingPresence>,
    },
    /// This tab watches read-only.
    Spectator {
        /// Who holds the baton (`None` when nobody present may edit).
        owner: Option<EditingPresence>,
        /// Every editor, in queue order.
        presences: Vec<EditingPresence>,
        /// The owner is another tab of this tab's user: this tab may take over at once.
        can_take_here: bool,
    },
}

impl EditingRole {
    /// Whether this role holds the baton.
    pub fn is_owner(&self) -> bool {
        matches!(self, EditingRole::Owner { .. })
    }

    /// Every editor, in queue order.
    pub fn presences(&self) -> &[EditingPresence] {
        match self {
            EditingRole::Owner { presences } | EditingRole::Spectator { presences, .. } => presences,
        }
    }
}

/// Whether an entry may hold the baton: it was tracked as one that may lead its topic
/// ([`crate::presence::TrackOptions::may_lead`]), the same rule by which the shared roster names the leader.
pub(crate) fn is_eligible(entry: &Entry) -> bool {
    entry.eligible
}

/// The owner among entries given in sequence order.
pub(crate) fn first_eligible<'a>(mut entries: impl Iterator<Item = &'a Entry>) -> Option<&'a Entry> {
    entries.find(|entry| is_eligible(entry))
}

/// The role of `view_id` among entries given in sequence order.
pub(crate) fn role_of<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    view_id: &str,
    user_id: &str,
) -> EditingRole {
    let presences: Vec<EditingPresence> = entries.clone().map(EditingPresence::from_entry).collect();
    match first_eligible(entries) {
        Some(owner) if &*owner.key == view_id => EditingRole::Owner { presences },
        owner => {
            let owner = owner.map(EditingPresence::from_entry);
            let me = presences.iter().find(|presence| &*presence.view_id == view_id);
            let can_take_here = match (&owner, me) {
                (Some(owner), Some(me)) => owner.user_id == user_id && me.user_id == user_id && me.can_edit,
                _ => false,
            };
            EditingRole::Spectator { owner, presences, can_take_here }
        }
    }
}
