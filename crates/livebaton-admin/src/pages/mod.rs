//! Pages: sign-in and sign-out (plain forms), and the live admin pages (`live`), rendered once over HTTP and then
//! kept live by the browser client.

mod account;
mod account_link;
mod forgot;
mod layout;
pub mod live;
mod login;
pub mod session;

pub use session::SiteOrigin;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

/// The page routes: `/admin/…`, the public record pages `/e/…`, the client script and the stylesheet.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/admin") }))
        .route("/admin", get(live::dashboard))
        .route("/admin/login", get(login::show).post(login::submit))
        .route("/admin/forgot", get(forgot::show).post(forgot::submit))
        .route("/admin/logout", get(login::confirm_logout).post(login::logout))
        .route("/admin/users", get(live::users))
        .route("/admin/account", get(account::show))
        .route("/admin/account/password", axum::routing::post(account::change_password))
        .route("/admin/entities", get(live::entities))
        .route("/admin/entities/new", get(live::entity_new))
        .route("/admin/entities/{entity}/edit", get(live::entity_edit))
        .route("/admin/entities/{entity}/data", get(live::records))
        .route("/admin/entities/{entity}/data/new", get(live::record_new))
        .route("/admin/entities/{entity}/trash", get(live::trash))
        .route("/admin/entities/{entity}/data/{id}", get(live::record_show))
        .route("/admin/entities/{entity}/data/{id}/edit", get(live::record_edit))
        .route("/e/{entity}/{slug}", get(live::public_record))
        .route("/account/link/{token}", get(account_link::show).post(account_link::submit))
        .route("/assets/{file}", get(live::asset))
}
