//! The wire protocols the load tool speaks, behind one small trait, so a scenario written against [`Protocol`] can
//! run against another server (the Pusher protocol and Socket.IO peers of issue 7 come later).
//!
//! A protocol only encodes and decodes text frames; the WebSocket itself is [`crate::client::Conn`]. Decoding is
//! lazy: [`Protocol::decode`] classifies a frame and hands back its payload as raw JSON text, so a scenario that
//! only counts presence frames (fan-out) does not pay for parsing them, and one that needs the members (join storm)
//! asks [`Protocol::members`] / [`Protocol::diff`] for them in one normalised shape.

pub mod phoenix;

use serde_json::Value;

/// A frame from the server, classified.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    /// The answer to one of this client's requests (a join, a leave or an event), matched by `reference`.
    Reply { topic: &'a str, reference: Option<&'a str>, ok: bool, response: Value },
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

/// One protocol's frames.
pub trait Protocol: Send + Sync + 'static {
    /// The server's name in the JSON line (`livebaton`).
    fn name(&self) -> &'static str;
    /// The WebSocket URL of a client authenticated with `token`.
    fn url(&self, addr: &str, token: &str) -> String;
    /// Joins (subscribes to) `topic`; `reference` identifies the join's reply and later frames of this membership.
    fn join(&self, topic: &str, reference: u64, payload: &Value) -> String;
    /// Leaves `topic`, joined as `join_ref`.
    fn leave(&self, topic: &str, join_ref: u64, reference: u64) -> String;
    /// A client event on a joined topic.
    fn push(&self, topic: &str, join_ref: u64, reference: u64, event: &str, payload: &Value) -> String;
    /// A keep-alive frame, if the protocol has one the client must send.
    fn heartbeat(&self, reference: u64) -> Option<String>;
    /// Classifies a text frame.
    fn decode<'a>(&self, text: &'a str) -> Incoming<'a>;
    /// The members of a [`Incoming::PresenceState`] payload.
    fn members(&self, payload: &str) -> Option<Members>;
    /// The joins and leaves of a [`Incoming::PresenceDiff`] payload.
    fn diff(&self, payload: &str) -> Option<(Members, Members)>;
}
