//! Content events: entities and records created, updated or deleted, broadcast after the change is committed.
//!
//! Topics follow DESIGN §5: `entities` for entity definitions; `entity_data` (every record) and `entity_data:<id>`
//! (one entity's records) for records. The store calls the `broadcast_*` helpers only after its transaction commits,
//! so a subscriber never hears of a change that did not happen.

use serde::{Deserialize, Serialize};

use crate::pubsub::{Message, PubSub, PubSubError, Subscription};

/// Topic names.
pub mod topics {
    /// Entity definitions changed.
    pub const ENTITIES: &str = "entities";
    /// Any record of any entity changed.
    pub const ENTITY_DATA: &str = "entity_data";
    /// Session statistics changed.
    pub const ADMIN_SESSIONS: &str = "admin:sessions";

    /// Records of one entity changed.
    pub fn entity_data(entity_id: i64) -> String {
        format!("entity_data:{entity_id}")
    }
}

/// A committed change to content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An entity was created.
    EntityCreated {
        /// The entity.
        entity_id: i64,
    },
    /// An entity was updated.
    EntityUpdated {
        /// The entity.
        entity_id: i64,
    },
    /// An entity was deleted.
    EntityDeleted {
        /// The entity.
        entity_id: i64,
    },
    /// A record was created.
    DataCreated {
        /// The record's entity.
        entity_id: i64,
        /// The record.
        data_id: i64,
    },
    /// A record was updated.
    DataUpdated {
        /// The record's entity.
        entity_id: i64,
        /// The record.
        data_id: i64,
    },
    /// A record was deleted.
    DataDeleted {
        /// The record's entity.
        entity_id: i64,
        /// The record.
        data_id: i64,
    },
}

impl Event {
    /// The event's name as clients see it (`entity_created`, `data_updated`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Event::EntityCreated { .. } => "entity_created",
            Event::EntityUpdated { .. } => "entity_updated",
            Event::EntityDeleted { .. } => "entity_deleted",
            Event::DataCreated { .. } => "data_created",
            Event::DataUpdated { .. } => "data_updated",
            Event::DataDeleted { .. } => "data_deleted",
        }
    }
}

/// Subscribe and broadcast helpers for content events (the seed's `Events` module).
#[derive(Clone)]
pub struct Events {
    pubsub: PubSub,
}

impl Events {
    /// Helpers over `pubsub`.
    pub fn new(pubsub: PubSub) -> Self {
        Events { pubsub }
    }

    /// Entity definition events.
    pub fn subscribe_to_entities(&self) -> Subscription {
        self.pubsub.subscribe(topics::ENTITIES)
    }

    /// Record events of every entity.
    pub fn subscribe_to_all_data(&self) -> Subscription {
        self.pubsub.subscribe(topics::ENTITY_DATA)
    }

    /// Record events of one entity.
    pub fn subscribe_to_entity_data(&self, entity_id: i64) -> Subscription {
        self.pubsub.subscribe(&topics::entity_data(entity_id))
    }

    /// Announces a committed entity creation.
    ///
    /// # Errors
    /// [`PubSubError`] if other nodes could not be told (local subscribers were).
    pub fn broadcast_entity_created(&self, entity_id: i64) -> Result<(), PubSubError> {
        self.entity(Event::EntityCreated { entity_id })
    }

    /// Announces a committed entity update.
    ///
    /// # Errors
    /// As [`Events::broadcast_entity_created`].
    pub fn broadcast_entity_updated(&self, entity_id: i64) -> Result<(), PubSubError> {
        self.entity(Event::EntityUpdated { entity_id })
    }

    /// Announces a committed entity deletion.
    ///
    /// # Errors
    /// As [`Events::broadcast_entity_created`].
    pub fn broadcast_entity_deleted(&self, entity_id: i64) -> Result<(), PubSubError> {
        self.entity(Event::EntityDeleted { entity_id })
    }

    /// Announces a committed record creation.
    ///
    /// # Errors
    /// As [`Events::broadcast_entity_created`].
    pub fn broadcast_data_created(&self, entity_id: i64, data_id: i64) -> Result<(), PubSubError> {
        self.data(Event::DataCreated { entity_id, data_id }, entity_id)
    }

    /// Announces a committed record update.
    ///
    /// # Errors
    /// As [`Events::broadcast_entity_created`].
    pub fn broadcast_data_updated(&self, entity_id: i64, data_id: i64) -> Result<(), PubSubError> {
        self.data(Event::DataUpdated { entity_id, data_id }, entity_id)
    }

    /// Announces a committed record deletion.
    ///
    /// # Errors
    /// As [`Events::broadcast_entity_created`].
    pub fn broadcast_data_deleted(&self, entity_id: i64, data_id: i64) -> Result<(), PubSubError> {
        self.data(Event::DataDeleted { entity_id, data_id }, entity_id)
    }

    fn entity(&self, event: Event) -> Result<(), PubSubError> {
        self.pubsub.broadcast(topics::ENTITIES, Message::Content(event)).map(drop)
    }

    fn data(&self, event: Event, entity_id: i64) -> Result<(), PubSubError> {
        let all = self.pubsub.broadcast(topics::ENTITY_DATA, Message::Content(event));
        let one = self.pubsub.broadcast(&topics::entity_data(entity_id), Message::Content(event));
        all.and(one).map(drop)
    }
}
