//! The Phoenix Channels V2 JSON wire protocol: `[join_ref, ref, topic, event, payload]` text frames.
//!
//! [`Frame::decode`] turns client bytes into a frame or a [`FrameError`] that says exactly what is wrong (it never
//! panics, whatever the bytes); the `encode_*` functions build the server's frames: replies, pushes and broadcasts.

mod frame;

pub use frame::{
    Frame, FrameError, PHOENIX_TOPIC, ReplyStatus, encode_broadcast, encode_message, encode_push, encode_reply, events,
};
