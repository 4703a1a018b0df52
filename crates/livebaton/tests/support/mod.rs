//! Redis helpers for the clustered presence tests: the shared Redis at `REDIS_URL`, private `redis-server` processes
//! (plain, or TLS with a password), unique key prefixes and channels, and clusters of engines (each with its own PubSub
//! backend and roster: a node).
//!
//! Tests fail (never skip) when Redis does not answer.
// Shared by several test crates (the presence suite, the TLS suite); each uses part of it.
#![allow(dead_code, unused_imports)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livebaton::presence::{PresenceConfig, RedisRosterConfig};
use livebaton::pubsub::RedisConfig;
use livebaton::{Engine, EngineConfig, RedisAddress, RedisEngineConfig};
mod redis_server;
mod tls;

pub use redis_server::{Proxy, RedisServer, free_port, raw};
pub use tls::{ACL_USER, Certificates, TempDir, TlsRedisServer};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix and channel nobody else uses: unique per test, process and run.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("livebaton:test:{}:{nanos}:{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Redis settings for one test cluster: its own channel and prefix, quick reconnects.
pub fn redis_config(prefix: &str) -> RedisEngineConfig {
    RedisEngineConfig {
        pubsub: RedisConfig {
            channel: format!("{prefix}:pubsub"),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(250),
            ..RedisConfig::default()
        },
        roster: RedisRosterConfig {
            prefix: format!("{prefix}:presence"),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(250),
            ..RedisRosterConfig::default()
        },
    }
}

/// Roster settings for tests that cut a node off from Redis: commands and connects give up after 500 ms and the
/// connection is pinged every `ping`, so the cut is noticed well within a test's lease.
pub fn notice_cuts_quickly(config: &mut RedisEngineConfig, ping: Duration) {
    config.roster.command_timeout = Duration::from_millis(500);
    config.roster.connect_timeout = Duration::from_millis(500);
    config.roster.ping_interval = ping;
}

pub fn engine_config(grace: Duration) -> EngineConfig {
    EngineConfig { presence: PresenceConfig { leave_grace: grace, ..Default::default() }, ..Default::default() }
}

/// Connects one node, failing the test with a clear message when Redis does not answer.
pub async fn node(
    redis_at: impl Into<RedisAddress>,
    name: &str,
    config: EngineConfig,
    redis: RedisEngineConfig,
) -> Engine {
    Engine::with_redis_config(config, redis_at, name, redis).await.unwrap_or_else(|error| {
        panic!(
            "the clustered presence tests need a Redis server ({error}); start one, or set REDIS_URL (default \
             redis://127.0.0.1:6379)"
        )
    })
}

/// The nodes of one test cluster. Dropping it halts every node and deletes the cluster's keys, so tests leave nothing
/// behind in a shared Redis.
pub struct Cluster {
    pub nodes: Vec<Engine>,
    url: String,
    prefix: String,
    /// The cluster's private server, stopped after the nodes (fields drop after `Drop::drop`).
    server: Option<TlsRedisServer>,
}

impl Cluster {
    /// The cluster's key prefix (the roster's keys are under `<prefix>:presence`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis the cluster uses.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::ops::Deref for Cluster {
    type Target = [Engine];

    fn deref(&self) -> &[Engine] {
        &self.nodes
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(roster) = &node.roster {
                roster.halt();
            }
        }
        // A private server goes with its keys.
        if self.server.is_none() {
            delete_prefix(&self.url, &self.prefix);
        }
    }
}

/// Deletes every key under `prefix` (synchronously: it runs from `Drop`).
pub fn delete_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(2)) else { return };
    let keys: Vec<String> = match redis::Commands::scan_match(&mut connection, format!("{prefix}:*")) {
        Ok(keys) => keys.filter_map(Result::ok).collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(500) {
        let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut connection);
    }
}

/// `n` nodes sharing one fresh roster on `url` under `prefix`.
pub async fn cluster_at(url: &str, n: usize, grace: Duration, prefix: &str) -> Cluster {
    let redis = redis_config(prefix);
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(node(url, &format!("n{i}"), engine_config(grace), redis.clone()).await);
    }
    Cluster { nodes, url: url.to_owned(), prefix: prefix.to_owned(), server: None }
}

/// `n` nodes on a private [`TlsRedisServer`] of their own, reached as a managed Redis is: `rediss://` with the
/// password, trusting the server's private CA. A 300 ms leave grace (what the contract expects).
pub async fn tls_cluster(n: usize) -> Cluster {
    let server = TlsRedisServer::start("tls-secret");
    let address = RedisAddress::new(server.url()).with_ca_cert(server.certificates.ca_pem());
    let prefix = unique_prefix();
    let redis = redis_config(&prefix);
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(node(&address, &format!("n{i}"), engine_config(Duration::from_millis(300)), redis.clone()).await);
    }
    Cluster { nodes, url: server.url(), prefix, server: Some(server) }
}

/// `n` nodes sharing one fresh roster on the shared Redis, with a 300 ms leave grace (what the contract expects).
pub async fn cluster(n: usize) -> Cluster {
    cluster_at(&redis_url(), n, Duration::from_millis(300), &unique_prefix()).await
}
