//! One Phoenix V2 text frame, decoded from and encoded to JSON.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

/// The topic of socket-level messages (heartbeats).
pub const PHOENIX_TOPIC: &str = "phoenix";

/// The reserved event names.
pub mod events {
    /// Join a channel.
    pub const JOIN: &str = "phx_join";
    /// Leave a channel.
    pub const LEAVE: &str = "phx_leave";
    /// A reply to a client push.
    pub const REPLY: &str = "phx_reply";
    /// The server closed a channel.
    pub const CLOSE: &str = "phx_close";
    /// A channel crashed.
    pub const ERROR: &str = "phx_error";
    /// Keep-alive on topic `phoenix`.
    pub const HEARTBEAT: &str = "heartbeat";
}

/// A frame from the client: `[join_ref, ref, topic, event, payload]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// The `ref` of the channel's `phx_join` (null for heartbeats and some pushes).
    pub join_ref: Option<String>,
    /// The push's own ref, echoed in the reply (null when no reply is wanted).
    pub reference: Option<String>,
    /// The channel topic, or `phoenix`.
    pub topic: String,
    /// The event name.
    pub event: String,
    /// The payload (a JSON object for every event the server handles).
    pub payload: Value,
}

/// Why client bytes are not a frame. The message is fit to send back or log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not valid JSON (or not UTF-8).
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an array of at least five elements.
    #[error("frame must be a JSON array [join_ref, ref, topic, event, payload]")]
    NotAnArray,
    /// `join_ref` or `ref` is neither a string nor null.
    #[error("frame {0} must be a string or null")]
    BadRef(&'static str),
    /// `topic` or `event` is not a non-empty string.
    #[error("frame {0} must be a non-empty string")]
    BadName(&'static str),
    /// A binary frame (V2 binary pushes are not supported by this server).
    #[error("binary frames are not supported; send JSON text frames")]
    Binary,
}

fn optional_ref(value: Value, what: &'static str) -> Result<Option<String>, FrameError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        // phoenix.js always sends strings, but a number is unambiguous: accept it as its decimal text.
        Value::Number(number) => Ok(Some(number.to_string())),
        _ => Err(FrameError::BadRef(what)),
    }
}

fn name(value: Value, what: &'static str) -> Result<String, FrameError> {
    match value {
        Value::String(text) if !text.is_empty() => Ok(text),
        _ => Err(FrameError::BadName(what)),
    }
}

impl Frame {
    /// Decodes a text frame. Elements after the fifth are ignored, as Phoenix does.
    ///
    /// # Errors
    /// [`FrameError`] saying what is wrong; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| FrameError::Json(error.to_string()))?;
        let Value::Array(items) = value else { return Err(FrameError::NotAnArray) };
        if items.len() < 5 {
            return Err(FrameError::NotAnArray);
        }
        let mut items = items.into_iter();
        let mut next = || items.next().unwrap_or(Value::Null);
        let join_ref = optional_ref(next(), "join_ref")?;
        let reference = optional_ref(next(), "ref")?;
        let topic = name(next(), "topic")?;
        let event = name(next(), "event")?;
        let payload = next();
        Ok(Frame { join_ref, reference, topic, event, payload })
    }
}

/// The status of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStatus {
    /// Success.
    Ok,
    /// Refused or failed.
    Error,
}

impl ReplyStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
        }
    }
}

fn encode(
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: &impl Serialize,
) -> Bytes {
    // Every argument is a string or a serialisable payload of maps with string keys, which cannot fail.
    let frame = (join_ref, reference, topic, event, payload);
    Bytes::from(serde_json::to_vec(&frame).unwrap_or_default())
}

/// `[join_ref, ref, topic, "phx_reply", {"status", "response"}]`.
pub fn encode_reply(
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    status: ReplyStatus,
    response: &impl Serialize,
) -> Bytes {
    #[derive(Serialize)]
    struct Reply<'a, R: Serialize> {
        status: &'a str,
        response: &'a R,
    }
    encode(join_ref, reference, topic, events::REPLY, &Reply { status: status.as_str(), response })
}

/// A push on a joined channel: `[join_ref, null, topic, event, payload]`.
pub fn encode_push(join_ref: Option<&str>, topic: &str, event: &str, payload: &impl Serialize) -> Bytes {
    encode(join_ref, None, topic, event, payload)
}

/// A broadcast, the same bytes for every subscriber: `[null, null, topic, event, payload]`.
pub fn encode_broadcast(topic: &str, event: &str, payload: &impl Serialize) -> Bytes {
    encode(None, None, topic, event, payload)
}

/// [`encode_broadcast`] of a PubSub message, its payload written in place by the message itself (no intermediate
/// value or buffer): the fastlane's one encoding per broadcast. A payload that cannot be serialised is sent as `null`.
pub fn encode_message(topic: &str, message: &dyn livebaton::pubsub::Message) -> Bytes {
    let mut out = Vec::with_capacity(64 + topic.len());
    out.extend_from_slice(b"[null,null,");
    // Strings serialise infallibly.
    let _ = serde_json::to_writer(&mut out, topic);
    out.push(b',');
    let _ = serde_json::to_writer(&mut out, message.event());
    out.push(b',');
    let start = out.len();
    if let Err(error) = message.write_payload(&mut out) {
        tracing::warn!(topic, event = message.event(), %error, "a broadcast's payload could not be serialised");
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
    out.push(b']');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_what_phoenix_js_sends() {
        let frame = Frame::decode(br#"["3","3","room:1","phx_join",{"tab_id":"t"}]"#).unwrap();
        assert_eq!(frame.join_ref.as_deref(), Some("3"));
        assert_eq!(frame.reference.as_deref(), Some("3"));
        assert_eq!((frame.topic.as_str(), frame.event.as_str()), ("room:1", "phx_join"));
        assert_eq!(frame.payload, json!({"tab_id": "t"}));
        let heartbeat = Frame::decode(br#"[null,"12","phoenix","heartbeat",{}]"#).unwrap();
        assert_eq!((heartbeat.join_ref, heartbeat.reference.as_deref()), (None, Some("12")));
        let extra = Frame::decode(br#"[null,"1","t","e",{},"ignored"]"#).unwrap();
        assert_eq!(extra.event, "e");
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(matches!(Frame::decode(b"{"), Err(FrameError::Json(_))));
        assert_eq!(Frame::decode(br#"{"topic":"t"}"#), Err(FrameError::NotAnArray));
        assert_eq!(Frame::decode(br#"[null,"1","t","e"]"#), Err(FrameError::NotAnArray));
        assert_eq!(Frame::decode(br#"[{},"1","t","e",{}]"#), Err(FrameError::BadRef("join_ref")));
        assert_eq!(Frame::decode(br#"[null,true,"t","e",{}]"#), Err(FrameError::BadRef("ref")));
        assert_eq!(Frame::decode(br#"[null,"1","","e",{}]"#), Err(FrameError::BadName("topic")));
        assert_eq!(Frame::decode(br#"[null,"1","t",5,{}]"#), Err(FrameError::BadName("event")));
    }

    #[test]
    fn encodes_replies_pushes_and_broadcasts_as_phoenix_does() {
        let reply = encode_reply(Some("3"), Some("3"), "room:1", ReplyStatus::Ok, &json!({}));
        assert_eq!(&reply[..], br#"["3","3","room:1","phx_reply",{"status":"ok","response":{}}]"#);
        let unmatched = encode_reply(None, Some("3"), "x", ReplyStatus::Error, &json!({"reason": "unmatched topic"}));
        assert_eq!(
            &unmatched[..],
            br#"[null,"3","x","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#
        );
        assert_eq!(
            &encode_push(Some("3"), "room:1", "shout", &json!({"a": 1}))[..],
            br#"["3",null,"room:1","shout",{"a":1}]"#
        );
        assert_eq!(
            &encode_broadcast("room:1", "presence_diff", &json!({}))[..],
            br#"[null,null,"room:1","presence_diff",{}]"#
        );
    }

    #[test]
    fn a_message_is_encoded_like_a_broadcast_of_its_payload() {
        let message = livebaton::pubsub::JsonMessage::new("saved", json!({"by": "Zoë \"Z\"", "n": [1, 2]}));
        let topic = "edit:data:\"7\"";
        assert_eq!(encode_message(topic, &message), encode_broadcast(topic, "saved", &message.payload));
    }

    /// A payload that cannot be serialised still makes a well-formed frame, with `null` in its place.
    #[test]
    fn an_unserialisable_payload_becomes_null() {
        #[derive(Debug)]
        struct Broken;
        impl livebaton::pubsub::Message for Broken {
            fn event(&self) -> &str {
                "broken"
            }
            fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
                out.extend_from_slice(b"{\"half");
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert_eq!(&encode_message("t", &Broken)[..], br#"[null,null,"t","broken",null]"#);
    }
}
