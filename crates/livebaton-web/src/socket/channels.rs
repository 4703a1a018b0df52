//! The channels joined on one connection, run as state inside the connection's task.
//!
//! A channel is idle almost all the time. While idle it is a [`Slot`] holding the channel and its subscriptions, and
//! the connection polls those subscriptions for broadcasts. A join, a client event or a lag resync is async work: it
//! runs as an *operation* that takes the channel with it and gives it back when done. Operations run concurrently with
//! everything else on the connection (heartbeats, other channels), so a slow save holds up only its own channel.
//! Client commands that arrive meanwhile wait in the slot, in order, up to [`CHANNEL_INBOX`].
//!
//! This replaces one task per channel, with an inbox and an outbound `mpsc`: about 5 KiB per idle joined channel.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, Stream};
use livebaton::pubsub::{Broadcast, RecvError, Subscription};
use serde_json::{Value, json};
use tokio_util::sync::ReusableBoxFuture;

use crate::channel::{
    Channel, ChannelRoute, JoinRequest, Joined, Outgoing, Pusher, Responder, Router, SocketInfo, Termination,
};
use crate::outbound::Outbound;
use crate::protocol::{Frame, ReplyStatus, encode_message, encode_reply, events};

/// Client commands a channel may have waiting while it is busy before more are refused ("channel busy").
pub(super) const CHANNEL_INBOX: usize = 32;
/// Most broadcasts taken from one subscription in one sweep. Several, so a burst leaves the topic's ring (where it
/// could overrun this subscriber, forcing a resync) for the connection's own bounded queue; bounded, so one busy topic
/// does not hold up the socket's other channels.
const SWEEP_TAKE: usize = 32;
/// How long a closing connection waits for its channels' running operations before dropping them.
pub(super) const CHANNEL_STOP_WAIT: Duration = Duration::from_secs(2);

/// What a subscription yields.
type Received = Result<Arc<Broadcast>, RecvError>;

/// The next broadcast of one subscription, in a box that is reused from one message to the next.
type Receiving = ReusableBoxFuture<'static, (Received, Subscription)>;

async fn next_broadcast(mut subscription: Subscription) -> (Received, Subscription) {
    let received = subscription.recv().await;
    (received, subscription)
}

/// The boxes a joined channel's subscriptions are received in.
///
/// A fresh vector, not `collect()`: collecting in place keeps the subscriptions' own allocation (48 bytes each) for the
/// 16-byte boxes, for as long as the channel stays joined. A small saving (32 bytes a room join), but for free.
fn receiving(subscriptions: Vec<Subscription>) -> Vec<Receiving> {
    let mut receiving = Vec::with_capacity(subscriptions.len());
    receiving
        .extend(subscriptions.into_iter().map(|subscription| ReusableBoxFuture::new(next_broadcast(subscription))));
    receiving
}

/// A joined channel, while no operation has it.
struct Live {
    channel: Box<dyn Channel>,
    /// At most two (see [`Joined::subscriptions`]).
    subscriptions: Vec<Receiving>,
    _gauge: JoinedGauge,
}

/// What a channel has waiting while it is busy.
enum Command {
    Event {
        event: String,
        payload: Value,
        reference: Option<String>,
    },
    Leave {
        reference: Option<String>,
    },
    /// A broadcast taken from a subscription in the same sweep in which an earlier one made the channel busy.
    Deliver(Received),
}

/// A join that waits for the channel it replaces.
struct WaitingJoin {
    route: Arc<dyn ChannelRoute>,
    payload: Value,
    reference: Option<String>,
}

/// Pointer-sized variants, so a slot stays small.
enum State {
    /// An older channel of the same topic is still finishing an operation; this join starts once it is done, so a
    /// replaced editing tab's presence is gone before the new one tracks (it can then reclaim its own place).
    WaitingForPrevious(Box<WaitingJoin>),
    /// An operation (the join, an event, a resync) has the channel.
    Busy,
    /// Joined and waiting for events and broadcasts.
    Idle(Box<Live>),
}

/// A channel by topic (its pusher's topic).
struct Slot {
    /// Tells this join of the topic from earlier and later ones (a client may join a topic again without a
    /// `join_ref`, so that cannot be the key).
    generation: u64,
    pusher: Pusher,
    state: State,
    /// In arrival order. An empty `VecDeque` allocates nothing.
    pending: VecDeque<Command>,
}

/// Which step an operation was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `ChannelRoute::join`: a panic here is answered with an error reply.
    Join,
    /// `after_join`, events, resyncs: a panic here is answered with `phx_error`.
    Joined,
}

/// A finished operation: the channel back (`None` when a join was refused), or the panic that ended it.
pub(super) struct Finished {
    /// The channel's pusher (its topic and join_ref).
    pusher: Pusher,
    generation: u64,
    stage: Stage,
    /// The `ref` of the `phx_join`, for a "join crashed" reply.
    join_reference: Option<String>,
    outcome: Result<Option<Box<Live>>, ()>,
}

type Operation = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// Something a connection's channels need the connection's task for.
pub(super) enum Activity {
    Finished(Finished),
    Broadcast { topic: Arc<str>, generation: u64, received: Received },
}

/// The channels of one connection.
pub(super) struct Channels {
    info: SocketInfo,
    router: Arc<Router>,
    outbound: Arc<Outbound>,
    max_channels: usize,
    slots: Slots,
    /// Polled by the connection's task together with its socket (no task of their own). `None` while nothing runs:
    /// an empty `FuturesUnordered` still holds two allocations.
    running: Option<FuturesUnordered<Operation>>,
    /// Broadcasts taken in the last sweep over the idle channels and not handled yet: a sweep takes at most one per
    /// subscription, so no busy topic starves the others.
    ready: VecDeque<(Arc<str>, u64, Received)>,
    next_generation: u64,
}

impl Channels {
    pub(super) fn new(info: SocketInfo, router: Arc<Router>, outbound: Arc<Outbound>, max_channels: usize) -> Self {
        Channels {
            info,
            router,
            outbound,
            max_channels,
            slots: Slots::default(),
            running: None,
            ready: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// The connection's id and user.
    pub(super) fn info(&self) -> &SocketInfo {
        &self.info
    }

    fn reply(&self, join_ref: Option<&str>, reference: Option<&str>, topic: &str, status: ReplyStatus, body: Value) {
        let _ = self.outbound.push(encode_reply(join_ref, reference, topic, status, &body));
    }

    /// `phx_join`.
    pub(super) fn join(&mut self, frame: Frame) {
        let Frame { join_ref, reference, topic, payload, .. } = frame;
        // phoenix.js sends join_ref == ref on joins; Phoenix uses `join_ref || ref`.
        let join_ref: Option<Arc<str>> = join_ref.or_else(|| reference.clone()).map(Arc::from);
        let Some(route) = self.router.route(&topic) else {
            self.reply(None, reference.as_deref(), &topic, ReplyStatus::Error, json!({"reason": "unmatched topic"}));
            return;
        };
        let topic: Arc<str> = Arc::from(topic);
        let mut wait_for_previous = false;
        if let Some(old) = self.slots.remove(&topic) {
            // Duplicate join: the old channel closes (phx_close with its join_ref) and the new one joins once it has.
            let old_join_ref = old.pusher.join_ref.clone();
            match old.state {
                State::Idle(mut live) => {
                    guarded(|| live.channel.terminate(Termination::Replaced));
                    send_close(&old.pusher, old_join_ref.as_deref());
                }
                // Its operation is still running; it is terminated when it hands the channel back.
                State::Busy => wait_for_previous = true,
                // Never started: its operation's predecessor is the one to wait for.
                State::WaitingForPrevious(_) => {
                    send_close(&old.pusher, old_join_ref.as_deref());
                    wait_for_previous = true;
                }
            }
        } else if self.slots.len() >= self.max_channels {
            let reason = json!({"reason": "too many channels joined"});
            self.reply(join_ref.as_deref(), reference.as_deref(), &topic, ReplyStatus::Error, reason);
            return;
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let pusher = Pusher::new(self.outbound.clone(), topic.clone(), join_ref);
        let state = if wait_for_previous {
            State::WaitingForPrevious(Box::new(WaitingJoin { route, payload, reference }))
        } else {
            self.start_join(&topic, generation, &pusher, route, payload, reference);
            State::Busy
        };
        self.slots.insert(Slot { generation, pusher, state, pending: VecDeque::new() });
    }

    fn start_join(
        &mut self,
        topic: &Arc<str>,
        generation: u64,
        pusher: &Pusher,
        route: Arc<dyn ChannelRoute>,
        payload: Value,
        reference: Option<String>,
    ) {
        let (topic, info, owner) = (topic.clone(), self.info.clone(), pusher.clone());
        let pusher = pusher.clone();
        let join_reference = reference.clone();
        let work = async move {
            let request = JoinRequest { topic: &topic, payload, socket: &info, pusher: &pusher };
            match route.join(request).await {
                Ok(Joined { reply, channel, subscriptions }) => {
                    pusher.reply(reference.as_deref(), ReplyStatus::Ok, &reply);
                    let gauge = JoinedGauge::new(channel_kind(&topic));
                    Some(Box::new(Live { channel, subscriptions: receiving(subscriptions), _gauge: gauge }))
                }
                Err(response) => {
                    metrics::counter!("livebaton_joins_refused_total", "kind" => channel_kind(&topic)).increment(1);
                    pusher.reply(reference.as_deref(), ReplyStatus::Error, &response);
                    None
                }
            }
        };
        self.start(operation(owner, generation, Stage::Join, join_reference, work));
    }

    /// `phx_leave`.
    pub(super) fn leave(&mut self, frame: Frame) {
        let current = self.slots.get(frame.topic.as_str()).map(|slot| slot.pusher.join_ref.clone());
        // A leave carrying an older join_ref (it raced a rejoin) must not end the current channel.
        let stale = matches!((&frame.join_ref, &current), (Some(given), Some(Some(joined))) if **given != **joined);
        let Some(slot) = self.slots.get_mut(frame.topic.as_str()).filter(|_| !stale) else {
            // Leaving a topic that is not joined is fine (Phoenix replies ok).
            let (join_ref, reference) = (frame.join_ref.as_deref(), frame.reference.as_deref());
            self.reply(join_ref, reference, &frame.topic, ReplyStatus::Ok, json!({}));
            return;
        };
        let command = Command::Leave { reference: frame.reference };
        match &mut slot.state {
            State::Idle(_) => {
                let topic = slot.pusher.topic.clone();
                self.run(&topic, command);
            }
            // Always accepted, even beyond the inbox limit: a leave frees resources.
            _ => slot.pending.push_back(command),
        }
    }

    /// Any other event on a topic.
    pub(super) fn event(&mut self, frame: Frame) {
        let Some(slot) = self.slots.get_mut(frame.topic.as_str()) else {
            let reason = json!({"reason": "unmatched topic"});
            self.reply(None, frame.reference.as_deref(), &frame.topic, ReplyStatus::Error, reason);
            return;
        };
        // A push with a stale join_ref (from before a rejoin) is ignored, as Phoenix does; null is accepted.
        if frame.join_ref.is_some() && frame.join_ref.as_deref() != slot.pusher.join_ref.as_deref() {
            return;
        }
        let command = Command::Event { event: frame.event, payload: frame.payload, reference: frame.reference };
        if matches!(slot.state, State::Idle(_)) {
            let topic = slot.pusher.topic.clone();
            self.run(&topic, command);
        } else if slot.pending.len() < CHANNEL_INBOX {
            slot.pending.push_back(command);
        } else {
            metrics::counter!("livebaton_events_refused_total", "reason" => "busy").increment(1);
            let Command::Event { reference, .. } = command else { return };
            slot.pusher.reply(reference.as_deref(), ReplyStatus::Error, &json!({"reason": "channel busy; slow down"}));
        }
    }

    /// Runs `command` on the idle channel of `topic`, and then whatever was waiting, until the channel is busy with an
    /// operation, idle with nothing waiting, or gone.
    fn run(&mut self, topic: &Arc<str>, first: Command) {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            let Some(slot) = self.slots.get_mut(topic) else { return };
            let State::Idle(mut live) = std::mem::replace(&mut slot.state, State::Busy) else {
                slot.pending.push_front(command);
                return;
            };
            let pusher = slot.pusher.clone();
            let generation = slot.generation;
            match command {
                Command::Event { event, payload, reference } => {
                    let owner = pusher.clone();
                    let work = async move {
                        let responder = Responder::new(pusher.clone(), reference);
                        live.channel.handle_in_with(&event, payload, responder, &pusher).await;
                        Some(live)
                    };
                    self.start(operation(owner, generation, Stage::Joined, None, work));
                    return;
                }
                Command::Leave { reference } => {
                    self.slots.remove(topic);
                    let terminated = guarded(|| live.channel.terminate(Termination::Left));
                    pusher.reply(reference.as_deref(), ReplyStatus::Ok, &json!({}));
                    if terminated {
                        send_close(&pusher, pusher.join_ref.as_deref());
                    } else {
                        send_error(&pusher);
                    }
                    return;
                }
                Command::Deliver(received) => match deliver(&mut live, received, &pusher) {
                    Delivered::Done => {
                        slot.state = State::Idle(live);
                        next = slot.pending.pop_front();
                    }
                    Delivered::Resync(missed) => {
                        let owner = pusher.clone();
                        let work = async move {
                            live.channel.handle_lag(missed, &pusher).await;
                            Some(live)
                        };
                        self.start(operation(owner, generation, Stage::Joined, None, work));
                        return;
                    }
                    Delivered::Ended => {
                        self.slots.remove(topic);
                        return;
                    }
                    Delivered::Crashed => {
                        self.slots.remove(topic);
                        send_error(&pusher);
                        return;
                    }
                },
            }
        }
    }

    /// The next finished operation or broadcast, for the connection's task to hand to [`Channels::handle`].
    pub(super) fn poll_activity(&mut self, cx: &mut Context<'_>) -> Poll<Activity> {
        if let Some(running) = &mut self.running {
            match Pin::new(running).poll_next(cx) {
                Poll::Ready(Some(finished)) => return Poll::Ready(Activity::Finished(finished)),
                Poll::Ready(None) => self.running = None,
                Poll::Pending => {}
            }
        }
        if self.ready.is_empty() {
            self.sweep(cx);
        }
        let next = self.ready.pop_front();
        if self.ready.is_empty() {
            // Idle connections keep no sweep buffer.
            self.ready = VecDeque::new();
        }
        match next {
            Some((topic, generation, received)) => Poll::Ready(Activity::Broadcast { topic, generation, received }),
            None => Poll::Pending,
        }
    }

    /// Takes up to [`SWEEP_TAKE`] broadcasts from every subscription of every idle channel.
    fn sweep(&mut self, cx: &mut Context<'_>) {
        for slot in self.slots.iter_mut() {
            let State::Idle(live) = &mut slot.state else { continue };
            for receiving in &mut live.subscriptions {
                for _ in 0..SWEEP_TAKE {
                    let Poll::Ready((received, subscription)) = receiving.poll(cx) else { break };
                    receiving.set(next_broadcast(subscription));
                    self.ready.push_back((slot.pusher.topic.clone(), slot.generation, received));
                }
            }
        }
    }

    pub(super) fn handle(&mut self, activity: Activity) {
        match activity {
            Activity::Broadcast { topic, generation, received } => {
                let Some(slot) = self.slots.get_mut(&topic).filter(|slot| slot.generation == generation) else {
                    return;
                };
                if matches!(slot.state, State::Idle(_)) {
                    self.run(&topic, Command::Deliver(received));
                } else {
                    slot.pending.push_back(Command::Deliver(received));
                }
            }
            Activity::Finished(finished) => self.finished(finished),
        }
    }

    fn finished(&mut self, finished: Finished) {
        let Finished { pusher, generation, stage, join_reference, outcome } = finished;
        let topic = pusher.topic.clone();
        let current = self.slots.get(&topic).is_some_and(|slot| slot.generation == generation);
        if !current {
            // A replaced channel's operation: the channel gives way now, and the join waiting for it starts.
            if let Ok(Some(mut live)) = outcome {
                guarded(|| live.channel.terminate(Termination::Replaced));
                send_close(&pusher, pusher.join_ref.as_deref());
            }
            self.start_waiting_join(&topic);
            return;
        }
        let Some(slot) = self.slots.get_mut(&topic) else { return };
        match (stage, outcome) {
            (Stage::Join, Ok(Some(live))) => {
                // `after_join` is async work of its own (a presence channel pushes its state there).
                let owner = pusher.clone();
                let work = async move {
                    let mut live = live;
                    live.channel.after_join(&pusher).await;
                    Some(live)
                };
                self.start(operation(owner, generation, Stage::Joined, None, work));
            }
            (Stage::Join, Ok(None)) => {
                // Refused (already answered). Leaves that waited for the join are answered as leaves of a topic
                // not joined; events for a channel that never was are dropped, as Phoenix drops them.
                let slot = self.slots.remove(&topic).expect("current slot");
                for command in slot.pending {
                    if let Command::Leave { reference } = command {
                        slot.pusher.reply(reference.as_deref(), ReplyStatus::Ok, &json!({}));
                    }
                }
            }
            (Stage::Joined, Ok(Some(live))) => {
                slot.state = State::Idle(live);
                if let Some(next) = slot.pending.pop_front() {
                    self.run(&topic, next);
                }
            }
            (Stage::Joined, Ok(None)) => {
                self.slots.remove(&topic);
            }
            (stage, Err(())) => {
                let slot = self.slots.remove(&topic).expect("current slot");
                if stage == Stage::Join {
                    tracing::warn!(%topic, "channel join crashed");
                    slot.pusher.reply(
                        join_reference.as_deref(),
                        ReplyStatus::Error,
                        &json!({"reason": "join crashed"}),
                    );
                } else {
                    tracing::warn!(%topic, "channel crashed");
                    send_error(&slot.pusher);
                }
            }
        }
    }

    fn start_waiting_join(&mut self, topic: &Arc<str>) {
        let Some(slot) = self.slots.get_mut(topic) else { return };
        if !matches!(slot.state, State::WaitingForPrevious(_)) {
            return;
        }
        let State::WaitingForPrevious(waiting) = std::mem::replace(&mut slot.state, State::Busy) else { return };
        let WaitingJoin { route, payload, reference } = *waiting;
        let (generation, pusher) = (slot.generation, slot.pusher.clone());
        self.start_join(topic, generation, &pusher, route, payload, reference);
    }

    /// Ends every channel for `reason` (the connection is closing): idle ones at once, busy ones when their operation
    /// hands them back, waiting at most [`CHANNEL_STOP_WAIT`]; operations still running then are dropped (a dropped
    /// channel's presences linger for their grace period, as after a lost connection).
    pub(super) async fn stop_all(&mut self, reason: Termination) {
        self.ready.clear();
        for slot in self.slots.drain() {
            if let State::Idle(mut live) = slot.state {
                guarded(|| live.channel.terminate(reason));
            }
        }
        let Some(mut running) = self.running.take() else { return };
        let drain = async {
            while let Some(finished) = futures_util::StreamExt::next(&mut running).await {
                if let Ok(Some(mut live)) = finished.outcome {
                    guarded(|| live.channel.terminate(reason));
                }
            }
        };
        let _ = tokio::time::timeout(CHANNEL_STOP_WAIT, drain).await;
    }

    fn start(&mut self, operation: Operation) {
        self.running.get_or_insert_with(FuturesUnordered::new).push(operation);
    }
}

/// Wraps channel work so a panic in it is reported as the channel's crash, not the connection's.
fn operation(
    pusher: Pusher,
    generation: u64,
    stage: Stage,
    join_reference: Option<String>,
    work: impl Future<Output = Option<Box<Live>>> + Send + 'static,
) -> Operation {
    Box::pin(async move {
        let outcome = AssertUnwindSafe(work).catch_unwind().await.map_err(|_| ());
        Finished { pusher, generation, stage, join_reference, outcome }
    })
}

/// Runs a channel callback, reporting whether it returned (false: it panicked).
fn guarded(callback: impl FnOnce()) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(callback)).is_ok()
}

enum Delivered {
    Done,
    /// The subscription lagged by this many broadcasts: the channel resyncs its client (async).
    Resync(u64),
    /// The PubSub is gone: the channel ended.
    Ended,
    /// `handle_out` panicked.
    Crashed,
}

/// Hands one broadcast to an idle channel.
fn deliver(live: &mut Live, received: Received, pusher: &Pusher) -> Delivered {
    match received {
        Ok(broadcast) => {
            let Ok(outgoing) =
                std::panic::catch_unwind(AssertUnwindSafe(|| live.channel.handle_out(&broadcast, pusher)))
            else {
                return Delivered::Crashed;
            };
            if outgoing == Outgoing::Forward {
                if *broadcast.topic == *pusher.topic {
                    // Fastlane: encoded once, the same bytes for every socket on this topic.
                    let frame = broadcast.encoded(|b| encode_message(&b.topic, b.message()));
                    pusher.send(frame);
                } else {
                    pusher.push(broadcast.event(), &broadcast.payload());
                }
            }
            Delivered::Done
        }
        Err(RecvError::Lagged(missed)) => Delivered::Resync(missed),
        Err(RecvError::Closed) => {
            guarded(|| live.channel.terminate(Termination::Shutdown));
            Delivered::Ended
        }
    }
}

/// `phx_close`, whose `ref` equals its `join_ref`, as Phoenix sends it.
fn send_close(pusher: &Pusher, join_ref: Option<&str>) {
    pusher.send(control_frame(join_ref, &pusher.topic, events::CLOSE, json!({})));
}

/// `phx_error` after a channel crashed.
fn send_error(pusher: &Pusher) {
    let frame =
        control_frame(pusher.join_ref.as_deref(), &pusher.topic, events::ERROR, json!({"reason": "channel_crash"}));
    pusher.send(frame);
}

/// A control frame (`phx_close`, `phx_error`) whose `ref` equals its `join_ref`, as Phoenix sends them.
fn control_frame(join_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(&(join_ref, join_ref, topic, event, payload)).unwrap_or_default())
}

/// The kind of a channel for metrics: the topic up to its first `:` (`room`, `edit`, `entity_data`, …).
fn channel_kind(topic: &str) -> String {
    topic.split(':').next().unwrap_or(topic).to_owned()
}

/// Counts a joined channel by kind while it lives (also when it crashes).
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

/// The channels of a connection: a vector searched by topic, since a socket joins a handful (at most
/// `max_channels`), and grown one slot at a time, since most sockets join one or two and a map's or a vector's first
/// allocation would be several slots.
#[derive(Default)]
struct Slots(Vec<Slot>);

impl Slots {
    fn position(&self, topic: &str) -> Option<usize> {
        self.0.iter().position(|slot| *slot.pusher.topic == *topic)
    }

    fn get(&self, topic: &str) -> Option<&Slot> {
        self.position(topic).map(|index| &self.0[index])
    }

    fn get_mut(&mut self, topic: &str) -> Option<&mut Slot> {
        self.position(topic).map(|index| &mut self.0[index])
    }

    fn remove(&mut self, topic: &str) -> Option<Slot> {
        let slot = self.0.swap_remove(self.position(topic)?);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(slot)
    }

    fn insert(&mut self, slot: Slot) {
        debug_assert!(self.position(&slot.pusher.topic).is_none());
        self.0.reserve_exact(1);
        self.0.push(slot);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.0.iter_mut()
    }

    fn drain(&mut self) -> impl Iterator<Item = Slot> {
        std::mem::take(&mut self.0).into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receiving boxes take exactly the room they need (an in-place `collect` kept 6 slots for these 2).
    #[tokio::test]
    async fn a_joined_channels_receiving_boxes_hold_no_spare_room() {
        let engine = livebaton::Engine::new(livebaton::EngineConfig::default());
        let subscriptions = vec![engine.pubsub.subscribe("room:a"), engine.pubsub.subscribe("room:b")];
        let receiving = receiving(subscriptions);
        assert_eq!((receiving.len(), receiving.capacity()), (2, 2));
    }
}
