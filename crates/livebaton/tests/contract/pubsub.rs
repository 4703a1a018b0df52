//! The PubSub contract: every backend must pass these. A backend's test file invokes
//! `single_node_contract!(factory)` with a function returning a fresh `PubSub`, and (if it connects nodes)
//! `multi_node_contract!(factory)` with a function returning two connected `PubSub` nodes.

use std::sync::Arc;
use std::time::Duration;

use livebaton::events::ResourceEvent;
use livebaton::pubsub::{Broadcast, JsonMessage, Message, Remote, RemoteMessage, Subscription};
use serde::{Deserialize, Serialize};

pub fn app(name: &str, n: u64) -> JsonMessage {
    JsonMessage::new(name, serde_json::json!({ "n": n }))
}

pub fn number(broadcast: &Arc<Broadcast>) -> u64 {
    match broadcast.downcast::<JsonMessage>() {
        Some(message) => message.payload["n"].as_u64().expect("test messages carry n"),
        None => panic!("unexpected message {broadcast:?}"),
    }
}

/// An application's own message type, as an embedding application defines one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvoicePaid {
    pub invoice_id: String,
    pub cents: u64,
}

impl Message for InvoicePaid {
    fn event(&self) -> &str {
        "invoice_paid"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &serde_json::json!({ "invoice": self.invoice_id }))
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for InvoicePaid {
    const CODEC: &'static str = "test.invoice_paid";
}

/// A message that stays on its node: it has no codec.
#[derive(Debug)]
pub struct NodeLocal;

impl Message for NodeLocal {
    fn event(&self) -> &str {
        "node_local"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{}");
        Ok(())
    }
}

/// Receives with a generous timeout so a missing message fails the test instead of hanging it.
pub async fn next(subscription: &mut Subscription) -> Arc<livebaton::pubsub::Broadcast> {
    tokio::time::timeout(Duration::from_secs(5), subscription.recv())
        .await
        .expect("a message within 5 s")
        .expect("no lag, not closed")
}

/// Nothing (more) arrives: checked after letting other tasks run.
pub async fn assert_silent(subscription: &mut Subscription) {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(subscription.try_recv().expect("no lag").is_none(), "unexpected message on {}", subscription.topic());
}

pub fn content(event: ResourceEvent) -> ResourceEvent {
    event
}

#[macro_export]
macro_rules! single_node_contract {
    ($make:expr) => {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use livebaton::pubsub::RecvError;
        use $crate::contract::pubsub::{app, assert_silent, next, number};

        /// Subscribers of a topic get its messages in publish order; subscribers of other topics get nothing.
        #[tokio::test]
        async fn subscribers_receive_their_topic_in_order() {
            let pubsub = $make;
            let mut first = pubsub.subscribe("room:1");
            let mut second = pubsub.subscribe("room:1");
            let mut other = pubsub.subscribe("room:2");
            for n in 0..5 {
                assert_eq!(pubsub.broadcast("room:1", app("msg", n)).unwrap(), 2);
            }
            for subscription in [&mut first, &mut second] {
                for n in 0..5 {
                    let broadcast = next(subscription).await;
                    assert_eq!(&*broadcast.topic, "room:1");
                    assert_eq!(number(&broadcast), n);
                }
            }
            assert_silent(&mut other).await;
        }

        /// `broadcast_from` skips only the sender (and its other subscriptions sharing its id).
        #[tokio::test]
        async fn broadcast_from_skips_only_the_sender() {
            let pubsub = $make;
            let mut sender = pubsub.subscribe("room:1");
            let mut sender_elsewhere = pubsub.subscribe_as(sender.id(), "room:1");
            let mut listener = pubsub.subscribe("room:1");
            pubsub.broadcast_from(sender.id(), "room:1", app("hello", 1)).unwrap();
            pubsub.broadcast("room:1", app("hello", 2)).unwrap();
            assert_eq!(number(&next(&mut listener).await), 1);
            assert_eq!(number(&next(&mut listener).await), 2);
            assert_eq!(number(&next(&mut sender).await), 2, "the sender skips its own message only");
            assert_eq!(number(&next(&mut sender_elsewhere).await), 2);
        }

        /// `local_broadcast` reaches local subscribers, skipping `from` in the `_from` variant.
        #[tokio::test]
        async fn local_broadcast_reaches_local_subscribers() {
            let pubsub = $make;
            let mut a = pubsub.subscribe("t");
            let mut b = pubsub.subscribe("t");
            assert_eq!(pubsub.local_broadcast("t", app("x", 7)), 2);
            pubsub.local_broadcast_from(a.id(), "t", app("x", 8));
            assert_eq!(number(&next(&mut a).await), 7);
            assert_eq!(number(&next(&mut b).await), 7);
            assert_eq!(number(&next(&mut b).await), 8);
            assert_silent(&mut a).await;
        }

        /// Dropping (or unsubscribing) stops delivery and frees the topic once its last subscriber is gone.
        #[tokio::test]
        async fn unsubscribe_stops_delivery_and_frees_the_topic() {
            let pubsub = $make;
            let first = pubsub.subscribe("t");
            let mut second = pubsub.subscribe("t");
            assert_eq!(pubsub.subscriber_count("t"), 2);
            pubsub.unsubscribe(first);
            assert_eq!(pubsub.subscriber_count("t"), 1);
            assert_eq!(pubsub.broadcast("t", app("x", 1)).unwrap(), 1);
            assert_eq!(number(&next(&mut second).await), 1);
            let topics = pubsub.topic_count();
            drop(second);
            assert_eq!(pubsub.subscriber_count("t"), 0);
            assert_eq!(pubsub.topic_count(), topics - 1, "the topic's buffer is freed");
            assert_eq!(pubsub.broadcast("t", app("x", 2)).unwrap(), 0, "nobody left to deliver to");
        }

        /// A subscriber that stops reading never blocks the publisher and never holds more than the topic's
        /// capacity; when it reads again it is told how many it missed, then gets the newest messages.
        #[tokio::test]
        async fn a_lagging_subscriber_is_told_and_never_blocks_the_publisher() {
            let pubsub = $make;
            let mut slow = pubsub.subscribe("busy");
            let mut fast = pubsub.subscribe("busy");
            let total = 1_000u64;
            for n in 0..total {
                pubsub.broadcast("busy", app("tick", n)).unwrap();
                if n % 50 == 0 {
                    // The fast subscriber keeps up as it goes.
                    while let Some(broadcast) = fast.try_recv().expect("fast never lags") {
                        assert!(number(&broadcast) <= n);
                    }
                }
            }
            match slow.recv().await {
                Err(RecvError::Lagged(missed)) => assert!(missed > 0 && missed < total, "missed {missed}"),
                other => panic!("expected a lag notice, got {other:?}"),
            }
            // After the notice it continues with the oldest kept message, and ends with the newest.
            let mut last = 0;
            let mut kept = 0;
            while let Some(broadcast) = slow.try_recv().expect("no second lag") {
                last = number(&broadcast);
                kept += 1;
            }
            assert_eq!(last, total - 1);
            assert!(kept <= pubsub.config().topic_capacity, "the queue is bounded: kept {kept} of {total}");
        }

        /// The wire encoding of one broadcast is computed once, and every subscriber shares the same bytes.
        #[tokio::test]
        async fn a_broadcast_is_encoded_once_for_all_subscribers() {
            let pubsub = $make;
            let mut subscribers: Vec<_> = (0..20).map(|_| pubsub.subscribe("fan")).collect();
            pubsub.broadcast("fan", app("hello", 1)).unwrap();
            let encodings = AtomicUsize::new(0);
            let mut pointers = Vec::new();
            for subscriber in &mut subscribers {
                let broadcast = next(subscriber).await;
                let bytes = broadcast.encoded(|broadcast| {
                    encodings.fetch_add(1, Ordering::SeqCst);
                    bytes::Bytes::from(serde_json::to_vec(&broadcast.payload_json()).unwrap())
                });
                assert_eq!(&bytes[..], br#"{"n":1}"#);
                pointers.push(bytes.as_ptr());
            }
            assert_eq!(encodings.load(Ordering::SeqCst), 1);
            assert!(pointers.windows(2).all(|pair| pair[0] == pair[1]), "all subscribers share one buffer");
        }

        /// Once the PubSub is gone, subscribers are told it closed instead of waiting forever.
        #[tokio::test]
        async fn subscribers_learn_when_the_pubsub_is_gone() {
            let pubsub = $make;
            let mut subscription = pubsub.subscribe("t");
            drop(pubsub);
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), subscription.recv()).await;
            assert_eq!(outcome.expect("no hang").unwrap_err(), RecvError::Closed);
        }

        /// Content events keep their type and event name through the PubSub.
        #[tokio::test]
        async fn typed_messages_arrive_intact() {
            let pubsub = $make;
            let mut subscription = pubsub.subscribe("events:entity");
            let event = livebaton::events::ResourceEvent::new("entity", livebaton::events::Action::Updated)
                .field("entity_id", 3);
            pubsub.broadcast("events:entity", event.clone()).unwrap();
            let broadcast = next(&mut subscription).await;
            assert_eq!(broadcast.downcast::<livebaton::events::ResourceEvent>(), Some(&event));
            assert_eq!(broadcast.event(), "entity_updated");
            assert_eq!(broadcast.payload_json(), serde_json::json!({"entity_id": 3, "type": "entity_updated"}));
        }

        /// A message without a codec could not reach other nodes: `broadcast` refuses it and delivers nothing, so an
        /// application learns on one node what would break on several; `local_broadcast` delivers it.
        #[tokio::test]
        async fn a_message_without_a_codec_is_for_local_broadcast_only() {
            use $crate::contract::pubsub::NodeLocal;
            let pubsub = $make;
            let mut subscription = pubsub.subscribe("t");
            let refused = pubsub.broadcast("t", NodeLocal).unwrap_err();
            assert!(matches!(refused, livebaton::pubsub::PubSubError::LocalOnly(ref event) if event == "node_local"));
            assert_silent(&mut subscription).await;
            assert_eq!(pubsub.local_broadcast("t", NodeLocal), 1);
            assert!(next(&mut subscription).await.downcast::<NodeLocal>().is_some());
        }
    };
}

#[macro_export]
macro_rules! multi_node_contract {
    ($make_two:expr) => {
        use livebaton::events::{Action, ResourceEvent};
        use $crate::contract::pubsub::{
            app as remote_app, assert_silent as remote_silent, content, next as remote_next,
        };

        /// A broadcast reaches subscribers on every node exactly once, including the sender's own node.
        #[tokio::test]
        async fn broadcast_reaches_every_node_exactly_once() {
            let (a, b) = $make_two;
            let mut on_a = a.subscribe("room");
            let mut on_b = b.subscribe("room");
            a.broadcast("room", remote_app("hi", 1)).unwrap();
            assert_eq!(remote_next(&mut on_a).await.downcast::<livebaton::pubsub::JsonMessage>(), Some(&remote_app("hi", 1)));
            assert_eq!(remote_next(&mut on_b).await.downcast::<livebaton::pubsub::JsonMessage>(), Some(&remote_app("hi", 1)));
            remote_silent(&mut on_a).await;
            remote_silent(&mut on_b).await;
        }

        /// `local_broadcast` never leaves its node.
        #[tokio::test]
        async fn local_broadcast_stays_on_its_node() {
            let (a, b) = $make_two;
            let mut on_a = a.subscribe("room");
            let mut on_b = b.subscribe("room");
            a.local_broadcast("room", remote_app("local", 1));
            assert_eq!(remote_next(&mut on_a).await.downcast::<livebaton::pubsub::JsonMessage>(), Some(&remote_app("local", 1)));
            remote_silent(&mut on_b).await;
        }

        /// `broadcast_from` skips the sender on its own node only; other nodes deliver to everyone.
        #[tokio::test]
        async fn broadcast_from_skips_the_sender_on_its_node_only() {
            let (a, b) = $make_two;
            let mut sender = a.subscribe("room");
            let mut remote = b.subscribe("room");
            a.broadcast_from(sender.id(), "room", remote_app("x", 1)).unwrap();
            assert_eq!(remote_next(&mut remote).await.downcast::<livebaton::pubsub::JsonMessage>(), Some(&remote_app("x", 1)));
            remote_silent(&mut sender).await;
        }

        /// Typed messages survive the trip between nodes unchanged.
        #[tokio::test]
        async fn typed_messages_cross_nodes_intact() {
            let (a, b) = $make_two;
            let mut on_b = b.subscribe("events:data:4");
            let event = ResourceEvent::new("data", Action::Deleted).scope(4).field("entity_id", 4).field("data_id", 9);
            b.register::<ResourceEvent>();
            a.broadcast("events:data:4", content(event.clone())).unwrap();
            assert_eq!(remote_next(&mut on_b).await.downcast::<livebaton::events::ResourceEvent>(), Some(&event));
        }

        /// An application's own type crosses nodes as itself once every node registered it; a node that did not
        /// register it drops it (and nothing else).
        #[tokio::test]
        async fn an_application_type_crosses_nodes_once_registered() {
            use $crate::contract::pubsub::InvoicePaid;
            let (a, b) = $make_two;
            let mut on_b = b.subscribe("billing");
            let paid = InvoicePaid { invoice_id: "inv-7".into(), cents: 1200 };
            a.broadcast("billing", paid.clone()).unwrap();
            a.broadcast("billing", remote_app("after", 1)).unwrap();
            assert_eq!(remote_next(&mut on_b).await.downcast::<livebaton::pubsub::JsonMessage>(), Some(&remote_app("after", 1)));
            b.register::<InvoicePaid>();
            a.broadcast("billing", paid.clone()).unwrap();
            let heard = remote_next(&mut on_b).await;
            assert_eq!(heard.downcast::<InvoicePaid>(), Some(&paid));
            assert_eq!(heard.payload_json(), serde_json::json!({"invoice": "inv-7"}));
        }
    };
}
