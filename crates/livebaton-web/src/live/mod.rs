//! Live views: server-rendered pages that stay live over the socket, in the spirit of Phoenix LiveView.
//!
//! The first HTTP GET mounts a view without a socket and renders the full page ([`LiveViewRoute::render_static`]),
//! readable without JavaScript, embedding a signed, expiring [`ViewToken`]. The client joins `lv:<view-id>` with it;
//! [`LiveViewRoute`] re-mounts the view (hooks first) on a task that owns its subscriptions and presences. After each
//! event or broadcast the view re-renders, and only the live regions (`data-lb-region` elements with an `id`) whose
//! HTML changed are sent ([`RegionDiff`]).
//!
//! Wire format (events on the `lv:<view-id>` topic):
//! - join `{token, params?, tab_id?}` → ok `{rendered: {regions: {id: html}}, title, flash?}`, or error
//!   `{reason: "expired" | "invalid" | "redirect" | …}` (`redirect: {to}` and `flash` with `"redirect"`);
//! - `event` `{type: "click"|"change"|"submit", event, value}` (form values may be a URL-encoded string;
//!   [`ClientEvent`]) → ok
//!   `{regions, title?, flash?, redirect?: {to}, navigate?: {to}}`;
//! - pushed `diff` with the same shape after a broadcast changed something.

mod client;
mod diff;
mod event;
mod form;
mod hooks;
mod html;
mod page;
mod regions;
mod registry;
mod rich_text;
mod route;
mod socket;
mod task;
mod token;
mod view;

#[cfg(test)]
mod tests;

pub use client::{CLIENT_JS, STYLESHEET, client_path, hashed_asset_path, stylesheet_path};
pub use diff::{RegionDiff, Target};
pub use event::{ClientEvent, EventError};
pub use form::{decode_form, percent_decode};
pub use hooks::{Hook, RequireRole, Subscribe};
pub use html::Html;
pub use page::{LivePage, client_asset};
pub use regions::{REGION_ATTRIBUTE, Region, Regions};
pub use registry::{Factory, LiveSession, Registry};
pub use rich_text::RichTextEditor;
pub use route::{LiveViewRoute, RenderError, StaticPage, TOPIC_PREFIX};
pub use socket::{LiveSocket, Navigation, Session};
pub use token::{Claims, DEFAULT_TOKEN_TTL, TokenError, ViewToken};
pub use view::{LiveView, MountError};
