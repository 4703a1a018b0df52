//! What the editors of a row are told on its form topic after a write: `saved`, `deleted`, `restored`. A collaborative
//! form reads them back; the admin's `edit:*` channel forwards them to its clients as they are (docs/protocol.md §5.4).
//!
//! [`FormNotice`] is a PubSub message of its own (a [`RemoteMessage`], so it reaches the forms of every node):
//! clients see the notice's struct as the payload of its event; readers take it back with
//! `broadcast.downcast::<FormNotice>()`.

use livebaton::pubsub::{Message, PubSub, Remote, RemoteMessage};
use serde::{Deserialize, Serialize};

use super::Author;

/// `saved`: someone saved the row (from a form, an `edit:*` channel, or the JSON API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedNotice {
    /// The row's version after the save.
    pub lock_version: i64,
    /// The saver's display name.
    pub by: String,
    /// The saver's user id: what tells users apart (two may share a name).
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

/// A notice on a row's form topic. Between nodes: `{"event": "saved", "payload": {…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum FormNotice {
    /// See [`SavedNotice`].
    Saved(SavedNotice),
    /// See [`DeletedNotice`].
    Deleted(DeletedNotice),
    /// See [`RestoredNotice`].
    Restored(RestoredNotice),
}

impl Message for FormNotice {
    fn event(&self) -> &str {
        match self {
            FormNotice::Saved(_) => "saved",
            FormNotice::Deleted(_) => "deleted",
            FormNotice::Restored(_) => "restored",
        }
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            FormNotice::Saved(saved) => serde_json::to_writer(out, saved),
            FormNotice::Deleted(deleted) => serde_json::to_writer(out, deleted),
            FormNotice::Restored(restored) => serde_json::to_writer(out, restored),
        }
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for FormNotice {
    const CODEC: &'static str = "livebaton.form_notice";
}

impl FormNotice {
    /// Lets `pubsub` rebuild the notices other nodes send: every node that serves collaborative forms does this (a
    /// [`super::SessionMember`] does when it joins), or a form on this node never hears of a save made on another.
    pub fn register(pubsub: &PubSub) {
        pubsub.register::<FormNotice>();
    }
}

#[cfg(test)]
mod tests {
    use livebaton::pubsub::LocalCluster;
    use serde_json::json;

    use super::*;

    fn heard(notice: &FormNotice) -> (String, serde_json::Value) {
        let pubsub = PubSub::default();
        let mut form = pubsub.subscribe("data_form:1");
        pubsub.broadcast("data_form:1", notice.clone()).unwrap();
        let broadcast = form.try_recv().unwrap().unwrap();
        assert_eq!(broadcast.downcast::<FormNotice>(), Some(notice), "reads back as itself");
        (broadcast.event().to_owned(), broadcast.payload_json())
    }

    /// Each notice goes out as the event and payload docs/protocol.md §5.4 shows, and reads back as itself.
    #[test]
    fn notices_keep_their_wire_shape_and_read_back() {
        let bob = Author::new("2", "Bob");
        let saved = FormNotice::Saved(SavedNotice::new(4, &bob, vec!["data.summary".into()]));
        assert_eq!(
            heard(&saved),
            ("saved".into(), json!({"lock_version": 4, "by": "Bob", "by_id": "2", "merged": ["data.summary"]}))
        );
        let trashed = FormNotice::Deleted(DeletedNotice { trash: Some(true) });
        assert_eq!(heard(&trashed), ("deleted".into(), json!({"trash": true})));
        assert_eq!(heard(&FormNotice::Deleted(DeletedNotice::default())), ("deleted".into(), json!({})));
        let restored = FormNotice::Restored(RestoredNotice { lock_version: 3 });
        assert_eq!(heard(&restored), ("restored".into(), json!({"lock_version": 3})));
    }

    /// Between nodes a notice travels in its own form and is rebuilt as the same notice on a node that registered
    /// it (every content service does); a node that did not would drop it.
    #[test]
    fn a_notice_crosses_nodes_as_itself() {
        let cluster = LocalCluster::new();
        let saver = PubSub::with_backend(Default::default(), cluster.node("saver"));
        let watcher = PubSub::with_backend(Default::default(), cluster.node("watcher"));
        let mut form = watcher.subscribe("data_form:1");
        let saved = FormNotice::Saved(SavedNotice::new(4, &Author::new("2", "Bob"), vec![]));
        saver.broadcast("data_form:1", saved.clone()).unwrap();
        assert!(form.try_recv().unwrap().is_none(), "unregistered: dropped on arrival");
        FormNotice::register(&watcher);
        saver.broadcast("data_form:1", saved.clone()).unwrap();
        let heard = form.try_recv().unwrap().expect("registered: delivered");
        assert_eq!(heard.downcast::<FormNotice>(), Some(&saved));
    }
}
