//! Signed view tokens: the first HTTP render embeds one, naming the view and its params; the socket join presents it.
//!
//! The token is what lets the server trust params it did not receive over the socket (a record id the HTTP request
//! authorised) without keeping per-page state between the GET and the join. Format: `base64url(claims JSON)` `.`
//! `base64url(HMAC-SHA256(secret, first part))`. It expires (default 2 h) so a page left open for a day asks for a
//! reload rather than resurrecting stale params; the reload gets a fresh token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

/// How long a token is accepted by default.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// What a token says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The view id (its route name, the `<view-id>` of `lv:<view-id>`).
    pub view: String,
    /// The params the HTTP request mounted the view with.
    pub params: Map<String, Value>,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Past its expiry: the page is old, the client should reload it.
    #[error("the page expired; reload it")]
    Expired,
    /// Not signed with our secret, or malformed.
    #[error("invalid view token")]
    Invalid,
}

impl TokenError {
    /// The `reason` a join refusal carries: `expired` or `invalid`.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Expired => "expired",
            TokenError::Invalid => "invalid",
        }
    }
}

/// Signing and verifying view tokens.
pub struct ViewToken;

impl ViewToken {
    /// A token for `view` with `params`, valid for [`DEFAULT_TOKEN_TTL`] from `now`.
    pub fn sign(secret: &[u8], view: &str, params: &Map<String, Value>, now: SystemTime) -> String {
        Self::sign_with_ttl(secret, view, params, now, DEFAULT_TOKEN_TTL)
    }

    /// A token valid for `ttl` from `now`.
    pub fn sign_with_ttl(
        secret: &[u8],
        view: &str,
        params: &Map<String, Value>,
        now: SystemTime,
        ttl: Duration,
    ) -> String {
        let iat = seconds(now);
        let claims =
            Claims { view: view.to_owned(), params: params.clone(), iat, exp: iat.saturating_add(ttl.as_secs()) };
        // Serialising a struct of strings and JSON values cannot fail.
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signature = URL_SAFE_NO_PAD.encode(mac(secret, body.as_bytes()).finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The claims of `token` if we signed it and it has not expired at `now`.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for a forged, altered or malformed token; [`TokenError::Expired`] for a genuine one
    /// past its expiry (checked after the signature, so "expired" is never said of a forgery).
    pub fn verify(secret: &[u8], token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let (body, signature) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Invalid)?;
        // verify_slice compares in constant time.
        mac(secret, body.as_bytes()).verify_slice(&signature).map_err(|_| TokenError::Invalid)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        if seconds(now) >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}
