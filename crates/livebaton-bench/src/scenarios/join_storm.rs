//! `join-storm`: N clients join one `room:` presence topic as fast as possible.
//!
//! ```sh
//! taskset -c 1 target/release/livebaton-bench join-storm --clients 1000 --server-cpus 0
//! taskset -c 1 target/release/livebaton-bench join-storm --clients 1000 --coalesce-ms 15 --server-cpus 0
//! ```
//!
//! 1. Creates `--users` users (default: one per client, so the room's list has N keys) with `livebaton user add`,
//!    starts the server (`--no-demo`, `--presence-coalesce-ms <--coalesce-ms>` when given, `--outbound-queue`) and
//!    gets each user's token with `POST /api/tokens`. Client `i` signs in as user `i mod users`.
//! 2. Opens every connection first (`--concurrency` at a time; not measured), joining nothing.
//! 3. The storm: reads the server's CPU time (`/proc/<pid>/stat`), then every client sends its `phx_join` at once.
//!    Each client keeps the room's presence with Phoenix semantics ([`crate::presence::PresenceView`]: a
//!    `presence_state` replaces the list, a `presence_diff` joins and leaves) and is *complete* when it lists every
//!    client: N entries under `users` keys.
//! 4. When every client is complete (or failed), waits until no frame has arrived for `--settle-ms` (late duplicate
//!    joins are part of the cost) and reads the server's CPU time again.
//!
//! Against a peer (`--server soketi|sockudo|socketio`) no users are created: client `i` is user `storm-<i>` (in
//! its Pusher `channel_data`, or its Socket.IO `join`), and the join reply of a Pusher presence channel carries the
//! members so far (it counts as the `presence_state`); `--coalesce-ms` and `--outbound-queue` are livebaton's.
//!
//! Reported: `server_cpu_secs` over the storm, `presence_metas_delivered` (the metas of every `presence_state` plus
//! the joins of every `presence_diff`, all clients together; N² is the least that gives every client the whole
//! list), the frames and bytes that carried them, `all_complete_ms` (from the first join sent until the last client
//! was complete) with the distribution of each client's completion time, and the tool's own CPU (a saturated tool
//! delays completion, not the server's CPU).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::cli::JoinStormArgs;
use crate::cli::ServerKind;
use crate::client::Conn;
use crate::presence::PresenceView;
use crate::procfs::check_fd_limit;
use crate::protocol::{Incoming, Protocol};
use crate::scenarios::tokens_for;
use crate::server::{Launch, User};
use crate::stats::{CpuMeter, Latencies, emit, extend, load_average, round};
use crate::target::Target;

#[derive(Default)]
struct Progress {
    connected: AtomicUsize,
    joined: AtomicUsize,
    complete: AtomicUsize,
    failed: AtomicUsize,
    frames: AtomicUsize,
    reasons: Mutex<BTreeMap<String, usize>>,
}

impl Progress {
    fn fail(&self, reason: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(reason).or_default() += 1;
    }

    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    fn line(&self) -> String {
        format!(
            "{} connected, {} joined, {} complete, {} failed",
            Self::get(&self.connected),
            Self::get(&self.joined),
            Self::get(&self.complete),
            Self::get(&self.failed)
        )
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    joined_at: Option<Instant>,
    complete_at: Option<Instant>,
    presence_states: u64,
    presence_diffs: u64,
    metas: u64,
    bytes: u64,
    /// Set when the client failed or was closed.
    ended: bool,
}

pub async fn run(args: JoinStormArgs) -> anyhow::Result<bool> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    check_fd_limit(args.clients)?;
    let users_count = args.users.unwrap_or(args.clients).clamp(1, args.clients);
    let users: Vec<User> = (0..users_count).map(|index| User::new(&format!("storm-{index}"), "viewer")).collect();
    let livebaton = args.server.server == ServerKind::Livebaton;
    let mut flags = vec!["--outbound-queue".to_owned(), args.outbound_queue.to_string()];
    if let Some(coalesce) = args.coalesce_ms {
        flags.extend(["--presence-coalesce-ms".to_owned(), coalesce.to_string()]);
    }
    if livebaton {
        emit(&format!("join-storm: creating {users_count} users and starting the server…"));
    }
    let users = if livebaton { users } else { Vec::new() };
    let server =
        Target::start(Launch { args: &args.server, demo: false, users: &users, flags, database_url: None }).await?;
    let outcome = measure(&args, &server, users_count).await;
    server.finish(outcome).await
}

async fn measure(args: &JoinStormArgs, server: &Target, users_count: usize) -> anyhow::Result<bool> {
    let bound = args.server.bound();
    let protocol = server.protocol();
    // livebaton: each user's token; a peer: the user ids themselves (a Pusher channel auth is signed by the tool).
    let credentials = match server.livebaton() {
        Some(livebaton) => {
            let users: Vec<User> =
                (0..users_count).map(|index| User::new(&format!("storm-{index}"), "viewer")).collect();
            tokens_for(&livebaton.addr, &users, bound).await?
        }
        None => (0..users_count).map(|index| format!("storm-{index}")).collect(),
    };
    let expected = Expected { entries: args.clients, keys: users_count };

    let progress = Arc::new(Progress::default());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (go, go_rx) = watch::channel(None::<Instant>);
    let (stop, stop_rx) = watch::channel(false);
    let mut clients = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let client = Client {
            protocol: protocol.clone(),
            addr: server.addr().to_owned(),
            credential: credentials[index % credentials.len()].clone(),
            topic: args.topic.clone(),
            expected,
            progress: progress.clone(),
        };
        clients.push(tokio::spawn(client.run(permits.clone(), go_rx.clone(), stop_rx.clone())));
    }
    let deadline = Instant::now() + bound;
    while Progress::get(&progress.connected) + Progress::get(&progress.failed) < args.clients {
        if Instant::now() > deadline {
            bail!("clients not connected after {} s: {}", bound.as_secs(), progress.line());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the connects' work on the server finish before its CPU is read.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu = CpuMeter::start(server.pid())?;
    let started = Instant::now();
    let _ = go.send(Some(started));
    let deadline = Instant::now() + bound;
    while Progress::get(&progress.complete) + Progress::get(&progress.failed) < args.clients {
        if Instant::now() > deadline {
            bail!("presence lists not complete after {} s: {}", bound.as_secs(), progress.line());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_complete = started.elapsed();
    let mut last_frames = Progress::get(&progress.frames);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(args.settle_ms) {
        if Instant::now() > deadline {
            bail!("frames still arriving after {} s", bound.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let frames = Progress::get(&progress.frames);
        if frames != last_frames {
            last_frames = frames;
            quiet_since = Instant::now();
        }
    }
    let usage = cpu.stop()?;

    let _ = stop.send(true);
    let mut seen = Vec::with_capacity(clients.len());
    for client in clients {
        if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(10), client).await {
            seen.push(client);
        }
    }
    let mut completion = Latencies::default();
    let mut join_replies = Latencies::default();
    let (mut metas, mut states, mut diffs, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for client in &seen {
        if let Some(at) = client.complete_at {
            completion.record(at.saturating_duration_since(started));
        }
        if let Some(at) = client.joined_at {
            join_replies.record(at.saturating_duration_since(started));
        }
        metas += client.metas;
        states += client.presence_states;
        diffs += client.presence_diffs;
        bytes += client.bytes;
    }
    let ended = seen.iter().filter(|client| client.ended).count();
    let failed = Progress::get(&progress.failed);
    let reasons = progress.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let n = args.clients as f64;
    let mut report = json!({
        "scenario": "join-storm",
        "server": protocol.name(),
        "clients": args.clients,
        "users": users_count,
        "coalesce_ms": args.coalesce_ms,
        "outbound_queue": args.outbound_queue,
        "server_cpu_ms_per_join": round(1000.0 * usage.server_secs / n, 3),
        "presence_metas_delivered": metas,
        "metas_per_client": round(metas as f64 / n, 1),
        "presence_state_frames": states,
        "presence_diff_frames": diffs,
        "frames_per_client": round((states + diffs) as f64 / n, 1),
        "bytes_received": bytes,
        "all_complete_ms": round(all_complete.as_secs_f64() * 1000.0, 1),
        "complete_ms": completion.json(),
        "join_reply_ms": join_replies.json(),
        "complete": completion.count(),
        "failed": failed,
        "closed_or_failed": ended,
        "reasons": reasons,
        "server_flags": server.flags(),
        "server_cpus": args.server.server_cpus,
        "load_average_1m": load_average(),
    });
    extend(&mut report, usage.json());
    emit(&report.to_string());
    emit(&format!(
        "join-storm: {} clients ({} users) join {} with coalescing {}: every list complete after {:.0} ms",
        args.clients,
        users_count,
        args.topic,
        match args.coalesce_ms {
            Some(ms) => format!("{ms} ms"),
            None => "off".to_owned(),
        },
        all_complete.as_secs_f64() * 1000.0,
    ));
    emit(&format!("  CPU: {}", usage.human()));
    emit(&format!(
        "  {metas} presence metas delivered ({:.1} per client) in {states} presence_state + {diffs} presence_diff \
         frames, {:.1} MiB",
        metas as f64 / n,
        bytes as f64 / 1_048_576.0
    ));
    emit(&format!("  each client complete: {}", completion.human()));
    emit(&format!("  join replies: {}", join_replies.human()));
    for (reason, count) in &reasons {
        emit(&format!("  {count} x {reason}"));
    }
    Ok(failed == 0 && ended == 0 && completion.count() == args.clients as u64)
}

/// When a client's list is complete.
#[derive(Clone, Copy)]
struct Expected {
    entries: usize,
    keys: usize,
}

struct Client {
    protocol: Arc<dyn Protocol>,
    addr: String,
    credential: String,
    topic: String,
    expected: Expected,
    progress: Arc<Progress>,
}

impl Client {
    async fn run(
        self,
        permits: Arc<Semaphore>,
        mut go: watch::Receiver<Option<Instant>>,
        mut stop: watch::Receiver<bool>,
    ) -> Seen {
        let mut seen = Seen::default();
        let progress = &self.progress;
        let permit = permits.acquire_owned().await;
        let mut conn = match Conn::connect(self.protocol.clone(), &self.addr, &self.credential).await {
            Ok(conn) => conn,
            Err(error) => {
                progress.fail(format!("connect: {error:#}"));
                seen.ended = true;
                return seen;
            }
        };
        drop(permit);
        progress.connected.fetch_add(1, Ordering::Relaxed);
        if go.wait_for(Option::is_some).await.is_err() {
            return seen;
        }
        let join_ref = match conn.join(&self.topic, &json!({})).await {
            Ok(reference) => reference.to_string(),
            Err(error) => {
                progress.fail(format!("join: {error:#}"));
                seen.ended = true;
                return seen;
            }
        };
        let mut view = PresenceView::default();
        loop {
            let received = tokio::select! {
                _ = stop.changed() => break,
                received = conn.recv() => received,
            };
            let received = match received {
                Ok(received) => received,
                Err(ended) => {
                    progress.fail(if seen.joined_at.is_some() {
                        ended.to_string()
                    } else {
                        format!("before the join reply: {ended}")
                    });
                    seen.ended = true;
                    return seen;
                }
            };
            let text = received.text.as_str();
            progress.frames.fetch_add(1, Ordering::Relaxed);
            seen.bytes += text.len() as u64;
            match self.protocol.decode(text) {
                Incoming::Reply { topic, reference, ok, response, state }
                    if seen.joined_at.is_none() && self.protocol.is_reply(reference, topic, &self.topic, &join_ref) =>
                {
                    if !ok {
                        progress.fail(format!("join refused: {response}"));
                        seen.ended = true;
                        return seen;
                    }
                    seen.joined_at = Some(received.at);
                    progress.joined.fetch_add(1, Ordering::Relaxed);
                    // A reply that carries the list (Pusher's subscription_succeeded) is also a presence state.
                    if let Some(members) = state.and_then(|state| self.protocol.members(state)) {
                        seen.presence_states += 1;
                        seen.metas += members.iter().map(|(_, ids)| ids.len() as u64).sum::<u64>();
                        view.sync_state(members);
                    }
                }
                Incoming::PresenceState { payload, .. } => {
                    seen.presence_states += 1;
                    if let Some(members) = self.protocol.members(payload) {
                        seen.metas += members.iter().map(|(_, ids)| ids.len() as u64).sum::<u64>();
                        view.sync_state(members);
                    }
                }
                Incoming::PresenceDiff { payload, .. } => {
                    seen.presence_diffs += 1;
                    if let Some((joins, leaves)) = self.protocol.diff(payload) {
                        seen.metas += joins.iter().map(|(_, ids)| ids.len() as u64).sum::<u64>();
                        view.sync_diff(joins, leaves);
                    }
                }
                _ => {}
            }
            if seen.complete_at.is_none()
                && view.entries() == self.expected.entries
                && view.keys() == self.expected.keys
            {
                seen.complete_at = Some(received.at);
                progress.complete.fetch_add(1, Ordering::Relaxed);
            }
        }
        conn.close().await;
        seen
    }
}
