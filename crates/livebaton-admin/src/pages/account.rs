//! `/admin/account` (the live account page, `views::account`) and `POST /admin/account/password`, the one change there
//! that is a plain form post: it needs the current password, hashes twice on the bounded hasher, ends every session and
//! token of the account (as any password change) and signs this browser in again, so the person stays where they are.
//! The outcome comes back to the page as `?password=<outcome>`, which the page says in words.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::live::admin_page;
use super::session::CookieWriter;
use super::session::{SignedIn, same_origin, start_session, tokens_match};
use crate::accounts::AccountError;
use crate::app::AppState;
use crate::proxy::ClientAddr;

/// `?password=changed|wrong|differ|invalid|busy|unavailable|expired`: how the last password change went.
#[derive(Debug, Default, Deserialize)]
pub struct AccountQuery {
    password: Option<String>,
}

/// The outcomes the page knows how to say (anything else is ignored).
pub const PASSWORD_OUTCOMES: [&str; 7] = ["changed", "wrong", "differ", "invalid", "busy", "unavailable", "expired"];

/// `GET /admin/account`.
pub async fn show(State(state): State<AppState>, signed_in: SignedIn, Query(query): Query<AccountQuery>) -> Response {
    let mut params = serde_json::Map::new();
    params.insert("session".into(), json!(signed_in.session.id_hash));
    params.insert("csrf".into(), json!(signed_in.session.csrf_token));
    if let Some(outcome) = query.password.filter(|outcome| PASSWORD_OUTCOMES.contains(&outcome.as_str())) {
        params.insert("password".into(), json!(outcome));
    }
    admin_page(&state, &signed_in, "account", params, "/admin/account").await
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(rename = "_csrf_token", default)]
    csrf_token: String,
}

fn back(outcome: &str) -> Response {
    Redirect::to(&format!("/admin/account?password={outcome}")).into_response()
}

/// `POST /admin/account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    cookies: CookieWriter,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<PasswordForm>,
) -> Response {
    if !same_origin(&headers) || !tokens_match(&signed_in.session.csrf_token, &form.csrf_token) {
        return back("expired");
    }
    if form.password != form.confirm {
        return back("differ");
    }
    match state.people.change_own_password(signed_in.user.id, &form.current, &form.password).await {
        Ok(()) => {
            // Every session ended with the change (this one too): sign this browser in again, as who they are now.
            let user = state.store.find_user(signed_in.user.id).await.ok().flatten();
            let session = match user {
                Some(user) => start_session(&state, &user, cookies, &headers, client).await.ok(),
                None => None,
            };
            match session {
                Some(cookie) => (AppendHeaders([(header::SET_COOKIE, cookie)]), back("changed")).into_response(),
                None => Redirect::to("/admin/login").into_response(),
            }
        }
        Err(AccountError::WrongPassword) => back("wrong"),
        Err(AccountError::Invalid(..)) => back("invalid"),
        Err(AccountError::Busy(_)) => back("busy"),
        Err(error) => {
            tracing::error!(%error, "a password change failed");
            back("unavailable")
        }
    }
}
