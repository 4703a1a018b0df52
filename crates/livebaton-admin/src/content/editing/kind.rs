//! What the admin edits collaboratively, in its own words: entity definitions and records, by id. This is the one
//! place that turns them into the engine's [`EditTarget`], so a change of the engine's target type is made here.

use livebaton::editing::EditTarget;

use livebaton_web::collab::Author;

use crate::accounts::Role;
use crate::storage::User;

/// A kind of row with collaborative forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// Entity definitions: admins may edit them.
    Entity,
    /// Records of an entity: editors and admins may edit them.
    Record,
}

impl ContentKind {
    /// The engine's name for this kind: `entity` and `data` (so sessions keep PhoenixKit's topics,
    /// `entity_edit:<id>` and `data_edit:<id>`, and kept drafts their rows).
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Entity => "entity",
            ContentKind::Record => "data",
        }
    }

    /// The kind named `name` ([`ContentKind::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [ContentKind::Entity, ContentKind::Record].into_iter().find(|kind| kind.name() == name)
    }

    /// The editing session of the row `id` of this kind.
    pub fn target(self, id: i64) -> EditTarget {
        // Lowercase kinds and integer ids are always valid targets.
        EditTarget::new(self.name(), id).expect("an admin kind and an integer id make a valid target")
    }

    /// The kind and row id of an admin editing session, if `target` is one.
    pub fn of(target: &EditTarget) -> Option<(Self, i64)> {
        Some((Self::from_name(target.kind())?, target.id().parse().ok()?))
    }

    /// The prefix of the `edit:*` channel topics of this kind, before the row's id (docs/protocol.md §5.4).
    pub fn channel_prefix(self) -> &'static str {
        match self {
            ContentKind::Entity => "edit:entity:",
            ContentKind::Record => "edit:data:",
        }
    }

    /// Which roles may hold the baton on this kind.
    pub fn permits(self) -> fn(&Role) -> bool {
        match self {
            ContentKind::Entity => Role::can_manage_entities,
            ContentKind::Record => Role::can_edit_records,
        }
    }
}

/// The editing session of entity definition `id`.
pub fn entity_target(id: i64) -> EditTarget {
    ContentKind::Entity.target(id)
}

/// The editing session of record `id`.
pub fn record_target(id: i64) -> EditTarget {
    ContentKind::Record.target(id)
}

impl From<&User> for Author {
    fn from(user: &User) -> Self {
        Author::new(user.id.to_string(), user.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use livebaton_web::channel::UserInfo;

    use super::*;

    /// Both kinds map to their own engine session and channel topic, and a user's id is the same string whether it
    /// comes from a socket or from the store.
    #[test]
    fn kinds_name_their_sessions_and_authors_their_ids() {
        assert_eq!(record_target(7).presence_topic(), "data_edit:7");
        assert_eq!(entity_target(7).presence_topic(), "entity_edit:7");
        assert_eq!(ContentKind::Record.channel_prefix(), "edit:data:");
        assert!(ContentKind::Record.permits()(&Role::Editor));
        assert!(!ContentKind::Entity.permits()(&Role::Editor));
        let socket = UserInfo::new("12", "Alice", "alice@example.com", "editor");
        assert_eq!(Author::from(&socket), Author::new("12", "Alice"));
    }
}
