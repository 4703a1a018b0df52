//! `form-sync`: an owner and M spectators on one record; the owner sends `draft`, the time until each spectator
//! has it.
//!
//! ```sh
//! taskset -c 1 target/release/livebaton-bench form-sync --spectators 5 --rounds 100 --server-cpus 0
//! ```
//!
//! 1. Like `handoff` ([`super::editing`]): M + 1 users with role `editor`, the demo content, everyone joined to
//!    `edit:data:<id>` of the first demo record in order, so editor 0 owns and the M others are spectators.
//! 2. Each round the owner sends `draft` with a whole record form whose `data.bench_round` is the round
//!    ([`super::editing::draft_params`]). A sample is the time from just before the owner writes the frame to the
//!    moment a spectator reads the `draft` push carrying that round: M samples per round. The round ends when every
//!    spectator has it and the owner has its `ok` reply (`{version}`); then `--pause-ms`, and the next round.
//! 3. After K rounds: p50/p90/p99/max over all samples, the same for the last spectator of each round, the owner's
//!    reply time, and the server's CPU over the rounds.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::editing::{Command, Report, Session, editor_users, start_server};
use crate::cli::FormSyncArgs;
use crate::server::Server;
use crate::stats::{CpuMeter, Latencies, emit, extend, load_average};

pub async fn run(args: FormSyncArgs) -> anyhow::Result<bool> {
    if args.spectators == 0 || args.rounds == 0 {
        bail!("--spectators and --rounds must be at least 1");
    }
    let users = editor_users(args.spectators + 1);
    let server = start_server(&args.server, &users).await?;
    let outcome = measure(&args, &server).await;
    server.finish(outcome).await
}

async fn measure(args: &FormSyncArgs, server: &Server) -> anyhow::Result<bool> {
    let bound = args.server.bound();
    let users = editor_users(args.spectators + 1);
    let mut session = Session::open(server, &[&server.addr], &users, args.client_quickack, bound).await?;
    let cpu = CpuMeter::start(server.pid)?;
    let samples = rounds(&mut session, 0, args.spectators, args.rounds, Duration::from_millis(args.pause_ms)).await?;
    let mut each = Latencies::default();
    for (_, latency) in &samples.seen {
        each.record(*latency);
    }
    let FormSyncSamples { last, replies, .. } = samples;
    let usage = cpu.stop()?;
    let topic = session.topic.clone();
    session.close().await;

    let mut report = json!({
        "scenario": "form-sync",
        "server": "livebaton",
        "spectators": args.spectators,
        "rounds": args.rounds,
        "pause_ms": args.pause_ms,
        "client_quickack": args.client_quickack,
        "topic": topic,
        "draft_ms": each.json(),
        "last_spectator_ms": last.json(),
        "owner_reply_ms": replies.json(),
        "server_cpus": args.server.server_cpus,
        "load_average_1m": load_average(),
    });
    extend(&mut report, usage.json());
    emit(&report.to_string());
    emit(&format!(
        "form-sync: owner + {} spectators, {} drafts: owner's draft to a spectator's draft push: {}",
        args.spectators,
        args.rounds,
        each.human()
    ));
    emit(&format!("  last spectator of each round: {}", last.human()));
    emit(&format!("  owner's reply: {}", replies.human()));
    emit(&format!("  CPU: {}", usage.human()));
    Ok(true)
}

/// What [`rounds`] measured.
#[derive(Default)]
pub struct FormSyncSamples {
    /// Every spectator's sample: (editor, the owner's `draft` frame to that editor's `draft` push).
    pub seen: Vec<(usize, Duration)>,
    /// The last spectator of each round.
    pub last: Latencies,
    /// The owner's `ok` reply to its `draft`.
    pub replies: Latencies,
}

/// `count` drafts from `owner` (who must own the session), each waited for by all `spectators` other editors and
/// answered to the owner; then `pause`.
pub async fn rounds(
    session: &mut Session,
    owner: usize,
    spectators: usize,
    count: usize,
    pause: Duration,
) -> anyhow::Result<FormSyncSamples> {
    let mut samples = FormSyncSamples::default();
    for round in 0..count as u64 {
        session.send(owner, Command::Draft { round })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut sent_at, mut seen, mut replied) = (None, Vec::with_capacity(spectators), false);
        while sent_at.is_none() || seen.len() < spectators || !replied {
            match session.next(deadline).await? {
                Report::DraftSent { round: sent, at } if sent == round => sent_at = Some(at),
                Report::DraftSeen { editor, round: got, at } if got == round && editor != owner => {
                    seen.push((editor, at))
                }
                Report::DraftReply { round: answered, ok, response, at } if answered == round => {
                    if !ok {
                        bail!("the owner's draft was refused: {response}");
                    }
                    replied = true;
                    if let Some(sent_at) = sent_at {
                        samples.replies.record(at.saturating_duration_since(sent_at));
                    }
                }
                Report::Failed { editor, reason } => bail!("editor {editor}: {reason}"),
                _ => {}
            }
        }
        let sent_at = sent_at.unwrap_or_else(Instant::now);
        for (editor, at) in &seen {
            samples.seen.push((*editor, at.saturating_duration_since(sent_at)));
        }
        if let Some(latest) = seen.iter().map(|(_, at)| *at).max() {
            samples.last.record(latest.saturating_duration_since(sent_at));
        }
        tokio::time::sleep(pause).await;
    }
    Ok(samples)
}
