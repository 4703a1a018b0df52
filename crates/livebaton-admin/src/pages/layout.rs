//! The page frame shared by the server-rendered pages: document head, our own small stylesheet, header and
//! navigation, the flash area, and for live pages the root element the browser client takes over.

use std::sync::OnceLock;

use livebaton_web::live::LivePage;
use maud::{DOCTYPE, Markup, html};
use serde_json::{Map, Value};

use crate::storage::User;

/// The admin's stylesheet, served as a file (never inline: the Content-Security-Policy allows no inline styles).
pub const STYLESHEET: &str = include_str!("style.css");

/// Where the stylesheet is served: `/assets/admin-<16 hex digits of its SHA-256>.css`, so it can be cached for ever.
pub fn stylesheet_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| livebaton_web::live::hashed_asset_path("admin", "css", STYLESHEET))
}

/// The signed-in user as the header shows them.
#[derive(Clone, Debug)]
pub struct HeaderUser {
    /// Display name.
    pub name: String,
    /// Role name.
    pub role: String,
}

impl From<&User> for HeaderUser {
    fn from(user: &User) -> Self {
        HeaderUser { name: user.name.clone(), role: user.role.to_string() }
    }
}

/// A full page titled `title` with `body` inside `<main>`.
pub fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    frame(title, user.map(HeaderUser::from).as_ref(), &Map::new(), None, body)
}

/// A live page: the frame around the view's first render, with the root the client joins and, in the head, the
/// client's script and how its socket connects (all from the public [`LivePage`]).
pub fn live_page(user: Option<&HeaderUser>, live: &LivePage) -> Markup {
    let title = live.title.as_deref().unwrap_or("livebaton");
    frame(title, user, &live.flash, Some(live), html! { (live.root()) })
}

fn frame(
    title: &str,
    user: Option<&HeaderUser>,
    flash: &Map<String, Value>,
    live: Option<&LivePage>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · livebaton" }
                link rel="stylesheet" href=(stylesheet_path());
                @if let Some(live) = live { (live.head()) }
            }
            body data-lb-state="static" {
                header.top {
                    a.brand href=(if user.is_some() { "/admin" } else { "/" }) { "livebaton" }
                    @if let Some(user) = user {
                        nav {
                            a href="/admin" { "Dashboard" }
                            a href="/admin/entities" { "Entities" }
                        }
                        span.who { (user.name) " " span.role { (user.role) } " · " a href="/admin/logout" { "Sign out" } }
                    }
                }
                div #lb-status .lb-status role="status" hidden {}
                div #lb-flash .lb-flash {
                    @for (kind, message) in flash {
                        @if let Some(message) = message.as_str() {
                            div class={ "flash flash-" (kind) } role=(if kind == "error" { "alert" } else { "status" }) {
                                (message)
                                button.flash-close type="button" aria-label="Dismiss" { "×" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}
