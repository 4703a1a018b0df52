//! The writer task: this node's writes to the roster (joins, changes of its own entries, shared documents), one at a
//! time in the order they were made, each retried until Redis executes or refuses it. A re-assert of the node's
//! entries ([`Node::reconcile`]) runs first whenever one is needed (Redis lost its data, the node was declared dead,
//! or the queue folded its changes together).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::call::{CallError, Reply};
use super::docs::doc_args;
use super::node::Node;
use super::queue::{Command, DocOp, Mode};
use super::scripts::Script;
use super::subscriber::Resync;
use super::wire::{EntryData, JoinAnswer};
use crate::presence::RosterBackendError;
use crate::presence::backend::{JoinCall, OwnOp};
use crate::redis_link::Backoff;

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
        let mut backoff = self.node.link.config().backoff();
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
                    tracing::error!(node = %self.node.id, redis = %self.node.link.redis(), %reason, "Redis refused a presence roster write; it is dropped");
                    return Some(Err(reason));
                }
                Err(CallError::Conn(reason) | CallError::Auth(reason)) => {
                    attempt += 1;
                    self.node.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if attempt % 20 == 1 {
                        tracing::warn!(node = %self.node.id, redis = %self.node.link.redis(), %reason, attempt, "presence roster write failed; retrying");
                    } else {
                        tracing::debug!(node = %self.node.id, %reason, attempt, "presence roster write failed; retrying");
                    }
                    self.pause(&mut backoff).await;
                }
            }
        }
    }

    /// Waits before a retry as `backoff` says, or until the roster stops.
    async fn pause(&self, backoff: &mut Backoff) {
        let delay = backoff.next_delay();
        let mut stopped = self.stopped.clone();
        tokio::select! {
            _ = stopped.changed() => {}
            _ = tokio::time::sleep(delay) => {}
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
                    EntryData::encode(&call.key, &call.phx_ref, &call.fields, call.eligible),
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
                    EntryData::encode(key, phx_ref, fields, *eligible),
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
                let result = self.execute(Write::Doc(&op)).await;
                self.node.doc_written(&op, result);
            }
            Command::Join { call, reply } => {
                if reply.is_closed() {
                    return;
                }
                let outcome = match self.execute(Write::Join(&call)).await {
                    None => return,
                    Some(Ok(Reply::Ok { generation, payload })) => match serde_json::from_str::<JoinAnswer>(&payload) {
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
        let mut backoff = self.node.link.config().backoff();
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
                    self.pause(&mut backoff).await;
                }
            }
        }
    }
}

/// Writes this node's changes in the order they were made.
pub(super) async fn run_writer(node: Arc<Node>, stopped: watch::Receiver<bool>) {
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
