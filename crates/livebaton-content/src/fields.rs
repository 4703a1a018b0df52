//! Per-type validation and normalisation of one field value.
//!
//! [`normalize`] turns a submitted JSON value into the value stored for a field, `None` when the submission is blank
//! (so the field has no value), or a message for the user. Whether a blank value is allowed (`required`) is decided by
//! the caller, which also uses this module to check a field's `default`.
//!
//! Decisions, where the rules are silent:
//! - `null` is blank for every type; so is a string that is empty or only whitespace, and for checkboxes an empty list
//!   (or a list of blank strings — what an HTML form sends to make an all-unchecked group present).
//! - `text` and `textarea` are stored exactly as given (no trimming, no HTML escaping: escaping is the renderer's job);
//!   their length limit counts characters, not bytes, of the stored value.
//! - Single-token types (email, url, number, date, select, radio, checkbox entries) are trimmed before checking.
//! - Rich text longer than 100 000 characters, nested deeper than 32 elements or with more than 2,000 elements is
//!   refused before sanitising (see the `rich_text` module); rich text whose sanitised form shows nothing (no text,
//!   no image) is blank, so `<p> </p>` or a lone `<script>` does not satisfy `required`.
//! - Checkbox values are stored in the order of the field's options, whatever the submission order.

use serde_json::{Number, Value};

use crate::FieldType;
use crate::rich_text::SafeHtml;

/// Longest `text` value, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 255;
/// Longest `textarea` value, in characters.
pub(crate) const MAX_TEXTAREA_CHARS: usize = 5000;
/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Longest web address.
const MAX_URL_CHARS: usize = 2048;

/// A value's normal form: `Ok(Some(value))` to store, `Ok(None)` when blank, `Err(message)` when invalid.
pub(crate) type Normalized = Result<Option<Value>, String>;

/// Validates and normalises `value` for a field of type `field_type` with these `options` (already trimmed).
pub(crate) fn normalize(field_type: FieldType, options: &[String], value: &Value) -> Normalized {
    if value.is_null() {
        return Ok(None);
    }
    match field_type {
        FieldType::Text => plain_text(value, MAX_TEXT_CHARS),
        FieldType::Textarea => plain_text(value, MAX_TEXTAREA_CHARS),
        FieldType::Email => token(value, "must be text")?.map_or(Ok(None), email),
        FieldType::Url => token(value, "must be text")?.map_or(Ok(None), url),
        FieldType::RichText => rich_text(value),
        FieldType::Number => number(value),
        FieldType::Boolean => boolean(value).map(|flag| flag.map(Value::Bool)),
        FieldType::Date => token(value, "must be a date (YYYY-MM-DD)")?.map_or(Ok(None), date),
        FieldType::Select | FieldType::Radio => token(value, "must be text").and_then(|text| match text {
            Some(choice) if options.iter().any(|option| option == choice) => Ok(Some(Value::from(choice))),
            Some(_) => Err(one_of(options)),
            None => Ok(None),
        }),
        FieldType::Checkbox => checkbox(options, value),
    }
}

/// Reads a boolean as a form or the API sends it: `true`/`false`, `"true"`/`"false"`, `"1"`/`"0"`, `1`/`0`, and
/// `"on"` (an HTML checkbox) / `"off"`. `Ok(None)` for `null` and blank strings.
pub(crate) fn boolean(value: &Value) -> Result<Option<bool>, String> {
    const MESSAGE: &str = "must be true or false";
    match value {
        Value::Null => Ok(None),
        Value::Bool(flag) => Ok(Some(*flag)),
        Value::Number(number) => match number.as_f64() {
            Some(1.0) => Ok(Some(true)),
            Some(0.0) => Ok(Some(false)),
            _ => Err(MESSAGE.to_owned()),
        },
        Value::String(text) => match text.trim() {
            "" => Ok(None),
            "true" | "1" | "on" => Ok(Some(true)),
            "false" | "0" | "off" => Ok(Some(false)),
            _ => Err(MESSAGE.to_owned()),
        },
        Value::Array(_) | Value::Object(_) => Err(MESSAGE.to_owned()),
    }
}

/// Whether `text` is a real calendar date written `YYYY-MM-DD` (years 0001–9999, leap years included).
pub(crate) fn is_calendar_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    year >= 1 && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)
}

/// Days in `month` (1–12) of `year`, in the proleptic Gregorian calendar.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Divisible by 4, except centuries not divisible by 400.
fn is_leap_year(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// `text` or `textarea`: a string, stored as given, at most `max` characters.
fn plain_text(value: &Value, max: usize) -> Normalized {
    let Value::String(text) = value else { return Err("must be text".to_owned()) };
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(Some(Value::String(text.clone())))
}

/// A trimmed string for single-token types; `Ok(None)` when blank, `Err(message)` for other JSON types.
fn token<'a>(value: &'a Value, message: &str) -> Result<Option<&'a str>, String> {
    match value {
        Value::String(text) => Ok(Some(text.trim()).filter(|text| !text.is_empty())),
        _ => Err(message.to_owned()),
    }
}

/// An email address: one `@`, a non-empty local part, a domain of dot-separated non-empty labels (at least two), no
/// whitespace or control characters, at most 254 characters. Stored trimmed, case kept.
fn email(text: &str) -> Normalized {
    if text.chars().count() > MAX_EMAIL_CHARS {
        return Err(too_long(MAX_EMAIL_CHARS));
    }
    let valid = !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && text.matches('@').count() == 1
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && domain.split('.').all(|label| !label.is_empty())
        });
    if valid { Ok(Some(Value::from(text))) } else { Err("must be an email address like name@example.com".to_owned()) }
}

/// A web address. `http://` and `https://` (any case) are kept; a value with another scheme (`javascript:`,
/// `data:`, `mailto:`, …) is refused; otherwise `https://` is prepended (`//host` gets `https:`). The text must not
/// contain whitespace, control characters or `<`, `>`, `"` (never valid in a URL unencoded), must have a host, and is
/// at most 2048 characters. `host:port` without a scheme (`localhost:4000`) counts as having no scheme.
fn url(text: &str) -> Normalized {
    const INVALID: &str = "must be a web address like https://example.com";
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')) {
        return Err(INVALID.to_owned());
    }
    let lower = text.to_ascii_lowercase();
    let full = if lower.starts_with("http://") || lower.starts_with("https://") {
        text.to_owned()
    } else if let Some(rest) = text.strip_prefix("//") {
        format!("https://{rest}")
    } else if has_scheme(text) {
        return Err("must start with http:// or https://".to_owned());
    } else {
        format!("https://{text}")
    };
    if full.chars().count() > MAX_URL_CHARS {
        return Err(too_long(MAX_URL_CHARS));
    }
    let after_scheme = &full[full.find("//").map_or(0, |at| at + 2)..];
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.starts_with('.') {
        return Err(INVALID.to_owned());
    }
    Ok(Some(Value::String(full)))
}

/// Whether `text` starts with a URI scheme (`^[A-Za-z][A-Za-z0-9+.-]*:`) that is not just a `host:port`.
fn has_scheme(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else { return false };
    let is_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    let is_port = rest.chars().next().is_some_and(|c| c.is_ascii_digit())
        && rest.chars().take_while(char::is_ascii_digit).count() == rest.find(['/', '?', '#']).unwrap_or(rest.len());
    is_scheme && !is_port
}

/// Rich text: a string within the bounds of [`SafeHtml::sanitize`], sanitised (see the `rich_text` module).
fn rich_text(value: &Value) -> Normalized {
    let Value::String(html) = value else { return Err("must be text".to_owned()) };
    let clean = SafeHtml::sanitize(html).map_err(|error| error.to_string())?;
    if clean.shows_nothing() { Ok(None) } else { Ok(Some(Value::String(clean.into_string()))) }
}

/// A number: a JSON number, or a string that is a whole finite number (trimmed). Integral values are stored as JSON
/// integers (`3.0` → `3`) when exactly representable; other values as floats.
fn number(value: &Value) -> Normalized {
    const MESSAGE: &str = "must be a number";
    match value {
        Value::Number(number) => Ok(Some(Value::Number(integral(number.clone())))),
        Value::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            if let Ok(int) = text.parse::<i64>() {
                return Ok(Some(Value::from(int)));
            }
            // `f64::from_str` also reads `inf` and `NaN`: refuse them (and overflow to infinity).
            match text.parse::<f64>().ok().filter(|n| n.is_finite()).and_then(Number::from_f64) {
                Some(number) => Ok(Some(Value::Number(integral(number)))),
                None => Err(MESSAGE.to_owned()),
            }
        }
        _ => Err(MESSAGE.to_owned()),
    }
}

/// `number` as an integer when it is a float with no fractional part that an `f64` holds exactly (|n| ≤ 2^53).
fn integral(number: Number) -> Number {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match number.as_f64() {
        Some(n) if number.is_f64() && n.fract() == 0.0 && n.abs() <= EXACT => {
            #[allow(clippy::cast_possible_truncation)] // integral and within ±2^53, so exact
            Number::from(n as i64)
        }
        _ => number,
    }
}

/// A date: `YYYY-MM-DD`, a real calendar day. Stored trimmed.
fn date(text: &str) -> Normalized {
    if is_calendar_date(text) {
        Ok(Some(Value::from(text)))
    } else if text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-' {
        Err("is not a real calendar date".to_owned())
    } else {
        Err("must be a date (YYYY-MM-DD)".to_owned())
    }
}

/// Checkbox: a list of strings (or one string), each one of `options`; deduplicated, stored in option order.
fn checkbox(options: &[String], value: &Value) -> Normalized {
    const MESSAGE: &str = "must be a list of options";
    let submitted: Vec<&str> = match value {
        Value::String(text) => vec![text.trim()],
        Value::Array(items) => {
            let strings: Option<Vec<&str>> = items.iter().map(|item| item.as_str().map(str::trim)).collect();
            strings.ok_or_else(|| MESSAGE.to_owned())?
        }
        _ => return Err(MESSAGE.to_owned()),
    };
    let submitted: Vec<&str> = submitted.into_iter().filter(|choice| !choice.is_empty()).collect();
    if submitted.is_empty() {
        return Ok(None);
    }
    if let Some(unknown) = submitted.iter().find(|choice| !options.iter().any(|option| option == *choice)) {
        return Err(format!("contains \"{unknown}\", which is not one of the options ({})", options.join(", ")));
    }
    let chosen = options.iter().filter(|option| submitted.contains(&option.as_str())).cloned().map(Value::String);
    Ok(Some(Value::Array(chosen.collect())))
}

/// "must be one of: a, b, c".
fn one_of(options: &[String]) -> String {
    format!("must be one of: {}", options.join(", "))
}

/// "must be at most N characters".
pub(crate) fn too_long(max: usize) -> String {
    format!("must be at most {max} characters")
}
