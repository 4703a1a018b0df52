//! `handoff`: M editors on one record; the owner leaves, and the time until the next in line is told it owns.
//!
//! ```sh
//! taskset -c 1 target/release/livebaton-bench handoff --editors 5 --rounds 50 --server-cpus 0
//! ```
//!
//! 1. Creates M users with role `editor` (`livebaton user add`), starts the server with the demo content, signs
//!    them in (`POST /api/tokens`), and joins each, one after the other, to `edit:data:<id>` of the first demo
//!    `article` record ([`super::editing`]): editor 0 owns, the others queue in join order.
//! 2. Each round: the owner sends `phx_leave`. The round's *handoff* is from just before that frame is written to
//!    the moment the next in line reads `role` with `role: "owner"` (`promoted`); *all notified* is until the last
//!    remaining member has read its `role` push (`owner_changed` for the others). When the leaver has its
//!    `phx_close`, it joins again (same tab id, a new entry at the back of the line) and must be answered
//!    `spectator`. Then `--pause-ms`, and the next round.
//! 3. After K rounds: p50/p90/p99/max of both, the server's CPU over the rounds, and the server's own view of the
//!    same hand-overs from `/metrics` (`livebaton_owner_handoff_seconds`: roster change to `role` pushed).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::editing::{Command, Report, Session, editor_users, start_server};
use crate::cli::HandoffArgs;
use crate::http::{metric, metrics};
use crate::server::Server;
use crate::stats::{CpuMeter, Latencies, emit, extend, load_average, round};

/// The target of issue 7.
const TARGET_P99_MS: f64 = 20.0;

pub async fn run(args: HandoffArgs) -> anyhow::Result<bool> {
    if args.editors < 2 || args.rounds == 0 {
        bail!("--editors must be at least 2 and --rounds at least 1");
    }
    let users = editor_users(args.editors);
    let server = start_server(&args.server, &users).await?;
    let outcome = measure(&args, &server).await;
    server.finish(outcome).await
}

async fn measure(args: &HandoffArgs, server: &Server) -> anyhow::Result<bool> {
    let bound = args.server.bound();
    let users = editor_users(args.editors);
    let mut session = Session::open(server, &[&server.addr], &users, args.client_quickack, bound).await?;
    let server_before = handoff_metric(server).await;
    let cpu = CpuMeter::start(server.pid)?;
    let samples = rounds(&mut session, args.editors, args.rounds, Duration::from_millis(args.pause_ms)).await?;
    let usage = cpu.stop()?;
    let server_after = handoff_metric(server).await;
    let topic = session.topic.clone();
    session.close().await;

    // The server's histogram: hand-overs it timed during the rounds, and their mean.
    let server_view = match (server_before, server_after) {
        (Some((count_0, sum_0)), Some((count_1, sum_1))) if count_1 > count_0 => {
            json!({"count": count_1 - count_0, "mean_ms": round(1000.0 * (sum_1 - sum_0) / (count_1 - count_0), 3)})
        }
        _ => json!(null),
    };
    let HandoffSamples { handoff, notified, changed_settled, changed_rejoined, rejoin } = samples;
    let p99 = handoff.quantile_ms(0.99);
    let mut report = json!({
        "scenario": "handoff",
        "server": "livebaton",
        "editors": args.editors,
        "rounds": args.rounds,
        "pause_ms": args.pause_ms,
        "client_quickack": args.client_quickack,
        "topic": topic,
        "handoff_ms": handoff.json(),
        "all_notified_ms": notified.json(),
        "owner_changed_ms": changed_settled.json(),
        "owner_changed_to_last_rejoiner_ms": changed_rejoined.json(),
        "rejoin_reply_ms": rejoin.json(),
        "server_handoff_metric": server_view,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p99 <= TARGET_P99_MS,
        "server_cpus": args.server.server_cpus,
        "load_average_1m": load_average(),
    });
    extend(&mut report, usage.json());
    emit(&report.to_string());
    emit(&format!(
        "handoff: {} editors, {} rounds: owner's phx_leave to the next in line's role owner: {}",
        args.editors,
        args.rounds,
        handoff.human()
    ));
    emit(&format!("  target p99 <= {TARGET_P99_MS} ms: {}", if p99 <= TARGET_P99_MS { "met" } else { "NOT met" }));
    emit(&format!("  every remaining member notified: {}", notified.human()));
    emit(&format!("  owner_changed to the others: {}", changed_settled.human()));
    emit(&format!("  owner_changed to the member that rejoined the round before: {}", changed_rejoined.human()));
    emit(&format!("  rejoin reply: {}", rejoin.human()));
    if let Some(mean) = server_view["mean_ms"].as_f64() {
        emit(&format!("  server's own livebaton_owner_handoff_seconds over the rounds: mean {mean:.3} ms"));
    }
    emit(&format!("  CPU: {}", usage.human()));
    Ok(true)
}

/// What [`rounds`] measured.
#[derive(Default)]
pub struct HandoffSamples {
    /// The owner's `phx_leave` to the next in line's `role` owner.
    pub handoff: Latencies,
    /// The same leave to the last remaining member's `role` push.
    pub notified: Latencies,
    /// `owner_changed` to the members other than the next in line and the one that rejoined the round before.
    pub changed_settled: Latencies,
    /// `owner_changed` to the member that rejoined the round before (its connection has just received a join
    /// reply and presence frames).
    pub changed_rejoined: Latencies,
    /// The leaver's rejoin to its reply (`spectator`).
    pub rejoin: Latencies,
}

/// `count` hand-overs in a session of `editors` joined in order (editor 0 owns): the owner leaves, the next in
/// line must be promoted and everyone else told, the leaver rejoins at the back of the line; then `pause`.
pub async fn rounds(
    session: &mut Session,
    editors: usize,
    count: usize,
    pause: Duration,
) -> anyhow::Result<HandoffSamples> {
    let mut line: VecDeque<usize> = (0..editors).collect();
    let mut samples = HandoffSamples::default();
    let mut rejoined_last: Option<usize> = None;
    for _ in 0..count {
        let (leaver, next) = (line[0], line[1]);
        session.send(leaver, Command::Leave)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut sent_at, mut promoted_at, mut last_role_at, mut roles, mut closed) = (None, None, None, 0, false);
        let mut changed = Vec::new();
        while sent_at.is_none() || promoted_at.is_none() || roles < editors - 1 || !closed {
            match session.next(deadline).await? {
                Report::LeaveSent { editor, at } if editor == leaver => sent_at = Some(at),
                Report::Role { editor, role, reason, at } if editor != leaver => {
                    if editor == next {
                        if role != "owner" {
                            bail!("editor {next}, next in line, got role {role} ({reason}) instead of owner");
                        }
                        promoted_at = Some(at);
                    } else {
                        changed.push((editor, at));
                    }
                    roles += 1;
                    last_role_at = last_role_at.max(Some(at));
                }
                Report::Closed { editor, event } if editor == leaver => {
                    if event != "phx_close" {
                        bail!("editor {leaver} got {event} after its leave");
                    }
                    closed = true;
                }
                Report::Failed { editor, reason } => bail!("editor {editor}: {reason}"),
                _ => {}
            }
        }
        let (Some(sent_at), Some(promoted_at), Some(last_role_at)) = (sent_at, promoted_at, last_role_at) else {
            unreachable!("the loop above waits for all three");
        };
        samples.handoff.record(promoted_at.saturating_duration_since(sent_at));
        samples.notified.record(last_role_at.saturating_duration_since(sent_at));
        for (editor, at) in changed {
            let latency = at.saturating_duration_since(sent_at);
            if Some(editor) == rejoined_last {
                samples.changed_rejoined.record(latency)
            } else {
                samples.changed_settled.record(latency)
            }
        }

        let joining = Instant::now();
        session.send(leaver, Command::Join)?;
        loop {
            match session.next(deadline).await? {
                Report::Joined { editor, role, at } if editor == leaver => {
                    if role != "spectator" {
                        bail!("editor {leaver} rejoined as {role}, not spectator");
                    }
                    samples.rejoin.record(at.saturating_duration_since(joining));
                    break;
                }
                Report::Failed { editor, reason } => bail!("editor {editor}: {reason}"),
                _ => {}
            }
        }
        rejoined_last = Some(leaver);
        line.rotate_left(1);
        tokio::time::sleep(pause).await;
    }
    Ok(samples)
}

/// `(count, sum in seconds)` of the server's `livebaton_owner_handoff_seconds` histogram, if it has one yet.
async fn handoff_metric(server: &Server) -> Option<(f64, f64)> {
    let text = metrics(&server.addr).await.ok()?;
    let count = metric(&text, "livebaton_owner_handoff_seconds_count").unwrap_or(0.0);
    let sum = metric(&text, "livebaton_owner_handoff_seconds_sum").unwrap_or(0.0);
    Some((count, sum))
}
