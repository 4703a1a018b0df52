//! `livebaton-bench`: load tools that measure the real `livebaton` server binary from the outside.
//!
//! # `idle`: server RSS per idle WebSocket connection joined to a presence room
//!
//! ```sh
//! cargo build --release -p livebaton-admin -p livebaton-bench
//! taskset -c 1 target/release/livebaton-bench idle --clients 5000 --server-cpus 0
//! ```
//!
//! 1. Starts the server binary (`--server-bin`, default: `livebaton` next to this binary, i.e.
//!    `target/release/livebaton`) on a fresh data directory in the system temp dir, with `--bind 127.0.0.1:0 --no-demo
//!    --admin-email bench@example.com --admin-password <random> --idle-timeout-secs 600`, `DATABASE_URL` and every
//!    `LIVEBATON_*` variable removed from its environment, under `taskset -c <--server-cpus>` when that is given and
//!    `taskset` exists. It waits for `livebaton listening on http://ADDR/admin` on the server's stdout (the server's
//!    stderr goes to `server.log` in the data directory).
//! 2. Gets a bearer token with `POST /api/tokens` (a minimal HTTP/1.1 request over a `TcpStream`).
//! 3. Reads the server's `VmRSS` from `/proc/<pid>/status` (`rss_before_kib`).
//! 4. Opens `--clients` tokio-tungstenite connections to `ws://ADDR/live/websocket?vsn=2.0.0&token=…`, at most
//!    `--concurrency` connecting or joining at a time; each joins `--topic` (default `room:bench`; all clients are the
//!    same user, so each connection is one more presence meta under one key), or its own `<topic>-<i>` with
//!    `--room-per-client`, or nothing with `--no-join`. Every client keeps reading (presence diffs) until the end; with
//!    `--heartbeat-secs S` > 0 it also heartbeats (the server is started with a 600 s idle timeout, so by default it
//!    does not).
//! 5. When every join is acknowledged (or failed), it waits until no client has received a frame for `--settle-secs`,
//!    reads `VmRSS` (`rss_after_1_kib`), waits `--hold-secs`, reads it again (`rss_after_2_kib`).
//!    `rss_after_kib` is the larger of the two and `kib_per_connection = (rss_after_kib - rss_before_kib) / clients`.
//! 6. Prints one JSON line (`{"scenario":"idle","server":"livebaton","clients":N,"rss_before_kib":…,
//!    "rss_after_kib":…,"kib_per_connection":…, …}`) and a human summary on stdout, closes every client, stops the
//!    server with SIGTERM (SIGKILL after 10 s) and removes the data directory (kept when the run failed).
//!
//! The JSON line also counts `failed` (connect or join refused), `closed_early` (closed by the server after joining;
//! with reasons in `close_reasons`; `kib_per_open_connection` divides by the connections still open), and the
//! `presence_state` / `presence_diff` frames received. A run where any client failed or was closed early exits with
//! status 1 after printing.
//!
//! Every client is one socket in this process, and the server holds one per client too: this tool raises its own soft
//! `RLIMIT_NOFILE` to the hard limit (the server inherits it) and refuses `--clients` above that limit minus 100.
//! Every phase is bounded by `--timeout-secs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const ADMIN_EMAIL: &str = "bench@example.com";

/// Load tools for the livebaton server.
#[derive(Debug, Parser)]
#[command(name = "livebaton-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Server RSS per idle WebSocket connection joined to a presence room.
    Idle(IdleArgs),
}

#[derive(Debug, Args)]
struct IdleArgs {
    /// Number of WebSocket clients.
    #[arg(long)]
    clients: usize,
    /// The server binary (default: `livebaton` next to this binary, i.e. `target/release/livebaton`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Seconds between the first and the second RSS reading once the room is settled.
    #[arg(long, default_value_t = 5)]
    hold_secs: u64,
    /// The room is settled when no client has received a frame for this many seconds.
    #[arg(long, default_value_t = 2)]
    settle_secs: u64,
    /// Topic every client joins.
    #[arg(long, default_value = "room:bench")]
    topic: String,
    /// Each client joins its own room, `<topic>-<i>`, instead of all joining one.
    #[arg(long, conflicts_with = "no_join")]
    room_per_client: bool,
    /// Only connect; join no channel.
    #[arg(long)]
    no_join: bool,
    /// Clients connecting or joining at the same time.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Heartbeat every this many seconds; 0: never (the server's idle timeout is `--idle-timeout-secs`).
    #[arg(long, default_value_t = 0)]
    heartbeat_secs: u64,
    /// The server's `--idle-timeout-secs`.
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Pin the server to these CPUs with `taskset -c` (ignored, with a warning, when taskset is missing).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Bound on each phase: start-up, connecting and joining, settling.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Scenario::Idle(args) => idle(args).await,
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What the clients saw, shared by all of them.
#[derive(Default)]
struct Stats {
    connected: AtomicUsize,
    joined: AtomicUsize,
    /// Connecting or joining failed.
    failed: AtomicUsize,
    /// Closed by the server (or broken) after it connected, before the end of the run.
    closed_early: AtomicUsize,
    /// Frames received, heartbeat replies excepted.
    frames: AtomicUsize,
    bytes: AtomicUsize,
    presence_states: AtomicUsize,
    presence_diffs: AtomicUsize,
    /// Why clients failed or were closed, with counts.
    reasons: Mutex<BTreeMap<String, usize>>,
}

impl Stats {
    fn reason(&self, reason: String) {
        *self.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(reason).or_default() += 1;
    }

    fn count(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }
}

/// Returns Ok(true) when every client connected, joined and stayed connected.
async fn idle(args: IdleArgs) -> anyhow::Result<bool> {
    let fd_limit = raise_fd_limit();
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if (args.clients as u64).saturating_add(100) > fd_limit {
        bail!("--clients {} needs more open files than this process may have ({fd_limit}); lower it", args.clients);
    }
    let bound = Duration::from_secs(args.timeout_secs.max(1));
    let server_bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => default_server_bin(),
    };
    let mut server = Server::start(&server_bin, &args, bound).await?;
    let outcome = run_idle(&args, &server, bound).await;
    let stopped = server.stop().await;
    match (&outcome, &stopped) {
        (Ok(true), Ok(_)) => server.remove_data_dir(),
        _ => eprintln!("server data directory and log kept in {}", server.data_dir.display()),
    }
    let stopped = stopped?;
    let outcome = outcome?;
    emit(&format!("server stopped in {:.1} s ({})", stopped.0.as_secs_f64(), stopped.1));
    Ok(outcome)
}

async fn run_idle(args: &IdleArgs, server: &Server, bound: Duration) -> anyhow::Result<bool> {
    let token = create_token(&server.addr, ADMIN_EMAIL, &server.password).await?;
    // Let the sign-in's Argon2 memory go back, so it is not counted as "before".
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = vm_rss_kib(server.pid)?;

    let url = format!("ws://{}/live/websocket?vsn=2.0.0&token={}", server.addr, percent_encode(&token));
    let stats = Arc::new(Stats::default());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (stop, stopped) = watch::channel(false);
    let heartbeat = (args.heartbeat_secs > 0).then(|| Duration::from_secs(args.heartbeat_secs));
    let started = Instant::now();
    let mut clients = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let topic = match (args.no_join, args.room_per_client) {
            (true, _) => None,
            (false, true) => Some(format!("{}-{index}", args.topic)),
            (false, false) => Some(args.topic.clone()),
        };
        let client = Client { url: url.clone(), topic, heartbeat, stats: stats.clone(), stop: stopped.clone() };
        clients.push(tokio::spawn(client.run(permits.clone())));
    }

    // Every client connected and joined, or failed.
    let ready = |stats: &Stats| {
        let done = if args.no_join { stats.count(&stats.connected) } else { stats.count(&stats.joined) };
        done + stats.count(&stats.failed) >= args.clients
    };
    let deadline = Instant::now() + bound;
    while !ready(&stats) {
        if Instant::now() > deadline {
            bail!("clients not ready after {} s: {}", bound.as_secs(), progress(&stats));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let joined_in = started.elapsed();

    // Settled: no frame for settle_secs (presence diffs of the last joins still arriving).
    let settle = Duration::from_secs(args.settle_secs);
    let mut last_frames = stats.count(&stats.frames);
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + bound;
    while quiet_since.elapsed() < settle {
        if Instant::now() > deadline {
            bail!("frames still arriving after {} s: {}", bound.as_secs(), progress(&stats));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let frames = stats.count(&stats.frames);
        if frames != last_frames {
            last_frames = frames;
            quiet_since = Instant::now();
        }
    }
    let settled_in = started.elapsed();
    let rss_after_1 = vm_rss_kib(server.pid)?;
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let rss_after_2 = vm_rss_kib(server.pid)?;
    let rss_after = rss_after_1.max(rss_after_2);
    let per_connection = (rss_after as f64 - rss_before as f64) / args.clients as f64;
    // Clients the server closed are not holding memory any more: also per connection still open.
    let ready_count = if args.no_join { stats.count(&stats.connected) } else { stats.count(&stats.joined) };
    let open = ready_count.saturating_sub(stats.count(&stats.closed_early));
    let per_open_connection = (rss_after as f64 - rss_before as f64) / open.max(1) as f64;

    let reasons = stats.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let (failed, closed_early) = (stats.count(&stats.failed), stats.count(&stats.closed_early));
    let join = if args.no_join {
        "none".to_owned()
    } else if args.room_per_client {
        format!("{}-<i>", args.topic)
    } else {
        args.topic.clone()
    };
    let report = json!({
        "scenario": "idle",
        "server": "livebaton",
        "clients": args.clients,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_connection": (per_connection * 100.0).round() / 100.0,
        "open_at_end": open,
        "kib_per_open_connection": (per_open_connection * 100.0).round() / 100.0,
        "rss_after_1_kib": rss_after_1,
        "rss_after_2_kib": rss_after_2,
        "hold_secs": args.hold_secs,
        "join": join,
        "connected": stats.count(&stats.connected),
        "joined": stats.count(&stats.joined),
        "failed": failed,
        "closed_early": closed_early,
        "close_reasons": reasons,
        "presence_states": stats.count(&stats.presence_states),
        "presence_diffs": stats.count(&stats.presence_diffs),
        "frames": stats.count(&stats.frames),
        "bytes_received": stats.count(&stats.bytes),
        "joined_secs": (joined_in.as_secs_f64() * 10.0).round() / 10.0,
        "settled_secs": (settled_in.as_secs_f64() * 10.0).round() / 10.0,
        "server_cpus": args.server_cpus,
    });
    emit(&report.to_string());
    emit(&format!(
        "idle: {} clients on {} ({}); server VmRSS {:.1} MiB before, {:.1} / {:.1} MiB after ({} s apart): \
         {per_connection:.2} KiB per connection (target <= 4 KiB: {})",
        args.clients,
        server.addr,
        join,
        rss_before as f64 / 1024.0,
        rss_after_1 as f64 / 1024.0,
        rss_after_2 as f64 / 1024.0,
        args.hold_secs,
        if per_connection <= 4.0 { "met" } else { "NOT met" },
    ));
    emit(&format!(
        "  all joined in {:.1} s, settled at {:.1} s; {failed} failed, {closed_early} closed early; \
         {} presence_state and {} presence_diff frames, {:.1} MiB received",
        joined_in.as_secs_f64(),
        settled_in.as_secs_f64(),
        stats.count(&stats.presence_states),
        stats.count(&stats.presence_diffs),
        stats.count(&stats.bytes) as f64 / 1_048_576.0,
    ));
    if open != args.clients {
        emit(&format!("  only {open} connections still open: {per_open_connection:.2} KiB per open connection"));
    }
    for (reason, count) in &reasons {
        emit(&format!("  {count} x {reason}"));
    }

    // Close every client (bounded), then the caller stops the server.
    let _ = stop.send(true);
    let closing = async {
        for client in clients {
            let _ = client.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), closing).await.is_err() {
        eprintln!("some clients did not close within 10 s");
    }
    Ok(failed == 0 && closed_early == 0)
}

/// Prints a line on stdout; a closed stdout (`| head -1`) must not abort the run before the server is stopped.
fn emit(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn progress(stats: &Stats) -> String {
    format!(
        "{} connected, {} joined, {} failed, {} closed early",
        stats.count(&stats.connected),
        stats.count(&stats.joined),
        stats.count(&stats.failed),
        stats.count(&stats.closed_early)
    )
}

/// One WebSocket client.
struct Client {
    url: String,
    topic: Option<String>,
    heartbeat: Option<Duration>,
    stats: Arc<Stats>,
    stop: watch::Receiver<bool>,
}

/// The join's `join_ref` and `ref`.
const JOIN_REF: &str = "1";

impl Client {
    async fn run(mut self, permits: Arc<Semaphore>) {
        let stats = self.stats.clone();
        let Ok(permit) = permits.acquire_owned().await else { return };
        // A small read buffer: the client's memory is not measured, but 128 KiB each adds up.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let mut ws = match tokio_tungstenite::connect_async_with_config(self.url.as_str(), Some(config), true).await {
            Ok((ws, _response)) => ws,
            Err(error) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.reason(format!("connect: {error}"));
                return;
            }
        };
        stats.connected.fetch_add(1, Ordering::Relaxed);
        let mut joining = false;
        if let Some(topic) = &self.topic {
            let join = json!([JOIN_REF, JOIN_REF, topic, "phx_join", {}]).to_string();
            if let Err(error) = ws.send(Message::text(join)).await {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.reason(format!("join: {error}"));
                return;
            }
            joining = true;
        }
        // Held until the join is acknowledged (dropped at once without a join).
        let mut permit = joining.then_some(permit);
        let mut heartbeat =
            self.heartbeat.map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        let mut heartbeat_ref: u64 = 1;
        let ended = loop {
            tokio::select! {
                _ = self.stop.changed() => break None,
                _ = next_tick(heartbeat.as_mut()) => {
                    heartbeat_ref += 1;
                    let frame = json!([null, heartbeat_ref.to_string(), "phoenix", "heartbeat", {}]).to_string();
                    if let Err(error) = ws.send(Message::text(frame)).await {
                        break Some(format!("heartbeat: {error}"));
                    }
                }
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let text = text.as_str();
                        if head_contains(text, "\"phoenix\",\"phx_reply\"") {
                            continue;
                        }
                        stats.frames.fetch_add(1, Ordering::Relaxed);
                        stats.bytes.fetch_add(text.len(), Ordering::Relaxed);
                        if head_contains(text, "\"presence_diff\"") {
                            stats.presence_diffs.fetch_add(1, Ordering::Relaxed);
                        } else if head_contains(text, "\"presence_state\"") {
                            stats.presence_states.fetch_add(1, Ordering::Relaxed);
                        } else if joining && head_contains(text, "\"phx_reply\"") {
                            match join_reply(text, self.topic.as_deref().unwrap_or_default()) {
                                Some(Ok(())) => {
                                    joining = false;
                                    permit = None;
                                    stats.joined.fetch_add(1, Ordering::Relaxed);
                                }
                                Some(Err(reason)) => {
                                    stats.failed.fetch_add(1, Ordering::Relaxed);
                                    stats.reason(format!("join refused: {reason}"));
                                    return;
                                }
                                None => {}
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break Some(match frame {
                            Some(frame) => format!("closed by the server: {} {}", u16::from(frame.code), frame.reason),
                            None => "closed by the server without a code".to_owned(),
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break Some(format!("error: {error}")),
                    None => break Some("connection ended".to_owned()),
                }
            }
        };
        drop(permit);
        match ended {
            Some(reason) => {
                if joining {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.reason(format!("before the join reply: {reason}"));
                } else {
                    stats.closed_early.fetch_add(1, Ordering::Relaxed);
                    stats.reason(reason);
                }
            }
            None => {
                let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
            }
        }
    }
}

async fn next_tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether the first bytes of a frame (where a V2 frame has its refs, topic and event) contain `needle`.
fn head_contains(text: &str, needle: &str) -> bool {
    let head = &text.as_bytes()[..text.len().min(256)];
    head.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// The join's reply (`[join_ref, ref, topic, "phx_reply", {"status": …, "response": …}]`): Ok, or the refusal.
/// None for any other frame.
fn join_reply(text: &str, topic: &str) -> Option<Result<(), String>> {
    let frame: Value = serde_json::from_str(text).ok()?;
    let frame = frame.as_array()?;
    if frame.len() != 5 || frame[1] != JOIN_REF || frame[2] != topic || frame[3] != "phx_reply" {
        return None;
    }
    match frame[4]["status"].as_str() {
        Some("ok") => Some(Ok(())),
        _ => Some(Err(frame[4].to_string())),
    }
}

/// The server process.
struct Server {
    child: Child,
    pid: u32,
    addr: String,
    password: String,
    data_dir: PathBuf,
}

impl Server {
    async fn start(bin: &Path, args: &IdleArgs, bound: Duration) -> anyhow::Result<Server> {
        if !bin.is_file() {
            bail!(
                "server binary {} not found: build it with `cargo build --release -p livebaton-admin -p \
                 livebaton-bench` or pass --server-bin",
                bin.display()
            );
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
        let data_dir = std::env::temp_dir().join(format!("livebaton-bench-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let password = format!("bench-{:x}", nanos ^ u128::from(std::process::id()) << 64);
        let log = std::fs::File::create(data_dir.join("server.log")).context("creating the server log")?;

        let mut command = match &args.server_cpus {
            Some(cpus) if taskset_exists() => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(bin);
                command
            }
            Some(_) => {
                eprintln!("warning: taskset not found; the server is not pinned");
                Command::new(bin)
            }
            None => Command::new(bin),
        };
        command
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--no-demo")
            .arg("--admin-email")
            .arg(ADMIN_EMAIL)
            .arg("--admin-password")
            .arg(&password)
            .arg("--idle-timeout-secs")
            .arg(args.idle_timeout_secs.to_string())
            .arg("--data-dir")
            .arg(&data_dir);
        command.env_remove("DATABASE_URL");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LIVEBATON_") {
                command.env_remove(name);
            }
        }
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
        Ok(Server { child, pid, addr, password, data_dir })
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

    fn remove_data_dir(&self) {
        if let Err(error) = std::fs::remove_dir_all(&self.data_dir) {
            eprintln!("could not remove {}: {error}", self.data_dir.display());
        }
    }
}

fn default_server_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("livebaton")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("target/release/livebaton"))
}

fn taskset_exists() -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("taskset").is_file()))
}

/// `POST /api/tokens` with HTTP/1.1 over a plain `TcpStream`; the bearer token.
async fn create_token(addr: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": password}).to_string();
    let request = format!(
        "POST /api/tokens HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .context("POST /api/tokens timed out")?
        .context("POST /api/tokens")?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").context("POST /api/tokens: malformed response")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("POST /api/tokens: {status}: {body}");
    }
    let value: Value = serde_json::from_str(body.trim()).context("POST /api/tokens: body is not JSON")?;
    value["token"].as_str().map(str::to_owned).context("POST /api/tokens: no token in the response")
}

/// The `VmRSS` of a process, in KiB.
fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// Raises this process's soft open-files limit to the hard limit; the soft limit now in force.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid, initialised rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for the token in the query string).
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_replies_are_recognised() {
        let ok = r#"["1","1","room:bench","phx_reply",{"status":"ok","response":{}}]"#;
        assert_eq!(join_reply(ok, "room:bench"), Some(Ok(())));
        let refused = r#"["1","1","room:bench","phx_reply",{"status":"error","response":{"reason":"x"}}]"#;
        assert!(matches!(join_reply(refused, "room:bench"), Some(Err(_))));
        let other = r#"["1","2","room:bench","phx_reply",{"status":"ok","response":{}}]"#;
        assert_eq!(join_reply(other, "room:bench"), None);
        assert_eq!(join_reply(ok, "room:other"), None);
    }

    #[test]
    fn frames_are_classified_by_their_head() {
        assert!(head_contains(r#"["1",null,"room:bench","presence_diff",{}]"#, "\"presence_diff\""));
        assert!(!head_contains(r#"["1",null,"room:bench","presence_state",{}]"#, "\"presence_diff\""));
        assert!(head_contains(r#"[null,"2","phoenix","phx_reply",{}]"#, "\"phoenix\",\"phx_reply\""));
    }

    #[test]
    fn tokens_are_percent_encoded() {
        assert_eq!(percent_encode("lb1.ab-c_d~e"), "lb1.ab-c_d~e");
        assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
