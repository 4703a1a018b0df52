//! `/admin/entities/{name}/data/{id}/edit`: the collaborative record form.
//!
//! The first eligible page in the session's queue owns the form; every other page shows the owner's values live,
//! read-only. The owner's changes become the session's draft (after the client's debounce); Save validates and
//! commits fenced by the owner token and the draft's `lock_version`, so nothing is overwritten silently: a conflict
//! shows what changed and keeps the draft.

use std::sync::Arc;

use livebaton::editing::{Draft, EditTarget};
use livebaton::pubsub::Broadcast;
use livebaton_content::{RecordInput, ValidationErrors};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::ViewContext;
use super::collab::{Collab, SessionEvent, refused};
use super::fields::{record_input, record_inputs, record_values, value_text};
use super::markup::{role_of, to_html};
use super::record_show::record_of;
use super::records::entity_of;
use crate::content::ContentError;
use crate::storage::{Entity, Record};

/// The collaborative record form.
pub struct RecordForm {
    context: ViewContext,
    entity: Option<Entity>,
    /// The row as this page last loaded it.
    record: Option<Record>,
    /// What the form shows: the owner's input, or for a spectator the owner's draft.
    values: RecordInput,
    /// The row version `values` started from: the base of the draft this page starts, so a save of values loaded
    /// before someone else's write conflicts instead of overwriting it.
    values_version: i64,
    errors: ValidationErrors,
    /// The row as it is now, after a save conflicted with it.
    conflict: Option<Record>,
    collab: Option<Collab>,
    user_name: String,
}

impl RecordForm {
    pub(super) fn new(context: ViewContext) -> Self {
        RecordForm {
            context,
            entity: None,
            record: None,
            values: RecordInput::default(),
            values_version: 0,
            errors: ValidationErrors::default(),
            conflict: None,
            collab: None,
            user_name: String::new(),
        }
    }

    fn list_path(&self) -> String {
        self.entity
            .as_ref()
            .map_or_else(|| "/admin/entities".to_owned(), |e| format!("/admin/entities/{}/data", e.name))
    }

    fn show_draft(&mut self, draft: &Draft) {
        if let Ok(values) = serde_json::from_value::<RecordInput>(draft.params.clone()) {
            self.values = values;
            self.values_version = draft.base_lock_version;
            self.errors = ValidationErrors::default();
        }
    }

    /// Shows the row as stored.
    fn show_row(&mut self, row: Record) {
        self.values = record_values(&row);
        self.values_version = row.lock_version;
        self.errors = ValidationErrors::default();
        self.record = Some(row);
    }

    async fn reload(&mut self) -> Option<Record> {
        let (entity, record) = (self.entity.as_ref()?, self.record.as_ref()?);
        self.context.store.find_record(entity.id, record.id).await.ok().flatten()
    }

    /// Owner only: the form's values become the session's draft.
    fn change(&mut self, form: &Value, socket: &mut LiveSocket) -> bool {
        let (Some(entity), Some(record), Some(collab)) = (&self.entity, &self.record, &self.collab) else {
            return false;
        };
        if !collab.is_owner() {
            socket.put_flash("error", collab.read_only_message());
            return false;
        }
        self.values = record_input(&entity.fields_definition, form);
        match collab.update_draft(record.lock_version, serde_json::to_value(&self.values).unwrap_or(Value::Null)) {
            Ok(_) => true,
            Err(not_owner) => {
                socket.put_flash("error", refused(&not_owner));
                false
            }
        }
    }

    /// A fenced save of the current values; `resolved` is the row version the user chose to overwrite after a conflict.
    async fn save(&mut self, socket: &mut LiveSocket, resolved: Option<i64>) {
        let (Some(entity), Some(record), Some(collab)) = (&self.entity, &self.record, &self.collab) else { return };
        let token = match collab.fence() {
            Ok(token) => token,
            Err(not_owner) => return socket.put_flash("error", refused(&not_owner)),
        };
        let base = resolved.or(token.base_lock_version()).unwrap_or(self.values_version);
        let outcome = self
            .context
            .content
            .update_record(entity, record.id, base, &self.values, Some(&token), &self.user_name)
            .await;
        match outcome {
            Ok(saved) => {
                self.show_row(saved);
                self.conflict = None;
                socket.put_flash("info", "Saved.");
            }
            Err(ContentError::Invalid(errors)) => {
                self.errors = errors;
                socket.put_flash("error", "Not saved: check the highlighted fields. Your changes are kept.");
            }
            Err(ContentError::RecordConflict(current)) => {
                self.conflict = Some(*current);
                socket.put_flash("error", "Not saved: someone else changed this record. Your changes are kept.");
            }
            Err(ContentError::NotOwner(not_owner)) => socket.put_flash("error", refused(&not_owner)),
            Err(ContentError::NotFound) => {
                socket.put_flash("error", "This record was deleted in another session.");
                socket.redirect(self.list_path());
            }
            Err(error) => socket.put_flash("error", format!("{error}. Your changes are kept; try again.")),
        }
    }

    async fn on_session_event(&mut self, event: SessionEvent, socket: &mut LiveSocket) {
        match event {
            SessionEvent::Nothing => {}
            SessionEvent::Draft(draft) | SessionEvent::Promoted(Some(draft)) => self.show_draft(&draft),
            SessionEvent::Promoted(None) => {}
            SessionEvent::DraftEnded => {
                if let Some(fresh) = self.reload().await {
                    self.show_row(fresh);
                }
            }
            SessionEvent::Saved { by } => {
                // Unsaved changes stay in the form (their save will conflict and show what changed); a form without
                // any shows the new row, so the next draft starts from it.
                let keeps_changes = self.collab.as_ref().is_some_and(|collab| collab.is_owner() && collab.has_draft());
                if let Some(fresh) = self.reload().await {
                    if by != self.user_name
                        && let Some(collab) = &mut self.collab
                    {
                        collab.notice = Some(format!("Saved by {by}."));
                    }
                    if keeps_changes {
                        self.record = Some(fresh);
                    } else {
                        self.show_row(fresh);
                    }
                }
            }
            SessionEvent::Deleted => {
                let title = self.record.as_ref().map(|record| record.title.clone()).unwrap_or_default();
                socket.put_flash("error", format!("“{title}” was deleted in another session."));
                socket.redirect(self.list_path());
            }
        }
    }

    fn conflict_panel(&self, current: &Record) -> Markup {
        let Some(entity) = &self.entity else { return html! {} };
        let mut changes: Vec<(String, String)> = Vec::new();
        if current.title != self.values.title {
            changes.push(("Title".into(), current.title.clone()));
        }
        if Some(current.slug.as_str()) != self.values.slug.as_deref() {
            changes.push(("Slug".into(), current.slug.clone()));
        }
        if Some(current.status.as_str()) != self.values.status.as_deref() {
            changes.push(("Status".into(), current.status.as_str().to_owned()));
        }
        for field in &entity.fields_definition {
            let theirs = value_text(current.data.get(&field.key));
            if theirs != value_text(self.values.data.get(&field.key)) {
                changes.push((field.label.clone(), theirs));
            }
        }
        html! {
            div.conflict #conflict role="alert" {
                strong { "Someone else saved this record (version " (current.lock_version) ") while you were editing." }
                p { "Where the saved version differs from yours:" }
                ul {
                    @for (label, value) in &changes { li { (label) ": now “" (value) "”" } }
                }
                div.actions {
                    button.small type="button" phx-click="overwrite" { "Save mine over it" }
                    button.small.secondary type="button" phx-click="discard" { "Discard mine, load theirs" }
                }
            }
        }
    }
}

impl LiveView for RecordForm {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let entity = entity_of(&self.context, params).await?;
            let record = record_of(&self.context, &entity, params).await?;
            let can_edit = role_of(session).is_some_and(|role| role.can_edit_records());
            self.user_name = session.user.name.clone();
            self.values = record_values(&record);
            self.values_version = record.lock_version;
            socket.set_title(format!("Edit {}", record.title));
            let mut collab =
                Collab::new(self.context.engine.editing.clone(), EditTarget::data(record.id), session, can_edit);
            let draft = collab.join(session, socket).await?;
            if let Some(draft) = draft {
                self.show_draft(&draft);
            }
            self.collab = Some(collab);
            self.entity = Some(entity);
            self.record = Some(record);
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
            match name {
                "draft" => {
                    self.change(value, socket);
                }
                "save" if self.change(value, socket) => self.save(socket, None).await,
                "save" => {}
                "overwrite" => {
                    let resolved = self.conflict.as_ref().map(|current| current.lock_version);
                    self.save(socket, resolved).await;
                }
                "discard" => {
                    let owner = self.collab.as_ref().is_some_and(Collab::is_owner);
                    if let (true, Some(current)) = (owner, self.conflict.take()) {
                        if let Some(collab) = &self.collab {
                            collab.discard_draft(current.lock_version);
                        }
                        self.show_row(current);
                    }
                }
                "take_here" => {
                    if let Some(collab) = &mut self.collab
                        && let Err(error) = collab.take_here()
                    {
                        socket.put_flash("error", error.to_string());
                    }
                }
                "dismiss" => {
                    if let Some(collab) = &mut self.collab {
                        collab.notice = None;
                    }
                }
                _ => {}
            }
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(collab) = &mut self.collab else { return };
            let event = collab.handle(message);
            self.on_session_event(event, socket).await;
        })
    }

    fn render(&self) -> Html {
        let (Some(entity), Some(record), Some(collab)) = (&self.entity, &self.record, &self.collab) else {
            return Html::default();
        };
        let base = format!("/admin/entities/{}/data", entity.name);
        let read_only = !collab.is_owner();
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href=(base) { (entity.display_name_plural) } " / "
                a href={ (base) "/" (record.id) } { (record.title) }
            }
            h1 { "Edit " (entity.display_name) }
            (collab.bar())
            div.card #record-editor data-lb-region {
                @if let Some(current) = &self.conflict { (self.conflict_panel(current)) }
                form #record-form phx-change="draft" phx-submit="save" novalidate data-lock-version=(self.values_version) {
                    fieldset disabled[read_only] {
                        (record_inputs(&entity.fields_definition, &self.values, &self.errors))
                        div.actions {
                            button type="submit" { "Save" }
                            a href={ (base) "/" (record.id) } { "Back" }
                        }
                    }
                }
            }
        })
    }
}
