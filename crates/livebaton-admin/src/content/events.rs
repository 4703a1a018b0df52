//! The admin app's resource events ([`livebaton::events`]): entity definitions on `entities` (`entity_created`, …,
//! with `entity_id`) and records on `entity_data` and `entity_data:<entity id>` (`data_created`, …, with `entity_id`
//! and `data_id`). The topics have no prefix: `entities` is also the channel clients join, so a broadcast goes to them
//! as Phoenix broadcasts do (encoded once for every subscriber, `join_ref` null), as docs/protocol.md §5.2 shows.

use livebaton::events::{Action, Events, ResourceEvent};
use livebaton::pubsub::{Broadcast, PubSub};

/// The resource (and topic) of entity definitions.
pub const ENTITIES: &str = "entities";
/// The resource (and topic) of records; a record's event is also on its entity's scope, `entity_data:<id>`.
pub const ENTITY_DATA: &str = "entity_data";

/// The admin app's events on `pubsub`: topics without a prefix, as above.
pub fn admin_events(pubsub: &PubSub) -> Events {
    Events::new(pubsub.clone(), "")
}

/// `action` happened to entity `entity_id`: `entity_<action>`.
pub fn entity_event(action: Action, entity_id: i64) -> ResourceEvent {
    ResourceEvent::new(ENTITIES, action).named(format!("entity_{}", action.as_str())).field("entity_id", entity_id)
}

/// `action` happened to record `data_id` of entity `entity_id`: `data_<action>`.
pub fn data_event(action: Action, entity_id: i64, data_id: i64) -> ResourceEvent {
    ResourceEvent::new(ENTITY_DATA, action)
        .named(format!("data_{}", action.as_str()))
        .scope(entity_id)
        .field("entity_id", entity_id)
        .field("data_id", data_id)
}

/// The topic of the record events of entity `entity_id`.
pub fn entity_data_topic(events: &Events, entity_id: i64) -> String {
    events.scoped_topic(ENTITY_DATA, &entity_id.to_string())
}

/// What happened to which record, if `broadcast` is a record event.
pub fn record_change(broadcast: &Broadcast) -> Option<(Action, i64)> {
    let event = broadcast.downcast::<ResourceEvent>()?;
    (event.resource == ENTITY_DATA).then_some((event.action, event.i64_field("data_id")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names, payloads and topics the `entities` and `entity_data:<name>` channels push (docs/protocol.md §5.2,
    /// §5.3), unchanged from before resource events were generic.
    #[test]
    fn events_keep_their_client_names_payloads_and_topics() {
        let events = admin_events(&PubSub::new(Default::default()));
        let mut records = events.subscribe(ENTITY_DATA);
        let mut entities = events.subscribe(ENTITIES);
        events.broadcast(data_event(Action::Updated, 1, 2)).unwrap();
        let heard = records.try_recv().unwrap().expect("on entity_data");
        assert_eq!(heard.event(), "data_updated");
        let payload = serde_json::json!({"type": "data_updated", "entity_id": 1, "data_id": 2});
        assert_eq!(heard.payload_json(), payload);
        assert_eq!(record_change(&heard), Some((Action::Updated, 2)));
        events.broadcast(entity_event(Action::Deleted, 3)).unwrap();
        let heard = entities.try_recv().unwrap().expect("on entities");
        assert_eq!(heard.event(), "entity_deleted");
        assert_eq!(heard.payload_json(), serde_json::json!({"type": "entity_deleted", "entity_id": 3}));
        assert_eq!(record_change(&heard), None);
        assert_eq!(
            (events.topic(ENTITIES), entity_data_topic(&events, 4)),
            ("entities".into(), "entity_data:4".into())
        );
    }
}
