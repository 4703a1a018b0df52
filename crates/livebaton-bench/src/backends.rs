//! What two nodes share in the `cross-node` scenario: a private `redis-server` child process on a free loopback port,
//! and a throwaway PostgreSQL database on an existing server. Both go away when the run ends (the Redis process is
//! killed on drop; the database is dropped by [`Database::drop_now`], also after a failed run).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A `redis-server` without persistence, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    _child: Child,
}

impl RedisServer {
    /// Starts one on a free port and waits (at most 10 s) until it answers `PING`.
    pub async fn start() -> anyhow::Result<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (Debian: apt-get install redis-server)")?;
        let server = RedisServer { port, _child: child };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !server.answers().await {
            if tokio::time::Instant::now() > deadline {
                bail!("redis-server on port {port} did not answer PING within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn answers(&self) -> bool {
        let ping = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            stream.write_all(b"PING\r\n").await?;
            let mut answer = [0u8; 7];
            stream.read_exact(&mut answer).await?;
            Ok::<_, std::io::Error>(&answer == b"+PONG\r\n")
        };
        matches!(tokio::time::timeout(Duration::from_secs(1), ping).await, Ok(Ok(true)))
    }
}

/// A fresh database `lb_bench_<hex>` on the PostgreSQL server that `server_url` names (its path is the database
/// `psql` connects to for `CREATE DATABASE`). Created and dropped with `psql`, which Debian's `postgresql-client`
/// provides.
pub struct Database {
    server_url: String,
    pub name: String,
}

impl Database {
    pub async fn create(server_url: &str) -> anyhow::Result<Database> {
        if !server_url.starts_with("postgres://") && !server_url.starts_with("postgresql://") {
            bail!("--database-url must be a postgres:// URL, not {server_url}");
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
        let name = format!("lb_bench_{:x}", nanos ^ u128::from(std::process::id()));
        let database = Database { server_url: server_url.to_owned(), name };
        database.psql(&format!("CREATE DATABASE \"{}\"", database.name)).await?;
        Ok(database)
    }

    /// The URL of this database on the same server (the server URL with its path replaced).
    pub fn url(&self) -> String {
        let authority_end = self.server_url.find("://").map_or(0, |at| at + 3);
        let path_start =
            self.server_url[authority_end..].find('/').map_or(self.server_url.len(), |at| authority_end + at);
        format!("{}/{}", &self.server_url[..path_start], self.name)
    }

    /// Drops the database (forcing off whoever is still connected).
    pub async fn drop_now(self) -> anyhow::Result<()> {
        self.psql(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await
    }

    async fn psql(&self, sql: &str) -> anyhow::Result<()> {
        let run = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.server_url, "-c", sql])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .context("psql took more than 30 s")?
            .context("running psql (Debian: apt-get install postgresql-client)")?;
        if !output.status.success() {
            bail!("psql -c '{sql}' failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_keeps_the_server_and_replaces_the_path() {
        let at = |server_url: &str| Database { server_url: server_url.to_owned(), name: "lb_bench_1".to_owned() }.url();
        assert_eq!(at("postgres://postgres@127.0.0.1:5432/postgres"), "postgres://postgres@127.0.0.1:5432/lb_bench_1");
        assert_eq!(at("postgres://postgres@127.0.0.1:5432"), "postgres://postgres@127.0.0.1:5432/lb_bench_1");
        assert_eq!(at("postgresql://u:p@db/x"), "postgresql://u:p@db/lb_bench_1");
    }
}
