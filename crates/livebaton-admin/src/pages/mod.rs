//! Server-rendered pages: sign-in, sign-out and the landing page. (The live admin pages come with the live-pages work.)

mod layout;
mod login;
pub mod session;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

/// The `/admin` page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(login::home))
        .route("/admin/login", get(login::show).post(login::submit))
        .route("/admin/logout", get(login::confirm_logout).post(login::logout))
}
