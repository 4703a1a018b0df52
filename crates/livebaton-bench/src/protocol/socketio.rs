//! Socket.IO v4 over a plain WebSocket (Engine.IO v4 framing), as the room + presence server in
//! `bench/peers/socketio/server.mjs` speaks it.
//!
//! - The URL is `/socket.io/?EIO=4&transport=websocket`. The server opens with the Engine.IO open packet
//!   `0{"sid", "pingInterval", …}`; the client connects to the main namespace with `40`, answered by `40{"sid"}`.
//! - Engine.IO ping/pong: the server sends `2`, the client answers `3` at once.
//! - Socket.IO events are `42[<name>, …args]`; one the client wants acknowledged is `42<id>[…]`, answered by
//!   `43<id>[<answer>]`. The client's reference is the ack id, so a join, a leave or a push each get a reply.
//! - Client → server: `join(room, {"user"})`, `leave(room)`, `<event>(room, payload)`. Server → client, always
//!   `[<event>, room, payload]`: `presence_state` `{user: [socket ids]}` (after the join's ack),
//!   `presence_diff` `{"joins": {…}, "leaves": {…}}`, and other members' events (not echoed to the sender).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::phoenix::head_element;
use super::{Incoming, Members, Opening, Protocol, Session};

/// The Socket.IO peer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SocketIo;

/// An event packet `42[…]` split without parsing its payload: `(name, room, payload text)`.
fn event_packet(text: &str) -> Option<(&str, &str, &str)> {
    let array = text.strip_prefix("42")?.trim();
    let inner = array.strip_prefix('[')?.strip_suffix(']')?;
    let (event, rest) = head_element(inner)?;
    let (room, rest) = head_element(rest)?;
    Some((event?, room?, rest.trim()))
}

/// An ack packet `43<id>[answer]`: `(id, answer)`.
fn ack_packet(text: &str) -> Option<(&str, Value)> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, args) = rest.split_at(digits);
    if id.is_empty() {
        return None;
    }
    let mut args: Vec<Value> = serde_json::from_str(args).ok()?;
    Some((id, if args.is_empty() { Value::Null } else { args.swap_remove(0) }))
}

#[derive(Deserialize)]
struct Diff {
    joins: HashMap<String, Vec<String>>,
    leaves: HashMap<String, Vec<String>>,
}

impl Protocol for SocketIo {
    fn name(&self) -> &'static str {
        "socketio"
    }

    fn url(&self, addr: &str, _credential: &str) -> String {
        format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
    }

    fn opens_with_handshake(&self) -> bool {
        true
    }

    fn open(&self, text: &str) -> Opening {
        if text.starts_with("0{") {
            return Opening::Send("40".to_owned());
        }
        if let Some(connected) = text.strip_prefix("40") {
            let sid = serde_json::from_str::<Value>(connected)
                .ok()
                .and_then(|answer| answer["sid"].as_str().map(str::to_owned));
            return Opening::Ready(sid);
        }
        if text.starts_with("44") {
            return Opening::Refused(text.to_owned());
        }
        Opening::Skip
    }

    fn keepalive_reply(&self, text: &str) -> Option<String> {
        (text == "2").then(|| "3".to_owned())
    }

    fn join(&self, session: &Session, topic: &str, reference: u64, _payload: &Value) -> String {
        format!("42{reference}{}", json!(["join", topic, {"user": session.credential}]))
    }

    fn leave(&self, topic: &str, _join_ref: u64, reference: u64) -> String {
        format!("42{reference}{}", json!(["leave", topic]))
    }

    fn push(&self, topic: &str, _join_ref: u64, reference: u64, event: &str, payload: &Value) -> String {
        format!("42{reference}{}", json!([event, topic, payload]))
    }

    fn heartbeat(&self, _reference: u64) -> Option<String> {
        // The server pings (`2`); the client only answers.
        None
    }

    fn decode<'a>(&self, text: &'a str) -> Incoming<'a> {
        if let Some((event, topic, payload)) = event_packet(text) {
            return match event {
                "presence_state" => Incoming::PresenceState { topic, payload },
                "presence_diff" => Incoming::PresenceDiff { topic, payload },
                _ => Incoming::Event { topic, event, payload },
            };
        }
        if let Some((id, answer)) = ack_packet(text) {
            return Incoming::Reply {
                topic: "",
                reference: Some(id),
                ok: answer["ok"] == true,
                response: answer,
                state: None,
            };
        }
        match text {
            "2" | "3" => Incoming::Ignored,
            "1" => Incoming::Closed { topic: "", event: "engine.io close" },
            "41" => Incoming::Closed { topic: "", event: "socket.io disconnect" },
            _ => Incoming::Malformed,
        }
    }

    fn members(&self, payload: &str) -> Option<Members> {
        let state: HashMap<String, Vec<String>> = serde_json::from_str(payload).ok()?;
        Some(state.into_iter().collect())
    }

    fn diff(&self, payload: &str) -> Option<(Members, Members)> {
        let diff: Diff = serde_json::from_str(payload).ok()?;
        Some((diff.joins.into_iter().collect(), diff.leaves.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_connects_to_the_main_namespace() {
        let io = SocketIo;
        assert!(io.opens_with_handshake());
        let open = r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(io.open(open), Opening::Send("40".into()));
        assert_eq!(io.open(r#"40{"sid":"s1"}"#), Opening::Ready(Some("s1".into())));
        assert!(matches!(io.open(r#"44{"message":"Not authorized"}"#), Opening::Refused(_)));
        assert_eq!(io.open("2"), Opening::Skip);
        assert_eq!(io.keepalive_reply("2").as_deref(), Some("3"));
        assert_eq!(io.keepalive_reply(r#"42["shout","r",{}]"#), None);
    }

    #[test]
    fn requests_ask_for_an_ack_with_their_reference() {
        let io = SocketIo;
        let session = Session { credential: "u1".into(), id: None };
        assert_eq!(io.join(&session, "room:a", 4, &json!({})), r#"424["join","room:a",{"user":"u1"}]"#);
        assert_eq!(io.leave("room:a", 4, 5), r#"425["leave","room:a"]"#);
        assert_eq!(io.push("room:a", 4, 12, "shout", &json!({"n": 1})), r#"4212["shout","room:a",{"n":1}]"#);
        assert_eq!(io.heartbeat(1), None);
    }

    #[test]
    fn packets_are_classified() {
        let io = SocketIo;
        assert_eq!(
            io.decode(r#"42["shout","room:a",{"sent_us":3,"pad":"]"}]"#),
            Incoming::Event { topic: "room:a", event: "shout", payload: r#"{"sent_us":3,"pad":"]"}"# }
        );
        assert_eq!(
            io.decode(r#"42["presence_state","room:a",{"u1":["s1"]}]"#),
            Incoming::PresenceState { topic: "room:a", payload: r#"{"u1":["s1"]}"# }
        );
        let Incoming::Reply { reference, ok, .. } = io.decode(r#"4317[{"ok":true}]"#) else { panic!() };
        assert_eq!((reference, ok), (Some("17"), true));
        assert!(io.is_reply(reference, "", "room:a", "17"));
        assert!(matches!(io.decode(r#"433[{"ok":false,"reason":"x"}]"#), Incoming::Reply { ok: false, .. }));
        assert_eq!(io.decode("3"), Incoming::Ignored);
        assert!(matches!(io.decode("41"), Incoming::Closed { .. }));
        assert_eq!(io.decode("43[{}]"), Incoming::Malformed);
        assert_eq!(io.decode(r#"42["x"]"#), Incoming::Malformed);
    }

    #[test]
    fn presence_payloads_are_normalised() {
        let io = SocketIo;
        let mut members = io.members(r#"{"u1":["s1","s2"],"u2":["s3"]}"#).unwrap();
        members.sort();
        assert_eq!(members, vec![("u1".into(), vec!["s1".into(), "s2".into()]), ("u2".into(), vec!["s3".into()])]);
        assert_eq!(
            io.diff(r#"{"joins":{"u3":["s4"]},"leaves":{}}"#),
            Some((vec![("u3".into(), vec!["s4".into()])], vec![]))
        );
    }
}
