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
    frame(title, user.map(HeaderUser::from).as_ref(), &Map::new(), None, None, body)
}

/// A live page: the frame around the view's first render, with the root the client joins and, in the head, the
/// client's script and how its socket connects (all from the public [`LivePage`]). `path` is the page's own, for the
/// navigation's `aria-current`.
pub fn live_page(user: Option<&HeaderUser>, live: &LivePage, path: Option<&str>) -> Markup {
    let title = live.title.as_deref().unwrap_or("livebaton");
    frame(title, user, &live.flash, Some(live), path, html! { (live.root()) })
}

/// Whether a page path is in a navigation section.
type InSection = fn(&str) -> bool;

/// The navigation's sections: label, link, whether a page path is in that section, and whether only admins see it.
const SECTIONS: [(&str, &str, InSection, bool); 3] = [
    ("Dashboard", "/admin", |path| path == "/admin" || path == "/admin/", false),
    ("Entities", "/admin/entities", |path| path.starts_with("/admin/entities"), false),
    ("People", "/admin/users", |path| path.starts_with("/admin/users"), true),
];

fn frame(
    title: &str,
    user: Option<&HeaderUser>,
    flash: &Map<String, Value>,
    live: Option<&LivePage>,
    path: Option<&str>,
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
                // The first stop of the Tab key: past the header straight to the page's content.
                a.skip-link href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(if user.is_some() { "/admin" } else { "/" }) { "livebaton" }
                    @if let Some(user) = user {
                        nav aria-label="Main" {
                            @for (label, href, contains, admins) in SECTIONS {
                                @if !admins || user.role == "admin" {
                                    // The page's own link says so; a page inside a section marks the section.
                                    @let current = path.filter(|path| contains(path)).map(|path| if path == href { "page" } else { "true" });
                                    a href=(href) aria-current=[current] { (label) }
                                }
                            }
                        }
                        span.who {
                            a href="/admin/account" aria-current=[path.filter(|path| path.starts_with("/admin/account")).map(|_| "page")] { (user.name) }
                            " " span.role { (user.role) } " · " a href="/admin/logout" { "Sign out" }
                        }
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
                // tabindex -1: the skip link's target takes focus, so the next Tab starts inside the content.
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: Option<&str>) -> String {
        let user = HeaderUser { name: "Ada".into(), role: "admin".into() };
        frame("T", Some(&user), &Map::new(), None, path, html! { p { "body" } }).into_string()
    }

    /// The page's own link is the current page, a page inside a section marks that section, and a skip link leads
    /// past the header to the content.
    #[test]
    fn navigation_marks_where_the_reader_is_and_a_skip_link_leads_to_the_content() {
        let dashboard = header(Some("/admin"));
        assert!(dashboard.contains(r#"<a href="/admin" aria-current="page">Dashboard</a>"#), "{dashboard}");
        assert!(dashboard.contains(r#"<a href="/admin/entities">Entities</a>"#), "{dashboard}");
        let record = header(Some("/admin/entities/article/data/3/edit"));
        assert!(record.contains(r#"<a href="/admin/entities" aria-current="true">Entities</a>"#), "{record}");
        assert!(record.contains(r#"<a href="/admin">Dashboard</a>"#), "{record}");
        assert!(!header(None).contains("aria-current"));
        let skip = dashboard.find(r##"<a class="skip-link" href="#main">"##).expect("a skip link");
        assert!(skip < dashboard.find("<header").unwrap(), "the skip link comes first");
        assert!(dashboard.contains(r#"<main id="main" tabindex="-1">"#), "{dashboard}");
    }
}
