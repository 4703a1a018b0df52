//! `/admin/entities/{id}/edit`: the collaborative entity form with its field builder (add, edit, remove, reorder
//! fields; type, key, label, required, options). Same baton rules as the record form: one owner, live spectators,
//! fenced saves.
//!
//! Field rows are named `fields[<n>][type|key|label|required|options]`; options are typed one per line or comma
//! separated. The builder's buttons work on the values of the last change, which the client sends before the click.

use std::collections::BTreeMap;
use std::sync::Arc;

use livebaton::editing::{Draft, EditTarget};
use livebaton::pubsub::Broadcast;
use livebaton_content::{EntityInput, FieldType, ValidationErrors};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::ViewContext;
use super::collab::{Collab, SessionEvent, refused};
use super::markup::{field_errors, form_text, id_param, role_of, to_html};
use crate::content::ContentError;
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

/// The collaborative entity form.
pub struct EntityForm {
    context: ViewContext,
    entity: Option<Entity>,
    values: EntityInput,
    /// The row version `values` started from (the base of a new draft; see the record form).
    values_version: i64,
    errors: ValidationErrors,
    conflict: Option<Entity>,
    collab: Option<Collab>,
    user_name: String,
}

impl EntityForm {
    pub(super) fn new(context: ViewContext) -> Self {
        EntityForm {
            context,
            entity: None,
            values: EntityInput::default(),
            values_version: 0,
            errors: ValidationErrors::default(),
            conflict: None,
            collab: None,
            user_name: String::new(),
        }
    }

    fn show_draft(&mut self, draft: &Draft) {
        if let Ok(values) = serde_json::from_value::<EntityInput>(draft.params.clone()) {
            self.values = values;
            self.values_version = draft.base_lock_version;
            self.errors = ValidationErrors::default();
        }
    }

    /// Shows the row as stored.
    fn show_row(&mut self, row: Entity) {
        self.values = entity_values(&row);
        self.values_version = row.lock_version;
        self.errors = ValidationErrors::default();
        self.entity = Some(row);
    }

    async fn reload(&self) -> Option<Entity> {
        let id = self.entity.as_ref()?.id;
        self.context.store.find_entity(id).await.ok().flatten()
    }

    fn is_owner(&self) -> bool {
        self.collab.as_ref().is_some_and(Collab::is_owner)
    }

    /// Publishes the current values as the draft (owner only).
    fn publish(&mut self, socket: &mut LiveSocket) -> bool {
        let Some(collab) = &self.collab else { return false };
        if !collab.is_owner() {
            socket.put_flash("error", collab.read_only_message());
            return false;
        }
        match collab.update_draft(self.values_version, serde_json::to_value(&self.values).unwrap_or(Value::Null)) {
            Ok(_) => true,
            Err(not_owner) => {
                socket.put_flash("error", refused(&not_owner));
                false
            }
        }
    }

    /// Applies a builder action to the field rows, then publishes the draft.
    fn edit_fields(&mut self, name: &str, value: &Value, socket: &mut LiveSocket) {
        if !self.is_owner() {
            if let Some(collab) = &self.collab {
                socket.put_flash("error", collab.read_only_message());
            }
            return;
        }
        let fields = &mut self.values.fields_definition;
        let index = value.get("index").and_then(Value::as_str).and_then(|index| index.parse::<usize>().ok());
        match (name, index) {
            ("add_field", _) if fields.len() < 100 => {
                let n = fields.len() + 1;
                fields.push(json!({"type": "text", "key": format!("field_{n}"), "label": format!("Field {n}"), "required": false}));
            }
            ("remove_field", Some(index)) if index < fields.len() => {
                fields.remove(index);
            }
            ("move_up", Some(index)) if index > 0 && index < fields.len() => fields.swap(index, index - 1),
            ("move_down", Some(index)) if index + 1 < fields.len() => fields.swap(index, index + 1),
            _ => return,
        }
        self.publish(socket);
    }

    async fn save(&mut self, socket: &mut LiveSocket, resolved: Option<i64>) {
        let (Some(entity), Some(collab)) = (&self.entity, &self.collab) else { return };
        let token = match collab.fence() {
            Ok(token) => token,
            Err(not_owner) => return socket.put_flash("error", refused(&not_owner)),
        };
        let base = resolved.or(token.base_lock_version()).unwrap_or(self.values_version);
        match self.context.content.update_entity(entity.id, base, &self.values, Some(&token), &self.user_name).await {
            Ok(saved) => {
                self.show_row(saved);
                self.conflict = None;
                socket.put_flash("info", "Saved.");
            }
            Err(ContentError::Invalid(errors)) => {
                self.errors = errors;
                socket.put_flash("error", "Not saved: check the highlighted fields. Your changes are kept.");
            }
            Err(ContentError::EntityConflict(current)) => {
                self.conflict = Some(*current);
                socket.put_flash("error", "Not saved: someone else changed this entity. Your changes are kept.");
            }
            Err(ContentError::NotOwner(not_owner)) => socket.put_flash("error", refused(&not_owner)),
            Err(ContentError::NotFound) => {
                socket.put_flash("error", "This entity was deleted in another session.");
                socket.redirect("/admin/entities");
            }
            Err(error) => socket.put_flash("error", format!("{error}. Your changes are kept; try again.")),
        }
    }

    fn field_rows(&self) -> Markup {
        let fields = &self.values.fields_definition;
        let owner = self.is_owner();
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
                            (field_errors(&self.errors, &format!("{path}.label")))
                        }
                        div {
                            label for={ "field-" (index) "-key" } { "Key" }
                            input id={ "field-" (index) "-key" } type="text" name={ "fields[" (index) "][key]" } value=(text("key"));
                            (field_errors(&self.errors, &format!("{path}.key")))
                        }
                        div {
                            label for={ "field-" (index) "-type" } { "Type" }
                            select id={ "field-" (index) "-type" } name={ "fields[" (index) "][type]" } {
                                @for field_type in FieldType::ALL {
                                    option value=(field_type.as_str()) selected[kind == field_type.as_str()] { (field_type.as_str()) }
                                }
                            }
                            (field_errors(&self.errors, &format!("{path}.type")))
                        }
                    }
                    @if FieldType::parse(&kind).is_some_and(|kind| kind.has_options()) {
                        label for={ "field-" (index) "-options" } { "Options" }
                        input id={ "field-" (index) "-options" } type="text" name={ "fields[" (index) "][options]" } value=(options.join(", ")) placeholder="one, two, three";
                        (field_errors(&self.errors, &format!("{path}.options")))
                    }
                    (field_errors(&self.errors, &path))
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
                Err(error) => return Err(MountError::Failed(format!("unavailable: {error}"))),
            };
            let can_edit = role_of(session).is_some_and(|role| role.can_manage_entities());
            self.user_name = session.user.name.clone();
            self.values = entity_values(&entity);
            self.values_version = entity.lock_version;
            socket.set_title(format!("Edit {}", entity.display_name));
            let mut collab =
                Collab::new(self.context.engine.editing.clone(), EditTarget::entity(entity.id), session, can_edit);
            let draft = collab.join(session, socket).await?;
            if let Some(draft) = draft {
                self.show_draft(&draft);
            }
            self.collab = Some(collab);
            self.entity = Some(entity);
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
                "draft" | "save" => {
                    if !self.is_owner() {
                        if let Some(collab) = &self.collab {
                            socket.put_flash("error", collab.read_only_message());
                        }
                        return;
                    }
                    self.values = entity_input(value, &self.values);
                    if self.publish(socket) && name == "save" {
                        self.save(socket, None).await;
                    }
                }
                "add_field" | "remove_field" | "move_up" | "move_down" => self.edit_fields(name, value, socket),
                "overwrite" => {
                    let resolved = self.conflict.as_ref().map(|current| current.lock_version);
                    self.save(socket, resolved).await;
                }
                "discard" => {
                    if let (true, Some(current)) = (self.is_owner(), self.conflict.take()) {
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
                _ => {}
            }
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(collab) = &mut self.collab else { return };
            match collab.handle(message) {
                SessionEvent::Nothing | SessionEvent::Promoted(None) => {}
                SessionEvent::Draft(draft) | SessionEvent::Promoted(Some(draft)) => self.show_draft(&draft),
                SessionEvent::DraftEnded => {
                    if let Some(fresh) = self.reload().await {
                        self.show_row(fresh);
                    }
                }
                SessionEvent::Saved { by } => {
                    // As on the record form: unsaved changes stay (their save will conflict), otherwise the new row.
                    let keeps_changes = collab.is_owner() && collab.has_draft();
                    if by != self.user_name {
                        collab.notice = Some(format!("Saved by {by}."));
                    }
                    if let Some(fresh) = self.reload().await {
                        if keeps_changes {
                            self.entity = Some(fresh);
                        } else {
                            self.show_row(fresh);
                        }
                    }
                }
                SessionEvent::Deleted => {
                    socket.put_flash("error", "This entity was deleted in another session.");
                    socket.redirect("/admin/entities");
                }
            }
        })
    }

    fn render(&self) -> Html {
        let (Some(entity), Some(collab)) = (&self.entity, &self.collab) else { return Html::default() };
        let read_only = !collab.is_owner();
        let status = self.values.status.as_deref().unwrap_or("published");
        to_html(html! {
            div.crumbs { a href="/admin/entities" { "Entities" } " / " (entity.display_name) }
            h1 { "Edit entity " (entity.display_name) }
            (collab.bar())
            div.card #entity-editor data-lb-region {
                @if let Some(current) = &self.conflict {
                    div.conflict #conflict role="alert" {
                        strong { "Someone else saved this entity (version " (current.lock_version) ") while you were editing." }
                        p { "Saved: “" (current.display_name) "”, " (current.fields_definition.len()) " fields." }
                        div.actions {
                            button.small type="button" phx-click="overwrite" { "Save mine over it" }
                            button.small.secondary type="button" phx-click="discard" { "Discard mine, load theirs" }
                        }
                    }
                }
                form #entity-form phx-change="draft" phx-submit="save" novalidate {
                    fieldset disabled[read_only] {
                        div.grid2 {
                            div {
                                label for="entity-display-name" { "Display name" }
                                input #entity-display-name type="text" name="display_name" value=(self.values.display_name);
                                (field_errors(&self.errors, "display_name"))
                            }
                            div {
                                label for="entity-display-name-plural" { "Plural name" }
                                input #entity-display-name-plural type="text" name="display_name_plural" value=(self.values.display_name_plural);
                                (field_errors(&self.errors, "display_name_plural"))
                            }
                        }
                        div.grid2 {
                            div {
                                label for="entity-name" { "Machine name" }
                                input #entity-name type="text" name="name" value=(self.values.name.as_deref().unwrap_or(""));
                                (field_errors(&self.errors, "name"))
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
                        textarea #entity-description name="description" { (self.values.description.as_deref().unwrap_or("")) }
                        h2 style="margin-top: 1.5rem" { "Fields" }
                        (field_errors(&self.errors, "fields_definition"))
                        div #field-builder { (self.field_rows()) }
                        div.actions {
                            button type="submit" { "Save" }
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
