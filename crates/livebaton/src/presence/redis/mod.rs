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
//! Meanwhile its replica keeps those entries (marked stale), and its copy keeps the documents of their topics even if
//! the survivors, seeing the topics empty, removed them; once the entries are back it writes those documents back,
//! unless the topic went on elsewhere (see [`docs`]).
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
//! Redis keeps each topic's leader (its first entry that may lead, see [`super::TrackOptions::may_lead`]) and a fence drawn from a
//! counter that only grows, changed whenever the leader changes, in the same script as the change. Events carry it, so
//! each replica knows the leader and fence as of the last event ([`super::Presence::authority`]). The editing layer's
//! tokens include them; `verify` compares them with the replica (and refuses when the lease is stale), and
//! `verify_with_authority` asks Redis atomically ([`RosterBackend::check_authority`]: same generation, same leader,
//! same fence, leader's node lease alive).
//!
//! # Shared documents
//!
//! The roster also carries small documents keyed by string, each belonging to the topic of the same name: a node
//! writes them through its writer (`P:doc:<key>`, TTL [`RedisRosterConfig::doc_ttl`]), the script publishes them on
//! the same channel, and every node's [`DocSink`] keeps a local copy, applying changes in the order of the revisions
//! Redis gives them. A write can be fenced by its topic: Redis accepts it only from that topic's current leader. After
//! Redis lost its data, nodes write their copies back unless Redis already has a newer version. See [`docs`].
//!
//! # Files
//!
//! [`config`] (settings, errors, status, counters), [`node`] (what the tasks share; the lease task), [`call`] (running
//! scripts), [`scripts`] (the Lua side and the data layout), [`wire`] (the JSON they answer and publish), [`writer`]
//! and its [`queue`], [`reassert`], [`subscriber`], [`docs`]. The Redis plumbing (connections, timeouts, reconnecting,
//! the subscriber loop) is the engine's shared Redis link.

mod call;
mod config;
mod docs;
mod node;
mod queue;
mod reassert;
mod scripts;
mod subscriber;
mod wire;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot, watch};

use self::call::{CallError, Reply};
pub use self::config::{RedisRosterConfig, RedisRosterError, RedisRosterStats, RedisRosterStatus};
pub use self::docs::{DocSink, DocWrite};
use self::node::{Node, Stats, lock, run_lease};
use self::queue::{Command, Refused, WriteQueue};
use self::scripts::Script;
use self::subscriber::{Resync, run_subscriber};
use self::wire::{CheckAnswer, EntryData};
use self::writer::run_writer;
use super::backend::{AuthorityCheck, BoxFuture, JoinCall, OwnOp, RosterBackend, RosterBackendError};
use super::replica::JoinOutcome;
use super::{Authority, RosterHandle};
use crate::RedisAddress;
use crate::redis_link::{Link, SharedConnection, random_u64};

/// A node's membership in a Redis-backed presence roster: the authority for order of a tracker built with
/// [`super::Presence::connect_redis`] (or of an [`crate::Engine::with_redis`]); see the module documentation. Dropping it (with the tracker that owns it) stops its tasks without removing its entries, which
/// the other nodes then remove when its lease runs out; [`RedisRoster::retire`] removes them at once.
pub struct RedisRoster {
    node: Arc<Node>,
    /// Never sent on except by [`RedisRoster::halt`]; dropping it (with the roster) also stops the tasks.
    stop: watch::Sender<bool>,
    /// The receivers the tasks take when started.
    start: Mutex<Option<Receivers>>,
}

/// The receivers the tasks take when started.
struct Receivers {
    resync: mpsc::UnboundedReceiver<Resync>,
}

impl RedisRoster {
    /// Connects to the Redis at `redis` (a URL or a [`RedisAddress`]) as a new incarnation of node `node_name`, loads
    /// the scripts, learns (or creates) the dataset generation and takes a lease. A tracker is then built on it and
    /// [`RedisRoster::start`] is called: [`super::Presence::connect_redis`] does all three.
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
        config.check()?;
        let link = Link::new(&redis.into(), config.link()).map_err(RedisRosterError::InvalidUrl)?;
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let id: Arc<str> = Arc::from(format!("{node_name}~{:012x}", random_u64() & 0xffff_ffff_ffff));
        let node = Arc::new(Node {
            id,
            queue: WriteQueue::new(config.queue_capacity),
            config,
            link,
            conn: SharedConnection::new(),
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
        let setup_error = |error: CallError| error.into_setup_error(node.link.redis());
        let generation = node.fetch_gen().await.map_err(setup_error)?;
        *lock(&node.generation) = generation;
        node.refresh_lease().await.map_err(setup_error)?;
        tracing::info!(node = %node.id, redis = %node.link.redis(), prefix = %node.config.prefix, "joined the Redis presence roster");
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
                redis: self.node.link.redis().to_owned(),
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
}

impl std::fmt::Debug for RedisRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRoster")
            .field("node", &self.node.id)
            .field("redis", &self.node.link.redis())
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
                        self.node.link.redis()
                    )));
                }
            }
            match tokio::time::timeout(self.node.config.join_timeout, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(stopped()),
                Err(_) => Err(RosterBackendError(format!(
                    "Redis at {} did not number the join within {:?}",
                    self.node.link.redis(),
                    self.node.config.join_timeout
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
                    let check: CheckAnswer = serde_json::from_str(&payload)
                        .map_err(|error| RosterBackendError(format!("unreadable answer from Redis: {error}")))?;
                    let leader_fields =
                        serde_json::from_str::<EntryData>(&check.leader_data).ok().map(|data| data.fields);
                    Ok(AuthorityCheck { valid: check.valid, leader_fields })
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
