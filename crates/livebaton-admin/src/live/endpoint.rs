//! `/live/websocket`: protocol version, origin and authentication checks before the upgrade.
//!
//! A client authenticates with a `token` connect param (a bearer token from `POST /api/tokens`), or the same token as
//! phoenix.js 1.8's `authToken` subprotocol, or the session cookie plus the session's `_csrf_token`; a public page's
//! visitor connects with a signed `visitor` token instead and may only join that page's view. Anything else,
//! a cross-site `Origin`, or a `vsn` other than 2.0.x is refused with 403 before the upgrade.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use livebaton_web::channel::UserInfo;
use livebaton_web::endpoint::{auth_token_from_protocols, origin_allowed, vsn_supported};
use livebaton_web::websocket::Upgrade;

use crate::accounts::sha256_hex;
use crate::app::AppState;
use crate::pages::session::{SESSION_COOKIE, cookie, tokens_match};
use crate::proxy::{ClientAddr, client_key};
use crate::storage::{StoreError, User};

use super::SocketCredential;
use crate::views::{VISITOR_ROLE, visitor_from_token};

fn forbidden(message: &'static str) -> Response {
    (StatusCode::FORBIDDEN, message).into_response()
}

/// `GET /live/websocket?vsn=2.0.0&token=…` (or with the session cookie and `_csrf_token`).
pub async fn websocket(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    if !vsn_supported(params.get("vsn").map(String::as_str)) {
        return forbidden("unsupported protocol version: connect with vsn=2.0.0");
    }
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    let allowed = if state.allowed_origins.is_empty() {
        // Default: the host the client connected to (same origin).
        headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(|host| vec![host.to_owned()])
            .unwrap_or_default()
    } else {
        state.allowed_origins.to_vec()
    };
    if !origin_allowed(origin, &allowed) {
        tracing::info!(?origin, "cross-site WebSocket upgrade refused");
        return forbidden("cross-site WebSocket connections are not allowed");
    }
    // A public page's visitor: may join that page's view and nothing else (the channel routes check the role).
    if let Some(visitor) = params.get("visitor").and_then(|token| visitor_from_token(&state.secret_key_base, token)) {
        let info = UserInfo::new(&visitor, "Visitor", "", VISITOR_ROLE);
        return state.live.accept_from(upgrade, info, Some(client_key(client)));
    }
    let token = params.get("token").cloned().or_else(|| auth_token_from_protocols(&upgrade));
    let (user, credential) = match authenticate(&state, token.as_deref(), &headers, params.get("_csrf_token")).await {
        Ok(Some(found)) => found,
        Ok(None) => return forbidden("sign in first: send a token, or the session cookie with _csrf_token"),
        // Not the client's fault: say so, so it retries instead of treating itself as signed out.
        Err(error) => {
            tracing::error!(%error, "WebSocket sign-in check failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; try again").into_response();
        }
    };
    // Tagged with the credential it opened with, so that ending that one session or token closes only its sockets.
    state.live.accept_from(upgrade, socket_user(&user).with_data(credential), Some(client_key(client)))
}

/// Who a socket or a live view belongs to, for a signed-in user.
pub fn socket_user(user: &User) -> UserInfo {
    // The generation the socket authenticated with: writes compare it with the user's current one.
    let generation = u64::try_from(user.token_generation).unwrap_or(0);
    UserInfo::new(&user.id.to_string(), &user.name, &user.email, &user.role.to_string()).with_credential(generation)
}

/// The user the credentials name, with the credential itself: `Ok(None)` when they name nobody (refused with 403),
/// `Err` when the database could not be asked (503).
async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    headers: &HeaderMap,
    csrf: Option<&String>,
) -> Result<Option<(User, SocketCredential)>, StoreError> {
    if let Some(token) = token.filter(|token| !token.is_empty()) {
        // Revoked on its own, by a password or role change, or with its account: refused.
        let found = state.people.bearer(token).await?;
        return Ok(found.map(|(user, id)| (user, SocketCredential::Token(id))));
    }
    let Some(session_id) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let Some(session) = state.store.find_session(&sha256_hex(session_id)).await? else { return Ok(None) };
    if !csrf.is_some_and(|csrf| tokens_match(&session.csrf_token, csrf)) {
        return Ok(None);
    }
    let user = state.store.find_user(session.user_id).await?;
    Ok(user.map(|user| (user, SocketCredential::Session(session.id_hash))))
}

/// `/live/longpoll`: 410, with the reason.
pub async fn longpoll() -> Response {
    (StatusCode::GONE, "livebaton is WebSocket-only: connect to /live/websocket?vsn=2.0.0").into_response()
}
