//! Small pieces of markup the views share. Everything goes through maud, which escapes every interpolated value, so
//! text typed by a user can never become markup.

use livebaton_content::Status;
use livebaton_web::live::Html;
use maud::{Markup, html};

/// A view's markup as the runtime wants it.
pub fn to_html(markup: Markup) -> Html {
    Html::new(markup.into_string())
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

/// `yyyy-mm-dd hh:mm UTC` of a time in ms since the Unix epoch (the proleptic Gregorian calendar).
pub fn date_time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, (of_day / 60) % 60)
}

/// "Nobody else here" / "1 other person" / "3 other people".
pub fn people(count: usize) -> String {
    match count {
        0 => "Nobody else here".to_owned(),
        1 => "1 other person".to_owned(),
        _ => format!("{count} other people"),
    }
}

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
    fn date_time_reads_the_civil_date_and_time() {
        assert_eq!(date_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00 UTC", "a leap day");
        assert_eq!(date_time(1_796_651_700_000), "2026-12-07 13:55 UTC");
        assert_eq!(date_time(-1), "1969-12-31 23:59 UTC");
    }

    #[test]
    fn clock_reads_hours_minutes_seconds() {
        assert_eq!(clock(((13 * 3600 + 5 * 60 + 9) * 1000) as u64), "13:05:09 UTC");
    }

    #[test]
    fn people_counts() {
        assert_eq!(people(0), "Nobody else here");
        assert_eq!(people(1), "1 other person");
        assert_eq!(people(2), "2 other people");
    }
}
