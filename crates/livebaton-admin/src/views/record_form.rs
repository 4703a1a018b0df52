//! `/admin/entities/{name}/data/{id}/edit`: the collaborative record form.
//!
//! The first eligible page in the session's queue owns the form; every other page shows the owner's values live,
//! read-only. The owner's changes become the session's draft (after the client's debounce); Save validates and
//! commits fenced by the owner token, merged per field with the record as it is now, so nothing is overwritten
//! silently: a conflict offers only the fields both sides changed and keeps the draft. The shared mechanics are in
//! [`CollabForm`]; this file is the record's part (its field names and how values show in the conflict panel).

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use livebaton::editing::merge::FieldConflict;
use livebaton::editing::{Editing, OwnerToken};
use livebaton::pubsub::Broadcast;
use livebaton_content::{FieldType, RecordInput, SafeHtml, ValidationErrors};
use livebaton_web::channel::BoxFuture;
use livebaton_web::collab::{CollabForm, ConflictValues, Editable, RestoreError, value_html};
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::html;
use serde_json::{Map, Value};

use super::ViewContext;
use super::fields::{record_input, record_inputs, record_values};
use super::markup::to_html;
use super::record_show::{record_of, rich_markup};
use super::records::entity_of;
use crate::content::editing::{
    Author, DRAFT_TOO_LARGE, EditedRow, EditingService, SaveOutcome, draft_too_large, record_target,
};
use crate::content::{ContentError, SaveRequest};
use crate::live::WriteAccess;
use crate::storage::{Entity, Record};

/// Records of one entity, as a collaborative form edits them: the entity, and what the form needs to reload, save
/// and re-check the user's right to write.
pub struct RecordOf {
    entity: Entity,
    context: ViewContext,
    /// The user's right to write, re-read before the owner's writes.
    access: WriteAccess,
}

impl Editable for RecordOf {
    type Row = Record;
    type Values = RecordInput;
    type Errors = ValidationErrors;

    fn values_of(row: &Record) -> RecordInput {
        record_values(row)
    }

    fn normalized(&self, values: &RecordInput) -> Option<Value> {
        let valid = livebaton_content::validate_record(&self.entity.fields_definition, values).ok()?;
        serde_json::to_value(valid).ok()
    }

    fn reload<'a>(&'a self, row: &'a Record) -> BoxFuture<'a, Option<Record>> {
        Box::pin(async move { self.context.store.find_record(self.entity.id, row.id).await.ok().flatten() })
    }

    fn save<'a>(
        &'a self,
        _editing: &'a Editing,
        row: &'a Record,
        save: SaveRequest<'a, RecordInput>,
        token: &'a OwnerToken,
        by: &'a Author,
    ) -> BoxFuture<'a, SaveOutcome<Record>> {
        let service = EditingService::new(&self.context.content);
        Box::pin(async move { service.save_record(&self.entity, row.id, save, token, by).await })
    }

    fn may_write(&mut self, max_age: Duration) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.access.check(&self.context.store, max_age).await.map_err(|refusal| refusal.message().to_owned())
        })
    }

    fn draft_too_large(&self, params: &Value) -> Option<String> {
        draft_too_large(params).then(|| DRAFT_TOO_LARGE.to_owned())
    }

    fn field_label(&self, name: &str) -> String {
        match name {
            "title" => "Title".to_owned(),
            "slug" => "Slug".to_owned(),
            "status" => "Status".to_owned(),
            _ => match name.split_once('.') {
                Some(("data", key)) => self
                    .entity
                    .fields_definition
                    .iter()
                    .find(|field| field.key == key)
                    .map_or(key, |field| &field.label)
                    .to_owned(),
                Some(("metadata", key)) => format!("Metadata: {key}"),
                _ => name.to_owned(),
            },
        }
    }

    /// Rich text sanitised for output (off the runtime's workers), everything else as escaped text.
    fn conflict_values<'a>(&'a self, fields: &'a BTreeMap<String, FieldConflict>) -> BoxFuture<'a, ConflictValues> {
        Box::pin(async move {
            let rich_keys: Vec<&str> = self
                .entity
                .fields_definition
                .iter()
                .filter(|field| field.field_type == FieldType::RichText)
                .map(|field| field.key.as_str())
                .collect();
            let side = |pick: fn(&FieldConflict) -> &Value| -> Map<String, Value> {
                fields
                    .iter()
                    .filter_map(|(name, field)| Some((name.strip_prefix("data.")?, field)))
                    .filter(|(key, _)| rich_keys.contains(key))
                    .map(|(key, field)| (key.to_owned(), pick(field).clone()))
                    .collect()
            };
            let (mine, theirs) = (side(|field| &field.mine), side(|field| &field.theirs));
            let definition = &self.entity.fields_definition;
            let (mut mine, mut theirs) = if mine.is_empty() && theirs.is_empty() {
                Default::default()
            } else {
                let content = &self.context.content;
                (content.rich_values(definition, &mine).await, content.rich_values(definition, &theirs).await)
            };
            let show = |value: &Value, rich: Option<SafeHtml>| match rich {
                Some(html) => to_html(maud::html! { div.rich { (rich_markup(&html)) } }),
                None => value_html(value),
            };
            fields
                .iter()
                .map(|(name, field)| {
                    let key = name.strip_prefix("data.").unwrap_or_default();
                    let shown = (show(&field.mine, mine.remove(key)), show(&field.theirs, theirs.remove(key)));
                    (name.clone(), shown)
                })
                .collect()
        })
    }

    fn noun(&self) -> &'static str {
        "record"
    }

    fn list_path(&self) -> String {
        format!("/admin/entities/{}/data", self.entity.name)
    }

    fn has_trash(&self) -> bool {
        true
    }

    fn in_trash<'a>(&'a self, row: &'a Record) -> BoxFuture<'a, bool> {
        Box::pin(
            async move { matches!(self.context.store.find_trashed_record(self.entity.id, row.id).await, Ok(Some(_))) },
        )
    }

    fn restore<'a>(&'a self, row: &'a Record) -> BoxFuture<'a, Result<Record, RestoreError>> {
        Box::pin(async move {
            self.context.content.restore_record(&self.entity, row.id).await.map_err(|error| match error {
                ContentError::NotFound => RestoreError::NotInTrash,
                error => RestoreError::Failed(error.to_string()),
            })
        })
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
            let access = WriteAccess::load(&self.context.store, &session.user, Record::KIND.permits())
                .await
                .map_err(super::unavailable)?;
            let can_edit = access.permitted();
            socket.set_title(format!("Edit {}", record.title));
            let editing = EditingService::new(&self.context.content).engine().clone();
            let (target, editable) =
                (record_target(record.id), RecordOf { entity, context: self.context.clone(), access });
            let form = CollabForm::mount(editable, record, &editing, target, can_edit, session, socket).await?;
            self.form = Some(form);
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
            if let Some(form) = &mut self.form {
                let read = |form: &CollabForm<RecordOf>, value: &Value| {
                    record_input(&form.editable.entity.fields_definition, value)
                };
                form.handle_event(name, value, socket, read).await;
            }
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(form) = &mut self.form {
                form.handle_info(message, socket).await;
            }
        })
    }

    fn render(&self) -> Html {
        let Some(form) = &self.form else { return Html::default() };
        let (entity, record) = (&form.editable.entity, &form.row);
        let base = format!("/admin/entities/{}/data", entity.name);
        let read_only = !form.is_owner() || form.awaits_choice();
        let leave = form.leave_guard();
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href=(base) { (entity.display_name_plural) } " / "
                a href={ (base) "/" (record.id) } { (record.title) }
            }
            h1 { "Edit " (entity.display_name) }
            (form.member.bar())
            div.card #record-editor data-lb-region {
                (form.gone_panel())
                (form.kept_offer())
                (form.conflict_panel())
                form #record-form phx-change="draft" phx-submit="save" phx-auto-recover="recover" novalidate
                    data-lb-confirm-leave=[leave.0] data-lb-unsaved[leave.1] {
                    fieldset disabled[read_only] {
                        (form.version_field())
                        (record_inputs(&entity.fields_definition, &form.values, &form.errors))
                        div.actions {
                            button type="submit" { "Save" }
                            (form.save_status())
                            a href={ (base) "/" (record.id) } { "Back" }
                        }
                    }
                }
            }
        })
    }
}
