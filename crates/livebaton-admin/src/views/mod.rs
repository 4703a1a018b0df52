//! The live pages of the admin app: each is a [`LiveView`](livebaton_web::live::LiveView) registered under an id,
//! rendered once over HTTP (see `pages::live`) and then kept live over `/live/websocket` on `lv:<id>`.
//!
//! Views never hold the [`AppState`](crate::app::AppState) (which owns the socket endpoint that owns the views); they
//! get a [`ViewContext`] with what they read and write through.

mod account;
mod dashboard;
mod entities;
mod entity_form;
mod fields;
mod hooks;
mod markup;
mod public;
mod record_form;
mod record_show;
mod records;
mod schema_change;
mod trash;
mod users;

use livebaton::Engine;
use livebaton_web::live::{LiveSession, LiveViewRoute, Registry};
use sha2::{Digest, Sha256};

pub use hooks::{VISITOR_ROLE, visitor_from_token, visitor_token};

use crate::content::ContentService;
use crate::storage::Store;

/// A mount refused because something the page needs failed (the database, the presence backend). The cause goes to the
/// log; the client is told only that the page is unavailable, never the backend's error text.
pub(crate) fn unavailable(error: impl std::fmt::Display) -> livebaton_web::live::MountError {
    tracing::warn!(%error, "a live page could not mount");
    livebaton_web::live::MountError::Failed("unavailable".into())
}

/// What views read and write through. Cheap to clone: one per mounted view.
#[derive(Clone)]
pub struct ViewContext {
    /// Reads.
    pub store: Store,
    /// Writes, with validation, fencing and events.
    pub content: ContentService,
    /// PubSub, presence, editing, statistics.
    pub engine: Engine,
    /// Accounts (the users and account pages).
    pub people: crate::accounts::People,
}

/// The secret view tokens are signed with, derived from the app's `secret_key_base` so it differs from the secret of
/// API tokens: a token of one kind can never pass for the other.
pub fn view_secret(secret_key_base: &str) -> Vec<u8> {
    Sha256::digest(format!("livebaton view tokens\0{secret_key_base}").as_bytes()).to_vec()
}

/// Every live page, with the hooks of its session: the admin pages need a signed-in user; the public record page
/// does not. Every page counts itself in the session statistics.
pub fn route(context: &ViewContext, secret_key_base: &str) -> LiveViewRoute {
    let stats = context.engine.stats.clone();
    let admin = {
        let c = context.clone();
        LiveSession::new()
            .on_mount(hooks::RequireSignedIn)
            .on_mount(hooks::TrackSession::new(stats.clone()))
            .view("dashboard", {
                let c = c.clone();
                move || dashboard::Dashboard::new(c.clone())
            })
            .view("entities", {
                let c = c.clone();
                move || entities::EntityList::new(c.clone())
            })
            .view("entity_new", {
                let c = c.clone();
                move || entities::NewEntity::new(c.clone())
            })
            .view("entity_edit", {
                let c = c.clone();
                move || entity_form::EntityForm::new(c.clone())
            })
            .view("records", {
                let c = c.clone();
                move || records::RecordList::new(c.clone())
            })
            .view("record_new", {
                let c = c.clone();
                move || records::NewRecord::new(c.clone())
            })
            .view("record_show", {
                let c = c.clone();
                move || record_show::RecordShow::new(c.clone())
            })
            .view("trash", {
                let c = c.clone();
                move || trash::Trash::new(c.clone())
            })
            .view("account", {
                let c = c.clone();
                move || account::Account::new(c.clone())
            })
            .view("users", {
                let c = c.clone();
                move || users::Users::new(c.clone())
            })
            .view("record_edit", move || record_form::RecordForm::new(c.clone()))
    };
    let public = {
        let c = context.clone();
        LiveSession::new()
            .on_mount(hooks::TrackSession::new(stats))
            .view("public_record", move || public::PublicRecord::new(c.clone()))
    };
    let registry = Registry::new().session(admin).session(public);
    LiveViewRoute::new(registry, context.engine.presence.clone(), view_secret(secret_key_base))
}
