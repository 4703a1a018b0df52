//! Content events reach the subscribers of their topics, and only those.

use std::time::Duration;

use livebaton::Engine;
use livebaton::events::Event;
use livebaton::pubsub::{Message, Subscription};

async fn next(subscription: &mut Subscription) -> Message {
    tokio::time::timeout(Duration::from_secs(5), subscription.recv()).await.unwrap().unwrap().message.clone()
}

/// Entity events go to `entities`; record events go to `entity_data` and to their entity's own topic only.
#[tokio::test]
async fn events_reach_their_topics() {
    let engine = Engine::new(Default::default());
    let mut entities = engine.events.subscribe_to_entities();
    let mut all_data = engine.events.subscribe_to_all_data();
    let mut entity_1 = engine.events.subscribe_to_entity_data(1);
    let mut entity_2 = engine.events.subscribe_to_entity_data(2);

    engine.events.broadcast_entity_created(1).unwrap();
    engine.events.broadcast_entity_updated(1).unwrap();
    engine.events.broadcast_entity_deleted(1).unwrap();
    engine.events.broadcast_data_created(1, 10).unwrap();
    engine.events.broadcast_data_updated(1, 10).unwrap();
    engine.events.broadcast_data_deleted(1, 10).unwrap();

    for expected in [
        Event::EntityCreated { entity_id: 1 },
        Event::EntityUpdated { entity_id: 1 },
        Event::EntityDeleted { entity_id: 1 },
    ] {
        assert_eq!(next(&mut entities).await, Message::Content(expected));
    }
    for expected in [
        Event::DataCreated { entity_id: 1, data_id: 10 },
        Event::DataUpdated { entity_id: 1, data_id: 10 },
        Event::DataDeleted { entity_id: 1, data_id: 10 },
    ] {
        assert_eq!(next(&mut all_data).await, Message::Content(expected));
        assert_eq!(next(&mut entity_1).await, Message::Content(expected));
    }
    assert!(entities.try_recv().unwrap().is_none());
    assert!(entity_2.try_recv().unwrap().is_none(), "another entity's subscribers hear nothing");
}

/// Events have stable names and JSON for clients.
#[test]
fn events_have_client_names_and_json() {
    let event = Event::DataUpdated { entity_id: 1, data_id: 2 };
    let message = Message::Content(event);
    assert_eq!(message.event_name(), "data_updated");
    assert_eq!(message.payload_json(), serde_json::json!({"type": "data_updated", "entity_id": 1, "data_id": 2}));
}
