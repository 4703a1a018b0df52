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

/// The messages of `path` in `errors`, as `<p class="field-error">` lines.
pub fn field_errors(errors: &livebaton_content::ValidationErrors, path: &str) -> Markup {
    html! {
        @for message in errors.get(path) {
            p.field-error role="alert" { (message) }
        }
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
    fn clock_reads_hours_minutes_seconds() {
        assert_eq!(clock(((13 * 3600 + 5 * 60 + 9) * 1000) as u64), "13:05:09 UTC");
    }
}
