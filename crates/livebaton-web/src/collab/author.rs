//! [`Author`]: who wrote a change, by id and by name.

use crate::channel::UserInfo;

/// Who wrote a change: the id identifies them (two people may share a name), the name is what others are shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// The user's id, as sockets carry it (a string).
    pub id: String,
    /// The user's display name.
    pub name: String,
}

impl Author {
    /// The user `id` named `name`.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Author { id: id.into(), name: name.into() }
    }
}

impl From<&UserInfo> for Author {
    fn from(user: &UserInfo) -> Self {
        Author::new(user.id(), user.name())
    }
}
