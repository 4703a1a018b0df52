//! What travels through PubSub: a typed [`Message`] wrapped in a [`Broadcast`] that caches its wire encoding.
//!
//! A broadcast is shared (`Arc`) by every subscriber of its topic. The first consumer that needs bytes (a socket
//! writing a Phoenix frame) encodes it through [`Broadcast::encoded`]; every later consumer gets the same bytes. That is
//! Phoenix's "fastlane": a message is serialised at most once per topic, never once per subscriber.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::editing::{DraftChanged, OwnerChanged};
use crate::events::ResourceEvent;
use crate::presence::PresenceDiff;

/// Identifies one subscriber so `broadcast_from` can skip it. Cheap to copy; unique within one [`super::PubSub`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscriberId(pub(crate) u64);

/// Every message the engine publishes, plus an escape hatch for applications.
///
/// One enum rather than a generic parameter keeps every subscriber able to receive every kind of message on the topics
/// it joins (a live page hears presence diffs, drafts and content events on one socket), and keeps the Redis backend
/// able to carry all of them with one serde format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum Message {
    /// Phoenix `presence_diff`: who joined and who left a presence topic.
    PresenceDiff(Arc<PresenceDiff>),
    /// An application's resource was created, updated or deleted (sent after commit; see [`crate::events`]).
    Content(Arc<ResourceEvent>),
    /// The owner of an editing session changed its unsaved draft.
    Draft(Arc<DraftChanged>),
    /// The owner of an editing session changed (first owner, promotion, or a hand-over between tabs).
    OwnerChanged(Arc<OwnerChanged>),
    /// An application-defined event, delivered as `event` with a JSON `payload`.
    App {
        /// Event name as a Phoenix client sees it.
        name: String,
        /// Any JSON value.
        body: serde_json::Value,
    },
}

impl Message {
    /// The Phoenix event name a client sees for this message.
    pub fn event_name(&self) -> &str {
        match self {
            Message::PresenceDiff(_) => "presence_diff",
            Message::Content(event) => event.name(),
            Message::Draft(_) => "draft",
            Message::OwnerChanged(_) => "owner_changed",
            Message::App { name, .. } => name,
        }
    }

    /// The payload a client sees, serialisable without building a `serde_json::Value` first (which would re-sort
    /// object keys: presence keys keep join order this way).
    pub fn payload(&self) -> Payload<'_> {
        Payload(self)
    }

    /// The JSON payload a client sees for this message.
    pub fn payload_json(&self) -> serde_json::Value {
        let value = match self {
            Message::PresenceDiff(diff) => serde_json::to_value(diff),
            Message::Content(event) => serde_json::to_value(event.payload()),
            Message::Draft(draft) => serde_json::to_value(draft),
            Message::OwnerChanged(change) => serde_json::to_value(change),
            Message::App { body, .. } => return body.clone(),
        };
        // These types serialise maps with string keys only, which cannot fail.
        value.unwrap_or(serde_json::Value::Null)
    }
}

/// One message published on one topic, shared by all of the topic's subscribers.
#[derive(Debug)]
pub struct Broadcast {
    /// The topic it was published on.
    pub topic: Arc<str>,
    /// The message itself.
    pub message: Message,
    /// The subscriber that sent it with `broadcast_from`; it does not receive its own message.
    pub(crate) from: Option<SubscriberId>,
    /// The wire encoding, filled once by the first consumer that needs bytes. A `OnceLock` because subscribers on
    /// several threads may ask at once and exactly one of them must do the work.
    encoded: OnceLock<Bytes>,
}

impl Broadcast {
    pub(crate) fn new(topic: Arc<str>, message: Message, from: Option<SubscriberId>) -> Self {
        Broadcast { topic, message, from, encoded: OnceLock::new() }
    }

    /// The encoded form of this broadcast, computed by `encode` on first use and shared afterwards.
    ///
    /// All consumers of one broadcast must use the same encoding (the transport's frame format); the first one wins.
    pub fn encoded(&self, encode: impl FnOnce(&Broadcast) -> Bytes) -> Bytes {
        self.encoded.get_or_init(|| encode(self)).clone()
    }
}

/// A message's client-facing payload, serialised in place. See [`Message::payload`].
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a>(&'a Message);

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Message::PresenceDiff(diff) => diff.serialize(serializer),
            Message::Content(event) => event.payload().serialize(serializer),
            Message::Draft(draft) => draft.serialize(serializer),
            Message::OwnerChanged(change) => change.serialize(serializer),
            Message::App { body, .. } => body.serialize(serializer),
        }
    }
}
