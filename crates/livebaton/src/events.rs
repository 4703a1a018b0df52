//! Resource events: an application's resources created, updated or deleted, broadcast after the change committed.
//!
//! Any resource the application names (`invoice`, `order`, the admin app's `entity` and `data`): an event is published
//! on `<prefix><resource>` and, when it has a scope (a record's entity, an invoice's customer), also on
//! `<prefix><resource>:<scope>`, so a page follows all of a resource's events or one scope's. Clients see it as
//! `<resource>_<action>` (`invoice_created`) with the application's fields plus `type`, the same name. Call
//! [`Events::broadcast`] only after the transaction committed: a subscriber never hears of a change that did not
//! happen.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use livebaton::events::{Action, ResourceEvent};
//!
//! let engine = livebaton::Engine::new(Default::default());
//! let mut acme = engine.events.subscribe_scoped("invoice", "acme");
//! let event = ResourceEvent::new("invoice", Action::Created).scope("acme").field("invoice_id", "inv-7");
//! engine.events.broadcast(event).unwrap();
//! let heard = acme.recv().await.unwrap();
//! assert_eq!(heard.event(), "invoice_created");
//! assert_eq!(heard.downcast::<ResourceEvent>().unwrap().i64_field("invoice_id"), None);
//! assert_eq!(heard.payload_json(), serde_json::json!({"invoice_id": "inv-7", "type": "invoice_created"}));
//! # }
//! ```

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::pubsub::{Message, PubSub, PubSubError, Remote, RemoteMessage, Subscription};

/// The default prefix of event topics ([`crate::EngineConfig::event_topic_prefix`]).
pub const DEFAULT_TOPIC_PREFIX: &str = "events:";

/// What happened to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was deleted.
    Deleted,
}

impl Action {
    /// `created`, `updated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// A committed change to one of the application's resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceEvent {
    /// The event's name as clients see it: `<resource>_<action>`.
    name: String,
    /// The kind of resource, as the application names it.
    pub resource: String,
    /// What happened.
    pub action: Action,
    /// The group it belongs to, if any: the event is also published on that scope's topic.
    pub scope: Option<String>,
    /// What clients receive (ids, mostly), besides `type`.
    pub fields: Map<String, Value>,
}

impl ResourceEvent {
    /// `action` happened to a `resource` (a name such as `invoice`; clients see `invoice_created`).
    pub fn new(resource: impl Into<String>, action: Action) -> Self {
        let resource = resource.into();
        let name = format!("{resource}_{}", action.as_str());
        ResourceEvent { name, resource, action, scope: None, fields: Map::new() }
    }

    /// Names the event `name` for clients instead of `<resource>_<action>` (an application whose topics and client
    /// names were chosen before, as the admin app's `entity_data` topics carrying `data_created`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Also publishes the event on `scope`'s topic (see [`Events::subscribe_scoped`]).
    #[must_use]
    pub fn scope(mut self, scope: impl ToString) -> Self {
        self.scope = Some(scope.to_string());
        self
    }

    /// Adds field `name` with `value` to what clients receive (a value that is not JSON becomes `null`).
    #[must_use]
    pub fn field(mut self, name: &str, value: impl Serialize) -> Self {
        self.fields.insert(name.to_owned(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// The event's name as clients see it: `<resource>_<action>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Field `name` as an integer, if it is one.
    pub fn i64_field(&self, name: &str) -> Option<i64> {
        self.fields.get(name).and_then(Value::as_i64)
    }

    /// What clients receive: the fields and `type` (the event's name), serialised in place.
    pub fn payload(&self) -> EventPayload<'_> {
        EventPayload(self)
    }
}

impl Message for ResourceEvent {
    fn event(&self) -> &str {
        &self.name
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self.payload())
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for ResourceEvent {
    const CODEC: &'static str = "livebaton.resource_event";
}

/// A [`ResourceEvent`]'s client payload. See [`ResourceEvent::payload`].
#[derive(Clone, Copy, Debug)]
pub struct EventPayload<'a>(&'a ResourceEvent);

impl Serialize for EventPayload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(Some(event.fields.len() + 1))?;
        for (name, value) in event.fields.iter().filter(|(name, _)| name.as_str() != "type") {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry("type", &event.name)?;
        map.end()
    }
}

/// Subscribe to and broadcast resource events under one topic prefix. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    pubsub: PubSub,
    prefix: std::sync::Arc<str>,
}

impl Events {
    /// Events on `pubsub` under topic `prefix` (`events:` by default in an [`crate::Engine`]).
    pub fn new(pubsub: PubSub, prefix: impl Into<String>) -> Self {
        pubsub.register::<ResourceEvent>();
        Events { pubsub, prefix: prefix.into().into() }
    }

    /// The topic of every event of `resource`.
    pub fn topic(&self, resource: &str) -> String {
        format!("{}{resource}", self.prefix)
    }

    /// The topic of `resource`'s events in `scope`.
    pub fn scoped_topic(&self, resource: &str, scope: &str) -> String {
        format!("{}{resource}:{scope}", self.prefix)
    }

    /// Every event of `resource`.
    pub fn subscribe(&self, resource: &str) -> Subscription {
        self.pubsub.subscribe(&self.topic(resource))
    }

    /// The events of `resource` in `scope` only.
    pub fn subscribe_scoped(&self, resource: &str, scope: &str) -> Subscription {
        self.pubsub.subscribe(&self.scoped_topic(resource, scope))
    }

    /// Announces a committed change: on the resource's topic and, with a scope, on the scope's.
    ///
    /// # Errors
    /// [`PubSubError`] if other nodes could not be told (local subscribers were).
    pub fn broadcast(&self, event: ResourceEvent) -> Result<(), PubSubError> {
        let scoped = event.scope.as_deref().map(|scope| self.scoped_topic(&event.resource, scope));
        let all = self.topic(&event.resource);
        let message: std::sync::Arc<dyn Message> = std::sync::Arc::new(event);
        let one = match scoped {
            Some(topic) => self.pubsub.broadcast_shared(&topic, message.clone()).map(drop),
            None => Ok(()),
        };
        self.pubsub.broadcast_shared(&all, message).map(drop).and(one)
    }
}
