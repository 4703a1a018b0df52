//! `/admin`: live session statistics and the active sessions, updated whenever a page opens or closes anywhere.

use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use livebaton::stats::{ActiveSession, PresenceStats};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::html;
use serde_json::{Map, Value};

use super::ViewContext;
use super::markup::{clock, to_html};
use crate::accounts::Role;

/// The dashboard.
pub struct Dashboard {
    context: ViewContext,
    stats: Option<PresenceStats>,
    sessions: Vec<ActiveSession>,
    /// Whether the viewer is an admin: only admins see other people's emails; everyone else sees names.
    shows_emails: bool,
}

impl Dashboard {
    pub(super) fn new(context: ViewContext) -> Self {
        Dashboard { context, stats: None, sessions: Vec::new(), shows_emails: false }
    }

    fn refresh(&mut self) {
        self.stats = Some(self.context.engine.stats.presence_stats());
        self.sessions = self.context.engine.stats.list_active_sessions();
    }
}

impl LiveView for Dashboard {
    fn mount<'a>(
        &'a mut self,
        _params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        self.shows_emails = session.user.role() == Role::Admin.as_str();
        socket.subscribe(self.context.engine.stats.topic());
        socket.set_title("Dashboard");
        self.refresh();
        Box::pin(async { Ok(()) })
    }

    fn handle_info<'a>(&'a mut self, _message: &'a Arc<Broadcast>, _socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        self.refresh();
        Box::pin(async {})
    }

    fn render(&self) -> Html {
        let empty = PresenceStats {
            total_sessions: 0,
            anonymous_sessions: 0,
            authenticated_sessions: 0,
            unique_anonymous_visitors: 0,
            unique_users: 0,
            top_pages: Vec::new(),
            last_updated: 0,
        };
        let stats = self.stats.as_ref().unwrap_or(&empty);
        let cards = [
            ("total-sessions", "Open sessions", stats.total_sessions),
            ("authenticated-sessions", "Signed-in sessions", stats.authenticated_sessions),
            ("anonymous-sessions", "Anonymous sessions", stats.anonymous_sessions),
            ("unique-users", "Unique users", stats.unique_users),
            ("unique-visitors", "Unique visitors", stats.unique_anonymous_visitors),
        ];
        to_html(html! {
            div.page-head { h1 { "Dashboard" } span.muted { "Live: updates as pages open and close" } }
            section #stats data-lb-region {
                div.stats {
                    @for (id, label, value) in cards {
                        div.stat #(id) { div.value { (value) } div.label { (label) } }
                    }
                }
                div.grid2.wide-right {
                    div.card {
                        h2 { "Top pages" }
                        @if stats.top_pages.is_empty() {
                            p.empty { "No open pages." }
                        } @else {
                            table.stack #top-pages {
                                thead { tr { th { "Page" } th { "Open" } } }
                                tbody {
                                    @for (page, count) in &stats.top_pages {
                                        tr { td data-label="Page" { code.path { (page) } } td data-label="Open" { (count) } }
                                    }
                                }
                            }
                        }
                    }
                    div.card {
                        h2 { "Active sessions" }
                        @if self.sessions.is_empty() {
                            p.empty { "Nobody is connected." }
                        } @else {
                            table.stack #active-sessions {
                                thead { tr { th { "Who" } th { "Page" } th { "Since" } } }
                                tbody {
                                    @for session in &self.sessions {
                                        @let anonymous = session.meta.get("type").and_then(Value::as_str) == Some("anonymous");
                                        tr {
                                            td data-label="Who" {
                                                @if anonymous { span.muted { "Anonymous visitor" } }
                                                @else if self.shows_emails { (session.meta.get("user_email").and_then(Value::as_str).unwrap_or("?")) }
                                                @else { (session.meta.get("name").and_then(Value::as_str).unwrap_or("?")) }
                                            }
                                            td data-label="Page" { code.path { (session.meta.get("current_page").and_then(Value::as_str).unwrap_or("")) } }
                                            td.muted.nowrap data-label="Since" { (session.meta.get("connected_at").and_then(Value::as_u64).map(clock).unwrap_or_default()) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}
