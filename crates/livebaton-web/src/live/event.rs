//! [`ClientEvent`]: a client's `event` push on `lv:<view-id>`, decoded into what the view's `handle_event` receives.
//!
//! Payload `{type, event, value}`: `type` is `click` (the default when it is missing or not a string), `change`,
//! `submit` or any other string, kept as sent; `event` (the handler's name) must be a string; `value` is any JSON
//! (null when missing). A `change` or `submit` value that is a string is the form URL-encoded and becomes an object
//! ([`decode_form`]); every other value is kept as is. Decoding is pure and never panics: the fuzz target
//! `live_event` holds it to that, and to [`ClientEvent::to_json`] decoding back to the same event.

use serde_json::{Value, json};

use super::form::decode_form;

/// A decoded client event.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientEvent {
    /// `click`, `change`, `submit`, or another string the client sent.
    pub kind: String,
    /// The handler's name (`phx-click`, `phx-change` or `phx-submit`'s value).
    pub name: String,
    /// The value: a form as an object of strings (and arrays of strings), `phx-value-*` as an object, or as sent.
    pub value: Value,
}

/// Why an `event` payload is not an event. The message is the error reply's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// `event` is missing or not a string.
    #[error("missing event name")]
    MissingName,
}

impl ClientEvent {
    /// Decodes an `event` push's payload; a form sent URL-encoded is decoded here.
    ///
    /// # Errors
    /// [`EventError::MissingName`] when `event` is missing or not a string (or the payload is not an object).
    pub fn decode(mut payload: Value) -> Result<ClientEvent, EventError> {
        let kind = payload.get("type").and_then(Value::as_str).unwrap_or("click").to_owned();
        let name = payload.get("event").and_then(Value::as_str).ok_or(EventError::MissingName)?.to_owned();
        let value = payload.get_mut("value").map(Value::take).unwrap_or(Value::Null);
        let value = match (kind.as_str(), value) {
            ("change" | "submit", Value::String(encoded)) => Value::Object(decode_form(&encoded)),
            (_, value) => value,
        };
        Ok(ClientEvent { kind, name, value })
    }

    /// The event as a payload that decodes to it again.
    pub fn to_json(&self) -> Value {
        json!({"type": self.kind, "event": self.name, "value": self.value})
    }
}
