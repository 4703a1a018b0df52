//! Bearer-token authentication for the JSON API, and `POST /api/tokens`.

use std::net::IpAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::accounts::{HashingBusy, Role, Throttled};
use crate::app::AppState;
use crate::proxy::ClientAddr;
use crate::storage::User;

/// The signed-in user of an API request (from `Authorization: Bearer <token>`).
#[derive(Debug, Clone)]
pub struct ApiUser(pub User);

impl ApiUser {
    /// Refuses unless the user's role is at least `role`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`].
    pub fn require(&self, role: Role) -> Result<&User, ApiError> {
        if self.0.role >= role { Ok(&self.0) } else { Err(ApiError::Forbidden(self.0.role)) }
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let token = header
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .ok_or(ApiError::Unauthorized("send Authorization: Bearer <token> (from POST /api/tokens)"))?;
        // Genuine, unexpired, not revoked on its own, of the user's current generation (a password or role change
        // since it was issued revokes it), and the account active.
        let user = state.people.bearer_user(token).await?;
        user.map(ApiUser).ok_or(ApiError::Unauthorized("invalid, expired or revoked token: get a new one"))
    }
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    /// What the token is for, shown on the account page where it can be revoked (default "sign-in").
    #[serde(default)]
    name: String,
}

/// `POST /api/tokens`: `{email, password}` → `{token, expires_at}`. Failed attempts are throttled per account and
/// per client address (429), and hashing is bounded (503), like the sign-in page.
pub async fn create_token(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(credentials) = body?;
    let user = state.authenticate(&credentials.email, &credentials.password, client).await?;
    let (token, row) = state.people.issue_token(&user, &credentials.name).await?;
    Ok(Json(json!({"token": token, "expires_at": row.expires_at, "id": row.id})))
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong email or password (which of the two is not said).
    #[error("invalid email or password")]
    Invalid,
    /// Too many failures.
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// Every password-hashing slot is busy.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::Invalid => ApiError::Unauthorized("invalid email or password"),
            SignInError::Throttled(throttled) => ApiError::Throttled(throttled),
            SignInError::Busy(busy) => ApiError::Busy(busy),
            SignInError::Store(error) => error.into(),
        }
    }
}

impl AppState {
    /// Checks credentials for a client at `address`: throttled per account and per address (growing delays, see
    /// `accounts::throttle`), at most the hasher's permits hashing at once, and equal time for unknown accounts.
    ///
    /// The attempt is counted as a failure before its password is hashed, in the same step as the throttle's check,
    /// so concurrent guesses stop at the limit; a success then gives the count back.
    ///
    /// # Errors
    /// [`SignInError`].
    pub async fn authenticate(&self, email: &str, password: &str, address: IpAddr) -> Result<User, SignInError> {
        // A look first, so a throttled client neither queries the database nor waits for a hashing slot.
        self.throttle.check(email, address).await?;
        let user = self.store.find_user_by_email(email).await?;
        let permit = self.hasher.permit().await?;
        let attempt = self.throttle.begin(email, address).await?;
        let hash = user.as_ref().map(|user| user.password_hash.as_str());
        let ok = self.hasher.verify(permit, password, hash).await;
        match user {
            // A deactivated account is refused like a wrong password (and its attempt counts).
            Some(user) if ok && user.active() => {
                attempt.succeeded().await;
                Ok(user)
            }
            _ => {
                attempt.failed();
                Err(SignInError::Invalid)
            }
        }
    }
}
