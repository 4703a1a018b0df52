use serde_json::{Value, json};

use super::super::{ClientEvent, EventError};

#[test]
fn decodes_clicks_and_url_encoded_forms() {
    let click = ClientEvent::decode(json!({"type": "click", "event": "inc", "value": {"id": "7"}})).unwrap();
    assert_eq!(click, ClientEvent { kind: "click".into(), name: "inc".into(), value: json!({"id": "7"}) });
    let change = ClientEvent::decode(json!({"type": "change", "event": "validate", "value": "a=1&t[]=x+y"})).unwrap();
    assert_eq!(change.value, json!({"a": "1", "t": ["x y"]}));
    // A form already sent as an object, and a click's string, are kept as sent.
    let submit = ClientEvent::decode(json!({"type": "submit", "event": "save", "value": {"a": "1"}})).unwrap();
    assert_eq!(submit.value, json!({"a": "1"}));
    let other = ClientEvent::decode(json!({"type": "keyup", "event": "k", "value": "a=1"})).unwrap();
    assert_eq!(other.value, json!("a=1"));
}

#[test]
fn the_type_defaults_to_click_and_the_name_is_required() {
    let event = ClientEvent::decode(json!({"type": 3, "event": "inc"})).unwrap();
    assert_eq!((event.kind.as_str(), event.value), ("click", Value::Null));
    for payload in [json!({"type": "click"}), json!({"event": 1}), json!(["event"]), json!("event"), Value::Null] {
        assert_eq!(ClientEvent::decode(payload), Err(EventError::MissingName));
    }
    assert_eq!(EventError::MissingName.to_string(), "missing event name");
}

#[test]
fn a_decoded_event_encodes_to_itself() {
    for payload in [
        json!({"event": "inc"}),
        json!({"type": "change", "event": "v", "value": "a=%zz&a=2&b"}),
        json!({"type": "submit", "event": "s", "value": [1, {"x": null}]}),
    ] {
        let event = ClientEvent::decode(payload).unwrap();
        assert_eq!(ClientEvent::decode(event.to_json()), Ok(event));
    }
}

/// Found by the fuzz target `live_event`: without serde_json's `float_roundtrip`, this number parsed to a float one
/// unit in the last place off, which serialised to other digits and parsed to yet another float.
#[test]
fn a_number_in_an_event_survives_re_encoding() {
    let payload = r#"{"event": "e", "value": 2.6574521448520608e-258}"#;
    let event = ClientEvent::decode(serde_json::from_str(payload).unwrap()).unwrap();
    assert_eq!(event.value.as_f64(), Some(2.6574521448520608e-258));
    let again = serde_json::from_slice(&serde_json::to_vec(&event.to_json()).unwrap()).unwrap();
    assert_eq!(ClientEvent::decode(again), Ok(event));
}
