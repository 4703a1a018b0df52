//! Channels: what a topic does when a client joins it, sends it events, or a broadcast arrives for it.
//!
//! Like Phoenix's `channel "room:*", RoomChannel`: a [`Router`] maps topic patterns to [`ChannelRoute`]s, which
//! authorise a join and build a [`Channel`]. A joined channel is state inside its connection's task (one task per
//! connection, which keeps idle connections small); its async work (a join, an event) runs concurrently with the
//! connection's other channels and heartbeats. A channel that panics takes down only itself (the client gets
//! `phx_error`) and whatever it tracked (presences) ends with it.

use std::sync::Arc;

use crate::outbound::Outbound;
use crate::protocol::{ReplyStatus, encode_push, encode_reply};
use bytes::Bytes;
use livebaton::pubsub::{Broadcast, Subscription};
use serde::Serialize;
use serde_json::Value;

/// A boxed future, so channels can be trait objects (the engine's).
pub use livebaton::BoxFuture;

/// The signed-in person on a socket, as the application authenticated them at connect: id, display name, email, and
/// the application's role name (`admin`, `editor`, `viewer`; channels decide what it allows).
///
/// The four are one string in one allocation: every connection holds its user for its whole life, and as four
/// `String`s they were five heap blocks (the struct's and one per field, 256 bytes with glibc's headers) against two
/// here (`BENCHMARKS.md`, "RSS per idle connection").
#[derive(Clone)]
pub struct UserInfo {
    /// `id`, `name`, `email` and `role`, one after the other.
    text: Box<str>,
    /// Where `name`, `email` and `role` start in `text` (u32: a user's fields are far shorter than 4 GiB, and the
    /// struct stays as small as with three `usize`s before [`UserInfo::credential`] was added).
    starts: [u32; 3],
    /// See [`UserInfo::credential`].
    credential: u64,
    /// See [`UserInfo::data`]. An `Arc` because every page and channel of the socket shares the one value, which the
    /// application built once at connect; `None` costs nothing more than the pointer.
    data: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl PartialEq for UserInfo {
    /// Same fields, same credential, and the same application data (the same value, not an equal one).
    fn eq(&self, other: &Self) -> bool {
        let same_data = match (&self.data, &other.data) {
            (None, None) => true,
            (Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs),
            _ => false,
        };
        self.text == other.text && self.starts == other.starts && self.credential == other.credential && same_data
    }
}

impl Eq for UserInfo {}

impl UserInfo {
    /// A user with this id, display name, email and role name.
    pub fn new(id: &str, name: &str, email: &str, role: &str) -> Self {
        // Each field is cut at 64 KiB: nothing a user is named or called comes near it, and the offsets stay small.
        let (id, name, email, role) = (cut(id), cut(name), cut(email), cut(role));
        let text = [id, name, email, role].concat().into_boxed_str();
        let offset = |length: usize| u32::try_from(length).expect("four fields of at most 64 KiB");
        let name_start = offset(id.len());
        let email_start = name_start + offset(name.len());
        let role_start = email_start + offset(email.len());
        UserInfo { text, starts: [name_start, email_start, role_start], credential: 0, data: None }
    }

    /// The same user, carrying `data`: the application's own record of them (its user type, a tenant, permissions),
    /// built once when it authenticated the socket or the page, and read by every view and channel of it with
    /// [`UserInfo::data`].
    #[must_use]
    pub fn with_data<T: std::any::Any + Send + Sync>(mut self, data: T) -> Self {
        self.data = Some(Arc::new(data));
        self
    }

    /// The application's data for this user, if it set data of type `T` ([`UserInfo::with_data`]).
    pub fn data<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.data.as_deref()?.downcast_ref::<T>()
    }

    /// The same user, authenticated with `credential`: a number the application chooses at connect to tell which
    /// credentials the socket was opened with (livebaton's admin: the user's token generation, which a password or
    /// role change moves). The transport never reads it; a page or channel that writes compares it with the current
    /// one, so a socket opened before a revocation writes nothing even if no kick reached it.
    #[must_use]
    pub fn with_credential(mut self, credential: u64) -> Self {
        self.credential = credential;
        self
    }

    /// The credential the socket was authenticated with (0 unless the application set one).
    pub fn credential(&self) -> u64 {
        self.credential
    }

    /// The user's id.
    pub fn id(&self) -> &str {
        &self.text[..self.starts[0] as usize]
    }

    /// Display name.
    pub fn name(&self) -> &str {
        &self.text[self.starts[0] as usize..self.starts[1] as usize]
    }

    /// Email.
    pub fn email(&self) -> &str {
        &self.text[self.starts[1] as usize..self.starts[2] as usize]
    }

    /// The application's role name.
    pub fn role(&self) -> &str {
        &self.text[self.starts[2] as usize..]
    }
}

/// `field`, cut at 64 KiB on a character boundary.
fn cut(field: &str) -> &str {
    let mut end = field.len().min(usize::from(u16::MAX));
    while !field.is_char_boundary(end) {
        end -= 1;
    }
    &field[..end]
}

impl std::fmt::Debug for UserInfo {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UserInfo")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("email", &self.email())
            .field("role", &self.role())
            .finish()
    }
}

/// One connection: its id (unique per process) and its user.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    /// Unique id of this connection (the presence key of editing channels).
    pub connection_id: Arc<str>,
    /// Who connected.
    pub user: Arc<UserInfo>,
}

/// A reply to a client event: status and response.
pub type Reply = (ReplyStatus, Value);

/// A successful join: the reply's response, the channel, and the PubSub subscriptions whose broadcasts it handles
/// (at most two).
pub struct Joined {
    /// The join reply's `response`.
    pub reply: Value,
    /// The channel's state and behaviour.
    pub channel: Box<dyn Channel>,
    /// Broadcasts of these topics go through [`Channel::handle_out`].
    pub subscriptions: Vec<Subscription>,
}

/// What a join asks for.
pub struct JoinRequest<'a> {
    /// The topic joined.
    pub topic: &'a str,
    /// The `phx_join` payload (client params).
    pub payload: Value,
    /// The connection.
    pub socket: &'a SocketInfo,
    /// Pushes to this client on this channel.
    pub pusher: &'a Pusher,
}

/// A kind of channel: authorises joins for the topics routed to it.
pub trait ChannelRoute: Send + Sync + 'static {
    /// Joins `request.topic`, or refuses with the error reply's response (`{"reason": …}`).
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>>;
}

/// What to do with a broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Send it to the client as is (encoded once for every socket, when the broadcast's topic is this channel's).
    Forward,
    /// The channel handled it (pushed something else, or nothing).
    Handled,
}

/// Why a channel is ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The client left (`phx_leave`), or navigated: presences leave at once.
    Left,
    /// The connection closed or died: presences may linger for their grace period.
    Closed,
    /// The server is stopping, kicked the socket, or found its client silent for the idle timeout (no frame and no
    /// pong): presences leave at once.
    Shutdown,
    /// The client joined the same topic again; this instance gives way.
    Replaced,
}

/// A joined channel. Its methods run one at a time, in the order the client's events and the broadcasts arrived.
pub trait Channel: Send + 'static {
    /// Runs once, after the join reply was sent (a presence channel pushes `presence_state` here).
    fn after_join<'a>(&'a mut self, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        let _ = pusher;
        Box::pin(async {})
    }

    /// A client event; `Some` is sent as the reply, `None` sends nothing.
    fn handle_in<'a>(&'a mut self, event: &'a str, payload: Value, pusher: &'a Pusher) -> BoxFuture<'a, Option<Reply>>;

    /// A client event with the means to answer it from elsewhere: the transport calls this, and by default it replies
    /// with what [`Channel::handle_in`] returns. A channel that hands events to another task (a live view) overrides it
    /// and lets that task send the reply through the same queue as its pushes, so a push made after the event was
    /// handled can never reach the client before the event's reply.
    fn handle_in_with<'a>(
        &'a mut self,
        event: &'a str,
        payload: Value,
        responder: Responder,
        pusher: &'a Pusher,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some((status, response)) = self.handle_in(event, payload, pusher).await {
                responder.reply(status, &response);
            }
        })
    }

    /// A broadcast on one of the channel's subscriptions.
    fn handle_out(&mut self, broadcast: &Arc<Broadcast>, pusher: &Pusher) -> Outgoing {
        let _ = (broadcast, pusher);
        Outgoing::Forward
    }

    /// The channel's subscription lagged and `missed` broadcasts were dropped: resynchronise the client.
    fn handle_lag<'a>(&'a mut self, missed: u64, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        let _ = (missed, pusher);
        Box::pin(async {})
    }

    /// The channel is ending.
    fn terminate(&mut self, reason: Termination) {
        let _ = reason;
    }
}

/// How long [`Pusher::push_waiting`] waits for room in a client's queue before giving up on the client.
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends frames to one client on one channel. Never waits: if the client's queue is full the socket is closed as a
/// slow consumer instead of buffering without bound.
#[derive(Clone)]
pub struct Pusher {
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) topic: Arc<str>,
    pub(crate) join_ref: Option<Arc<str>>,
}

impl Pusher {
    pub(crate) fn new(outbound: Arc<Outbound>, topic: Arc<str>, join_ref: Option<Arc<str>>) -> Self {
        Pusher { outbound, topic, join_ref }
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Pushes `[join_ref, null, topic, event, payload]`.
    pub fn push(&self, event: &str, payload: &impl Serialize) {
        self.send(encode_push(self.join_ref.as_deref(), &self.topic, event, payload));
    }

    /// Pushes like [`Pusher::push`], but waits (up to [`QUEUE_WAIT`]) for room in the client's queue instead of
    /// treating a full queue as a slow consumer: for bursts the channel itself produces, such as a big room's
    /// `presence_state` in many frames, which a healthy client drains as fast as the socket writes.
    pub async fn push_waiting(&self, event: &str, payload: &impl Serialize) {
        let frame = encode_push(self.join_ref.as_deref(), &self.topic, event, payload);
        // A refusal already marked the connection as a slow consumer (or it has closed): nothing else to do here.
        let _ = self.outbound.push_waiting(frame, QUEUE_WAIT).await;
    }

    /// Sends an already encoded frame.
    pub fn send(&self, frame: Bytes) {
        // A full queue marks the connection as a slow consumer, which closes it; a closed one has nobody to tell.
        let _ = self.outbound.push(frame);
    }

    pub(crate) fn reply(&self, reference: Option<&str>, status: ReplyStatus, response: &Value) {
        self.send(encode_reply(self.join_ref.as_deref(), reference, &self.topic, status, response));
    }
}

/// The answer to one client event: sends `phx_reply` with the event's ref, once.
pub struct Responder {
    pusher: Pusher,
    reference: Option<String>,
}

impl Responder {
    pub(crate) fn new(pusher: Pusher, reference: Option<String>) -> Self {
        Responder { pusher, reference }
    }

    /// Replies `status` with `response`.
    pub fn reply(self, status: ReplyStatus, response: &Value) {
        self.pusher.reply(self.reference.as_deref(), status, response);
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").field("topic", &self.pusher.topic).field("reference", &self.reference).finish()
    }
}

/// Topic patterns to channel routes. `room:*` matches every topic starting with `room:`; other patterns match
/// exactly. The first match wins.
#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<(String, Arc<dyn ChannelRoute>)>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes topics matching `pattern` to `route`.
    pub fn channel(mut self, pattern: &str, route: impl ChannelRoute) -> Self {
        self.routes.push((pattern.to_owned(), Arc::new(route)));
        self
    }

    /// The route for `topic`.
    pub fn route(&self, topic: &str) -> Option<Arc<dyn ChannelRoute>> {
        self.routes
            .iter()
            .find(|(pattern, _)| match pattern.strip_suffix('*') {
                Some(prefix) => topic.starts_with(prefix) && topic.len() > prefix.len(),
                None => pattern == topic,
            })
            .map(|(_, route)| route.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::UserInfo;

    #[test]
    fn a_users_fields_come_back_as_given() {
        let user = UserInfo::new("42", "Zoë", "zoe@example.com", "editor");
        assert_eq!((user.id(), user.name(), user.email(), user.role()), ("42", "Zoë", "zoe@example.com", "editor"));
        let visitor = UserInfo::new("v-1", "Visitor", "", "visitor");
        assert_eq!((visitor.id(), visitor.name(), visitor.email(), visitor.role()), ("v-1", "Visitor", "", "visitor"));
        // Fields are told apart by position, not by content: shifting a boundary changes the user.
        assert_ne!(UserInfo::new("1", "23", "", "r"), UserInfo::new("12", "3", "", "r"));
    }

    /// Every connection holds its user in an `Arc` for its whole life: 56 bytes plus the `Arc`'s 16 is a 72-byte
    /// block (glibc's 80-byte chunk). The application's data pointer added 16 bytes to it (a 64-byte chunk before).
    #[test]
    fn a_user_stays_within_its_allocation_class() {
        assert!(std::mem::size_of::<UserInfo>() <= 56, "{} bytes", std::mem::size_of::<UserInfo>());
    }

    #[test]
    fn the_applications_data_comes_back_by_its_type() {
        #[derive(Debug, PartialEq)]
        struct Member {
            color: &'static str,
        }
        let user = UserInfo::new("7", "Ann", "", "").with_data(Member { color: "teal" });
        assert_eq!(user.data::<Member>(), Some(&Member { color: "teal" }));
        assert_eq!(user.data::<String>(), None, "another type is not there");
        assert_eq!(UserInfo::new("7", "Ann", "", "").data::<Member>(), None);
        let shared = user.clone();
        assert_eq!(shared, user, "a clone shares the data");
        assert_ne!(UserInfo::new("7", "Ann", "", "").with_data(Member { color: "teal" }), user, "another value");
    }
}
