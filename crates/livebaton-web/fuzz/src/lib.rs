//! What the fuzz targets share: forms built from the fuzzer's input, and their URL encoding with every spelling a
//! browser (`URLSearchParams`) or a hand-written client may choose, so a round trip proves decoding accepts them all.

use std::fmt::Write;

use arbitrary::Arbitrary;
use serde_json::{Map, Value};

/// One form field: a single value, or a list (a multi-select, a checkbox group); a list has at least one value.
#[derive(Arbitrary, Debug)]
pub enum Field {
    /// `name=value`.
    One(String),
    /// `name[]=first&name[]=…`.
    Many(String, Vec<String>),
}

/// The form that `fields` describe: a later field of the same name replaces an earlier one. A single value whose
/// name ends in `[]` is left out: the decoder reads such a name as a list, by design (`tags[]=a` is `{"tags": ["a"]}`).
pub fn form_of(fields: Vec<(String, Field)>) -> Map<String, Value> {
    let mut form = Map::new();
    for (name, field) in fields {
        match field {
            Field::One(_) if name.ends_with("[]") => {}
            Field::One(value) => {
                form.insert(name, Value::String(value));
            }
            Field::Many(first, rest) => {
                let values = std::iter::once(first).chain(rest).map(Value::String).collect();
                form.insert(name, Value::Array(values));
            }
        }
    }
    form
}

/// Whether `form` has the decoder's shape: every value a string or a non-empty list of strings.
pub fn is_form(form: &Map<String, Value>) -> bool {
    form.values().all(|value| match value {
        Value::String(_) => true,
        Value::Array(values) => !values.is_empty() && values.iter().all(Value::is_string),
        _ => false,
    })
}

/// Choices drawn from a seed (splitmix64), so a crashing input reproduces the same spelling.
pub struct Choices(u64);

impl Choices {
    /// Choices from `seed`.
    pub fn new(seed: u64) -> Self {
        Choices(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// A number below `n` (> 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Encodes `text` so that percent-decoding gives it back: `&`, `=`, `+` and `%` always escaped, a space as `+` or
/// `%20`, any other character literal or escaped byte by byte, hex digits in either case.
pub fn encode_component(text: &str, choices: &mut Choices) -> String {
    let mut encoded = String::with_capacity(text.len());
    for character in text.chars() {
        let must = matches!(character, '&' | '=' | '+' | '%');
        if character == ' ' && choices.one_in(2) {
            encoded.push('+');
        } else if must || character == ' ' || choices.one_in(4) {
            let mut bytes = [0; 4];
            for byte in character.encode_utf8(&mut bytes).bytes() {
                // Writing to a String cannot fail.
                let _ = if choices.one_in(2) { write!(encoded, "%{byte:02X}") } else { write!(encoded, "%{byte:02x}") };
            }
        } else {
            encoded.push(character);
        }
    }
    encoded
}

/// Encodes `form` (of [`is_form`]'s shape) as a query that decodes to it: each list value as `name[]=value`, or as
/// the plain `name=value` when the list has two values or more and its name does not end in `[]`; pairs of different
/// names interleaved in any order, the values of one name in order; stray `&` anywhere; `=` left out before an empty
/// value when the name is not empty.
pub fn encode_form(form: &Map<String, Value>, choices: &mut Choices) -> String {
    let mut pending: Vec<(&str, Vec<&str>, bool)> = form
        .iter()
        .map(|(name, value)| match value {
            Value::Array(values) => (name.as_str(), values.iter().filter_map(Value::as_str).rev().collect(), true),
            other => (name.as_str(), other.as_str().into_iter().collect(), false),
        })
        .collect();
    let mut query = String::new();
    while !pending.is_empty() {
        let at = choices.below(pending.len());
        let (name, values, list) = &mut pending[at];
        let Some(value) = values.pop() else {
            pending.swap_remove(at);
            continue;
        };
        if !query.is_empty() || choices.one_in(8) {
            query.push('&');
        }
        while choices.one_in(8) {
            query.push('&');
        }
        query.push_str(&encode_component(name, choices));
        let plain = !*list || (form[*name].as_array().is_some_and(|all| all.len() >= 2) && !name.ends_with("[]"));
        if *list && !(plain && choices.one_in(2)) {
            query.push_str(if choices.one_in(2) { "[]" } else { "%5B%5D" });
        }
        if !(value.is_empty() && !name.is_empty() && choices.one_in(2)) {
            query.push('=');
        }
        query.push_str(&encode_component(value, choices));
    }
    if choices.one_in(8) {
        query.push('&');
    }
    query
}
