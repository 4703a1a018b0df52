//! The HTTP side of the live pages: each route mounts its view without a socket, renders it into the page frame with
//! a signed token, and the browser client takes it from there. Also serves the client itself.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use livebaton_web::channel::UserInfo;
use livebaton_web::live::{LivePage, MountError, RenderError, client_asset};
use maud::html;
use serde_json::{Map, Value, json};

use super::layout::{HeaderUser, STYLESHEET, live_page, page, stylesheet_path};
use super::session::{CookieWriter, SESSION_COOKIE, SignedIn, SiteOrigin, cookie};
use crate::accounts::{random_token, sha256_hex};
use crate::app::AppState;
use crate::live::socket_user;
use crate::views::{VISITOR_ROLE, visitor_token};

/// The cookie naming an anonymous visitor of the public pages (for "unique visitors").
pub const VISITOR_COOKIE: &str = "livebaton_visitor";

/// `GET /assets/livebaton-<hash>.js` and `GET /assets/admin-<hash>.css`: the client and the stylesheet, cacheable for
/// ever (their paths change with their content).
pub async fn asset(Path(file): Path<String>) -> Response {
    if stylesheet_path().strip_prefix("/assets/") != Some(file.as_str()) {
        return client_asset(Path(file)).await;
    }
    let headers = [
        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
    ];
    (headers, STYLESHEET).into_response()
}

fn user_info(signed_in: &SignedIn) -> Arc<UserInfo> {
    Arc::new(socket_user(&signed_in.user))
}

/// Renders `view` with `params` for a signed-in user.
pub(super) async fn admin_page(
    state: &AppState,
    signed_in: &SignedIn,
    view: &str,
    mut params: Map<String, Value>,
    path: &str,
) -> Response {
    params.insert("path".into(), json!(path));
    let connect = ("_csrf_token", signed_in.session.csrf_token.as_str());
    let header_user = HeaderUser::from(&signed_in.user);
    render(state, view, params, user_info(signed_in), Some(&header_user), connect).await
}

async fn render(
    state: &AppState,
    view: &str,
    params: Map<String, Value>,
    user: Arc<UserInfo>,
    header_user: Option<&HeaderUser>,
    connect: (&str, &str),
) -> Response {
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let (entity, path) = (text("entity"), text("path"));
    match state.views.render_static(view, params, user).await {
        Ok(rendered) => {
            // Where the client sends a user whose socket was closed because they were signed out.
            let live = LivePage::new(view, rendered).connect_param(connect.0, connect.1).sign_in("/admin/login");
            Html(live_page(header_user, &live, path.as_deref()).into_string()).into_response()
        }
        Err(RenderError::Mount(MountError::Redirect { to })) => Redirect::to(&to).into_response(),
        Err(RenderError::Mount(MountError::NotFound)) => {
            let moved = match (entity, path) {
                (Some(entity), Some(path)) => renamed_path(state, &entity, &path).await,
                _ => None,
            };
            match moved {
                Some(path) => Redirect::permanent(&path).into_response(),
                None => not_found(header_user),
            }
        }
        Err(error) => {
            tracing::error!(%error, view, "page could not be rendered");
            let body = html! { div.card { h1 { "Something went wrong" } p { "The page could not be shown: " (error.to_string()) } } };
            (StatusCode::INTERNAL_SERVER_ERROR, Html(page("Error", None, body).into_string())).into_response()
        }
    }
}

/// For a page that was not found: when its entity `name` is the old name of a renamed entity, the page's `path` with
/// the entity's current name in its place (`/admin/entities/{name}/…` or `/e/{name}/…`), for a permanent redirect.
async fn renamed_path(state: &AppState, name: &str, path: &str) -> Option<String> {
    let renamed = state.store.find_renamed_entity(name).await.ok()??;
    let mut segments: Vec<&str> = path.split('/').collect();
    // "", "admin", "entities", name, … or "", "e", name, …
    let at = if path.starts_with("/admin/entities/") { 3 } else { 2 };
    (segments.get(at) == Some(&name)).then_some(())?;
    segments[at] = &renamed.name;
    Some(segments.join("/"))
}

fn not_found(header_user: Option<&HeaderUser>) -> Response {
    let _ = header_user;
    let body = html! {
        div.card {
            h1 { "Not found" }
            p { "This page does not exist, or what it showed was deleted." }
            p { a href="/admin" { "Back to the dashboard" } }
        }
    };
    (StatusCode::NOT_FOUND, Html(page("Not found", None, body).into_string())).into_response()
}

fn params(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), json!(value))).collect()
}

/// `GET /admin`: the live dashboard.
pub async fn dashboard(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    admin_page(&state, &signed_in, "dashboard", Map::new(), "/admin").await
}

/// `GET /admin/users` (admins; the view refuses anyone else). The site's origin goes into the view's params, for the
/// absolute links it hands out.
pub async fn users(State(state): State<AppState>, signed_in: SignedIn, origin: SiteOrigin) -> Response {
    if signed_in.user.role != crate::accounts::Role::Admin {
        let body = html! {
            div.card {
                h1 { "Only admins manage people" }
                p { "Your role (" (signed_in.user.role) ") may not see this page. An admin can change your role." }
                p { a href="/admin" { "Back to the dashboard" } }
            }
        };
        let page = page("People", Some(&signed_in.user), body);
        return (StatusCode::FORBIDDEN, Html(page.into_string())).into_response();
    }
    admin_page(&state, &signed_in, "users", params(&[("origin", &origin.0)]), "/admin/users").await
}

/// `GET /admin/entities`.
pub async fn entities(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    admin_page(&state, &signed_in, "entities", Map::new(), "/admin/entities").await
}

/// `GET /admin/entities/new`.
pub async fn entity_new(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    admin_page(&state, &signed_in, "entity_new", Map::new(), "/admin/entities/new").await
}

/// `GET /admin/entities/{id}/edit`.
pub async fn entity_edit(State(state): State<AppState>, signed_in: SignedIn, Path(id): Path<String>) -> Response {
    let path = format!("/admin/entities/{id}/edit");
    admin_page(&state, &signed_in, "entity_edit", params(&[("id", &id)]), &path).await
}

/// `GET /admin/entities/{name}/data`.
pub async fn records(State(state): State<AppState>, signed_in: SignedIn, Path(entity): Path<String>) -> Response {
    let path = format!("/admin/entities/{entity}/data");
    admin_page(&state, &signed_in, "records", params(&[("entity", &entity)]), &path).await
}

/// `GET /admin/entities/{name}/trash`.
pub async fn trash(State(state): State<AppState>, signed_in: SignedIn, Path(entity): Path<String>) -> Response {
    let path = format!("/admin/entities/{entity}/trash");
    admin_page(&state, &signed_in, "trash", params(&[("entity", &entity)]), &path).await
}

/// `GET /admin/entities/{name}/data/new`.
pub async fn record_new(State(state): State<AppState>, signed_in: SignedIn, Path(entity): Path<String>) -> Response {
    let path = format!("/admin/entities/{entity}/data/new");
    admin_page(&state, &signed_in, "record_new", params(&[("entity", &entity)]), &path).await
}

/// `GET /admin/entities/{name}/data/{id}`.
pub async fn record_show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    let path = format!("/admin/entities/{entity}/data/{id}");
    admin_page(&state, &signed_in, "record_show", params(&[("entity", &entity), ("id", &id)]), &path).await
}

/// `GET /admin/entities/{name}/data/{id}/edit`.
pub async fn record_edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    let path = format!("/admin/entities/{entity}/data/{id}/edit");
    admin_page(&state, &signed_in, "record_edit", params(&[("entity", &entity), ("id", &id)]), &path).await
}

/// `GET /e/{entity}/{slug}`: a published record for everyone, counted as an anonymous visitor unless signed in.
pub async fn public_record(
    State(state): State<AppState>,
    cookies: CookieWriter,
    headers: HeaderMap,
    Path((entity, slug)): Path<(String, String)>,
) -> Response {
    let path = format!("/e/{entity}/{slug}");
    let mut view_params = params(&[("entity", &entity), ("slug", &slug), ("path", &path)]);
    view_params.insert("path".into(), json!(path));
    // A signed-in reader counts as themselves.
    if let Some(session_id) = cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(session)) = state.store.find_session(&sha256_hex(session_id)).await
        && let Ok(Some(user)) = state.store.find_user(session.user_id).await
    {
        let info = Arc::new(socket_user(&user));
        let connect = ("_csrf_token", session.csrf_token.as_str());
        return render(&state, "public_record", view_params, info, None, connect).await;
    }
    let existing = cookie(&headers, VISITOR_COOKIE).filter(|id| id.len() >= 16 && id.len() <= 64);
    let visitor = existing.map(str::to_owned).unwrap_or_else(|| random_token(18));
    let info = Arc::new(UserInfo::new(&visitor, "Visitor", "", VISITOR_ROLE));
    let token = visitor_token(&state.secret_key_base, &visitor);
    let response = render(&state, "public_record", view_params, info, None, ("visitor", &token)).await;
    if existing.is_some() {
        return response;
    }
    // A year: unique-visitor counts should not reset every session.
    ([(header::SET_COOKIE, cookies.set(VISITOR_COOKIE, &visitor, 365 * 24 * 3600))], response).into_response()
}
