//! Unsaved drafts. A draft belongs to the editing session, not to the owner's presence: it survives the owner leaving
//! (the next owner continues from it) and ends when the draft is saved or the last editor has gone (it is then kept
//! for its author: [`super::KeptDraftStore`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::target::EditTarget;
use crate::presence::Authority;
use crate::pubsub::Remote;

/// Who wrote a draft's latest version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftAuthor {
    /// The user's id.
    pub user_id: String,
    /// The user's display name.
    pub name: String,
    /// The page that wrote it.
    pub view_id: String,
}

/// The owner's unsaved form values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The form's values, as the form sends them.
    pub params: serde_json::Value,
    /// Bumped by every accepted update, starting at 1.
    pub version: u64,
    /// The row's `lock_version` the draft started from: a save writes the draft as it is only while the row still
    /// has it, and otherwise merges it per field (see [`super::merge`]).
    pub base_lock_version: i64,
    /// The row's values at `base_lock_version`, snapshot when the draft started, in the shape the application merges:
    /// the "base" of the three-way merge, which tells the fields the draft changed from those it only carries. `None`
    /// when the application did not know them (or the draft predates base snapshots: missing in a stored draft); a
    /// merge then treats every field the two sides disagree on as a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_values: Option<serde_json::Value>,
    /// Who wrote the latest version.
    pub updated_by: DraftAuthor,
    /// Wall-clock time of the latest version, ms since the Unix epoch.
    pub updated_at: u64,
}

/// The row a draft starts from: its version and, when the application knows them, its values (see
/// [`Draft::base_values`]). A bare version converts into one with unknown values.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftBase {
    /// The row's `lock_version`.
    pub lock_version: i64,
    /// The row's values at that version.
    pub values: Option<serde_json::Value>,
}

impl DraftBase {
    /// The row at `lock_version`, with its `values`.
    pub fn new(lock_version: i64, values: serde_json::Value) -> Self {
        DraftBase { lock_version, values: Some(values) }
    }
}

impl From<i64> for DraftBase {
    fn from(lock_version: i64) -> Self {
        DraftBase { lock_version, values: None }
    }
}

/// Published on the session's form topic whenever its draft changes or ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DraftChanged {
    /// The editing session.
    pub target: EditTarget,
    /// The new draft, or `None` once it was saved.
    pub draft: Option<Arc<Draft>>,
    /// The page that caused the change, so it can ignore its own echo.
    pub source: String,
}

impl crate::pubsub::Message for DraftChanged {
    fn event(&self) -> &str {
        "draft"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl crate::pubsub::RemoteMessage for DraftChanged {
    const CODEC: &'static str = "livebaton.draft";
}

/// Keeps each editing session's current draft.
///
/// Methods are synchronous: they run while the session's ownership is locked, so a draft can never be written by a tab
/// that lost the baton a moment before. A shared (Redis) store keeps a local copy for these reads and writes through.
pub trait DraftStore: Send + Sync + 'static {
    /// The session's draft.
    fn get(&self, target: &EditTarget) -> Option<Arc<Draft>>;
    /// Replaces the session's draft. `writer`, with a shared roster, is the session's leader and fence the write is
    /// made under: a shared store has the write refused everywhere unless they still lead (this node's view may be a
    /// moment behind a hand-over elsewhere).
    fn put(&self, target: &EditTarget, draft: Arc<Draft>, writer: Option<&Authority>);
    /// Ends the session's draft.
    fn remove(&self, target: &EditTarget) -> Option<Arc<Draft>>;
    /// Every session's draft (for keeping them all at a shutdown).
    fn snapshot(&self) -> Vec<(EditTarget, Arc<Draft>)>;
}

/// Drafts in this process's memory.
#[derive(Default)]
pub struct LocalDraftStore {
    /// A std `Mutex`: one map operation per call, never held across an await.
    drafts: Mutex<HashMap<EditTarget, Arc<Draft>>>,
}

impl LocalDraftStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<EditTarget, Arc<Draft>>> {
        self.drafts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of sessions with a draft.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session has a draft.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}

impl DraftStore for LocalDraftStore {
    fn get(&self, target: &EditTarget) -> Option<Arc<Draft>> {
        self.map().get(target).cloned()
    }

    fn put(&self, target: &EditTarget, draft: Arc<Draft>, _writer: Option<&Authority>) {
        self.map().insert(target.clone(), draft);
    }

    fn remove(&self, target: &EditTarget) -> Option<Arc<Draft>> {
        self.map().remove(target)
    }

    fn snapshot(&self) -> Vec<(EditTarget, Arc<Draft>)> {
        self.map().iter().map(|(target, draft)| (target.clone(), draft.clone())).collect()
    }
}
