//! `room:<name>`: a generic presence room. Joining tracks the user (key = user id, one meta per connection with
//! `name` and `joined_at`); the client gets `presence_state` after its join, then `presence_diff`s; `shout` events are
//! broadcast to everyone in the room.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use livebaton::presence::{Meta, Presence, TrackGuard};
use livebaton::pubsub::{Broadcast, JsonMessage};
use serde_json::{Value, json};

use crate::channel::{BoxFuture, Channel, ChannelRoute, JoinRequest, Joined, Outgoing, Pusher, Reply, Termination};
use crate::protocol::ReplyStatus;

/// Routes `room:*` topics to presence rooms on `presence`.
pub struct RoomRoute {
    presence: Presence,
}

impl RoomRoute {
    /// Rooms tracked on `presence`.
    pub fn new(presence: Presence) -> Self {
        RoomRoute { presence }
    }
}

impl ChannelRoute for RoomRoute {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        Box::pin(async move {
            let user = &request.socket.user;
            let mut meta = Meta::new();
            meta.insert("name".into(), json!(user.name()));
            meta.insert("joined_at".into(), json!(now_ms()));
            // Subscribe before tracking, so this client's own join diff is not missed between state and diffs.
            let subscription = self.presence.subscribe(request.topic);
            let guard = self.presence.track(request.topic, user.id(), meta).await.map_err(|error| {
                // The cause is for the log, not for the client (it may name the backend's internals).
                tracing::warn!(%error, "room join refused: presence unavailable");
                json!({"reason": "presence unavailable"})
            })?;
            let channel =
                RoomChannel { presence: self.presence.clone(), topic: Arc::from(request.topic), guard: Some(guard) };
            Ok(Joined { reply: json!({}), channel: Box::new(channel), subscriptions: vec![subscription] })
        })
    }
}

struct RoomChannel {
    presence: Presence,
    topic: Arc<str>,
    /// The member's presence; taken on an explicit leave so it goes at once.
    guard: Option<TrackGuard>,
}

impl RoomChannel {
    async fn push_state(&self, pusher: &Pusher) {
        super::push_presence_state(pusher, &self.presence.list(&self.topic)).await;
    }
}

impl Channel for RoomChannel {
    fn after_join<'a>(&'a mut self, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        Box::pin(self.push_state(pusher))
    }

    fn handle_in<'a>(
        &'a mut self,
        event: &'a str,
        payload: Value,
        _pusher: &'a Pusher,
    ) -> BoxFuture<'a, Option<Reply>> {
        let reply = match event {
            "shout" => {
                let message = JsonMessage::new("shout", payload);
                match self.presence.pubsub().broadcast(&self.topic, message) {
                    Ok(_) => (ReplyStatus::Ok, json!({})),
                    Err(error) => (ReplyStatus::Error, json!({"reason": error.to_string()})),
                }
            }
            other => (ReplyStatus::Error, json!({"reason": format!("unknown event {other:?}")})),
        };
        Box::pin(async move { Some(reply) })
    }

    fn handle_out(&mut self, _broadcast: &Arc<Broadcast>, _pusher: &Pusher) -> Outgoing {
        Outgoing::Forward
    }

    fn handle_lag<'a>(&'a mut self, _missed: u64, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        // phoenix.js rebuilds its state from a fresh presence_state.
        Box::pin(self.push_state(pusher))
    }

    fn terminate(&mut self, reason: Termination) {
        if let Some(guard) = self.guard.take() {
            match reason {
                Termination::Closed => drop(guard),
                Termination::Left | Termination::Shutdown | Termination::Replaced => guard.leave(),
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}
