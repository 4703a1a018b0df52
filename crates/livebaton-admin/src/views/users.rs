//! `/admin/users`: people, live (admins only). The list of users with their role, state, last sign-in and open
//! sessions, searchable; invitations (a one-time link to pass on) and the pending ones, resent or revoked; a role
//! change, a password reset link, deactivation and deletion (the last two after a confirmation that says what happens:
//! their pages close, their sessions and tokens end, a form they are editing passes on with its draft); what each
//! role may do; and the latest entries of the audit trail. Every change goes through [`People`](crate::accounts::People),
//! which re-checks that the actor is still an admin; every admin's page follows every change, on every node.

use std::collections::HashMap;
use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::ViewContext;
use super::markup::{date_time, form_text, str_param, to_html, user_id_of};
use crate::accounts::{AccountError, IssuedLink, PEOPLE_TOPIC, Role, article};
use crate::storage::{AccountLink, AuditEntry, User};

/// Audit entries shown on the page (the JSON API pages through all of them).
const AUDIT_SHOWN: i64 = 20;

/// What waits for the admin's confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Confirming {
    Deactivate(i64),
    Delete(i64),
}

/// A one-time link just made, shown once to pass on (and mailed, where mail is configured).
#[derive(Clone, Debug)]
struct ShownLink {
    /// Whether it was mailed to its address too.
    mailed: bool,
    /// "Pass this invitation on to …" / "Pass this password reset on to …".
    what: &'static str,
    email: String,
    url: String,
    expires_at: i64,
}

/// The live people page.
pub struct Users {
    context: ViewContext,
    /// The signed-in admin's id (the actor of every change; re-checked by the service).
    actor: i64,
    /// The site's origin as the admin reached it (`https://cms.example.com`), for absolute links.
    origin: String,
    users: Vec<User>,
    sessions: HashMap<i64, i64>,
    invitations: Vec<AccountLink>,
    audit: Vec<AuditEntry>,
    /// The search box's text (name or email, case-insensitive).
    query: String,
    confirming: Option<Confirming>,
    link: Option<ShownLink>,
    /// The invitation form's refusal, shown beside it.
    invite_error: Option<String>,
}

impl Users {
    pub(super) fn new(context: ViewContext) -> Self {
        Users {
            context,
            actor: 0,
            origin: String::new(),
            users: Vec::new(),
            sessions: HashMap::new(),
            invitations: Vec::new(),
            audit: Vec::new(),
            query: String::new(),
            confirming: None,
            link: None,
            invite_error: None,
        }
    }

    async fn load(&mut self, socket: &mut LiveSocket) {
        let store = &self.context.store;
        let (users, sessions, invitations, audit) = tokio::join!(
            store.list_users(),
            store.session_counts(),
            store.pending_invitations(),
            store.audit_trail(None, AUDIT_SHOWN)
        );
        match (users, sessions, invitations, audit) {
            (Ok(users), Ok(sessions), Ok(invitations), Ok(audit)) => {
                (self.users, self.sessions, self.invitations, self.audit) = (users, sessions, invitations, audit);
            }
            _ => socket.put_flash("error", "The list could not be refreshed: the database is unavailable."),
        }
        if self.confirming.is_some_and(|confirming| self.user(confirming.id()).is_none()) {
            self.confirming = None;
        }
    }

    fn user(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|user| user.id == id)
    }

    fn shown(&self, issued: &IssuedLink, what: &'static str) -> ShownLink {
        ShownLink {
            mailed: issued.mailed,
            what,
            email: issued.link.email.clone(),
            url: format!("{}{}", self.origin, issued.path),
            expires_at: issued.link.expires_at,
        }
    }

    /// Says how a change went: `done` on success, the refusal otherwise.
    fn report<T>(socket: &mut LiveSocket, result: Result<T, AccountError>, done: impl FnOnce(T) -> String) {
        match result {
            Ok(value) => socket.put_flash("info", done(value)),
            Err(error) => socket.put_flash("error", format!("Not changed: {error}.")),
        }
    }

    async fn invite(&mut self, value: &Value) {
        let Some(role) = Role::parse(&form_text(value, "role")) else {
            self.invite_error = Some("Choose a role.".to_owned());
            return;
        };
        let (email, name) = (form_text(value, "email"), form_text(value, "name"));
        match self.context.people.invite(self.actor, &email, role, Some(&name)).await {
            Ok(issued) => {
                self.invite_error = None;
                self.link = Some(self.shown(&issued, "invitation"));
            }
            Err(AccountError::Invalid(field, message)) => self.invite_error = Some(format!("The {field} {message}.")),
            Err(error) => self.invite_error = Some(format!("Not invited: {error}.")),
        }
    }

    async fn handle(&mut self, name: &str, value: &Value, socket: &mut LiveSocket) {
        let id = value.get("id").and_then(|id| match id {
            Value::String(text) => text.parse().ok(),
            other => other.as_i64(),
        });
        let people = self.context.people.clone();
        match (name, id) {
            ("search", _) => self.query = form_text(value, "q").trim().to_lowercase(),
            ("invite", _) => self.invite(value).await,
            ("dismiss_link", _) => self.link = None,
            ("resend", Some(id)) => {
                let Some(pending) = self.invitations.iter().find(|link| link.id == id).cloned() else { return };
                let issued = people.invite(self.actor, &pending.email, pending.role, Some(&pending.name)).await;
                match issued {
                    Ok(issued) => self.link = Some(self.shown(&issued, "invitation")),
                    Err(error) => socket.put_flash("error", format!("Not resent: {error}.")),
                }
            }
            ("revoke", Some(id)) => {
                let revoked = people.revoke_invitation(self.actor, id).await;
                Self::report(socket, revoked, |link| format!("The invitation of {} was revoked.", link.email));
            }
            ("set_role", Some(id)) => {
                let Some(role) = Role::parse(&form_text(value, "role")) else { return };
                let changed = people.update_account(self.actor, id, Some(role), None, None).await;
                Self::report(socket, changed, |user| format!("{} is now {} {}.", user.name, article(role), role));
            }
            ("reset", Some(id)) => match people.reset_link(self.actor, id).await {
                Ok(issued) => self.link = Some(self.shown(&issued, "password reset")),
                Err(error) => socket.put_flash("error", format!("No reset link: {error}.")),
            },
            ("reactivate", Some(id)) => {
                let changed = people.update_account(self.actor, id, None, Some(true), None).await;
                Self::report(socket, changed, |user| format!("{} can sign in again.", user.name));
            }
            ("deactivate", Some(id)) => self.confirming = Some(Confirming::Deactivate(id)),
            ("delete", Some(id)) => self.confirming = Some(Confirming::Delete(id)),
            ("cancel", _) => self.confirming = None,
            // Confirms only what was asked: a stale or forged confirmation does nothing.
            ("confirmed", Some(id)) if self.confirming.is_some_and(|confirming| confirming.id() == id) => {
                let name = self.user(id).map(|user| user.name.clone()).unwrap_or_default();
                match self.confirming.take() {
                    Some(Confirming::Deactivate(_)) => {
                        let changed = people.update_account(self.actor, id, None, Some(false), None).await;
                        Self::report(socket, changed, |_| format!("{name} was deactivated: their pages closed."));
                    }
                    Some(Confirming::Delete(_)) => {
                        let deleted = people.delete_account(self.actor, id).await;
                        Self::report(socket, deleted, |()| format!("{name}'s account was deleted."));
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn visible_users(&self) -> impl Iterator<Item = &User> {
        self.users.iter().filter(|user| {
            self.query.is_empty() || user.name.to_lowercase().contains(&self.query) || user.email.contains(&self.query)
        })
    }

    fn link_notice(&self) -> Markup {
        html! {
            @if let Some(link) = &self.link {
                div.notice #issued-link role="status" {
                    p {
                        @if link.mailed { "The " (link.what) " link was mailed to " strong { (link.email) } ". You may also pass it on yourself. " }
                        @else { "Pass this " (link.what) " link on to " strong { (link.email) } ". " }
                        "It works once, until " (date_time(link.expires_at)) "."
                    }
                    label for="issued-link-url" { "Link" }
                    input #issued-link-url type="text" readonly value=(link.url);
                    button.small.secondary type="button" phx-click="dismiss_link" { "Done" }
                }
            }
        }
    }

    fn confirm_panel(&self) -> Markup {
        let Some(confirming) = self.confirming else { return html! {} };
        let Some(user) = self.user(confirming.id()) else { return html! {} };
        let (question, button) = match confirming {
            Confirming::Deactivate(_) => (format!("Deactivate {} ({})?", user.name, user.email), "Deactivate"),
            Confirming::Delete(_) => (format!("Delete the account of {} ({})?", user.name, user.email), "Delete"),
        };
        html! {
            div.notice.warn #user-confirm role="alertdialog" aria-labelledby="user-confirm-text" tabindex="-1" data-lb-autofocus {
                p #user-confirm-text {
                    strong { (question) } " Their open pages close now and their sessions and API tokens end at once; a form "
                    "they are editing passes to the next person in line with its unsaved draft."
                    @if matches!(confirming, Confirming::Delete(_)) { " What they wrote stays, without its author's name. This cannot be undone." }
                    @else { " You can reactivate the account later." }
                }
                div.actions {
                    button.danger type="button" phx-click="confirmed" phx-value-id=(user.id) { (button) }
                    button.secondary type="button" phx-click="cancel" { "Cancel" }
                }
            }
        }
    }

    fn user_rows(&self) -> Markup {
        html! {
            table.stack #users {
                thead { tr { th { "Name" } th { "Email" } th { "Role" } th { "State" } th { "Last seen" } th { "Sessions" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for user in self.visible_users() {
                        @let me = user.id == self.actor;
                        tr #{ "user-" (user.id) } {
                            td data-label="Name" { (user.name) @if me { " " span.muted { "(you)" } } }
                            td data-label="Email" { (user.email) }
                            td data-label="Role" {
                                form.inline-form phx-submit="set_role" {
                                    input type="hidden" name="id" value=(user.id);
                                    label.visually-hidden for={ "role-" (user.id) } { "Role of " (user.name) }
                                    select id={ "role-" (user.id) } name="role" {
                                        @for role in [Role::Admin, Role::Editor, Role::Viewer] {
                                            option value=(role.as_str()) selected[user.role == role] { (role.as_str()) }
                                        }
                                    }
                                    button.small.secondary type="submit" aria-label={ "Change the role of " (user.name) } { "Change" }
                                }
                            }
                            td data-label="State" {
                                @if user.active() { span.badge.published { "active" } } @else { span.badge { "deactivated" } }
                            }
                            td data-label="Last seen" { (user.last_seen_at.map(date_time).unwrap_or_else(|| "never".to_owned())) }
                            td data-label="Sessions" { (self.sessions.get(&user.id).copied().unwrap_or(0)) }
                            td.row-actions {
                                @if user.active() {
                                    button.small.secondary type="button" phx-click="reset" phx-value-id=(user.id) aria-label={ "Reset password of " (user.name) } { "Reset password" }
                                    button.small.danger type="button" phx-click="deactivate" phx-value-id=(user.id) aria-label={ "Deactivate " (user.name) } { "Deactivate" }
                                } @else {
                                    button.small.secondary type="button" phx-click="reactivate" phx-value-id=(user.id) aria-label={ "Reactivate " (user.name) } { "Reactivate" }
                                }
                                button.small.danger type="button" phx-click="delete" phx-value-id=(user.id) aria-label={ "Delete " (user.name) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Confirming {
    fn id(self) -> i64 {
        match self {
            Confirming::Deactivate(id) | Confirming::Delete(id) => id,
        }
    }
}

/// An audit entry as a sentence: "Ada changed bob@example.com's role from editor to viewer".
fn audit_sentence(entry: &AuditEntry) -> String {
    let actor = if entry.actor_name.is_empty() { "Someone" } else { entry.actor_name.as_str() };
    let subject = &entry.subject_email;
    let detail = |key: &str| entry.detail.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
    match entry.action.as_str() {
        "invited" => format!("{actor} invited {subject} as {}", detail("role")),
        "invitation_revoked" => format!("{actor} revoked the invitation of {subject}"),
        "joined" => format!("{subject} accepted the invitation"),
        "role_changed" => format!("{actor} changed the role of {subject} from {} to {}", detail("from"), detail("to")),
        "renamed" => format!("{actor} renamed {subject} from {} to {}", detail("from"), detail("to")),
        "deactivated" => format!("{actor} deactivated {subject}"),
        "reactivated" => format!("{actor} reactivated {subject}"),
        "deleted" => format!("{actor} deleted the account {subject}"),
        "reset_requested" if entry.actor_id.is_none() => format!("{subject} asked for a password reset link"),
        "reset_requested" => format!("{actor} made a password reset link for {subject}"),
        "password_changed" => format!("{subject} set a new password"),
        other => format!("{actor}: {other} {subject}"),
    }
}

impl LiveView for Users {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let actor = user_id_of(session).ok_or_else(|| MountError::redirect("/admin/login"))?;
            // The role as the store has it now: the socket may have authenticated an older one.
            let admin = self.context.store.find_user(actor).await.map_err(super::unavailable)?;
            if !admin.is_some_and(|user| user.active() && user.role == Role::Admin) {
                socket.put_flash("error", "Only admins manage people.");
                return Err(MountError::redirect("/admin"));
            }
            self.actor = actor;
            self.origin = str_param(params, "origin").unwrap_or("").to_owned();
            socket.subscribe(PEOPLE_TOPIC);
            socket.set_title("People");
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
        to_html(html! {
            div.page-head { h1 { "People" } }
            div #people data-lb-region {
                div.grid2.wide-right {
                    div.card {
                        h2 { "Invite someone" }
                        form #invite-form phx-submit="invite" novalidate {
                            label.required for="invite-email" { "Email" }
                            input #invite-email type="email" name="email" required autocomplete="off"
                                aria-invalid=[self.invite_error.as_ref().map(|_| "true")] aria-describedby=[self.invite_error.as_ref().map(|_| "invite-error")];
                            label for="invite-name" { "Name" }
                            input #invite-name type="text" name="name" autocomplete="off";
                            label for="invite-role" { "Role" }
                            select #invite-role name="role" {
                                @for role in [Role::Editor, Role::Viewer, Role::Admin] { option value=(role.as_str()) { (role.as_str()) } }
                            }
                            @if let Some(error) = &self.invite_error { p.field-error #invite-error { (error) } }
                            div.actions { button type="submit" { "Invite" } }
                        }
                    }
                    div.card {
                        h2 { "Roles" }
                        dl.values #roles {
                            dt { "admin" } dd { "Everything an editor may do, and entities (content types), people and invitations." }
                            dt { "editor" } dd { "Creates, edits and deletes records; restores them from the trash." }
                            dt { "viewer" } dd { "Reads everything and watches edit forms live; changes nothing." }
                        }
                    }
                }
                (self.link_notice())
                @if !self.invitations.is_empty() {
                    div.card {
                        h2 { "Pending invitations" }
                        table.stack #invitations {
                            thead { tr { th { "Email" } th { "Role" } th { "Expires" } th { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for link in &self.invitations {
                                    tr #{ "invitation-" (link.id) } {
                                        td data-label="Email" { (link.email) }
                                        td data-label="Role" { (link.role.as_str()) }
                                        td data-label="Expires" { (date_time(link.expires_at)) }
                                        td.row-actions {
                                            button.small.secondary type="button" phx-click="resend" phx-value-id=(link.id) aria-label={ "Resend the invitation of " (link.email) } { "Resend" }
                                            button.small.danger type="button" phx-click="revoke" phx-value-id=(link.id) aria-label={ "Revoke the invitation of " (link.email) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                div.card {
                    div.page-head {
                        h2 { "Users" }
                        form #user-search phx-change="search" role="search" {
                            label.visually-hidden for="user-query" { "Search people" }
                            input #user-query type="search" name="q" value=(self.query) placeholder="Search by name or email";
                        }
                    }
                    (self.confirm_panel())
                    (self.user_rows())
                }
                div.card {
                    h2 { "Recent changes" }
                    @if self.audit.is_empty() { p.empty { "No changes yet." } }
                    ol #audit {
                        @for entry in &self.audit {
                            li { span.muted { (date_time(entry.at)) } " — " (audit_sentence(entry)) }
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(action: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            id: 1,
            at: 0,
            actor_id: Some(1),
            actor_name: "Ada".into(),
            action: action.into(),
            subject_id: Some(2),
            subject_email: "bob@example.com".into(),
            detail: detail.as_object().cloned().unwrap_or_default(),
        }
    }

    /// Each audit action reads as a sentence naming who did what to whom.
    #[test]
    fn audit_entries_read_as_sentences() {
        assert_eq!(
            audit_sentence(&entry("role_changed", json!({"from": "editor", "to": "viewer"}))),
            "Ada changed the role of bob@example.com from editor to viewer"
        );
        assert_eq!(
            audit_sentence(&entry("invited", json!({"role": "editor"}))),
            "Ada invited bob@example.com as editor"
        );
        assert_eq!(audit_sentence(&entry("joined", json!({}))), "bob@example.com accepted the invitation");
        assert_eq!(audit_sentence(&entry("deactivated", json!({}))), "Ada deactivated bob@example.com");
    }
}
