//! Redis reached as a managed one is: over TLS (`rediss://`) with a password or an ACL user, the server's certificate
//! signed by a private CA the test makes. The whole presence contract (presences, their diffs through the PubSub
//! backend, drafts, fencing) runs on two nodes over such a server; and every way of getting the connection wrong
//! fails at start within seconds with an error that names the cause: a wrong or missing password, an unknown user,
//! an untrusted certificate, plain `redis://` to the TLS port.
//!
//! Every test starts its own `redis-server` (on PATH, built with TLS as Debian's is) on a free port and kills it at
//! the end: without one these tests fail, they never skip.

mod contract;
mod support;

mod two_nodes_over_tls {
    crate::presence_contract!(crate::support::tls_cluster(2).await);
}

mod connecting {
    use std::time::Duration;

    use livebaton::presence::{RedisRoster, RedisRosterError};
    use livebaton::pubsub::{JsonMessage, RedisBackendError};
    use livebaton::{Engine, EngineError, RedisAddress};
    use serde_json::json;
    use tokio::time::{Instant, timeout};

    use crate::contract::presence::{eventually, keys, meta};
    use crate::support::{ACL_USER, TlsRedisServer, engine_config, node, redis_config, unique_prefix};

    /// How long a refused start may take: the test config's connect timeout is 2 s, and a refusal must not wait for it.
    const REFUSED_WITHIN: Duration = Duration::from_secs(5);

    /// Starts a node on `redis`, giving up (failing the test) if it takes longer than [`REFUSED_WITHIN`].
    async fn start(redis: RedisAddress) -> Result<Engine, EngineError> {
        let config = redis_config(&unique_prefix());
        let started = Instant::now();
        let result =
            timeout(REFUSED_WITHIN, Engine::with_redis_config(engine_config(Duration::ZERO), redis, "n", config))
                .await
                .unwrap_or_else(|_| panic!("starting a node hung for {REFUSED_WITHIN:?}"));
        println!("start took {:?}", started.elapsed());
        result
    }

    /// The error of a start that must fail.
    async fn refused(redis: RedisAddress) -> EngineError {
        start(redis).await.err().expect("the start is refused")
    }

    fn trusting_its_ca(server: &TlsRedisServer, url: String) -> RedisAddress {
        RedisAddress::new(url).with_ca_cert(server.certificates.ca_pem())
    }

    /// Two nodes logged in as an ACL user (`user:password@`, the host by name, checked against the certificate) see
    /// each other's broadcasts and presences.
    #[tokio::test]
    async fn an_acl_user_connects_by_host_name_and_nodes_see_each_other() {
        let server = TlsRedisServer::start("secret");
        let redis = trusting_its_ca(&server, server.url_as(ACL_USER.0, ACL_USER.1));
        let config = redis_config(&unique_prefix());
        let a = node(&redis, "a", engine_config(Duration::ZERO), config.clone()).await;
        let b = node(&redis, "b", engine_config(Duration::ZERO), config).await;

        let mut on_b = b.pubsub.subscribe("room");
        a.pubsub.broadcast("room", JsonMessage::new("hello", json!({"n": 1}))).unwrap();
        let received = timeout(Duration::from_secs(5), on_b.recv()).await.expect("within 5 s").expect("delivered");
        assert_eq!(received.event(), "hello");

        let _alice = a.presence.track("room", "alice", meta("Alice")).await.unwrap();
        let _bob = b.presence.track("room", "bob", meta("Bob")).await.unwrap();
        eventually("both nodes list both, in join order", || {
            keys(&a, "room") == ["alice", "bob"] && keys(&b, "room") == ["alice", "bob"]
        })
        .await;
    }

    /// A wrong password, none, an unknown user or a user's wrong password: the start fails at once (no retry, no
    /// wait for a timeout) with an error that says Redis refused to authenticate, and never shows the password.
    #[tokio::test]
    async fn refused_credentials_fail_the_start_at_once_naming_authentication() {
        let server = TlsRedisServer::start("secret");
        let urls = [
            server.url_with_password("wrong-secret"),
            format!("rediss://127.0.0.1:{}", server.port),
            server.url_as("nobody", "wrong-secret"),
            server.url_as(ACL_USER.0, "wrong-secret"),
        ];
        for url in urls {
            let error = refused(trusting_its_ca(&server, url.clone())).await;
            let message = error.to_string();
            assert!(matches!(error, EngineError::PubSub(RedisBackendError::Authentication { .. })), "{url}: {error:?}");
            assert!(message.contains("refused to authenticate"), "{url}: {message}");
            assert!(
                message.contains(&format!("127.0.0.1:{}", server.port)) || message.contains("localhost"),
                "{message}"
            );
            assert!(!message.contains("wrong-secret") && !format!("{error:?}").contains("wrong-secret"), "{message}");
        }
    }

    /// The presence roster on its own (`Presence::connect_redis`) refuses a wrong password the same way.
    #[tokio::test]
    async fn the_roster_alone_reports_refused_credentials() {
        let server = TlsRedisServer::start("secret");
        let redis = trusting_its_ca(&server, server.url_with_password("wrong-secret"));
        let config = redis_config(&unique_prefix()).roster;
        let error = timeout(REFUSED_WITHIN, RedisRoster::connect(redis, "n", config))
            .await
            .expect("no hang")
            .expect_err("refused");
        assert!(matches!(error, RedisRosterError::Authentication { .. }), "{error:?}");
        assert!(error.to_string().contains("refused to authenticate"), "{error}");
    }

    /// A server certificate the node cannot trust (the system's roots do not know the private CA; another CA did not
    /// sign it) fails the start with an error about the certificate.
    #[tokio::test]
    async fn an_untrusted_server_certificate_fails_the_start() {
        let server = TlsRedisServer::start("secret");
        let system_roots = RedisAddress::new(server.url());
        let other_ca = RedisAddress::new(server.url()).with_ca_cert(server.certificates.other_ca_pem());
        for redis in [system_roots, other_ca] {
            let error = refused(redis.clone()).await;
            assert!(matches!(error, EngineError::PubSub(RedisBackendError::Connect { .. })), "{redis:?}: {error:?}");
            let message = error.to_string();
            assert!(message.contains("invalid peer certificate"), "{redis:?}: {message}");
            assert!(message.contains("not signed by a CA trusted here"), "{redis:?}: {message}");
        }
    }

    /// `redis://` to a port that speaks only TLS fails the start at once (the server closes the connection), with a
    /// hint to use `rediss://`.
    #[tokio::test]
    async fn plain_redis_to_the_tls_port_fails_the_start() {
        let server = TlsRedisServer::start("secret");
        let error = refused(RedisAddress::new(format!("redis://:secret@127.0.0.1:{}", server.port))).await;
        assert!(matches!(error, EngineError::PubSub(RedisBackendError::Connect { .. })), "{error:?}");
        assert!(error.to_string().contains("if it speaks TLS, use a rediss:// URL"), "{error}");
    }

    /// A CA certificate makes sense only with `rediss://`, and must hold a certificate: said before connecting.
    #[tokio::test]
    async fn a_ca_certificate_needs_rediss_and_a_certificate() {
        let server = TlsRedisServer::start("secret");
        let plain = RedisAddress::new(format!("redis://:secret@127.0.0.1:{}", server.port))
            .with_ca_cert(server.certificates.ca_pem());
        let error = refused(plain).await;
        assert!(matches!(error, EngineError::PubSub(RedisBackendError::InvalidUrl(_))), "{error:?}");
        assert!(error.to_string().contains("rediss://"), "{error}");
        let garbage = RedisAddress::new(server.url()).with_ca_cert("not a certificate");
        let error = refused(garbage).await;
        assert!(matches!(error, EngineError::PubSub(RedisBackendError::InvalidUrl(_))), "{error:?}");
    }
}
