//! What a node's roster tasks share ([`Node`]): its identity, its dataset generation, its lease, and the task that
//! keeps the lease and reaps dead nodes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use ::redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::RedisRosterStatus;
use super::call::{CallError, Reply};
use super::config::RedisRosterConfig;
use super::docs::DocSink;
use super::queue::{Command, Mode, WriteQueue};
use super::scripts::Script;
use super::subscriber::Resync;
use crate::presence::RosterHandle;
use crate::redis_link::{Link, SharedConnection};

/// What the roster's tasks share.
pub(super) struct Node {
    /// `<name>~<random>`: a new id per process, so a restarted node never inherits (or refreshes) the lease of its
    /// previous incarnation, whose entries the others must remove.
    pub(super) id: Arc<str>,
    pub(super) config: RedisRosterConfig,
    pub(super) link: Link,
    /// The command connection, shared by the writer, the lease task, reloads and checks, with the `run_id` of the
    /// Redis process it reaches (every script gets it; see [`super::scripts`]). Replaced after a failure, and the
    /// `run_id` asked again: a restarted or failed-over Redis is always a new connection.
    pub(super) conn: SharedConnection<(MultiplexedConnection, Arc<str>)>,
    /// Each script's SHA1 as Redis reported it; reloaded after `NOSCRIPT` (a restarted Redis forgot them). A std
    /// `Mutex`: a map lookup per call.
    pub(super) shas: Mutex<HashMap<Script, String>>,
    /// The dataset generation this node works in. A std `Mutex` (an `Arc<str>` is copied out); changed only together
    /// with the replica's reset, under the tracker's lock (see [`Node::adopt_gen`]).
    pub(super) generation: Mutex<Arc<str>>,
    /// The tracker served; set once by `attach`.
    pub(super) handle: OnceLock<RosterHandle>,
    /// This node's copy of the shared documents; weak so the roster never keeps a dropped copy alive.
    pub(super) docs: OnceLock<Weak<dyn DocSink>>,
    /// To the writer task: bounded and compacted while Redis is away (see [`super::queue`]).
    pub(super) queue: WriteQueue,
    /// To the subscriber task.
    pub(super) resync: mpsc::UnboundedSender<Resync>,
    /// Numbers own changes as they are submitted (under the tracker's lock), so a re-assert knows which queued changes
    /// its list of entries already includes.
    pub(super) submitted: AtomicU64,
    /// Documents with writes of this node queued or running, by key. A std `Mutex`: a map update per write.
    pub(super) pending_docs: Mutex<HashMap<String, u32>>,
    /// When the last successful lease refresh was *sent* (the lease runs from a moment after that). A std `Mutex`
    /// around a copyable instant.
    pub(super) lease_ok_at: Mutex<Option<Instant>>,
    /// Until when remote entries and documents missing from Redis are kept because Redis lost its data and the nodes
    /// are re-asserting them. A std `Mutex` around a copyable instant.
    pub(super) reset_until: Mutex<Option<Instant>>,
    /// Set by [`super::RedisRoster::halt`]: nothing is written any more.
    pub(super) halted: AtomicBool,
    pub(super) status: watch::Sender<RedisRosterStatus>,
    pub(super) stats: Stats,
}

/// The counters of [`super::RedisRosterStats`] that the tasks count.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) events: AtomicU64,
    pub(super) gaps: AtomicU64,
    pub(super) resyncs: AtomicU64,
    pub(super) resets: AtomicU64,
    pub(super) reaped_nodes: AtomicU64,
    pub(super) reconciles: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) retries: AtomicU64,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Node {
    pub(super) fn generation(&self) -> Arc<str> {
        lock(&self.generation).clone()
    }

    pub(super) fn handle(&self) -> Option<&RosterHandle> {
        self.handle.get()
    }

    /// Queues a command for the writer; false when it has stopped (a join is queued with [`WriteQueue::push`]).
    pub(super) fn send(&self, command: Command) -> bool {
        match self.queue.push(command) {
            Ok(dropped) => {
                self.docs_dropped(dropped);
                true
            }
            Err(_) => false,
        }
    }

    pub(super) fn lease_is_fresh(&self) -> bool {
        let limit = self.config.lease.mul_f64(0.8);
        lock(&self.lease_ok_at).is_some_and(|at| at.elapsed() < limit)
    }

    pub(super) fn lease_ok(&self, sent: Instant) {
        let mut at = lock(&self.lease_ok_at);
        if at.is_none_or(|previous| previous < sent) {
            *at = Some(sent);
        }
    }

    /// The dataset's generation, created if it has none.
    pub(super) async fn fetch_gen(&self) -> Result<Arc<str>, CallError> {
        match self.call(Script::Gen, "", &[]).await? {
            Reply::Ok { generation, .. } => Ok(generation),
            _ => Err(CallError::Refused("unexpected answer to the generation check".to_owned())),
        }
    }

    pub(super) async fn refresh_lease(&self) -> Result<(), CallError> {
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
    pub(super) fn adopt_gen(&self, new: Arc<str>) -> bool {
        let switch = || {
            let mut generation = lock(&self.generation);
            if *generation == new {
                return false;
            }
            tracing::warn!(node = %self.id, redis = %self.link.redis(), old = %generation, new = %new, "Redis lost the presence roster (restarted or flushed); re-asserting this node's entries");
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
}

/// Refreshes the lease and reaps dead nodes, every `refresh`.
pub(super) async fn run_lease(node: Arc<Node>, mut stopped: watch::Receiver<bool>) {
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
