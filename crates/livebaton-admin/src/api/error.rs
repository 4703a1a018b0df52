//! The JSON API's one error type: every failure becomes a status and a JSON body a client can act on.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use livebaton_content::ValidationErrors;
use serde_json::{Value, json};

use crate::accounts::{HashingBusy, Throttled, retry_after_secs};
use crate::content::ContentError;
use crate::storage::StoreError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body is not the JSON expected.
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The user's role may not do this.
    #[error("your role ({0}) may not do this")]
    Forbidden(crate::accounts::Role),
    /// Refused by a rule other than the role the request was made with (an admin demoted meanwhile).
    #[error("{0}")]
    NotPermitted(String),
    /// The change would leave no active admin.
    #[error("this is the last active admin: make someone else an admin first")]
    LastAdmin,
    /// No such entity or record.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The row changed since the version the write was based on; `current` is the row now.
    #[error("{message}")]
    Conflict {
        /// What happened.
        message: String,
        /// The current row.
        current: Value,
    },
    /// Invalid fields.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// Too many failed sign-ins.
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// Every password-hashing slot stayed busy.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// Anything else; logged, never shown in detail.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A single-field validation error.
    pub fn invalid(field: &str, message: &str) -> Self {
        let mut errors = ValidationErrors::default();
        errors.add(field, message);
        ApiError::Invalid(errors)
    }
}

impl From<ContentError> for ApiError {
    fn from(error: ContentError) -> Self {
        match error {
            ContentError::Invalid(errors) => ApiError::Invalid(errors),
            ContentError::NotFound => ApiError::NotFound("record"),
            ContentError::EntityConflict(current) => ApiError::Conflict {
                message: "this entity was changed by someone else; the current version is attached".into(),
                current: serde_json::to_value(&*current).unwrap_or(Value::Null),
            },
            ContentError::RecordConflict(current) => ApiError::Conflict {
                message: "this record was changed by someone else; the current version is attached".into(),
                current: serde_json::to_value(&*current).unwrap_or(Value::Null),
            },
            // Merged saves come from editing sessions, never from the API; kept total for safety.
            ContentError::EntityMerge(conflict) => ApiError::Conflict {
                message: "this entity was changed by someone else; the current version is attached".into(),
                current: serde_json::to_value(&conflict.current).unwrap_or(Value::Null),
            },
            ContentError::RecordMerge(conflict) => ApiError::Conflict {
                message: "this record was changed by someone else; the current version is attached".into(),
                current: serde_json::to_value(&conflict.current).unwrap_or(Value::Null),
            },
            ContentError::NotOwner(not_owner) => {
                ApiError::Conflict { message: not_owner.to_string(), current: Value::Null }
            }
            ContentError::Store(error) => ApiError::Internal(error.into()),
            // API writes carry no owner token, so they never ask the roster; kept total for safety.
            roster @ ContentError::Roster(_) => ApiError::Internal(anyhow::anyhow!(roster.to_string())),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ContentError::from(error).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// Unknown `/api` routes answer in JSON like the others.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, body) = match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, json!({"error": "bad_request", "message": message})),
            ApiError::Unauthorized(_) => {
                (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized", "message": message}))
            }
            ApiError::Forbidden(_) | ApiError::NotPermitted(_) => {
                (StatusCode::FORBIDDEN, json!({"error": "forbidden", "message": message}))
            }
            ApiError::LastAdmin => (StatusCode::CONFLICT, json!({"error": "last_admin", "message": message})),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, json!({"error": "not_found", "message": message})),
            ApiError::Conflict { current, .. } => {
                (StatusCode::CONFLICT, json!({"error": "conflict", "message": message, "current": current}))
            }
            ApiError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid", "message": "some fields are invalid", "fields": errors}),
            ),
            ApiError::Throttled(throttled) => {
                let retry = retry_after_secs(throttled.retry_after).to_string();
                let body = json!({"error": "throttled", "message": message});
                return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry)], Json(body)).into_response();
            }
            ApiError::Busy(busy) => {
                let retry = retry_after_secs(busy.retry_after).to_string();
                let body = json!({"error": "busy", "message": message});
                return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", retry)], Json(body)).into_response();
            }
            ApiError::Internal(error) => {
                tracing::error!(error = ?error, "API request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "internal", "message": message}))
            }
        };
        (status, Json(body)).into_response()
    }
}
