//! The contract between [`super::PubSub`] and whatever carries messages between nodes (Phoenix's PubSub adapter).
//!
//! A backend does two things: forward a local broadcast to every *other* node, and hand messages arriving from other
//! nodes to this node's subscribers through the [`Inbound`] it was given. Local fan-out is never the backend's job.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

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
    fn forward(&self, topic: &Arc<str>, message: &Message) -> Result<(), BackendError>;
}

/// The single-node backend: there are no other nodes, so nothing is forwarded.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalBackend;

impl PubSubBackend for LocalBackend {
    fn node_name(&self) -> &str {
        "local"
    }

    fn attach(&self, _inbound: Inbound) {}

    fn forward(&self, _topic: &Arc<str>, _message: &Message) -> Result<(), BackendError> {
        Ok(())
    }
}

/// What one node sends another: the message, its topic and who sent it. Encoded once per broadcast.
#[derive(Debug, Serialize, Deserialize)]
pub struct RemoteEnvelope {
    /// The sending node's name.
    pub origin: String,
    /// The topic it was published on.
    pub topic: String,
    /// The message.
    pub message: Message,
}

impl RemoteEnvelope {
    /// Encodes an envelope for the wire without copying the message.
    ///
    /// # Errors
    /// [`BackendError::Codec`] if the message cannot be serialised.
    pub fn encode(origin: &str, topic: &str, message: &Message) -> Result<Bytes, BackendError> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            origin: &'a str,
            topic: &'a str,
            message: &'a Message,
        }
        Ok(Bytes::from(serde_json::to_vec(&Borrowed { origin, topic, message })?))
    }

    /// Decodes an envelope received from another node.
    ///
    /// # Errors
    /// [`BackendError::Codec`] if the bytes are not an envelope.
    pub fn decode(bytes: &[u8]) -> Result<Self, BackendError> {
        Ok(serde_json::from_slice(bytes)?)
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

    /// Decodes and delivers encoded envelope bytes.
    ///
    /// # Errors
    /// [`BackendError::Codec`] if the bytes are not an envelope; nothing is delivered.
    pub fn deliver_encoded(&self, bytes: &[u8]) -> Result<usize, BackendError> {
        Ok(self.deliver(RemoteEnvelope::decode(bytes)?))
    }

    /// Whether the PubSub this inbound feeds still exists.
    pub fn is_alive(&self) -> bool {
        self.registry.strong_count() > 0
    }
}
