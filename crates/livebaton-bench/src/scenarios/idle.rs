//! `idle`: server RSS per idle WebSocket connection joined to a presence room.
//!
//! ```sh
//! taskset -c 1 target/release/livebaton-bench idle --clients 5000 --server-cpus 0
//! ```
//!
//! 1. Starts the server (`crate::server`, `--no-demo`) and gets the admin's bearer token with `POST /api/tokens`.
//! 2. Reads the server's memory from `/proc/<pid>/status` a second after the sign-in, so its Argon2 memory is not
//!    counted (`rss_cold_kib`).
//! 3. Warm-up (`--warmup W`, none by default): that many clients connect and join `<topic>-warmup` all at once, and stay
//!    connected (in their own room) until the end; after `--settle-secs` + 3 s the baseline is read
//!    (`rss_before_kib`, `rss_anon_before_kib`, `rss_file_before_kib`). What a server allocates once, on its first
//!    traffic, is then in the baseline rather than divided among the measured connections: code paged in for the
//!    first time (`RssFile` grows by 0.2–0.4 MiB), the database pool growing to its limit (two more SQLite
//!    connections, each a thread with its own allocator arena), tokio's and glibc's per-thread state. Because the
//!    warm-up clients stay, nothing they hold is freed for the measured connections to reuse; only what their joins
//!    freed (their 50 presence lists and the diffs among them) is. The figure is what `--clients` more connections
//!    cost on a server that has seen traffic. `kib_per_connection_from_cold` divides the growth since step 2 by all
//!    connections, warm-up included; without a warm-up the baseline is that cold reading.
//! 4. Opens `--clients` connections, at most `--concurrency` connecting or joining at a time; each joins `--topic`
//!    (default `room:bench`; all clients are the same user, so each connection is one more presence meta under one
//!    key), or its own `<topic>-<i>` with `--room-per-client`, or nothing with `--no-join`. Every client keeps
//!    reading (presence diffs) until the end; with `--heartbeat-secs S` > 0 it also heartbeats.
//! 5. When every join is acknowledged (or failed), it waits until no client has received a frame for
//!    `--settle-secs`, reads `VmRSS` (`rss_after_1_kib`), waits `--hold-secs`, reads it again (`rss_after_2_kib`).
//!    `rss_after_kib` is the larger of the two and `kib_per_connection = (rss_after_kib - rss_before_kib) / clients`;
//!    `anon_kib_per_connection` is the same for `RssAnon`, the process's own memory without the binary's pages.
//! 6. Prints one JSON line (`{"scenario":"idle","server":"livebaton","clients":N,"rss_before_kib":…,
//!    "rss_after_kib":…,"kib_per_connection":…, …}`) and a human summary.
//!
//! With `--server soketi|sockudo|socketio` the same runs against a peer: each client is its own user there
//! (`user-<i>`; Pusher presence is per user), so every connection is one presence entry on every server.
//!
//! The JSON line also counts `failed` (connect or join refused), `closed_early` (closed by the server after joining;
//! with reasons in `close_reasons`; `kib_per_open_connection` divides by the connections still open), and the
//! `presence_state` / `presence_diff` frames received. A run where any client failed or was closed early exits with
//! status 1 after printing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::cli::IdleArgs;
use crate::client::Conn;
use crate::procfs::{check_fd_limit, resident_kib};
use crate::protocol::{Incoming, Protocol};
use crate::server::Launch;
use crate::stats::{emit, load_average};
use crate::target::Target;

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

/// Ok(true) when every client connected, joined and stayed connected.
pub async fn run(args: IdleArgs) -> anyhow::Result<bool> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    check_fd_limit(args.clients)?;
    let server =
        Target::start(Launch { args: &args.server, demo: false, users: &[], flags: vec![], database_url: None })
            .await?;
    let outcome = measure(&args, &server).await;
    server.finish(outcome).await
}

async fn measure(args: &IdleArgs, server: &Target) -> anyhow::Result<bool> {
    let bound = args.server.bound();
    let credentials = server.credentials(args.clients).await?;
    // Let the sign-in's Argon2 memory go back, so it is not counted as "before".
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cold = resident_kib(server.pid())?;
    // Connected until the end, so the measured connections cannot reuse what the warm-up's would free.
    let warm = if args.warmup > 0 { Some(warm_up(args, server).await?) } else { None };
    let before = resident_kib(server.pid())?;
    let rss_before = before.total;

    let protocol = server.protocol();
    let stats = Arc::new(Stats::default());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (stop, stopped) = watch::channel(false);
    let heartbeat = (args.heartbeat_secs > 0).then(|| Duration::from_secs(args.heartbeat_secs));
    let started = Instant::now();
    let mut clients = Vec::with_capacity(args.clients);
    for (index, credential) in credentials.into_iter().enumerate() {
        let topic = match (args.no_join, args.room_per_client) {
            (true, _) => None,
            (false, true) => Some(format!("{}-{index}", args.topic)),
            (false, false) => Some(args.topic.clone()),
        };
        let client = Client {
            protocol: protocol.clone(),
            addr: server.addr().to_owned(),
            credential,
            topic,
            heartbeat,
            stats: stats.clone(),
            stop: stopped.clone(),
        };
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
    let after_1 = resident_kib(server.pid())?;
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let after_2 = resident_kib(server.pid())?;
    let (rss_after_1, rss_after_2) = (after_1.total, after_2.total);
    let after = if after_2.total > after_1.total { after_2 } else { after_1 };
    let rss_after = after.total;
    let anon_per_connection = (after.anon as f64 - before.anon as f64) / args.clients as f64;
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
        "server": protocol.name(),
        "clients": args.clients,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_connection": (per_connection * 100.0).round() / 100.0,
        "warmup_clients": args.warmup,
        "rss_cold_kib": cold.total,
        "kib_per_connection_from_cold": ((rss_after as f64 - cold.total as f64) / (args.clients + args.warmup) as f64
            * 100.0)
            .round()
            / 100.0,
        "rss_anon_before_kib": before.anon,
        "rss_anon_after_kib": after.anon,
        "anon_kib_per_connection": (anon_per_connection * 100.0).round() / 100.0,
        "rss_file_before_kib": before.file,
        "rss_file_after_kib": after.file,
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
        "server_cpus": args.server.server_cpus,
        "load_average_1m": load_average(),
    });
    emit(&report.to_string());
    emit(&format!(
        "idle: {} clients on {} ({}); server VmRSS {:.1} MiB before, {:.1} / {:.1} MiB after ({} s apart): \
         {per_connection:.2} KiB per connection (target <= 4 KiB: {})",
        args.clients,
        server.addr(),
        join,
        rss_before as f64 / 1024.0,
        rss_after_1 as f64 / 1024.0,
        rss_after_2 as f64 / 1024.0,
        args.hold_secs,
        if per_connection <= 4.0 { "met" } else { "NOT met" },
    ));
    emit(&format!(
        "  of which the process's own memory (RssAnon) {:.1} -> {:.1} MiB: {anon_per_connection:.2} KiB per \
         connection; pages of the binary (RssFile) {:.1} -> {:.1} MiB",
        before.anon as f64 / 1024.0,
        after.anon as f64 / 1024.0,
        before.file as f64 / 1024.0,
        after.file as f64 / 1024.0,
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
    if let Some((stop_warm, warm_clients)) = warm {
        let _ = stop_warm.send(true);
        clients.extend(warm_clients);
    }
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

/// `--warmup` clients connect and join `<topic>-warmup` all at once, and stay; then the server gets `settle_secs`
/// plus 3 s (its allocator's trim thread runs every 2 s) before the baseline is read. Returns what stops them, and
/// their tasks.
async fn warm_up(
    args: &IdleArgs,
    server: &Target,
) -> anyhow::Result<(watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>)> {
    let protocol = server.protocol();
    let stats = Arc::new(Stats::default());
    let permits = Arc::new(Semaphore::new(args.warmup));
    let (stop, stopped) = watch::channel(false);
    let topic = (!args.no_join).then(|| format!("{}-warmup", args.topic));
    let mut clients = Vec::with_capacity(args.warmup);
    for credential in server.credentials(args.warmup).await? {
        let client = Client {
            protocol: protocol.clone(),
            addr: server.addr().to_owned(),
            credential,
            topic: topic.clone(),
            heartbeat: None,
            stats: stats.clone(),
            stop: stopped.clone(),
        };
        clients.push(tokio::spawn(client.run(permits.clone())));
    }
    let deadline = Instant::now() + args.server.bound();
    loop {
        let done = if args.no_join { stats.count(&stats.connected) } else { stats.count(&stats.joined) };
        if done + stats.count(&stats.failed) >= args.warmup {
            break;
        }
        if Instant::now() > deadline {
            bail!("warm-up clients not ready: {}", progress(&stats));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if stats.count(&stats.failed) > 0 {
        bail!("warm-up clients failed: {}", progress(&stats));
    }
    tokio::time::sleep(Duration::from_secs(args.settle_secs + 3)).await;
    Ok((stop, clients))
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

/// One idle client.
struct Client {
    protocol: Arc<dyn Protocol>,
    addr: String,
    credential: String,
    /// The topic to join, if any.
    topic: Option<String>,
    heartbeat: Option<Duration>,
    stats: Arc<Stats>,
    stop: watch::Receiver<bool>,
}

impl Client {
    async fn run(mut self, permits: Arc<Semaphore>) {
        let stats = self.stats.clone();
        let Ok(permit) = permits.acquire_owned().await else { return };
        let mut conn = match Conn::connect(self.protocol.clone(), &self.addr, &self.credential).await {
            Ok(conn) => conn,
            Err(error) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.reason(format!("connect: {error:#}"));
                return;
            }
        };
        stats.connected.fetch_add(1, Ordering::Relaxed);
        let mut join_ref = None;
        if let Some(topic) = &self.topic {
            match conn.join(topic, &json!({})).await {
                Ok(reference) => join_ref = Some(reference.to_string()),
                Err(error) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.reason(format!("join: {error:#}"));
                    return;
                }
            }
        }
        // Held until the join is acknowledged (dropped at once without a join).
        let mut permit = join_ref.is_some().then_some(permit);
        let mut heartbeat =
            self.heartbeat.map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        let ended = loop {
            tokio::select! {
                _ = self.stop.changed() => break None,
                _ = next_tick(heartbeat.as_mut()) => {
                    if let Err(error) = conn.heartbeat().await {
                        break Some(format!("heartbeat: {error:#}"));
                    }
                }
                received = conn.recv() => match received {
                    Ok(received) => {
                        let text = received.text.as_str();
                        let incoming = self.protocol.decode(text);
                        if incoming == Incoming::Ignored {
                            continue;
                        }
                        stats.frames.fetch_add(1, Ordering::Relaxed);
                        stats.bytes.fetch_add(text.len(), Ordering::Relaxed);
                        match incoming {
                            Incoming::PresenceDiff { .. } => {
                                stats.presence_diffs.fetch_add(1, Ordering::Relaxed);
                            }
                            Incoming::PresenceState { .. } => {
                                stats.presence_states.fetch_add(1, Ordering::Relaxed);
                            }
                            Incoming::Reply { topic, reference, ok, response, state }
                                if join_ref.as_deref().zip(self.topic.as_deref()).is_some_and(
                                    |(join_ref, joined)| self.protocol.is_reply(reference, topic, joined, join_ref),
                                ) =>
                            {
                                join_ref = None;
                                if state.is_some() {
                                    stats.presence_states.fetch_add(1, Ordering::Relaxed);
                                }
                                if ok {
                                    permit = None;
                                    stats.joined.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    stats.failed.fetch_add(1, Ordering::Relaxed);
                                    stats.reason(format!("join refused: {response}"));
                                    return;
                                }
                            }
                            _ => {}
                        }
                    }
                    Err(ended) => break Some(ended.to_string()),
                }
            }
        };
        drop(permit);
        match ended {
            Some(reason) => {
                if join_ref.is_some() {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.reason(format!("before the join reply: {reason}"));
                } else {
                    stats.closed_early.fetch_add(1, Ordering::Relaxed);
                    stats.reason(reason);
                }
            }
            None => conn.close().await,
        }
    }
}

/// The next tick of an optional interval; never without one.
pub async fn next_tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
