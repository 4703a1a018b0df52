//! The contract between [`super::PubSub`] and whatever carries messages between nodes (Phoenix's PubSub adapter).
//!
//! A backend does two things: forward a local broadcast to every *other* node, and hand messages arriving from other
//! nodes to this node's subscribers through the [`Inbound`] it was given. Local fan-out is never the backend's job.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Broadcast, Message, Registry};

/// Why a message could not be sent to other nodes.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend's outgoing queue is full (for example while the connection to Redis is down).
    #[error("outgoing queue to other nodes is full")]
    QueueFull,
    /// The backend is not connected and does not queue.
    #[error("not connected to other nodes: {0}")]
    Disconnected(String),
    /// A message could not be encoded or decoded.
    #[error("could not encode or decode a message for other nodes: {0}")]
    Codec(#[from] serde_json::Error),
    /// The message has no codec ([`Message::remote`]), so other nodes could not rebuild it.
    #[error("message `{0}` has no codec for other nodes: implement RemoteMessage, or send it with local_broadcast")]
    LocalOnly(String),
    /// Another node sent a message whose codec this node has not registered ([`super::PubSub::register`]).
    #[error("no codec `{0}` is registered on this node")]
    UnknownCodec(String),
}

/// Carries broadcasts between nodes.
pub trait PubSubBackend: Send + Sync + 'static {
    /// The unique name of this node; messages carry it so a node never delivers its own broadcast twice.
    fn node_name(&self) -> &str;

    /// Called once when the PubSub is built. Messages from other nodes go to `inbound`.
    fn attach(&self, inbound: Inbound);

    /// Sends `message` to every other node. Must not block: queue and return.
    ///
    /// # Errors
    /// [`BackendError`] when the message cannot be queued; the caller's local subscribers are served regardless.
    fn forward(&self, topic: &Arc<str>, message: &dyn Message) -> Result<(), BackendError>;
}

/// The single-node backend: there are no other nodes, so nothing is forwarded.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalBackend;

impl PubSubBackend for LocalBackend {
    fn node_name(&self) -> &str {
        "local"
    }

    fn attach(&self, _inbound: Inbound) {}

    fn forward(&self, _topic: &Arc<str>, _message: &dyn Message) -> Result<(), BackendError> {
        Ok(())
    }
}

/// What one node sends another: the message, its topic and who sent it. Encoded once per broadcast.
///
/// On the wire: `{"origin":"<node>","topic":"<topic>","codec":"<codec>","message":<remote form>}`, the message in the
/// form its [`Message::remote`] writes, decoded on the receiving node by the codec registered under its name
/// ([`super::PubSub::register`]).
#[derive(Debug)]
pub struct RemoteEnvelope {
    /// The sending node's name.
    pub origin: String,
    /// The topic it was published on.
    pub topic: String,
    /// The message, rebuilt as its type.
    pub message: Arc<dyn Message>,
}

/// An envelope's fields as they arrive, the message still undecoded.
#[derive(Deserialize)]
struct WireEnvelope<'a> {
    origin: String,
    topic: String,
    #[serde(borrow)]
    codec: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    message: &'a RawValue,
}

impl RemoteEnvelope {
    /// Encodes an envelope for the wire without copying the message.
    ///
    /// # Errors
    /// [`BackendError::LocalOnly`] for a message without a codec, [`BackendError::Codec`] if it cannot be serialised.
    pub fn encode(origin: &str, topic: &str, message: &dyn Message) -> Result<Bytes, BackendError> {
        let remote = message.remote().ok_or_else(|| BackendError::LocalOnly(message.event().to_owned()))?;
        let mut out = Vec::with_capacity(96 + topic.len());
        out.extend_from_slice(br#"{"origin":"#);
        serde_json::to_writer(&mut out, origin)?;
        out.extend_from_slice(br#","topic":"#);
        serde_json::to_writer(&mut out, topic)?;
        out.extend_from_slice(br#","codec":"#);
        serde_json::to_writer(&mut out, remote.codec())?;
        out.extend_from_slice(br#","message":"#);
        remote.write_remote(&mut out)?;
        out.push(b'}');
        Ok(Bytes::from(out))
    }
}

/// Where a backend delivers messages from other nodes. Holds the registry weakly so a backend never keeps a dropped
/// PubSub alive.
#[derive(Clone)]
pub struct Inbound {
    registry: Weak<Registry>,
    node_name: Arc<str>,
}

impl Inbound {
    pub(super) fn new(registry: &Arc<Registry>, node_name: &str) -> Self {
        Inbound { registry: Arc::downgrade(registry), node_name: Arc::from(node_name) }
    }

    /// Delivers a message from another node to this node's subscribers. Messages that this node sent itself are
    /// ignored, so a backend that echoes (as Redis pub/sub does) causes no duplicates. Returns the local subscriber count.
    pub fn deliver(&self, envelope: RemoteEnvelope) -> usize {
        if envelope.origin == *self.node_name {
            return 0;
        }
        match self.registry.upgrade() {
            Some(registry) => registry.deliver(Broadcast::new(Arc::from(envelope.topic), envelope.message, None)),
            None => 0,
        }
    }

    /// Decodes and delivers encoded envelope bytes. The message is decoded only when its topic has a local
    /// subscriber: every node reads every broadcast of the cluster, and most are not for it.
    ///
    /// # Errors
    /// [`BackendError::Codec`] if the bytes are not an envelope, [`BackendError::UnknownCodec`] if this node cannot
    /// decode its message; nothing is delivered.
    pub fn deliver_encoded(&self, bytes: &[u8]) -> Result<usize, BackendError> {
        let wire: WireEnvelope<'_> = serde_json::from_slice(bytes)?;
        let Some(registry) = self.registry.upgrade() else { return Ok(0) };
        if wire.origin == *self.node_name || registry.sender(&wire.topic).is_none() {
            return Ok(0);
        }
        let decode =
            registry.decoder(&wire.codec).ok_or_else(|| BackendError::UnknownCodec(wire.codec.into_owned()))?;
        let message = decode(wire.message.get())?;
        Ok(registry.deliver(Broadcast::new(Arc::from(wire.topic), message, None)))
    }

    /// Whether the PubSub this inbound feeds still exists.
    pub fn is_alive(&self) -> bool {
        self.registry.strong_count() > 0
    }
}
