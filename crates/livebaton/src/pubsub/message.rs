//! What travels through PubSub: any typed [`Message`], wrapped in a [`Broadcast`] that caches its wire encoding.
//!
//! PubSub knows nothing of the messages it carries (as phoenix_pubsub carries any term): presence diffs, editing
//! drafts, resource events and an application's own types are all ordinary implementations of [`Message`]. A
//! subscriber that wants the typed value asks for it with [`Broadcast::downcast`]; a transport that only forwards to
//! clients writes the [`Message::event`] and [`Message::write_payload`] it was given, without knowing the type.
//!
//! A broadcast is shared (`Arc`) by every subscriber of its topic. The first consumer that needs bytes (a socket
//! writing a Phoenix frame) encodes it through [`Broadcast::encoded`]; every later consumer gets the same bytes. That is
//! Phoenix's "fastlane": a message is serialised at most once per topic, never once per subscriber.
//!
//! Messages cross nodes through a [`super::PubSubBackend`] in their remote form: a [`RemoteMessage`] names its codec
//! and serialises itself; every node registers the codecs it can decode ([`super::PubSub::register`]), so the
//! receiving node rebuilds the same typed value.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Identifies one subscriber so `broadcast_from` can skip it. Cheap to copy; unique within one [`super::PubSub`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscriberId(pub(crate) u64);

/// Something published on a topic: the application's own type or one of the engine's (presence diffs, drafts,
/// resource events, [`JsonMessage`]).
///
/// Clients see it as a Phoenix event named [`Message::event`] with the JSON payload [`Message::write_payload`]
/// writes. A message that should reach other nodes also implements [`RemoteMessage`] (a codec name and its serde
/// form) and returns itself from [`Message::remote`]:
///
/// ```
/// use livebaton::pubsub::{Message, Remote, RemoteMessage};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize)]
/// struct InvoicePaid { invoice_id: String, cents: u64 }
///
/// impl Message for InvoicePaid {
///     fn event(&self) -> &str { "invoice_paid" }
///     fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> { serde_json::to_writer(out, self) }
///     fn remote(&self) -> Option<&dyn Remote> { Some(self) }
/// }
///
/// impl RemoteMessage for InvoicePaid {
///     const CODEC: &'static str = "billing.invoice_paid";
/// }
/// ```
pub trait Message: Any + Send + Sync + fmt::Debug {
    /// The Phoenix event name a client sees.
    fn event(&self) -> &str;

    /// Appends the JSON payload a client sees to `out`. Written in place, never through a `serde_json::Value` (which
    /// would re-sort object keys: presence keys keep their join order this way).
    ///
    /// # Errors
    /// When the payload cannot be serialised (a map with non-string keys); the message is then not sent to clients.
    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;

    /// How other nodes receive it: `Some(self)` for a [`RemoteMessage`]; `None`, the default, for a message that
    /// stays on this node, which [`super::PubSub::broadcast`] refuses (send it with
    /// [`super::PubSub::local_broadcast`]).
    fn remote(&self) -> Option<&dyn Remote> {
        None
    }
}

/// A [`Message`] that other nodes can rebuild: it travels as its serde form, under its codec name, and every node
/// registers it with [`super::PubSub::register`].
pub trait RemoteMessage: Message + Serialize + DeserializeOwned {
    /// The name the message travels under, unique among the types of one cluster (e.g. `billing.invoice_paid`).
    const CODEC: &'static str;
}

/// The remote form of a message, as a backend sends it: what [`Message::remote`] returns. Every [`RemoteMessage`] is
/// one.
pub trait Remote {
    /// The name other nodes decode it by.
    fn codec(&self) -> &'static str;

    /// Appends the form other nodes decode to `out`.
    ///
    /// # Errors
    /// When it cannot be serialised.
    fn write_remote(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

impl<T: RemoteMessage> Remote for T {
    fn codec(&self) -> &'static str {
        T::CODEC
    }

    fn write_remote(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// A message whose event name and JSON payload are chosen at run time: what an application sends when it has no
/// type of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// The event name a client sees.
    pub event: String,
    /// The payload a client sees.
    pub payload: serde_json::Value,
}

impl JsonMessage {
    /// A message `event` with `payload`.
    pub fn new(event: impl Into<String>, payload: serde_json::Value) -> Self {
        JsonMessage { event: event.into(), payload }
    }
}

impl Message for JsonMessage {
    fn event(&self) -> &str {
        &self.event
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self.payload)
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for JsonMessage {
    const CODEC: &'static str = "livebaton.json";
}

/// One message published on one topic, shared by all of the topic's subscribers.
pub struct Broadcast {
    /// The topic it was published on.
    pub topic: Arc<str>,
    /// The message. An `Arc`, so one message published on several topics (a resource event on its resource's and its
    /// scope's topic) is shared, not copied.
    message: Arc<dyn Message>,
    /// The subscriber that sent it with `broadcast_from`; it does not receive its own message.
    pub(crate) from: Option<SubscriberId>,
    /// The wire encoding, filled once by the first consumer that needs bytes. A `OnceLock` because subscribers on
    /// several threads may ask at once and exactly one of them must do the work.
    encoded: OnceLock<Bytes>,
}

impl Broadcast {
    pub(crate) fn new(topic: Arc<str>, message: Arc<dyn Message>, from: Option<SubscriberId>) -> Self {
        Broadcast { topic, message, from, encoded: OnceLock::new() }
    }

    /// The message, untyped: what a transport needs to forward it.
    pub fn message(&self) -> &dyn Message {
        &*self.message
    }

    /// The message as a `T`, if it is one.
    pub fn downcast<T: Message>(&self) -> Option<&T> {
        (&*self.message as &dyn Any).downcast_ref()
    }

    /// The Phoenix event name a client sees.
    pub fn event(&self) -> &str {
        self.message.event()
    }

    /// The payload a client sees, serialisable in place (see [`Message::write_payload`]).
    pub fn payload(&self) -> Payload<'_> {
        Payload(&*self.message)
    }

    /// The payload a client sees as a JSON value (`null` if it cannot be serialised). For tests and views that read a
    /// field or two; a transport writes [`Broadcast::payload`] instead.
    pub fn payload_json(&self) -> serde_json::Value {
        let mut out = Vec::new();
        match self.message.write_payload(&mut out) {
            Ok(()) => serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// The encoded form of this broadcast, computed by `encode` on first use and shared afterwards.
    ///
    /// All consumers of one broadcast must use the same encoding (the transport's frame format); the first one wins.
    pub fn encoded(&self, encode: impl FnOnce(&Broadcast) -> Bytes) -> Bytes {
        self.encoded.get_or_init(|| encode(self)).clone()
    }
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("topic", &self.topic)
            .field("message", &self.message)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// A message's client-facing payload, serialised in place. See [`Broadcast::payload`].
#[derive(Clone, Copy)]
pub struct Payload<'a>(&'a dyn Message);

impl Payload<'_> {
    /// Appends the payload's JSON to `out`.
    ///
    /// # Errors
    /// As [`Message::write_payload`].
    pub fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        self.0.write_payload(out)
    }
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Payload").field(&self.0).finish()
    }
}

impl Serialize for Payload<'_> {
    /// Through a buffer: a serializer other than serde_json's cannot be handed to [`Message::write_payload`]. The
    /// fastlane writes frames with [`Payload::write`] and does not come here.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(128);
        self.0.write_payload(&mut out).map_err(serde::ser::Error::custom)?;
        let text = String::from_utf8(out).map_err(serde::ser::Error::custom)?;
        serde_json::value::RawValue::from_string(text).map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

/// Decodes one codec's remote form ([`Remote::write_remote`]) into the typed message.
pub(crate) type Decoder = fn(&str) -> serde_json::Result<Arc<dyn Message>>;

/// The [`Decoder`] of `T`.
pub(crate) fn decoder<T: RemoteMessage>() -> Decoder {
    |json| Ok(Arc::new(serde_json::from_str::<T>(json)?) as Arc<dyn Message>)
}
