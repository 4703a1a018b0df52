//! Small pieces of markup the views share. Everything goes through maud, which escapes every interpolated value, so
//! text typed by a user can never become markup.

use livebaton_content::Status;
use livebaton_web::live::Html;
use maud::{Markup, html};

/// A view's markup as the runtime wants it.
pub fn to_html(markup: Markup) -> Html {
    markup.into()
}

/// A status pill.
pub fn status_badge(status: Status) -> Markup {
    html! { span class={ "badge " (status.as_str()) } { (status.as_str()) } }
}

/// `hh:mm:ss` (UTC) of a time in ms since the Unix epoch.
pub fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    format!("{:02}:{:02}:{:02} UTC", (seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60)
}

pub use livebaton_web::collab::date_time;

/// The i64 param `name` (`"12"` or `12`).
pub fn id_param(params: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<i64> {
    match params.get(name)? {
        serde_json::Value::String(text) => text.parse().ok(),
        other => other.as_i64(),
    }
}

/// The string param `name`.
pub fn str_param<'a>(params: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(serde_json::Value::as_str)
}

/// The text value `name` of a decoded form (the last one if the name was repeated), or "".
pub fn form_text(form: &serde_json::Value, name: &str) -> String {
    match form.get(name) {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Array(values)) => values.last().and_then(|v| v.as_str()).unwrap_or("").to_owned(),
        _ => String::new(),
    }
}

/// The messages of `path` in `errors`, as `<p class="field-error">` lines in one element whose id is
/// [`error_id`]`(path)`, which the invalid input names in `aria-describedby` (see [`Invalid`]).
pub fn field_errors(errors: &livebaton_content::ValidationErrors, path: &str) -> Markup {
    let messages = errors.get(path);
    html! {
        @if !messages.is_empty() {
            div.field-errors id=(error_id(path)) {
                @for message in messages {
                    p.field-error { (message) }
                }
            }
        }
    }
}

/// The id of the element holding the messages of `path` (`title`, `data.body`, `fields_definition[2].key`): `error-`
/// and the path with every character that is not an ASCII letter or digit made a `-`, so it is a valid, simple id.
pub fn error_id(path: &str) -> String {
    let mut id = String::from("error-");
    id.extend(path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }));
    id
}

/// How an input tells assistive technology that its value was refused: `aria-invalid="true"` and
/// `aria-describedby` naming its messages, both absent while the value is fine. The client moves focus to the first
/// `aria-invalid` input after a failed save, so these attributes are also where the eyes go.
pub struct Invalid {
    /// `Some("true")` when `path` has errors.
    pub invalid: Option<&'static str>,
    /// The id of the messages when `path` has errors.
    pub described_by: Option<String>,
}

impl Invalid {
    /// The attributes of the input whose value is `path` in `errors`.
    pub fn of(errors: &livebaton_content::ValidationErrors, path: &str) -> Invalid {
        let refused = !errors.get(path).is_empty();
        Invalid { invalid: refused.then_some("true"), described_by: refused.then(|| error_id(path)) }
    }
}

/// The signed-in user's role on this page (visitors have none).
pub fn role_of(session: &livebaton_web::live::Session) -> Option<crate::accounts::Role> {
    crate::accounts::Role::parse(session.user.role())
}

/// The user's id as stored (visitors have none).
pub fn user_id_of(session: &livebaton_web::live::Session) -> Option<i64> {
    session.user.id().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_path_names_its_messages_and_a_valid_one_nothing() {
        let mut errors = livebaton_content::ValidationErrors::default();
        errors.add("fields_definition[2].key", "is already used by another field");
        let invalid = Invalid::of(&errors, "fields_definition[2].key");
        assert_eq!(invalid.invalid, Some("true"));
        assert_eq!(invalid.described_by.as_deref(), Some("error-fields-definition-2--key"));
        let html = field_errors(&errors, "fields_definition[2].key").into_string();
        assert!(html.contains(r#"id="error-fields-definition-2--key""#), "{html}");
        assert!(html.contains("is already used by another field"), "{html}");
        let fine = Invalid::of(&errors, "fields_definition[2].label");
        assert!(fine.invalid.is_none() && fine.described_by.is_none());
        assert_eq!(field_errors(&errors, "title").into_string(), "");
    }

    #[test]
    fn clock_reads_hours_minutes_seconds() {
        assert_eq!(clock(((13 * 3600 + 5 * 60 + 9) * 1000) as u64), "13:05:09 UTC");
    }
}
