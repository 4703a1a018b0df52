//! The sign-in throttle of a cluster (mirrors `src/accounts/redis_throttle.rs` and `src/accounts/sign_in_throttle.rs`):
//! the nodes count failures together in Redis, so two nodes allow the guesses of one; a success on one node forgets
//! the account on the other; while Redis is unreachable each node still throttles on its own. Needs `REDIS_URL`
//! (fails, never skips, without Redis); every test uses a key prefix of its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use livebaton::{Engine, RedisAddress};
use livebaton_admin::accounts::{
    PasswordHasher, RedisThrottle, Role, SignInThrottle, ThrottleConfig, Throttled, random_token,
};
use livebaton_admin::app::{AppState, router};
use livebaton_admin::storage::Store;
use serde_json::json;
use tower::ServiceExt;

const EMAIL: &str = "admin@example.com";
const PASSWORD: &str = "the admin's password";
const SECRET: &str = "a-secret-key-base-for-the-cluster-sign-in-tests-0123456789";

fn redis() -> RedisAddress {
    RedisAddress::new(std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()))
}

fn config(per_account: usize, per_address: usize) -> ThrottleConfig {
    ThrottleConfig { per_account, per_address, window: Duration::from_secs(900), max_keys: 1000 }
}

/// A node's throttle over the cluster's `prefix` in Redis.
fn node(prefix: &str, config: ThrottleConfig) -> SignInThrottle {
    let shared = RedisThrottle::new(&redis(), prefix, config.clone()).expect("a Redis address");
    SignInThrottle::shared(shared, config)
}

fn prefix() -> String {
    format!("livebaton:test:signin:{}", random_token(8))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

/// Failures on two nodes add up: 2 on A and 1 on B close the account (limit 3) on both, for the first delay.
#[tokio::test]
async fn failures_on_two_nodes_add_up() {
    let prefix = prefix();
    let (a, b) = (node(&prefix, config(3, 100)), node(&prefix, config(3, 100)));
    assert!(a.is_shared());
    a.begin("Alice@x.io", ip("10.0.0.1")).await.expect("first").failed();
    a.begin("alice@x.io", ip("10.0.0.1")).await.expect("second").failed();
    b.begin("alice@x.io", ip("10.0.0.1")).await.expect("third").failed();
    let Err(Throttled { retry_after }) = a.check("alice@x.io", ip("10.0.0.1")).await else {
        panic!("node A must see node B's failure")
    };
    assert!(retry_after > Duration::from_secs(3) && retry_after <= Duration::from_secs(5), "{retry_after:?}");
    assert!(b.begin("alice@x.io", ip("10.0.0.1")).await.is_err(), "node B is closed too");
    assert!(b.check("bob@x.io", ip("10.0.0.1")).await.is_ok(), "other accounts are not affected");
    assert!(a.check("alice@x.io", ip("10.0.0.2")).await.is_ok(), "nor the account from another address");
}

/// 40 concurrent guesses spread over two nodes: only the limit starts, wherever they land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_on_two_nodes_stop_at_the_limit() {
    let prefix = prefix();
    let nodes = [node(&prefix, config(5, 100)), node(&prefix, config(5, 100))];
    let nodes = &nodes;
    let guesses = (0..40).map(|n| async move { nodes[n % 2].begin("alice@x.io", ip("10.0.0.1")).await.ok() });
    let started: Vec<_> = futures_util::future::join_all(guesses).await.into_iter().flatten().collect();
    assert_eq!(started.len(), 5, "only the limit starts before any verdict");
}

/// A success on one node forgets the account's failures everywhere, and makes the address known to the account
/// everywhere: guesses from many other addresses then slow newcomers but never the known address.
#[tokio::test]
async fn a_success_on_one_node_counts_on_every_node() {
    let prefix = prefix();
    let (a, b) = (node(&prefix, config(3, 1000)), node(&prefix, config(3, 1000)));
    a.begin("alice@x.io", ip("10.0.0.1")).await.unwrap().failed();
    a.begin("alice@x.io", ip("10.0.0.1")).await.unwrap().failed();
    b.begin("alice@x.io", ip("10.0.0.1")).await.unwrap().succeeded().await;
    a.begin("alice@x.io", ip("10.0.0.1")).await.unwrap().failed();
    a.begin("alice@x.io", ip("10.0.0.1")).await.unwrap().failed();
    assert!(a.check("alice@x.io", ip("10.0.0.1")).await.is_ok(), "counted afresh from B's success");

    // 30 failures (ten times the limit) from 30 other addresses, on both nodes: the account is slowed for newcomers.
    for n in 0..30 {
        let node = if n % 2 == 0 { &a } else { &b };
        node.begin("alice@x.io", ip(&format!("10.9.0.{n}"))).await.unwrap().failed();
    }
    assert!(b.check("alice@x.io", ip("10.8.0.1")).await.is_err(), "a new address waits");
    assert!(b.check("alice@x.io", ip("10.0.0.1")).await.is_ok(), "the known address is let in, on either node");
}

/// With Redis unreachable, each node keeps counting on its own (closed after the limit), and answers promptly.
#[tokio::test]
async fn a_node_throttles_on_its_own_while_redis_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let address = RedisAddress::new(format!("redis://127.0.0.1:{port}"));
    let throttle =
        SignInThrottle::shared(RedisThrottle::new(&address, &prefix(), config(2, 100)).unwrap(), config(2, 100));
    throttle.begin("alice@x.io", ip("10.0.0.1")).await.expect("first, counted here").failed();
    throttle.begin("alice@x.io", ip("10.0.0.1")).await.expect("second, counted here").failed();
    assert!(throttle.begin("alice@x.io", ip("10.0.0.1")).await.is_err(), "closed by the node's own count");
}

/// One admin account, two nodes over one database, each with its own router and hasher, counting in one Redis.
async fn cluster(prefix: &str) -> (tempfile::TempDir, [(Router, Arc<PasswordHasher>); 2]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let store = Store::connect(&url).await.expect("the store opens");
    livebaton_admin::seed::upsert_user(&store, EMAIL, PASSWORD, Role::Admin, None).await.expect("the admin");
    let node = |store: Store| {
        let hasher = Arc::new(PasswordHasher::new(2, Duration::from_secs(60)));
        let state = AppState::new(store, Engine::new(Default::default()), SECRET, ThrottleConfig::default())
            .with_throttle(node(prefix, ThrottleConfig::default()))
            .with_hasher(hasher.clone());
        (router(state), hasher)
    };
    (dir, [node(store.clone()), node(store)])
}

async fn api_sign_in(router: &Router, password: &str) -> StatusCode {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/tokens")
        .header("content-type", "application/json")
        .body(Body::from(json!({"email": EMAIL, "password": password}).to_string()))
        .expect("a valid request");
    request.extensions_mut().insert(ConnectInfo("10.0.0.1:5000".parse::<SocketAddr>().unwrap()));
    router.clone().oneshot(request).await.expect("the router never fails").status()
}

/// 40 wrong passwords sent at once, alternating between two nodes, through `POST /api/tokens`: 5 are hashed and
/// answered 401 in all (the default limit of one node), 35 are answered 429. Each node counting alone let 10 through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_allow_the_guesses_of_one() {
    let prefix = prefix();
    let (_dir, nodes) = cluster(&prefix).await;
    let nodes = &nodes;
    let guesses = (0..40).map(|n| async move { api_sign_in(&nodes[n % 2].0, "wrong").await });
    let statuses = futures_util::future::join_all(guesses).await;
    let count = |status: StatusCode| statuses.iter().filter(|each| **each == status).count();
    assert_eq!(
        (count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS)),
        (5, 35),
        "statuses: {statuses:?}"
    );
    assert_eq!(nodes[0].1.computed() + nodes[1].1.computed(), 5, "only the admitted guesses reach Argon2");
}
