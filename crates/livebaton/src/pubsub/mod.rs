//! Topic publish/subscribe, local fan-out plus a pluggable backend that carries messages to other nodes.
//!
//! The shape follows Phoenix.PubSub: local delivery is always this module's job, and a small [`PubSubBackend`]
//! (Phoenix's adapter) only forwards to other nodes and hands their messages back through an [`Inbound`].
//!
//! Each topic has one bounded ring buffer (a `tokio::sync::broadcast` channel) shared by all of its subscribers: a
//! publish stores one `Arc<Broadcast>` and never waits. A subscriber that falls more than the ring's capacity behind is
//! told how many messages it missed ([`RecvError::Lagged`]) and continues from the oldest kept one; it can then resync
//! (a presence subscriber re-reads the list). Memory per topic is bounded by the capacity, whatever the subscribers do.

mod backend;
mod cluster;
mod message;
pub(crate) mod redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use tokio::sync::broadcast;

use message::{Decoder, decoder};

pub use self::redis::{RedisBackend, RedisBackendError, RedisConfig, RedisStats, RedisStatus};
pub use backend::{BackendError, Inbound, LocalBackend, PubSubBackend, RemoteEnvelope};
pub use cluster::LocalCluster;
pub use message::{Broadcast, JsonMessage, Message, Payload, Remote, RemoteMessage, SubscriberId};

/// Settings for a [`PubSub`].
#[derive(Clone, Debug)]
pub struct PubSubConfig {
    /// Messages kept per topic for subscribers that are behind. A subscriber further behind lags (and is told so).
    pub topic_capacity: usize,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        PubSubConfig { topic_capacity: 128 }
    }
}

/// Errors a publisher can see.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// Local subscribers got the message but other nodes may not have.
    #[error("message delivered locally but not forwarded to other nodes: {0}")]
    Forward(#[from] BackendError),
    /// The message has no codec ([`Message::remote`]), so it could not reach other nodes; it was not sent at all.
    /// Implement [`RemoteMessage`] for it, or send it with [`PubSub::local_broadcast`].
    #[error("message `{0}` has no codec for other nodes: implement RemoteMessage, or send it with local_broadcast")]
    LocalOnly(String),
}

/// Errors a subscriber can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind and this many messages were dropped for it. Later messages still arrive.
    #[error("subscriber lagged behind and missed {0} messages")]
    Lagged(u64),
    /// The topic was closed (the PubSub is gone).
    #[error("pubsub closed")]
    Closed,
}

/// A handle to the PubSub. Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct PubSub {
    registry: Arc<Registry>,
    backend: Arc<dyn PubSubBackend>,
}

/// The local subscriber table, shared by the [`PubSub`] handles, their subscriptions and the backend's [`Inbound`].
pub(crate) struct Registry {
    /// Topic → the topic's ring buffer. A std `RwLock`: publishers take the read side and only clone the sender out,
    /// so nothing waits or awaits while it is held; subscribe and the last unsubscribe take the write side briefly.
    topics: RwLock<HashMap<Arc<str>, broadcast::Sender<Arc<Broadcast>>>>,
    /// Source of subscriber ids; relaxed is enough, ids only need to be unique.
    next_subscriber: AtomicU64,
    /// Codec name → how to rebuild a message another node sent ([`PubSub::register`]). A std `RwLock`: written when
    /// a part of the application registers its types (at start-up), read once per message from another node.
    codecs: RwLock<HashMap<&'static str, Decoder>>,
    config: PubSubConfig,
}

impl Registry {
    pub(crate) fn sender(&self, topic: &str) -> Option<broadcast::Sender<Arc<Broadcast>>> {
        let topics = self.topics.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        topics.get(topic).cloned()
    }

    pub(crate) fn decoder(&self, codec: &str) -> Option<Decoder> {
        self.codecs.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(codec).copied()
    }

    /// Delivers to local subscribers only; returns how many subscribers the topic had.
    pub(crate) fn deliver(&self, broadcast: Broadcast) -> usize {
        match self.sender(&broadcast.topic) {
            // `send` fails only when every receiver is gone at this instant: nobody to deliver to.
            Some(sender) => sender.send(Arc::new(broadcast)).unwrap_or(0),
            None => 0,
        }
    }
}

impl Default for PubSub {
    fn default() -> Self {
        Self::new(PubSubConfig::default())
    }
}

impl PubSub {
    /// A single-node PubSub.
    pub fn new(config: PubSubConfig) -> Self {
        Self::with_backend(config, Arc::new(LocalBackend))
    }

    /// A PubSub that forwards broadcasts to other nodes through `backend` and delivers theirs locally.
    pub fn with_backend(config: PubSubConfig, backend: Arc<dyn PubSubBackend>) -> Self {
        let registry = Arc::new(Registry {
            topics: RwLock::new(HashMap::new()),
            next_subscriber: AtomicU64::new(1),
            codecs: RwLock::new(HashMap::new()),
            config,
        });
        let pubsub = PubSub { registry, backend };
        pubsub.register::<JsonMessage>();
        pubsub.backend.attach(Inbound::new(&pubsub.registry, pubsub.backend.node_name()));
        pubsub
    }

    /// Lets this node rebuild `T` when other nodes broadcast it. Every node registers the same types (the engine's
    /// parts register their own when they are built); registering a type again is harmless. A message whose codec
    /// is not registered is dropped on arrival and logged by the backend.
    pub fn register<T: RemoteMessage>(&self) {
        let mut codecs = self.registry.codecs.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        codecs.insert(T::CODEC, decoder::<T>());
    }

    /// This node's name, as the backend knows it.
    pub fn node_name(&self) -> &str {
        self.backend.node_name()
    }

    /// A fresh subscriber id, for a task that wants several subscriptions to share one identity with
    /// [`PubSub::subscribe_as`] (so `broadcast_from` skips all of them).
    pub fn new_subscriber_id(&self) -> SubscriberId {
        SubscriberId(self.registry.next_subscriber.fetch_add(1, Ordering::Relaxed))
    }

    /// Subscribes to `topic` with a new subscriber id. Dropping the subscription unsubscribes.
    pub fn subscribe(&self, topic: &str) -> Subscription {
        self.subscribe_as(self.new_subscriber_id(), topic)
    }

    /// Subscribes to `topic` as `id`. Dropping the subscription unsubscribes.
    pub fn subscribe_as(&self, id: SubscriberId, topic: &str) -> Subscription {
        let mut topics = self.registry.topics.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let receiver = match topics.get(topic) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(self.registry.config.topic_capacity.max(1));
                topics.insert(Arc::from(topic), sender);
                receiver
            }
        };
        let topic = topics.get_key_value(topic).map(|(key, _)| key.clone()).unwrap_or_else(|| Arc::from(topic));
        Subscription { id, topic, receiver: Some(receiver), registry: Arc::downgrade(&self.registry) }
    }

    /// Ends a subscription now (the same as dropping it).
    pub fn unsubscribe(&self, subscription: Subscription) {
        drop(subscription);
    }

    /// The settings this PubSub was built with.
    pub fn config(&self) -> &PubSubConfig {
        &self.registry.config
    }

    /// Number of topics with at least one local subscriber (a topic's buffer is freed with its last subscriber).
    pub fn topic_count(&self) -> usize {
        self.registry.topics.read().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Number of local subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.registry.sender(topic).map_or(0, |sender| sender.receiver_count())
    }

    /// Publishes to every subscriber of `topic` on every node. Returns the number of local subscribers.
    ///
    /// # Errors
    /// [`PubSubError::LocalOnly`] for a message without a codec (nothing is sent); [`PubSubError::Forward`] when the
    /// backend could not queue the message for other nodes (local subscribers have received it regardless).
    pub fn broadcast(&self, topic: &str, message: impl Message) -> Result<usize, PubSubError> {
        self.publish(topic, Arc::new(message), None)
    }

    /// Like [`PubSub::broadcast`] but the local subscriber `from` does not receive it (other nodes deliver to all).
    ///
    /// # Errors
    /// As [`PubSub::broadcast`].
    pub fn broadcast_from(&self, from: SubscriberId, topic: &str, message: impl Message) -> Result<usize, PubSubError> {
        self.publish(topic, Arc::new(message), Some(from))
    }

    /// [`PubSub::broadcast`] of a message shared with other topics (published on each without a copy).
    ///
    /// # Errors
    /// As [`PubSub::broadcast`].
    pub fn broadcast_shared(&self, topic: &str, message: Arc<dyn Message>) -> Result<usize, PubSubError> {
        self.publish(topic, message, None)
    }

    /// Publishes to the subscribers of `topic` on this node only (any message, with a codec or not).
    pub fn local_broadcast(&self, topic: &str, message: impl Message) -> usize {
        self.registry.deliver(Broadcast::new(Arc::from(topic), Arc::new(message), None))
    }

    /// Like [`PubSub::local_broadcast`] but skipping the subscriber `from`.
    pub fn local_broadcast_from(&self, from: SubscriberId, topic: &str, message: impl Message) -> usize {
        self.registry.deliver(Broadcast::new(Arc::from(topic), Arc::new(message), Some(from)))
    }

    fn publish(
        &self,
        topic: &str,
        message: Arc<dyn Message>,
        from: Option<SubscriberId>,
    ) -> Result<usize, PubSubError> {
        if message.remote().is_none() {
            return Err(PubSubError::LocalOnly(message.event().to_owned()));
        }
        let topic: Arc<str> = Arc::from(topic);
        let forwarded = self.backend.forward(&topic, &*message);
        let delivered = self.registry.deliver(Broadcast::new(topic, message, from));
        forwarded?;
        Ok(delivered)
    }
}

/// One subscriber's place in one topic. Dropping it unsubscribes; the topic's buffer is freed with its last subscriber.
pub struct Subscription {
    id: SubscriberId,
    topic: Arc<str>,
    /// `Option` only so `Drop` can release the receiver before checking whether it was the topic's last one.
    receiver: Option<broadcast::Receiver<Arc<Broadcast>>>,
    /// Weak, so subscriptions do not keep a dropped PubSub alive: once every handle is gone the topics' senders drop
    /// and subscribers get [`RecvError::Closed`].
    registry: Weak<Registry>,
}

impl Subscription {
    /// This subscriber's id, for `broadcast_from`.
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Waits for the next message, skipping this subscriber's own `broadcast_from` messages.
    ///
    /// # Errors
    /// [`RecvError::Lagged`] when messages were dropped because this subscriber fell behind (the next call continues
    /// with the oldest message still kept); [`RecvError::Closed`] when the topic is gone.
    pub async fn recv(&mut self) -> Result<Arc<Broadcast>, RecvError> {
        let Some(receiver) = self.receiver.as_mut() else { return Err(RecvError::Closed) };
        loop {
            match receiver.recv().await {
                Ok(broadcast) if broadcast.from == Some(self.id) => continue,
                Ok(broadcast) => return Ok(broadcast),
                Err(broadcast::error::RecvError::Lagged(missed)) => return Err(RecvError::Lagged(missed)),
                Err(broadcast::error::RecvError::Closed) => return Err(RecvError::Closed),
            }
        }
    }

    /// The next message if one is waiting, without waiting.
    ///
    /// # Errors
    /// As [`Subscription::recv`].
    pub fn try_recv(&mut self) -> Result<Option<Arc<Broadcast>>, RecvError> {
        let Some(receiver) = self.receiver.as_mut() else { return Err(RecvError::Closed) };
        loop {
            match receiver.try_recv() {
                Ok(broadcast) if broadcast.from == Some(self.id) => continue,
                Ok(broadcast) => return Ok(Some(broadcast)),
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => return Err(RecvError::Lagged(missed)),
                Err(broadcast::error::TryRecvError::Closed) => return Err(RecvError::Closed),
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let Some(registry) = self.registry.upgrade() else { return };
        let mut topics = registry.topics.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Under the write lock no one can subscribe in between, so a count of zero means the topic is unused.
        if topics.get(&self.topic).is_some_and(|sender| sender.receiver_count() == 0) {
            topics.remove(&self.topic);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).field("topic", &self.topic).finish()
    }
}
