//! The writer's queue: this node's writes to the roster, in the order they were made, bounded.
//!
//! While Redis is reachable the queue is nearly empty: the writer executes each command as soon as it is queued. While
//! Redis is away the writer retries the command at the head and everything else waits, so without a bound a node
//! whose pages keep joining, leaving and updating would grow the queue for as long as the outage lasts. What matters
//! for Redis, though, is only the *latest* state of each of this node's entries, which the tracker holds anyway. So
//! once [`RedisRosterConfig::queue_capacity`](super::RedisRosterConfig::queue_capacity) commands wait, the queue is
//! compacted:
//!
//! - every queued change of an own entry (leave, close, update, swap) is folded into one **sync**: a re-assert that
//!   writes the current state of every own entry (the same step that follows a reset or a reap, see
//!   `Node::reconcile`), placed where the first of them was. Until the writer starts it, later changes of own entries
//!   are not queued at all: the sync will write them too. A swap folded in this way is not replayed (the tracker does
//!   not remember which places it exchanged): the topic is reloaded after the sync, so a take-over made while Redis was
//!   away and the queue overflowed is undone rather than left different on this node than everywhere else;
//! - of the writes of one shared document, a write followed by another write of the same document, with no
//!   removal in between, is dropped: the later one carries the whole document;
//! - joins whose caller gave up waiting, and flushes nobody waits for any more, are dropped.
//!
//! Past the capacity after compacting, a join fails at once (the caller is told Redis is unavailable), and document
//! writes and the rarer commands are still queued. As long as a document's user writes it only while its topic has
//! members of this node and removes it when the topic empties, there are at most three per document (write, removal,
//! write: writing after the removal needs a new member, whose join needs Redis), so the queue stays within the capacity
//! plus a few commands per document however long Redis is away.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, oneshot};

use super::docs::DocWrite;
use crate::presence::backend::{JoinCall, OwnOp, RosterBackendError};
use crate::presence::replica::JoinOutcome;

/// What the writer does, one at a time, in order.
pub(super) enum Command {
    Join {
        call: JoinCall,
        reply: oneshot::Sender<Result<JoinOutcome, RosterBackendError>>,
    },
    Own {
        seqno: u64,
        op: OwnOp,
    },
    Doc(DocOp),
    Reconcile(Mode),
    /// Own changes folded together (see the module documentation): re-assert every own entry as it is now, then
    /// reload these topics, whose swaps were folded in.
    Sync {
        reload: BTreeSet<std::sync::Arc<str>>,
    },
    Flush(oneshot::Sender<()>),
}

pub(super) enum DocOp {
    Put(DocWrite),
    Remove { key: String, version: u64, updated_at: u64 },
}

impl DocOp {
    pub(super) fn key(&self) -> &str {
        match self {
            DocOp::Put(doc) => &doc.key,
            DocOp::Remove { key, .. } => key,
        }
    }
}

/// How a node re-asserts its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Mode {
    /// Own changes were folded together while Redis was away: entries Redis lacks go to the back (as `Rejoin`).
    Sync,
    /// This node was declared dead: entries go to the back, in their old order.
    Rejoin,
    /// Redis lost its data: entries go back to their old seqs, so the order is unchanged.
    Restore,
}

impl Mode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Restore => "restore",
            Mode::Rejoin => "rejoin",
        }
    }
}

/// Why a command was not queued.
pub(super) enum Refused {
    /// The writer has stopped.
    Stopped,
    /// The queue is full even after compacting (only joins are refused so).
    Full,
}

/// The writer's queue. See the module documentation.
pub(super) struct WriteQueue {
    /// A std `Mutex`: pushes come from synchronous code (under the tracker's lock) and every critical section is a
    /// few deque operations, or one pass over at most `capacity` commands when compacting.
    inner: Mutex<Inner>,
    /// Wakes the writer when a command is queued (a permit is kept if it is not waiting).
    ready: Notify,
    capacity: usize,
    /// Commands dropped or folded into a sync, for the stats.
    coalesced: AtomicU64,
}

#[derive(Default)]
struct Inner {
    commands: VecDeque<Command>,
    /// A sync is queued and not started: changes of own entries need no command of their own.
    sync_queued: bool,
    /// The writer stopped: nothing is queued any more.
    closed: bool,
}

impl WriteQueue {
    pub(super) fn new(capacity: usize) -> Self {
        WriteQueue { inner: Mutex::new(Inner::default()), ready: Notify::new(), capacity, coalesced: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `command` (see the module documentation for what happens past the capacity). Documents whose writes
    /// were dropped while compacting are returned, so their count of pending writes can be lowered.
    ///
    /// # Errors
    /// [`Refused`] when the writer stopped, or for a join when the queue is full.
    pub(super) fn push(&self, command: Command) -> Result<Vec<String>, Refused> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(Refused::Stopped);
        }
        let mut dropped_docs = Vec::new();
        if let Command::Own { op, .. } = &command {
            if inner.sync_queued {
                self.coalesced.fetch_add(1, Ordering::Relaxed);
                if let OwnOp::Swap { topic, .. } = op {
                    add_reload(&mut inner.commands, topic.clone());
                }
                return Ok(dropped_docs);
            }
        }
        if inner.commands.len() >= self.capacity {
            dropped_docs = self.compact(&mut inner);
            match command {
                Command::Join { .. } if inner.commands.len() >= self.capacity => return Err(Refused::Full),
                Command::Own { op, .. } => {
                    // Past the capacity a change of an own entry is written by a sync, which the compaction queued if
                    // any own change was waiting; otherwise one is queued now.
                    self.coalesced.fetch_add(1, Ordering::Relaxed);
                    if !inner.sync_queued {
                        inner.commands.push_back(Command::Sync { reload: BTreeSet::new() });
                        inner.sync_queued = true;
                    }
                    if let OwnOp::Swap { topic, .. } = op {
                        add_reload(&mut inner.commands, topic);
                    }
                    drop(inner);
                    self.ready.notify_one();
                    return Ok(dropped_docs);
                }
                command => inner.commands.push_back(command),
            }
        } else {
            inner.commands.push_back(command);
        }
        drop(inner);
        self.ready.notify_one();
        Ok(dropped_docs)
    }

    /// The next command, waiting for one. `None` once closed.
    pub(super) async fn pop(&self) -> Option<Command> {
        loop {
            {
                let mut inner = self.lock();
                if let Some(command) = inner.commands.pop_front() {
                    if let Command::Sync { .. } = command {
                        inner.sync_queued = false;
                    }
                    return Some(command);
                }
                if inner.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// Stops queueing and drops what waits (the writer stopped).
    pub(super) fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.commands.clear();
        inner.sync_queued = false;
    }

    /// Commands waiting now.
    pub(super) fn len(&self) -> usize {
        self.lock().commands.len()
    }

    /// Commands dropped or folded into a sync so far.
    pub(super) fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    /// Folds the queue (see the module documentation); returns the keys of the document writes dropped.
    fn compact(&self, inner: &mut Inner) -> Vec<String> {
        let before = inner.commands.len();
        let mut kept: VecDeque<Command> = VecDeque::with_capacity(before);
        let mut sync: Option<usize> = None;
        let mut reload: BTreeSet<std::sync::Arc<str>> = BTreeSet::new();
        for command in inner.commands.drain(..) {
            match command {
                Command::Own { op, .. } => {
                    if let OwnOp::Swap { topic, .. } = op {
                        reload.insert(topic);
                    }
                    if sync.is_none() {
                        sync = Some(kept.len());
                        kept.push_back(Command::Sync { reload: BTreeSet::new() });
                    }
                }
                Command::Sync { reload: topics } => {
                    reload.extend(topics);
                    if sync.is_none() {
                        sync = Some(kept.len());
                        kept.push_back(Command::Sync { reload: BTreeSet::new() });
                    }
                }
                Command::Join { reply, .. } if reply.is_closed() => {}
                Command::Flush(done) if done.is_closed() => {}
                command => kept.push_back(command),
            }
        }
        if let Some(Command::Sync { reload: topics }) = sync.and_then(|at| kept.get_mut(at)) {
            *topics = reload;
        }
        // A document write followed by another write of the same document (no removal in between) is superseded.
        let mut later_put: HashMap<String, bool> = HashMap::new();
        let mut dropped_docs = Vec::new();
        let mut folded: VecDeque<Command> = VecDeque::with_capacity(kept.len());
        while let Some(command) = kept.pop_back() {
            if let Command::Doc(op) = &command {
                let superseded = later_put.get(op.key()).copied().unwrap_or(false);
                let is_put = matches!(op, DocOp::Put(_));
                later_put.insert(op.key().to_owned(), is_put);
                if is_put && superseded {
                    dropped_docs.push(op.key().to_owned());
                    continue;
                }
            }
            folded.push_front(command);
        }
        inner.commands = folded;
        inner.sync_queued = sync.is_some();
        self.coalesced.fetch_add(before.saturating_sub(inner.commands.len()) as u64, Ordering::Relaxed);
        tracing::debug!(before, after = inner.commands.len(), "compacted the presence roster's write queue");
        dropped_docs
    }
}

/// Adds `topic` to the reload list of the queued sync.
fn add_reload(commands: &mut VecDeque<Command>, topic: std::sync::Arc<str>) {
    if let Some(Command::Sync { reload }) = commands.iter_mut().find(|command| matches!(command, Command::Sync { .. }))
    {
        reload.insert(topic);
    }
}
