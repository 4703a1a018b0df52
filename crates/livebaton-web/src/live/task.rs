//! The view task: where a joined view lives, and the [`Channel`] that feeds it client events.
//!
//! The view runs on its own task rather than inside the channel because `Channel::handle_out` is synchronous and a
//! channel hears at most two subscriptions, while `handle_info` is async and a view may subscribe to any number of
//! topics. The task owns the view and its [`LiveSocket`] (subscriptions, presence guards): when the channel ends, the
//! command sender drops and the task ends, releasing them. If the view panics, the task's supervisor sends the client
//! `phx_error` (which makes phoenix.js rejoin, re-mounting the view) and later events get an error reply. A view that
//! fell behind its subscriptions ends the same way: it missed broadcasts, so what it shows may be stale and no diff
//! can tell what it missed, while a fresh mount reads the current state.

use livebaton::pubsub::RecvError;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::diff::RegionDiff;
use super::event::ClientEvent;
use super::regions::Regions;
use super::socket::{Inbound, LiveSocket};
use super::view::LiveView;
use crate::channel::{BoxFuture, Channel, Pusher, Reply, Responder, Termination};
use crate::protocol::{ReplyStatus, events};

/// A mounted view, its socket, and what the client was last sent.
pub(crate) struct ViewState {
    view: Box<dyn LiveView>,
    socket: LiveSocket,
    regions: Regions,
    title: Option<String>,
}

impl ViewState {
    pub(crate) fn new(view: Box<dyn LiveView>, socket: LiveSocket) -> Self {
        ViewState { view, socket, regions: Regions::default(), title: None }
    }

    /// The join reply: every region, the title, and any flash put while mounting.
    pub(crate) fn join_reply(&mut self) -> Value {
        self.regions = Regions::extract(self.view.render().as_str());
        self.title = self.socket.title.clone();
        let mut reply = json!({"rendered": {"regions": RegionDiff::full(&self.regions).regions}, "title": self.title});
        if !self.socket.flash.is_empty() {
            reply["flash"] = Value::Object(std::mem::take(&mut self.socket.flash));
        }
        reply
    }

    /// Re-renders and returns what changed since the last send, remembering the new state as sent.
    pub(crate) fn diff(&mut self) -> RegionDiff {
        let next = Regions::extract(self.view.render().as_str());
        let mut diff = RegionDiff::compute(&self.regions, &next).with_navigation(self.socket.navigation.take());
        self.regions = next;
        if self.socket.title != self.title {
            self.title = self.socket.title.clone();
            diff.title = self.title.clone();
        }
        if !self.socket.flash.is_empty() {
            diff.flash = Some(std::mem::take(&mut self.socket.flash));
        }
        diff
    }

    /// Handles a client event; the reply is the diff.
    pub(crate) async fn event(&mut self, event: ClientEvent) -> RegionDiff {
        self.view.handle_event(&event.name, &event.value, &mut self.socket).await;
        self.diff()
    }
}

/// What the channel asks of the view task. The task answers an event itself (through `responder`, on the same queue
/// as its `diff` pushes), so a diff rendered after the event can never overtake the event's reply.
enum ViewCommand {
    Event { event: ClientEvent, responder: Responder },
    Stop(Termination),
}

/// Events that may wait for a busy view; the channel waits for room, so a client flooding events is held back by the
/// transport's rate limit and its own bounded inbox, not buffered here.
const COMMANDS: usize = 4;

/// The channel of a joined live view.
pub(crate) struct LiveChannel {
    /// The mounted view until `after_join` starts its task (so no `diff` can overtake the join reply).
    pending: Option<(ViewState, mpsc::Receiver<Inbound>)>,
    commands: Option<mpsc::Sender<ViewCommand>>,
}

impl LiveChannel {
    pub(crate) fn new(state: ViewState, inbox: mpsc::Receiver<Inbound>) -> Self {
        LiveChannel { pending: Some((state, inbox)), commands: None }
    }

    async fn event(&mut self, payload: Value, responder: Responder) {
        let event = match ClientEvent::decode(payload) {
            Ok(event) => event,
            Err(error) => return responder.reply(ReplyStatus::Error, &json!({"reason": error.to_string()})),
        };
        let Some(commands) = &self.commands else {
            return responder.reply(ReplyStatus::Error, &crashed());
        };
        let command = ViewCommand::Event { event, responder };
        if let Err(mpsc::error::SendError(ViewCommand::Event { responder, .. })) = commands.send(command).await {
            responder.reply(ReplyStatus::Error, &crashed());
        }
    }
}

/// The error reply to an event the view cannot take (its task ended).
fn crashed() -> Value {
    json!({"reason": "view crashed"})
}

impl Channel for LiveChannel {
    fn after_join<'a>(&'a mut self, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        if let Some((state, inbox)) = self.pending.take() {
            self.commands = Some(spawn(state, inbox, pusher.clone()));
        }
        Box::pin(async {})
    }

    fn handle_in<'a>(
        &'a mut self,
        event: &'a str,
        _payload: Value,
        _pusher: &'a Pusher,
    ) -> BoxFuture<'a, Option<Reply>> {
        // Never called: the transport calls `handle_in_with`.
        Box::pin(async move { Some((ReplyStatus::Error, json!({"reason": format!("unknown event {event:?}")}))) })
    }

    fn handle_in_with<'a>(
        &'a mut self,
        event: &'a str,
        payload: Value,
        responder: Responder,
        _pusher: &'a Pusher,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                "event" => self.event(payload, responder).await,
                other => responder.reply(ReplyStatus::Error, &json!({"reason": format!("unknown event {other:?}")})),
            }
        })
    }

    fn terminate(&mut self, reason: Termination) {
        if let Some(commands) = self.commands.take() {
            // If the queue is full the sender's drop still ends the task, as a disconnect.
            let _ = commands.try_send(ViewCommand::Stop(reason));
        }
    }
}

/// Starts the view task and its supervisor; returns where to send commands.
fn spawn(state: ViewState, inbox: mpsc::Receiver<Inbound>, pusher: Pusher) -> mpsc::Sender<ViewCommand> {
    let (commands, receiver) = mpsc::channel(COMMANDS);
    let crash = pusher.clone();
    let task = tokio::spawn(run(state, receiver, inbox, pusher));
    tokio::spawn(async move {
        if let Err(error) = task.await
            && error.is_panic()
        {
            tracing::warn!(topic = %crash.topic(), "live view crashed");
            send_error(&crash, "channel_crash");
        }
    });
    commands
}

/// Tells the client its view is gone, so that it rejoins: like the transport's own crash report, `phx_error` with ref =
/// join_ref.
fn send_error(pusher: &Pusher, reason: &str) {
    let join_ref = pusher.join_ref.as_deref();
    let frame = (join_ref, join_ref, pusher.topic(), events::ERROR, json!({"reason": reason}));
    pusher.send(serde_json::to_vec(&frame).unwrap_or_default().into());
}

async fn run(
    mut state: ViewState,
    mut commands: mpsc::Receiver<ViewCommand>,
    mut inbox: mpsc::Receiver<Inbound>,
    pusher: Pusher,
) {
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(ViewCommand::Event { event, responder }) => {
                    let diff = state.event(event).await;
                    responder.reply(ReplyStatus::Ok, &diff.to_json());
                }
                Some(ViewCommand::Stop(reason)) => return state.socket.close(reason),
                None => return state.socket.close(Termination::Closed),
            },
            Some(received) = inbox.recv() => match received {
                Ok(broadcast) => {
                    state.view.handle_info(&broadcast, &mut state.socket).await;
                    let diff = state.diff();
                    if !diff.is_empty() {
                        pusher.push("diff", &diff);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    // Broadcasts were dropped for this view (more than the topic's ring and the inbox held while it
                    // was busy): it may show stale data, and no diff can say what it missed. It ends as after a crash;
                    // the client rejoins and offers its forms back first (form recovery), so nothing typed is lost.
                    tracing::info!(topic = %pusher.topic(), missed, "live view fell behind its subscriptions; the client rejoins");
                    metrics::counter!("livebaton_live_view_lags_total").increment(1);
                    send_error(&pusher, "lagged");
                    return state.socket.close(Termination::Closed);
                }
                Err(RecvError::Closed) => {}
            }
        }
    }
}
