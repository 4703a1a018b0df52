//! The application state and the router, built in one place so tests use exactly what the binary serves.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use livebaton::Engine;

use crate::accounts::{Throttle, ThrottleConfig, TokenSigner};
use crate::content::ContentService;
use crate::storage::Store;

/// Largest request body accepted (JSON API and forms).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// PubSub, presence, editing, events, statistics.
    pub engine: Engine,
    /// Content writes (validation, fencing, events after commit).
    pub content: ContentService,
    /// Signs and checks API tokens.
    pub signer: TokenSigner,
    /// Failed sign-in bookkeeping, shared by the sign-in page and `POST /api/tokens`.
    pub throttle: Arc<Throttle>,
}

impl AppState {
    /// State over `store` and `engine`, signing with `secret_key_base`.
    pub fn new(store: Store, engine: Engine, secret_key_base: &str, throttle: ThrottleConfig) -> Self {
        let content = ContentService::new(store.clone(), engine.events.clone(), engine.editing.clone());
        AppState {
            store,
            engine,
            content,
            signer: TokenSigner::new(secret_key_base),
            throttle: Arc::new(Throttle::new(throttle)),
        }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::api::routes())
        .merge(crate::pages::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match sqlx::query("SELECT 1").execute(state.store.pool()).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}
