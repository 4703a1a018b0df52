//! The Redis roster: presence shared by several nodes, with Redis as the authority for order and leadership.
//!
//! # The model
//!
//! - **Each node is the only writer of its own entries.** It applies its own changes locally first (leaves, closes,
//!   updates and swaps are synchronous calls) and writes them through, in order, on one writer task. Joins wait for
//!   Redis, which numbers them.
//! - **Redis holds the authoritative roster** (layout in [`scripts`]): per topic a sorted set of members by seq, their
//!   data, a version counter, the eligible members and the leader with its fence. Every change is one Lua script, which
//!   also publishes the change on one channel. Redis runs scripts one at a time, so every node receives every topic's
//!   events in the order they happened, each numbered by the topic's version (+1 per event).
//! - **A join is one atomic step**: the script numbers the entry (seq), records it, recomputes the leader, publishes,
//!   and answers with every entry changed since the version the joiner's replica has. The joiner applies those before
//!   its own entry, so no node can believe it is first while an earlier entry exists.
//! - **Every node keeps a replica** of all entries of all nodes in its [`super::PresenceState`] (as Phoenix's tracker
//!   does), fed by the events (in version order; a gap reloads the topic) and by snapshots after (re)connecting. The
//!   replica produces the same diffs and owner changes on every node. Rules: [`super::replica`].
//!
//! # Liveness leases and dead nodes
//!
//! Each node holds a lease key (`P:lease:<node>`, TTL [`RedisRosterConfig::lease`], default 5 s) refreshed every
//! [`RedisRosterConfig::refresh`] (1 s). After each refresh a node runs the reaper script: for every other node whose
//! lease is gone it removes all its entries (found through `P:owned:<node>`), publishes the leaves and flags the node as
//! reaped, atomically — whichever survivor runs it first does the work, the others apply the published leaves. An
//! entry of a crashed node is therefore gone everywhere within the lease plus one refresh period. A node that was only
//! cut off (and comes back) finds its `reaped` flag on its next write or refresh, and re-asserts its live entries at the
//! back of the queue (the cluster moved on without it; re-taking the baton would surprise whoever was promoted).
//! Meanwhile its replica keeps those entries (marked stale), and its copy keeps the drafts of their sessions even
//! though the survivors, seeing the sessions empty, ended them; once the entries are back it writes those drafts back,
//! unless the session went on elsewhere (see `Node::restore_kept_docs`).
//!
//! A node's own view is trustworthy only while its lease is: [`RosterBackend::is_healthy`] is false once the last
//! successful refresh is older than 4/5 of the lease, and fencing refuses then.
//!
//! # Reconnects, Redis restarts and flushes
//!
//! - **Reconnect** (the subscription was lost, so events may have been missed): after subscribing again the node
//!   reloads every topic it holds or Redis holds (snapshots), then applies events again. Writes that failed are retried
//!   in order (every script is idempotent for a retry); while they wait the queue stays bounded (see [`queue`]).
//! - **Redis lost its data** (restart without persistence, `FLUSHALL`): every script checks the dataset's generation
//!   (`P:gen`, a random id created with the dataset) against the node's; the first script to run on the empty dataset
//!   creates a new one, and every other node learns it from a script's answer or an event. A node that learns it
//!   (1) marks its remote entries stale but keeps listing them, so nothing visible changes and no owner changes;
//!   (2) re-asserts its own live entries **at their old seqs**, which were unique, so the order is exactly what it was
//!   no matter which node re-asserts first, and the leader (recomputed by each re-assert) ends up the same one; and
//!   (3) after [`RedisRosterConfig::reassert_grace`] reloads everything, dropping remote entries nobody re-asserted
//!   (their node died meanwhile). Tokens of the old generation never verify again.
//! - **Redis came back with old data** (restored from an RDB/AOF snapshot, a replica promoted, a restart with
//!   persistence): the dataset may still carry the generation the nodes believe in, with entries that left, leaders
//!   that changed and leases that ran out since. Every script also gets the `run_id` of the Redis process the node's
//!   connection reaches (asked once per connection), and the dataset records the process that served it last; the
//!   first script to see a different one wipes the roster and starts a new generation, in one step (see [`scripts`]).
//!   From there on it is the case above: the nodes re-assert their live entries, nothing of a node that died comes
//!   back, and each topic has exactly the one leader that the re-asserted entries give it.
//!
//! # Fencing across nodes
//!
//! Redis keeps each topic's leader (its first eligible entry, see [`super::is_eligible`]) and a fence drawn from a
//! counter that only grows, changed whenever the leader changes, in the same script as the change. Events carry it, so
//! each replica knows the leader and fence as of the last event ([`super::Presence::authority`]). The editing layer's
//! tokens include them; `verify` compares them with the replica (and refuses when the lease is stale), and
//! `verify_with_authority` asks Redis atomically ([`RosterBackend::check_authority`]: same generation, same leader,
//! same fence, leader's node lease alive).
//!
//! # Shared documents
//!
//! The roster also carries small documents keyed by string (the editing sessions' drafts): a node writes them through
//! its writer (`P:doc:<key>`, TTL [`RedisRosterConfig::doc_ttl`]), the script publishes them on the same channel, and
//! every node's [`DocSink`] keeps a local copy, applying changes in the order of the revisions Redis gives them. A
//! write can be fenced by the topic of the same name: Redis accepts it only from that topic's current leader. After
//! Redis lost its data, nodes write their copies back unless Redis already has a newer version.

mod queue;
mod scripts;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use ::redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use ::redis::{AsyncConnectionConfig, Client, RedisError};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use self::queue::{Command, DocOp, Mode, Refused, WriteQueue};
use self::scripts::Script;
use self::wire::{
    EntryData, Incoming, ReconcileEntry, WireCheck, WireDocPut, WireDocs, WireJoin, WireSnapshot, WireStrings,
};
use super::backend::{AuthorityCheck, BoxFuture, JoinCall, OwnOp, RosterBackend, RosterBackendError};
use super::replica::{Applied, JoinOutcome, OwnEntry};
use super::{Authority, RosterHandle};
use crate::RedisAddress;
use crate::redis_link::is_auth_failure;
use crate::redis_link::{Backoff, is_refusal, random_u64};

/// Settings for a [`RedisRoster`].
#[derive(Clone, Debug)]
pub struct RedisRosterConfig {
    /// Prefix of every Redis key and of the event channel. Nodes share a roster only with the same prefix (and Redis);
    /// tests isolate themselves with unique prefixes.
    pub prefix: String,
    /// How long a node's liveness lease lasts without a refresh. A crashed node's entries are removed once it ran out.
    pub lease: Duration,
    /// How often a node refreshes its lease and looks for dead nodes.
    pub refresh: Duration,
    /// After Redis lost its data: how long remote entries stay listed waiting for their nodes to re-assert them.
    pub reassert_grace: Duration,
    /// How long a join may wait for Redis before `track` fails.
    pub join_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer one command before the connection counts as lost.
    pub command_timeout: Duration,
    /// How often the subscribing connection is checked with a `PING`.
    pub ping_interval: Duration,
    /// The first delay between reconnection (and retry) attempts.
    pub reconnect_min: Duration,
    /// The longest delay between reconnection (and retry) attempts.
    pub reconnect_max: Duration,
    /// TTL of shared documents (drafts) in Redis, renewed by every write: a safety net so the documents of sessions
    /// whose nodes all died do not stay forever.
    pub doc_ttl: Duration,
    /// How many of this node's writes may wait for Redis before the queue is compacted (changes of own entries folded
    /// into one re-assert of their current state, superseded draft writes dropped) and joins fail at once. Reached
    /// only while Redis is away.
    pub queue_capacity: usize,
}

impl Default for RedisRosterConfig {
    fn default() -> Self {
        RedisRosterConfig {
            prefix: "livebaton:presence".to_owned(),
            lease: Duration::from_secs(5),
            refresh: Duration::from_secs(1),
            reassert_grace: Duration::from_secs(5),
            join_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            doc_ttl: Duration::from_secs(24 * 3600),
            queue_capacity: 4096,
        }
    }
}

/// Why a [`RedisRoster`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisRosterError {
    /// The URL is not a Redis URL, or the CA certificate given with it cannot be used.
    #[error("invalid Redis URL or CA certificate: {0}")]
    InvalidUrl(#[source] RedisError),
    /// Redis refused the user or password of the URL (or wants one and the URL has none). Not retried.
    #[error(
        "Redis at {redis} refused to authenticate the presence roster ({reason}); check the user and password in the \
         Redis URL"
    )]
    Authentication {
        /// Host and port, without credentials.
        redis: String,
        /// Redis's answer.
        reason: String,
    },
    /// Redis could not be reached or did not answer in time.
    #[error("could not reach Redis at {redis} for the presence roster: {reason}")]
    Unavailable {
        /// Host and port, without credentials.
        redis: String,
        /// What went wrong.
        reason: String,
    },
    /// Redis refused a command (for example a missing permission, or scripting disabled).
    #[error("Redis at {redis} refused a presence roster command: {reason}")]
    Refused {
        /// Host and port, without credentials.
        redis: String,
        /// Redis's answer.
        reason: String,
    },
    /// A setting cannot work.
    #[error("invalid Redis roster configuration: {0}")]
    Config(&'static str),
}

/// The state of a node's connection to the roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisRosterStatus {
    /// Subscribed to the roster's events.
    pub connected: bool,
    /// The replica was reloaded after the latest (re)connection.
    pub synced: bool,
    /// How many times the subscription was lost and made again.
    pub reconnects: u64,
}

/// Counters of a [`RedisRoster`], for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisRosterStats {
    /// Events applied to the replica.
    pub events: u64,
    /// Gaps in a topic's versions (each reloaded the topic).
    pub gaps: u64,
    /// Full reloads of the replica.
    pub resyncs: u64,
    /// Times Redis was found to have lost the roster (a new dataset generation).
    pub resets: u64,
    /// Other nodes this node declared dead and removed.
    pub reaped_nodes: u64,
    /// Times this node re-asserted its entries.
    pub reconciles: u64,
    /// Writes of own changes that Redis executed.
    pub writes: u64,
    /// Writes retried after a lost connection.
    pub retries: u64,
    /// Writes waiting in the queue now (see [`RedisRosterConfig::queue_capacity`]).
    pub queued: u64,
    /// Writes dropped from the queue or folded into a re-assert while Redis was away.
    pub coalesced: u64,
}

/// A shared document to write (see the module documentation): the editing layer's drafts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocWrite {
    /// The document's key.
    pub key: String,
    /// Its version (a restore never overwrites a newer one).
    pub version: u64,
    /// When it was written (ms), which with the version identifies it for a conditional removal.
    pub updated_at: u64,
    /// The document.
    pub json: String,
    /// The member and fence the write is made under: Redis accepts it only while that member leads the topic named
    /// like the document with that fence. `None`: not fenced (a restore after Redis lost its data).
    pub fence: Option<(Arc<str>, u64)>,
}

/// Keeps this node's copy of the shared documents.
///
/// Redis numbers every write and removal of a document with a revision that only grows (within a dataset
/// generation), and publishes them in that order, this node's own included. A copy applies a change only if its
/// revision is newer than the copy's, so every node ends with what Redis has, whatever the writes' nodes believed.
pub trait DocSink: Send + Sync + 'static {
    /// A node (`own`: this one) wrote (`Some`) or removed (`None`) version `version` of a document, at revision `rev`.
    fn doc_changed(&self, key: &str, json: Option<&str>, version: u64, rev: u64, own: bool);
    /// Redis refused this node's write of a document (the writer no longer leads) and keeps `json` (`None`: nothing)
    /// at revision `rev`: the copy takes it back, unless it has heard of a newer revision meanwhile.
    fn doc_refused(&self, key: &str, json: Option<&str>, rev: u64);
    /// Every document in Redis after a (re)connection, with its revision; keys in `pending` have writes of this node
    /// on their way and must be left as they are. With `remove_missing` false (Redis lost its data and the documents
    /// are being written back) a local document missing from `docs` is kept.
    fn docs_loaded(&self, docs: Vec<(String, String, u64)>, pending: &HashSet<String>, remove_missing: bool);
    /// This node's documents, to write back after Redis lost its data.
    fn docs_to_restore(&self) -> Vec<DocWrite>;
    /// Redis lost its data: revisions start again, so the copy forgets the ones it has.
    fn docs_reset(&self);
}

/// A node's membership in a Redis-backed presence roster. Use it as the tracker's [`RosterBackend`]; see the module
/// documentation. Dropping it (with the tracker that owns it) stops its tasks without removing its entries, which
/// the other nodes then remove when its lease runs out; [`RedisRoster::retire`] removes them at once.
pub struct RedisRoster {
    node: Arc<Node>,
    /// Never sent on except by [`RedisRoster::halt`]; dropping it (with the roster) also stops the tasks.
    stop: watch::Sender<bool>,
    /// The receivers the tasks take when started.
    start: Mutex<Option<Receivers>>,
}

struct Receivers {
    resync: mpsc::UnboundedReceiver<Resync>,
}

/// What the roster's tasks share.
struct Node {
    /// `<name>~<random>`: a new id per process, so a restarted node never inherits (or refreshes) the lease of its
    /// previous incarnation, whose entries the others must remove.
    id: Arc<str>,
    config: RedisRosterConfig,
    client: Client,
    /// Host and port, for logs.
    redis: String,
    /// The command connection, shared by the writer, the lease task, reloads and checks (a multiplexed connection is
    /// made for that), with the `run_id` of the Redis process it reaches (every script gets it; see [`scripts`]). A
    /// std `Mutex` around a clone-able handle: held only to copy or replace it. `None` after a failure: the next caller
    /// reconnects (and asks the `run_id` again: a restarted or failed-over Redis is always a new connection).
    conn: Mutex<Option<(MultiplexedConnection, Arc<str>)>>,
    /// Serialises reconnecting, so concurrent callers open one connection, not one each. A Tokio mutex: held across
    /// the connect.
    connecting: tokio::sync::Mutex<()>,
    /// Each script's SHA1 as Redis reported it; reloaded after `NOSCRIPT` (a restarted Redis forgot them). A std
    /// `Mutex`: a map lookup per call.
    shas: Mutex<HashMap<Script, String>>,
    /// The dataset generation this node works in. A std `Mutex` (an `Arc<str>` is copied out); changed only together
    /// with the replica's reset, under the tracker's lock (see `adopt_gen`).
    generation: Mutex<Arc<str>>,
    /// The tracker served; set once by `attach`.
    handle: OnceLock<RosterHandle>,
    /// The local copy of the shared documents; weak so the roster never keeps a dropped draft store alive.
    docs: OnceLock<Weak<dyn DocSink>>,
    /// To the writer task: bounded and compacted while Redis is away (see [`queue`]).
    queue: WriteQueue,
    /// To the subscriber task.
    resync: mpsc::UnboundedSender<Resync>,
    /// Numbers own changes as they are submitted (under the tracker's lock), so a re-assert knows which queued changes
    /// its list of entries already includes.
    submitted: AtomicU64,
    /// Documents with writes of this node queued or running, by key. A std `Mutex`: a map update per write.
    pending_docs: Mutex<HashMap<String, u32>>,
    /// When the last successful lease refresh was *sent* (the lease runs from a moment after that). A std `Mutex`
    /// around a copyable instant.
    lease_ok_at: Mutex<Option<Instant>>,
    /// Until when remote entries and documents missing from Redis are kept because Redis lost its data and the nodes
    /// are re-asserting them. A std `Mutex` around a copyable instant.
    reset_until: Mutex<Option<Instant>>,
    halted: AtomicBool,
    status: watch::Sender<RedisRosterStatus>,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    events: AtomicU64,
    gaps: AtomicU64,
    resyncs: AtomicU64,
    resets: AtomicU64,
    reaped_nodes: AtomicU64,
    reconciles: AtomicU64,
    writes: AtomicU64,
    retries: AtomicU64,
}

/// What the subscriber is asked to do besides applying events.
enum Resync {
    /// Reload one topic (a swap did not apply).
    Topic(Arc<str>),
    /// Redis lost its data: reload everything, dropping what was not re-asserted, at this moment.
    Grace(Instant),
}

/// A script's answer.
enum Reply {
    Ok { generation: Arc<str>, payload: String },
    Absent,
    Conflict,
}

/// Why a script did not run.
enum CallError {
    /// The dataset has another generation (Redis lost its data).
    Reset(Arc<str>),
    /// This node was declared dead.
    Reaped,
    /// The connection failed or timed out; retrying may work.
    Conn(String),
    /// Redis refused the URL's credentials: fatal at start; a running node retries like [`CallError::Conn`] (the
    /// operator may be rotating the password).
    Auth(String),
    /// Redis refused; retrying will not help.
    Refused(String),
}

impl CallError {
    fn describe(&self) -> String {
        match self {
            CallError::Reset(generation) => format!("the dataset changed (generation {generation})"),
            CallError::Reaped => "this node was declared dead".to_owned(),
            CallError::Conn(reason) | CallError::Auth(reason) | CallError::Refused(reason) => reason.clone(),
        }
    }

    fn from_redis(error: &RedisError) -> Self {
        if is_auth_failure(error) {
            CallError::Auth(error.to_string())
        } else if is_refusal(error) {
            CallError::Refused(error.to_string())
        } else {
            CallError::Conn(error.to_string())
        }
    }

    /// What setting up the roster reports for this error.
    fn into_setup_error(self, redis: &str) -> RedisRosterError {
        let redis = redis.to_owned();
        match self {
            CallError::Auth(reason) => RedisRosterError::Authentication { redis, reason },
            CallError::Refused(reason) => RedisRosterError::Refused { redis, reason },
            other => RedisRosterError::Unavailable { redis, reason: other.describe() },
        }
    }
}

/// Runs `future`, failing when it fails or takes longer than `limit`.
async fn within<T>(limit: Duration, future: impl Future<Output = Result<T, RedisError>>) -> Result<T, CallError> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(CallError::from_redis(&error)),
        Err(_) => Err(CallError::Conn(format!("no answer within {limit:?}"))),
    }
}

impl RedisRoster {
    /// Connects to the Redis at `redis` (a URL or a [`RedisAddress`]) as a new incarnation of node `node_name`, loads
    /// the scripts, learns (or creates) the dataset generation and takes a lease. Then build the tracker on it
    /// ([`super::Presence::with_backend`]) and call [`RedisRoster::start`]; [`super::Presence::connect_redis`] does all
    /// three.
    ///
    /// # Errors
    /// [`RedisRosterError`] when the URL or settings are invalid, Redis cannot be reached, or it refuses the
    /// credentials ([`RedisRosterError::Authentication`]); there is no retry here.
    pub async fn connect(
        redis: impl Into<RedisAddress>,
        node_name: &str,
        config: RedisRosterConfig,
    ) -> Result<Arc<Self>, RedisRosterError> {
        if node_name.is_empty() {
            return Err(RedisRosterError::Config("the node name is empty"));
        }
        if config.prefix.is_empty() {
            return Err(RedisRosterError::Config("the key prefix is empty"));
        }
        if config.refresh.is_zero() || config.refresh >= config.lease {
            return Err(RedisRosterError::Config("refresh must be shorter than the lease (and not zero)"));
        }
        if config.queue_capacity == 0 {
            return Err(RedisRosterError::Config("queue_capacity must be at least 1"));
        }
        let client = redis.into().client().map_err(RedisRosterError::InvalidUrl)?;
        let redis = client.get_connection_info().addr().to_string();
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let id: Arc<str> = Arc::from(format!("{node_name}~{:012x}", random_u64() & 0xffff_ffff_ffff));
        let node = Arc::new(Node {
            id,
            queue: WriteQueue::new(config.queue_capacity),
            config,
            client,
            redis,
            conn: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            shas: Mutex::new(HashMap::new()),
            generation: Mutex::new(Arc::from("")),
            handle: OnceLock::new(),
            docs: OnceLock::new(),
            resync,
            submitted: AtomicU64::new(0),
            pending_docs: Mutex::new(HashMap::new()),
            lease_ok_at: Mutex::new(None),
            reset_until: Mutex::new(None),
            halted: AtomicBool::new(false),
            status: watch::Sender::new(RedisRosterStatus { connected: false, synced: false, reconnects: 0 }),
            stats: Stats::default(),
        });
        let setup_error = |error: CallError| error.into_setup_error(&node.redis);
        let generation = node.fetch_gen().await.map_err(setup_error)?;
        *lock(&node.generation) = generation;
        node.refresh_lease().await.map_err(setup_error)?;
        tracing::info!(node = %node.id, redis = %node.redis, prefix = %node.config.prefix, "joined the Redis presence roster");
        let (stop, _) = watch::channel(false);
        Ok(Arc::new(RedisRoster { node, stop, start: Mutex::new(Some(Receivers { resync: resync_rx })) }))
    }

    /// Starts the node's tasks (writer, subscriber, lease) once the tracker is attached, and returns when the replica
    /// holds every node's entries.
    ///
    /// # Errors
    /// [`RedisRosterError`] when no tracker is attached, the tasks were started already, or the first load fails.
    pub async fn start(&self) -> Result<(), RedisRosterError> {
        if self.node.handle.get().is_none() {
            return Err(RedisRosterError::Config("start the roster after building the tracker on it"));
        }
        let Some(receivers) = lock(&self.start).take() else {
            return Err(RedisRosterError::Config("the roster was started already"));
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(run_writer(self.node.clone(), self.stop.subscribe()));
        tokio::spawn(run_subscriber(self.node.clone(), receivers.resync, self.stop.subscribe(), ready_tx));
        tokio::spawn(run_lease(self.node.clone(), self.stop.subscribe()));
        let limit = self.node.config.connect_timeout * 3;
        match tokio::time::timeout(limit, ready_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RedisRosterError::Config("the roster was stopped while starting")),
            Err(_) => Err(RedisRosterError::Unavailable {
                redis: self.node.redis.clone(),
                reason: format!("the first load did not finish within {limit:?}"),
            }),
        }
    }

    /// This node's id (`<name>~<random>`), the prefix of its members.
    pub fn node_id(&self) -> &str {
        &self.node.id
    }

    /// The subscription's state now and its changes.
    pub fn status(&self) -> watch::Receiver<RedisRosterStatus> {
        self.node.status.subscribe()
    }

    /// The counters now.
    pub fn stats(&self) -> RedisRosterStats {
        let stats = &self.node.stats;
        RedisRosterStats {
            events: stats.events.load(Ordering::Relaxed),
            gaps: stats.gaps.load(Ordering::Relaxed),
            resyncs: stats.resyncs.load(Ordering::Relaxed),
            resets: stats.resets.load(Ordering::Relaxed),
            reaped_nodes: stats.reaped_nodes.load(Ordering::Relaxed),
            reconciles: stats.reconciles.load(Ordering::Relaxed),
            writes: stats.writes.load(Ordering::Relaxed),
            retries: stats.retries.load(Ordering::Relaxed),
            queued: self.node.queue.len() as u64,
            coalesced: self.node.queue.coalesced(),
        }
    }

    /// The dataset generation this node works in.
    pub fn generation(&self) -> Arc<str> {
        self.node.generation()
    }

    /// Stops the node's tasks at once without touching Redis, as if the process had been killed: its lease runs out
    /// and the other nodes remove its entries. Later changes of this node are not written. Meant for tests and for
    /// simulating failures.
    pub fn halt(&self) {
        self.node.halted.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
        tracing::info!(node = %self.node.id, "halted (its entries stay in Redis until its lease runs out)");
    }

    /// Leaves the cluster in order: writes what is queued, removes every entry of this node from Redis (the other
    /// nodes see them leave at once) and its lease, then stops the tasks.
    ///
    /// # Errors
    /// [`RosterBackendError`] when Redis cannot be reached; the entries then go when the lease runs out.
    pub async fn retire(&self) -> Result<(), RosterBackendError> {
        self.flush().await;
        let result = self.node.call(Script::Retire, &self.node.generation(), &[]).await;
        self.halt();
        result.map(drop).map_err(|error| RosterBackendError(error.describe()))
    }

    /// Keeps `sink` informed of shared documents (the draft store does this).
    pub fn attach_docs(&self, sink: Weak<dyn DocSink>) {
        if self.node.docs.set(sink).is_err() {
            tracing::warn!(node = %self.node.id, "a Redis roster serves one document store; a second one is ignored");
        }
    }

    /// Writes a shared document through (after everything submitted before).
    pub fn put_doc(&self, doc: DocWrite) {
        self.node.doc_pending(&doc.key, true);
        let key = doc.key.clone();
        if !self.node.send(Command::Doc(DocOp::Put(doc))) {
            self.node.doc_pending(&key, false);
            tracing::debug!(node = %self.node.id, "document not written: the roster is stopped");
        }
    }

    /// Removes a shared document if Redis still has that version of it.
    pub fn remove_doc(&self, key: String, version: u64, updated_at: u64) {
        self.node.doc_pending(&key, true);
        if !self.node.send(Command::Doc(DocOp::Remove { key: key.clone(), version, updated_at })) {
            self.node.doc_pending(&key, false);
            tracing::debug!(node = %self.node.id, "document not removed: the roster is stopped");
        }
    }
}

impl std::fmt::Debug for RedisRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRoster")
            .field("node", &self.node.id)
            .field("redis", &self.node.redis)
            .field("prefix", &self.node.config.prefix)
            .finish_non_exhaustive()
    }
}

impl RosterBackend for RedisRoster {
    fn node_id(&self) -> Option<&str> {
        Some(&self.node.id)
    }

    fn attach(&self, handle: RosterHandle) {
        if self.node.handle.set(handle).is_err() {
            tracing::warn!(node = %self.node.id, "a Redis roster serves one tracker; a second attach is ignored");
        }
    }

    fn join<'a>(&'a self, call: JoinCall) -> BoxFuture<'a, Result<JoinOutcome, RosterBackendError>> {
        Box::pin(async move {
            if self.node.halted.load(Ordering::SeqCst) {
                return Err(RosterBackendError("this node left the presence roster".to_owned()));
            }
            let (reply, answer) = oneshot::channel();
            let stopped = || RosterBackendError("the presence roster's writer has stopped".to_owned());
            match self.node.queue.push(Command::Join { call, reply }) {
                Ok(dropped) => self.node.docs_dropped(dropped),
                Err(Refused::Stopped) => return Err(stopped()),
                Err(Refused::Full) => {
                    return Err(RosterBackendError(format!(
                        "Redis at {} is not answering and this node's queue of roster writes is full",
                        self.node.redis
                    )));
                }
            }
            match tokio::time::timeout(self.node.config.join_timeout, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(stopped()),
                Err(_) => Err(RosterBackendError(format!(
                    "Redis at {} did not number the join within {:?}",
                    self.node.redis, self.node.config.join_timeout
                ))),
            }
        })
    }

    fn submit(&self, op: OwnOp) {
        if self.node.halted.load(Ordering::SeqCst) {
            return;
        }
        let seqno = self.node.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.node.send(Command::Own { seqno, op }) {
            tracing::debug!(node = %self.node.id, "change not written: the roster is stopped");
        }
    }

    fn is_healthy(&self) -> bool {
        !self.node.halted.load(Ordering::SeqCst) && self.node.lease_is_fresh()
    }

    fn check_authority<'a>(
        &'a self,
        topic: &'a str,
        authority: &'a Authority,
    ) -> BoxFuture<'a, Result<AuthorityCheck, RosterBackendError>> {
        Box::pin(async move {
            let member = authority.member.as_deref().unwrap_or_default().to_owned();
            let args = [topic.to_owned(), member, authority.fence.to_string()];
            match self.node.call(Script::Check, &authority.generation, &args).await {
                Ok(Reply::Ok { payload, .. }) => {
                    let check: WireCheck = serde_json::from_str(&payload)
                        .map_err(|error| RosterBackendError(format!("unreadable answer from Redis: {error}")))?;
                    let leader_fields = serde_json::from_str::<EntryData>(&check.d).ok().map(|data| data.f);
                    Ok(AuthorityCheck { valid: check.ok, leader_fields })
                }
                // A token from another dataset generation never matches.
                Ok(_) | Err(CallError::Reset(_)) => Ok(AuthorityCheck { valid: false, leader_fields: None }),
                Err(error) => Err(RosterBackendError(error.describe())),
            }
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            if self.node.send(Command::Flush(done)) {
                let _ = tokio::time::timeout(self.node.config.join_timeout, wait).await;
            }
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Node {
    fn generation(&self) -> Arc<str> {
        lock(&self.generation).clone()
    }

    fn handle(&self) -> Option<&RosterHandle> {
        self.handle.get()
    }

    fn docs(&self) -> Option<Arc<dyn DocSink>> {
        self.docs.get().and_then(Weak::upgrade)
    }

    fn doc_pending(&self, key: &str, add: bool) {
        let mut pending = lock(&self.pending_docs);
        if add {
            *pending.entry(key.to_owned()).or_insert(0) += 1;
        } else if let Some(count) = pending.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                pending.remove(key);
            }
        }
    }

    /// Queues a command for the writer; false when it has stopped (a join is queued with [`WriteQueue::push`]).
    fn send(&self, command: Command) -> bool {
        match self.queue.push(command) {
            Ok(dropped) => {
                self.docs_dropped(dropped);
                true
            }
            Err(_) => false,
        }
    }

    /// Document writes the queue dropped (superseded by later ones) are no longer on their way.
    fn docs_dropped(&self, keys: Vec<String>) {
        for key in keys {
            self.doc_pending(&key, false);
        }
    }

    fn lease_is_fresh(&self) -> bool {
        let limit = self.config.lease.mul_f64(0.8);
        lock(&self.lease_ok_at).is_some_and(|at| at.elapsed() < limit)
    }

    fn lease_ok(&self, sent: Instant) {
        let mut at = lock(&self.lease_ok_at);
        if at.is_none_or(|previous| previous < sent) {
            *at = Some(sent);
        }
    }

    /// The command connection and the `run_id` of the Redis process it reaches, made when there is none.
    async fn conn(&self) -> Result<(MultiplexedConnection, Arc<str>), CallError> {
        if let Some(conn) = lock(&self.conn).clone() {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = lock(&self.conn).clone() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.command_timeout));
        let mut conn =
            within(self.config.connect_timeout, self.client.get_multiplexed_async_connection_with_config(&config))
                .await?;
        let info =
            within(self.config.command_timeout, ::redis::cmd("INFO").arg("server").query_async::<String>(&mut conn))
                .await;
        let run_id: Arc<str> = match info {
            Ok(info) => Arc::from(run_id_of(&info).unwrap_or_default()),
            Err(CallError::Refused(reason)) => {
                tracing::warn!(node = %self.id, redis = %self.redis, %reason, "Redis refused INFO: a Redis restored from a snapshot or failed over will not be recognised as a reset");
                Arc::from("")
            }
            Err(error) => return Err(error),
        };
        let pair = (conn, run_id);
        *lock(&self.conn) = Some(pair.clone());
        Ok(pair)
    }

    fn drop_conn(&self) {
        lock(&self.conn).take();
    }

    /// Runs a script (loading it first if Redis does not know it) with `known_gen` as the generation the caller
    /// believes in.
    async fn call(&self, script: Script, known_gen: &str, args: &[String]) -> Result<Reply, CallError> {
        let (mut conn, run_id) = self.conn().await?;
        let mut loaded_now = false;
        loop {
            let cached = lock(&self.shas).get(&script).cloned();
            let sha = match cached {
                Some(sha) => sha,
                None => {
                    let sha: String = within(
                        self.config.command_timeout,
                        ::redis::cmd("SCRIPT").arg("LOAD").arg(script.source()).query_async(&mut conn),
                    )
                    .await
                    .inspect_err(|error| self.on_error(error))?;
                    lock(&self.shas).insert(script, sha.clone());
                    loaded_now = true;
                    sha
                }
            };
            let mut cmd = ::redis::cmd("EVALSHA");
            cmd.arg(&sha)
                .arg(0)
                .arg(&self.config.prefix)
                .arg(known_gen)
                .arg(format!("{:016x}", random_u64()))
                .arg(&*self.id)
                .arg(if script.checks_reaped() { "1" } else { "0" })
                .arg(&*run_id)
                .arg(args);
            let answer = tokio::time::timeout(self.config.command_timeout, cmd.query_async::<Vec<String>>(&mut conn));
            match answer.await {
                Ok(Ok(reply)) => return parse_reply(reply),
                Ok(Err(error)) if error.code() == Some("NOSCRIPT") && !loaded_now => {
                    // Redis restarted and forgot the scripts: load it again, once.
                    lock(&self.shas).remove(&script);
                }
                Ok(Err(error)) => {
                    let error = CallError::from_redis(&error);
                    self.on_error(&error);
                    return Err(error);
                }
                Err(_) => {
                    let error = CallError::Conn(format!("no answer within {:?}", self.config.command_timeout));
                    self.on_error(&error);
                    return Err(error);
                }
            }
        }
    }

    fn on_error(&self, error: &CallError) {
        if matches!(error, CallError::Conn(_) | CallError::Auth(_)) {
            self.drop_conn();
        }
    }

    /// The dataset's generation, created if it has none.
    async fn fetch_gen(&self) -> Result<Arc<str>, CallError> {
        match self.call(Script::Gen, "", &[]).await? {
            Reply::Ok { generation, .. } => Ok(generation),
            _ => Err(CallError::Refused("unexpected answer to the generation check".to_owned())),
        }
    }

    async fn refresh_lease(&self) -> Result<(), CallError> {
        let sent = Instant::now();
        let lease = self.config.lease.as_millis().to_string();
        self.call(Script::Lease, &self.generation(), &[lease]).await?;
        self.lease_ok(sent);
        Ok(())
    }

    /// Switches to a new dataset generation (Redis lost its data): the replica's reset happens under the tracker's
    /// lock together with the switch, so an event of the new generation is never applied to the old versions. Then
    /// the writer re-asserts this node's entries and the subscriber is told when the grace ends. False if `new` is
    /// already the generation.
    fn adopt_gen(&self, new: Arc<str>) -> bool {
        let switch = || {
            let mut generation = lock(&self.generation);
            if *generation == new {
                return false;
            }
            tracing::warn!(node = %self.id, redis = %self.redis, old = %generation, new = %new, "Redis lost the presence roster (restarted or flushed); re-asserting this node's entries");
            *generation = new.clone();
            if let Some(docs) = self.docs() {
                docs.docs_reset();
            }
            true
        };
        let adopted = match self.handle() {
            Some(handle) => handle.begin_reset(switch),
            None => switch(),
        };
        if adopted {
            let until = Instant::now() + self.config.reassert_grace;
            *lock(&self.reset_until) = Some(until);
            self.stats.resets.fetch_add(1, Ordering::Relaxed);
            self.send(Command::Reconcile(Mode::Restore));
            let _ = self.resync.send(Resync::Grace(until));
        }
        adopted
    }

    /// Makes Redis hold exactly this node's live entries; returns the number of the last submitted change the list of
    /// entries includes. Runs on the writer, so no own change is written meanwhile.
    async fn reconcile(&self, mode: Mode) -> Result<u64, CallError> {
        let generation = self.generation();
        let sent = Instant::now();
        self.call(Script::Revive, &generation, &[self.config.lease.as_millis().to_string()]).await?;
        self.lease_ok(sent);
        let Some(handle) = self.handle() else { return Ok(0) };
        let Some((entries, mark)) = handle.own_entries(|| self.submitted.load(Ordering::SeqCst)) else {
            return Ok(0);
        };
        let owned = match self.call(Script::Owned, &generation, &[]).await? {
            Reply::Ok { payload, .. } => {
                serde_json::from_str::<WireStrings>(&payload).map(|list| list.0).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let local: HashSet<&str> = entries.iter().map(|entry| &*entry.member).collect();
        // The drafts of this node's sessions stay as the copy has them until the re-assert is done: a reload running
        // meanwhile must not drop one that Redis lost with this node's entries (see `restore_kept_docs`).
        let _kept = match (mode, self.docs()) {
            (Mode::Restore, _) | (_, None) => PendingDocs::default(),
            (_, Some(docs)) => {
                let topics: HashSet<&str> = entries.iter().map(|entry| &*entry.topic).collect();
                let keys = docs.docs_to_restore().into_iter().map(|doc| doc.key).filter(|key| topics.contains(&**key));
                PendingDocs::hold(self, keys.collect())
            }
        };
        let mut topics: BTreeMap<&str, (Vec<&OwnEntry>, Vec<&str>)> = BTreeMap::new();
        for entry in &entries {
            topics.entry(&entry.topic).or_default().0.push(entry);
        }
        for pair in owned.chunks(2) {
            if let [member, topic] = pair {
                if !local.contains(member.as_str()) {
                    topics.entry(topic).or_default().1.push(member);
                }
            }
        }
        let mut written = 0usize;
        let mut put_back: Vec<&str> = Vec::new();
        for (topic, (mut own, stale)) in topics {
            own.sort_by_key(|entry| entry.seq);
            let listed: Vec<ReconcileEntry<'_>> = own
                .iter()
                .map(|entry| ReconcileEntry {
                    m: &entry.member,
                    s: entry.seq,
                    d: EntryData::encode(&entry.key, &entry.phx_ref, &entry.fields),
                    e: super::is_eligible(&entry.fields),
                    t: entry.tab.as_deref().unwrap_or_default(),
                    x: entry.closing,
                })
                .collect();
            let args = [
                topic.to_owned(),
                mode.as_str().to_owned(),
                serde_json::to_string(&listed).unwrap_or_else(|_| "[]".to_owned()),
                serde_json::to_string(&stale).unwrap_or_else(|_| "[]".to_owned()),
            ];
            if let Reply::Ok { payload, .. } = self.call(Script::Reconcile, &generation, &args).await? {
                let mut counts = payload.split(' ').map(|count| count.parse::<usize>().unwrap_or(0));
                written += counts.next().unwrap_or(0);
                if counts.next().unwrap_or(0) > 0 {
                    put_back.push(topic);
                }
            }
        }
        if mode == Mode::Restore {
            if let Some(docs) = self.docs() {
                for doc in docs.docs_to_restore() {
                    self.call(Script::DocPut, &generation, &doc_args(&doc, self.config.doc_ttl, "restore")).await?;
                }
            }
        } else if !put_back.is_empty() {
            self.restore_kept_docs(&generation, &put_back).await?;
        }
        self.stats.reconciles.fetch_add(1, Ordering::Relaxed);
        tracing::info!(node = %self.id, mode = mode.as_str(), entries = entries.len(), changes = written, "re-asserted this node's presence entries");
        Ok(mark)
    }

    /// After this node put back entries that Redis no longer held (the others declared it dead and removed them, and
    /// with the last editor of a session gone they ended its draft too): writes back the drafts of those sessions
    /// that this node's copy kept (see `on_message` and `full_resync`), unless the session went on elsewhere
    /// meanwhile (Redis has a draft for it, or entries of other nodes). A draft Redis refuses is replaced in the copy
    /// by Redis's (or dropped).
    async fn restore_kept_docs(&self, generation: &str, topics: &[&str]) -> Result<(), CallError> {
        let Some(docs) = self.docs() else { return Ok(()) };
        for doc in docs.docs_to_restore() {
            if !topics.contains(&doc.key.as_str()) {
                continue;
            }
            let args = doc_args(&doc, self.config.doc_ttl, "rejoin");
            let Reply::Ok { payload, .. } = self.call(Script::DocPut, generation, &args).await? else { continue };
            match serde_json::from_str::<WireDocPut>(&payload) {
                Ok(put) if put.ok => {
                    tracing::info!(node = %self.id, key = %doc.key, "wrote back the draft of a session whose editors stayed on this node");
                }
                Ok(put) => docs.doc_refused(&doc.key, (!put.j.is_empty()).then_some(put.j.as_str()), put.r),
                Err(error) => {
                    tracing::warn!(node = %self.id, key = %doc.key, %error, "unreadable answer to a document write")
                }
            }
        }
        Ok(())
    }

    /// Reloads one topic from Redis into the replica.
    async fn resync_topic(&self, topic: &Arc<str>, drop_stale: bool) -> Result<(), CallError> {
        for _ in 0..3 {
            let generation = self.generation();
            match self.call(Script::Snapshot, &generation, &[topic.to_string()]).await {
                Ok(Reply::Ok { generation, payload }) => {
                    let snapshot: WireSnapshot = serde_json::from_str(&payload)
                        .map_err(|error| CallError::Refused(format!("unreadable snapshot: {error}")))?;
                    if let Some(handle) = self.handle() {
                        handle.apply_snapshot(&snapshot.into_snapshot(topic.clone(), &generation), drop_stale);
                    }
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(CallError::Reset(new)) => {
                    self.adopt_gen(new);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Reloads every topic this replica or Redis holds, and the shared documents.
    async fn full_resync(&self, drop_stale: bool) -> Result<(), CallError> {
        let mut topics: BTreeSet<Arc<str>> = BTreeSet::new();
        for _ in 0..3 {
            match self.call(Script::Topics, &self.generation(), &[]).await {
                Ok(Reply::Ok { payload, .. }) => {
                    let list: WireStrings = serde_json::from_str(&payload)
                        .map_err(|error| CallError::Refused(format!("unreadable topic list: {error}")))?;
                    topics.extend(list.0.into_iter().map(Arc::from));
                    break;
                }
                Ok(_) => break,
                Err(CallError::Reset(new)) => {
                    self.adopt_gen(new);
                }
                Err(error) => return Err(error),
            }
        }
        if let Some(handle) = self.handle() {
            topics.extend(handle.topics());
        }
        for topic in &topics {
            self.resync_topic(topic, drop_stale).await?;
        }
        if let Some(docs) = self.docs() {
            if let Reply::Ok { payload, .. } = self.call(Script::Docs, &self.generation(), &[]).await? {
                let list: WireDocs = serde_json::from_str(&payload)
                    .map_err(|error| CallError::Refused(format!("unreadable document list: {error}")))?;
                let mut pending: HashSet<String> = lock(&self.pending_docs).keys().cloned().collect();
                // Sessions whose editors here the others took for gone go on: their drafts stay until re-asserted.
                if let Some(handle) = self.handle() {
                    pending.extend(handle.dropped_topics().iter().map(|topic| topic.to_string()));
                }
                let resetting = lock(&self.reset_until).is_some_and(|until| Instant::now() < until);
                let loaded = list.0.into_iter().map(|doc| (doc.k, doc.j, doc.r)).collect();
                docs.docs_loaded(loaded, &pending, !resetting);
            }
        }
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(node = %self.id, topics = topics.len(), drop_stale, "reloaded the presence replica from Redis");
        Ok(())
    }

    /// Handles one message of the roster's channel.
    async fn on_message(&self, payload: &[u8]) -> Result<(), CallError> {
        let incoming: Incoming = match serde_json::from_slice(payload) {
            Ok(incoming) => incoming,
            Err(error) => {
                tracing::warn!(node = %self.id, %error, "dropped an unreadable message on the presence roster's channel");
                return Ok(());
            }
        };
        if *incoming.generation() != *self.generation() {
            // Either Redis lost its data and another node noticed first, or a late message of an older dataset.
            let current = self.fetch_gen().await?;
            if *current != *incoming.generation() {
                return Ok(());
            }
            self.adopt_gen(current);
        }
        let own = incoming.origin() == &*self.id;
        match incoming {
            Incoming::Roster { t, v, f, ops, a, .. } => {
                let generation = self.generation();
                let event = wire::into_event(t, v, f, ops, a, &generation);
                let Some(handle) = self.handle() else { return Ok(()) };
                match handle.apply_event(&event) {
                    Some(Applied::Changed(_)) => {
                        self.stats.events.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Applied::Gap) => {
                        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(node = %self.id, topic = %event.topic, ver = event.ver, "gap in a topic's events; reloading it");
                        self.resync_topic(&event.topic, false).await?;
                    }
                    None => {}
                }
            }
            Incoming::Doc { k, j, v, r, .. } => {
                if j.is_empty() && !own && self.handle().is_some_and(|handle| handle.holds_dropped(&k)) {
                    // The others took this node's editors of the session for gone and ended its draft; they are still
                    // here, so the copy keeps it, to write it back when they are re-asserted.
                    tracing::info!(node = %self.id, key = %k, "kept the draft of a session whose editors on this node were taken for gone");
                    return Ok(());
                }
                // Own writes too: the copy applies every write in Redis's order (see `DocSink`).
                if let Some(docs) = self.docs() {
                    docs.doc_changed(&k, (!j.is_empty()).then_some(j.as_str()), v.parse().unwrap_or(0), r, own);
                }
            }
        }
        Ok(())
    }
}

/// The `run_id` line of `INFO server`.
fn run_id_of(info: &str) -> Option<&str> {
    info.lines().find_map(|line| line.trim().strip_prefix("run_id:"))
}

fn parse_reply(reply: Vec<String>) -> Result<Reply, CallError> {
    let mut parts = reply.into_iter();
    let status = parts.next().unwrap_or_default();
    let generation: Arc<str> = Arc::from(parts.next().unwrap_or_default());
    let payload = parts.next().unwrap_or_default();
    match status.as_str() {
        "ok" => Ok(Reply::Ok { generation, payload }),
        "absent" => Ok(Reply::Absent),
        "conflict" => Ok(Reply::Conflict),
        "reset" => Err(CallError::Reset(generation)),
        "reaped" => Err(CallError::Reaped),
        other => Err(CallError::Refused(format!("unexpected answer {other:?} from a roster script"))),
    }
}

fn doc_args(doc: &DocWrite, ttl: Duration, mode: &str) -> [String; 8] {
    let (member, fence) = doc.fence.as_ref().map_or((String::new(), 0), |(member, fence)| (member.to_string(), *fence));
    [
        doc.key.clone(),
        doc.version.to_string(),
        doc.updated_at.to_string(),
        doc.json.clone(),
        ttl.as_millis().max(1).to_string(),
        mode.to_owned(),
        member,
        fence.to_string(),
    ]
}

/// Documents counted as having writes of this node on their way (so a reload leaves them as they are) for as long
/// as it lives.
#[derive(Default)]
struct PendingDocs<'a> {
    node: Option<&'a Node>,
    keys: Vec<String>,
}

impl<'a> PendingDocs<'a> {
    fn hold(node: &'a Node, keys: Vec<String>) -> Self {
        for key in &keys {
            node.doc_pending(key, true);
        }
        PendingDocs { node: Some(node), keys }
    }
}

impl Drop for PendingDocs<'_> {
    fn drop(&mut self) {
        if let Some(node) = self.node {
            for key in &self.keys {
                node.doc_pending(key, false);
            }
        }
    }
}

/// The writer's bookkeeping between commands.
struct Writer {
    node: Arc<Node>,
    stopped: watch::Receiver<bool>,
    /// A re-assert to do before the next write.
    reconcile: Option<Mode>,
    /// Own changes numbered up to this are included in the last re-assert: skip them.
    skip_through: u64,
    /// The generation of the last `restore` re-assert: once per generation is enough.
    restored_gen: Option<Arc<str>>,
}

/// One write of the writer.
enum Write<'a> {
    Join(&'a JoinCall),
    Own(&'a OwnOp),
    Doc(&'a DocOp),
}

impl Writer {
    fn stopped(&self) -> bool {
        *self.stopped.borrow() || self.stopped.has_changed().is_err()
    }

    /// Runs `write` until Redis executes it (re-asserting first when needed, retrying lost connections with backoff),
    /// or Redis refuses it. `None` when the roster stopped meanwhile.
    async fn execute(&mut self, write: Write<'_>) -> Option<Result<Reply, String>> {
        let mut backoff = Backoff::new(self.node.config.reconnect_min, self.node.config.reconnect_max);
        let mut attempt = 0u64;
        loop {
            if self.stopped() {
                return None;
            }
            let result = match self.settle().await {
                Ok(()) => self.run(&write).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(reply) => {
                    self.node.stats.writes.fetch_add(1, Ordering::Relaxed);
                    return Some(Ok(reply));
                }
                Err(CallError::Reset(generation)) => {
                    self.node.adopt_gen(generation);
                    self.need(Mode::Restore);
                }
                Err(CallError::Reaped) => {
                    tracing::warn!(node = %self.node.id, "this node was declared dead by the others (its lease ran out); re-asserting its entries");
                    self.need(Mode::Rejoin);
                }
                Err(CallError::Refused(reason)) => {
                    tracing::error!(node = %self.node.id, redis = %self.node.redis, %reason, "Redis refused a presence roster write; it is dropped");
                    return Some(Err(reason));
                }
                Err(CallError::Conn(reason) | CallError::Auth(reason)) => {
                    attempt += 1;
                    self.node.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if attempt % 20 == 1 {
                        tracing::warn!(node = %self.node.id, redis = %self.node.redis, %reason, attempt, "presence roster write failed; retrying");
                    } else {
                        tracing::debug!(node = %self.node.id, %reason, attempt, "presence roster write failed; retrying");
                    }
                    let delay = backoff.next_delay();
                    let mut stopped = self.stopped.clone();
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Asks for a re-assert in `mode` before the next write (a pending one in a stronger mode stays: restoring the
    /// old places after a reset matters more than which of the others it is).
    fn need(&mut self, mode: Mode) {
        self.reconcile = Some(self.reconcile.map_or(mode, |pending| pending.max(mode)));
    }

    /// Does the pending re-assert, if any.
    async fn settle(&mut self) -> Result<(), CallError> {
        let Some(mode) = self.reconcile else { return Ok(()) };
        let generation = self.node.generation();
        let mark = self.node.reconcile(mode).await?;
        self.skip_through = self.skip_through.max(mark);
        self.reconcile = None;
        if mode == Mode::Restore {
            self.restored_gen = Some(generation);
        }
        Ok(())
    }

    async fn run(&self, write: &Write<'_>) -> Result<Reply, CallError> {
        let node = &self.node;
        let generation = node.generation();
        match write {
            Write::Join(call) => {
                // The replica may have advanced since `track` was called (in a join storm, by many events): ask for
                // what it misses now, not then.
                let (known_ver, floor) = node.handle().map_or((call.known_ver, call.floor), |handle| {
                    let (ver, max_seq) = handle.topic_position(&call.topic);
                    (ver.max(call.known_ver), max_seq.max(call.floor))
                });
                let args = [
                    call.topic.to_string(),
                    call.member.to_string(),
                    EntryData::encode(&call.key, &call.phx_ref, &call.fields),
                    if call.eligible { "1" } else { "0" }.to_owned(),
                    call.tab.as_deref().unwrap_or_default().to_owned(),
                    floor.to_string(),
                    known_ver.to_string(),
                ];
                node.call(Script::Join, &generation, &args).await
            }
            Write::Own(OwnOp::Leave { topic, member }) => {
                node.call(Script::Leave, &generation, &[topic.to_string(), member.to_string()]).await
            }
            Write::Own(OwnOp::Close { topic, member, tab }) => {
                node.call(Script::Close, &generation, &[topic.to_string(), member.to_string(), tab.to_string()]).await
            }
            Write::Own(OwnOp::Update { topic, member, key, phx_ref, fields, eligible }) => {
                let args = [
                    topic.to_string(),
                    member.to_string(),
                    EntryData::encode(key, phx_ref, fields),
                    if *eligible { "1" } else { "0" }.to_owned(),
                ];
                node.call(Script::Update, &generation, &args).await
            }
            Write::Own(OwnOp::Swap { topic, first, second }) => {
                let args = [
                    topic.to_string(),
                    first.0.to_string(),
                    first.1.to_string(),
                    second.0.to_string(),
                    second.1.to_string(),
                ];
                node.call(Script::Swap, &generation, &args).await
            }
            Write::Doc(DocOp::Put(doc)) => {
                node.call(Script::DocPut, &generation, &doc_args(doc, node.config.doc_ttl, "put")).await
            }
            Write::Doc(DocOp::Remove { key, version, updated_at }) => {
                let args = [key.clone(), version.to_string(), updated_at.to_string()];
                node.call(Script::DocDel, &generation, &args).await
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Flush(done) => {
                let _ = done.send(());
            }
            Command::Reconcile(mode) => {
                // A reset's re-assert may be done already: a write met the new generation first and re-asserted.
                let done = mode == Mode::Restore && self.restored_gen.as_deref() == Some(&*self.node.generation());
                if !done {
                    self.need(mode);
                    let _ = self.execute_settle_only().await;
                }
            }
            Command::Sync { reload } => {
                self.need(Mode::Sync);
                if self.execute_settle_only().await.is_some() {
                    for topic in reload {
                        let _ = self.node.resync.send(Resync::Topic(topic));
                    }
                }
            }
            Command::Own { seqno, op } => {
                if seqno > self.skip_through {
                    if let Some(Ok(Reply::Conflict)) = self.execute(Write::Own(&op)).await {
                        if let OwnOp::Swap { topic, .. } = op {
                            tracing::debug!(node = %self.node.id, %topic, "a swap met a concurrent change; reloading the topic");
                            let _ = self.node.resync.send(Resync::Topic(topic));
                        }
                    }
                }
            }
            Command::Doc(op) => {
                let key = match &op {
                    DocOp::Put(doc) => doc.key.clone(),
                    DocOp::Remove { key, .. } => key.clone(),
                };
                let result = self.execute(Write::Doc(&op)).await;
                if let (DocOp::Put(_), Some(Ok(Reply::Ok { payload, .. }))) = (&op, result) {
                    match serde_json::from_str::<WireDocPut>(&payload) {
                        Ok(put) if !put.ok => {
                            tracing::debug!(node = %self.node.id, %key, "Redis refused a document write: the writer no longer leads");
                            if let Some(docs) = self.node.docs() {
                                docs.doc_refused(&key, (!put.j.is_empty()).then_some(put.j.as_str()), put.r);
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(node = %self.node.id, %key, %error, "unreadable answer to a document write")
                        }
                    }
                }
                self.node.doc_pending(&key, false);
            }
            Command::Join { call, reply } => {
                if reply.is_closed() {
                    return;
                }
                let outcome = match self.execute(Write::Join(&call)).await {
                    None => return,
                    Some(Ok(Reply::Ok { generation, payload })) => match serde_json::from_str::<WireJoin>(&payload) {
                        Ok(join) => Ok(join.into_outcome(&generation)),
                        Err(error) => Err(RosterBackendError(format!("unreadable answer from Redis: {error}"))),
                    },
                    Some(Ok(_)) => Err(RosterBackendError("unexpected answer from Redis to a join".to_owned())),
                    Some(Err(reason)) => Err(RosterBackendError(reason)),
                };
                let joined = outcome.is_ok();
                if reply.send(outcome).is_err() && joined {
                    // The caller gave up waiting: take the entry out again.
                    let leave = OwnOp::Leave { topic: call.topic.clone(), member: call.member.clone() };
                    let _ = self.execute(Write::Own(&leave)).await;
                }
            }
        }
    }

    /// Runs only the pending re-assert, with the same retries as a write.
    async fn execute_settle_only(&mut self) -> Option<()> {
        let mut backoff = Backoff::new(self.node.config.reconnect_min, self.node.config.reconnect_max);
        loop {
            if self.stopped() {
                return None;
            }
            match self.settle().await {
                Ok(()) => return Some(()),
                Err(CallError::Reset(generation)) => {
                    self.node.adopt_gen(generation);
                    self.need(Mode::Restore);
                }
                Err(CallError::Reaped) => self.need(Mode::Rejoin),
                Err(CallError::Refused(reason)) => {
                    tracing::error!(node = %self.node.id, %reason, "Redis refused to re-assert this node's entries");
                    self.reconcile = None;
                    return None;
                }
                Err(CallError::Conn(reason) | CallError::Auth(reason)) => {
                    tracing::debug!(node = %self.node.id, %reason, "re-assert failed; retrying");
                    let delay = backoff.next_delay();
                    let mut stopped = self.stopped.clone();
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// Writes this node's changes in the order they were made.
async fn run_writer(node: Arc<Node>, stopped: watch::Receiver<bool>) {
    let mut writer = Writer { node, stopped, reconcile: None, skip_through: 0, restored_gen: None };
    loop {
        let mut stopped = writer.stopped.clone();
        let command = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            command = writer.node.queue.pop() => match command {
                Some(command) => command,
                None => break,
            },
        };
        if writer.stopped() {
            break;
        }
        writer.handle(command).await;
    }
    writer.node.queue.close();
    tracing::debug!(node = %writer.node.id, "presence roster writer stopped");
}

/// Refreshes the lease and reaps dead nodes, every `refresh`.
async fn run_lease(node: Arc<Node>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(node.config.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        if *stopped.borrow() {
            break;
        }
        match node.refresh_lease().await {
            Ok(()) => {}
            Err(CallError::Reset(generation)) => {
                node.adopt_gen(generation);
            }
            Err(CallError::Reaped) => {
                tracing::warn!(node = %node.id, "this node was declared dead by the others (its lease ran out); re-asserting its entries");
                node.send(Command::Reconcile(Mode::Rejoin));
            }
            Err(error) => {
                tracing::debug!(node = %node.id, reason = %error.describe(), "could not refresh the lease");
                continue;
            }
        }
        match node.call(Script::Reap, &node.generation(), &[]).await {
            Ok(Reply::Ok { payload, .. }) => {
                let reaped: u64 = payload.parse().unwrap_or(0);
                if reaped > 0 {
                    node.stats.reaped_nodes.fetch_add(reaped, Ordering::Relaxed);
                    tracing::info!(node = %node.id, reaped, "removed the presence entries of nodes whose lease ran out");
                }
            }
            Ok(_) => {}
            Err(CallError::Reset(generation)) => {
                node.adopt_gen(generation);
            }
            Err(error) => tracing::debug!(node = %node.id, reason = %error.describe(), "could not look for dead nodes"),
        }
    }
    tracing::debug!(node = %node.id, "presence roster lease task stopped");
}

/// Why the subscriber stopped serving one connection.
enum Ended {
    Shutdown,
    Lost(String),
}

async fn subscribe(node: &Node) -> Result<(PubSubSink, PubSubStream), CallError> {
    let pubsub = within(node.config.connect_timeout, node.client.get_async_pubsub()).await?;
    let (mut sink, stream) = pubsub.split();
    within(node.config.command_timeout, sink.subscribe(format!("{}:events", node.config.prefix))).await?;
    Ok((sink, stream))
}

/// Applies the roster's events to the replica, reloading it after every (re)connection.
async fn run_subscriber(
    node: Arc<Node>,
    mut resync: mpsc::UnboundedReceiver<Resync>,
    mut stopped: watch::Receiver<bool>,
    ready: oneshot::Sender<Result<(), RedisRosterError>>,
) {
    let mut ready = Some(ready);
    let mut reconnects = 0u64;
    let mut grace: Option<Instant> = None;
    let mut backoff = Backoff::new(node.config.reconnect_min, node.config.reconnect_max);
    loop {
        let connected = async {
            let (sink, stream) = subscribe(&node).await?;
            node.full_resync(false).await?;
            Ok::<_, CallError>((sink, stream))
        };
        let (mut sink, mut stream) = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            result = connected => match result {
                Ok(pair) => pair,
                Err(error) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(error.into_setup_error(&node.redis)));
                        return;
                    }
                    tracing::debug!(node = %node.id, reason = %error.describe(), "could not resubscribe to the presence roster yet");
                    let delay = backoff.next_delay();
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            },
        };
        backoff = Backoff::new(node.config.reconnect_min, node.config.reconnect_max);
        node.status.send_replace(RedisRosterStatus { connected: true, synced: true, reconnects });
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        } else {
            tracing::info!(node = %node.id, redis = %node.redis, reconnects, "resubscribed to the presence roster and reloaded it");
        }
        let ended = serve(&node, &mut sink, &mut stream, &mut resync, &mut stopped, &mut grace).await;
        match ended {
            Ended::Shutdown => break,
            Ended::Lost(reason) => {
                reconnects += 1;
                node.status.send_replace(RedisRosterStatus { connected: false, synced: false, reconnects });
                tracing::warn!(node = %node.id, redis = %node.redis, %reason, "lost the presence roster subscription; reconnecting");
            }
        }
    }
    node.status.send_modify(|status| status.connected = false);
    tracing::debug!(node = %node.id, "presence roster subscriber stopped");
}

/// Serves one subscribed connection until it is lost or no longer needed.
async fn serve(
    node: &Node,
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    resync: &mut mpsc::UnboundedReceiver<Resync>,
    stopped: &mut watch::Receiver<bool>,
    grace: &mut Option<Instant>,
) -> Ended {
    let start = Instant::now() + node.config.ping_interval;
    let mut ping = tokio::time::interval_at(start, node.config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let grace_end = grace.unwrap_or(far);
        tokio::select! {
            biased;
            _ = stopped.changed() => return Ended::Shutdown,
            request = resync.recv() => match request {
                Some(Resync::Topic(topic)) => {
                    if let Err(error) = node.resync_topic(&topic, false).await {
                        return Ended::Lost(error.describe());
                    }
                }
                Some(Resync::Grace(deadline)) => *grace = Some(grace.map_or(deadline, |current| current.max(deadline))),
                None => return Ended::Shutdown,
            },
            message = stream.next() => match message {
                Some(message) => {
                    if let Err(error) = node.on_message(message.get_payload_bytes()).await {
                        return Ended::Lost(error.describe());
                    }
                }
                None => return Ended::Lost("connection closed".to_owned()),
            },
            _ = tokio::time::sleep_until(grace_end), if grace.is_some() => {
                *grace = None;
                if let Err(error) = node.full_resync(true).await {
                    // Try again after reconnecting; keep the grace so stale entries still go.
                    *grace = Some(Instant::now());
                    return Ended::Lost(error.describe());
                }
            }
            _ = ping.tick() => {
                if node.handle().is_some_and(|handle| !handle.is_alive()) {
                    return Ended::Shutdown;
                }
                if let Err(error) = within(node.config.command_timeout, sink.ping::<::redis::Value>()).await {
                    return Ended::Lost(format!("PING failed: {}", error.describe()));
                }
            }
        }
    }
}
