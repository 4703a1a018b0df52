//! `/api/entities/{name}/records[/{id}]`: records. Everyone signed in may read; editors and admins may write.
//!
//! What a record's `data` holds for a consumer: a `rich_text` value is sanitised HTML (sanitised when written and
//! again here when read, see [`ContentService::for_output`](crate::content::ContentService::for_output)); every other
//! value is raw text (or a number, boolean or list), exactly as submitted, for the consumer to escape.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use livebaton_content::RecordInput;
use serde_json::{Value, json};

use super::entities::{DeleteQuery, Versioned, entity_named};
use super::{ApiError, ApiUser};
use crate::accounts::Role;
use crate::app::AppState;
use crate::content::editing::Author;
use crate::storage::Record;

/// `GET /api/entities/{name}/records`.
pub async fn list(
    State(state): State<AppState>,
    _user: ApiUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    let entity = entity_named(&state, &name).await?;
    let records = state.store.list_records(entity.id).await?;
    Ok(Json(json!({"records": state.content.for_output(&entity, records).await})))
}

/// `POST /api/entities/{name}/records` (editor).
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<RecordInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Record>), ApiError> {
    let Path(name) = path?;
    let actor = user.require(Role::Editor)?.id;
    let Json(input) = body?;
    let entity = entity_named(&state, &name).await?;
    Ok((StatusCode::CREATED, Json(state.content.create_record(&entity, &input, Some(actor)).await?)))
}

/// `GET /api/entities/{name}/records/{id}`.
pub async fn show(
    State(state): State<AppState>,
    _user: ApiUser,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<Json<Record>, ApiError> {
    let Path((name, id)) = path?;
    let entity = entity_named(&state, &name).await?;
    let record = state.store.find_record(entity.id, id).await?.ok_or(ApiError::NotFound("record"))?;
    let mut shown = state.content.for_output(&entity, vec![record]).await;
    Ok(Json(shown.pop().ok_or(ApiError::NotFound("record"))?))
}

/// `PUT /api/entities/{name}/records/{id}` (editor; `lock_version` required; a stale one gives 409 with the row).
pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<(String, i64)>, PathRejection>,
    body: Result<Json<Versioned<RecordInput>>, JsonRejection>,
) -> Result<Json<Record>, ApiError> {
    let Path((name, id)) = path?;
    user.require(Role::Editor)?;
    let Json(body) = body?;
    let entity = entity_named(&state, &name).await?;
    let (input, lock_version) = body.split()?;
    Ok(Json(state.content.update_record(&entity, id, lock_version, &input, None, &Author::from(&user.0)).await?))
}

/// `DELETE /api/entities/{name}/records/{id}[?lock_version=N][&purge=true]`: moves the record to the trash (editor),
/// or with `purge=true` removes it for good, from the trash or live (admin).
pub async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<(String, i64)>, PathRejection>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((name, id)) = path?;
    let Query(query) = query?;
    let entity = entity_named(&state, &name).await?;
    if query.purge() {
        user.require(Role::Admin)?;
        state.content.purge_record(&entity, id, query.lock_version()).await?;
    } else {
        let actor = user.require(Role::Editor)?.id;
        state.content.delete_record(&entity, id, query.lock_version(), Some(actor)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/entities/{name}/trash`: the entity's records in the trash, most recently deleted first, each with
/// `deleted_at` and `deleted_by`.
pub async fn trash(
    State(state): State<AppState>,
    _user: ApiUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    let entity = entity_named(&state, &name).await?;
    let records = state.store.list_trash(entity.id).await?;
    Ok(Json(json!({"records": state.content.for_output(&entity, records).await})))
}

/// `POST /api/entities/{name}/records/{id}/restore` (editor): takes the record out of the trash with its id, slug,
/// `lock_version` and data; it is announced as `data_created`.
pub async fn restore(
    State(state): State<AppState>,
    user: ApiUser,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<Json<Record>, ApiError> {
    let Path((name, id)) = path?;
    user.require(Role::Editor)?;
    let entity = entity_named(&state, &name).await?;
    let record = state.content.restore_record(&entity, id).await.map_err(|error| match error {
        crate::content::ContentError::NotFound => ApiError::NotFound("record in the trash"),
        other => other.into(),
    })?;
    let mut shown = state.content.for_output(&entity, vec![record]).await;
    Ok(Json(shown.pop().ok_or(ApiError::NotFound("record"))?))
}
