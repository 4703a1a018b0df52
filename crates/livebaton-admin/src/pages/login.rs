//! `/admin/login`, `/admin/logout` and the signed-in landing page `/admin`.

use std::time::Duration;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use livebaton_web::endpoint::SIGNED_OUT;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::{
    CSRF_COOKIE, CookieWriter, SESSION_COOKIE, SignedIn, cookie, same_origin, start_session, tokens_match,
};
use crate::accounts::{random_token, retry_after_secs, sha256_hex};
use crate::api::SignInError;
use crate::app::AppState;
use crate::proxy::ClientAddr;

/// The page to go back to after signing in, when `requested` is one of this app's admin pages (a path under
/// `/admin`, no scheme, host, `//` or dot segment, printable, at most 2,000 bytes): anything else would make the
/// sign-in form an open redirect (or send the user outside the admin, as `/admin/../api`).
pub fn safe_return_to(requested: Option<&str>) -> Option<&str> {
    let path = requested?;
    let admin = path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?");
    let plain = !path.contains("//")
        && !path.contains('\\')
        && !path.contains("/.")
        && path.chars().all(|c| c.is_ascii_graphic());
    (admin && plain && path.len() <= 2000).then_some(path)
}

fn login_form(csrf: &str, email: &str, error: Option<&str>, return_to: Option<&str>, forgot: bool) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            div.card.narrow {
                h1 { "Sign in" }
                @if let Some(error) = error { p.error role="alert" { (error) } }
                form method="post" action="/admin/login" {
                    input type="hidden" name="_csrf_token" value=(csrf);
                    @if let Some(return_to) = safe_return_to(return_to) {
                        input type="hidden" name="return_to" value=(return_to);
                    }
                    label for="email" { "Email" }
                    input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
                // Only where links are mailed: elsewhere an admin makes the reset link.
                @if forgot { p { a href="/admin/forgot" { "Forgot your password?" } } }
            }
        },
    )
}

/// Where to go after signing in (`?return_to=/admin/…`, as a live page that was signed out links here).
#[derive(Debug, Default, Deserialize)]
pub struct ReturnTo {
    return_to: Option<String>,
}

/// `GET /admin/login[?return_to=/admin/…]`.
pub async fn show(
    State(state): State<AppState>,
    cookies: CookieWriter,
    headers: HeaderMap,
    Query(query): Query<ReturnTo>,
) -> Response {
    let csrf = cookie(&headers, CSRF_COOKIE).filter(|token| token.len() >= 16).map(str::to_owned);
    let csrf = csrf.unwrap_or_else(|| random_token(24));
    let form = login_form(&csrf, "", None, query.return_to.as_deref(), state.people.mails());
    ([(header::SET_COOKIE, cookies.set(CSRF_COOKIE, &csrf, 3600))], Html(form.into_string())).into_response()
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    /// Missing is refused like a wrong token (403), not as a malformed form.
    #[serde(rename = "_csrf_token", default)]
    csrf_token: String,
    /// The admin page to go back to (checked by [`safe_return_to`]).
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /admin/login`. A throttled sign-in answers 429 and a busy hasher 503, both with `Retry-After` and the
/// form with a message.
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    cookies: CookieWriter,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or_default().to_owned();
    if !same_origin(&headers) || !tokens_match(&csrf, &form.csrf_token) {
        let fresh = random_token(24);
        let message = Some("Your session expired. Please sign in again.");
        let body = login_form(&fresh, &form.email, message, form.return_to.as_deref(), state.people.mails());
        return (
            StatusCode::FORBIDDEN,
            [(header::SET_COOKIE, cookies.set(CSRF_COOKIE, &fresh, 3600))],
            Html(body.into_string()),
        )
            .into_response();
    }
    let failure = |status: StatusCode, message: &str| {
        let body = login_form(&csrf, &form.email, Some(message), form.return_to.as_deref(), state.people.mails());
        (status, Html(body.into_string())).into_response()
    };
    let retry_later = |status: StatusCode, message: &str, wait: Duration| {
        let retry_after = [(header::RETRY_AFTER, retry_after_secs(wait).to_string())];
        (retry_after, failure(status, message)).into_response()
    };
    match state.authenticate(&form.email, &form.password, client).await {
        Ok(user) => match start_session(&state, &user, cookies, &headers, client).await {
            // `AppendHeaders`, not an array: an array of header pairs *inserts*, so the second cookie would replace
            // the session cookie.
            Ok(session_cookie) => (
                AppendHeaders([
                    (header::SET_COOKIE, session_cookie),
                    (header::SET_COOKIE, cookies.set(CSRF_COOKIE, "", 0)),
                ]),
                Redirect::to(safe_return_to(form.return_to.as_deref()).unwrap_or("/admin")),
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "could not start a session");
                failure(StatusCode::SERVICE_UNAVAILABLE, "Signing in is unavailable right now; try again.")
            }
        },
        Err(SignInError::Invalid) => failure(StatusCode::UNAUTHORIZED, "Invalid email or password."),
        Err(SignInError::Throttled(throttled)) => {
            retry_later(StatusCode::TOO_MANY_REQUESTS, &format!("{throttled}."), throttled.retry_after)
        }
        Err(SignInError::Busy(busy)) => retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is busy right now; try again in a moment.",
            busy.retry_after,
        ),
        Err(SignInError::Store(error)) => {
            tracing::error!(%error, "sign-in failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, "Signing in is unavailable right now; try again.")
        }
    }
}

/// `GET /admin/logout`: a confirmation with a CSRF-protected form (signing out by link would let other sites sign
/// people out).
pub async fn confirm_logout(signed_in: SignedIn) -> Html<String> {
    Html(
        page(
            "Sign out",
            Some(&signed_in.user),
            html! {
                div.card.narrow {
                    h1 { "Sign out" }
                    form method="post" action="/admin/logout" {
                        input type="hidden" name="_csrf_token" value=(signed_in.session.csrf_token);
                        button type="submit" { "Sign out" }
                    }
                }
            },
        )
        .into_string(),
    )
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    /// Missing is refused like a wrong token (403), not as a malformed form.
    #[serde(rename = "_csrf_token", default)]
    csrf_token: String,
}

/// `POST /admin/logout`.
pub async fn logout(
    State(state): State<AppState>,
    cookies: CookieWriter,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !same_origin(&headers) || !tokens_match(&signed_in.session.csrf_token, &form.csrf_token) {
        return (StatusCode::FORBIDDEN, "cross-site or stale sign-out refused").into_response();
    }
    // Signing out also closes this user's live connections (1001), as Phoenix apps broadcast "disconnect" on
    // log-out: an open page must not keep watching or editing as someone who left.
    state.live.disconnect_user(&signed_in.user.id.to_string(), SIGNED_OUT);
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Err(error) = state.store.delete_session(&sha256_hex(id)).await {
            tracing::error!(%error, "could not end a session");
        }
    }
    ([(header::SET_COOKIE, cookies.set(SESSION_COOKIE, "", 0))], Redirect::to("/admin/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_admin_paths_of_this_site_are_returned_to() {
        for good in ["/admin", "/admin/entities/article/data/3/edit", "/admin?x=1", "/admin/a?b=c%20d"] {
            assert_eq!(safe_return_to(Some(good)), Some(good), "{good}");
        }
        for bad in [
            "https://evil.example/admin",
            "//evil.example/admin",
            "/admin//evil.example",
            "/\\evil.example",
            "/admin\\..\\x",
            "/admin/../api/tokens",
            "/admin/./x",
            "/administrator",
            "/api/tokens",
            "/admin/a b",
            "/admin/\n",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_return_to(Some(&format!("/admin/{}", "a".repeat(2000)))), None, "too long");
        assert_eq!(safe_return_to(None), None);
    }
}
