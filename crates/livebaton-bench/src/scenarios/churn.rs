//! `churn`: clients come and go in a presence room while others stay; afterwards the room lists exactly the clients
//! that stayed, in every client's list and in the server's, and the server's memory is back near its plateau.
//!
//! ```sh
//! taskset -c 1 target/release/livebaton-bench churn --stay 1000 --cycles 10000 --server-cpus 0
//! ```
//!
//! 1. Creates two viewers, `bench-churn-stay` and `bench-churn-cycle`, starts the server (`--no-demo`, and
//!    `--leave-grace-ms`, `--presence-coalesce-ms`, `--outbound-queue` when given) and signs both in.
//! 2. `--stay` clients (all the stay user: one key, one meta per connection) connect and join `--topic`,
//!    `--concurrency` at a time, and stay to the end. Each reads every frame and keeps the room's presence list with
//!    Phoenix semantics ([`crate::presence::PresenceView`]: a `presence_state` replaces it, a `presence_diff` joins
//!    and leaves).
//! 3. Cycles, at most `--concurrency` at a time: a client (the cycle user) connects, joins, waits for its join reply,
//!    stays `--hold-ms`, and ends in one of three ways, in turn by cycle number: `phx_leave` (its reply awaited) and a
//!    close frame (half the cycles); a close frame without leaving (a quarter); the TCP connection dropped without a
//!    close frame (a quarter). The last two leave the room only after the server's leave grace.
//! 4. The first `--warmup-cycles` cycles run, then the rest; before and after the rest, the tool waits the grace plus
//!    `--margin-ms`, until no staying client has received a frame for `--settle-ms`, and 3 s more (the server's
//!    allocator trim runs every 2 s), then reads the server's `VmRSS` and `RssAnon` (`/proc/<pid>/status`): the
//!    *plateau* and the *end*. RSS is also sampled every 250 ms throughout (the peak).
//! 5. At both readings every staying client's list must be exactly the staying set: `--stay` entries, all under the
//!    stay user's key (the key the first staying client lists once all have joined). At the end a fresh observer (the
//!    admin) joins and its list (the `presence_state` and the join-only diffs that complete a big state) must hold the
//!    stayers and itself, nothing else; and `/metrics` `livebaton_presences` must be `--stay` + 1.
//!
//! Reported: the cycles by ending and the failures, cycles per second, join replies, server CPU over the measured
//! cycles, RSS after the stayers joined, at the plateau, at the peak and at the end (`rss_end_ratio` = end ÷
//! plateau), how many staying lists were wrong at each reading, and the observer's ghosts and missing entries. Exits
//! with status 1 when a cycle failed, a staying client was closed, any list or the gauge is not exactly the staying
//! set, or `VmRSS` at the end exceeds the plateau by more than `--rss-tolerance`.

mod cycles;
mod observer;
mod stayers;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::cli::{ChurnArgs, ServerKind};
use crate::procfs::{RssSampler, check_fd_limit, resident_kib};
use crate::protocol::Protocol;
use crate::protocol::phoenix::PhoenixV2;
use crate::scenarios::{now_us, tokens_for};
use crate::server::{Launch, Server, User};
use crate::stats::{CpuMeter, emit, extend, load_average, round};
use cycles::{Cycles, run_cycles};
use observer::observe;
use stayers::{Room, Stayer};

/// The server's `--leave-grace-ms` when the scenario does not set it.
const DEFAULT_GRACE_MS: u64 = 1000;
/// Waited before an RSS reading: the server gives freed pages back every 2 s (`--malloc-trim-secs`).
const TRIM_WAIT: Duration = Duration::from_secs(3);

pub async fn run(args: ChurnArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(args.server.server == ServerKind::Livebaton, "churn measures livebaton only");
    anyhow::ensure!(args.stay >= 1, "--stay must be at least 1");
    anyhow::ensure!(args.warmup_cycles <= args.cycles, "--warmup-cycles must not exceed --cycles");
    check_fd_limit(args.stay + args.concurrency + 10)?;
    let users = [User::new("churn-stay", "viewer"), User::new("churn-cycle", "viewer")];
    let mut flags = Vec::new();
    for (flag, value) in [
        ("--leave-grace-ms", args.leave_grace_ms),
        ("--presence-coalesce-ms", args.coalesce_ms),
        ("--outbound-queue", args.outbound_queue.map(|queue| queue as u64)),
    ] {
        if let Some(value) = value {
            flags.extend([flag.to_owned(), value.to_string()]);
        }
    }
    let server =
        Server::start(Launch { args: &args.server, demo: false, users: &users, flags, database_url: None }).await?;
    let outcome = measure(&args, &server, &users).await;
    server.finish(outcome).await
}

async fn measure(args: &ChurnArgs, server: &Server, users: &[User]) -> anyhow::Result<bool> {
    let bound = args.server.bound();
    let tokens = tokens_for(&server.addr, users, bound).await?;
    let (stay_token, cycle_token) = (tokens[0].clone(), tokens[1].clone());
    let protocol: Arc<dyn Protocol> = Arc::new(PhoenixV2);
    let room = Arc::new(Room::new(args.stay));
    let sampler = RssSampler::start(server.pid);

    // The staying clients.
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut stayers = Vec::with_capacity(args.stay);
    for index in 0..args.stay {
        let stayer = Stayer {
            index,
            protocol: protocol.clone(),
            addr: server.addr.clone(),
            token: stay_token.clone(),
            topic: args.topic.clone(),
            room: room.clone(),
        };
        stayers.push(tokio::spawn(stayer.run(permits.clone(), stopped.clone())));
    }
    let deadline = Instant::now() + bound;
    while room.count(&room.joined) + room.count(&room.failed) < args.stay {
        if Instant::now() > deadline {
            bail!("staying clients not joined after {} s: {}", bound.as_secs(), room.progress());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if room.count(&room.failed) > 0 {
        bail!("staying clients failed to join: {} ({:?})", room.progress(), room.reasons());
    }
    let stayers_joined_secs = started.elapsed().as_secs_f64();
    settle(args, &room, bound).await?;
    let after_stayers = resident_kib(server.pid)?;
    // Every staying list is the stayers alone now; its one key is the stay user's.
    let stay_key = match room.list(0).as_slice() {
        [(key, entries)] if *entries == args.stay => key.clone(),
        other => bail!("the first staying client lists {other:?} once all {} joined", args.stay),
    };
    let wrong_after_join = room.wrong_lists(&stay_key, args.stay);

    let hold = Duration::from_millis(args.hold_ms);
    let cycles = Arc::new(Cycles::new(protocol.clone(), server.addr.clone(), cycle_token, args.topic.clone(), hold));
    run_cycles(&cycles, args.warmup_cycles, args.concurrency).await;
    settle(args, &room, bound).await?;
    let plateau = resident_kib(server.pid)?;
    let wrong_at_plateau = room.wrong_lists(&stay_key, args.stay);

    let cpu = CpuMeter::start(server.pid)?;
    let measured = Instant::now();
    tokio::time::timeout(bound, run_cycles(&cycles, args.cycles, args.concurrency))
        .await
        .with_context(|| format!("the cycles took more than {} s", bound.as_secs()))?;
    let cycles_secs = measured.elapsed().as_secs_f64();
    let usage = cpu.stop()?;
    settle(args, &room, bound).await?;
    let end = resident_kib(server.pid)?;
    let peak = sampler.stop();
    let wrong_at_end = room.wrong_lists(&stay_key, args.stay);
    let observer = observe(&protocol, server, &args.topic, args.stay).await?;
    let gauge = crate::http::metrics(&server.addr)
        .await
        .ok()
        .and_then(|text| crate::http::metric(&text, "livebaton_presences"));
    let observed = observer.check(&stay_key, args.stay);
    let stayers_closed = room.count(&room.closed);

    let outcome = cycles.take_outcome();
    let measured_cycles = args.cycles - args.warmup_cycles;
    let ratio = |end: u64, plateau: u64| round(end as f64 / plateau.max(1) as f64, 3);
    let rss_ok = end.total as f64 <= plateau.total as f64 * (1.0 + args.rss_tolerance);
    let gauge_ok = gauge == Some((args.stay + 1) as f64);
    let mut report = json!({
        "scenario": "churn",
        "server": "livebaton",
        "stay": args.stay,
        "cycles": args.cycles,
        "warmup_cycles": args.warmup_cycles,
        "concurrency": args.concurrency,
        "hold_ms": args.hold_ms,
        "leave_grace_ms": args.leave_grace_ms.unwrap_or(DEFAULT_GRACE_MS),
        "cycles_left": outcome.left,
        "cycles_closed": outcome.closed,
        "cycles_dropped": outcome.dropped,
        "cycles_failed": outcome.failed,
        "failures": outcome.reasons,
        "cycles_per_sec": round(measured_cycles as f64 / cycles_secs.max(1e-9), 1),
        "server_cpu_ms_per_cycle": round(1000.0 * usage.server_secs / measured_cycles.max(1) as f64, 3),
        "join_reply_ms": outcome.join_replies.json(),
        "cycle_ms": outcome.durations.json(),
        "stayers_joined_secs": round(stayers_joined_secs, 1),
        "stayers_closed": stayers_closed,
        "stayer_close_reasons": room.reasons(),
        "rss_after_stayers_kib": after_stayers.total,
        "rss_plateau_kib": plateau.total,
        "rss_peak_kib": peak.total,
        "rss_end_kib": end.total,
        "rss_end_ratio": ratio(end.total, plateau.total),
        "rss_anon_after_stayers_kib": after_stayers.anon,
        "rss_anon_plateau_kib": plateau.anon,
        "rss_anon_peak_kib": peak.anon,
        "rss_anon_end_kib": end.anon,
        "rss_anon_end_ratio": ratio(end.anon, plateau.anon),
        "rss_tolerance": args.rss_tolerance,
        "wrong_lists_after_join": wrong_after_join,
        "wrong_lists_at_plateau": wrong_at_plateau,
        "wrong_lists_at_end": wrong_at_end,
        "observer_entries": observer.view.entries(),
        "observer_ghosts": observed.ghosts,
        "observer_missing": observed.missing,
        "presences_gauge": gauge,
        "server_flags": server.flags,
        "server_cpus": args.server.server_cpus,
        "load_average_1m": load_average(),
    });
    extend(&mut report, usage.json());
    emit(&report.to_string());
    let mib = |kib: u64| kib as f64 / 1024.0;
    emit(&format!(
        "churn: {} staying clients in {}, {} cycles ({} warm-up) {} at a time: {} left, {} closed, {} dropped, {} \
         failed; {:.0} cycles/s after the warm-up",
        args.stay,
        args.topic,
        args.cycles,
        args.warmup_cycles,
        args.concurrency,
        outcome.left,
        outcome.closed,
        outcome.dropped,
        outcome.failed,
        measured_cycles as f64 / cycles_secs.max(1e-9),
    ));
    emit(&format!("  join replies: {}", outcome.join_replies.human()));
    emit(&format!("  CPU over the measured cycles: {}", usage.human()));
    emit(&format!(
        "  server VmRSS: {:.1} MiB with the stayers, {:.1} MiB at the plateau, {:.1} MiB peak, {:.1} MiB at the end \
         ({:.3} of the plateau, at most {:.2}: {}); RssAnon {:.1} -> {:.1} MiB",
        mib(after_stayers.total),
        mib(plateau.total),
        mib(peak.total),
        mib(end.total),
        end.total as f64 / plateau.total.max(1) as f64,
        1.0 + args.rss_tolerance,
        if rss_ok { "ok" } else { "NOT ok" },
        mib(plateau.anon),
        mib(end.anon),
    ));
    emit(&format!(
        "  staying lists not exactly the {} stayers: {wrong_after_join} after they joined, {wrong_at_plateau} at the \
         plateau, {wrong_at_end} at the end; {stayers_closed} staying clients closed",
        args.stay
    ));
    emit(&format!(
        "  a fresh observer lists {} entries: {} ghosts, {} missing; livebaton_presences = {} (expected {})",
        observer.view.entries(),
        observed.ghosts,
        observed.missing,
        gauge.map_or("unread".to_owned(), |gauge| gauge.to_string()),
        args.stay + 1,
    ));
    for (reason, count) in outcome.reasons.iter().chain(room.reasons().iter()) {
        emit(&format!("  {count} x {reason}"));
    }

    let _ = stop.send(true);
    let closing = async {
        for stayer in stayers {
            let _ = stayer.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), closing).await.is_err() {
        eprintln!("some staying clients did not close within 10 s");
    }
    Ok(outcome.failed == 0
        && stayers_closed == 0
        && wrong_after_join + wrong_at_plateau + wrong_at_end == 0
        && observed.ghosts == 0
        && observed.missing == 0
        && gauge_ok
        && rss_ok)
}

/// Waits the leave grace and the margin, then until no staying client has received a frame for `--settle-ms`, then
/// for the allocator's trim.
async fn settle(args: &ChurnArgs, room: &Room, bound: Duration) -> anyhow::Result<()> {
    let grace = args.leave_grace_ms.unwrap_or(DEFAULT_GRACE_MS);
    tokio::time::sleep(Duration::from_millis(grace + args.margin_ms)).await;
    let quiet_us = args.settle_ms * 1000;
    let deadline = Instant::now() + bound;
    while now_us().saturating_sub(room.last_frame_us.load(Ordering::Relaxed)) < quiet_us {
        if Instant::now() > deadline {
            bail!("frames still arriving after {} s: {}", bound.as_secs(), room.progress());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(TRIM_WAIT).await;
    Ok(())
}
