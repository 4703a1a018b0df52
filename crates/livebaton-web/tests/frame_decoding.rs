//! Property tests of the frame decoder: whatever a client sends, decoding never panics and either yields a frame or
//! a clear error; every well-formed frame round-trips.

use livebaton_web::protocol::{Frame, FrameError};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the decoder, and a failure always says why.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Err(error) = Frame::decode(&bytes) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    /// Arbitrary JSON never panics the decoder; it decodes exactly when it has the frame's shape.
    #[test]
    fn arbitrary_json_decodes_only_with_the_right_shape(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let shaped = matches!(&value, Value::Array(items)
            if items.len() >= 5
                && items[..2].iter().all(|item| item.is_null() || item.is_string() || item.is_number())
                && items[2..4].iter().all(|item| item.as_str().is_some_and(|text| !text.is_empty())));
        match Frame::decode(&bytes) {
            Ok(_) => prop_assert!(shaped, "decoded a frame from {value}"),
            Err(FrameError::Json(_)) => prop_assert!(false, "valid JSON reported as invalid: {value}"),
            Err(_) => prop_assert!(!shaped, "refused a well-formed frame {value}"),
        }
    }

    /// Well-formed frames round-trip through the decoder.
    #[test]
    fn frames_round_trip(join_ref in proptest::option::of("[0-9]{1,4}"), reference in proptest::option::of("[0-9]{1,4}"),
                         topic in "[a-z:_0-9]{1,20}", event in "[a-z_]{1,12}", payload in json_value()) {
        let bytes = serde_json::to_vec(&json!([join_ref, reference, topic, event, payload])).unwrap();
        let frame = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(frame, Frame { join_ref, reference, topic, event, payload });
    }
}
