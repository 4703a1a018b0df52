//! `/admin/account`: one's own account, live. The name (changed here), the password (changed by a plain form post to
//! `/admin/account/password`, which needs the current one and signs this browser in again, see `pages::account`), the
//! open sessions (browser, address, last active; each can be ended, or all at once: "sign out everywhere") and the API
//! tokens (each can be revoked).

use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::ViewContext;
use super::markup::{date_time, form_text, str_param, to_html, user_id_of};
use crate::accounts::PEOPLE_TOPIC;
use crate::storage::{ApiToken, SessionInfo, User};

/// The live account page.
pub struct Account {
    context: ViewContext,
    user: Option<User>,
    /// The session of the browser this page was opened in (its id hash), to mark it "this browser".
    current: String,
    /// The CSRF token of this browser's session, for the password form (a plain POST).
    csrf: String,
    sessions: Vec<SessionInfo>,
    tokens: Vec<ApiToken>,
    name_error: Option<String>,
    /// How the last password change went (`?password=`), said beside the form.
    password_outcome: Option<String>,
}

/// What the page says about a password change: the words, and whether it went wrong.
fn password_message(outcome: &str) -> Option<(&'static str, bool)> {
    Some(match outcome {
        "changed" => ("Your password was changed. Every other browser and API token of yours was signed out.", false),
        "wrong" => ("Not changed: the current password is wrong.", true),
        "differ" => ("Not changed: the two new passwords differ.", true),
        "invalid" => ("Not changed: the new password must be 8 to 256 characters.", true),
        "busy" => ("Not changed: the server is busy; try again in a moment.", true),
        "expired" => ("Not changed: the form expired; try again.", true),
        "unavailable" => ("Not changed: the database is unavailable; try again.", true),
        _ => return None,
    })
}

/// "Firefox on Linux", from a User-Agent; "Unknown browser" when it says nothing we know.
pub fn browser_of(user_agent: &str) -> String {
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        .iter()
        .find(|(marker, _)| user_agent.contains(marker))
        .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("A browser on {system}"),
        (None, None) if user_agent.is_empty() => "Unknown browser".to_owned(),
        (None, None) => "Another client".to_owned(),
    }
}

impl Account {
    pub(super) fn new(context: ViewContext) -> Self {
        Account {
            context,
            user: None,
            current: String::new(),
            csrf: String::new(),
            sessions: Vec::new(),
            tokens: Vec::new(),
            name_error: None,
            password_outcome: None,
        }
    }

    async fn load(&mut self, socket: &mut LiveSocket) {
        let Some(id) = self.user.as_ref().map(|user| user.id) else { return };
        let store = &self.context.store;
        let (user, sessions, tokens) =
            tokio::join!(store.find_user(id), store.sessions_of(id), store.api_tokens_of(id));
        match (user, sessions, tokens) {
            (Ok(Some(user)), Ok(sessions), Ok(tokens)) => {
                (self.sessions, self.tokens) = (sessions, tokens);
                self.user = Some(user);
            }
            (Ok(None), _, _) => socket.redirect("/admin/login"),
            _ => socket.put_flash("error", "Your account could not be refreshed: the database is unavailable."),
        }
    }

    async fn handle(&mut self, name: &str, value: &Value, socket: &mut LiveSocket) {
        let Some(user_id) = self.user.as_ref().map(|user| user.id) else { return };
        let store = &self.context.store;
        let clicked = value.get("id").and_then(Value::as_str).unwrap_or("");
        match name {
            "rename" => match self.context.people.rename_self(user_id, &form_text(value, "name")).await {
                Ok(user) => {
                    self.name_error = None;
                    socket.put_flash("info", format!("Your name is now {}.", user.name));
                }
                Err(error) => self.name_error = Some(format!("The {error}.")),
            },
            "end_session" => match store.delete_session_of(user_id, clicked).await {
                Ok(true) => {
                    // That browser's live pages close, on every node; this browser's stay as they are.
                    let ended = crate::live::SocketCredential::Session(clicked.to_owned());
                    crate::live::announce_credential_ended(&self.context.engine.pubsub, user_id, ended);
                    socket.put_flash("info", "That session was ended.");
                }
                Ok(false) => socket.put_flash("error", "That session had ended already."),
                Err(error) => socket.put_flash("error", format!("Not ended: {error}.")),
            },
            "sign_out_everywhere" => match store.delete_all_sessions_of(user_id).await {
                Ok(_) => {
                    crate::live::announce_revocation(&self.context.engine.pubsub, user_id);
                    socket.redirect("/admin/login");
                }
                Err(error) => socket.put_flash("error", format!("Not signed out: {error}.")),
            },
            "revoke_token" => {
                let id = clicked.parse().unwrap_or(0);
                match store.revoke_api_token(id, user_id).await {
                    Ok(true) => {
                        let ended = crate::live::SocketCredential::Token(id);
                        crate::live::announce_credential_ended(&self.context.engine.pubsub, user_id, ended);
                        socket.put_flash("info", "The token was revoked: it no longer works.");
                    }
                    Ok(false) => socket.put_flash("error", "That token was revoked already."),
                    Err(error) => socket.put_flash("error", format!("Not revoked: {error}.")),
                }
            }
            _ => {}
        }
    }

    fn sessions_table(&self) -> Markup {
        html! {
            table.stack #sessions {
                thead { tr { th { "Browser" } th { "Address" } th { "Signed in" } th { "Last active" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for session in &self.sessions {
                        @let this = session.id_hash == self.current;
                        tr {
                            td data-label="Browser" { (browser_of(&session.user_agent)) @if this { " " span.badge.published { "this browser" } } }
                            td data-label="Address" { (session.address) }
                            td data-label="Signed in" { (date_time(session.created_at)) }
                            td data-label="Last active" { (session.last_seen_at.map(date_time).unwrap_or_default()) }
                            td.row-actions {
                                @if !this {
                                    button.small.danger type="button" phx-click="end_session" phx-value-id=(session.id_hash)
                                        aria-label={ "End the session of " (browser_of(&session.user_agent)) " from " (session.address) } { "End" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn tokens_table(&self) -> Markup {
        html! {
            @if self.tokens.is_empty() { p.empty { "No API tokens. POST /api/tokens issues one." } }
            @else {
                table.stack #tokens {
                    thead { tr { th { "Name" } th { "Issued" } th { "Expires" } th { "Last used" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for token in &self.tokens {
                            tr #{ "token-" (token.id) } {
                                td data-label="Name" { (token.name) }
                                td data-label="Issued" { (date_time(token.created_at)) }
                                td data-label="Expires" { (date_time(token.expires_at)) }
                                td data-label="Last used" { (token.last_used_at.map(date_time).unwrap_or_else(|| "never".to_owned())) }
                                td.row-actions {
                                    @if token.revoked_at.is_some() { span.badge { "revoked" } }
                                    @else {
                                        button.small.danger type="button" phx-click="revoke_token" phx-value-id=(token.id)
                                            aria-label={ "Revoke " (token.name) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl LiveView for Account {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let id = user_id_of(session).ok_or_else(|| MountError::redirect("/admin/login"))?;
            let user = self.context.store.find_user(id).await.map_err(super::unavailable)?;
            self.user = Some(user.ok_or_else(|| MountError::redirect("/admin/login"))?);
            self.current = str_param(params, "session").unwrap_or("").to_owned();
            self.csrf = str_param(params, "csrf").unwrap_or("").to_owned();
            self.password_outcome = str_param(params, "password").map(str::to_owned);
            // Account changes (a rename, a token issued elsewhere is not announced: the page shows it on reload).
            socket.subscribe(PEOPLE_TOPIC);
            socket.set_title("Your account");
            self.load(socket).await;
            Ok(())
        })
    }

    fn handle_event<'a>(
        &'a mut self,
        name: &'a str,
        value: &'a Value,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.handle(name, value, socket).await;
            self.load(socket).await;
        })
    }

    fn handle_info<'a>(&'a mut self, _message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(self.load(socket))
    }

    fn render(&self) -> Html {
        let Some(user) = &self.user else { return Html::default() };
        to_html(html! {
            div.page-head { h1 { "Your account" } }
            div #account data-lb-region {
                div.grid2 {
                    div.card {
                        h2 { "Name" }
                        p.muted { (user.email) " · " (user.role) }
                        form #name-form phx-submit="rename" novalidate {
                            label.required for="account-name" { "Name" }
                            input #account-name type="text" name="name" value=(user.name) required
                                aria-invalid=[self.name_error.as_ref().map(|_| "true")] aria-describedby=[self.name_error.as_ref().map(|_| "name-error")];
                            @if let Some(error) = &self.name_error { p.field-error #name-error { (error) } }
                            div.actions { button type="submit" { "Save name" } }
                        }
                    }
                    div.card {
                        h2 { "Password" }
                        @if let Some((message, bad)) = self.password_outcome.as_deref().and_then(password_message) {
                            p #password-outcome class=(if bad { "error" } else { "notice" }) role="status" { (message) }
                        }
                        // A plain post: it needs the current password, and signs this browser in again afterwards.
                        form #password-form method="post" action="/admin/account/password" {
                            input type="hidden" name="_csrf_token" value=(self.csrf);
                            input type="hidden" name="email" value=(user.email) autocomplete="username";
                            label.required for="current-password" { "Current password" }
                            input #current-password type="password" name="current" autocomplete="current-password" required;
                            label.required for="new-password" { "New password" }
                            input #new-password type="password" name="password" autocomplete="new-password" required;
                            label.required for="repeat-password" { "Repeat the new password" }
                            input #repeat-password type="password" name="confirm" autocomplete="new-password" required;
                            p.hint { "Every other browser and every API token of yours is signed out when it changes." }
                            div.actions { button type="submit" { "Change password" } }
                        }
                    }
                }
                div.card {
                    div.page-head {
                        h2 { "Where you are signed in" }
                        button.danger type="button" phx-click="sign_out_everywhere" { "Sign out everywhere" }
                    }
                    (self.sessions_table())
                }
                div.card {
                    h2 { "API tokens" }
                    (self.tokens_table())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::browser_of;

    #[test]
    fn browsers_are_named_as_people_know_them() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
        assert_eq!(browser_of(chrome), "Chrome on Linux");
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(browser_of(firefox), "Firefox on Windows");
        let safari =
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Safari/604.1";
        assert_eq!(browser_of(safari), "Safari on iOS");
        assert_eq!(browser_of(""), "Unknown browser");
        assert_eq!(browser_of("curl/8.5"), "Another client");
    }
}
