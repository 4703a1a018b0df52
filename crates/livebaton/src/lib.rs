//! # livebaton — the engine
//!
//! Live pages, presence and collaborative editing for Rust web applications: the part with no HTTP, SQL or HTML, so
//! it can be embedded in any server.
//!
//! - [`pubsub`]: topic publish/subscribe with bounded queues and a backend seam for other nodes.
//! - [`presence`]: Phoenix-compatible presence (`presence_state` / `presence_diff` shapes) with one total order per
//!   topic, automatic cleanup when the owning task ends, a leave grace for reloading tabs, optional diff coalescing.
//! - [`editing`]: collaborative editing: owner and spectators, drafts that survive hand-overs, fenced saves.
//! - [`events`]: content events (entities and records created, updated, deleted) broadcast after commit.
//! - [`stats`]: session statistics for a live admin dashboard.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use livebaton::{Engine, editing::{EditTarget, Editor}};
//!
//! let engine = Engine::new(Default::default());
//! let alice = Editor { user_id: "1".into(), email: "alice@example.com".into(), name: "Alice".into(), can_edit: true };
//! let _guard = engine.editing.track_editing_session(EditTarget::data(7), "view-1", &alice, None).await.unwrap();
//! assert!(engine.editing.get_editing_role(EditTarget::data(7), "view-1", "1").is_owner());
//! # }
//! ```

pub mod editing;
pub mod events;
pub mod presence;
pub mod pubsub;
pub mod stats;

use presence::{Presence, PresenceConfig};
use pubsub::{PubSub, PubSubConfig};

/// Settings for an [`Engine`].
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// PubSub settings.
    pub pubsub: PubSubConfig,
    /// Presence settings.
    pub presence: PresenceConfig,
}

/// Every part of the engine wired together on one node. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    /// Topic PubSub.
    pub pubsub: PubSub,
    /// The presence tracker.
    pub presence: Presence,
    /// Collaborative editing.
    pub editing: editing::Editing,
    /// Content events.
    pub events: events::Events,
    /// Session statistics.
    pub stats: stats::SessionStats,
}

impl Engine {
    /// A single-node engine: in-process PubSub, presence and drafts. Must be called inside a Tokio runtime.
    pub fn new(config: EngineConfig) -> Self {
        let pubsub = PubSub::new(config.pubsub);
        let presence = Presence::new(pubsub.clone(), config.presence);
        Engine {
            editing: editing::Editing::new(presence.clone()),
            events: events::Events::new(pubsub.clone()),
            stats: stats::SessionStats::new(presence.clone()),
            pubsub,
            presence,
        }
    }
}
