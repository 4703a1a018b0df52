//! Redis helpers for the clustered presence tests: the shared Redis at `REDIS_URL`, private `redis-server` processes,
//! unique key prefixes and channels, and clusters of engines (each with its own PubSub backend and roster: a node).
//!
//! Tests fail (never skip) when Redis does not answer.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livebaton::presence::{PresenceConfig, RedisRosterConfig};
use livebaton::pubsub::RedisConfig;
use livebaton::{Engine, EngineConfig, RedisEngineConfig};
use tokio::time::{Instant, sleep, timeout};

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

pub fn engine_config(grace: Duration) -> EngineConfig {
    EngineConfig { presence: PresenceConfig { leave_grace: grace, ..Default::default() }, ..Default::default() }
}

/// Connects one node, failing the test with a clear message when Redis does not answer.
pub async fn node(url: &str, name: &str, config: EngineConfig, redis: RedisEngineConfig) -> Engine {
    Engine::with_redis_config(config, url, name, redis).await.unwrap_or_else(|error| {
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
        delete_prefix(&self.url, &self.prefix);
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
    Cluster { nodes, url: url.to_owned(), prefix: prefix.to_owned() }
}

/// `n` nodes sharing one fresh roster on the shared Redis, with a 300 ms leave grace (what the contract expects).
pub async fn cluster(n: usize) -> Cluster {
    cluster_at(&redis_url(), n, Duration::from_millis(300), &unique_prefix()).await
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// A private `redis-server` child process, killed when dropped (also when the test panics).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = RedisServer { port: free_port(), child: None };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port, empty) and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("could not start redis-server ({error}); these tests need it on PATH"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&self.url()).await {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                panic!("redis-server on port {port} exited: {status}");
            }
            assert!(Instant::now() < deadline, "redis-server on port {port} did not answer within 10 s");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let ping = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut connection).await
    };
    matches!(timeout(Duration::from_secs(1), ping).await, Ok(Ok(_)))
}

/// A plain connection to `url`, for looking at (or flushing) Redis from a test.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("a Redis URL");
    timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .expect("Redis answers")
        .expect("Redis accepts a connection")
}

/// A TCP proxy in front of Redis, so one node's connections can be cut (or slowed) while the others' stay up.
pub struct Proxy {
    pub port: u16,
    target: String,
    /// Added to everything Redis sends back, as to a node far away.
    latency: Duration,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: String) -> Self {
        Self::with_latency(target, Duration::ZERO).await
    }

    /// A proxy that delays every reply and every message from Redis by `latency` (in order).
    pub async fn with_latency(target: String, latency: Duration) -> Self {
        let mut proxy = Proxy { port: free_port(), target, latency, task: None };
        proxy.restart().await;
        proxy
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Listens (again, on the same port) and forwards every connection.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("the proxy's port is free");
        let target = self.target.clone();
        let latency = self.latency;
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task, which aborts every forwarded connection.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let target = target.clone();
                connections.spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                    if latency.is_zero() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                    let (mut client_read, mut client_write) = client.split();
                    let (mut server_read, mut server_write) = server.split();
                    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
                    let downstream = async {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buffer = vec![0u8; 64 * 1024];
                        loop {
                            let read = server_read.read(&mut buffer).await?;
                            if read == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            sleep(latency).await;
                            client_write.write_all(&buffer[..read]).await?;
                        }
                    };
                    let _ = tokio::join!(upstream, downstream);
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Stops listening and cuts every forwarded connection.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}
