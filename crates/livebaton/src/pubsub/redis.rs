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
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ::redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use ::redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RetryMethod};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::{BackendError, Inbound, Message, PubSubBackend, RemoteEnvelope};
use crate::redis_address::{RedisAddress, connect_hint, is_auth_failure};

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
    _shutdown: watch::Sender<()>,
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
        let redis = redis.into();
        let tls = redis.is_tls();
        let client = redis.client().map_err(RedisBackendError::InvalidUrl)?;
        let name = node_name.map_or_else(random_node_name, str::to_owned);
        let claim = NameClaim::new(&config.channel, &name)?;
        let capacity = config.queue_capacity;
        let link = Link { redis: client.get_connection_info().addr().to_string(), client, config: Arc::new(config) };

        let publisher = link.publisher().await.map_err(|error| error.into_connect_error(&link.redis, tls))?;
        let (sink, stream) = link.subscriber().await.map_err(|error| error.into_connect_error(&link.redis, tls))?;
        tracing::info!(node = %name, redis = %link.redis, channel = %link.config.channel, "connected to Redis");

        let name: Arc<str> = Arc::from(name);
        let shared = Arc::new(Shared {
            echo_prefix: echo_prefix(&name),
            name,
            channel: link.config.channel.clone(),
            redis: link.redis.clone(),
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
        let (shutdown, stopped) = watch::channel(());
        let (outgoing, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_publisher(shared.clone(), link.clone(), publisher, queue, stopped.clone()));
        tokio::spawn(run_subscriber(shared.clone(), link, sink, stream, stopped));
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

/// How to reach Redis; cloned into both tasks.
#[derive(Clone)]
struct Link {
    client: Client,
    /// Host and port, without credentials, for logs and errors.
    redis: String,
    config: Arc<RedisConfig>,
}

/// Why opening a connection failed.
enum LinkError {
    Redis(RedisError),
    Timeout(Duration),
}

impl LinkError {
    fn into_connect_error(self, redis: &str, tls: bool) -> RedisBackendError {
        match self {
            LinkError::Redis(source) if is_auth_failure(&source) => {
                RedisBackendError::Authentication { redis: redis.to_owned(), source }
            }
            LinkError::Redis(source) => {
                RedisBackendError::Connect { redis: redis.to_owned(), hint: connect_hint(&source, tls), source }
            }
            LinkError::Timeout(timeout) => RedisBackendError::Timeout { redis: redis.to_owned(), timeout },
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Redis(error) => error.fmt(f),
            LinkError::Timeout(timeout) => write!(f, "no answer within {timeout:?}"),
        }
    }
}

/// Runs `future`, failing with [`LinkError`] when it fails or takes longer than `limit`.
async fn within<T>(limit: Duration, future: impl Future<Output = Result<T, RedisError>>) -> Result<T, LinkError> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(LinkError::Redis(error)),
        Err(_) => Err(LinkError::Timeout(limit)),
    }
}

impl Link {
    /// A connection for `PUBLISH`, whose commands time out after `command_timeout`. Checked with a `PING`, which
    /// also fails when Redis wants a password and the URL has none (opening the connection sends no command then).
    async fn publisher(&self) -> Result<MultiplexedConnection, LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.command_timeout));
        let mut connection =
            within(self.config.connect_timeout, self.client.get_multiplexed_async_connection_with_config(&config))
                .await?;
        within(self.config.command_timeout, ::redis::cmd("PING").query_async::<::redis::Value>(&mut connection))
            .await?;
        Ok(connection)
    }

    /// A connection subscribed to the channel (the `SUBSCRIBE` is confirmed when this returns).
    async fn subscriber(&self) -> Result<(PubSubSink, PubSubStream), LinkError> {
        let pubsub = within(self.config.connect_timeout, self.client.get_async_pubsub()).await?;
        let (mut sink, stream) = pubsub.split();
        within(self.config.command_timeout, sink.subscribe(&self.config.channel)).await?;
        Ok((sink, stream))
    }

    /// Opens a connection with `open` until it succeeds, with backoff. `None` when the backend is dropped meanwhile.
    async fn reconnect<T, F, Fut>(
        &self,
        node: &str,
        role: &'static str,
        stopped: &mut watch::Receiver<()>,
        mut open: F,
    ) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LinkError>>,
    {
        let lost_at = Instant::now();
        let mut backoff = Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        for attempt in 1u64.. {
            let attempt_result = tokio::select! {
                biased;
                _ = stopped.changed() => return None,
                result = async {
                    tokio::time::sleep(backoff.next_delay()).await;
                    open().await
                } => result,
            };
            match attempt_result {
                Ok(connection) => {
                    tracing::info!(node, redis = %self.redis, role, attempt, down_for = ?lost_at.elapsed(), "reconnected to Redis");
                    return Some(connection);
                }
                // Every attempt at debug level; a reminder at warn level about every 20 (100 s at the default maximum).
                Err(error) if attempt % 20 == 0 => {
                    tracing::warn!(node, redis = %self.redis, role, attempt, down_for = ?lost_at.elapsed(), %error, "still cannot reconnect to Redis");
                }
                Err(error) => {
                    tracing::debug!(node, redis = %self.redis, role, attempt, %error, "could not reconnect to Redis yet");
                }
            }
        }
        None
    }
}

/// Sends queued envelopes in order, in pipelined batches, reconnecting when the connection is lost.
async fn run_publisher(
    shared: Arc<Shared>,
    link: Link,
    connection: MultiplexedConnection,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    mut stopped: watch::Receiver<()>,
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
            None => match link.reconnect(&shared.name, "publisher", &mut stopped, || link.publisher()).await {
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
            Err(error) if is_refusal(&error) => {
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

/// Redis answered with an error that sending the same commands again cannot fix (e.g. missing permission). Anything
/// else (I/O errors, timeouts, a server still loading) counts as a lost connection.
pub(crate) fn is_refusal(error: &RedisError) -> bool {
    matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
        && matches!(error.retry_method(), RetryMethod::NoRetry)
}

/// Why the subscriber stopped serving one connection.
enum Ended {
    /// The backend was dropped.
    Shutdown,
    /// The PubSub this node delivers to is gone.
    Orphaned,
    /// The connection was lost.
    Lost(String),
}

/// Delivers messages from the channel to the PubSub, resubscribing after a lost connection.
async fn run_subscriber(
    shared: Arc<Shared>,
    link: Link,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    mut stopped: watch::Receiver<()>,
) {
    let mut reconnects = 0;
    loop {
        let reason = match serve(&shared, &link.config, &mut sink, &mut stream, &mut stopped).await {
            Ended::Shutdown | Ended::Orphaned => break,
            Ended::Lost(reason) => reason,
        };
        shared.set_status(false, reconnects);
        tracing::warn!(node = %shared.name, redis = %link.redis, channel = %shared.channel, %reason, "lost the Redis subscription; reconnecting");
        match link.reconnect(&shared.name, "subscriber", &mut stopped, || link.subscriber()).await {
            Some((new_sink, new_stream)) => {
                (sink, stream) = (new_sink, new_stream);
                reconnects += 1;
                shared.set_status(true, reconnects);
            }
            None => break,
        }
    }
    shared.set_status(false, reconnects);
    tracing::debug!(node = %shared.name, "Redis subscriber stopped");
}

/// Serves one subscribed connection until it is lost or no longer needed.
async fn serve(
    shared: &Shared,
    config: &RedisConfig,
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    stopped: &mut watch::Receiver<()>,
) -> Ended {
    let start = tokio::time::Instant::now() + config.ping_interval;
    let mut ping = tokio::time::interval_at(start, config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => return Ended::Shutdown,
            message = stream.next() => match message {
                Some(message) => {
                    if !shared.receive(message.get_payload_bytes()) {
                        return Ended::Orphaned;
                    }
                }
                None => return Ended::Lost("connection closed".to_owned()),
            },
            _ = ping.tick() => {
                if shared.inbound.get().is_some_and(|inbound| !inbound.is_alive()) {
                    return Ended::Orphaned;
                }
                if let Err(error) = within(config.command_timeout, sink.ping::<::redis::Value>()).await {
                    return Ended::Lost(format!("PING failed: {error}"));
                }
            }
        }
    }
}

/// Exponential backoff with jitter: 0, then `min`, `2 min`, … up to `max`, each randomised to between half and all.
/// Shared with the Redis presence roster, so both reconnect alike.
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Backoff { next: Duration::ZERO, min, max: max.max(min) }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = if delay.is_zero() { self.min } else { (delay * 2).min(self.max) };
        // Half of the delay, plus a random part of the other half.
        let half = delay / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random_u64() % nanos.saturating_add(1))
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

/// A random 64-bit number from the standard library's randomly seeded hasher (no RNG dependency needed for names
/// and jitter).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
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
    fn backoff_starts_at_once_then_grows_to_the_maximum_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        let bounds = [100, 200, 400, 800, 800, 800];
        for full in bounds.map(Duration::from_millis) {
            let delay = backoff.next_delay();
            assert!(delay >= full / 2 && delay <= full, "{delay:?} not within half of {full:?}");
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
