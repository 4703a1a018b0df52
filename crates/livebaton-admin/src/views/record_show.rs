//! `/admin/entities/{name}/data/{id}`: one record, live. An update elsewhere reloads it and says so; a delete or an
//! archive elsewhere sends the reader back to the list with a flash. The page says who is editing the record now (from
//! the editing session's presence, updated as people come and go) and who saved it last, when.

use std::sync::Arc;

use livebaton::editing::{EditTarget, EditingPresence};
use livebaton::events::Action;
use livebaton::presence::PresenceDiff;
use livebaton::pubsub::Broadcast;
use livebaton_content::{FieldType, SafeHtml, Status};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, PreEscaped, html};
use serde_json::{Map, Value};

use super::ViewContext;
use super::fields::value_text;
use super::markup::{date_time, id_param, status_badge, to_html};
use super::records::entity_of;
use crate::accounts::Role;
use crate::content::RichValues;
use crate::content::editing::record_target;
use crate::live::{WriteAccess, check_before_write};
use crate::storage::{Entity, Record};

/// Loads record `id` of `entity`, or refuses the mount.
pub(super) async fn record_of(
    context: &ViewContext,
    entity: &Entity,
    params: &Map<String, Value>,
) -> Result<Record, MountError> {
    let id = id_param(params, "id").ok_or(MountError::NotFound)?;
    match context.store.find_record(entity.id, id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(MountError::NotFound),
        Err(error) => Err(super::unavailable(error)),
    }
}

/// The one place a page prints rich text as markup: a [`SafeHtml`] (sanitised for output by
/// [`ContentService::rich_values`](crate::content::ContentService::rich_values)), never a stored string.
pub(super) fn rich_markup(html: &SafeHtml) -> Markup {
    PreEscaped(html.as_str().to_owned())
}

/// A record's values as a definition list; rich text from `rich` (its values sanitised for output), everything else
/// as text. A rich-text value missing from `rich` is shown as text.
pub(super) fn record_values_markup(entity: &Entity, record: &Record, rich: &RichValues) -> Markup {
    html! {
        dl.values {
            @for field in &entity.fields_definition {
                dt { (field.label) }
                dd data-field=(field.key) {
                    @match (field.field_type, record.data.get(&field.key)) {
                        (_, None | Some(Value::Null)) => span.muted { "—" },
                        (FieldType::RichText, Some(value @ Value::String(_))) => div.prose {
                            @match rich.get(&field.key) {
                                Some(html) => (rich_markup(html)),
                                None => (value_text(Some(value))),
                            }
                        },
                        (_, Some(Value::Array(values))) => {
                            (values.iter().map(|value| value_text(Some(value))).collect::<Vec<_>>().join(", "))
                        }
                        (kind, Some(value)) => (shown_value(kind, value)),
                    }
                }
            }
        }
    }
}

/// A plain value as a person reads it: a boolean as Yes or No, a web address as a link (only `http`/`https`:
/// anything else stays text, so a stored `javascript:` never becomes a link), an email address as a `mailto:` link;
/// everything else as text. Always escaped.
fn shown_value(kind: FieldType, value: &Value) -> Markup {
    match (kind, value) {
        (FieldType::Boolean, Value::Bool(true)) => html! { "Yes" },
        (FieldType::Boolean, Value::Bool(false)) => html! { "No" },
        (FieldType::Url, Value::String(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            html! { a href=(url) rel="noopener noreferrer nofollow" { (url) } }
        }
        (FieldType::Email, Value::String(email))
            if email.contains('@') && !email.contains(['?', '&', '#', ' ', ':', '/']) =>
        {
            html! { a href={ "mailto:" (email) } { (email) } }
        }
        (_, value) => html! { (value_text(Some(value))) },
    }
}

/// The live record page.
pub struct RecordShow {
    context: ViewContext,
    entity: Option<Entity>,
    record: Option<Record>,
    /// The record's rich-text values, sanitised for output when it was loaded.
    rich: RichValues,
    can_edit: bool,
    /// The user's right to delete, re-checked against the store right before a delete.
    access: Option<WriteAccess>,
    /// Set when another session changed the record while this page was open.
    updated_elsewhere: bool,
    /// The signed-in user's id, recorded as who moved the record to the trash.
    actor: Option<i64>,
    /// "Delete" was clicked: the page asks to confirm, naming who is editing the record (their names).
    confirming_delete: Option<Vec<String>>,
    /// The signed-in user's id as sockets carry it, to tell "you" from others in the editing line.
    me: String,
    /// Who has the record's form open, read from the editing session's presence at mount and at each of its diffs.
    editing: EditingNow,
    /// The name of who saved the record last (`updated_by`), looked up when the record is loaded.
    saved_by: Option<String>,
}

/// Who is editing a record now: the owner of its form, and how many others wait with it open (distinct users).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct EditingNow {
    /// The owner's user id and name.
    owner: Option<(String, String)>,
    /// The names of the other users with the form open, in queue order.
    waiting: Vec<String>,
}

impl EditingNow {
    /// From the session's owner (as the engine decides it) and its editors in queue order; every other user counts
    /// once, whatever number of tabs they have open.
    fn of(owner: Option<&EditingPresence>, presences: &[EditingPresence]) -> EditingNow {
        let mut waiting: Vec<(&str, &str)> = Vec::new();
        for presence in presences {
            let is_owner = owner.is_some_and(|owner| owner.user_id == presence.user_id);
            if !is_owner && !waiting.iter().any(|(id, _)| *id == presence.user_id) {
                waiting.push((&presence.user_id, &presence.user_name));
            }
        }
        EditingNow {
            owner: owner.map(|owner| (owner.user_id.clone(), owner.user_name.clone())),
            waiting: waiting.into_iter().map(|(_, name)| name.to_owned()).collect(),
        }
    }

    /// The sentence the page shows, for the user `me`; `None` when nobody has the form open.
    fn sentence(&self, me: &str) -> Option<String> {
        let others = |tail: &str| match self.waiting.as_slice() {
            [] => None,
            [one] => Some(format!("{one} has {tail}")),
            [rest @ .., last] => Some(format!("{} and {last} have {tail}", rest.join(", "))),
        };
        let owner = match &self.owner {
            Some((id, _)) if id == me => "You are editing this record in another tab.".to_owned(),
            Some((_, name)) => format!("{name} is editing this record now."),
            None => return others("the form open."),
        };
        Some(match others("it open too.") {
            Some(others) => format!("{owner} {others}"),
            None => owner,
        })
    }
}

impl RecordShow {
    pub(super) fn new(context: ViewContext) -> Self {
        RecordShow {
            context,
            entity: None,
            record: None,
            rich: RichValues::new(),
            can_edit: false,
            access: None,
            updated_elsewhere: false,
            actor: None,
            confirming_delete: None,
            me: String::new(),
            editing: EditingNow::default(),
            saved_by: None,
        }
    }

    /// Re-reads who is editing the record from the editing session's presence.
    fn refresh_editing(&mut self) {
        if let Some(record) = &self.record {
            let (editing, target) = (&self.context.engine.editing, record_target(record.id));
            self.editing = EditingNow::of(editing.lock_owner(&target).as_ref(), &editing.sorted_presences(&target));
        }
    }

    /// Looks up the name of who saved the record last (nobody known: `None`).
    async fn load_saved_by(&mut self) {
        let id = self.record.as_ref().and_then(|record| record.updated_by);
        self.saved_by = match id {
            Some(id) => self.context.store.find_user(id).await.ok().flatten().map(|user| user.name),
            None => None,
        };
    }

    fn back_to_list(&self, socket: &mut LiveSocket, message: String) {
        if let Some(entity) = &self.entity {
            socket.put_flash("error", message);
            socket.redirect(format!("/admin/entities/{}/data", entity.name));
        }
    }

    async fn reload(&mut self, socket: &mut LiveSocket) {
        let (Some(entity), Some(record)) = (&self.entity, &self.record) else { return };
        let title = record.title.clone();
        match self.context.store.find_record(entity.id, record.id).await {
            Ok(Some(fresh)) if fresh.status == Status::Archived => {
                self.back_to_list(socket, format!("“{}” was archived in another session.", fresh.title));
            }
            Ok(Some(fresh)) => {
                self.updated_elsewhere = true;
                socket.set_title(fresh.title.clone());
                self.rich = self.context.content.rich_values(&entity.fields_definition, &fresh.data).await;
                self.record = Some(fresh);
                self.load_saved_by().await;
            }
            Ok(None) => self.back_to_list(socket, format!("“{title}” was deleted in another session.")),
            Err(error) => tracing::warn!(%error, "record not reloaded"),
        }
    }
}

impl LiveView for RecordShow {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let entity = entity_of(&self.context, params).await?;
            let record = record_of(&self.context, &entity, params).await?;
            // The role as the store has it now: the socket may have authenticated an older one.
            self.access = WriteAccess::load(&self.context.store, &session.user, Role::can_edit_records).await.ok();
            self.can_edit = self.access.as_ref().is_some_and(WriteAccess::permitted);
            self.actor = super::markup::user_id_of(session);
            socket.subscribe(&crate::content::events::entity_data_topic(self.context.content.events(), entity.id));
            // Presence diffs of the record's editing session: who is editing it now.
            let target: EditTarget = record_target(record.id);
            socket.subscribe(&target.presence_topic());
            self.me = session.user.id().to_owned();
            socket.set_title(record.title.clone());
            self.rich = self.context.content.rich_values(&entity.fields_definition, &record.data).await;
            self.entity = Some(entity);
            self.record = Some(record);
            self.refresh_editing();
            self.load_saved_by().await;
            Ok(())
        })
    }

    fn handle_event<'a>(
        &'a mut self,
        name: &'a str,
        _value: &'a Value,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match name {
                "dismiss" => {
                    self.updated_elsewhere = false;
                    return;
                }
                "delete_cancel" => {
                    self.confirming_delete = None;
                    return;
                }
                "delete" | "delete_confirmed" => {}
                _ => return,
            }
            let (Some(entity), Some(record)) = (&self.entity, &self.record) else { return };
            if !self.can_edit {
                socket.put_flash("error", "Your role may not delete records.");
                return;
            }
            if name == "delete" || self.confirming_delete.is_none() {
                // Ask first, and say who would lose the form they are typing in (their draft stays with them).
                // One name per user, told apart by id: two tabs of one user are one person, two users of one name
                // are two.
                let editing = &self.context.engine.editing;
                let mut users: Vec<(String, String)> = Vec::new();
                for editor in editing.sorted_presences(&record_target(record.id)) {
                    if !users.iter().any(|(id, _)| *id == editor.user_id) {
                        users.push((editor.user_id, editor.user_name));
                    }
                }
                self.confirming_delete = Some(users.into_iter().map(|(_, name)| name).collect());
                return;
            }
            self.confirming_delete = None;
            if let Err(refusal) = check_before_write(&mut self.access, &self.context.store).await {
                socket.put_flash("error", refusal.message());
                return;
            }
            match self.context.content.delete_record(entity, record.id, None, self.actor).await {
                Ok(deleted) => {
                    socket.put_flash(
                        "info",
                        format!("“{}” moved to the trash, where it can be restored.", deleted.title),
                    );
                    socket.redirect(format!("/admin/entities/{}/data", entity.name));
                }
                Err(error) => socket.put_flash("error", error.to_string()),
            }
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if message.downcast::<PresenceDiff>().is_some() {
                self.refresh_editing();
                return;
            }
            let mine = self.record.as_ref().map(|record| record.id);
            match crate::content::events::record_change(message) {
                Some((Action::Updated, id)) if Some(id) == mine => self.reload(socket).await,
                Some((Action::Deleted, id)) if Some(id) == mine => {
                    let title = self.record.as_ref().map(|record| record.title.clone()).unwrap_or_default();
                    self.back_to_list(socket, format!("“{title}” was deleted in another session."));
                }
                _ => {}
            }
        })
    }

    fn render(&self) -> Html {
        let (Some(entity), Some(record)) = (&self.entity, &self.record) else { return Html::default() };
        let base = format!("/admin/entities/{}/data", entity.name);
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href=(base) { (entity.display_name_plural) }
            }
            div #record-view data-lb-region {
                @if self.updated_elsewhere {
                    div.notice #updated-notice role="status" {
                        "Updated in another session. "
                        button.link type="button" phx-click="dismiss" { "Dismiss" }
                    }
                }
                div.page-head {
                    h1 { (record.title) }
                    div.actions {
                        @if self.can_edit {
                            a.button href={ (base) "/" (record.id) "/edit" } { "Edit" }
                            button.danger type="button" phx-click="delete" { "Delete" }
                        }
                    }
                }
                @if let Some(editors) = &self.confirming_delete {
                    div.notice.warn #delete-confirm role="alertdialog" aria-labelledby="delete-confirm-text" {
                        p #delete-confirm-text {
                            "Move “" (record.title) "” to the trash? It can be restored from there."
                            @if let Some(names) = editing_names(editors) {
                                " " strong { (names) } " editing this record now."
                            }
                        }
                        div.actions {
                            button.danger type="button" phx-click="delete_confirmed" { "Move to trash" }
                            button type="button" phx-click="delete_cancel" { "Cancel" }
                        }
                    }
                }
                // A permanent live region: people opening and leaving the form are announced, politely.
                div #editing-now role="status" {
                    @if let Some(sentence) = self.editing.sentence(&self.me) {
                        p.notice { (sentence) }
                    }
                }
                div.card {
                    p.muted {
                        (status_badge(record.status)) " · slug " code.slug title=(record.slug) { (record.slug) } " · version " (record.lock_version)
                        @if record.status == Status::Published {
                            " · " a href={ "/e/" (entity.name) "/" (record.slug) } { "public page" }
                        }
                    }
                    p.muted #last-saved {
                        "Last saved " (date_time(record.updated_at))
                        @if let Some(name) = &self.saved_by { " by " (name) }
                    }
                    (record_values_markup(entity, record, &self.rich))
                }
            }
        })
    }
}

/// "Edda is" / "Edda and Bob are" / "Edda, Bob and Carol are", or `None` when nobody is editing.
fn editing_names(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("{one} is")),
        [rest @ .., last] => Some(format!("{} and {last} are", rest.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use livebaton_content::FieldType;
    use serde_json::json;

    use livebaton::editing::EditingPresence;

    use super::{EditingNow, editing_names, shown_value};

    fn presence(user: &str, can_edit: bool) -> EditingPresence {
        EditingPresence {
            view_id: format!("{user}-view").into(),
            seq: 0,
            user_id: user.to_lowercase(),
            user_name: user.to_owned(),
            can_edit,
            rank: 0,
            yielded: false,
            tab_id: None,
            joined_at: 0,
        }
    }

    /// The page names the owner and the others with the form open, each user once, and "you" for the reader.
    #[test]
    fn the_editing_line_names_the_owner_and_who_else_has_the_form_open() {
        assert_eq!(EditingNow::of(None, &[]).sentence("me"), None);
        let alice_twice = [presence("Alice", true), presence("Bob", true), presence("Alice", true)];
        let now = EditingNow::of(Some(&alice_twice[0]), &alice_twice);
        assert_eq!(now.sentence("carol").as_deref(), Some("Alice is editing this record now. Bob has it open too."));
        assert_eq!(
            now.sentence("alice").as_deref(),
            Some("You are editing this record in another tab. Bob has it open too.")
        );
        let many = [presence("Vera", false), presence("Alice", true), presence("Bob", true), presence("Carol", true)];
        assert_eq!(
            EditingNow::of(Some(&many[1]), &many).sentence("x").as_deref(),
            Some("Alice is editing this record now. Vera, Bob and Carol have it open too."),
        );
        assert_eq!(
            EditingNow::of(None, &many[..1]).sentence("x").as_deref(),
            Some("Vera has the form open."),
            "a viewer alone owns nothing"
        );
    }

    /// Booleans, web addresses and email addresses read as a person reads them, and nothing else becomes a link.
    #[test]
    fn values_are_shown_as_a_person_reads_them() {
        let shown = |kind, value| shown_value(kind, &value).into_string();
        assert_eq!(
            (shown(FieldType::Boolean, json!(true)), shown(FieldType::Boolean, json!(false))),
            ("Yes".into(), "No".into())
        );
        assert_eq!(
            shown(FieldType::Url, json!("https://example.com/a?b=1&c=\"x\"")),
            r#"<a href="https://example.com/a?b=1&amp;c=&quot;x&quot;" rel="noopener noreferrer nofollow">https://example.com/a?b=1&amp;c=&quot;x&quot;</a>"#
        );
        assert_eq!(shown(FieldType::Url, json!("javascript:alert(1)")), "javascript:alert(1)", "not a link");
        assert_eq!(
            shown(FieldType::Email, json!("ann@example.com")),
            r#"<a href="mailto:ann@example.com">ann@example.com</a>"#
        );
        assert_eq!(
            shown(FieldType::Email, json!("ann@example.com?cc=eve@x")),
            "ann@example.com?cc=eve@x",
            "not a link"
        );
        assert_eq!(shown(FieldType::Text, json!("<b>x</b>")), "&lt;b&gt;x&lt;/b&gt;");
    }

    #[test]
    fn editing_names_read_as_a_sentence() {
        let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
        assert_eq!(editing_names(&[]), None);
        assert_eq!(editing_names(&names(&["Edda"])).as_deref(), Some("Edda is"));
        assert_eq!(editing_names(&names(&["Edda", "Bob", "Carol"])).as_deref(), Some("Edda, Bob and Carol are"));
    }
}
