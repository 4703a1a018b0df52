//! The PubSub contract against the Redis backend, and what only a networked backend has to get right: echoes, order
//! through batched pipelines, reconnecting and resubscribing after Redis goes away, and the bounded queue meanwhile.
//!
//! Needs a Redis server at `REDIS_URL` (default `redis://127.0.0.1:6379`): without one these tests fail, they never
//! skip. Every test uses a channel of its own, so tests running in parallel and other users of that Redis do not
//! interfere. The reconnect tests start private `redis-server` processes (on PATH) on free ports and kill them at the
//! end, also when the test fails.

mod contract;

mod support {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use livebaton::pubsub::{PubSub, PubSubConfig, RedisBackend, RedisConfig, RedisStatus, Subscription};
    use tokio::sync::watch;
    use tokio::time::{Instant, timeout, timeout_at};

    use crate::contract::pubsub::app;

    pub fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    /// A channel nobody else publishes on: unique per test, process and run.
    pub fn unique_channel() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        format!("livebaton:test:{}:{nanos}:{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Short backoff and a frequent PING, so the reconnect tests are quick.
    pub fn test_config(channel: &str) -> RedisConfig {
        RedisConfig {
            channel: channel.to_owned(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(250),
            ..RedisConfig::default()
        }
    }

    /// Connects a node, failing the test with a clear message when Redis does not answer.
    pub async fn backend_at(url: &str, name: &str, config: RedisConfig) -> Arc<RedisBackend> {
        RedisBackend::connect(url, Some(name), config).await.unwrap_or_else(|error| {
            panic!(
                "the Redis PubSub tests need a Redis server ({error}); start one, or set REDIS_URL (default \
                 redis://127.0.0.1:6379)"
            )
        })
    }

    pub fn big_rings() -> PubSubConfig {
        PubSubConfig { topic_capacity: 1024 }
    }

    /// One node alone on its channel.
    pub async fn single() -> PubSub {
        let channel = unique_channel();
        PubSub::with_backend(PubSubConfig::default(), backend_at(&redis_url(), "solo", test_config(&channel)).await)
    }

    /// Two nodes sharing a channel.
    pub async fn pair() -> (PubSub, PubSub) {
        let channel = unique_channel();
        let a = backend_at(&redis_url(), "a", test_config(&channel)).await;
        let b = backend_at(&redis_url(), "b", test_config(&channel)).await;
        (PubSub::with_backend(PubSubConfig::default(), a), PubSub::with_backend(PubSubConfig::default(), b))
    }

    /// Waits (at most 20 s) until the node's status satisfies `ok`.
    pub async fn wait_status(
        status: &mut watch::Receiver<RedisStatus>,
        what: &str,
        ok: impl FnMut(&RedisStatus) -> bool,
    ) {
        let outcome = timeout(Duration::from_secs(20), status.wait_for(ok)).await.map(|waited| waited.is_ok());
        match outcome {
            Ok(true) => {}
            Ok(false) => panic!("the backend stopped while waiting for: {what}"),
            Err(_) => panic!("not within 20 s: {what} (status {:?})", *status.borrow()),
        }
    }

    /// Waits (at most 20 s) until `condition` holds.
    pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
        livebaton_testkit::eventually_within(what, Duration::from_secs(20), condition).await;
    }

    /// Broadcasts messages named `name` from `from` until `to` receives one. Right after Redis returns, a message can
    /// reach Redis before the receiving node has resubscribed, and Redis pub/sub keeps nothing for it: so retry.
    pub async fn probe(from: &PubSub, to: &mut Subscription, name: &str) {
        let flowing = async {
            for n in 0.. {
                // While the sender is still reconnecting its queue may be full; only the delivery matters.
                let _ = from.broadcast(to.topic(), app(name, n));
                let until = Instant::now() + Duration::from_millis(200);
                loop {
                    match timeout_at(until, to.recv()).await {
                        Ok(Ok(broadcast)) if broadcast.event() == name => return,
                        Ok(_) => continue,
                        Err(_) => break,
                    }
                }
            }
        };
        timeout(Duration::from_secs(20), flowing)
            .await
            .unwrap_or_else(|_| panic!("{name}: nothing got through in 20 s"));
    }

    #[path = "redis_server.rs"]
    mod redis_server;

    pub use redis_server::{Proxy, RedisServer, free_port};
}

mod single_node {
    crate::single_node_contract!(crate::support::single().await);
}

mod two_nodes {
    crate::multi_node_contract!(crate::support::pair().await);
}

mod redis_only {
    use std::time::Duration;

    use livebaton::pubsub::{
        BackendError, PubSub, PubSubBackend, PubSubConfig, PubSubError, RedisBackend, RedisBackendError, RedisConfig,
    };

    use crate::contract::pubsub::{app, assert_silent, next, number};
    use crate::support::{
        Proxy, RedisServer, backend_at, big_rings, eventually, free_port, probe, redis_url, test_config,
        unique_channel, wait_status,
    };

    /// A node's broadcast reaches its own local subscriber exactly once: Redis echoes it back to the node, and the
    /// echo is recognised and dropped.
    #[tokio::test]
    async fn a_node_never_receives_its_own_broadcast_twice() {
        let channel = unique_channel();
        let a_backend = backend_at(&redis_url(), "a", test_config(&channel)).await;
        let b_backend = backend_at(&redis_url(), "b", test_config(&channel)).await;
        let a = PubSub::with_backend(PubSubConfig::default(), a_backend.clone());
        let b = PubSub::with_backend(PubSubConfig::default(), b_backend);
        let mut on_a = a.subscribe("room");
        let mut on_b = b.subscribe("room");

        assert_eq!(a.broadcast("room", app("mine", 1)).unwrap(), 1, "one local delivery");
        assert_eq!(number(&next(&mut on_b).await), 1);
        // B answers after receiving 1, so Redis ran A's PUBLISH of 1 before B's PUBLISH of 2, and A's subscribing
        // connection carries the echo of 1 before 2: once A has 2, the echo has been handled.
        b.broadcast("room", app("reply", 2)).unwrap();
        assert_eq!(number(&next(&mut on_a).await), 1);
        assert_eq!(number(&next(&mut on_a).await), 2, "the echo of 1 was not delivered again");
        assert_silent(&mut on_a).await;
        let stats = a_backend.stats();
        assert!(stats.echoes >= 1, "A's echo came back and was skipped: {stats:?}");
        assert_eq!(stats.received, 1, "A delivered only B's message: {stats:?}");
    }

    /// Many broadcasts on two interleaved topics reach the other node in publish order (they travel in pipelined
    /// batches on one connection).
    #[tokio::test]
    async fn order_is_kept_between_nodes() {
        let channel = unique_channel();
        let a = PubSub::with_backend(big_rings(), backend_at(&redis_url(), "a", test_config(&channel)).await);
        let b = PubSub::with_backend(big_rings(), backend_at(&redis_url(), "b", test_config(&channel)).await);
        let mut even = b.subscribe("even");
        let mut odd = b.subscribe("odd");
        let total = 1_000;
        for n in 0..total {
            a.broadcast(if n % 2 == 0 { "even" } else { "odd" }, app("n", n)).unwrap();
        }
        for n in (0..total).step_by(2) {
            assert_eq!(number(&next(&mut even).await), n);
            assert_eq!(number(&next(&mut odd).await), n + 1);
        }
    }

    /// Cross-node broadcast latency, one message in flight at a time: from `broadcast` on A to B's subscriber
    /// holding it. Only delivery is asserted; the figures are printed for BENCHMARKS.md.
    #[tokio::test]
    async fn cross_node_broadcast_latency() {
        let channel = unique_channel();
        let a = PubSub::with_backend(big_rings(), backend_at(&redis_url(), "a", test_config(&channel)).await);
        let b = PubSub::with_backend(big_rings(), backend_at(&redis_url(), "b", test_config(&channel)).await);
        let mut on_b = b.subscribe("room");
        let mut latencies = Vec::new();
        for n in 0..500 {
            let sent = std::time::Instant::now();
            a.broadcast("room", app("n", n)).unwrap();
            assert_eq!(number(&next(&mut on_b).await), n);
            latencies.push(sent.elapsed());
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "cross-node broadcast ({} messages, one at a time, shared Redis): p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            at(0.5),
            at(0.99),
            latencies[latencies.len() - 1]
        );
    }

    /// No Redis at the address: `connect` fails with an error that says where it looked, and never shows a password.
    #[tokio::test]
    async fn connecting_to_a_missing_redis_fails_clearly() {
        let port = free_port();
        let url = format!("redis://user:secret@127.0.0.1:{port}");
        let error = RedisBackend::connect(&url, None, test_config(&unique_channel())).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, RedisBackendError::Connect { .. } | RedisBackendError::Timeout { .. }), "{error:?}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let invalid = RedisBackend::connect("http://nowhere", None, RedisConfig::default()).await.unwrap_err();
        assert!(matches!(invalid, RedisBackendError::InvalidUrl(_)), "{invalid:?}");
    }

    /// Node names are unique per channel within a process; without a name a node gets a random one.
    #[tokio::test]
    async fn node_names_are_unique_per_channel() {
        let channel = unique_channel();
        let first = backend_at(&redis_url(), "same", test_config(&channel)).await;
        let error = RedisBackend::connect(&redis_url(), Some("same"), test_config(&channel)).await.unwrap_err();
        assert!(matches!(error, RedisBackendError::NameInUse { .. }), "{error:?}");
        let elsewhere = backend_at(&redis_url(), "same", test_config(&unique_channel())).await;
        let anonymous = RedisBackend::connect(&redis_url(), None, test_config(&channel)).await.unwrap();
        let other = RedisBackend::connect(&redis_url(), None, test_config(&channel)).await.unwrap();
        assert!(anonymous.node_name().starts_with("node-"), "{}", anonymous.node_name());
        assert_ne!(anonymous.node_name(), other.node_name());
        let empty = RedisBackend::connect(&redis_url(), Some(""), test_config(&channel)).await.unwrap_err();
        assert!(matches!(empty, RedisBackendError::Config(_)), "{empty:?}");
        drop(first);
        backend_at(&redis_url(), "same", test_config(&channel)).await;
        drop(elsewhere);
    }

    /// Once the PubSub (and with it the backend) is dropped, the backend's tasks and the Redis client's connection
    /// tasks all end.
    #[tokio::test]
    async fn dropping_the_pubsub_ends_every_task() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let backend = backend_at(&redis_url(), "a", test_config(&unique_channel())).await;
        let mut status = backend.status();
        let pubsub = PubSub::with_backend(PubSubConfig::default(), backend);
        let mut subscription = pubsub.subscribe("t");
        pubsub.broadcast("t", app("x", 1)).unwrap();
        next(&mut subscription).await;
        assert!(metrics.num_alive_tasks() > before);
        drop(subscription);
        drop(pubsub);
        // The status sender lives exactly as long as the backend and its tasks.
        let closed = tokio::time::timeout(Duration::from_secs(5), async { while status.changed().await.is_ok() {} });
        closed.await.expect("the backend's tasks end");
        eventually("no task left behind", || metrics.num_alive_tasks() == before).await;
    }

    /// Messages broadcast just before a node shuts down still reach the other nodes: the publisher sends what is
    /// queued before it stops.
    #[tokio::test]
    async fn a_node_sends_what_it_queued_before_it_stops() {
        let channel = unique_channel();
        let a = PubSub::with_backend(big_rings(), backend_at(&redis_url(), "a", test_config(&channel)).await);
        let b = PubSub::with_backend(big_rings(), backend_at(&redis_url(), "b", test_config(&channel)).await);
        let mut on_b = b.subscribe("room");
        for n in 0..200 {
            a.broadcast("room", app("last words", n)).unwrap();
        }
        drop(a);
        for n in 0..200 {
            assert_eq!(number(&next(&mut on_b).await), n);
        }
    }

    /// A Redis that stops answering without closing its connections (frozen with SIGSTOP, like a host that vanished
    /// from the network) is noticed through the subscriber's PING; when it answers again the node resubscribes.
    #[tokio::test]
    async fn a_silent_redis_is_noticed_by_ping_and_the_node_resubscribes() {
        let server = RedisServer::start().await;
        let config = RedisConfig {
            ping_interval: Duration::from_millis(100),
            command_timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(300),
            ..test_config(&unique_channel())
        };
        let a_backend = backend_at(&server.url(), "a", config.clone()).await;
        let b_backend = backend_at(&server.url(), "b", config).await;
        let mut a_status = a_backend.status();
        let a = PubSub::with_backend(big_rings(), a_backend);
        let b = PubSub::with_backend(big_rings(), b_backend);
        let mut on_a = a.subscribe("room");

        server.signal("-STOP");
        wait_status(&mut a_status, "A notices Redis is silent", |status| !status.connected).await;
        server.signal("-CONT");
        wait_status(&mut a_status, "A resubscribed", |status| status.connected && status.reconnects == 1).await;
        probe(&b, &mut on_a, "b-to-a").await;
    }

    /// Redis is killed and restarted on the same port. Both nodes notice; while it is away a node queues up to its
    /// bound and then refuses with `QueueFull` (its local subscribers get everything regardless); once Redis is back
    /// both nodes resubscribe, report it, and broadcasts flow both ways again.
    #[tokio::test]
    async fn after_a_redis_restart_nodes_resubscribe_and_broadcasts_flow_again() {
        let mut server = RedisServer::start().await;
        let config = RedisConfig { queue_capacity: 8, ..test_config(&unique_channel()) };
        let a_backend = backend_at(&server.url(), "a", config.clone()).await;
        let b_backend = backend_at(&server.url(), "b", config).await;
        let (mut a_status, mut b_status) = (a_backend.status(), b_backend.status());
        let a = PubSub::with_backend(big_rings(), a_backend.clone());
        let b = PubSub::with_backend(big_rings(), b_backend);
        let mut on_a = a.subscribe("room");
        let mut on_b = b.subscribe("room");
        probe(&a, &mut on_b, "a-to-b").await;
        probe(&b, &mut on_a, "b-to-a").await;
        while on_a.try_recv().unwrap().is_some() {}

        server.kill();
        wait_status(&mut a_status, "A sees Redis gone", |status| !status.connected).await;
        wait_status(&mut b_status, "B sees Redis gone", |status| !status.connected).await;
        for n in 0..8 {
            assert_eq!(a.broadcast("room", app("queued", n)).unwrap(), 1, "queued while down");
        }
        match a.broadcast("room", app("refused", 8)) {
            Err(PubSubError::Forward(BackendError::QueueFull)) => {}
            other => panic!("expected QueueFull past the bound, got {other:?}"),
        }
        assert_eq!(a_backend.stats().queued, 8);
        let mut local = Vec::new();
        while local.len() < 9 {
            // A late probe from before the kill may still be in the ring.
            let broadcast = next(&mut on_a).await;
            if broadcast.event() != "b-to-a" {
                local.push(number(&broadcast));
            }
        }
        assert_eq!(local, (0..9).collect::<Vec<_>>(), "local subscribers get every message");

        server.restart().await;
        wait_status(&mut a_status, "A resubscribed", |status| status.connected && status.reconnects == 1).await;
        wait_status(&mut b_status, "B resubscribed", |status| status.connected && status.reconnects == 1).await;
        probe(&a, &mut on_b, "a-to-b-again").await;
        probe(&b, &mut on_a, "b-to-a-again").await;
        eventually("A's queue drained", || a_backend.stats().queued == 0).await;
        assert!(a_backend.stats().publisher_reconnects >= 1);
    }

    /// A's connections are cut (a proxy in between stops) while B stays subscribed. What A broadcasts meanwhile waits
    /// in its queue, up to the bound, and reaches B in order once A reconnects; the message refused with `QueueFull`
    /// never arrives. A resubscribes too.
    #[tokio::test]
    async fn messages_queued_while_disconnected_are_delivered_in_order_after_reconnect() {
        let server = RedisServer::start().await;
        let mut proxy = Proxy::start(format!("127.0.0.1:{}", server.port)).await;
        let config = RedisConfig { queue_capacity: 8, ..test_config(&unique_channel()) };
        let a_backend = backend_at(&proxy.url(), "a", config.clone()).await;
        let b_backend = backend_at(&server.url(), "b", config).await;
        let (mut a_status, b_status) = (a_backend.status(), b_backend.status());
        let a = PubSub::with_backend(big_rings(), a_backend.clone());
        let b = PubSub::with_backend(big_rings(), b_backend);
        let mut on_a = a.subscribe("room");
        let mut on_b = b.subscribe("room");
        a.broadcast("room", app("before", 100)).unwrap();
        assert_eq!(number(&next(&mut on_b).await), 100);

        proxy.stop().await;
        wait_status(&mut a_status, "A sees its connection cut", |status| !status.connected).await;
        assert!(b_status.borrow().connected, "B is not affected");
        for n in 0..8 {
            a.broadcast("room", app("queued", n)).unwrap();
        }
        assert!(matches!(a.broadcast("room", app("refused", 8)), Err(PubSubError::Forward(BackendError::QueueFull))));

        proxy.restart().await;
        wait_status(&mut a_status, "A resubscribed", |status| status.connected && status.reconnects == 1).await;
        for n in 0..8 {
            let broadcast = next(&mut on_b).await;
            assert_eq!((broadcast.event(), number(&broadcast)), ("queued", n));
        }
        // B can have them before Redis's acknowledgement reaches A, and the bound counts unacknowledged messages.
        eventually("A's queue drained", || a_backend.stats().queued == 0).await;
        a.broadcast("room", app("after", 9)).unwrap();
        assert_eq!(number(&next(&mut on_b).await), 9, "the refused message was never sent");
        while on_a.try_recv().unwrap().is_some() {}
        b.broadcast("room", app("to-a", 10)).unwrap();
        assert_eq!(number(&next(&mut on_a).await), 10, "A receives again");
        assert_eq!(a_backend.stats().publisher_reconnects, 1);
    }
}
