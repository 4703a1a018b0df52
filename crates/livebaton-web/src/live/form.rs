//! Decoding form values sent URL-encoded (`application/x-www-form-urlencoded`, what `new URLSearchParams(form)` gives).
//!
//! Written here rather than pulled from a crate: it is twenty lines and the shape we want is specific. `a=1&b=x+y`
//! becomes `{"a": "1", "b": "x y"}`; a name ending in `[]` (`tags[]=a&tags[]=b`) or repeated collects an array, so
//! multi-selects and checkbox groups keep every value. Malformed escapes are kept literally and invalid UTF-8 is
//! replaced, so decoding never fails.

use serde_json::{Map, Value};

/// Decodes `query` into a JSON object of strings (and arrays of strings).
pub fn decode_form(query: &str) -> Map<String, Value> {
    let mut form = Map::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name);
        let value = Value::String(percent_decode(value));
        let (name, list) = match name.strip_suffix("[]") {
            Some(base) => (base.to_owned(), true),
            None => (name, false),
        };
        match form.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None if list => {
                form.insert(name, Value::Array(vec![value]));
            }
            None => {
                form.insert(name, value);
            }
        }
    }
    form
}

/// Decodes `+` as a space and `%XX` as a byte; anything else is kept as is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => decoded.push(b' '),
            b'%' => match (bytes.get(at + 1).and_then(hex), bytes.get(at + 2).and_then(hex)) {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    at += 2;
                }
                _ => decoded.push(b'%'),
            },
            other => decoded.push(other),
        }
        at += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex(digit: &u8) -> Option<u8> {
    (*digit as char).to_digit(16).map(|value| value as u8)
}
