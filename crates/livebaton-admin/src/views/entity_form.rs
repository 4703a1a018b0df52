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
use livebaton_content::{EntityInput, FieldType, ValidationErrors, field_key_from};
use livebaton_web::channel::BoxFuture;
use livebaton_web::collab::{CollabForm, ConflictValues, Editable, value_html};
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::ViewContext;
use super::markup::{Invalid, field_errors, form_text, id_param, to_html};
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

/// A field-builder action as the view applies it: which control gets focus once the rows are re-rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FocusAfter {
    /// The label of the row at this index (an added row; the row after a removed one).
    Label(usize),
    /// The "Add field" button (the last row was removed).
    AddButton,
    /// The ↑ (true) or ↓ (false) button of the row at this index: the moved row, so a second press moves it again
    /// instead of moving the row that took its place back.
    Move(usize, bool),
}

/// Applies a field-builder action (`add_field`, `remove_field`, `move_up`, `move_down` with `index`) to `values`;
/// `None` when it changes nothing, else where focus goes. An added field starts with an empty label and key: the key
/// follows the label as it is typed (see [`follow_labels`]).
fn edit_fields(values: &mut EntityInput, action: &str, value: &Value) -> Option<FocusAfter> {
    let fields = &mut values.fields_definition;
    let index = value.get("index").and_then(Value::as_str).and_then(|index| index.parse::<usize>().ok());
    let focus = match (action, index) {
        ("add_field", _) if fields.len() < livebaton_content::MAX_FIELDS => {
            fields.push(json!({"type": "text", "key": "", "label": "", "required": false}));
            FocusAfter::Label(fields.len() - 1)
        }
        ("remove_field", Some(index)) if index < fields.len() => {
            fields.remove(index);
            if fields.is_empty() { FocusAfter::AddButton } else { FocusAfter::Label(index.min(fields.len() - 1)) }
        }
        ("move_up", Some(index)) if index > 0 && index < fields.len() => {
            fields.swap(index, index - 1);
            // At the top ↑ is disabled: ↓ of the same row.
            FocusAfter::Move(index - 1, index - 1 > 0)
        }
        ("move_down", Some(index)) if index + 1 < fields.len() => {
            fields.swap(index, index + 1);
            FocusAfter::Move(index + 1, index + 2 == fields.len())
        }
        _ => return None,
    };
    Some(focus)
}

/// New fields' keys follow their labels: a row whose key is not one of the saved entity's (`saved_keys`), and which
/// was empty or still what the previous label made ([`field_key_from`]), gets the key of its new label, unless this
/// very change edited the key. Saved fields never change key by themselves: a key names stored record values.
fn follow_labels(values: &mut EntityInput, previous: &EntityInput, saved_keys: &[String]) {
    let text = |field: &Value, name: &str| field.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    for (field, before) in values.fields_definition.iter_mut().zip(&previous.fields_definition) {
        let (key, before_key, before_label) = (text(field, "key"), text(before, "key"), text(before, "label"));
        let was_derived = before_key.is_empty() || before_key == field_key_from(&before_label);
        if key != before_key || !was_derived || saved_keys.contains(&key) {
            continue;
        }
        if let Some(object) = field.as_object_mut() {
            let label = object.get("label").and_then(Value::as_str).unwrap_or("");
            let derived = field_key_from(label);
            object.insert("key".into(), json!(derived));
        }
    }
}

/// Reads a change or a save of the entity form: the submitted values, with new fields' keys following their labels.
fn read_entity_form(form: &Value, current: &EntityInput, saved: &Entity) -> EntityInput {
    let mut values = entity_input(form, current);
    let saved_keys: Vec<String> = saved.fields_definition.iter().map(|field| field.key.clone()).collect();
    follow_labels(&mut values, current, &saved_keys);
    values
}

/// The field builder's rows, editable only by the owner. Each row is a fieldset whose legend names it ("Field 2:
/// Body"); its inputs carry their errors (`aria-invalid`, `aria-describedby`), so "check the highlighted fields"
/// shows where; `focus` marks the control an action of this user moved focus to (`data-lb-autofocus`).
fn field_rows(values: &EntityInput, errors: &ValidationErrors, owner: bool, focus: Option<FocusAfter>) -> Markup {
    let fields = &values.fields_definition;
    html! {
        @if fields.is_empty() { p.empty { "No fields yet." } }
        @for (index, field) in fields.iter().enumerate() {
            @let text = |name: &str| field.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
            @let kind = text("type");
            @let label = text("label");
            @let named = if label.trim().is_empty() { format!("field {}", index + 1) } else { label.clone() };
            @let required = field.get("required").and_then(Value::as_bool).unwrap_or(false);
            @let options: Vec<&str> = field.get("options").and_then(Value::as_array).map(|o| o.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            @let path = |part: &str| format!("fields_definition[{index}].{part}");
            @let row_path = format!("fields_definition[{index}]");
            @let row_invalid = ["label", "key", "type", "options", "required", "default"].iter().any(|part| !errors.get(&path(part)).is_empty()) || !errors.get(&row_path).is_empty();
            @let id = |part: &str| format!("field-{index}-{part}");
            @let input = |part: &str| Invalid::of(errors, &path(part));
            fieldset.field-row.has-error[row_invalid] #{ "field-row-" (index) } {
                legend { "Field " (index + 1) ": " (if label.trim().is_empty() { "(no label yet)" } else { &label }) }
                div.row {
                    div {
                        @let invalid = input("label");
                        label.required for=(id("label")) { "Label" }
                        input id=(id("label")) type="text" name={ "fields[" (index) "][label]" } value=(label) required
                            aria-invalid=[invalid.invalid] aria-describedby=[invalid.described_by]
                            data-lb-autofocus[focus == Some(FocusAfter::Label(index))];
                        (field_errors(errors, &path("label")))
                    }
                    div {
                        @let invalid = input("key");
                        label.required for=(id("key")) { "Key" }
                        input id=(id("key")) type="text" name={ "fields[" (index) "][key]" } value=(text("key")) required
                            aria-invalid=[invalid.invalid] aria-describedby=[invalid.described_by];
                        (field_errors(errors, &path("key")))
                    }
                    div {
                        @let invalid = input("type");
                        label for=(id("type")) { "Type" }
                        select id=(id("type")) name={ "fields[" (index) "][type]" } aria-invalid=[invalid.invalid] aria-describedby=[invalid.described_by] {
                            @for field_type in FieldType::ALL {
                                option value=(field_type.as_str()) selected[kind == field_type.as_str()] { (field_type.as_str()) }
                            }
                        }
                        (field_errors(errors, &path("type")))
                    }
                }
                @if FieldType::parse(&kind).is_some_and(|kind| kind.has_options()) {
                    @let invalid = input("options");
                    label.required for=(id("options")) { "Options" }
                    input id=(id("options")) type="text" name={ "fields[" (index) "][options]" } value=(options.join(", ")) placeholder="one, two, three" required
                        aria-invalid=[invalid.invalid] aria-describedby=[invalid.described_by];
                    (field_errors(errors, &path("options")))
                }
                (field_errors(errors, &path("required")))
                (field_errors(errors, &path("default")))
                (field_errors(errors, &row_path))
                div.tools {
                    input type="hidden" name={ "fields[" (index) "][required]" } value="false";
                    label.inline for=(id("required")) {
                        input id=(id("required")) type="checkbox" name={ "fields[" (index) "][required]" } value="true" checked[required];
                        "Required"
                    }
                    button.small.secondary type="button" phx-click="move_up" phx-value-index=(index) disabled[!owner || index == 0]
                        aria-label={ "Move " (named) " up" } data-lb-autofocus[focus == Some(FocusAfter::Move(index, true))] { "↑" }
                    button.small.secondary type="button" phx-click="move_down" phx-value-index=(index) disabled[!owner || index + 1 == fields.len()]
                        aria-label={ "Move " (named) " down" } data-lb-autofocus[focus == Some(FocusAfter::Move(index, false))] { "↓" }
                    button.small.danger type="button" phx-click="remove_field" phx-value-index=(index) disabled[!owner]
                        aria-label={ "Remove " (named) } { "Remove" }
                }
            }
        }
        button.secondary type="button" phx-click="add_field" disabled[!owner] data-lb-autofocus[focus == Some(FocusAfter::AddButton)] { "Add field" }
    }
}

/// The collaborative entity form.
pub struct EntityForm {
    context: ViewContext,
    form: Option<CollabForm<EntityKind>>,
    /// A save that would rename the entity or delete record values waits here for the owner's confirmation; any
    /// change of the form withdraws it (the consequences may differ).
    confirming: Option<SchemaChange>,
    /// Where this user's last field-builder action moved focus; any later event of theirs forgets it (the client
    /// acts on it only in the reply to that action).
    focus: Option<FocusAfter>,
}

impl EntityForm {
    pub(super) fn new(context: ViewContext) -> Self {
        EntityForm { context, form: None, confirming: None, focus: None }
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
            self.focus = None;
            match name {
                // A save must not even become the draft unless the user may still write now.
                "save" | "save_confirmed" if !form.may_write(socket, max_age(name)).await => {}
                "save" => {
                    let values = read_entity_form(value, &form.values, &form.row);
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
                    let focus = edit_fields(&mut values, name, value);
                    if focus.is_some() || !form.is_owner() {
                        form.publish(values, socket);
                    }
                    self.focus = focus.filter(|_| form.is_owner());
                }
                // `draft`, `recover` and the conflict, kept-draft and baton events.
                other => {
                    form.handle_event(other, value, socket, |form, value| {
                        read_entity_form(value, &form.values, &form.row)
                    })
                    .await;
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
                        div #field-builder { (field_rows(values, errors, !read_only, self.focus)) }
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

    fn with_fields(fields: &[(&str, &str)]) -> EntityInput {
        EntityInput {
            fields_definition: fields
                .iter()
                .map(|(key, label)| json!({"type": "text", "key": key, "label": label, "required": false}))
                .collect(),
            ..EntityInput::default()
        }
    }

    fn keys(values: &EntityInput) -> Vec<&str> {
        values.fields_definition.iter().map(|field| field["key"].as_str().unwrap_or("")).collect()
    }

    /// A moved row keeps focus (so pressing ↑ again moves it again), an added row's label gets it, a removed row
    /// passes it to the row that took its place.
    #[test]
    fn focus_follows_the_row_an_action_moved_added_or_removed() {
        let mut values = with_fields(&[("a", "A"), ("b", "B"), ("c", "C")]);
        let at = |index: &str| json!({ "index": index });
        assert_eq!(edit_fields(&mut values, "move_up", &at("2")), Some(FocusAfter::Move(1, true)));
        assert_eq!(keys(&values), ["a", "c", "b"]);
        assert_eq!(edit_fields(&mut values, "move_up", &at("1")), Some(FocusAfter::Move(0, false)));
        assert_eq!(keys(&values), ["c", "a", "b"]);
        // At the bottom ↓ is disabled: focus goes to ↑ of the moved row.
        assert_eq!(edit_fields(&mut values, "move_down", &at("1")), Some(FocusAfter::Move(2, true)));
        assert_eq!(keys(&values), ["c", "b", "a"]);
        assert_eq!(edit_fields(&mut values, "move_up", &at("0")), None);
        assert_eq!(edit_fields(&mut values, "remove_field", &at("2")), Some(FocusAfter::Label(1)));
        assert_eq!(edit_fields(&mut values, "add_field", &Value::Null), Some(FocusAfter::Label(2)));
        assert_eq!(keys(&values), ["c", "b", ""], "an added field starts without a key");
        for _ in 0..3 {
            edit_fields(&mut values, "remove_field", &at("0"));
        }
        assert!(values.fields_definition.is_empty());

        let html = field_rows(
            &with_fields(&[("a", "A"), ("b", "B")]),
            &ValidationErrors::default(),
            true,
            Some(FocusAfter::Move(0, false)),
        )
        .into_string();
        assert_eq!(html.matches("data-lb-autofocus").count(), 1, "{html}");
        assert!(html.contains(r#"aria-label="Move A down" data-lb-autofocus"#), "{html}");
    }

    /// New fields' keys follow their labels while typed; an edited key, or a saved field's key, stays.
    #[test]
    fn new_keys_follow_labels_until_edited_and_saved_keys_never() {
        let previous = with_fields(&[
            ("title", "Title"),
            ("", ""),
            ("publication_date", "Publication date"),
            ("own", "Something"),
        ]);
        let mut values = with_fields(&[
            ("title", "Headline"),
            ("", "Summary"),
            ("publication_date", "Published on"),
            ("own", "Mine"),
        ]);
        follow_labels(&mut values, &previous, &["title".to_owned()]);
        assert_eq!(keys(&values), ["title", "summary", "published_on", "own"]);

        // The user typed a key of their own: it is kept, even as the label changes.
        let previous = with_fields(&[("summary", "Summary")]);
        let mut values = with_fields(&[("short", "Summary")]);
        follow_labels(&mut values, &previous, &[]);
        assert_eq!(keys(&values), ["short"]);
    }

    /// Every refused value of a row is on that row: the input is marked invalid and names its message, the row is
    /// highlighted, and the remove button names its field.
    #[test]
    fn a_rows_errors_are_shown_on_that_row() {
        let values = with_fields(&[("body", "Body"), ("body", "")]);
        let errors = livebaton_content::validate_entity(&EntityInput {
            display_name: "Post".into(),
            display_name_plural: "Posts".into(),
            ..values.clone()
        })
        .unwrap_err();
        assert!(!errors.get("fields_definition[1].key").is_empty(), "duplicate key: {errors:?}");
        assert!(!errors.get("fields_definition[1].label").is_empty(), "empty label: {errors:?}");
        let html = field_rows(&values, &errors, true, None).into_string();
        let row = |index: usize| {
            let start = html.find(&format!(r#"id="field-row-{index}""#)).unwrap();
            let end = html[start..].find("</fieldset>").map_or(html.len(), |end| start + end);
            html[start..end].to_owned()
        };
        let (first, second) = (row(0), row(1));
        assert!(!first.contains("aria-invalid"), "{first}");
        assert!(
            second.contains(r#"aria-invalid="true" aria-describedby="error-fields-definition-1--key""#),
            "{second}"
        );
        assert!(second.contains(r#"id="error-fields-definition-1--key""#), "{second}");
        assert!(second.contains(r#"aria-describedby="error-fields-definition-1--label""#), "{second}");
        assert!(second.contains("is already used by another field"), "{second}");
        assert!(html.contains(r#"<fieldset class="field-row has-error" id="field-row-1">"#), "{html}");
        assert!(first.contains("<legend>Field 1: Body</legend>"), "{first}");
        assert!(second.contains("<legend>Field 2: (no label yet)</legend>"), "{second}");
        assert!(first.contains(r#"aria-label="Remove Body""#), "{first}");
        assert!(second.contains(r#"aria-label="Remove field 2""#), "{second}");
    }
}
