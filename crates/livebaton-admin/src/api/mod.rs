//! The JSON API: tokens, entities, records, and people (users, invitations, the audit trail). A second way to write content, so live pages can be seen reacting to
//! changes made elsewhere. Every route but `POST /api/tokens` needs `Authorization: Bearer <token>`.

mod auth;
mod entities;
mod error;
mod records;
mod users;

use axum::Router;
use axum::routing::{get, post};

pub use auth::{ApiUser, SignInError};
pub use error::ApiError;

use crate::app::AppState;

/// The `/api` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tokens", post(auth::create_token).get(users::own_tokens))
        .route("/api/tokens/{id}", axum::routing::delete(users::revoke_token))
        .route("/api/users", get(users::list))
        .route("/api/users/{id}", axum::routing::patch(users::update).delete(users::delete))
        .route("/api/users/{id}/password_reset", post(users::password_reset))
        .route("/api/invitations", get(users::invitations).post(users::invite))
        .route("/api/invitations/{id}", axum::routing::delete(users::revoke_invitation))
        .route("/api/audit", get(users::audit))
        .route("/api/entities", get(entities::list).post(entities::create))
        .route("/api/entities/{name}", get(entities::show).put(entities::update).delete(entities::delete))
        .route("/api/entities/{name}/records", get(records::list).post(records::create))
        .route("/api/entities/{name}/records/{id}", get(records::show).put(records::update).delete(records::delete))
        .route("/api/entities/{name}/records/{id}/restore", post(records::restore))
        .route("/api/entities/{name}/trash", get(records::trash))
        .route("/api", axum::routing::any(error::not_found))
        .route("/api/{*rest}", axum::routing::any(error::not_found))
}
