//! The live transport of the admin app: `/live/websocket` (Phoenix Channels V2) with its channels, and
//! `/live/longpoll`, which answers 410: this server is WebSocket-only.

mod editing;
mod endpoint;
mod events;

use livebaton::editing::EditKind;
use livebaton_web::channel::Router;
use livebaton_web::channels::RoomRoute;

pub use endpoint::{longpoll, websocket};

use crate::content::ContentService;
use crate::storage::Store;

/// The channel routes: `room:*`, `entities`, `entity_data:*`, `edit:entity:*`, `edit:data:*`.
pub fn channel_router(engine: &livebaton::Engine, store: &Store, content: &ContentService) -> Router {
    Router::new()
        .channel("room:*", RoomRoute::new(engine.presence.clone()))
        .channel("entities", events::EntitiesRoute { pubsub: engine.pubsub.clone() })
        .channel("entity_data:*", events::EntityDataRoute { pubsub: engine.pubsub.clone(), store: store.clone() })
        .channel(
            "edit:entity:*",
            editing::EditRoute { kind: EditKind::Entity, content: content.clone(), editing: engine.editing.clone() },
        )
        .channel(
            "edit:data:*",
            editing::EditRoute { kind: EditKind::Data, content: content.clone(), editing: engine.editing.clone() },
        )
}
