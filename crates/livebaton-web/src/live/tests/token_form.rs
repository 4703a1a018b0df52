use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use super::super::{TokenError, ViewToken, decode_form, percent_decode};

fn params() -> Map<String, Value> {
    json!({"id": 7, "entity": "posts"}).as_object().cloned().unwrap_or_default()
}

#[test]
fn a_token_round_trips_until_it_expires() {
    let now = SystemTime::now();
    let token = ViewToken::sign(b"secret", "record", &params(), now);
    let claims = ViewToken::verify(b"secret", &token, now + Duration::from_secs(60)).unwrap();
    assert_eq!(claims.view, "record");
    assert_eq!(claims.params, params());
    let late = now + Duration::from_secs(2 * 60 * 60 + 1);
    assert_eq!(ViewToken::verify(b"secret", &token, late), Err(TokenError::Expired));
    assert_eq!(TokenError::Expired.reason(), "expired");
}

#[test]
fn forged_or_altered_tokens_are_invalid() {
    let now = SystemTime::now();
    let token = ViewToken::sign(b"secret", "record", &params(), now);
    assert_eq!(ViewToken::verify(b"other", &token, now), Err(TokenError::Invalid));
    let (body, signature) = token.split_once('.').unwrap();
    let forged_body = ViewToken::sign(b"secret", "admin", &params(), now);
    let forged = format!("{}.{signature}", forged_body.split_once('.').unwrap().0);
    assert_eq!(ViewToken::verify(b"secret", &forged, now), Err(TokenError::Invalid));
    assert_eq!(ViewToken::verify(b"secret", body, now), Err(TokenError::Invalid));
    assert_eq!(ViewToken::verify(b"secret", "", now), Err(TokenError::Invalid));
    assert_eq!(ViewToken::verify(b"secret", "a.b.c", now), Err(TokenError::Invalid));
    // An expired forgery is "invalid", never "expired".
    let old = ViewToken::sign(b"other", "record", &params(), now - Duration::from_secs(5 * 60 * 60));
    assert_eq!(ViewToken::verify(b"secret", &old, now), Err(TokenError::Invalid));
}

#[test]
fn decodes_url_encoded_forms() {
    let form = decode_form("a=1&b=x+y&c=%3Cb%3E%20%C3%A9&tags[]=p&tags[]=q&d&e=&a=2&bad=%zz%4");
    assert_eq!(
        Value::Object(form),
        json!({"a": ["1", "2"], "b": "x y", "c": "<b> é", "tags": ["p", "q"], "d": "", "e": "", "bad": "%zz%4"})
    );
    assert_eq!(decode_form(""), Map::new());
    assert_eq!(percent_decode("%ff%41"), "\u{fffd}A");
}
