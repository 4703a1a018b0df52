//! `/admin/entities/{name}/data/{id}/edit`: the collaborative record form.
//!
//! The first eligible page in the session's queue owns the form; every other page shows the owner's values live,
//! read-only. The owner's changes become the session's draft (after the client's debounce); Save validates and
//! commits fenced by the owner token and the draft's `lock_version`, so nothing is overwritten silently: a conflict
//! shows what changed and keeps the draft. The shared mechanics are in [`CollabForm`]; this file is the record's part.

use std::sync::Arc;

use livebaton::editing::{EditTarget, OwnerToken};
use livebaton::pubsub::Broadcast;
use livebaton_content::RecordInput;
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::ViewContext;
use super::collab::Collab;
use super::collab_form::{CollabForm, Editable, shown_version};
use super::fields::{record_input, record_inputs, record_values, value_text};
use super::markup::to_html;
use super::record_show::record_of;
use super::records::entity_of;
use crate::accounts::Role;
use crate::content::ContentError;
use crate::live::{WriteAccess, max_age};
use crate::storage::{Entity, Record};

/// Records of one entity, as a collaborative form edits them.
pub struct RecordOf(Entity);

impl Editable for RecordOf {
    type Row = Record;
    type Values = RecordInput;

    fn values_of(row: &Record) -> RecordInput {
        record_values(row)
    }

    fn lock_version(row: &Record) -> i64 {
        row.lock_version
    }

    fn normalized(&self, values: &RecordInput) -> Option<Value> {
        let valid = livebaton_content::validate_record(&self.0.fields_definition, values).ok()?;
        serde_json::to_value(valid).ok()
    }

    fn reload<'a>(&'a self, context: &'a ViewContext, row: &'a Record) -> BoxFuture<'a, Option<Record>> {
        Box::pin(async move { context.store.find_record(self.0.id, row.id).await.ok().flatten() })
    }

    fn save<'a>(
        &'a self,
        context: &'a ViewContext,
        row: &'a Record,
        base: i64,
        values: &'a RecordInput,
        token: &'a OwnerToken,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Record, ContentError>> {
        Box::pin(context.content.update_record(&self.0, row.id, base, values, Some(token), by))
    }

    fn conflict(error: ContentError) -> Result<Record, ContentError> {
        match error {
            ContentError::RecordConflict(current) => Ok(*current),
            other => Err(other),
        }
    }

    fn noun(&self) -> &'static str {
        "record"
    }

    fn list_path(&self) -> String {
        format!("/admin/entities/{}/data", self.0.name)
    }
}

/// The collaborative record form.
pub struct RecordForm {
    context: ViewContext,
    form: Option<CollabForm<RecordOf>>,
}

impl RecordForm {
    pub(super) fn new(context: ViewContext) -> Self {
        RecordForm { context, form: None }
    }
}

/// Where the saved row differs from the form: "Title: now “…”", per field.
fn conflict_panel(entity: &Entity, values: &RecordInput, current: &Record) -> Markup {
    let mut changes: Vec<(String, String)> = Vec::new();
    if current.title != values.title {
        changes.push(("Title".into(), current.title.clone()));
    }
    if Some(current.slug.as_str()) != values.slug.as_deref() {
        changes.push(("Slug".into(), current.slug.clone()));
    }
    if Some(current.status.as_str()) != values.status.as_deref() {
        changes.push(("Status".into(), current.status.as_str().to_owned()));
    }
    for field in &entity.fields_definition {
        let theirs = value_text(current.data.get(&field.key));
        if theirs != value_text(values.data.get(&field.key)) {
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
            // The role as the store has it now: the socket may have authenticated an older one.
            let access = WriteAccess::load(&self.context.store, &session.user, Role::can_edit_records)
                .await
                .map_err(super::unavailable)?;
            let can_edit = access.permitted();
            socket.set_title(format!("Edit {}", record.title));
            let editing = self.context.engine.editing.clone();
            let mut collab = Collab::new(editing, EditTarget::data(record.id), session, can_edit);
            let draft = collab.join(session, socket).await?;
            let name = session.user.name().to_owned();
            self.form = Some(CollabForm::new(RecordOf(entity), record, collab, name, access, draft.as_deref()));
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
            let Some(form) = &mut self.form else { return };
            match name {
                // A save must not even become the draft unless the user may still write now.
                "draft" | "save" if !form.may_write(&self.context, socket, max_age(name)).await => {}
                "draft" | "save" => {
                    let values = record_input(&form.editable.0.fields_definition, value);
                    if form.publish(values, socket) && name == "save" {
                        form.save(&self.context, socket, None).await;
                    }
                }
                "recover" if !form.may_draft(&self.context, socket).await => {}
                "recover" => {
                    let values = record_input(&form.editable.0.fields_definition, value);
                    form.recover(values, shown_version(value), socket);
                }
                other => {
                    form.shared_event(&self.context, other, socket).await;
                }
            }
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(form) = &mut self.form {
                form.handle_info(&self.context, message, socket).await;
            }
        })
    }

    fn render(&self) -> Html {
        let Some(form) = &self.form else { return Html::default() };
        let (entity, record) = (&form.editable.0, &form.row);
        let base = format!("/admin/entities/{}/data", entity.name);
        let read_only = !form.is_owner();
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href=(base) { (entity.display_name_plural) } " / "
                a href={ (base) "/" (record.id) } { (record.title) }
            }
            h1 { "Edit " (entity.display_name) }
            (form.collab.bar())
            div.card #record-editor data-lb-region {
                @if let Some(current) = &form.conflict { (conflict_panel(entity, &form.values, current)) }
                form #record-form phx-change="draft" phx-submit="save" phx-auto-recover="recover" novalidate {
                    fieldset disabled[read_only] {
                        (form.version_field())
                        (record_inputs(&entity.fields_definition, &form.values, &form.errors))
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
