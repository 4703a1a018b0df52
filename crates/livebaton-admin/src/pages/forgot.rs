//! `/admin/forgot`: "forgot password", only where links are mailed (`--smtp-url`; elsewhere 404, and the sign-in page
//! does not offer it, since nothing could reach the person). It never says whether an address has an account: every
//! request gets the same answer at once, and the link is looked up, made and mailed in a task of its own. Requests
//! count as sign-in attempts of the address asked for and of the client (the throttle's growing delays), so the form
//! cannot be used to flood someone's mailbox.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::{CSRF_COOKIE, CookieWriter, cookie, same_origin, tokens_match};
use crate::accounts::{RESET_TTL_MS, random_token, retry_after_secs};
use crate::app::AppState;
use crate::proxy::ClientAddr;

fn form(csrf: &str, message: Option<&str>) -> Markup {
    page(
        "Forgot your password?",
        None,
        html! {
            div.card.narrow {
                h1 { "Forgot your password?" }
                @if let Some(message) = message { p.notice #forgot-message role="status" { (message) } }
                p { "Enter the email address of your account: we will mail it a link to choose a new password." }
                form method="post" action="/admin/forgot" {
                    input type="hidden" name="_csrf_token" value=(csrf);
                    label for="email" { "Email" }
                    input #email type="email" name="email" autocomplete="username" required autofocus;
                    button type="submit" { "Mail me a link" }
                }
                p { a href="/admin/login" { "Back to sign-in" } }
            }
        },
    )
}

fn not_offered() -> Response {
    (StatusCode::NOT_FOUND, "no mail server is configured: ask an admin for a password reset link").into_response()
}

/// `GET /admin/forgot`.
pub async fn show(State(state): State<AppState>, cookies: CookieWriter, headers: HeaderMap) -> Response {
    if !state.people.mails() {
        return not_offered();
    }
    let csrf = cookie(&headers, CSRF_COOKIE).filter(|token| token.len() >= 16).map(str::to_owned);
    let csrf = csrf.unwrap_or_else(|| random_token(24));
    let set_cookie = [(header::SET_COOKIE, cookies.set(CSRF_COOKIE, &csrf, 3600))];
    (set_cookie, Html(form(&csrf, None).into_string())).into_response()
}

/// The form.
#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(rename = "_csrf_token", default)]
    csrf_token: String,
}

/// `POST /admin/forgot`: the same answer whether or not the address has an account.
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(request): Form<ForgotForm>,
) -> Response {
    if !state.people.mails() {
        return not_offered();
    }
    let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or_default().to_owned();
    if !same_origin(&headers) || !tokens_match(&csrf, &request.csrf_token) {
        let body = form(&csrf, Some("This form expired. Please try again."));
        return (StatusCode::FORBIDDEN, Html(body.into_string())).into_response();
    }
    let email = request.email.trim().to_lowercase();
    match state.throttle.begin(&email, client).await {
        // Counted as a failure either way: it limits how often one address can be sent a link.
        Ok(attempt) => attempt.failed(),
        Err(throttled) => {
            let retry = [(header::RETRY_AFTER, retry_after_secs(throttled.retry_after).to_string())];
            let body = form(&csrf, Some(&format!("{throttled}.")));
            return (StatusCode::TOO_MANY_REQUESTS, retry, Html(body.into_string())).into_response();
        }
    }
    state.people.request_reset(&email);
    let minutes = RESET_TTL_MS / 60_000;
    // The address is echoed only as long as an address can be (the form accepts any text).
    let shown = if email.chars().count() <= crate::accounts::MAX_EMAIL_CHARS { email.as_str() } else { "that" };
    let message = format!(
        "If {shown} is the address of an account, a link to choose a new password is on its way. It works once, for {minutes} minutes."
    );
    Html(form(&csrf, Some(&message)).into_string()).into_response()
}
