//! The live transport of the admin app: `/live/websocket` (Phoenix Channels V2) with its channels, and
//! `/live/longpoll`, which answers 410: this server is WebSocket-only.

mod editing;
mod endpoint;
mod events;
pub mod revocation;
mod write_access;

use livebaton_web::channel::{BoxFuture, ChannelRoute, JoinRequest, Joined, Router};
use livebaton_web::channels::RoomRoute;
use livebaton_web::live::LiveViewRoute;
use serde_json::{Value, json};

pub use endpoint::{longpoll, socket_user, websocket};
pub use revocation::{
    CredentialEnded, SocketCredential, announce_credential_ended, announce_revocation, announce_revocation_over_redis,
    close_sockets_on_revocation,
};
pub use write_access::{DRAFT_CHECK_AGE, Refusal, WriteAccess, check_before_write, max_age};

use crate::content::ContentService;
use crate::content::editing::{ContentKind, EditingService};
use crate::storage::Store;

/// The channel routes: the live pages `lv:*`, and `room:*`, `entities`, `entity_data:*`, `edit:entity:*`,
/// `edit:data:*` for signed-in users only (a visitor of a public page may join that page's view and nothing else).
pub fn channel_router(
    engine: &livebaton::Engine,
    store: &Store,
    content: &ContentService,
    views: LiveViewRoute,
) -> Router {
    Router::new()
        .channel("lv:*", views)
        .channel("room:*", SignedInOnly(RoomRoute::new(engine.presence.clone())))
        .channel("entities", SignedInOnly(events::EntitiesRoute { events: content.events().clone() }))
        .channel(
            "entity_data:*",
            SignedInOnly(events::EntityDataRoute { events: content.events().clone(), store: store.clone() }),
        )
        .channel(
            "edit:entity:*",
            editing::EditRoute { kind: ContentKind::Entity, service: EditingService::new(content) },
        )
        .channel("edit:data:*", editing::EditRoute { kind: ContentKind::Record, service: EditingService::new(content) })
}

/// Refuses visitors (public-page sockets) before the wrapped route sees the join.
struct SignedInOnly<R>(R);

impl<R: ChannelRoute> ChannelRoute for SignedInOnly<R> {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        if crate::accounts::Role::parse(request.socket.user.role()).is_none() {
            return Box::pin(async { Err(json!({"reason": "unauthorized"})) });
        }
        self.0.join(request)
    }
}
