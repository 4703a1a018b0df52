//! The Redis backend: several nodes (processes) share broadcasts through Redis pub/sub.
//!
//! # Channel layout: one channel for all topics
//!
//! Every node publishes each envelope ([`RemoteEnvelope`], which names its topic and origin) on **one** Redis channel,
//! [`RedisConfig::channel`] (default `livebaton:pubsub`), and every node subscribes to that channel once. The receiving
//! node hands the envelope to its [`Inbound`], which delivers it to the topic's local subscribers or drops it at once when
//! the topic has none. This is what Phoenix's Redis adapter does (one channel per PubSub name), and here it is the only
//! layout that keeps the contract:
//!
//! - [`super::PubSub::subscribe`] is synchronous and local, and the backend is not told about it. A channel per topic
//!   (`livebaton:t:<topic>`) would need a `SUBSCRIBE` round trip per new topic, finishing *after* `subscribe` returned,
//!   so a broadcast sent by another node right after a subscribe could be lost; the shared channel is subscribed once,
//!   before [`RedisBackend::connect`] returns, so a subscription is effective on every node as soon as it exists.
//! - Redis's cost of a `PUBLISH` on a plain channel is one write per subscribed node; pattern subscriptions
//!   (`PSUBSCRIBE livebaton:t:*`) would add a pattern match per publish and still deliver everything to everyone.
//! - One channel and one publishing connection per node keep a node's messages in publish order on every other node,
//!   across topics as well as within one.
//!
//! The price is that every node reads every broadcast of the cluster. It does not drown in them: its own echoes are
//! recognised by a byte-prefix check and never decoded, other messages are decoded once and dropped at once when no
//! local subscriber wants the topic, and delivery never waits (topics have bounded rings), so the subscribing task keeps
//! up with Redis and Redis's output buffer for it stays small. Applications sharing one Redis get separate clusters with
//! separate channels (which is also how the tests isolate themselves). Should the cluster-wide broadcast rate ever
//! outgrow what one node can decode, the way out is a backend hook for a topic's first local subscriber and last
//! unsubscribe, and a channel per topic (or per hash bucket of topics) whose `SUBSCRIBE` completes before that
//! subscribe returns.
//!
//! # Sending: a bounded queue drained by one task
//!
//! [`PubSubBackend::forward`] encodes the envelope and queues it; it never waits. At most
//! [`RedisConfig::queue_capacity`] messages (default 4096) may be queued or in flight, i.e. not yet acknowledged by
//! Redis; past that `forward` returns [`BackendError::QueueFull`] (local subscribers are served regardless). One task
//! drains the queue in order, in pipelined batches of up to 64 `PUBLISH` commands on one connection, so order per
//! topic (and per node) is preserved.
//!
//! # Reconnecting
//!
//! The publishing connection and the subscribing connection reconnect independently, each in its own task, with
//! exponential backoff: the first retry is immediate, then [`RedisConfig::reconnect_min`] doubling up to
//! [`RedisConfig::reconnect_max`] (defaults 100 ms and 5 s), each delay randomised to between half and all of its value
//! so that many nodes do not reconnect in lockstep. The subscriber notices a lost connection when its stream ends or a
//! `PING` (every [`RedisConfig::ping_interval`]) is not answered within [`RedisConfig::command_timeout`]; the publisher
//! when a `PUBLISH` fails or times out. After reconnecting, the subscriber subscribes to the channel again.
//! [`RedisBackend::status`] reports each loss and each resubscription ([`RedisStatus`]); whoever keeps state derived
//! from other nodes' messages (the presence roster) resyncs whenever [`RedisStatus::reconnects`] changes.

//! Only an established backend reconnects: [`RedisBackend::connect`] fails at once when Redis refuses the URL's
//! credentials ([`RedisBackendError::Authentication`]; the new publishing connection's `PING` finds a missing password
//! too) or its TLS certificate is not trusted (see [`RedisAddress`] for `rediss://`, passwords and CAs).
//!
//! # Messages while Redis is away
//!
//! - **Outgoing**: kept, in order, up to the queue bound, and published after the publisher reconnects; once the bound
//!   is reached `forward` returns [`BackendError::QueueFull`] until the queue drains. The batch in flight when a
//!   connection broke is sent again, so in the rare case that Redis had executed it before the connection broke, other
//!   nodes receive those messages twice.
//! - **Incoming**: Redis pub/sub is at-most-once. Whatever other nodes publish while this node is not subscribed is lost
//!   for this node — including messages they had queued and publish right after Redis returns, if they reconnect before
//!   this node resubscribes. Hence the resync on [`RedisStatus::reconnects`].
//!
//! # Node names and lifetime
//!
//! Every node on a channel needs a unique name: a node ignores envelopes carrying its own name (Redis echoes a node's
//! own messages back to it). [`RedisBackend::connect`] takes the name from the caller or makes a random one, and refuses
//! a name already in use on the same channel in this process. The two tasks end when the backend is dropped (with the
//! last handle of the [`super::PubSub`] that owns it): the publisher first sends what is still queued if it is
//! connected; the subscriber stops at once, and also as soon as the PubSub it delivers to is gone.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ::redis::RedisError;
use ::redis::aio::MultiplexedConnection;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::{BackendError, Inbound, Message, PubSubBackend, RemoteEnvelope};
use crate::RedisAddress;
use crate::redis_link::{self, Flow, Link, LinkConfig, LinkError, Listener, connect_hint, random_u64, within};

/// Most `PUBLISH` commands sent in one pipelined round trip.
const BATCH: usize = 64;

/// Settings for a [`RedisBackend`].
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// The Redis channel every node of this cluster publishes on and subscribes to. Nodes see each other only when they
    /// use the same channel (and the same Redis database server).
    pub channel: String,
    /// Messages that may wait to be acknowledged by Redis (queued, or sent and not yet answered). Past this,
    /// `forward` returns [`BackendError::QueueFull`].
    pub queue_capacity: usize,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer a command (`PUBLISH`, `SUBSCRIBE`, `PING`) before the connection counts as
    /// lost.
    pub command_timeout: Duration,
    /// How often the subscribing connection is checked with a `PING`, so a silently dead connection is noticed.
    pub ping_interval: Duration,
    /// The first delay between reconnection attempts (the very first retry is immediate).
    pub reconnect_min: Duration,
    /// The longest delay between reconnection attempts.
    pub reconnect_max: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            channel: "livebaton:pubsub".to_owned(),
            queue_capacity: 4096,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

impl RedisConfig {
    fn link(&self) -> LinkConfig {
        LinkConfig {
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            ping_interval: self.ping_interval,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
        }
    }
}

/// Why a [`RedisBackend`] could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RedisBackendError {
    /// The URL is not a Redis URL, or the CA certificate given with it cannot be used.
    #[error("invalid Redis URL or CA certificate: {0}")]
    InvalidUrl(#[source] RedisError),
    /// Redis refused the user or password of the URL (or wants one and the URL has none). Not retried.
    #[error("Redis at {redis} refused to authenticate this node: check the user and password in the Redis URL")]
    Authentication {
        /// Where Redis was expected (host and port, without credentials).
        redis: String,
        /// Redis's answer.
        #[source]
        source: RedisError,
    },
    /// Redis refused the connection or a command needed to set it up, or its TLS certificate is not trusted.
    #[error("could not connect to Redis at {redis}: {source}{hint}")]
    Connect {
        /// Where Redis was expected (host and port, without credentials).
        redis: String,
        /// What went wrong.
        #[source]
        source: RedisError,
        /// Empty, or what probably went wrong (an untrusted certificate, `redis://` to a TLS port).
        hint: &'static str,
    },
    /// Redis did not answer in time.
    #[error("Redis at {redis} did not answer within {timeout:?}")]
    Timeout {
        /// Where Redis was expected (host and port, without credentials).
        redis: String,
        /// How long the backend waited.
        timeout: Duration,
    },
    /// Another backend in this process already uses this node name on this channel.
    #[error("node name {name:?} is already in use on Redis channel {channel:?} in this process")]
    NameInUse {
        /// The node name.
        name: String,
        /// The channel.
        channel: String,
    },
    /// A setting cannot work.
    #[error("invalid Redis backend configuration: {0}")]
    Config(&'static str),
}

/// The state of a node's subscription to the cluster channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisStatus {
    /// Whether this node is subscribed, that is, receives other nodes' broadcasts.
    pub connected: bool,
    /// How many times the subscription was lost and made again (0 after the first connect). Messages from other nodes
    /// may have been missed each time it grows: state derived from them must be resynced.
    pub reconnects: u64,
}

/// Counters of a [`RedisBackend`], for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Messages queued or in flight, not yet acknowledged by Redis.
    pub queued: usize,
    /// Messages Redis acknowledged.
    pub published: u64,
    /// Messages Redis refused with an error that retrying cannot fix (they are dropped and logged).
    pub refused: u64,
    /// Times the publishing connection was made again after being lost.
    pub publisher_reconnects: u64,
    /// Messages from other nodes handed to this node's subscribers.
    pub received: u64,
    /// This node's own messages echoed back by Redis and skipped without being decoded.
    pub echoes: u64,
    /// Messages on the channel that were not envelopes (dropped and logged).
    pub undecodable: u64,
}

/// A [`PubSubBackend`] that carries broadcasts between nodes through Redis pub/sub. See the module documentation for
/// the channel layout, the queue, reconnection and what happens to messages while Redis is away.
pub struct RedisBackend {
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Bytes>,
    capacity: usize,
    /// Never sent on: dropping it (with the backend) tells both tasks to stop.
    _shutdown: watch::Sender<bool>,
    _name: NameClaim,
}

/// What the backend and its two tasks share.
struct Shared {
    name: Arc<str>,
    channel: String,
    /// Where Redis is, without credentials, for logs.
    redis: String,
    /// How every envelope this node encodes begins; an incoming message that begins so is an echo of our own.
    echo_prefix: Vec<u8>,
    inbound: OnceLock<Inbound>,
    status: watch::Sender<RedisStatus>,
    queued: AtomicUsize,
    published: AtomicU64,
    refused: AtomicU64,
    publisher_reconnects: AtomicU64,
    received: AtomicU64,
    echoes: AtomicU64,
    undecodable: AtomicU64,
}

impl RedisBackend {
    /// Connects to the Redis at `redis` (a URL, `redis://[[user]:password@]host[:port][/db]` or `rediss://…` for
    /// TLS, or a [`RedisAddress`] with its CA) as the node `node_name` (a random name when `None`), subscribes to the
    /// cluster channel and starts the publishing and subscribing tasks. Must be called inside a Tokio runtime. When it
    /// returns, broadcasts from other nodes on the channel already reach this node.
    ///
    /// # Errors
    /// [`RedisBackendError`] when the URL is invalid, Redis does not answer, refuses the credentials
    /// ([`RedisBackendError::Authentication`]) or a command (there is no retry here: only an established backend
    /// reconnects), the name is already in use in this process, or the configuration cannot work.
    pub async fn connect(
        redis: impl Into<RedisAddress>,
        node_name: Option<&str>,
        config: RedisConfig,
    ) -> Result<Arc<Self>, RedisBackendError> {
        if config.channel.is_empty() {
            return Err(RedisBackendError::Config("the channel name is empty"));
        }
        if node_name.is_some_and(str::is_empty) {
            return Err(RedisBackendError::Config("the node name is empty"));
        }
        if config.queue_capacity == 0 {
            return Err(RedisBackendError::Config("queue_capacity must be at least 1"));
        }
        let link = Link::new(&redis.into(), config.link()).map_err(RedisBackendError::InvalidUrl)?;
        let name = node_name.map_or_else(random_node_name, str::to_owned);
        let claim = NameClaim::new(&config.channel, &name)?;
        let capacity = config.queue_capacity;

        let publisher = publisher(&link).await.map_err(|error| connect_error(error, &link))?;
        let subscription = link.subscribe(&config.channel).await.map_err(|error| connect_error(error, &link))?;
        tracing::info!(node = %name, redis = %link.redis(), channel = %config.channel, "connected to Redis");

        let name: Arc<str> = Arc::from(name);
        let shared = Arc::new(Shared {
            echo_prefix: echo_prefix(&name),
            name,
            channel: config.channel,
            redis: link.redis().to_owned(),
            inbound: OnceLock::new(),
            status: watch::Sender::new(RedisStatus { connected: true, reconnects: 0 }),
            queued: AtomicUsize::new(0),
            published: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            publisher_reconnects: AtomicU64::new(0),
            received: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
        });
        let (shutdown, stopped) = watch::channel(false);
        let (outgoing, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_publisher(shared.clone(), link.clone(), publisher, queue, stopped.clone()));
        let (name, channel) = (shared.name.clone(), shared.channel.clone());
        let subscriber = Subscriber(shared.clone());
        tokio::spawn(
            async move { redis_link::listen(&link, &name, &channel, subscription, subscriber, stopped).await },
        );
        Ok(Arc::new(RedisBackend { shared, outgoing, capacity, _shutdown: shutdown, _name: claim }))
    }

    /// The Redis channel this node publishes on and listens to.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    /// The subscription's state now and its changes: wait on [`watch::Receiver::changed`] to learn about a lost
    /// connection or a resubscription. The sender closes once the backend and its tasks are gone.
    pub fn status(&self) -> watch::Receiver<RedisStatus> {
        self.shared.status.subscribe()
    }

    /// The backend's counters now.
    pub fn stats(&self) -> RedisStats {
        let shared = &self.shared;
        RedisStats {
            queued: shared.queued.load(Ordering::Acquire),
            published: shared.published.load(Ordering::Relaxed),
            refused: shared.refused.load(Ordering::Relaxed),
            publisher_reconnects: shared.publisher_reconnects.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            echoes: shared.echoes.load(Ordering::Relaxed),
            undecodable: shared.undecodable.load(Ordering::Relaxed),
        }
    }
}

impl PubSubBackend for RedisBackend {
    fn node_name(&self) -> &str {
        &self.shared.name
    }

    fn attach(&self, inbound: Inbound) {
        if self.shared.inbound.set(inbound).is_err() {
            tracing::warn!(node = %self.shared.name, "a Redis backend serves one PubSub; a second attach is ignored");
        }
    }

    fn forward(&self, topic: &Arc<str>, message: &dyn Message) -> Result<(), BackendError> {
        let queued = &self.shared.queued;
        // Reserve a place first (exactly: concurrent forwards never overshoot the bound), then encode.
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.capacity).then_some(n + 1))
            .map_err(|_| BackendError::QueueFull)?;
        let sent = RemoteEnvelope::encode(&self.shared.name, topic, message).and_then(|bytes| {
            self.outgoing
                .send(bytes)
                .map_err(|_| BackendError::Disconnected("the Redis publishing task has stopped".to_owned()))
        });
        if sent.is_err() {
            queued.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("node", &self.shared.name)
            .field("redis", &self.shared.redis)
            .field("channel", &self.shared.channel)
            .field("status", &*self.shared.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Handles one message from the channel. Returns false once the PubSub it delivers to is gone.
    fn receive(&self, payload: &[u8]) -> bool {
        if payload.starts_with(&self.echo_prefix) {
            self.echoes.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        // Before `attach` there is no PubSub, so no subscriber to miss this.
        let Some(inbound) = self.inbound.get() else { return true };
        if !inbound.is_alive() {
            return false;
        }
        match inbound.deliver_encoded(payload) {
            Ok(_) => {
                self.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                // Warn once; someone publishing garbage on the channel must not flood the log.
                if self.undecodable.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(node = %self.name, channel = %self.channel, %error, "dropped a message that is not an envelope (further ones are logged at debug level)");
                } else {
                    tracing::debug!(node = %self.name, channel = %self.channel, %error, "dropped a message that is not an envelope");
                }
            }
        }
        true
    }

    fn set_status(&self, connected: bool, reconnects: u64) {
        self.status.send_replace(RedisStatus { connected, reconnects });
    }
}

/// What a failure to open the first connections means for [`RedisBackend::connect`].
fn connect_error(error: LinkError, link: &Link) -> RedisBackendError {
    let redis = link.redis().to_owned();
    match error {
        LinkError::Redis(source) if redis_link::is_auth_failure(&source) => {
            RedisBackendError::Authentication { redis, source }
        }
        LinkError::Redis(source) => {
            RedisBackendError::Connect { hint: connect_hint(&source, link.is_tls()), redis, source }
        }
        LinkError::Timeout(timeout) => RedisBackendError::Timeout { redis, timeout },
    }
}

/// A connection for `PUBLISH`, whose commands time out after `command_timeout`. Checked with a `PING`, which also
/// fails when Redis wants a password and the URL has none (opening the connection sends no command then).
async fn publisher(link: &Link) -> Result<MultiplexedConnection, LinkError> {
    let mut connection = link.command_connection().await?;
    within(link.config().command_timeout, ::redis::cmd("PING").query_async::<::redis::Value>(&mut connection)).await?;
    Ok(connection)
}

/// Sends queued envelopes in order, in pipelined batches, reconnecting when the connection is lost.
async fn run_publisher(
    shared: Arc<Shared>,
    link: Link,
    connection: MultiplexedConnection,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connection = Some(connection);
    let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH);
    loop {
        // An empty receive means the backend is gone and everything it queued was sent.
        if batch.is_empty() && queue.recv_many(&mut batch, BATCH).await == 0 {
            break;
        }
        let mut conn = match connection.take() {
            Some(conn) => conn,
            None => match link.reconnect(&shared.name, "publisher", &mut stopped, || publisher(&link)).await {
                Some(conn) => {
                    shared.publisher_reconnects.fetch_add(1, Ordering::Relaxed);
                    conn
                }
                None => break,
            },
        };
        let mut pipeline = ::redis::pipe();
        for envelope in &batch {
            pipeline.cmd("PUBLISH").arg(&shared.channel).arg(&envelope[..]).ignore();
        }
        match pipeline.exec_async(&mut conn).await {
            Ok(()) => {
                connection = Some(conn);
                shared.published.fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                batch.clear();
            }
            Err(error) if redis_link::is_refusal(&error) => {
                tracing::error!(node = %shared.name, redis = %shared.redis, channel = %shared.channel, %error, dropped = batch.len(), "Redis refused to publish; messages dropped");
                connection = Some(conn);
                shared.refused.fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                batch.clear();
            }
            Err(error) => {
                tracing::warn!(node = %shared.name, redis = %shared.redis, %error, kept = batch.len(), "lost the Redis publishing connection; reconnecting");
            }
        }
    }
    tracing::debug!(node = %shared.name, "Redis publisher stopped");
}

/// Delivers messages from the channel to the PubSub, and keeps [`RedisBackend::status`] up to date.
struct Subscriber(Arc<Shared>);

impl Listener for Subscriber {
    type Chore = ();

    async fn on_message(&mut self, payload: &[u8]) -> Flow {
        if self.0.receive(payload) { Flow::Continue } else { Flow::Stop }
    }

    fn is_wanted(&self) -> bool {
        self.0.inbound.get().is_none_or(Inbound::is_alive)
    }

    fn lost(&mut self, reconnects: u64) {
        self.0.set_status(false, reconnects);
    }

    fn reconnected(&mut self, reconnects: u64) {
        self.0.set_status(true, reconnects);
    }

    fn stopped(&mut self, reconnects: u64) {
        self.0.set_status(false, reconnects);
    }
}

/// How [`RemoteEnvelope::encode`] begins an envelope sent by `name`: `{"origin":"<name>",`.
fn echo_prefix(name: &str) -> Vec<u8> {
    let mut prefix = br#"{"origin":"#.to_vec();
    // Serialising a string cannot fail.
    prefix.extend_from_slice(&serde_json::to_vec(name).unwrap_or_default());
    prefix.push(b',');
    prefix
}

fn random_node_name() -> String {
    format!("node-{:016x}", random_u64())
}

/// Node names in use in this process, per channel.
static NAMES: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// A node name taken on a channel in this process; released on drop.
struct NameClaim(String, String);

impl NameClaim {
    fn new(channel: &str, name: &str) -> Result<Self, RedisBackendError> {
        let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !names.insert((channel.to_owned(), name.to_owned())) {
            return Err(RedisBackendError::NameInUse { name: name.to_owned(), channel: channel.to_owned() });
        }
        Ok(NameClaim(channel.to_owned(), name.to_owned()))
    }
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        names.remove(&(std::mem::take(&mut self.0), std::mem::take(&mut self.1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_prefix_matches_own_envelopes_only() {
        let message = super::super::JsonMessage::new("x", serde_json::json!({ "n": 1 }));
        for name in ["a", "node-\"quoted\"\\", "ünïcode"] {
            let own = RemoteEnvelope::encode(name, "t", &message).unwrap();
            assert!(own.starts_with(&echo_prefix(name)), "{name}");
            let other = RemoteEnvelope::encode(&format!("{name}b"), "t", &message).unwrap();
            assert!(!other.starts_with(&echo_prefix(name)), "{name} is a prefix of another name");
        }
    }

    #[test]
    fn random_names_differ() {
        let names: BTreeSet<String> = (0..1000).map(|_| random_node_name()).collect();
        assert_eq!(names.len(), 1000);
    }

    #[test]
    fn a_name_is_claimed_once_per_channel_until_released() {
        let claim = NameClaim::new("unit:c1", "n").unwrap();
        assert!(matches!(NameClaim::new("unit:c1", "n"), Err(RedisBackendError::NameInUse { .. })));
        let elsewhere = NameClaim::new("unit:c2", "n").unwrap();
        drop(claim);
        let again = NameClaim::new("unit:c1", "n").unwrap();
        drop((again, elsewhere));
    }
}
