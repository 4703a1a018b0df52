//! Browser sessions: the session cookie, the signed-in user of a page request, and CSRF checks.
//!
//! The session cookie holds a random id (HttpOnly, SameSite=Lax); the database keeps its SHA-256 with the user and a
//! CSRF token bound to the session. Forms echo that token in `_csrf_token`. Before sign-in there is no session, so the
//! sign-in form uses a double-submit cookie instead. Every form POST also checks `Origin` / `Sec-Fetch-Site`, so a
//! cross-site page cannot post even if it obtained a token. Session and CSRF cookies carry `Secure` when the page
//! was served over HTTPS ([`CookieWriter`]).

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::accounts::{random_token, sha256_hex};
use crate::app::AppState;
use crate::storage::{Session, User};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "livebaton_session";
/// Name of the pre-sign-in CSRF cookie.
pub const CSRF_COOKIE: &str = "livebaton_csrf";
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 14 * 24 * 60 * 60 * 1000;

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for an HttpOnly, SameSite=Lax cookie on `/` (`max_age` seconds; 0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// How a response writes its cookies: with `Secure` when the browser reached the site over HTTPS, which the binary
/// (it does not terminate TLS) learns from a trusted proxy's `X-Forwarded-Proto`, or always with `--secure-cookies`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookieWriter {
    secure: bool,
}

impl CookieWriter {
    /// A writer that adds `Secure` if `secure`.
    pub fn new(secure: bool) -> Self {
        CookieWriter { secure }
    }

    /// Whether cookies get `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// [`set_cookie`], with `Secure` when the writer says so.
    pub fn set(&self, name: &str, value: &str, max_age: i64) -> String {
        let cookie = set_cookie(name, value, max_age);
        if self.secure { cookie + "; Secure" } else { cookie }
    }
}

impl FromRequestParts<AppState> for CookieWriter {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        let forwarded_https = peer.is_some_and(|peer| state.trusted_proxies.is_https(peer, &parts.headers));
        Ok(CookieWriter { secure: state.secure_cookies || forwarded_https })
    }
}

/// The site's origin as the browser reached it (`https://admin.example.com`), for links the server hands out (an
/// invitation's URL): the request's `Host`, with `https` when the cookies are `Secure` (see [`CookieWriter`]). A `Host`
/// with anything but host characters is replaced by `localhost`, so a forged header cannot put markup or another
/// path into a link. Only an authenticated admin's request makes such a link, and they are shown it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteOrigin(pub String);

impl FromRequestParts<AppState> for SiteOrigin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secure = CookieWriter::from_request_parts(parts, state).await?.secure();
        let host = parts.headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("");
        let plain = !host.is_empty()
            && host.len() <= 255
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        let host = if plain { host } else { "localhost" };
        Ok(SiteOrigin(format!("{}://{host}", if secure { "https" } else { "http" })))
    }
}

/// Whether a form POST comes from this site: `Origin` (when sent) names the host the request was sent to, and
/// `Sec-Fetch-Site` (when sent) is `same-origin` or `none`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    let origin_ok = match (headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()), host) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        }
        (Some(_), None) => false,
    };
    let fetch_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok());
    origin_ok && matches!(fetch_site, None | Some("same-origin") | Some("none"))
}

/// Compares two tokens in time independent of their contents and lengths: their SHA-256 digests are compared with
/// `hmac`'s constant-time check (`subtle` underneath), so neither where they differ nor the expected token's length
/// shows in the time taken. An empty expected token matches nothing.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    use hmac::Mac;
    use sha2::Digest;
    if expected.is_empty() {
        return false;
    }
    let digest = |token: &str| sha2::Sha256::digest(token.as_bytes());
    // A MAC keyed by nothing is a plain digest check whose verify_slice compares in constant time.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"").expect("any key length");
    mac.update(&digest(expected));
    let expected = mac.finalize().into_bytes();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"").expect("any key length");
    mac.update(&digest(given));
    mac.verify_slice(&expected).is_ok()
}

/// Starts a session for `user`; returns the `Set-Cookie` value, written by `cookies`.
///
/// # Errors
/// If the session cannot be stored.
pub async fn start_session(
    state: &AppState,
    user: &User,
    cookies: CookieWriter,
    headers: &HeaderMap,
    client: std::net::IpAddr,
) -> Result<String, crate::storage::StoreError> {
    let id = random_token(32);
    let session = Session {
        id_hash: sha256_hex(&id),
        user_id: user.id,
        csrf_token: random_token(24),
        expires_at: crate::storage::now_ms() + SESSION_TTL_MS,
        // As read before the password was checked: if the password or role changed since, the session is void.
        token_generation: user.token_generation,
    };
    // What the account page shows of the session: the browser and the address it was started from.
    let user_agent = headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).unwrap_or("");
    state.store.create_session_from(&session, user_agent, &client.to_string()).await?;
    // Best effort: "last seen" on the users page.
    if let Err(error) = state.store.touch_user(user.id).await {
        tracing::warn!(%error, "last seen not recorded");
    }
    Ok(cookies.set(SESSION_COOKIE, &id, SESSION_TTL_MS / 1000))
}

/// The signed-in user of a page request; pages without one redirect to the sign-in page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user.
    pub user: User,
    /// Their session.
    pub session: Session,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/admin/login").into_response();
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_login()) };
        let found = state.store.find_session(&sha256_hex(id)).await.map_err(|error| {
            tracing::error!(%error, "session lookup failed");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; try again").into_response()
        })?;
        let Some(session) = found else { return Err(to_login()) };
        let user = state.store.find_user(session.user_id).await.ok().flatten();
        match user {
            // A deactivated account's sessions were deleted with the deactivation; this is the belt to those braces.
            Some(user) if user.active() => {
                // "Last active" on the account page and "last seen" on the users page (each written at most once a
                // minute; best effort).
                let (touched_session, touched_user) =
                    tokio::join!(state.store.touch_session(&session.id_hash), state.store.touch_user(user.id));
                if let Err(error) = touched_session.and(touched_user) {
                    tracing::warn!(%error, "last activity not recorded");
                }
                Ok(SignedIn { user, session })
            }
            _ => Err(to_login()),
        }
    }
}
