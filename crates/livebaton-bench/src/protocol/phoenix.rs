//! Phoenix Channels V2 (JSON text frames `[join_ref, ref, topic, event, payload]`), as livebaton speaks it
//! (`docs/protocol.md` §1–§2, §4).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Incoming, Members, Protocol, Session};

/// livebaton's live transport: Phoenix Channels V2 on `/live/websocket?vsn=2.0.0&token=…`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PhoenixV2;

impl Protocol for PhoenixV2 {
    fn name(&self) -> &'static str {
        "livebaton"
    }

    fn url(&self, addr: &str, token: &str) -> String {
        format!("ws://{addr}/live/websocket?vsn=2.0.0&token={}", crate::http::percent_encode(token))
    }

    fn join(&self, _session: &Session, topic: &str, reference: u64, payload: &Value) -> String {
        let reference = reference.to_string();
        json!([reference, reference, topic, "phx_join", payload]).to_string()
    }

    fn leave(&self, topic: &str, join_ref: u64, reference: u64) -> String {
        json!([join_ref.to_string(), reference.to_string(), topic, "phx_leave", {}]).to_string()
    }

    fn push(&self, topic: &str, join_ref: u64, reference: u64, event: &str, payload: &Value) -> String {
        json!([join_ref.to_string(), reference.to_string(), topic, event, payload]).to_string()
    }

    fn heartbeat(&self, reference: u64) -> Option<String> {
        Some(json!([null, reference.to_string(), "phoenix", "heartbeat", {}]).to_string())
    }

    fn decode<'a>(&self, text: &'a str) -> Incoming<'a> {
        let Some(frame) = Frame::parse(text) else { return Incoming::Malformed };
        let Frame { reference, topic, event, payload, .. } = frame;
        match event {
            "phx_reply" if topic == "phoenix" => Incoming::Ignored,
            "phx_reply" => match serde_json::from_str::<Value>(payload) {
                Ok(mut reply) => Incoming::Reply {
                    topic,
                    reference,
                    ok: reply["status"] == "ok",
                    response: reply.get_mut("response").map(Value::take).unwrap_or(Value::Null),
                    state: None,
                },
                Err(_) => Incoming::Malformed,
            },
            "presence_state" => Incoming::PresenceState { topic, payload },
            "presence_diff" => Incoming::PresenceDiff { topic, payload },
            "phx_close" | "phx_error" => Incoming::Closed { topic, event },
            _ => Incoming::Event { topic, event, payload },
        }
    }

    fn members(&self, payload: &str) -> Option<Members> {
        let state: HashMap<String, Entry> = serde_json::from_str(payload).ok()?;
        Some(into_members(state))
    }

    fn diff(&self, payload: &str) -> Option<(Members, Members)> {
        let diff: Diff = serde_json::from_str(payload).ok()?;
        Some((into_members(diff.joins), into_members(diff.leaves)))
    }
}

/// Only what presence tracking needs from a meta: its `phx_ref`. Other fields are skipped unparsed.
#[derive(Deserialize)]
struct Entry {
    metas: Vec<MetaRef>,
}

#[derive(Deserialize)]
struct MetaRef {
    phx_ref: String,
}

#[derive(Deserialize)]
struct Diff {
    joins: HashMap<String, Entry>,
    leaves: HashMap<String, Entry>,
}

fn into_members(entries: HashMap<String, Entry>) -> Members {
    entries.into_iter().map(|(key, entry)| (key, entry.metas.into_iter().map(|meta| meta.phx_ref).collect())).collect()
}

/// A V2 frame split without parsing its payload: the four head elements are scanned (the server never escapes
/// anything in them) and the payload is the raw text up to the closing bracket.
#[derive(Debug, PartialEq)]
struct Frame<'a> {
    join_ref: Option<&'a str>,
    reference: Option<&'a str>,
    topic: &'a str,
    event: &'a str,
    payload: &'a str,
}

impl<'a> Frame<'a> {
    fn parse(text: &'a str) -> Option<Frame<'a>> {
        let text = text.trim();
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        let (join_ref, rest) = head_element(inner)?;
        let (reference, rest) = head_element(rest)?;
        let (topic, rest) = head_element(rest)?;
        let (event, rest) = head_element(rest)?;
        Some(Frame { join_ref, reference, topic: topic?, event: event?, payload: rest.trim() })
    }
}

/// One `null` or string element and the comma after it: `(its text, the rest)`. A string is returned as written
/// (escapes left in place).
pub(crate) fn head_element(text: &str) -> Option<(Option<&str>, &str)> {
    let text = text.trim_start();
    let (value, rest) = if let Some(rest) = text.strip_prefix("null") {
        (None, rest)
    } else {
        let body = text.strip_prefix('"')?;
        let bytes = body.as_bytes();
        let mut index = 0;
        loop {
            match bytes.get(index)? {
                b'"' => break,
                b'\\' => index += 2,
                _ => index += 1,
            }
        }
        (Some(&body[..index]), &body[index + 1..])
    };
    Some((value, rest.trim_start().strip_prefix(',')?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_without_parsing_the_payload() {
        let frame = Frame::parse(r#"["3",null,"room:bench","shout",{"sent_us":12,"x":[1,2]}]"#).unwrap();
        assert_eq!(frame.join_ref, Some("3"));
        assert_eq!(frame.reference, None);
        assert_eq!((frame.topic, frame.event), ("room:bench", "shout"));
        assert_eq!(frame.payload, r#"{"sent_us":12,"x":[1,2]}"#);
        assert_eq!(Frame::parse(r#"[null, "a\"b" ,"t","e",{}]"#).unwrap().reference, Some(r#"a\"b"#));
        assert_eq!(Frame::parse(r#"{"topic":"x"}"#), None);
        assert_eq!(Frame::parse(r#"[null,null,null,"e",{}]"#), None);
        assert_eq!(Frame::parse(r#"["1","2","t"]"#), None);
    }

    #[test]
    fn frames_are_classified() {
        let phoenix = PhoenixV2;
        assert_eq!(
            phoenix.decode(r#"["1","1","room:bench","phx_reply",{"status":"ok","response":{"a":1}}]"#),
            Incoming::Reply {
                topic: "room:bench",
                reference: Some("1"),
                ok: true,
                response: json!({"a": 1}),
                state: None
            }
        );
        assert!(matches!(
            phoenix.decode(r#"["1","2","room:bench","phx_reply",{"status":"error","response":{}}]"#),
            Incoming::Reply { ok: false, .. }
        ));
        assert_eq!(
            phoenix.decode(r#"[null,"9","phoenix","phx_reply",{"status":"ok","response":{}}]"#),
            Incoming::Ignored
        );
        assert_eq!(
            phoenix.decode(r#"["1",null,"room:bench","presence_state",{}]"#),
            Incoming::PresenceState { topic: "room:bench", payload: "{}" }
        );
        assert_eq!(
            phoenix.decode(r#"["1","1","edit:data:1","phx_close",{}]"#),
            Incoming::Closed { topic: "edit:data:1", event: "phx_close" }
        );
        assert_eq!(
            phoenix.decode(r#"["1",null,"edit:data:1","role",{"role":"owner"}]"#),
            Incoming::Event { topic: "edit:data:1", event: "role", payload: r#"{"role":"owner"}"# }
        );
        assert_eq!(phoenix.decode("nonsense"), Incoming::Malformed);
    }

    #[test]
    fn presence_payloads_are_normalised() {
        let phoenix = PhoenixV2;
        let mut members = phoenix
            .members(r#"{"1":{"metas":[{"name":"a","phx_ref":"r1","seq":1},{"phx_ref":"r2"}]},"2":{"metas":[{"phx_ref":"r3"}]}}"#)
            .unwrap();
        members.sort();
        assert_eq!(members, vec![("1".into(), vec!["r1".into(), "r2".into()]), ("2".into(), vec!["r3".into()])]);
        let (joins, leaves) = phoenix
            .diff(r#"{"joins":{"3":{"metas":[{"phx_ref":"r4"}]}},"leaves":{"1":{"metas":[{"phx_ref":"r1"}]}}}"#)
            .unwrap();
        assert_eq!(joins, vec![("3".into(), vec!["r4".into()])]);
        assert_eq!(leaves, vec![("1".into(), vec!["r1".into()])]);
    }

    #[test]
    fn requests_are_encoded() {
        let phoenix = PhoenixV2;
        assert_eq!(phoenix.join(&Session::default(), "room:a", 4, &json!({})), r#"["4","4","room:a","phx_join",{}]"#);
        assert_eq!(phoenix.leave("room:a", 4, 7), r#"["4","7","room:a","phx_leave",{}]"#);
        assert_eq!(phoenix.push("room:a", 4, 8, "shout", &json!({"n": 1})), r#"["4","8","room:a","shout",{"n":1}]"#);
        assert_eq!(phoenix.heartbeat(9).unwrap(), r#"[null,"9","phoenix","heartbeat",{}]"#);
        assert_eq!(phoenix.url("127.0.0.1:1", "a+b"), "ws://127.0.0.1:1/live/websocket?vsn=2.0.0&token=a%2Bb");
    }
}
