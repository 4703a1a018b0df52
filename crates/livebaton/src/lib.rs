//! # livebaton — the engine
//!
//! Live pages, presence and collaborative editing for Rust web applications: the part with no HTTP, SQL or HTML, so
//! it can be embedded in any server.
//!
//! Five concepts, each a module with one handle on the [`Engine`]:
//!
//! - [`pubsub`]: topics carrying any typed [`pubsub::Message`] (the application's own types, or the engine's), with
//!   bounded queues, one encoding per broadcast, and a backend seam for other nodes.
//! - [`presence`]: who is on a topic, in Phoenix's shapes (`presence_state` / `presence_diff`), with one total order
//!   per topic, automatic cleanup when the owning task ends, a leave grace for reloading tabs, optional diff
//!   coalescing.
//! - [`editing`]: collaborative editing of any resource ([`editing::EditTarget`]: a kind and an id the application
//!   names): one owner, spectators in line, drafts that survive hand-overs and the session, fenced saves.
//! - [`events`]: resource events (any resource the application names created, updated, deleted), broadcast after
//!   commit.
//! - [`stats`]: session statistics (open pages, users, visitors) for a live dashboard.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use livebaton::{Engine, editing::{EditTarget, Editor}};
//!
//! let engine = Engine::new(Default::default());
//! let invoice = EditTarget::new("invoice", "inv-7").unwrap();
//! let alice = Editor::new("1", "Alice");
//! let _guard = engine.editing.track_editing_session(&invoice, "view-1", &alice, None).await.unwrap();
//! assert!(engine.editing.editing_role(&invoice, "view-1", "1").is_owner());
//! # }
//! ```
//!
//! # Several nodes
//!
//! [`Engine::with_redis`] makes the same engine one node of a cluster sharing a Redis server: broadcasts travel
//! through [`pubsub::RedisBackend`], presence entries are ordered by the Redis roster ([`presence::RedisRoster`]:
//! one atomic Lua step per join, every node a full replica, liveness leases, re-assert after Redis loses its data),
//! and drafts live in Redis ([`editing::RedisDraftStore`]). Nothing else changes for the application, except that a
//! save should be checked with [`editing::Editing::verify_with_authority`] just before it commits. A managed Redis
//! is reached with a password and TLS: `rediss://user:password@host:port`, and a [`RedisAddress`] with the CA of a
//! server whose certificate the system does not trust.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), livebaton::EngineError> {
//! let engine = livebaton::Engine::with_redis(Default::default(), "redis://127.0.0.1:6379", "node-1").await?;
//! // … serve; on SIGTERM, let the other nodes see this node's presences leave at once:
//! let _ = engine.retire().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod editing;
pub mod events;
pub mod presence;
pub mod pubsub;
mod redis_link;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

/// The `redis` crate the engine is built with, so that an application's own Redis commands
/// ([`RedisAddress::client`]) use the same version.
pub use ::redis;
pub use redis_link::RedisAddress;

/// A boxed, sendable future: what the engine's extension points (presence backends, kept-draft stores) and the web
/// layer's channels return, so they can be trait objects.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
pub use redis_link::RedisCommands;

use presence::{Presence, PresenceConfig, RedisRoster, RedisRosterConfig, RedisRosterError};
use pubsub::{PubSub, PubSubConfig, RedisBackend, RedisBackendError, RedisConfig};

/// Settings for an [`Engine`].
#[derive(Clone, Default)]
pub struct EngineConfig {
    /// PubSub settings.
    pub pubsub: PubSubConfig,
    /// Presence settings.
    pub presence: PresenceConfig,
    /// The prefix of resource event topics ([`events::Events`]); `None`: [`events::DEFAULT_TOPIC_PREFIX`].
    pub event_topic_prefix: Option<String>,
    /// The presence topic of the session statistics ([`stats::SessionStats`]); `None`:
    /// [`stats::DEFAULT_SESSIONS_TOPIC`].
    pub sessions_topic: Option<String>,
    /// How long, and how many, drafts of ended sessions are kept for their authors (by the default stores: an
    /// application's own store has its own).
    pub kept_drafts: editing::KeptDraftLimits,
    /// Where drafts of ended sessions are kept: `None` for the default, this process's memory on a single node
    /// ([`editing::MemoryKeptDrafts`]: gone with a restart) and Redis in a cluster ([`editing::RedisKeptDrafts`]).
    /// A single-node application with a database gives its own, so they survive a restart.
    pub kept_draft_store: Option<Arc<dyn editing::KeptDraftStore>>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("pubsub", &self.pubsub)
            .field("presence", &self.presence)
            .field("event_topic_prefix", &self.event_topic_prefix)
            .field("sessions_topic", &self.sessions_topic)
            .field("kept_drafts", &self.kept_drafts)
            .field("kept_draft_store", &self.kept_draft_store.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Settings for the Redis side of a clustered [`Engine`] ([`Engine::with_redis_config`]).
#[derive(Clone, Debug, Default)]
pub struct RedisEngineConfig {
    /// The PubSub backend (broadcasts between nodes).
    pub pubsub: RedisConfig,
    /// The presence roster (order, leases, drafts).
    pub roster: RedisRosterConfig,
}

/// Why a clustered [`Engine`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The Redis PubSub backend could not connect.
    #[error(transparent)]
    PubSub(#[from] RedisBackendError),
    /// The Redis presence roster could not be set up.
    #[error(transparent)]
    Roster(#[from] RedisRosterError),
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
    /// Resource events.
    pub events: events::Events,
    /// Session statistics.
    pub stats: stats::SessionStats,
    /// The node's membership in the Redis presence roster, when clustered ([`Engine::with_redis`]).
    pub roster: Option<Arc<RedisRoster>>,
}

impl Engine {
    /// A single-node engine: in-process PubSub, presence and drafts. Must be called inside a Tokio runtime.
    pub fn new(config: EngineConfig) -> Self {
        let events_prefix = config.event_topic_prefix.unwrap_or_else(|| events::DEFAULT_TOPIC_PREFIX.to_owned());
        let sessions_topic = config.sessions_topic.unwrap_or_else(|| stats::DEFAULT_SESSIONS_TOPIC.to_owned());
        let pubsub = PubSub::new(config.pubsub);
        let presence = Presence::new(pubsub.clone(), config.presence);
        let kept =
            config.kept_draft_store.unwrap_or_else(|| Arc::new(editing::MemoryKeptDrafts::new(config.kept_drafts)));
        let drafts = Arc::new(editing::LocalDraftStore::default());
        Engine {
            editing: editing::Editing::with_stores(presence.clone(), drafts, kept),
            events: events::Events::new(pubsub.clone(), events_prefix),
            stats: stats::SessionStats::new(presence.clone(), sessions_topic),
            pubsub,
            presence,
            roster: None,
        }
    }

    /// One node of a cluster sharing the Redis at `redis` (a URL, `redis://[[user]:password@]host[:port][/db]` or
    /// `rediss://…` for TLS, or a [`RedisAddress`] that also names the CA of the server's certificate), named
    /// `node_name` (unique in the cluster; a process restart may reuse it): the Redis PubSub backend carries broadcasts
    /// (content events, drafts) between nodes, the Redis presence roster orders every node's presence entries and
    /// removes those of dead nodes, and drafts live in Redis. Views, channels and the application do not change. When
    /// it returns, the node sees every other node's presences. Must be called inside a Tokio runtime.
    ///
    /// On several nodes, a store's save should check its token with [`editing::Editing::verify_with_authority`] just
    /// before committing (it asks Redis); [`editing::Editing::verify`] only knows what this node has heard so far.
    ///
    /// # Errors
    /// [`EngineError`] when Redis cannot be reached, refuses the URL's credentials or the server's certificate is not
    /// trusted (all at once: only a running node retries), or the node name is already in use in this process.
    pub async fn with_redis(
        config: EngineConfig,
        redis: impl Into<RedisAddress>,
        node_name: &str,
    ) -> Result<Self, EngineError> {
        Self::with_redis_config(config, redis, node_name, RedisEngineConfig::default()).await
    }

    /// [`Engine::with_redis`] with explicit Redis settings (channel and key prefix, lease, timeouts).
    ///
    /// # Errors
    /// As [`Engine::with_redis`].
    pub async fn with_redis_config(
        config: EngineConfig,
        redis: impl Into<RedisAddress>,
        node_name: &str,
        settings: RedisEngineConfig,
    ) -> Result<Self, EngineError> {
        let redis = redis.into();
        let events_prefix = config.event_topic_prefix.unwrap_or_else(|| events::DEFAULT_TOPIC_PREFIX.to_owned());
        let sessions_topic = config.sessions_topic.unwrap_or_else(|| stats::DEFAULT_SESSIONS_TOPIC.to_owned());
        let kept_prefix = format!("{}:kept", settings.roster.prefix);
        let backend = RedisBackend::connect(&redis, Some(node_name), settings.pubsub).await?;
        let pubsub = PubSub::with_backend(config.pubsub, backend);
        let roster = RedisRoster::connect(&redis, node_name, settings.roster).await?;
        let presence = Presence::with_backend(pubsub.clone(), config.presence, roster.clone());
        let kept: Arc<dyn editing::KeptDraftStore> = match config.kept_draft_store {
            Some(store) => store,
            // After the connections: a bad URL or CA is reported by them first, with their hints.
            None => Arc::new(
                editing::RedisKeptDrafts::new(&redis, &kept_prefix, config.kept_drafts)
                    .map_err(RedisRosterError::InvalidUrl)?,
            ),
        };
        let drafts = editing::RedisDraftStore::new(roster.clone());
        let editing = editing::Editing::with_stores(presence.clone(), drafts, kept);
        roster.start().await?;
        Ok(Engine {
            editing,
            events: events::Events::new(pubsub.clone(), events_prefix),
            stats: stats::SessionStats::new(presence.clone(), sessions_topic),
            pubsub,
            presence,
            roster: Some(roster),
        })
    }

    /// Leaves the cluster in order (for a graceful shutdown): this node's presences leave every node at once instead
    /// of when its lease runs out. Does nothing on a single node.
    ///
    /// # Errors
    /// [`presence::RosterBackendError`] when Redis cannot be reached (the presences then go with the lease).
    pub async fn retire(&self) -> Result<(), presence::RosterBackendError> {
        match &self.roster {
            Some(roster) => roster.retire().await,
            None => Ok(()),
        }
    }
}
