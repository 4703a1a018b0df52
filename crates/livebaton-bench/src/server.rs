//! The server process under test: `target/release/livebaton` on a free loopback port and a fresh data directory.
//!
//! [`Server::start`] creates the data directory in the system temp dir, adds the scenario's users with the binary's
//! own `livebaton user add --data-dir … --role …` (before the first start, so demo content is still seeded when asked
//! for), then starts `livebaton --bind 127.0.0.1:0 --admin-email bench@example.com --admin-password <random>
//! --idle-timeout-secs … [--no-demo] <scenario flags> --data-dir …`, under `taskset -c <--server-cpus>` when given,
//! with `DATABASE_URL` and every `LIVEBATON_*` variable removed from its environment, and waits for
//! `livebaton listening on http://ADDR/admin` on its stdout (its stderr goes to `server.log` in the data directory).
//! [`Server::finish`] stops it (SIGTERM, SIGKILL after 10 s) and removes the data directory, which is kept when the
//! run failed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::ServerArgs;
use crate::stats::emit;

/// The admin account every run creates.
pub const ADMIN_EMAIL: &str = "bench@example.com";

/// A user the scenario needs, created before the server starts.
#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub password: String,
    /// `admin`, `editor` or `viewer`.
    pub role: &'static str,
}

impl User {
    /// `bench-<label>@example.com` with a password that is fine for a throwaway data directory.
    pub fn new(label: &str, role: &'static str) -> User {
        User { email: format!("bench-{label}@example.com"), password: format!("bench-password-{label}"), role }
    }
}

/// How to start the server.
pub struct Launch<'a> {
    pub args: &'a ServerArgs,
    /// Seed the demo content (the `article` entity and three records).
    pub demo: bool,
    /// Users to add with `livebaton user add`.
    pub users: &'a [User],
    /// Scenario flags (`--presence-coalesce-ms 15`, `--events-per-second …`).
    pub flags: Vec<String>,
    /// A shared PostgreSQL database (`--database-url`, for `user add` too) instead of SQLite in the data directory.
    pub database_url: Option<&'a str>,
}

/// The running server.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: String,
    pub password: String,
    pub data_dir: PathBuf,
    /// The flags the scenario added, for the JSON line.
    pub flags: Vec<String>,
}

impl Server {
    pub async fn start(launch: Launch<'_>) -> anyhow::Result<Server> {
        let args = launch.args;
        let bin = args.server_bin();
        if !bin.is_file() {
            bail!(
                "server binary {} not found: build it with `cargo build --release -p livebaton-admin -p \
                 livebaton-bench` or pass --server-bin",
                bin.display()
            );
        }
        let bound = args.bound();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
        let data_dir = std::env::temp_dir().join(format!("livebaton-bench-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let password = format!("bench-{:x}", nanos ^ u128::from(std::process::id()) << 64);
        add_users(&bin, &data_dir, launch.database_url, launch.users, bound).await?;
        let log = std::fs::File::create(data_dir.join("server.log")).context("creating the server log")?;

        let mut command = match &args.server_cpus {
            Some(cpus) if taskset_exists() => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(&bin);
                command
            }
            Some(_) => {
                eprintln!("warning: taskset not found; the server is not pinned");
                Command::new(&bin)
            }
            None => Command::new(&bin),
        };
        command
            .args(["--bind", "127.0.0.1:0", "--admin-email", ADMIN_EMAIL, "--admin-password", &password])
            .arg("--idle-timeout-secs")
            .arg(args.idle_timeout_secs.to_string())
            // Every load client connects from 127.0.0.1: no limit per address (the defaults are 1,000 sockets and 128
            // HTTP connections, which a storm of upgrades passes through).
            .args(["--max-sockets-per-address", "0", "--max-http-connections-per-address", "0"]);
        if !launch.demo {
            command.arg("--no-demo");
        }
        if let Some(url) = launch.database_url {
            command.args(["--database-url", url]);
        }
        command.args(&launch.flags).arg("--data-dir").arg(&data_dir);
        clean_env(&mut command);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log)).kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(bound, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("livebaton listening on http://") {
                    return Ok(rest.trim_end_matches("/admin").to_owned());
                }
            }
            bail!("the server exited before listening; see {}", data_dir.join("server.log").display())
        })
        .await
        .context("the server did not start listening in time")??;
        // Keep draining stdout so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { child, pid, addr, password, data_dir, flags: launch.flags })
    }

    /// A bearer token of the admin account.
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        crate::http::create_token(&self.addr, ADMIN_EMAIL, &self.password).await
    }

    /// Stops the server, reports how, and removes the data directory unless the run failed. Returns the run's
    /// outcome (a failed stop turns a success into an error).
    pub async fn finish(mut self, outcome: anyhow::Result<bool>) -> anyhow::Result<bool> {
        let stopped = self.stop().await;
        match (&outcome, &stopped) {
            (Ok(true), Ok(_)) => {
                if let Err(error) = std::fs::remove_dir_all(&self.data_dir) {
                    eprintln!("could not remove {}: {error}", self.data_dir.display());
                }
            }
            _ => eprintln!("server data directory and log kept in {}", self.data_dir.display()),
        }
        let (took, how) = stopped?;
        let outcome = outcome?;
        emit(&format!("server stopped in {:.1} s ({how})", took.as_secs_f64()));
        Ok(outcome)
    }

    /// SIGTERM, then SIGKILL after 10 s. How long it took, and how it ended.
    async fn stop(&mut self) -> anyhow::Result<(Duration, String)> {
        let started = Instant::now();
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("the server had already exited: {status}");
        }
        let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
        // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (checked above).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => Ok((started.elapsed(), format!("{}", status?))),
            Err(_) => {
                self.child.kill().await.context("killing the server")?;
                Ok((started.elapsed(), "did not stop on SIGTERM within 10 s; killed".to_owned()))
            }
        }
    }
}

/// `livebaton user add` for each user: the first alone (it creates the database; two processes migrating a new
/// database at once fail), then two at a time (each hashes its password with Argon2).
async fn add_users(
    bin: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    users: &[User],
    bound: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + bound;
    let (first, rest) = users.split_at(users.len().min(1));
    for pair in std::iter::once(first).chain(rest.chunks(2)).filter(|group| !group.is_empty()) {
        let mut running = Vec::new();
        for user in pair {
            let mut command = Command::new(bin);
            command
                .args(["user", "add", "--email", &user.email, "--password", &user.password, "--role", user.role])
                .arg("--data-dir")
                .arg(data_dir)
                .args(database_url.map(|url| ["--database-url", url]).into_iter().flatten())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            clean_env(&mut command);
            running.push((user, command.spawn().context("starting `livebaton user add`")?));
        }
        for (user, child) in running {
            let output = tokio::time::timeout_at(deadline, child.wait_with_output())
                .await
                .context("`livebaton user add` took too long")??;
            if !output.status.success() {
                bail!(
                    "`livebaton user add --email {}` failed ({}): {}",
                    user.email,
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
    Ok(())
}

/// The server reads its settings from the environment too: only the command line counts here.
fn clean_env(command: &mut Command) {
    command.env_remove("DATABASE_URL").env_remove("REDIS_URL");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LIVEBATON_") {
            command.env_remove(name);
        }
    }
}

/// `livebaton` next to this binary (i.e. `target/release/livebaton`), else `target/release/livebaton`.
pub fn default_server_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("livebaton")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("target/release/livebaton"))
}

pub fn taskset_exists() -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("taskset").is_file()))
}
