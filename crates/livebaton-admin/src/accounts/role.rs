//! Roles and what each may do.

use serde::{Deserialize, Serialize};

/// What a user may do. Ordered: each role may do everything the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads content and watches edit forms; never edits.
    Viewer,
    /// Also creates, edits and deletes records.
    Editor,
    /// Also manages entities (content types) and users.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// May create, edit and delete records (and hold the baton in a record form).
    pub fn can_edit_records(&self) -> bool {
        *self >= Role::Editor
    }

    /// May create, edit and delete entity definitions (and hold the baton in an entity form), and manage users.
    pub fn can_manage_entities(&self) -> bool {
        *self >= Role::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
