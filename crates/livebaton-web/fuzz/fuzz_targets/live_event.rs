//! Live-view events (`ClientEvent::decode`): any payload decodes without panicking; it is refused exactly when
//! `event` is not a string; a decoded event keeps the name, the type (`click` when none) and, except for a form sent
//! URL-encoded (which becomes an object), the value as sent; and it re-serialises to JSON that decodes to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livebaton_web::live::{ClientEvent, EventError, decode_form};
use livebaton_web_fuzz::{Choices, Field, encode_form, form_of};
use serde_json::{Map, Number, Value};

#[derive(arbitrary::Arbitrary, Debug)]
enum Input<'a> {
    /// The payload's bytes, whatever a client sends.
    Payload(&'a [u8]),
    /// A payload of the event's shape.
    Event { kind: Kind, name: Option<Json>, value: Option<EventValue>, extra: Option<(String, Json)> },
}

#[derive(arbitrary::Arbitrary, Debug)]
enum Kind {
    Missing,
    Click,
    Change,
    Submit,
    Other(String),
    NotAString(Json),
}

#[derive(arbitrary::Arbitrary, Debug)]
enum EventValue {
    /// A form, URL-encoded with the spellings the seed picks.
    Form(Vec<(String, Field)>, u64),
    Json(Json),
}

#[derive(arbitrary::Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(bool) => Value::Bool(bool),
            Json::Integer(integer) => Value::from(integer),
            Json::Float(float) => Number::from_f64(float).map_or(Value::Null, Value::Number),
            Json::Text(text) => Value::String(text),
            Json::List(items) => Value::Array(items.into_iter().map(Json::value).collect()),
            Json::Object(entries) => {
                Value::Object(entries.into_iter().map(|(key, item)| (key, item.value())).collect())
            }
        }
    }
}

fn payload(kind: Kind, name: Option<Json>, value: Option<EventValue>, extra: Option<(String, Json)>) -> Value {
    let mut payload = Map::new();
    if let Some((key, item)) = extra {
        payload.insert(key, item.value());
    }
    let kind = match kind {
        Kind::Missing => None,
        Kind::Click => Some(Value::from("click")),
        Kind::Change => Some(Value::from("change")),
        Kind::Submit => Some(Value::from("submit")),
        Kind::Other(other) => Some(Value::String(other)),
        Kind::NotAString(json) => Some(json.value()),
    };
    if let Some(kind) = kind {
        payload.insert("type".into(), kind);
    }
    if let Some(name) = name {
        payload.insert("event".into(), name.value());
    }
    match value {
        None => {}
        Some(EventValue::Form(fields, seed)) => {
            let encoded = encode_form(&form_of(fields), &mut Choices::new(seed));
            payload.insert("value".into(), Value::String(encoded));
        }
        Some(EventValue::Json(json)) => {
            payload.insert("value".into(), json.value());
        }
    }
    Value::Object(payload)
}

fn check(bytes: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<Value>(bytes) else { return };
    let decoded = ClientEvent::decode(payload.clone());
    let Some(name) = payload.get("event").and_then(Value::as_str) else {
        assert_eq!(decoded, Err(EventError::MissingName), "{payload}");
        return;
    };
    let event = decoded.unwrap_or_else(|error| panic!("{payload} refused: {error}"));
    assert_eq!(event.name, name);
    assert_eq!(event.kind, payload.get("type").and_then(Value::as_str).unwrap_or("click"));
    let sent = payload.get("value").cloned().unwrap_or(Value::Null);
    match (event.kind.as_str(), &sent) {
        ("change" | "submit", Value::String(encoded)) => assert_eq!(event.value, Value::Object(decode_form(encoded))),
        _ => assert_eq!(event.value, sent),
    }
    let again = serde_json::to_vec(&event.to_json()).expect("an event serialises");
    let again: Value = serde_json::from_slice(&again).expect("a re-serialised event is JSON");
    assert_eq!(ClientEvent::decode(again), Ok(event), "{payload}");
}

fuzz_target!(|input: Input| match input {
    Input::Payload(bytes) => check(bytes),
    Input::Event { kind, name, value, extra } => {
        let payload = payload(kind, name, value, extra);
        check(&serde_json::to_vec(&payload).expect("a payload serialises"));
    }
});
