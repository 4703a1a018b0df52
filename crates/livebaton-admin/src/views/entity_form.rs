//! `/admin/entities/{id}/edit`: the collaborative entity form with its field builder (add, edit, remove, reorder
//! fields; type, key, label, required, options). Same baton rules as the record form: one owner, live spectators,
//! fenced saves merged per field; the field list is one field of the merge (see [`crate::content::SaveRequest`]).
//!
//! Field rows are named `fields[<n>][type|key|label|required|options]`; options are typed one per line or comma
//! separated. The builder's buttons work on the values of the last change, which the client sends before the click.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use livebaton::editing::merge::{FieldConflict, Resolutions};
use livebaton::editing::{Editing, OwnerToken};
use livebaton::pubsub::Broadcast;
use livebaton_content::{EntityInput, FieldType, ValidationErrors};
use livebaton_web::channel::BoxFuture;
use livebaton_web::collab::{CollabForm, ConflictValues, Editable, value_html};
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::ViewContext;
use super::markup::{field_errors, form_text, id_param, to_html};
use super::schema_change::SchemaChange;
use crate::content::SaveRequest;
use crate::content::editing::{
    Author, DRAFT_TOO_LARGE, EditedRow, EditingService, SaveOutcome, draft_too_large, entity_target,
};
use crate::live::{WriteAccess, max_age};
use crate::storage::Entity;

/// The entity's editable values as the form shows them.
fn entity_values(entity: &Entity) -> EntityInput {
    EntityInput {
        name: Some(entity.name.clone()),
        display_name: entity.display_name.clone(),
        display_name_plural: entity.display_name_plural.clone(),
        description: Some(entity.description.clone()),
        icon: Some(entity.icon.clone()).filter(|icon| !icon.is_empty()),
        status: Some(entity.status.as_str().to_owned()),
        fields_definition: entity
            .fields_definition
            .iter()
            .map(|field| serde_json::to_value(field).unwrap_or(Value::Null))
            .collect(),
        settings: Some(entity.settings.clone()),
    }
}

/// Reads the submitted form as the entity input (field rows in index order).
fn entity_input(form: &Value, previous: &EntityInput) -> EntityInput {
    let mut rows: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
    if let Some(object) = form.as_object() {
        for name in object.keys() {
            let Some(rest) = name.strip_prefix("fields[") else { continue };
            let Some((index, rest)) = rest.split_once("][") else { continue };
            let (Ok(index), Some(attribute)) = (index.parse::<usize>(), rest.strip_suffix(']')) else { continue };
            if index >= 200 {
                continue;
            }
            let text = form_text(form, name);
            let value = match attribute {
                "required" => json!(text == "true"),
                "options" => json!(
                    text.split(['\n', ',']).map(str::trim).filter(|option| !option.is_empty()).collect::<Vec<_>>()
                ),
                "type" | "key" | "label" => json!(text),
                _ => continue,
            };
            rows.entry(index).or_default().insert(attribute.to_owned(), value);
        }
    }
    let optional = |name: &str| Some(form_text(form, name)).filter(|text| !text.trim().is_empty());
    EntityInput {
        name: optional("name"),
        display_name: form_text(form, "display_name"),
        display_name_plural: form_text(form, "display_name_plural"),
        description: optional("description"),
        icon: previous.icon.clone(),
        status: optional("status"),
        fields_definition: rows.into_values().map(Value::Object).collect(),
        settings: previous.settings.clone(),
    }
}

/// Entity definitions, as a collaborative form edits them: what the form needs to reload, save and re-check the
/// user's right to write.
pub struct EntityKind {
    context: ViewContext,
    /// The user's right to write, re-read before the owner's writes.
    access: WriteAccess,
}

impl Editable for EntityKind {
    type Row = Entity;
    type Values = EntityInput;
    type Errors = ValidationErrors;

    fn values_of(row: &Entity) -> EntityInput {
        entity_values(row)
    }

    fn normalized(&self, values: &EntityInput) -> Option<Value> {
        serde_json::to_value(livebaton_content::validate_entity(values).ok()?).ok()
    }

    fn reload<'a>(&'a self, row: &'a Entity) -> BoxFuture<'a, Option<Entity>> {
        Box::pin(async move { self.context.store.find_entity(row.id).await.ok().flatten() })
    }

    fn save<'a>(
        &'a self,
        _editing: &'a Editing,
        row: &'a Entity,
        save: SaveRequest<'a, EntityInput>,
        token: &'a OwnerToken,
        by: &'a Author,
    ) -> BoxFuture<'a, SaveOutcome<Entity>> {
        let service = EditingService::new(&self.context.content);
        Box::pin(async move { service.save_entity(row.id, save, token, by).await })
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
            "name" => "Machine name".to_owned(),
            "display_name" => "Display name".to_owned(),
            "display_name_plural" => "Plural name".to_owned(),
            "description" => "Description".to_owned(),
            "icon" => "Icon".to_owned(),
            "status" => "Status".to_owned(),
            "fields_definition" => "Fields".to_owned(),
            _ => match name.strip_prefix("settings.") {
                Some(key) => format!("Setting: {key}"),
                None => name.to_owned(),
            },
        }
    }

    /// The field list as "Label (key, type)" per field; everything else as escaped text.
    fn conflict_values<'a>(&'a self, fields: &'a BTreeMap<String, FieldConflict>) -> BoxFuture<'a, ConflictValues> {
        let show = |name: &str, value: &Value| {
            if name != "fields_definition" {
                return value_html(value);
            }
            let fields = value.as_array().map(Vec::as_slice).unwrap_or_default();
            to_html(html! {
                @if fields.is_empty() { span.muted { "(no fields)" } }
                ol {
                    @for field in fields {
                        @let text = |member: &str| field.get(member).and_then(Value::as_str).unwrap_or("").to_owned();
                        li { (text("label")) " (" (text("key")) ", " (text("type")) ")" }
                    }
                }
            })
        };
        let shown =
            fields.iter().map(|(name, field)| (name.clone(), (show(name, &field.mine), show(name, &field.theirs))));
        let shown: ConflictValues = shown.collect();
        Box::pin(async move { shown })
    }

    fn noun(&self) -> &'static str {
        "entity"
    }

    fn list_path(&self) -> String {
        "/admin/entities".to_owned()
    }
}

/// Applies a field-builder action (`add_field`, `remove_field`, `move_up`, `move_down` with `index`) to `values`;
/// false when it changes nothing.
fn edit_fields(values: &mut EntityInput, action: &str, value: &Value) -> bool {
    let fields = &mut values.fields_definition;
    let index = value.get("index").and_then(Value::as_str).and_then(|index| index.parse::<usize>().ok());
    match (action, index) {
        ("add_field", _) if fields.len() < 100 => {
            let n = fields.len() + 1;
            let label = format!("Field {n}");
            fields.push(json!({"type": "text", "key": format!("field_{n}"), "label": label, "required": false}));
        }
        ("remove_field", Some(index)) if index < fields.len() => {
            fields.remove(index);
        }
        ("move_up", Some(index)) if index > 0 && index < fields.len() => fields.swap(index, index - 1),
        ("move_down", Some(index)) if index + 1 < fields.len() => fields.swap(index, index + 1),
        _ => return false,
    }
    true
}

/// The field builder's rows, editable only by the owner.
fn field_rows(values: &EntityInput, errors: &ValidationErrors, owner: bool) -> Markup {
    let fields = &values.fields_definition;
    html! {
        @if fields.is_empty() { p.empty { "No fields yet." } }
        @for (index, field) in fields.iter().enumerate() {
            @let text = |name: &str| field.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
            @let kind = text("type");
            @let required = field.get("required").and_then(Value::as_bool).unwrap_or(false);
            @let options: Vec<&str> = field.get("options").and_then(Value::as_array).map(|o| o.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            @let path = format!("fields_definition.{index}");
            div.field-row #{ "field-row-" (index) } {
                div.row {
                    div {
                        label for={ "field-" (index) "-label" } { "Label" }
                        input id={ "field-" (index) "-label" } type="text" name={ "fields[" (index) "][label]" } value=(text("label"));
                        (field_errors(errors, &format!("{path}.label")))
                    }
                    div {
                        label for={ "field-" (index) "-key" } { "Key" }
                        input id={ "field-" (index) "-key" } type="text" name={ "fields[" (index) "][key]" } value=(text("key"));
                        (field_errors(errors, &format!("{path}.key")))
                    }
                    div {
                        label for={ "field-" (index) "-type" } { "Type" }
                        select id={ "field-" (index) "-type" } name={ "fields[" (index) "][type]" } {
                            @for field_type in FieldType::ALL {
                                option value=(field_type.as_str()) selected[kind == field_type.as_str()] { (field_type.as_str()) }
                            }
                        }
                        (field_errors(errors, &format!("{path}.type")))
                    }
                }
                @if FieldType::parse(&kind).is_some_and(|kind| kind.has_options()) {
                    label for={ "field-" (index) "-options" } { "Options" }
                    input id={ "field-" (index) "-options" } type="text" name={ "fields[" (index) "][options]" } value=(options.join(", ")) placeholder="one, two, three";
                    (field_errors(errors, &format!("{path}.options")))
                }
                (field_errors(errors, &path))
                div.tools {
                    input type="hidden" name={ "fields[" (index) "][required]" } value="false";
                    label.inline for={ "field-" (index) "-required" } {
                        input id={ "field-" (index) "-required" } type="checkbox" name={ "fields[" (index) "][required]" } value="true" checked[required];
                        "Required"
                    }
                    button.small.secondary type="button" phx-click="move_up" phx-value-index=(index) disabled[!owner || index == 0] aria-label={ "Move " (text("label")) " up" } { "↑" }
                    button.small.secondary type="button" phx-click="move_down" phx-value-index=(index) disabled[!owner || index + 1 == fields.len()] aria-label={ "Move " (text("label")) " down" } { "↓" }
                    button.small.danger type="button" phx-click="remove_field" phx-value-index=(index) disabled[!owner] { "Remove" }
                }
            }
        }
        button.secondary type="button" phx-click="add_field" disabled[!owner] { "Add field" }
    }
}

/// The collaborative entity form.
pub struct EntityForm {
    context: ViewContext,
    form: Option<CollabForm<EntityKind>>,
    /// A save that would rename the entity or delete record values waits here for the owner's confirmation; any
    /// change of the form withdraws it (the consequences may differ).
    confirming: Option<SchemaChange>,
}

impl EntityForm {
    pub(super) fn new(context: ViewContext) -> Self {
        EntityForm { context, form: None, confirming: None }
    }
}

impl LiveView for EntityForm {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let id = id_param(params, "id").ok_or(MountError::NotFound)?;
            let entity = match self.context.store.find_entity(id).await {
                Ok(Some(entity)) => entity,
                Ok(None) => return Err(MountError::NotFound),
                Err(error) => return Err(super::unavailable(error)),
            };
            // The role as the store has it now: the socket may have authenticated an older one.
            let access = WriteAccess::load(&self.context.store, &session.user, Entity::KIND.permits())
                .await
                .map_err(super::unavailable)?;
            let can_edit = access.permitted();
            socket.set_title(format!("Edit {}", entity.display_name));
            let editing = EditingService::new(&self.context.content).engine().clone();
            let (target, editable) = (entity_target(entity.id), EntityKind { context: self.context.clone(), access });
            let form = CollabForm::mount(editable, entity, &editing, target, can_edit, session, socket).await?;
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
            if name != "save_confirmed" {
                self.confirming = None;
            }
            match name {
                // A save must not even become the draft unless the user may still write now.
                "save" | "save_confirmed" if !form.may_write(socket, max_age(name)).await => {}
                "save" => {
                    let values = entity_input(value, &form.values);
                    if form.publish(values, socket) {
                        // Ask first when the save would move the entity's URLs or delete record values.
                        match SchemaChange::of(&self.context.store, &form.row, &form.values).await {
                            Ok(change) if !change.is_empty() => self.confirming = Some(change),
                            Ok(_) => form.save(socket, &Resolutions::new(), None).await,
                            Err(error) => {
                                tracing::warn!(%error, "the consequences of an entity change could not be counted");
                                socket.put_flash(
                                    "error",
                                    "Not saved: the database is unavailable. Your changes are kept.",
                                );
                            }
                        }
                    }
                }
                // Confirms only a save that asked: a stale or forged confirmation does nothing.
                "save_confirmed" if form.is_owner() && self.confirming.take().is_some() => {
                    form.save(socket, &Resolutions::new(), None).await;
                }
                "save_confirmed" => {}
                "add_field" | "remove_field" | "move_up" | "move_down" if !form.may_draft(socket).await => {}
                "add_field" | "remove_field" | "move_up" | "move_down" => {
                    let mut values = form.values.clone();
                    if edit_fields(&mut values, name, value) || !form.is_owner() {
                        form.publish(values, socket);
                    }
                }
                // `draft`, `recover` and the conflict, kept-draft and baton events.
                other => {
                    form.handle_event(other, value, socket, |form, value| entity_input(value, &form.values)).await;
                }
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
        let (entity, values, errors) = (&form.row, &form.values, &form.errors);
        let read_only = !form.is_owner() || form.awaits_choice();
        let leave = form.leave_guard();
        let status = values.status.as_deref().unwrap_or("published");
        to_html(html! {
            div.crumbs { a href="/admin/entities" { "Entities" } " / " (entity.display_name) }
            h1 { "Edit entity " (entity.display_name) }
            (form.member.bar())
            div.card #entity-editor data-lb-region {
                (form.kept_offer())
                (form.conflict_panel())
                form #entity-form phx-change="draft" phx-submit="save" phx-auto-recover="recover" novalidate
                    data-lb-confirm-leave=[leave.0] data-lb-unsaved[leave.1] {
                    fieldset disabled[read_only] {
                        (form.version_field())
                        div.grid2 {
                            div {
                                label for="entity-display-name" { "Display name" }
                                input #entity-display-name type="text" name="display_name" value=(values.display_name);
                                (field_errors(errors, "display_name"))
                            }
                            div {
                                label for="entity-display-name-plural" { "Plural name" }
                                input #entity-display-name-plural type="text" name="display_name_plural" value=(values.display_name_plural);
                                (field_errors(errors, "display_name_plural"))
                            }
                        }
                        div.grid2 {
                            div {
                                label for="entity-name" { "Machine name" }
                                input #entity-name type="text" name="name" value=(values.name.as_deref().unwrap_or(""));
                                (field_errors(errors, "name"))
                            }
                            div {
                                label for="entity-status" { "Status" }
                                select #entity-status name="status" {
                                    @for option in ["published", "draft", "archived"] {
                                        option value=(option) selected[status == option] { (option) }
                                    }
                                }
                            }
                        }
                        label for="entity-description" { "Description" }
                        textarea #entity-description name="description" { (values.description.as_deref().unwrap_or("")) }
                        h2.section-head { "Fields" }
                        (field_errors(errors, "fields_definition"))
                        div #field-builder { (field_rows(values, errors, !read_only)) }
                        // Beside Save, where the eyes are when it asks.
                        @if let Some(change) = &self.confirming { (change.panel()) }
                        div.actions {
                            button type="submit" { "Save" }
                            (form.save_status())
                            a href={ "/admin/entities/" (entity.name) "/data" } { "Records" }
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use livebaton_web::live::decode_form;

    use super::*;

    #[test]
    fn field_rows_are_read_in_index_order() {
        let form = Value::Object(decode_form(
            "display_name=Post&display_name_plural=Posts&name=post&status=draft\
             &fields%5B1%5D%5Bkey%5D=tags&fields%5B1%5D%5Btype%5D=checkbox&fields%5B1%5D%5Blabel%5D=Tags\
             &fields%5B1%5D%5Boptions%5D=a%2C+b%0Ac&fields%5B1%5D%5Brequired%5D=false\
             &fields%5B0%5D%5Bkey%5D=body&fields%5B0%5D%5Btype%5D=text&fields%5B0%5D%5Blabel%5D=Body\
             &fields%5B0%5D%5Brequired%5D=false&fields%5B0%5D%5Brequired%5D=true",
        ));
        let input = entity_input(&form, &EntityInput::default());
        assert_eq!(input.display_name, "Post");
        assert_eq!(input.status.as_deref(), Some("draft"));
        assert_eq!(input.fields_definition.len(), 2);
        assert_eq!(input.fields_definition[0]["key"], "body");
        assert_eq!(input.fields_definition[0]["required"], true);
        assert_eq!(input.fields_definition[1]["options"], json!(["a", "b", "c"]));
        assert_eq!(input.fields_definition[1]["required"], false);
    }
}
