//! The wire protocols the load tool speaks, behind one small trait, so a scenario written against [`Protocol`] runs
//! against livebaton ([`phoenix`]: Phoenix Channels V2) and its peers ([`pusher`]: the Pusher protocol 7 of soketi
//! and sockudo; [`socketio`]: Socket.IO v4 over Engine.IO v4).
//!
//! A protocol only encodes and decodes text frames; the WebSocket itself is [`crate::client::Conn`]. Some protocols
//! open with a handshake ([`Protocol::open`]: Pusher's `pusher:connection_established` carries the socket id its
//! channel auth signs; Socket.IO's Engine.IO `0{…}` open is answered with a `40` namespace connect) and ping the
//! client ([`Protocol::keepalive_reply`]), which [`crate::client::Conn`] handles; what is left is the same for every
//! protocol: joins and their replies, presence states and diffs, events. Decoding is
//! lazy: [`Protocol::decode`] classifies a frame and hands back its payload as raw JSON text, so a scenario that
//! only counts presence frames (fan-out) does not pay for parsing them, and one that needs the members (join storm)
//! asks [`Protocol::members`] / [`Protocol::diff`] for them in one normalised shape.

pub mod phoenix;
pub mod pusher;
pub mod socketio;

use std::borrow::Cow;

use serde_json::Value;

/// A frame from the server, classified.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    /// The answer to one of this client's requests (a join, a leave or an event), matched by `reference`, or, in a
    /// protocol without references (Pusher), by `topic` ([`Protocol::is_reply`]). A join reply that also carries the
    /// topic's presence list (Pusher's `subscription_succeeded`) has it in `state`, to be read with
    /// [`Protocol::members`].
    Reply { topic: &'a str, reference: Option<&'a str>, ok: bool, response: Value, state: Option<&'a str> },
    /// A topic's full presence list (its first chunk, on livebaton: the rest follows as diffs that only join).
    PresenceState { topic: &'a str, payload: &'a str },
    /// Members that joined and left a topic.
    PresenceDiff { topic: &'a str, payload: &'a str },
    /// The server ended this client's membership of a topic (`phx_close`, `phx_error`).
    Closed { topic: &'a str, event: &'a str },
    /// Any other push or broadcast; the payload is raw JSON text.
    Event { topic: &'a str, event: &'a str, payload: &'a str },
    /// Protocol housekeeping the scenarios do not look at (heartbeat replies).
    Ignored,
    /// Not a frame of this protocol.
    Malformed,
}

/// Presence members in one shape for every protocol: `(key, ids of its entries)`. On livebaton a key is a user id
/// on `room:*` (one entry, `phx_ref`, per connection) and a connection id on `edit:*`.
pub type Members = Vec<(String, Vec<String>)>;

/// What a connection knows about itself once it is open.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Who the client is: a bearer token on livebaton (in the URL), a user id on the peers (in each join).
    pub credential: String,
    /// The id the server gave the connection in its handshake (Pusher's `socket_id`, Socket.IO's `sid`).
    pub id: Option<String>,
}

/// The next step of a protocol's opening handshake, given the frame just read.
#[derive(Debug, PartialEq)]
pub enum Opening {
    /// Open; the server's id for this connection, if it gave one.
    Ready(Option<String>),
    /// Send this frame and read on.
    Send(String),
    /// Not a frame of the handshake; read on.
    Skip,
    /// The server refused the connection.
    Refused(String),
}

/// One protocol's frames.
pub trait Protocol: Send + Sync + 'static {
    /// The server's name in the JSON line (`livebaton`, `soketi`, …).
    fn name(&self) -> &'static str;
    /// The WebSocket URL of a client with `credential` (a token on livebaton; the peers ignore it here).
    fn url(&self, addr: &str, credential: &str) -> String;
    /// Whether the server speaks first, so the connection must read frames through [`Protocol::open`] before it
    /// is ready.
    fn opens_with_handshake(&self) -> bool {
        false
    }
    /// One step of the opening handshake (only called when [`Protocol::opens_with_handshake`]).
    fn open(&self, _text: &str) -> Opening {
        Opening::Ready(None)
    }
    /// The answer to a server's keep-alive frame (Engine.IO `2`, `pusher:ping`), which the connection sends at once
    /// without showing the frame to the scenario.
    fn keepalive_reply(&self, _text: &str) -> Option<String> {
        None
    }
    /// Joins (subscribes to) `topic`; `reference` identifies the join's reply and later frames of this membership.
    fn join(&self, session: &Session, topic: &str, reference: u64, payload: &Value) -> String;
    /// Leaves `topic`, joined as `join_ref`.
    fn leave(&self, topic: &str, join_ref: u64, reference: u64) -> String;
    /// A client event on a joined topic.
    fn push(&self, topic: &str, join_ref: u64, reference: u64, event: &str, payload: &Value) -> String;
    /// A keep-alive frame, if the protocol has one the client must send.
    fn heartbeat(&self, reference: u64) -> Option<String>;
    /// Classifies a text frame.
    fn decode<'a>(&self, text: &'a str) -> Incoming<'a>;
    /// Whether a [`Incoming::Reply`] from `reply_topic` with `reference` answers the join of `topic` sent as
    /// `join_ref`.
    fn is_reply(&self, reference: Option<&str>, _reply_topic: &str, _topic: &str, join_ref: &str) -> bool {
        reference == Some(join_ref)
    }
    /// The JSON text of an [`Incoming::Event`]'s payload (a protocol whose events carry their data as a JSON string,
    /// like Pusher, unwraps it here).
    fn data<'a>(&self, payload: &'a str) -> Option<Cow<'a, str>> {
        Some(Cow::Borrowed(payload))
    }
    /// The members of a [`Incoming::PresenceState`] payload (or of a join reply's `state`).
    fn members(&self, payload: &str) -> Option<Members>;
    /// The joins and leaves of a [`Incoming::PresenceDiff`] payload.
    fn diff(&self, payload: &str) -> Option<(Members, Members)>;
}
