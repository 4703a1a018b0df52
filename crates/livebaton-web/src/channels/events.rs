//! [`EventsRoute`]: the engine's resource events ([`livebaton::events`]) pushed to channel clients as they are
//! published (after the application's commits), on the same topics: `<prefix><resource>` and
//! `<prefix><resource>:<scope>` (`events:invoice`, `events:invoice:acme`). Listen-only: a client event is refused.
//! Who may join which topic is the application's decision.

use std::sync::Arc;

use livebaton::events::Events;
use serde_json::{Value, json};

use crate::channel::{BoxFuture, Channel, ChannelRoute, JoinRequest, Joined, Pusher, Reply, SocketInfo};
use crate::protocol::ReplyStatus;

/// Decides whether a socket may join an events topic: `(socket, resource, scope)`.
type Authorize = dyn Fn(&SocketInfo, &str, Option<&str>) -> bool + Send + Sync;

/// Serves the topics of `events` (route it on `<prefix>*`, e.g. `events:*`). See the module documentation.
pub struct EventsRoute {
    events: Events,
    authorize: Arc<Authorize>,
}

impl EventsRoute {
    /// Events of `events` (the engine's), to the sockets `authorize` admits for a resource (and scope): a join it
    /// refuses gets `{"reason": "unauthorized"}`.
    pub fn new(
        events: Events,
        authorize: impl Fn(&SocketInfo, &str, Option<&str>) -> bool + Send + Sync + 'static,
    ) -> Self {
        EventsRoute { events, authorize: Arc::new(authorize) }
    }
}

impl ChannelRoute for EventsRoute {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        let prefix = self.events.topic("");
        let named = request.topic.strip_prefix(prefix.as_str()).filter(|rest| !rest.is_empty());
        let joined = named.map(|rest| match rest.split_once(':') {
            Some((resource, scope)) => (resource, Some(scope)),
            None => (rest, None),
        });
        let result = match joined {
            None => Err(json!({"reason": "no such topic"})),
            Some((resource, scope)) if (self.authorize)(request.socket, resource, scope) => {
                let subscription = match scope {
                    Some(scope) => self.events.subscribe_scoped(resource, scope),
                    None => self.events.subscribe(resource),
                };
                Ok(Joined { reply: json!({}), channel: Box::new(ListenOnly), subscriptions: vec![subscription] })
            }
            Some(_) => Err(json!({"reason": "unauthorized"})),
        };
        Box::pin(async move { result })
    }
}

/// A channel that only forwards its subscriptions' broadcasts: every client event is refused with a reason.
pub struct ListenOnly;

impl Channel for ListenOnly {
    fn handle_in<'a>(
        &'a mut self,
        event: &'a str,
        _payload: Value,
        _pusher: &'a Pusher,
    ) -> BoxFuture<'a, Option<Reply>> {
        let reply =
            (ReplyStatus::Error, json!({"reason": format!("this channel only sends; {event:?} is not accepted")}));
        Box::pin(async move { Some(reply) })
    }
}
