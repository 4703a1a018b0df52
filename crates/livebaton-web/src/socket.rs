//! One WebSocket connection speaking Phoenix Channels V2: heartbeats, joins, leaves, events, limits, and closing.
//!
//! The connection task reads frames and routes them; each joined channel runs as its own task (see
//! [`crate::channel`]). Everything the client receives goes through one bounded queue, written by this task: a
//! client that does not read is disconnected when the queue is full, never buffered without bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::channel::{ChannelRoute, JoinRequest, Joined, Outgoing, Pusher, Responder, Router, SocketInfo, Termination};
use crate::config::SocketConfig;
use crate::protocol::{Frame, PHOENIX_TOPIC, ReplyStatus, encode_broadcast, encode_push, encode_reply, events};
use crate::rate::{EventRate, RateDecision};

/// Close codes the server uses. Never 1000: older phoenix.js clients do not reconnect after a normal close.
pub mod close_codes {
    /// Server stopping, kicked, or idle.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy: too many refused events, or a slow consumer.
    pub const POLICY: u16 = 1008;
    /// A frame larger than the limit.
    pub const TOO_BIG: u16 = 1009;
}

/// Commands from the connection to a channel task.
enum ChannelCommand {
    Event { event: String, payload: Value, reference: Option<String> },
    Leave { reference: Option<String> },
    Stop(Termination),
}

/// A joined (or joining) channel, as the connection knows it.
struct ChannelHandle {
    join_ref: Option<Arc<str>>,
    /// Boxed commands: an mpsc allocates its first block of 32 slots up front, so slot size is per-channel memory
    /// (32 × 8 bytes boxed instead of 32 × ~90 bytes inline).
    commands: mpsc::Sender<Box<ChannelCommand>>,
    /// Resolves when the channel's task has ended (its sender is dropped with the task), so a rejoin of the same
    /// topic can wait for the old channel to let go (a replaced editing tab can then reclaim its own place).
    ended: oneshot::Receiver<()>,
}

/// Reported by a channel task when it ends on its own terms.
struct ChannelExit {
    topic: Arc<str>,
    join_ref: Option<Arc<str>>,
}

/// Commands a channel task may queue before the connection refuses more ("channel busy").
const CHANNEL_INBOX: usize = 32;
/// How long the connection spends flushing and sending its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long the connection waits for its channels to finish after it closed.
const CHANNEL_STOP_WAIT: Duration = Duration::from_secs(2);

/// What the connection needs to answer for a channel task that panicked.
struct CrashReport {
    topic: Arc<str>,
    join_ref: Option<Arc<str>>,
    /// The `ref` of the `phx_join`, for a "join crashed" reply.
    join_reference: Option<String>,
    /// Set once the join was answered: a panic before that is a crashed join (error reply), after it a crashed
    /// channel (`phx_error`). An atomic because the channel's task sets it and the connection's task reads it.
    joined: Arc<std::sync::atomic::AtomicBool>,
}

struct Connection {
    info: SocketInfo,
    router: Arc<Router>,
    config: Arc<SocketConfig>,
    outbound: mpsc::Sender<Bytes>,
    overflow: Arc<Notify>,
    channels: HashMap<Arc<str>, ChannelHandle>,
    tasks: JoinSet<ChannelExit>,
    /// Which channel each task is, to report a crash on the right topic.
    task_topics: HashMap<tokio::task::Id, CrashReport>,
    rate: EventRate,
}

/// Why the connection ends, and how the socket is closed.
struct Close {
    code: u16,
    reason: &'static str,
    termination: Termination,
}

impl Close {
    fn new(code: u16, reason: &'static str, termination: Termination) -> Self {
        Close { code, reason, termination }
    }
}

/// Serves one upgraded WebSocket until it closes, the server shuts down, or a limit is hit.
pub async fn serve(
    mut ws: WebSocket,
    router: Arc<Router>,
    info: SocketInfo,
    config: Arc<SocketConfig>,
    mut shutdown: watch::Receiver<bool>,
    mut kicks: tokio::sync::broadcast::Receiver<Arc<str>>,
) {
    let user_id = connection_user(&info);
    let mut kicks_open = true;
    let (outbound, mut outbound_rx) = mpsc::channel::<Bytes>(config.outbound_queue.max(1));
    let overflow = Arc::new(Notify::new());
    let rate = EventRate::new(
        config.events_per_second,
        config.event_burst,
        config.max_refused_events,
        std::time::Instant::now(),
    );
    let mut connection = Connection {
        info,
        router,
        config: config.clone(),
        outbound,
        overflow: overflow.clone(),
        channels: HashMap::new(),
        tasks: JoinSet::new(),
        task_topics: HashMap::new(),
        rate,
    };
    let mut idle_deadline = Instant::now() + config.idle_timeout;
    let close: Option<Close> = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Some(Close::new(close_codes::GOING_AWAY, "server shutting down", Termination::Shutdown)),
            kicked = kicks.recv(), if kicks_open => match kicked {
                Ok(kicked) if *kicked == *user_id => {
                    break Some(Close::new(close_codes::GOING_AWAY, "disconnected by the server", Termination::Shutdown))
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => kicks_open = false,
                // Someone else's kick, or kicks missed while busy (they are rare: nothing to resync).
                _ => {}
            },
            _ = overflow.notified() => {
                break Some(Close::new(close_codes::POLICY, "slow consumer: too many unsent messages", Termination::Closed))
            }
            Some(frame) = outbound_rx.recv() => {
                let Ok(text) = Utf8Bytes::try_from(frame) else { continue };
                metrics::counter!("livebaton_frames_out_total").increment(1);
                if let Err(error) = ws.send(Message::Text(text)).await {
                    tracing::info!(user = %connection.info.user.id, %error, "socket write failed; closing");
                    break None;
                }
            }
            Some(exit) = connection.tasks.join_next_with_id() => connection.channel_exited(exit),
            _ = tokio::time::sleep_until(idle_deadline) => {
                break Some(Close::new(close_codes::GOING_AWAY, "idle timeout: no frame received", Termination::Closed))
            }
            incoming = ws.recv() => {
                idle_deadline = Instant::now() + config.idle_timeout;
                metrics::counter!("livebaton_frames_in_total").increment(1);
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(close) = connection.handle_text(text.as_bytes()) {
                            break Some(close);
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        tracing::debug!("binary frame ignored: this server speaks JSON text frames only");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => {
                        // Answer the client's close (RFC 6455 §5.5.1): the protocol layer queues the reply and sends
                        // it on the next read, which then reports the end of the stream.
                        let _ = tokio::time::timeout(CLOSE_WAIT, ws.recv()).await;
                        break None;
                    }
                    None => break None,
                    Some(Err(error)) => break too_big(error).then(|| {
                        Close::new(close_codes::TOO_BIG, "frame too large", Termination::Closed)
                    }),
                }
            }
        }
    };
    match &close {
        Some(close) if close.code != close_codes::GOING_AWAY || close.reason != "idle timeout: no frame received" => {
            tracing::info!(user = %connection.info.user.id, connection = %connection.info.connection_id,
                code = close.code, reason = close.reason, "socket closed by the server");
        }
        _ => {
            tracing::debug!(user = %connection.info.user.id, connection = %connection.info.connection_id, "socket closed")
        }
    }
    let termination = close.as_ref().map_or(Termination::Closed, |close| close.termination);
    connection.stop_all(termination);
    if let Some(close) = close {
        let goodbye = async {
            // Flush what is already queued (replies, the last diffs) unless the client is the one not reading.
            if close.code != close_codes::POLICY {
                while let Ok(frame) = outbound_rx.try_recv() {
                    let Ok(text) = Utf8Bytes::try_from(frame) else { continue };
                    if ws.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
            }
            let frame = CloseFrame { code: close.code, reason: Utf8Bytes::from_static(close.reason) };
            let _ = ws.send(Message::Close(Some(frame))).await;
        };
        // A client that stopped reading must not hold the connection open.
        let _ = tokio::time::timeout(CLOSE_WAIT, goodbye).await;
    }
    drop(ws);
    let _ =
        tokio::time::timeout(CHANNEL_STOP_WAIT, async { while connection.tasks.join_next().await.is_some() {} }).await;
}

fn connection_user(info: &SocketInfo) -> Arc<str> {
    Arc::from(info.user.id.as_str())
}

/// Whether a read error was a message over the size limit.
fn too_big(error: axum::Error) -> bool {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(error) => matches!(*error, tungstenite::Error::Capacity(_)),
        Err(_) => false,
    }
}

impl Connection {
    fn send(&self, frame: Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbound.try_send(frame) {
            self.overflow.notify_one();
        }
    }

    fn reply(
        &self,
        join_ref: Option<&str>,
        reference: Option<&str>,
        topic: &str,
        status: ReplyStatus,
        response: Value,
    ) {
        self.send(encode_reply(join_ref, reference, topic, status, &response));
    }

    fn handle_text(&mut self, bytes: &[u8]) -> Option<Close> {
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(error) => {
                // Without a decodable ref there is nothing to reply to; tell the client on the socket topic.
                tracing::debug!(%error, "undecodable frame");
                self.send(encode_push(None, PHOENIX_TOPIC, events::ERROR, &json!({"reason": error.to_string()})));
                return None;
            }
        };
        if frame.topic == PHOENIX_TOPIC && frame.event == events::HEARTBEAT {
            self.reply(None, frame.reference.as_deref(), PHOENIX_TOPIC, ReplyStatus::Ok, json!({}));
            return None;
        }
        match self.rate.take(std::time::Instant::now()) {
            RateDecision::Allow => {}
            RateDecision::Refuse => {
                metrics::counter!("livebaton_events_refused_total", "reason" => "rate").increment(1);
                let reason = json!({"reason": "rate limited: too many events"});
                self.reply(
                    frame.join_ref.as_deref(),
                    frame.reference.as_deref(),
                    &frame.topic,
                    ReplyStatus::Error,
                    reason,
                );
                return None;
            }
            RateDecision::Disconnect => {
                return Some(Close::new(close_codes::POLICY, "too many events", Termination::Closed));
            }
        }
        match frame.event.as_str() {
            events::JOIN => self.join(frame),
            events::LEAVE => self.leave(frame),
            _ => self.event(frame),
        }
        None
    }

    fn join(&mut self, frame: Frame) {
        let Frame { join_ref, reference, topic, payload, .. } = frame;
        // phoenix.js sends join_ref == ref on joins; Phoenix uses `join_ref || ref`.
        let join_ref: Option<Arc<str>> = join_ref.or_else(|| reference.clone()).map(Arc::from);
        let Some(route) = self.router.route(&topic) else {
            self.reply(None, reference.as_deref(), &topic, ReplyStatus::Error, json!({"reason": "unmatched topic"}));
            return;
        };
        let topic: Arc<str> = Arc::from(topic);
        let mut previous = None;
        if let Some(old) = self.channels.remove(&topic) {
            // Duplicate join: the old channel closes (phx_close with its join_ref) and the new one joins once it has.
            let _ = old.commands.try_send(Box::new(ChannelCommand::Stop(Termination::Replaced)));
            previous = Some(old.ended);
        } else if self.channels.len() >= self.config.max_channels {
            let reason = json!({"reason": "too many channels joined"});
            self.reply(join_ref.as_deref(), reference.as_deref(), &topic, ReplyStatus::Error, reason);
            return;
        }
        let (commands, inbox) = mpsc::channel(CHANNEL_INBOX);
        let (alive, ended) = oneshot::channel();
        let pusher = Pusher {
            outbound: self.outbound.clone(),
            overflow: self.overflow.clone(),
            topic: topic.clone(),
            join_ref: join_ref.clone(),
        };
        let info = self.info.clone();
        let joined = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let report = CrashReport {
            topic: topic.clone(),
            join_ref: join_ref.clone(),
            join_reference: reference.clone(),
            joined: joined.clone(),
        };
        let task = async move {
            let _alive: oneshot::Sender<()> = alive;
            if let Some(previous) = previous {
                let _ = tokio::time::timeout(CHANNEL_STOP_WAIT, previous).await;
            }
            run_channel(route, info, payload, reference, pusher, inbox, joined).await
        };
        let handle = self.tasks.spawn(task);
        self.task_topics.insert(handle.id(), report);
        self.channels.insert(topic, ChannelHandle { join_ref, commands, ended });
    }

    fn leave(&mut self, frame: Frame) {
        let current = self.channels.get(frame.topic.as_str()).map(|channel| channel.join_ref.clone());
        // A leave carrying an older join_ref (it raced a rejoin) must not end the current channel.
        let stale = matches!((&frame.join_ref, &current), (Some(given), Some(Some(joined))) if **given != **joined);
        let leaving = if stale { None } else { self.channels.remove(frame.topic.as_str()) };
        match leaving {
            Some(channel) => {
                let _ = channel.commands.try_send(Box::new(ChannelCommand::Leave { reference: frame.reference }));
            }
            // Leaving a topic that is not joined is fine (Phoenix replies ok).
            None => self.reply(
                frame.join_ref.as_deref(),
                frame.reference.as_deref(),
                &frame.topic,
                ReplyStatus::Ok,
                json!({}),
            ),
        }
    }

    fn event(&mut self, frame: Frame) {
        let Some(channel) = self.channels.get(frame.topic.as_str()) else {
            let reason = json!({"reason": "unmatched topic"});
            self.reply(None, frame.reference.as_deref(), &frame.topic, ReplyStatus::Error, reason);
            return;
        };
        // A push with a stale join_ref (from before a rejoin) is ignored, as Phoenix does; null is accepted.
        if frame.join_ref.is_some() && frame.join_ref.as_deref() != channel.join_ref.as_deref() {
            return;
        }
        let command = Box::new(ChannelCommand::Event {
            event: frame.event,
            payload: frame.payload,
            reference: frame.reference.clone(),
        });
        if channel.commands.try_send(command).is_err() {
            metrics::counter!("livebaton_events_refused_total", "reason" => "busy").increment(1);
            let reason = json!({"reason": "channel busy; slow down"});
            let join_ref = channel.join_ref.clone();
            self.reply(join_ref.as_deref(), frame.reference.as_deref(), &frame.topic, ReplyStatus::Error, reason);
        }
    }

    fn channel_exited(&mut self, exit: Result<(tokio::task::Id, ChannelExit), tokio::task::JoinError>) {
        let (topic, join_ref, crash) = match exit {
            Ok((id, exit)) => {
                self.task_topics.remove(&id);
                (exit.topic, exit.join_ref, None)
            }
            Err(error) => match self.task_topics.remove(&error.id()) {
                Some(report) => (report.topic.clone(), report.join_ref.clone(), error.is_panic().then_some(report)),
                None => return,
            },
        };
        // Forget the channel only if it is still the current one for its topic (not replaced by a newer join).
        if self.channels.get(&topic).is_some_and(|current| current.join_ref == join_ref) {
            self.channels.remove(&topic);
        }
        let Some(crash) = crash else { return };
        if crash.joined.load(std::sync::atomic::Ordering::Acquire) {
            tracing::warn!(%topic, "channel crashed");
            // Phoenix sends phx_error with ref = join_ref.
            self.send(control_frame(join_ref.as_deref(), &topic, events::ERROR, json!({"reason": "channel_crash"})));
        } else {
            tracing::warn!(%topic, "channel join crashed");
            let reason = json!({"reason": "join crashed"});
            self.reply(join_ref.as_deref(), crash.join_reference.as_deref(), &topic, ReplyStatus::Error, reason);
        }
    }

    fn stop_all(&mut self, reason: Termination) {
        for (_, channel) in self.channels.drain() {
            let _ = channel.commands.try_send(Box::new(ChannelCommand::Stop(reason)));
        }
    }
}

/// A control frame (`phx_close`, `phx_error`) whose `ref` equals its `join_ref`, as Phoenix sends them.
fn control_frame(join_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&(join_ref, join_ref, topic, event, payload)).unwrap_or_default())
}

async fn next_broadcast(
    subscription: Option<&mut livebaton::pubsub::Subscription>,
) -> Result<Arc<livebaton::pubsub::Broadcast>, livebaton::pubsub::RecvError> {
    match subscription {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}

/// The kind of a channel for metrics: the topic up to its first `:` (`room`, `edit`, `entity_data`, …).
fn channel_kind(topic: &str) -> String {
    topic.split(':').next().unwrap_or(topic).to_owned()
}

/// Counts a joined channel by kind while it lives (also when its task panics).
struct JoinedGauge(String);

impl JoinedGauge {
    fn new(kind: String) -> Self {
        metrics::gauge!("livebaton_channels_joined", "kind" => kind.clone()).increment(1.0);
        JoinedGauge(kind)
    }
}

impl Drop for JoinedGauge {
    fn drop(&mut self) {
        metrics::gauge!("livebaton_channels_joined", "kind" => self.0.clone()).decrement(1.0);
    }
}

/// A channel's task: join, then serve commands and broadcasts until it ends.
async fn run_channel(
    route: Arc<dyn ChannelRoute>,
    info: SocketInfo,
    payload: Value,
    join_reference: Option<String>,
    pusher: Pusher,
    mut inbox: mpsc::Receiver<Box<ChannelCommand>>,
    joined_flag: Arc<std::sync::atomic::AtomicBool>,
) -> ChannelExit {
    let topic = pusher.topic.clone();
    let exit = ChannelExit { topic: topic.clone(), join_ref: pusher.join_ref.clone() };
    let joined = route.join(JoinRequest { topic: &topic, payload, socket: &info, pusher: &pusher }).await;
    let Joined { reply, mut channel, mut subscriptions } = match joined {
        Ok(joined) => joined,
        Err(response) => {
            metrics::counter!("livebaton_joins_refused_total", "kind" => channel_kind(&topic)).increment(1);
            pusher.reply(join_reference.as_deref(), ReplyStatus::Error, &response);
            return exit;
        }
    };
    let _joined = JoinedGauge::new(channel_kind(&topic));
    joined_flag.store(true, std::sync::atomic::Ordering::Release);
    pusher.reply(join_reference.as_deref(), ReplyStatus::Ok, &reply);
    channel.after_join(&pusher).await;
    let split = subscriptions.len().min(1);
    let (first, second) = subscriptions.split_at_mut(split);
    loop {
        tokio::select! {
            command = inbox.recv() => match command.map(|command| *command) {
                Some(ChannelCommand::Event { event, payload, reference }) => {
                    let responder = Responder::new(pusher.clone(), reference);
                    channel.handle_in_with(&event, payload, responder, &pusher).await;
                }
                Some(ChannelCommand::Leave { reference }) => {
                    channel.terminate(Termination::Left);
                    pusher.reply(reference.as_deref(), ReplyStatus::Ok, &json!({}));
                    pusher.send(control_frame(pusher.join_ref.as_deref(), &topic, events::CLOSE, json!({})));
                    return exit;
                }
                Some(ChannelCommand::Stop(reason)) => {
                    channel.terminate(reason);
                    if reason == Termination::Replaced {
                        pusher.send(control_frame(pusher.join_ref.as_deref(), &topic, events::CLOSE, json!({})));
                    }
                    return exit;
                }
                None => {
                    channel.terminate(Termination::Closed);
                    return exit;
                }
            },
            received = next_broadcast(first.first_mut()) => {
                if !deliver(&mut *channel, received, &pusher, &topic).await {
                    return exit;
                }
            }
            received = next_broadcast(second.first_mut()) => {
                if !deliver(&mut *channel, received, &pusher, &topic).await {
                    return exit;
                }
            }
        }
    }
}

/// Hands one broadcast to the channel; false when the subscription closed.
async fn deliver(
    channel: &mut dyn crate::channel::Channel,
    received: Result<Arc<livebaton::pubsub::Broadcast>, livebaton::pubsub::RecvError>,
    pusher: &Pusher,
    topic: &str,
) -> bool {
    match received {
        Ok(broadcast) => {
            if channel.handle_out(&broadcast, pusher) == Outgoing::Forward {
                let event = broadcast.message.event_name();
                if *broadcast.topic == *topic {
                    // Fastlane: encoded once, the same bytes for every socket on this topic.
                    let frame =
                        broadcast.encoded(|b| encode_broadcast(&b.topic, b.message.event_name(), &b.message.payload()));
                    pusher.send(frame);
                } else {
                    pusher.push(event, &broadcast.message.payload());
                }
            }
            true
        }
        Err(livebaton::pubsub::RecvError::Lagged(missed)) => {
            channel.handle_lag(missed, pusher).await;
            true
        }
        Err(livebaton::pubsub::RecvError::Closed) => {
            channel.terminate(Termination::Shutdown);
            false
        }
    }
}
