//! The subscriber task: applies the roster's published events to the replica, in version order (a gap reloads the
//! topic), and reloads everything after every (re)subscription and when the grace after a reset ends. The loop
//! itself (pings, resubscribing) is the shared Redis link's ([`crate::redis_link::listen`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::call::{CallError, Reply};
use super::node::Node;
use super::scripts::Script;
use super::wire::{Incoming, SnapshotAnswer, StringList};
use super::{RedisRosterError, RedisRosterStatus};
use crate::presence::replica::Applied;
use crate::redis_link::{self, Flow, Listener};

/// What the subscriber is asked to do besides applying events.
pub(super) enum Resync {
    /// Reload one topic (a swap did not apply).
    Topic(Arc<str>),
    /// Redis lost its data: reload everything, dropping what was not re-asserted, at this moment.
    Grace(Instant),
}

/// Subscribes, loads the replica (telling `ready` how that went), then applies the roster's events until stopped.
pub(super) async fn run_subscriber(
    node: Arc<Node>,
    resync: mpsc::UnboundedReceiver<Resync>,
    mut stopped: watch::Receiver<bool>,
    ready: oneshot::Sender<Result<(), RedisRosterError>>,
) {
    let channel = node.config.channel();
    let first = async {
        let subscription = node.link.subscribe(&channel).await?;
        node.full_resync(false).await?;
        Ok::<_, CallError>(subscription)
    };
    let subscription = tokio::select! {
        biased;
        _ = stopped.changed() => None,
        result = first => match result {
            Ok(subscription) => Some(subscription),
            Err(error) => {
                let _ = ready.send(Err(error.into_setup_error(node.link.redis())));
                return;
            }
        },
    };
    let Some(subscription) = subscription else {
        node.status.send_modify(|status| status.connected = false);
        return;
    };
    node.status.send_replace(RedisRosterStatus { connected: true, synced: true, reconnects: 0 });
    let _ = ready.send(Ok(()));
    let link = node.link.clone();
    let id = node.id.clone();
    let subscriber = Subscriber { node, resync, grace: None };
    redis_link::listen(&link, &id, &channel, subscription, subscriber, stopped).await;
}

/// The roster's [`Listener`]: applies events, serves reload requests and ends the grace after a reset.
struct Subscriber {
    node: Arc<Node>,
    resync: mpsc::UnboundedReceiver<Resync>,
    /// When the grace after Redis lost its data ends: then everything is reloaded, dropping what nobody re-asserted.
    /// Kept across reconnections.
    grace: Option<Instant>,
}

/// What the subscriber does besides applying events.
enum Chore {
    /// A reload was asked for (`None`: nobody can ask any more).
    Request(Option<Resync>),
    /// The grace after a reset ended.
    GraceOver,
}

impl Listener for Subscriber {
    type Chore = Chore;

    async fn next_chore(&mut self) -> Chore {
        let grace_end = self.grace.unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
        tokio::select! {
            biased;
            request = self.resync.recv() => Chore::Request(request),
            _ = tokio::time::sleep_until(grace_end), if self.grace.is_some() => Chore::GraceOver,
        }
    }

    async fn do_chore(&mut self, chore: Chore) -> Flow {
        match chore {
            Chore::Request(Some(Resync::Topic(topic))) => {
                if let Err(error) = self.node.resync_topic(&topic, false).await {
                    return Flow::Lost(error.describe());
                }
            }
            Chore::Request(Some(Resync::Grace(deadline))) => {
                self.grace = Some(self.grace.map_or(deadline, |current| current.max(deadline)));
            }
            Chore::Request(None) => return Flow::Stop,
            Chore::GraceOver => {
                self.grace = None;
                if let Err(error) = self.node.full_resync(true).await {
                    // Try again after reconnecting; keep the grace so stale entries still go.
                    self.grace = Some(Instant::now());
                    return Flow::Lost(error.describe());
                }
            }
        }
        Flow::Continue
    }

    async fn on_message(&mut self, payload: &[u8]) -> Flow {
        match self.node.on_message(payload).await {
            Ok(()) => Flow::Continue,
            Err(error) => Flow::Lost(error.describe()),
        }
    }

    fn is_wanted(&self) -> bool {
        self.node.handle().is_none_or(|handle| handle.is_alive())
    }

    async fn resubscribed(&self) -> Result<(), String> {
        self.node.full_resync(false).await.map_err(|error| error.describe())
    }

    fn lost(&mut self, reconnects: u64) {
        let status = RedisRosterStatus { connected: false, synced: false, reconnects: reconnects + 1 };
        self.node.status.send_replace(status);
    }

    fn reconnected(&mut self, reconnects: u64) {
        self.node.status.send_replace(RedisRosterStatus { connected: true, synced: true, reconnects });
        tracing::info!(node = %self.node.id, redis = %self.node.link.redis(), reconnects, "resubscribed to the presence roster and reloaded it");
    }

    fn stopped(&mut self, _reconnects: u64) {
        self.node.status.send_modify(|status| status.connected = false);
    }
}

impl Node {
    /// Reloads one topic from Redis into the replica.
    pub(super) async fn resync_topic(&self, topic: &Arc<str>, drop_stale: bool) -> Result<(), CallError> {
        for _ in 0..3 {
            let generation = self.generation();
            match self.call(Script::Snapshot, &generation, &[topic.to_string()]).await {
                Ok(Reply::Ok { generation, payload }) => {
                    let snapshot: SnapshotAnswer = serde_json::from_str(&payload)
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
    pub(super) async fn full_resync(&self, drop_stale: bool) -> Result<(), CallError> {
        let mut topics: BTreeSet<Arc<str>> = BTreeSet::new();
        for _ in 0..3 {
            match self.call(Script::Topics, &self.generation(), &[]).await {
                Ok(Reply::Ok { payload, .. }) => {
                    let list: StringList = serde_json::from_str(&payload)
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
        self.load_docs().await?;
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
            Incoming::Roster(event) => {
                let event = event.into_event(&self.generation());
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
            Incoming::Document(change) => self.apply_document_change(change, own),
        }
        Ok(())
    }
}
