//! `/account/link/{token}`: the page of a one-time link (an invitation or a password reset). It shows a form to choose
//! a password and, once posted, creates the account or sets the password, signs the person in and sends them to the
//! admin. A link used before, withdrawn, expired or unknown gets a page that says which, and what to do.
//!
//! Safety: the token is 32 random bytes (only its SHA-256 is stored); the form carries a double-submit CSRF token and
//! must come from this site; every post counts as a sign-in attempt for the link's address and the client's (the
//! sign-in throttle's growing delays), and hashing is bounded like a sign-in (503 when busy). A refused password does
//! not use the link up.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::{CSRF_COOKIE, CookieWriter, cookie, same_origin, start_session, tokens_match};
use crate::accounts::{AccountError, MIN_PASSWORD_LEN, random_token, retry_after_secs, sha256_hex};
use crate::app::AppState;
use crate::proxy::ClientAddr;
use crate::storage::{AccountLink, LinkError, LinkKind, now_ms};

/// The throttle's key for posts whose link is unknown (the client address is throttled all the same).
const UNKNOWN_LINK: &str = "unknown-link";

/// Why a link cannot be used, as a status and a sentence with what to do next.
fn unusable(error: &LinkError) -> (StatusCode, &'static str) {
    match error {
        LinkError::Unknown => (StatusCode::NOT_FOUND, "This link is not valid. Check that it was copied whole."),
        LinkError::Used => (StatusCode::GONE, "This link was used already. Sign in, or ask an admin for a new one."),
        LinkError::Expired => (StatusCode::GONE, "This link has expired. Ask an admin for a new one."),
        LinkError::Revoked => (
            StatusCode::GONE,
            "This link was withdrawn, or replaced by a newer one. Use the newest link you were sent, or ask an admin.",
        ),
        LinkError::AccountExists => {
            (StatusCode::CONFLICT, "An account with this email exists already. Sign in instead.")
        }
        LinkError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "This page is unavailable right now; try again."),
    }
}

/// The link's state at `now`: usable, or why not.
fn check(link: Option<AccountLink>, now: i64) -> Result<AccountLink, LinkError> {
    match link {
        None => Err(LinkError::Unknown),
        Some(link) if link.used_at.is_some() => Err(LinkError::Used),
        Some(link) if link.revoked_at.is_some() => Err(LinkError::Revoked),
        Some(link) if link.expires_at <= now => Err(LinkError::Expired),
        Some(link) => Ok(link),
    }
}

fn refused_page(error: &LinkError) -> Response {
    let (status, message) = unusable(error);
    let body = page(
        "Link not usable",
        None,
        html! {
            div.card.narrow {
                h1 { "This link cannot be used" }
                p.error role="alert" { (message) }
                p { a href="/admin/login" { "Go to sign-in" } }
            }
        },
    );
    (status, no_store(), Html(body.into_string())).into_response()
}

/// The page carries its secret in its URL: nothing cached (the site-wide `Referrer-Policy: same-origin` already keeps
/// the URL from every other site).
fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

fn form_page(link: &AccountLink, token: &str, csrf: &str, error: Option<&str>) -> Markup {
    let (title, intro) = match link.kind {
        LinkKind::Invitation => {
            ("Welcome", format!("You were invited to livebaton as {} ({}).", link.email, link.role))
        }
        LinkKind::Reset => ("Choose a new password", format!("Set a new password for {}.", link.email)),
    };
    page(
        title,
        None,
        html! {
            div.card.narrow {
                h1 { (title) @if link.kind == LinkKind::Invitation { ", " (link.name) } }
                p { (intro) " Choose a password of at least " (MIN_PASSWORD_LEN) " characters." }
                @if let Some(error) = error { p.error #link-error role="alert" { (error) } }
                form method="post" action={ (crate::accounts::LINK_PATH) "/" (token) } {
                    input type="hidden" name="_csrf_token" value=(csrf);
                    // The email, for password managers to save the new password under.
                    input type="hidden" name="email" value=(link.email) autocomplete="username";
                    label for="password" { "New password" }
                    input #password type="password" name="password" autocomplete="new-password" required
                        minlength=(MIN_PASSWORD_LEN) aria-describedby=[error.map(|_| "link-error")] autofocus;
                    label for="confirm" { "Repeat the password" }
                    input #confirm type="password" name="confirm" autocomplete="new-password" required;
                    button type="submit" { (if link.kind == LinkKind::Invitation { "Create my account" } else { "Set password" }) }
                }
            }
        },
    )
}

/// `GET /account/link/{token}`.
pub async fn show(
    State(state): State<AppState>,
    cookies: CookieWriter,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let link = match state.store.find_link(&sha256_hex(&token)).await {
        Ok(link) => check(link, now_ms()),
        Err(error) => Err(LinkError::Store(error)),
    };
    let link = match link {
        Ok(link) => link,
        Err(error) => return refused_page(&error),
    };
    let csrf = cookie(&headers, CSRF_COOKIE).filter(|token| token.len() >= 16).map(str::to_owned);
    let csrf = csrf.unwrap_or_else(|| random_token(24));
    let body = form_page(&link, &token, &csrf, None);
    let set_cookie = [(header::SET_COOKIE, cookies.set(CSRF_COOKIE, &csrf, 3600))];
    (set_cookie, no_store(), Html(body.into_string())).into_response()
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(rename = "_csrf_token", default)]
    csrf_token: String,
}

/// `POST /account/link/{token}`.
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    cookies: CookieWriter,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<LinkForm>,
) -> Response {
    let link = match state.store.find_link(&sha256_hex(&token)).await {
        Ok(link) => link,
        Err(error) => return refused_page(&LinkError::Store(error)),
    };
    let key = link.as_ref().map_or(UNKNOWN_LINK.to_owned(), |link| link.email.clone());
    let attempt = match state.throttle.begin(&key, client).await {
        Ok(attempt) => attempt,
        Err(throttled) => {
            let retry = [(header::RETRY_AFTER, retry_after_secs(throttled.retry_after).to_string())];
            return (StatusCode::TOO_MANY_REQUESTS, retry, format!("{throttled}.")).into_response();
        }
    };
    let link = match check(link, now_ms()) {
        Ok(link) => link,
        Err(error) => {
            attempt.failed();
            return refused_page(&error);
        }
    };
    let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or_default().to_owned();
    let again = |status: StatusCode, message: &str| {
        let fresh = if csrf.len() >= 16 { csrf.clone() } else { random_token(24) };
        let body = form_page(&link, &token, &fresh, Some(message));
        (status, [(header::SET_COOKIE, cookies.set(CSRF_COOKIE, &fresh, 3600))], no_store(), Html(body.into_string()))
            .into_response()
    };
    if !same_origin(&headers) || !tokens_match(&csrf, &form.csrf_token) {
        // Not a guess at the link: no failure is counted.
        attempt.succeeded().await;
        return again(StatusCode::FORBIDDEN, "This form expired. Please enter your password again.");
    }
    if form.password != form.confirm {
        attempt.succeeded().await;
        return again(StatusCode::UNPROCESSABLE_ENTITY, "The two passwords differ. Please enter them again.");
    }
    match state.people.use_link(&token, &form.password).await {
        Ok(Ok(user)) => {
            attempt.succeeded().await;
            let session = start_session(&state, &user, cookies, &headers, client).await;
            match session {
                Ok(session_cookie) => (
                    AppendHeaders([
                        (header::SET_COOKIE, session_cookie),
                        (header::SET_COOKIE, cookies.set(CSRF_COOKIE, "", 0)),
                    ]),
                    no_store(),
                    Redirect::to("/admin"),
                )
                    .into_response(),
                // The password is set: signing in is all that is left.
                Err(error) => {
                    tracing::error!(%error, "could not start a session after a link was used");
                    Redirect::to("/admin/login").into_response()
                }
            }
        }
        Ok(Err(error)) => {
            attempt.failed();
            refused_page(&error)
        }
        Err(AccountError::Invalid(_, message)) => {
            attempt.succeeded().await;
            again(StatusCode::UNPROCESSABLE_ENTITY, &format!("The password {message}."))
        }
        Err(AccountError::Busy(busy)) => {
            attempt.succeeded().await;
            let retry = [(header::RETRY_AFTER, retry_after_secs(busy.retry_after).to_string())];
            (retry, again(StatusCode::SERVICE_UNAVAILABLE, "The server is busy; try again in a moment."))
                .into_response()
        }
        Err(error) => {
            attempt.succeeded().await;
            tracing::error!(%error, "a one-time link could not be used");
            again(StatusCode::SERVICE_UNAVAILABLE, "This page is unavailable right now; try again.")
        }
    }
}
