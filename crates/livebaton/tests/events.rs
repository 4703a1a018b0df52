//! Resource events reach the subscribers of their topics, and only those; clients see `<resource>_<action>` with the
//! application's fields and `type`.

use std::time::Duration;

use livebaton::events::{Action, ResourceEvent};
use livebaton::pubsub::{Broadcast, Message, Subscription};
use livebaton::{Engine, EngineConfig};

async fn next(subscription: &mut Subscription) -> std::sync::Arc<Broadcast> {
    tokio::time::timeout(Duration::from_secs(5), subscription.recv()).await.unwrap().unwrap()
}

fn invoice(action: Action, customer: &str, id: &str) -> ResourceEvent {
    ResourceEvent::new("invoice", action).scope(customer).field("invoice_id", id)
}

/// An event goes to its resource's topic and, with a scope, to that scope's topic only; another resource's
/// subscribers hear nothing.
#[tokio::test]
async fn events_reach_their_topics() {
    let engine = Engine::new(Default::default());
    let mut invoices = engine.events.subscribe("invoice");
    let mut acme = engine.events.subscribe_scoped("invoice", "acme");
    let mut globex = engine.events.subscribe_scoped("invoice", "globex");
    let mut orders = engine.events.subscribe("order");

    let sent: Vec<ResourceEvent> =
        [Action::Created, Action::Updated, Action::Deleted].into_iter().map(|a| invoice(a, "acme", "inv-7")).collect();
    for event in &sent {
        engine.events.broadcast(event.clone()).unwrap();
    }
    engine.events.broadcast(ResourceEvent::new("invoice", Action::Created).field("invoice_id", "inv-8")).unwrap();

    for event in &sent {
        assert_eq!(next(&mut invoices).await.downcast::<ResourceEvent>(), Some(event));
        assert_eq!(next(&mut acme).await.downcast::<ResourceEvent>(), Some(event));
    }
    let unscoped = next(&mut invoices).await;
    assert_eq!(unscoped.payload_json()["invoice_id"], "inv-8", "an event without a scope reaches the resource's topic");
    assert!(acme.try_recv().unwrap().is_none(), "but no scope's");
    assert!(globex.try_recv().unwrap().is_none(), "another scope's subscribers hear nothing");
    assert!(orders.try_recv().unwrap().is_none(), "another resource's subscribers hear nothing");
}

/// Clients see `<resource>_<action>`, the fields and `type`; a field named `type` cannot replace it.
#[test]
fn events_have_client_names_and_json() {
    let message = invoice(Action::Updated, "acme", "inv-7").field("type", "forged");
    assert_eq!(message.event(), "invoice_updated");
    let mut encoded = Vec::new();
    message.write_payload(&mut encoded).unwrap();
    let encoded = String::from_utf8(encoded).unwrap();
    assert_eq!(encoded, r#"{"invoice_id":"inv-7","type":"invoice_updated"}"#, "one `type`, the event's");
}

/// Topics are under the engine's prefix: two engines' applications may share a Redis under different prefixes.
#[tokio::test]
async fn topics_are_under_the_configured_prefix() {
    let engine = Engine::new(Default::default());
    assert_eq!(engine.events.topic("invoice"), "events:invoice");
    assert_eq!(engine.events.scoped_topic("invoice", "acme"), "events:invoice:acme");
    let config = EngineConfig { event_topic_prefix: Some("billing/".into()), ..Default::default() };
    let billing = Engine::new(config);
    assert_eq!(billing.events.topic("invoice"), "billing/invoice");
    let mut raw = billing.pubsub.subscribe("billing/invoice:acme");
    billing.events.broadcast(invoice(Action::Created, "acme", "inv-9")).unwrap();
    assert_eq!(next(&mut raw).await.event(), "invoice_created");
}
