//! Private Redis servers and TCP proxies for the Redis suites (`pubsub_redis.rs`, `presence_redis.rs`): a
//! `redis-server` child process per test that can be killed, frozen and restarted on its port, and a proxy that can
//! cut (or slow) one node's connections while the others' stay up.
// Shared by several test crates; each uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// A private `redis-server` child process, killed when dropped (also when the test panics). It runs in its own
/// directory (removed when dropped), where `SAVE` writes its snapshot and from which it loads one at start.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("livebaton-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = RedisServer { port, child: None, dir };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port, empty) and waits until it answers.
    pub async fn restart(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        self.start_process().await;
    }

    /// Writes a snapshot of the dataset now (`SAVE`) and returns a copy of it, for [`RedisServer::restart_from`].
    pub async fn snapshot(&self, name: &str) -> PathBuf {
        let _: () = redis::cmd("SAVE").query_async(&mut raw(&self.url()).await).await.expect("SAVE");
        let copy = self.dir.join(format!("{name}.rdb"));
        std::fs::copy(self.dir.join("dump.rdb"), &copy).expect("copy the snapshot");
        copy
    }

    /// Kills the server and starts it again on the same port from `snapshot`, as an operator restoring a backup
    /// (or a replica that is behind being promoted) would.
    pub async fn restart_from(&mut self, snapshot: &Path) {
        self.kill();
        std::fs::copy(snapshot, self.dir.join("dump.rdb")).expect("put the snapshot in place");
        self.start_process().await;
    }

    async fn start_process(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(&self.dir)
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

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: its connections stay open but nothing answers.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill(1) runs");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// Kills the server at once (SIGKILL: no goodbye to its clients beyond the kernel closing their sockets).
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
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// A plain connection to `url`, for looking at (or flushing) Redis from a test. Its replies may take up to 10 s:
/// redis-rs gives up after 500 ms by default, and a `SAVE` (which fsyncs the snapshot) on a machine busy compiling
/// takes longer than that.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("a Redis URL");
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    timeout(Duration::from_secs(5), client.get_multiplexed_async_connection_with_config(&config))
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
