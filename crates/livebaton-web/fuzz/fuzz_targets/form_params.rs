//! Form params (`decode_form`): any query decodes without panicking, to strings and non-empty lists of strings, and
//! to no more text than it holds; what it decodes to survives encoding and decoding again; and any form, encoded in
//! any spelling a browser or client may use, decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livebaton_web::live::{decode_form, percent_decode};
use livebaton_web_fuzz::{Choices, Field, encode_form, form_of, is_form};
use serde_json::Value;

#[derive(arbitrary::Arbitrary, Debug)]
enum Input<'a> {
    /// Whatever a client sends.
    Query(&'a str, u64),
    /// A form, encoded with the spellings the seed picks.
    Form(Vec<(String, Field)>, u64),
}

/// The bytes of text in a decoded value.
fn text_len(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(values) => values.iter().map(text_len).sum(),
        _ => 0,
    }
}

fuzz_target!(|input: Input| match input {
    Input::Query(query, seed) => {
        let form = decode_form(query);
        assert!(is_form(&form), "{query:?} decoded to {form:?}");
        let text: usize = form.iter().map(|(name, value)| name.len() + text_len(value)).sum();
        assert!(text <= query.len(), "{query:?} decoded to {form:?}");
        assert!(percent_decode(query).len() <= query.len(), "{query:?}");
        let again = encode_form(&form, &mut Choices::new(seed));
        assert_eq!(decode_form(&again), form, "{query:?} re-encoded as {again:?}");
    }
    Input::Form(fields, seed) => {
        let form = form_of(fields);
        let query = encode_form(&form, &mut Choices::new(seed));
        assert_eq!(decode_form(&query), form, "encoded as {query:?}");
    }
});
