//! `/admin/entities/{name}/trash`: the entity's deleted records, live. Editors restore a record (it comes back with
//! its id, slug, version and data, and every list shows it again); admins delete one forever, after a confirmation
//! that says it cannot be undone.

use std::collections::HashMap;
use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::html;
use serde_json::{Map, Value};

use super::ViewContext;
use super::markup::{date_time, status_badge, to_html};
use super::records::entity_of;
use crate::accounts::Role;
use crate::live::{WriteAccess, check_before_write};
use crate::storage::{Entity, Record};

/// The live trash of one entity.
pub struct Trash {
    context: ViewContext,
    entity: Option<Entity>,
    records: Vec<Record>,
    /// Names of the users who deleted the records listed, by id.
    deleted_by: HashMap<i64, String>,
    /// The right to restore (editors and admins), re-checked before each restore.
    restore_access: Option<WriteAccess>,
    /// The right to delete forever (admins), re-checked before each purge.
    purge_access: Option<WriteAccess>,
    /// The record whose "delete forever" waits for its confirmation.
    confirming: Option<i64>,
}

fn is_admin(role: &Role) -> bool {
    *role == Role::Admin
}

impl Trash {
    pub(super) fn new(context: ViewContext) -> Self {
        Trash {
            context,
            entity: None,
            records: Vec::new(),
            deleted_by: HashMap::new(),
            restore_access: None,
            purge_access: None,
            confirming: None,
        }
    }

    fn can_restore(&self) -> bool {
        self.restore_access.as_ref().is_some_and(WriteAccess::permitted)
    }

    fn can_purge(&self) -> bool {
        self.purge_access.as_ref().is_some_and(WriteAccess::permitted)
    }

    async fn load(&mut self, socket: &mut LiveSocket) {
        let Some(entity) = &self.entity else { return };
        match self.context.store.list_trash(entity.id).await {
            Ok(records) => self.records = records,
            Err(error) => {
                tracing::error!(%error, "trash not listed");
                socket.put_flash("error", "The trash could not be refreshed: the database is unavailable.");
                return;
            }
        }
        for id in self.records.iter().filter_map(|record| record.deleted_by) {
            if self.deleted_by.contains_key(&id) {
                continue;
            }
            if let Ok(Some(user)) = self.context.store.find_user(id).await {
                self.deleted_by.insert(id, user.name);
            }
        }
        if self.confirming.is_some_and(|id| !self.records.iter().any(|record| record.id == id)) {
            self.confirming = None;
        }
    }

    fn title_of(&self, id: i64) -> String {
        self.records.iter().find(|record| record.id == id).map(|record| record.title.clone()).unwrap_or_default()
    }

    async fn restore(&mut self, id: i64, socket: &mut LiveSocket) {
        let Some(entity) = &self.entity else { return };
        if let Err(refusal) = check_before_write(&mut self.restore_access, &self.context.store).await {
            socket.put_flash("error", refusal.message());
            return;
        }
        match self.context.content.restore_record(entity, id).await {
            Ok(record) => {
                socket.put_flash("info", format!("“{}” restored.", record.title));
                socket.redirect(format!("/admin/entities/{}/data/{}", entity.name, record.id));
            }
            Err(crate::content::ContentError::NotFound) => {
                socket.put_flash("error", "That record is no longer in the trash.");
            }
            Err(error) => socket.put_flash("error", error.to_string()),
        }
    }

    async fn purge(&mut self, id: i64, socket: &mut LiveSocket) {
        let Some(entity) = &self.entity else { return };
        self.confirming = None;
        if let Err(refusal) = check_before_write(&mut self.purge_access, &self.context.store).await {
            socket.put_flash("error", refusal.message());
            return;
        }
        let title = self.title_of(id);
        match self.context.content.purge_record(entity, id, None).await {
            Ok(_) => socket.put_flash("info", format!("“{title}” deleted forever.")),
            Err(crate::content::ContentError::NotFound) => {
                socket.put_flash("error", "That record is no longer in the trash.");
            }
            Err(error) => socket.put_flash("error", error.to_string()),
        }
        self.load(socket).await;
    }
}

/// The record id a click names in `phx-value-id`.
fn clicked_id(value: &Value) -> Option<i64> {
    value.get("id").and_then(Value::as_str).and_then(|id| id.parse().ok())
}

impl LiveView for Trash {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let entity = entity_of(&self.context, params).await?;
            // The role as the store has it now: the socket may have authenticated an older one.
            let store = &self.context.store;
            self.restore_access = WriteAccess::load(store, &session.user, Role::can_edit_records).await.ok();
            self.purge_access = WriteAccess::load(store, &session.user, is_admin).await.ok();
            // Deletes and restores are announced on the entity's data topic.
            socket.subscribe(&crate::content::events::entity_data_topic(self.context.content.events(), entity.id));
            socket.set_title(format!("Trash: {}", entity.display_name_plural));
            self.entity = Some(entity);
            self.load(socket).await;
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
            match (name, clicked_id(value)) {
                ("restore", Some(id)) => self.restore(id, socket).await,
                ("purge" | "purge_confirmed", _) if !self.can_purge() => {
                    socket.put_flash("error", "Only admins may delete forever.");
                }
                ("purge", Some(id)) => self.confirming = Some(id),
                // Confirms only what was asked: a stale or forged confirmation does nothing.
                ("purge_confirmed", Some(id)) if self.confirming == Some(id) => self.purge(id, socket).await,
                ("purge_cancel", _) => self.confirming = None,
                _ => {}
            }
        })
    }

    fn handle_info<'a>(&'a mut self, _message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(self.load(socket))
    }

    fn render(&self) -> Html {
        let Some(entity) = &self.entity else { return Html::default() };
        let base = format!("/admin/entities/{}/data", entity.name);
        to_html(html! {
            div.crumbs {
                a href="/admin/entities" { "Entities" } " / "
                a href=(base) { (entity.display_name_plural) } " / Trash"
            }
            div.page-head { h1 { "Trash: " (entity.display_name_plural) } }
            div.card #trash-list data-lb-region {
                @if let Some(id) = self.confirming {
                    div.notice.warn #purge-confirm role="alertdialog" aria-labelledby="purge-confirm-text" {
                        p #purge-confirm-text {
                            "Delete “" (self.title_of(id)) "” forever? It cannot be restored afterwards."
                        }
                        div.actions {
                            button.danger type="button" phx-click="purge_confirmed" phx-value-id=(id) { "Delete forever" }
                            button type="button" phx-click="purge_cancel" { "Cancel" }
                        }
                    }
                }
                @if self.records.is_empty() {
                    p.empty { "The trash is empty." }
                } @else {
                    p.muted { "Deleted records can be restored as they were, until they are deleted forever." }
                    table.stack {
                        thead { tr { th { "Title" } th { "Slug" } th { "Status" } th { "Deleted" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for record in &self.records {
                                tr #{ "trashed-" (record.id) } {
                                    td data-label="Title" { (record.title) }
                                    td data-label="Slug" { code.slug title=(record.slug) { (record.slug) } }
                                    td data-label="Status" { (status_badge(record.status)) }
                                    td data-label="Deleted" {
                                        (record.deleted_at.map(date_time).unwrap_or_default())
                                        @if let Some(name) = record.deleted_by.and_then(|id| self.deleted_by.get(&id)) {
                                            " by " (name)
                                        }
                                    }
                                    td.actions.row-actions {
                                        @if self.can_restore() {
                                            button.small type="button" phx-click="restore" phx-value-id=(record.id) { "Restore" }
                                        }
                                        @if self.can_purge() {
                                            button.small.danger type="button" phx-click="purge" phx-value-id=(record.id) { "Delete forever" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}
