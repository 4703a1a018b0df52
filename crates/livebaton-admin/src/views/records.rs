//! `/admin/entities/{name}/data` (the live list of an entity's records) and `/admin/entities/{name}/data/new`.

use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use livebaton_content::{RecordInput, ValidationErrors};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::html;
use serde_json::{Map, Value};

use super::ViewContext;
use super::fields::{record_input, record_inputs};
use super::markup::{role_of, status_badge, str_param, to_html, user_id_of};
use crate::accounts::Role;
use crate::content::ContentError;
use crate::live::{WriteAccess, check_before_write};
use crate::storage::{Entity, Record};

/// Loads the entity named by the `entity` param, or refuses the mount.
pub(super) async fn entity_of(context: &ViewContext, params: &Map<String, Value>) -> Result<Entity, MountError> {
    let name = str_param(params, "entity").ok_or(MountError::NotFound)?;
    match context.store.find_entity_by_name(name).await {
        Ok(Some(entity)) => Ok(entity),
        Ok(None) => Err(MountError::NotFound),
        Err(error) => Err(super::unavailable(error)),
    }
}

/// The live list of one entity's records.
pub struct RecordList {
    context: ViewContext,
    entity: Option<Entity>,
    records: Vec<Record>,
    can_edit: bool,
}

impl RecordList {
    pub(super) fn new(context: ViewContext) -> Self {
        RecordList { context, entity: None, records: Vec::new(), can_edit: false }
    }

    async fn load(&mut self, socket: &mut LiveSocket) {
        let Some(entity) = &self.entity else { return };
        match self.context.store.list_records(entity.id).await {
            Ok(records) => self.records = records,
            Err(error) => {
                tracing::error!(%error, "records not listed");
                socket.put_flash("error", "The list could not be refreshed: the database is unavailable.");
            }
        }
    }
}

impl LiveView for RecordList {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let entity = entity_of(&self.context, params).await?;
            self.can_edit = role_of(session).is_some_and(|role| role.can_edit_records());
            socket.subscribe(&crate::content::events::entity_data_topic(self.context.content.events(), entity.id));
            socket.set_title(entity.display_name_plural.clone());
            self.entity = Some(entity);
            self.load(socket).await;
            Ok(())
        })
    }

    fn handle_info<'a>(&'a mut self, _message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(self.load(socket))
    }

    fn render(&self) -> Html {
        let Some(entity) = &self.entity else { return Html::default() };
        let base = format!("/admin/entities/{}/data", entity.name);
        to_html(html! {
            div.crumbs { a href="/admin/entities" { "Entities" } " / " (entity.display_name_plural) }
            div.page-head {
                h1 { (entity.display_name_plural) }
                div.actions {
                    a href={ "/admin/entities/" (entity.name) "/trash" } { "Trash" }
                    @if self.can_edit { a.button href={ (base) "/new" } { "New " (entity.display_name) } }
                }
            }
            div.card #record-list data-lb-region {
                @if self.records.is_empty() {
                    p.empty { "No " (entity.display_name_plural) " yet." }
                } @else {
                    table.stack {
                        thead { tr { th { "Title" } th { "Slug" } th { "Status" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for record in &self.records {
                                tr #{ "record-" (record.id) } {
                                    td data-label="Title" { a href={ (base) "/" (record.id) } { (record.title) } }
                                    td data-label="Slug" { code.slug title=(record.slug) { (record.slug) } }
                                    td data-label="Status" { (status_badge(record.status)) }
                                    td.row-actions { @if self.can_edit { a href={ (base) "/" (record.id) "/edit" } aria-label={ "Edit " (record.title) } { "Edit" } } }
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

/// The form creating a record.
pub struct NewRecord {
    context: ViewContext,
    entity: Option<Entity>,
    form: Value,
    values: RecordInput,
    errors: ValidationErrors,
    can_edit: bool,
    /// The user's right to create, re-checked against the store right before the create.
    access: Option<WriteAccess>,
    actor: Option<i64>,
}

impl NewRecord {
    pub(super) fn new(context: ViewContext) -> Self {
        NewRecord {
            context,
            entity: None,
            form: Value::Object(Map::new()),
            values: RecordInput::default(),
            errors: ValidationErrors::default(),
            can_edit: false,
            access: None,
            actor: None,
        }
    }
}

impl LiveView for NewRecord {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let entity = entity_of(&self.context, params).await?;
            // The role as the store has it now: the socket may have authenticated an older one.
            self.access = WriteAccess::load(&self.context.store, &session.user, Role::can_edit_records).await.ok();
            self.can_edit = self.access.as_ref().is_some_and(WriteAccess::permitted);
            self.actor = user_id_of(session);
            for field in &entity.fields_definition {
                if let Some(default) = &field.default {
                    self.values.data.insert(field.key.clone(), default.clone());
                }
            }
            socket.set_title(format!("New {}", entity.display_name));
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
            let Some(entity) = &self.entity else { return };
            self.form = value.clone();
            self.values = record_input(&entity.fields_definition, &self.form);
            if name != "save" {
                return;
            }
            if !self.can_edit {
                socket.put_flash("error", "Your role may not create records.");
                return;
            }
            if let Err(refusal) = check_before_write(&mut self.access, &self.context.store).await {
                socket.put_flash("error", format!("{} Your input is kept.", refusal.message()));
                return;
            }
            match self.context.content.create_record(entity, &self.values, self.actor).await {
                Ok(record) => {
                    socket.put_flash("info", format!("“{}” created.", record.title));
                    socket.redirect(format!("/admin/entities/{}/data/{}", entity.name, record.id));
                }
                Err(ContentError::Invalid(errors)) => self.errors = errors,
                Err(error) => socket.put_flash("error", format!("{error}. Your input is kept.")),
            }
        })
    }

    fn render(&self) -> Html {
        let Some(entity) = &self.entity else { return Html::default() };
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href={ "/admin/entities/" (entity.name) "/data" } { (entity.display_name_plural) } " / New"
            }
            h1 { "New " (entity.display_name) }
            div.card #record-new data-lb-region {
                @if !self.can_edit { p.notice.warn { "Your role may not create records." } }
                form #record-form phx-change="validate" phx-submit="save" novalidate {
                    fieldset disabled[!self.can_edit] {
                        (record_inputs(&entity.fields_definition, &self.values, &self.errors))
                        div.actions { button type="submit" { "Save" } }
                    }
                }
            }
        })
    }
}
