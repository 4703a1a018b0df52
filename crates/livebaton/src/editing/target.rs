//! What is being edited and by whom: the session's target, its topic names, and the editor's identity.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of content an editing session is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditKind {
    /// An entity definition (its form and field builder).
    Entity,
    /// A record of an entity.
    Data,
}

/// One editable thing: all editors of the same target share one editing session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EditTarget {
    /// Entity or record.
    pub kind: EditKind,
    /// Its id.
    pub id: i64,
}

impl EditTarget {
    /// The editing session of an entity definition.
    pub fn entity(id: i64) -> Self {
        EditTarget { kind: EditKind::Entity, id }
    }

    /// The editing session of a record.
    pub fn data(id: i64) -> Self {
        EditTarget { kind: EditKind::Data, id }
    }

    /// The presence topic of the session's editors: `entity_edit:<id>` or `data_edit:<id>` (as in PhoenixKit).
    pub fn presence_topic(&self) -> String {
        match self.kind {
            EditKind::Entity => format!("entity_edit:{}", self.id),
            EditKind::Data => format!("data_edit:{}", self.id),
        }
    }

    /// The topic the owner's drafts are published on: `entity_form:<id>` or `data_form:<id>`.
    pub fn form_topic(&self) -> String {
        match self.kind {
            EditKind::Entity => format!("entity_form:{}", self.id),
            EditKind::Data => format!("data_form:{}", self.id),
        }
    }

    /// The target whose presence topic is `topic`, if it is one.
    pub fn from_presence_topic(topic: &str) -> Option<Self> {
        let (kind, id) = topic.split_once(':')?;
        let kind = match kind {
            "entity_edit" => EditKind::Entity,
            "data_edit" => EditKind::Data,
            _ => return None,
        };
        let target = EditTarget { kind, id: id.parse().ok()? };
        // Only the canonical spelling: `data_edit:+7` or `data_edit:007` must not alias session 7.
        (target.presence_topic() == topic).then_some(target)
    }
}

impl fmt::Display for EditTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.presence_topic())
    }
}

/// A signed-in person who opened an edit form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Editor {
    /// The user's id (a string, so integer and UUID ids both fit).
    pub user_id: String,
    /// The name shown to other editors.
    pub name: String,
    /// Whether the user's role may edit this kind of content. Others watch but never hold the baton.
    pub can_edit: bool,
}
