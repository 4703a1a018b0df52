//! `/admin/entities` (the live list of entity definitions) and `/admin/entities/new`.

use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use livebaton_content::{EntityInput, ValidationErrors};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::html;
use serde_json::{Map, Value};

use super::ViewContext;
use super::markup::{field_errors, form_text, role_of, status_badge, to_html, user_id_of};
use crate::accounts::Role;
use crate::content::ContentError;
use crate::live::{WriteAccess, check_before_write};
use crate::storage::Entity;

/// The live list of entities.
pub struct EntityList {
    context: ViewContext,
    entities: Vec<Entity>,
    can_manage: bool,
}

impl EntityList {
    pub(super) fn new(context: ViewContext) -> Self {
        EntityList { context, entities: Vec::new(), can_manage: false }
    }

    async fn load(&mut self, socket: &mut LiveSocket) {
        match self.context.store.list_entities().await {
            Ok(entities) => self.entities = entities,
            Err(error) => {
                tracing::error!(%error, "entities not listed");
                socket.put_flash("error", "The list could not be refreshed: the database is unavailable.");
            }
        }
    }
}

impl LiveView for EntityList {
    fn mount<'a>(
        &'a mut self,
        _params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            self.can_manage = role_of(session).is_some_and(|role| role.can_manage_entities());
            socket.subscribe(crate::content::events::ENTITIES);
            socket.set_title("Entities");
            self.load(socket).await;
            Ok(())
        })
    }

    fn handle_info<'a>(&'a mut self, _message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(self.load(socket))
    }

    fn render(&self) -> Html {
        to_html(html! {
            div.page-head {
                h1 { "Entities" }
                @if self.can_manage { a.button href="/admin/entities/new" { "New entity" } }
            }
            div.card #entity-list data-lb-region {
                @if self.entities.is_empty() {
                    p.empty { "No entities yet." }
                } @else {
                    table.stack {
                        thead { tr { th { "Entity" } th { "Name" } th { "Status" } th { "Fields" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for entity in &self.entities {
                                tr #{ "entity-" (entity.id) } {
                                    td data-label="Entity" { a href={ "/admin/entities/" (entity.name) "/data" } { (entity.display_name_plural) } }
                                    td data-label="Name" { code.slug title=(entity.name) { (entity.name) } }
                                    td data-label="Status" { (status_badge(entity.status)) }
                                    td data-label="Fields" { (entity.fields_definition.len()) }
                                    td.row-actions { a href={ "/admin/entities/" (entity.id) "/edit" } aria-label={ "Edit " (entity.display_name) } { "Edit" } }
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

/// The form creating an entity; fields are added on its edit page afterwards.
pub struct NewEntity {
    context: ViewContext,
    form: Value,
    errors: ValidationErrors,
    can_manage: bool,
    /// The user's right to create entities, re-checked against the store right before the create.
    access: Option<WriteAccess>,
    actor: Option<i64>,
}

impl NewEntity {
    pub(super) fn new(context: ViewContext) -> Self {
        NewEntity {
            context,
            form: Value::Object(Map::new()),
            errors: ValidationErrors::default(),
            can_manage: false,
            access: None,
            actor: None,
        }
    }

    fn input(&self) -> EntityInput {
        let optional = |name: &str| Some(form_text(&self.form, name)).filter(|text| !text.trim().is_empty());
        EntityInput {
            name: optional("name"),
            display_name: form_text(&self.form, "display_name"),
            display_name_plural: form_text(&self.form, "display_name_plural"),
            description: optional("description"),
            icon: None,
            status: optional("status"),
            fields_definition: Vec::new(),
            settings: None,
        }
    }

    async fn create(&mut self, socket: &mut LiveSocket) {
        if !self.can_manage {
            socket.put_flash("error", "Only admins can create entities.");
            return;
        }
        if let Err(refusal) = check_before_write(&mut self.access, &self.context.store).await {
            socket.put_flash("error", refusal.message());
            return;
        }
        match self.context.content.create_entity(&self.input(), self.actor).await {
            Ok(entity) => {
                socket.put_flash("info", format!("{} created. Now add its fields.", entity.display_name));
                socket.redirect(format!("/admin/entities/{}/edit", entity.id));
            }
            Err(ContentError::Invalid(errors)) => self.errors = errors,
            Err(error) => socket.put_flash("error", error.to_string()),
        }
    }
}

impl LiveView for NewEntity {
    fn mount<'a>(
        &'a mut self,
        _params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            // The role as the store has it now: the socket may have authenticated an older one.
            self.access = WriteAccess::load(&self.context.store, &session.user, Role::can_manage_entities).await.ok();
            self.can_manage = self.access.as_ref().is_some_and(WriteAccess::permitted);
            self.actor = user_id_of(session);
            socket.set_title("New entity");
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
            self.form = value.clone();
            match name {
                "validate" => self.errors = ValidationErrors::default(),
                "save" => self.create(socket).await,
                _ => {}
            }
        })
    }

    fn render(&self) -> Html {
        let disabled = !self.can_manage;
        let status = form_text(&self.form, "status");
        to_html(html! {
            div.crumbs { a href="/admin/entities" { "Entities" } " / New" }
            h1 { "New entity" }
            div.card #entity-new data-lb-region {
                @if disabled { p.notice.warn { "Only admins can create entities." } }
                form #new-entity-form phx-change="validate" phx-submit="save" novalidate {
                    fieldset disabled[disabled] {
                        label for="entity-display-name" { "Display name" }
                        input #entity-display-name type="text" name="display_name" value=(form_text(&self.form, "display_name")) placeholder="Blog post";
                        (field_errors(&self.errors, "display_name"))
                        label for="entity-display-name-plural" { "Plural name" }
                        input #entity-display-name-plural type="text" name="display_name_plural" value=(form_text(&self.form, "display_name_plural")) placeholder="Blog posts";
                        (field_errors(&self.errors, "display_name_plural"))
                        label for="entity-name" { "Machine name" }
                        input #entity-name type="text" name="name" value=(form_text(&self.form, "name")) placeholder="blog_post";
                        p.hint { "Lowercase letters, digits and _; derived from the display name when empty." }
                        (field_errors(&self.errors, "name"))
                        label for="entity-description" { "Description" }
                        textarea #entity-description name="description" { (form_text(&self.form, "description")) }
                        label for="entity-status" { "Status" }
                        select #entity-status name="status" {
                            @for option in ["published", "draft", "archived"] {
                                option value=(option) selected[status == option] { (option) }
                            }
                        }
                        (field_errors(&self.errors, "status"))
                        div.actions { button type="submit" { "Create entity" } a href="/admin/entities" { "Cancel" } }
                    }
                }
            }
        })
    }
}
