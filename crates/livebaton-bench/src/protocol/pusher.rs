//! The Pusher Channels protocol 7 (JSON text frames `{"event", "channel", "data"}`), as soketi and sockudo speak
//! it, with presence channels.
//!
//! - The URL is `/app/<key>?protocol=7&client=livebaton-bench&version=…`. The server opens with
//!   `pusher:connection_established`, whose `data` (a JSON string) holds the `socket_id`.
//! - A topic `room:bench` is the channel `presence-room-bench` (`:` is not allowed in Pusher channel names).
//! - Joining is `pusher:subscribe` with `channel_data` `{"user_id": <credential>, "user_info": {}}` and
//!   `auth` = `<key>:<hex HMAC-SHA256(secret, "<socket_id>:<channel>:<channel_data>")>`, computed here from the app's
//!   key and secret as an application's auth endpoint would ([`channel_auth`]). The server answers
//!   `pusher_internal:subscription_succeeded` with the members (`{"presence": {"ids", "hash", "count"}}`), which is
//!   both the join reply and the presence state; there are no references, so a reply is matched by its channel.
//! - `pusher_internal:member_added` / `member_removed` are the presence diffs. Pusher presence is per user: a
//!   member is a `user_id`, so every client here is its own user and a member has one entry (its user id).
//! - A client event `shout` is sent as `client-shout` (the server relays it to the channel's other members, not
//!   back to the sender) and read back as `shout`; its `data` is the payload object. Client events get no reply.
//! - The server pings an idle connection with `pusher:ping`; the client answers `pusher:pong`.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Incoming, Members, Opening, Protocol, Session};

/// The app every peer is configured with (id `livebaton-bench`; `bench/peers/soketi/server.mjs`,
/// `bench/peers/sockudo/config.json`).
pub const APP_KEY: &str = "livebaton-bench-key";
pub const APP_SECRET: &str = "livebaton-bench-secret";

/// A Pusher protocol 7 server; `name` is the peer's name in the JSON line.
#[derive(Debug, Clone, Copy)]
pub struct Pusher {
    pub name: &'static str,
}

/// The `auth` string of a subscription to `channel` (`<key>:<signature>`): HMAC-SHA256 with the app secret over
/// `<socket_id>:<channel>` plus `:<channel_data>` for a presence channel, in lower-case hex.
pub fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(socket_id.as_bytes());
    mac.update(b":");
    mac.update(channel.as_bytes());
    if let Some(data) = channel_data {
        mac.update(b":");
        mac.update(data.as_bytes());
    }
    let signature = mac.finalize().into_bytes();
    let mut auth = String::with_capacity(key.len() + 1 + 64);
    auth.push_str(key);
    auth.push(':');
    for byte in signature {
        auth.push_str(&format!("{byte:02x}"));
    }
    auth
}

/// A topic's channel: `presence-` and the topic with `:` made `-`.
pub fn channel_name(topic: &str) -> String {
    format!("presence-{}", topic.replace(':', "-"))
}

/// The head of a frame; `data` is left unparsed. Event and channel names are borrowed: servers never escape
/// anything in them (a frame where they did would not parse, and counts as malformed).
#[derive(Deserialize)]
struct Head<'a> {
    event: &'a str,
    #[serde(default)]
    channel: Option<&'a str>,
}

/// A whole frame, `data` parsed (a JSON string or an object).
#[derive(Deserialize)]
struct Frame {
    #[serde(default)]
    data: Value,
}

impl Frame {
    /// `data` as a value: a string is parsed as the JSON it holds.
    fn data(text: &str) -> Option<Value> {
        let frame: Frame = serde_json::from_str(text).ok()?;
        match frame.data {
            Value::String(inner) => serde_json::from_str(&inner).ok(),
            other => Some(other),
        }
    }
}

/// A user id as a string (servers keep what the client sent: a string here, but numbers are allowed).
fn user_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

impl Protocol for Pusher {
    fn name(&self) -> &'static str {
        self.name
    }

    fn url(&self, addr: &str, _credential: &str) -> String {
        format!("ws://{addr}/app/{APP_KEY}?protocol=7&client=livebaton-bench&version={}", env!("CARGO_PKG_VERSION"))
    }

    fn opens_with_handshake(&self) -> bool {
        true
    }

    fn open(&self, text: &str) -> Opening {
        let Ok(head) = serde_json::from_str::<Head>(text) else { return Opening::Skip };
        match head.event {
            "pusher:connection_established" => {
                match Frame::data(text).as_ref().and_then(|data| data["socket_id"].as_str()) {
                    Some(socket_id) => Opening::Ready(Some(socket_id.to_owned())),
                    None => Opening::Refused(format!("no socket_id in {text}")),
                }
            }
            "pusher:error" => Opening::Refused(text.to_owned()),
            _ => Opening::Skip,
        }
    }

    fn keepalive_reply(&self, text: &str) -> Option<String> {
        // Cheap test first: this runs on every frame.
        if !text.contains("pusher:ping") {
            return None;
        }
        let head = serde_json::from_str::<Head>(text).ok()?;
        (head.event == "pusher:ping").then(|| json!({"event": "pusher:pong", "data": {}}).to_string())
    }

    fn join(&self, session: &Session, topic: &str, _reference: u64, _payload: &Value) -> String {
        let channel = channel_name(topic);
        let channel_data = json!({"user_id": session.credential, "user_info": {}}).to_string();
        let socket_id = session.id.as_deref().unwrap_or_default();
        let auth = channel_auth(APP_KEY, APP_SECRET, socket_id, &channel, Some(&channel_data));
        json!({
            "event": "pusher:subscribe",
            "data": {"channel": channel, "auth": auth, "channel_data": channel_data},
        })
        .to_string()
    }

    fn leave(&self, topic: &str, _join_ref: u64, _reference: u64) -> String {
        json!({"event": "pusher:unsubscribe", "data": {"channel": channel_name(topic)}}).to_string()
    }

    fn push(&self, topic: &str, _join_ref: u64, _reference: u64, event: &str, payload: &Value) -> String {
        json!({"event": format!("client-{event}"), "channel": channel_name(topic), "data": payload}).to_string()
    }

    fn heartbeat(&self, _reference: u64) -> Option<String> {
        Some(json!({"event": "pusher:ping", "data": {}}).to_string())
    }

    fn decode<'a>(&self, text: &'a str) -> Incoming<'a> {
        let Ok(Head { event, channel }) = serde_json::from_str::<Head>(text) else { return Incoming::Malformed };
        let topic = channel.unwrap_or_default();
        match event {
            "pusher_internal:subscription_succeeded" => {
                Incoming::Reply { topic, reference: None, ok: true, response: Value::Null, state: Some(text) }
            }
            "pusher:subscription_error" | "pusher:error" => Incoming::Reply {
                topic,
                reference: None,
                ok: false,
                response: Frame::data(text).unwrap_or(Value::Null),
                state: None,
            },
            "pusher_internal:member_added" | "pusher_internal:member_removed" => {
                Incoming::PresenceDiff { topic, payload: text }
            }
            "pusher:pong" | "pusher:ping" | "pusher:connection_established" => Incoming::Ignored,
            _ => Incoming::Event { topic, event: event.strip_prefix("client-").unwrap_or(event), payload: text },
        }
    }

    fn is_reply(&self, reference: Option<&str>, reply_topic: &str, topic: &str, _join_ref: &str) -> bool {
        reference.is_none() && reply_topic == channel_name(topic)
    }

    fn data<'a>(&self, payload: &'a str) -> Option<Cow<'a, str>> {
        Frame::data(payload).map(|data| Cow::Owned(data.to_string()))
    }

    fn members(&self, payload: &str) -> Option<Members> {
        let data = Frame::data(payload)?;
        let ids = data["presence"]["ids"].as_array()?;
        Some(ids.iter().filter_map(user_id).map(|id| (id.clone(), vec![id])).collect())
    }

    fn diff(&self, payload: &str) -> Option<(Members, Members)> {
        let head = serde_json::from_str::<Head>(payload).ok()?;
        let id = user_id(&Frame::data(payload)?["user_id"])?;
        let member = vec![(id.clone(), vec![id])];
        match head.event {
            "pusher_internal:member_added" => Some((member, Vec::new())),
            "pusher_internal:member_removed" => Some((Vec::new(), member)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_auth_matches_the_pusher_docs_worked_example() {
        // "Generating authentication and authorization strings", pusher.com/docs/channels/library_auth_reference:
        // key 278d425bdf160c739803, secret 7ad3773142a6692b25b8, socket 1234.1234, channel private-foobar.
        assert_eq!(
            channel_auth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", None),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        // A presence channel signs `:<channel_data>` too (value from `openssl dgst -sha256 -hmac`).
        assert_eq!(
            channel_auth(
                "278d425bdf160c739803",
                "7ad3773142a6692b25b8",
                "1234.1234",
                "presence-foobar",
                Some(r#"{"user_id":"10","user_info":{}}"#)
            ),
            "278d425bdf160c739803:9cf6c7420c549d94406afd4dce4dd3858837462ffd0af7314a7bb2c35d5f52e5"
        );
    }

    #[test]
    fn the_handshake_yields_the_socket_id() {
        let pusher = Pusher { name: "soketi" };
        assert!(pusher.opens_with_handshake());
        assert_eq!(
            pusher.open(
                r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}"#
            ),
            Opening::Ready(Some("123.456".into()))
        );
        assert!(matches!(
            pusher.open(r#"{"event":"pusher:error","data":{"code":4001,"message":"App key not found"}}"#),
            Opening::Refused(_)
        ));
        assert_eq!(
            pusher.keepalive_reply(r#"{"event":"pusher:ping","data":"{}"}"#).as_deref(),
            Some(r#"{"data":{},"event":"pusher:pong"}"#)
        );
        assert_eq!(pusher.keepalive_reply(r#"{"event":"client-shout","channel":"c","data":{}}"#), None);
    }

    #[test]
    fn subscribe_is_signed_with_the_sessions_socket_id() {
        let pusher = Pusher { name: "sockudo" };
        let session = Session { credential: "u7".into(), id: Some("1.2".into()) };
        let frame: Value = serde_json::from_str(&pusher.join(&session, "room:bench", 1, &json!({}))).unwrap();
        assert_eq!(frame["event"], "pusher:subscribe");
        let data = &frame["data"];
        assert_eq!(data["channel"], "presence-room-bench");
        assert_eq!(data["channel_data"], r#"{"user_id":"u7","user_info":{}}"#);
        let expected =
            channel_auth(APP_KEY, APP_SECRET, "1.2", "presence-room-bench", Some(r#"{"user_id":"u7","user_info":{}}"#));
        assert_eq!(data["auth"], expected);
        let push: Value = serde_json::from_str(&pusher.push("room:bench", 1, 2, "shout", &json!({"n": 1}))).unwrap();
        assert_eq!(push, json!({"event": "client-shout", "channel": "presence-room-bench", "data": {"n": 1}}));
    }

    #[test]
    fn frames_are_classified_and_presence_normalised() {
        let pusher = Pusher { name: "soketi" };
        let succeeded = r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room-bench","data":"{\"presence\":{\"ids\":[\"a\",\"b\"],\"hash\":{\"a\":{},\"b\":{}},\"count\":2}}"}"#;
        let Incoming::Reply { topic, reference, ok, state, .. } = pusher.decode(succeeded) else { panic!() };
        assert_eq!((topic, reference, ok), ("presence-room-bench", None, true));
        assert!(pusher.is_reply(reference, topic, "room:bench", "1"));
        assert!(!pusher.is_reply(reference, topic, "room:other", "1"));
        let mut members = pusher.members(state.unwrap()).unwrap();
        members.sort();
        assert_eq!(members, vec![("a".into(), vec!["a".into()]), ("b".into(), vec!["b".into()])]);

        let added = r#"{"event":"pusher_internal:member_added","channel":"presence-room-bench","data":"{\"user_id\":\"c\",\"user_info\":{}}"}"#;
        assert_eq!(pusher.decode(added), Incoming::PresenceDiff { topic: "presence-room-bench", payload: added });
        assert_eq!(pusher.diff(added), Some((vec![("c".into(), vec!["c".into()])], vec![])));
        let removed =
            r#"{"event":"pusher_internal:member_removed","channel":"presence-room-bench","data":{"user_id":7}}"#;
        assert_eq!(pusher.diff(removed), Some((vec![], vec![("7".into(), vec!["7".into()])])));

        let shout = r#"{"event":"client-shout","channel":"presence-room-bench","data":"{\"sent_us\":5}"}"#;
        assert_eq!(
            pusher.decode(shout),
            Incoming::Event { topic: "presence-room-bench", event: "shout", payload: shout }
        );
        assert_eq!(pusher.data(shout).as_deref(), Some(r#"{"sent_us":5}"#));
        let object = r#"{"event":"client-shout","channel":"presence-room-bench","data":{"sent_us":5}}"#;
        assert_eq!(pusher.data(object).as_deref(), Some(r#"{"sent_us":5}"#));
        assert!(matches!(
            pusher.decode(r#"{"event":"pusher:error","data":{"code":4301,"message":"rate"}}"#),
            Incoming::Reply { ok: false, topic: "", .. }
        ));
        assert_eq!(pusher.decode(r#"{"event":"pusher:pong","data":{}}"#), Incoming::Ignored);
        assert_eq!(pusher.decode("[1]"), Incoming::Malformed);
    }
}
