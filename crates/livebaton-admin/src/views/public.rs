//! `/e/{entity}/{slug}`: a published record for everyone, live (an update shows at once), counted in the session
//! statistics as an anonymous visitor (or as the signed-in user reading it).

use std::sync::Arc;

use livebaton::events::Action;
use livebaton::pubsub::Broadcast;
use livebaton_content::Status;
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use maud::html;
use serde_json::{Map, Value};

use super::ViewContext;
use super::markup::{str_param, to_html};
use super::record_show::record_values_markup;
use super::records::entity_of;
use crate::content::RichValues;
use crate::storage::{Entity, Record};

/// The public page of a published record.
pub struct PublicRecord {
    context: ViewContext,
    entity: Option<Entity>,
    record: Option<Record>,
    /// The record's rich-text values, sanitised for output when it was loaded.
    rich: RichValues,
}

impl PublicRecord {
    pub(super) fn new(context: ViewContext) -> Self {
        PublicRecord { context, entity: None, record: None, rich: RichValues::new() }
    }
}

impl LiveView for PublicRecord {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        _session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let entity = entity_of(&self.context, params).await?;
            let slug = str_param(params, "slug").ok_or(MountError::NotFound)?;
            let record = match self.context.store.find_record_by_slug(entity.id, slug).await {
                Ok(Some(record)) if record.status == Status::Published && entity.status == Status::Published => record,
                Ok(_) => return Err(MountError::NotFound),
                Err(error) => return Err(super::unavailable(error)),
            };
            socket.subscribe(&crate::content::events::entity_data_topic(self.context.content.events(), entity.id));
            socket.set_title(record.title.clone());
            self.rich = self.context.content.rich_values(&entity.fields_definition, &record.data).await;
            self.entity = Some(entity);
            self.record = Some(record);
            Ok(())
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, _socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (Some(entity), Some(record)) = (&self.entity, &self.record) else { return };
            let changed = matches!(
                crate::content::events::record_change(message),
                Some((Action::Updated | Action::Deleted, id)) if id == record.id
            );
            if changed && let Ok(fresh) = self.context.store.find_record(entity.id, record.id).await {
                // Unpublished or deleted: the page keeps what was public, marked as no longer available.
                match fresh {
                    Some(fresh) if fresh.status == Status::Published => {
                        self.rich = self.context.content.rich_values(&entity.fields_definition, &fresh.data).await;
                        self.record = Some(fresh);
                    }
                    _ => {
                        self.rich.clear();
                        self.record = None;
                    }
                }
            }
        })
    }

    fn render(&self) -> Html {
        let Some(entity) = &self.entity else { return Html::default() };
        to_html(html! {
            article.card #public-record data-lb-region {
                @match &self.record {
                    Some(record) => {
                        p.crumbs { (entity.display_name) }
                        h1 { (record.title) }
                        (record_values_markup(entity, record, &self.rich))
                    }
                    None => { h1 { "No longer available" } p.muted { "This page was unpublished or deleted." } }
                }
            }
        })
    }
}
