//! `/admin/entities/{name}/data/{id}/edit`: the collaborative record form.
//!
//! The first eligible page in the session's queue owns the form; every other page shows the owner's values live,
//! read-only. The owner's changes become the session's draft (after the client's debounce); Save validates and
//! commits fenced by the owner token, merged per field with the record as it is now, so nothing is overwritten
//! silently: a conflict offers only the fields both sides changed and keeps the draft. The shared mechanics are in
//! [`CollabForm`]; this file is the record's part (its field names and how values show in the conflict panel).

use std::collections::BTreeMap;
use std::sync::Arc;

use livebaton::editing::OwnerToken;
use livebaton::editing::merge::{FieldConflict, Resolutions};
use livebaton::pubsub::Broadcast;
use livebaton_content::{FieldType, RecordInput, SafeHtml};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::ViewContext;
use super::collab::Collab;
use super::collab_form::{CollabForm, ConflictRich, Editable, shown_version, value_markup};
use super::fields::{record_input, record_inputs, record_values};
use super::markup::to_html;
use super::record_show::{record_of, rich_markup};
use super::records::entity_of;
use crate::content::editing::{Author, EditedRow, EditingService, SaveOutcome, record_target};
use crate::content::{ContentError, SaveRequest};
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

    fn normalized(&self, values: &RecordInput) -> Option<Value> {
        let valid = livebaton_content::validate_record(&self.0.fields_definition, values).ok()?;
        serde_json::to_value(valid).ok()
    }

    fn reload<'a>(&'a self, context: &'a ViewContext, row: &'a Record) -> BoxFuture<'a, Option<Record>> {
        Box::pin(async move { context.store.find_record(self.0.id, row.id).await.ok().flatten() })
    }

    fn save<'a>(
        &'a self,
        service: &'a EditingService,
        row: &'a Record,
        save: SaveRequest<'a, RecordInput>,
        token: &'a OwnerToken,
        by: &'a Author,
    ) -> BoxFuture<'a, SaveOutcome<Record>> {
        Box::pin(service.save_record(&self.0, row.id, save, token, by))
    }

    fn field_label(&self, name: &str) -> String {
        match name {
            "title" => "Title".to_owned(),
            "slug" => "Slug".to_owned(),
            "status" => "Status".to_owned(),
            _ => match name.split_once('.') {
                Some(("data", key)) => self
                    .0
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

    fn show_value(&self, _name: &str, value: &Value, rich: Option<&SafeHtml>) -> Markup {
        match rich {
            Some(html) => html! { div.rich { (rich_markup(html)) } },
            None => value_markup(value),
        }
    }

    fn rich<'a>(
        &'a self,
        context: &'a ViewContext,
        fields: &'a BTreeMap<String, FieldConflict>,
    ) -> BoxFuture<'a, ConflictRich> {
        Box::pin(async move {
            let rich_keys: Vec<&str> = self
                .0
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
            if mine.is_empty() && theirs.is_empty() {
                return ConflictRich::new();
            }
            let definition = &self.0.fields_definition;
            let mut mine = context.content.rich_values(definition, &mine).await;
            let mut theirs = context.content.rich_values(definition, &theirs).await;
            rich_keys
                .iter()
                .map(|key| (format!("data.{key}"), (mine.remove(*key), theirs.remove(*key))))
                .filter(|(_, (mine, theirs))| mine.is_some() || theirs.is_some())
                .collect()
        })
    }

    fn noun(&self) -> &'static str {
        "record"
    }

    fn list_path(&self) -> String {
        format!("/admin/entities/{}/data", self.0.name)
    }

    fn has_trash(&self) -> bool {
        true
    }

    fn in_trash<'a>(&'a self, context: &'a ViewContext, row: &'a Record) -> BoxFuture<'a, bool> {
        Box::pin(async move { matches!(context.store.find_trashed_record(self.0.id, row.id).await, Ok(Some(_))) })
    }

    fn restore<'a>(&'a self, context: &'a ViewContext, row: &'a Record) -> BoxFuture<'a, Result<Record, ContentError>> {
        Box::pin(context.content.restore_record(&self.0, row.id))
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
            let service = EditingService::new(&self.context.content);
            let mut collab = Collab::new(service, record_target(record.id), session, can_edit);
            let draft = collab.join(session, socket).await?;
            let mut form = CollabForm::new(RecordOf(entity), record, collab, access, draft.as_deref());
            form.offer_kept().await;
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
            let Some(form) = &mut self.form else { return };
            match name {
                // A save must not even become the draft unless the user may still write now.
                "draft" | "save" if !form.may_write(&self.context, socket, max_age(name)).await => {}
                "draft" | "save" => {
                    let values = record_input(&form.editable.0.fields_definition, value);
                    if form.publish(values, socket) && name == "save" {
                        form.save(&self.context, socket, &Resolutions::new(), None).await;
                    }
                }
                "recover" if !form.may_draft(&self.context, socket).await => {}
                "recover" => {
                    let values = record_input(&form.editable.0.fields_definition, value);
                    form.recover(values, shown_version(value), socket).await;
                }
                other => {
                    form.shared_event(&self.context, other, value, socket).await;
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
        let read_only = !form.is_owner() || form.awaits_choice();
        let leave = form.leave_guard();
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href=(base) { (entity.display_name_plural) } " / "
                a href={ (base) "/" (record.id) } { (record.title) }
            }
            h1 { "Edit " (entity.display_name) }
            (form.collab.bar())
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
                            a href={ (base) "/" (record.id) } { "Back" }
                        }
                    }
                }
            }
        })
    }
}
