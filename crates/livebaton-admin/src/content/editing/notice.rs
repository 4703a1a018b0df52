//! What the admin tells the editors of a row on its form topic after a write: `saved`, `deleted`, `restored`. The
//! `edit:*` channel forwards them to its clients as they are (docs/protocol.md §5.4); the live forms read them back.
//!
//! [`FormNotice`]'s `From`/`TryFrom` impls are the only place that knows how a notice travels through PubSub.

use livebaton::pubsub::Message;
use serde::{Deserialize, Serialize};

use super::Author;

/// `saved`: someone saved the row (from a form, an `edit:*` channel, or the JSON API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedNotice {
    /// The row's version after the save.
    pub lock_version: i64,
    /// The saver's display name.
    pub by: String,
    /// The saver's user id: what tells users apart (two may share a name). Empty in a notice from a node that
    /// predates it.
    #[serde(default)]
    pub by_id: String,
    /// Fields saved with the row's value rather than the draft's (sorted names; empty for the JSON API).
    pub merged: Vec<String>,
}

impl SavedNotice {
    /// `by` saved the row at `lock_version`, taking the `merged` fields from the row.
    pub fn new(lock_version: i64, by: &Author, merged: Vec<String>) -> Self {
        SavedNotice { lock_version, by: by.name.clone(), by_id: by.id.clone(), merged }
    }
}

/// `deleted`: the row is gone.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeletedNotice {
    /// For a record: whether it went to the trash (it can be restored) or was removed for good. An entity has no
    /// trash and says nothing (`{}` on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash: Option<bool>,
}

/// `restored`: the record came back from the trash, at the version it had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredNotice {
    /// Its version (unchanged by the trash).
    pub lock_version: i64,
}

/// A notice on a row's form topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormNotice {
    /// See [`SavedNotice`].
    Saved(SavedNotice),
    /// See [`DeletedNotice`].
    Deleted(DeletedNotice),
    /// See [`RestoredNotice`].
    Restored(RestoredNotice),
}

const SAVED: &str = "saved";
const DELETED: &str = "deleted";
const RESTORED: &str = "restored";

impl From<FormNotice> for Message {
    fn from(notice: FormNotice) -> Self {
        let (name, body) = match notice {
            FormNotice::Saved(saved) => (SAVED, serde_json::to_value(saved)),
            FormNotice::Deleted(deleted) => (DELETED, serde_json::to_value(deleted)),
            FormNotice::Restored(restored) => (RESTORED, serde_json::to_value(restored)),
        };
        // Plain structs of strings and numbers always serialise.
        Message::App { name: name.to_owned(), body: body.expect("a form notice serialises") }
    }
}

/// A message that is not a form notice (or one whose body does not read as one).
#[derive(Debug, PartialEq, Eq)]
pub struct NotANotice;

impl TryFrom<&Message> for FormNotice {
    type Error = NotANotice;

    fn try_from(message: &Message) -> Result<Self, NotANotice> {
        let Message::App { name, body } = message else { return Err(NotANotice) };
        let read = |body: &serde_json::Value| match name.as_str() {
            SAVED => serde::Deserialize::deserialize(body).map(FormNotice::Saved),
            DELETED => serde::Deserialize::deserialize(body).map(FormNotice::Deleted),
            RESTORED => serde::Deserialize::deserialize(body).map(FormNotice::Restored),
            _ => Err(serde::de::Error::custom("not a form notice")),
        };
        read(body).map_err(|_: serde_json::Error| NotANotice)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each notice goes out as the event and payload docs/protocol.md §5.4 shows, and reads back as itself.
    #[test]
    fn notices_keep_their_wire_shape_and_read_back() {
        let bob = Author::new("2", "Bob");
        let saved = FormNotice::Saved(SavedNotice::new(4, &bob, vec!["data.summary".into()]));
        let message = Message::from(saved.clone());
        assert_eq!(message.event_name(), "saved");
        assert_eq!(
            message.payload_json(),
            json!({"lock_version": 4, "by": "Bob", "by_id": "2", "merged": ["data.summary"]})
        );
        assert_eq!(FormNotice::try_from(&message), Ok(saved));

        let trashed = FormNotice::Deleted(DeletedNotice { trash: Some(true) });
        assert_eq!(Message::from(trashed.clone()).payload_json(), json!({"trash": true}));
        let entity = FormNotice::Deleted(DeletedNotice::default());
        assert_eq!(Message::from(entity.clone()).payload_json(), json!({}));
        assert_eq!(FormNotice::try_from(&Message::from(entity.clone())), Ok(entity));

        let restored = FormNotice::Restored(RestoredNotice { lock_version: 3 });
        assert_eq!(Message::from(restored.clone()).event_name(), "restored");
        assert_eq!(FormNotice::try_from(&Message::from(restored.clone())), Ok(restored));
    }

    /// A `saved` from a node without `by_id` still reads (with an empty id); other messages are not notices.
    #[test]
    fn old_and_foreign_messages() {
        let old = Message::App { name: "saved".into(), body: json!({"lock_version": 2, "by": "Ann", "merged": []}) };
        let Ok(FormNotice::Saved(saved)) = FormNotice::try_from(&old) else { panic!("an old saved notice reads") };
        assert_eq!((saved.by.as_str(), saved.by_id.as_str()), ("Ann", ""));
        let other = Message::App { name: "shout".into(), body: json!({}) };
        assert_eq!(FormNotice::try_from(&other), Err(NotANotice));
        let broken = Message::App { name: "saved".into(), body: json!({"by": 1}) };
        assert_eq!(FormNotice::try_from(&broken), Err(NotANotice));
    }
}
