//! What is being edited and by whom: the session's target, its topic names, and the editor's identity.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::presence::Meta;

/// Longest kind name: a short word such as `invoice`.
pub const MAX_KIND_LEN: usize = 32;
/// Longest id: room for a UUID, a slug or a composite key, small enough for a topic name and a Redis key.
pub const MAX_ID_LEN: usize = 128;

/// One editable thing of the application, named by its kind (`invoice`, `article`) and its id (an integer, a UUID, a
/// slug: any text). All editors of the same target share one editing session. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TargetParts", into = "TargetParts")]
pub struct EditTarget {
    /// Validated: 1 to [`MAX_KIND_LEN`] characters of `a-z 0-9 _`.
    kind: Arc<str>,
    /// Validated: 1 to [`MAX_ID_LEN`] bytes, no whitespace or control characters.
    id: Arc<str>,
}

/// Why a kind or id cannot name an editing session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTarget {
    /// The kind is empty, too long, or not made of `a-z 0-9 _`.
    #[error("an editing kind is 1 to {MAX_KIND_LEN} characters of a-z, 0-9 and _")]
    Kind,
    /// The id is empty, too long, or has whitespace or control characters.
    #[error("an editing id is 1 to {MAX_ID_LEN} bytes without whitespace or control characters")]
    Id,
}

impl EditTarget {
    /// The editing session of `kind`'s `id`.
    ///
    /// # Errors
    /// [`InvalidTarget`] unless `kind` is 1 to [`MAX_KIND_LEN`] characters of `a-z 0-9 _` and `id` is 1 to
    /// [`MAX_ID_LEN`] bytes without whitespace or control characters (ids end up in topic names and Redis keys, and
    /// often come from a URL).
    pub fn new(kind: &str, id: impl fmt::Display) -> Result<Self, InvalidTarget> {
        let valid_kind = !kind.is_empty()
            && kind.len() <= MAX_KIND_LEN
            && kind.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !valid_kind {
            return Err(InvalidTarget::Kind);
        }
        let id = id.to_string();
        let valid_id = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && !id.chars().any(|char| char.is_whitespace() || char.is_control());
        if !valid_id {
            return Err(InvalidTarget::Id);
        }
        Ok(EditTarget { kind: Arc::from(kind), id: Arc::from(id) })
    }

    /// The kind of thing, as the application names it.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The presence topic of the session's editors: `<kind>_edit:<id>` (PhoenixKit's `entity_edit:<id>`).
    pub fn presence_topic(&self) -> String {
        format!("{}_edit:{}", self.kind, self.id)
    }

    /// The topic the owner's drafts are published on: `<kind>_form:<id>`.
    pub fn form_topic(&self) -> String {
        format!("{}_form:{}", self.kind, self.id)
    }

    /// The target whose presence topic is `topic`, if it is one.
    pub fn from_presence_topic(topic: &str) -> Option<Self> {
        let (prefix, id) = topic.split_once(':')?;
        Self::new(prefix.strip_suffix("_edit")?, id).ok()
    }
}

impl fmt::Display for EditTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_edit:{}", self.kind, self.id)
    }
}

impl fmt::Debug for EditTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EditTarget({}:{})", self.kind, self.id)
    }
}

/// An [`EditTarget`] as it is serialised: `{"kind": "invoice", "id": "inv-7"}`, validated when read.
#[derive(Serialize, Deserialize)]
struct TargetParts {
    kind: String,
    id: String,
}

impl TryFrom<TargetParts> for EditTarget {
    type Error = InvalidTarget;

    fn try_from(parts: TargetParts) -> Result<Self, Self::Error> {
        EditTarget::new(&parts.kind, parts.id)
    }
}

impl From<EditTarget> for TargetParts {
    fn from(target: EditTarget) -> Self {
        TargetParts { kind: target.kind.to_string(), id: target.id.to_string() }
    }
}

/// A signed-in person who opened an edit form, as the application describes them when they join a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Editor {
    /// The user's id (a string, so integer and UUID ids both fit).
    pub user_id: String,
    /// The name shown to other editors.
    pub name: String,
    /// Whether the application lets the user edit this target. Others watch but never hold the baton.
    pub can_edit: bool,
    /// The user's rank for precedence between editors (higher ranks first, e.g. an admin above an editor): carried
    /// with the member so every node sees it ([`super::EditingPresence::rank`]). The queue itself is first come,
    /// first served.
    pub rank: i32,
    /// Whether the editor has stepped back: they stay in the session and watch, but do not hold or wait for the
    /// baton until they join again without it ([`super::EditingPresence::yielded`]).
    pub yielded: bool,
    /// The application's own display fields (an avatar URL, a colour), shown to every member of the session. Names
    /// the engine writes itself (`user_id`, `user_name`, `can_edit`, `rank`, `yielded`, `joined_at`, `tab_id`) are
    /// ignored. Everyone in the session sees them: never put an email or a secret here.
    pub fields: Meta,
}

impl Editor {
    /// User `user_id`, shown as `name`, who may edit.
    pub fn new(user_id: impl Into<String>, name: impl Into<String>) -> Self {
        Editor { user_id: user_id.into(), name: name.into(), can_edit: true, ..Editor::default() }
    }

    /// Whether they may edit.
    #[must_use]
    pub fn with_can_edit(mut self, can_edit: bool) -> Self {
        self.can_edit = can_edit;
        self
    }

    /// Their rank (see [`Editor::rank`]).
    #[must_use]
    pub fn with_rank(mut self, rank: i32) -> Self {
        self.rank = rank;
        self
    }

    /// Joins stepped back (see [`Editor::yielded`]).
    #[must_use]
    pub fn with_yielded(mut self, yielded: bool) -> Self {
        self.yielded = yielded;
        self
    }

    /// Adds a display field (see [`Editor::fields`]).
    #[must_use]
    pub fn with_field(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }
}
