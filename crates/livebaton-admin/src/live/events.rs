//! `entities` and `entity_data:<entity-name>`: content events pushed as they happen, from any writer (the JSON API,
//! a live form, another node). Read-only channels: clients only listen.

use livebaton::events::Events;
use livebaton_web::channel::{BoxFuture, ChannelRoute, JoinRequest, Joined};
use livebaton_web::channels::ListenOnly;
use serde_json::{Value, json};

use crate::storage::Store;

/// `entities`: `entity_created`, `entity_updated`, `entity_deleted` with `{entity_id}`.
pub struct EntitiesRoute {
    pub(crate) events: Events,
}

/// `entity_data:<entity-name>`: `data_created`, `data_updated`, `data_deleted` with `{entity_id, data_id}`.
pub struct EntityDataRoute {
    pub(crate) events: Events,
    pub(crate) store: Store,
}

impl ChannelRoute for EntitiesRoute {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        let subscription = self.events.subscribe(crate::content::events::ENTITIES);
        let _ = request;
        Box::pin(async move {
            Ok(Joined { reply: json!({}), channel: Box::new(ListenOnly), subscriptions: vec![subscription] })
        })
    }
}

impl ChannelRoute for EntityDataRoute {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        Box::pin(async move {
            let name = request.topic.strip_prefix("entity_data:").unwrap_or_default();
            let entity = match self.store.find_entity_by_name(name).await {
                Ok(Some(entity)) => entity,
                Ok(None) => return Err(json!({"reason": "no such entity"})),
                Err(error) => {
                    // The cause is for the log, not for the client.
                    tracing::warn!(%error, "entity_data join refused: the database failed");
                    return Err(json!({"reason": "unavailable"}));
                }
            };
            let subscription =
                self.events.subscribe_scoped(crate::content::events::ENTITY_DATA, &entity.id.to_string());
            let reply = json!({"entity_id": entity.id});
            Ok(Joined { reply, channel: Box::new(ListenOnly), subscriptions: vec![subscription] })
        })
    }
}
