//! `/api/entities` and `/api/entities/{name}`: entity definitions. Everyone signed in may read; admins may write.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use livebaton_content::EntityInput;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiUser};
use crate::accounts::Role;
use crate::app::AppState;
use crate::content::editing::Author;
use crate::storage::Entity;

/// A body that changes a row: the new values plus the version they are based on.
#[derive(Debug, Deserialize)]
pub struct Versioned<T> {
    #[serde(flatten)]
    values: T,
    lock_version: Option<i64>,
}

impl<T> Versioned<T> {
    /// The values and the required lock version.
    ///
    /// # Errors
    /// [`ApiError::Invalid`] when `lock_version` is missing.
    pub fn split(self) -> Result<(T, i64), ApiError> {
        let version = self.lock_version.ok_or_else(|| {
            ApiError::invalid("lock_version", "is required: send the lock_version of the row you edited")
        })?;
        Ok((self.values, version))
    }
}

/// `?lock_version=` on DELETE (optional: without it the delete is unconditional).
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    lock_version: Option<i64>,
    /// Remove for good instead of moving to the trash (records only; admins only).
    #[serde(default)]
    purge: bool,
}

impl DeleteQuery {
    /// Whether the delete removes for good (`purge=true`).
    pub fn purge(&self) -> bool {
        self.purge
    }

    /// The version the delete is based on, if given.
    pub fn lock_version(&self) -> Option<i64> {
        self.lock_version
    }
}

/// A content error on an entity route: "not found" means the entity (deleted while the request was in flight).
fn entity_error(error: crate::content::ContentError) -> ApiError {
    match error {
        crate::content::ContentError::NotFound => ApiError::NotFound("entity"),
        other => other.into(),
    }
}

pub(crate) async fn entity_named(state: &AppState, name: &str) -> Result<Entity, ApiError> {
    state.store.find_entity_by_name(name).await?.ok_or(ApiError::NotFound("entity"))
}

/// `GET /api/entities`.
pub async fn list(State(state): State<AppState>, _user: ApiUser) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"entities": state.store.list_entities().await?})))
}

/// `POST /api/entities` (admin).
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    body: Result<Json<EntityInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Entity>), ApiError> {
    let actor = user.require(Role::Admin)?.id;
    let Json(input) = body?;
    let entity = state.content.create_entity(&input, Some(actor)).await?;
    Ok((StatusCode::CREATED, Json(entity)))
}

/// `GET /api/entities/{name}`.
pub async fn show(
    State(state): State<AppState>,
    _user: ApiUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Entity>, ApiError> {
    let Path(name) = path?;
    Ok(Json(entity_named(&state, &name).await?))
}

/// `PUT /api/entities/{name}` (admin; `lock_version` required).
pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Versioned<EntityInput>>, JsonRejection>,
) -> Result<Json<Entity>, ApiError> {
    let Path(name) = path?;
    user.require(Role::Admin)?;
    let Json(body) = body?;
    let entity = entity_named(&state, &name).await?;
    let (input, lock_version) = body.split()?;
    Ok(Json(
        state
            .content
            .update_entity(entity.id, lock_version, &input, None, &Author::from(&user.0))
            .await
            .map_err(entity_error)?,
    ))
}

/// `DELETE /api/entities/{name}` (admin).
pub async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = path?;
    let Query(query) = query?;
    user.require(Role::Admin)?;
    let entity = entity_named(&state, &name).await?;
    state.content.delete_entity(entity.id, query.lock_version()).await.map_err(entity_error)?;
    Ok(StatusCode::NO_CONTENT)
}
