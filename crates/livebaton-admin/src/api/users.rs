//! People through the JSON API: users, invitations, password resets and the audit trail (admins), and one's own API
//! tokens (anyone signed in). The rules are the accounts service's (`accounts::people`), shared with the admin pages.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiUser};
use crate::accounts::{AccountError, IssuedLink, Role};
use crate::app::AppState;
use crate::pages::SiteOrigin;
use crate::storage::{AccountLink, MAX_AUDIT_PAGE, User};

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Forbidden => ApiError::NotPermitted(error.to_string()),
            AccountError::NotFound => ApiError::NotFound("user"),
            AccountError::LastAdmin => ApiError::LastAdmin,
            AccountError::Invalid(field, message) => ApiError::invalid(field, &message),
            AccountError::WrongPassword => ApiError::invalid("current_password", "is wrong"),
            AccountError::Busy(busy) => ApiError::Busy(busy),
            AccountError::Store(error) => ApiError::Internal(error.into()),
        }
    }
}

/// A user as the API shows them.
fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active(),
        "last_seen_at": user.last_seen_at,
        "created_at": user.created_at,
    })
}

/// A pending invitation as the API shows it (never its token).
fn invitation_json(link: &AccountLink) -> Value {
    json!({
        "id": link.id,
        "email": link.email,
        "name": link.name,
        "role": link.role,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
    })
}

/// A one-time link just made: its absolute URL (shown once) and when it expires.
fn link_json(origin: &SiteOrigin, issued: &IssuedLink) -> Value {
    json!({
        "id": issued.link.id,
        "url": format!("{}{}", origin.0, issued.path),
        "expires_at": issued.link.expires_at,
        "mailed": issued.mailed,
    })
}

/// `GET /api/users` (admin): every user, oldest first.
pub async fn list(State(state): State<AppState>, user: ApiUser) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let users: Vec<Value> = state.store.list_users().await?.iter().map(user_json).collect();
    Ok(Json(json!({ "users": users })))
}

/// `PATCH /api/users/{id}` body: any of role, active, name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<String>,
    active: Option<bool>,
    name: Option<String>,
}

/// `PATCH /api/users/{id}` (admin): the changed user. Takes effect at once on every node.
pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<UserPatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let actor = user.require(Role::Admin)?;
    let (Path(id), Json(patch)) = (id?, body?);
    let role = patch
        .role
        .as_deref()
        .map(|role| Role::parse(role).ok_or_else(|| ApiError::invalid("role", "must be admin, editor or viewer")))
        .transpose()?;
    let changed = state.people.update_account(actor.id, id, role, patch.active, patch.name.as_deref()).await?;
    Ok(Json(user_json(&changed)))
}

/// `DELETE /api/users/{id}` (admin): 204.
pub async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let actor = user.require(Role::Admin)?;
    let Path(id) = id?;
    state.people.delete_account(actor.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/invitations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    email: String,
    role: String,
    name: Option<String>,
}

/// `POST /api/invitations` (admin): 201 `{id, url, expires_at}`; the URL's page sets the password.
pub async fn invite(
    State(state): State<AppState>,
    user: ApiUser,
    origin: SiteOrigin,
    body: Result<Json<Invitation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let actor = user.require(Role::Admin)?;
    let Json(invitation) = body?;
    let role =
        Role::parse(&invitation.role).ok_or_else(|| ApiError::invalid("role", "must be admin, editor or viewer"))?;
    let issued = state.people.invite(actor.id, &invitation.email, role, invitation.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(link_json(&origin, &issued))))
}

/// `GET /api/invitations` (admin): the pending ones, newest first.
pub async fn invitations(State(state): State<AppState>, user: ApiUser) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let pending: Vec<Value> = state.store.pending_invitations().await?.iter().map(invitation_json).collect();
    Ok(Json(json!({ "invitations": pending })))
}

/// `DELETE /api/invitations/{id}` (admin): revokes a pending invitation; 204, or 404 when none was pending.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let actor = user.require(Role::Admin)?;
    let Path(id) = id?;
    state.people.revoke_invitation(actor.id, id).await.map_err(|error| match error {
        AccountError::NotFound => ApiError::NotFound("pending invitation"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/users/{id}/password_reset` (admin): 201 `{id, url, expires_at}`, a one-hour link that sets the user's
/// password (their sessions and tokens end when it is used).
pub async fn password_reset(
    State(state): State<AppState>,
    user: ApiUser,
    origin: SiteOrigin,
    id: Result<Path<i64>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let actor = user.require(Role::Admin)?;
    let Path(id) = id?;
    let issued = state.people.reset_link(actor.id, id).await?;
    Ok((StatusCode::CREATED, Json(link_json(&origin, &issued))))
}

/// `GET /api/audit?before=<id>&limit=<n>` query.
#[derive(Debug, Deserialize)]
pub struct AuditPage {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/audit` (admin): `{entries, next}` newest first; `next` is the `before` of the following page, or null.
pub async fn audit(
    State(state): State<AppState>,
    user: ApiUser,
    query: Result<Query<AuditPage>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    let Query(page) = query?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit", &format!("must be 1 to {MAX_AUDIT_PAGE}")));
    }
    let entries = state.store.audit_trail(page.before, limit).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|entry| entry.id)).flatten();
    Ok(Json(json!({ "entries": entries, "next": next })))
}

/// `GET /api/tokens` (anyone): one's own tokens that have not expired, newest first.
pub async fn own_tokens(State(state): State<AppState>, user: ApiUser) -> Result<Json<Value>, ApiError> {
    let tokens = state.store.api_tokens_of(user.0.id).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

/// `DELETE /api/tokens/{id}` (anyone, their own): revokes one token; 204, or 404.
pub async fn revoke_token(
    State(state): State<AppState>,
    user: ApiUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    if state.store.revoke_api_token(id, user.0.id).await? {
        // Sockets that token opened close too, on every node.
        crate::live::announce_credential_ended(
            &state.engine.pubsub,
            user.0.id,
            crate::live::SocketCredential::Token(id),
        );
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("token"))
    }
}
