//! `fanout`: N subscribers on one `room:` topic, one publisher sending `shout` at R messages per second.
//!
//! ```sh
//! taskset -c 1 target/release/livebaton-bench fanout --subscribers 1000 --rate 50 --seconds 10 --server-cpus 0
//! ```
//!
//! 1. Starts the server (`--no-demo`, `--presence-coalesce-ms <--coalesce-ms>` so the join phase is cheap,
//!    `--events-per-second` and `--event-burst` above the publisher's rate, `--outbound-queue` when given). Every
//!    client signs in as the admin (one presence key; each connection is one meta).
//! 2. Connects and joins the publisher and the N subscribers (`--concurrency` at a time), then waits until no frame
//!    has arrived for a second: the join phase's presence traffic is over. None of this is measured.
//! 3. Reads the server's CPU time, then the publisher sends `R × S` `shout`s, one every 1/R s, each
//!    `{"seq": i, "sent_us": <send time on the tool's clock>, "pad": …}` (`--payload-bytes` of padding). Every
//!    subscriber records `receive time - sent_us` in one HDR histogram (the clock is this process's monotonic clock,
//!    so no clock sync is involved) the moment its WebSocket yields the frame.
//! 4. After the last send, waits until every subscriber has every message, or `--drain-secs`, and reads the
//!    server's CPU time again.
//!
//! Reported: deliveries and deliveries/s (from the first send to the last delivery), latency p50/p90/p99/max,
//! server CPU µs per delivery, the tool's own CPU, and what went missing: deliveries not received, subscribers
//! closed (with the reason, e.g. `1008 slow consumer`), `presence_state` frames received during the measurement
//! (a subscriber that lagged behind the topic's 128-message ring is resynced with a fresh state and has missed
//! messages), and publisher events the server refused.
//!
//! Against a peer (`--server soketi|sockudo|socketio`) subscriber `i` is user `user-<i>` and the publisher is one
//! more. On soketi and sockudo the `shout` is a Pusher client event (`client-shout` on the presence channel, relayed
//! to every other member, no reply); on Socket.IO it is an event the server relays to the room's other members and
//! acknowledges. livebaton also echoes it to the publisher (whose copies are not counted) and replies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::cli::FanoutArgs;
use crate::client::Conn;
use crate::procfs::check_fd_limit;
use crate::protocol::{Incoming, Protocol};
use crate::scenarios::{instant_us, now_us};
use crate::server::Launch;
use crate::stats::{CpuMeter, Latencies, emit, extend, load_average, round};
use crate::target::Target;

/// Shared by every subscriber.
#[derive(Default)]
struct Shared {
    connected: AtomicUsize,
    joined: AtomicUsize,
    failed: AtomicUsize,
    closed: AtomicUsize,
    frames: AtomicUsize,
    /// Set while the publisher runs: frames from then on are measured.
    measuring: AtomicBool,
    deliveries: AtomicU64,
    /// `presence_state` frames received while measuring: lag resyncs.
    resyncs: AtomicU64,
    last_delivery_us: AtomicU64,
    latencies: Mutex<Latencies>,
    reasons: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    fn reason(&self, reason: String) {
        *self.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(reason).or_default() += 1;
    }

    fn line(&self) -> String {
        format!(
            "{} connected, {} joined, {} failed, {} closed",
            Self::get(&self.connected),
            Self::get(&self.joined),
            Self::get(&self.failed),
            Self::get(&self.closed)
        )
    }
}

/// The fields of a `shout` payload the subscribers read.
#[derive(Deserialize)]
struct Shout {
    sent_us: u64,
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<bool> {
    if args.subscribers == 0 || args.rate == 0 || args.seconds == 0 {
        bail!("--subscribers, --rate and --seconds must be at least 1");
    }
    check_fd_limit(args.subscribers + 1)?;
    let budget = (args.rate * 2).max(100);
    let mut flags = vec![
        "--presence-coalesce-ms".to_owned(),
        args.coalesce_ms.to_string(),
        "--events-per-second".to_owned(),
        budget.to_string(),
        "--event-burst".to_owned(),
        budget.to_string(),
    ];
    if let Some(queue) = args.outbound_queue {
        flags.extend(["--outbound-queue".to_owned(), queue.to_string()]);
    }
    let server =
        Target::start(Launch { args: &args.server, demo: false, users: &[], flags, database_url: None }).await?;
    let outcome = measure(&args, &server).await;
    server.finish(outcome).await
}

async fn measure(args: &FanoutArgs, server: &Target) -> anyhow::Result<bool> {
    let bound = args.server.bound();
    now_us();
    let protocol = server.protocol();
    // One per subscriber, and the last for the publisher.
    let mut credentials = server.credentials(args.subscribers + 1).await?;
    let publisher_credential = credentials.pop().unwrap_or_default();
    let shared = Arc::new(Shared::default());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (stop, stop_rx) = watch::channel(false);
    let joining = Instant::now();

    // The publisher first: it is the room's first member.
    let mut publisher = Conn::connect(protocol.clone(), server.addr(), &publisher_credential).await?;
    let publisher_ref = publisher.join(&args.topic, &json!({})).await?;
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for credential in credentials {
        let subscriber = Subscriber {
            protocol: protocol.clone(),
            addr: server.addr().to_owned(),
            credential,
            topic: args.topic.clone(),
            shared: shared.clone(),
            quickack: args.client_quickack,
        };
        subscribers.push(tokio::spawn(subscriber.run(permits.clone(), stop_rx.clone())));
    }
    // The publisher drains its socket (presence, its own shouts) while the subscribers join.
    let deadline = Instant::now() + bound;
    let mut publisher_frames = 0u64;
    while Shared::get(&shared.joined) + Shared::get(&shared.failed) < args.subscribers {
        if Instant::now() > deadline {
            bail!("subscribers not joined after {} s: {}", bound.as_secs(), shared.line());
        }
        if let Ok(received) = tokio::time::timeout(Duration::from_millis(50), publisher.recv()).await {
            received.map_err(|ended| anyhow::anyhow!("publisher: {ended}"))?;
            publisher_frames += 1;
        }
    }
    let joined_in = joining.elapsed();
    // Settled: no frame for a second anywhere.
    let mut last = (Shared::get(&shared.frames), publisher_frames);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        if Instant::now() > deadline {
            bail!("presence frames still arriving after {} s", bound.as_secs());
        }
        if let Ok(received) = tokio::time::timeout(Duration::from_millis(50), publisher.recv()).await {
            received.map_err(|ended| anyhow::anyhow!("publisher: {ended}"))?;
            publisher_frames += 1;
        }
        let now = (Shared::get(&shared.frames), publisher_frames);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let settled_in = joining.elapsed();
    let open = Shared::get(&shared.joined) - Shared::get(&shared.closed);

    // Measure.
    let messages = u64::from(args.rate) * args.seconds;
    let pad = "x".repeat(args.payload_bytes);
    let cpu = CpuMeter::start(server.pid())?;
    shared.measuring.store(true, Ordering::SeqCst);
    let first_send_us = now_us();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut sent, mut refused, mut replies) = (0u64, 0u64, 0u64);
    let mut refusals = BTreeMap::<String, u64>::new();
    let mut publisher_closed = None;
    let mut count_reply = |incoming: Incoming<'_>| {
        if let Incoming::Reply { ok, response, .. } = incoming {
            replies += 1;
            if !ok {
                refused += 1;
                *refusals.entry(response.to_string()).or_default() += 1;
            }
        }
    };
    while sent < messages {
        tokio::select! {
            _ = ticker.tick() => {
                let payload = json!({"seq": sent, "sent_us": now_us(), "pad": pad});
                if let Err(error) = publisher.push(&args.topic, publisher_ref, "shout", &payload).await {
                    publisher_closed = Some(format!("{error:#}"));
                    break;
                }
                sent += 1;
            }
            received = publisher.recv() => match received {
                Ok(received) => count_reply(protocol.decode(received.text.as_str())),
                Err(ended) => {
                    publisher_closed = Some(ended.to_string());
                    break;
                }
            },
        }
    }
    let last_send_us = now_us();
    // Drain: every delivery arrived, or time is up. The publisher keeps reading its replies.
    let expected = sent * open as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    while shared.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        if publisher_closed.is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        if let Ok(received) = tokio::time::timeout(Duration::from_millis(10), publisher.recv()).await {
            match received {
                Ok(received) => count_reply(protocol.decode(received.text.as_str())),
                Err(ended) => publisher_closed = Some(ended.to_string()),
            }
        }
    }
    let usage = cpu.stop()?;
    shared.measuring.store(false, Ordering::SeqCst);

    let deliveries = shared.deliveries.load(Ordering::Relaxed);
    let last_delivery_us = shared.last_delivery_us.load(Ordering::Relaxed).max(last_send_us);
    let delivering_secs = (last_delivery_us.saturating_sub(first_send_us)) as f64 / 1e6;
    let per_second = if delivering_secs > 0.0 { deliveries as f64 / delivering_secs } else { 0.0 };
    let server_us_per_delivery = if deliveries > 0 { 1e6 * usage.server_secs / deliveries as f64 } else { 0.0 };
    let latencies = shared.latencies.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let reasons = shared.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let (failed, closed) = (Shared::get(&shared.failed), Shared::get(&shared.closed));
    let resyncs = shared.resyncs.load(Ordering::Relaxed);
    let publish_secs = (last_send_us - first_send_us) as f64 / 1e6;
    let mut report = json!({
        "scenario": "fanout",
        "server": protocol.name(),
        "subscribers": args.subscribers,
        "rate": args.rate,
        "seconds": args.seconds,
        "payload_bytes": args.payload_bytes,
        "client_quickack": args.client_quickack,
        "sent": sent,
        "publish_secs": round(publish_secs, 2),
        "expected_deliveries": expected,
        "deliveries": deliveries,
        "missing": expected.saturating_sub(deliveries),
        "deliveries_per_sec": round(per_second, 0),
        "latency_ms": latencies.json(),
        "server_cpu_us_per_delivery": round(server_us_per_delivery, 3),
        "publisher_replies": replies,
        "publisher_refused": refused,
        "publisher_refusals": refusals,
        "publisher_closed": publisher_closed,
        "subscribers_open_at_start": open,
        "failed": failed,
        "closed": closed,
        "reasons": reasons,
        "lag_resyncs": resyncs,
        "joined_secs": round(joined_in.as_secs_f64(), 1),
        "settled_secs": round(settled_in.as_secs_f64(), 1),
        "server_flags": server.flags(),
        "server_cpus": args.server.server_cpus,
        "load_average_1m": load_average(),
    });
    extend(&mut report, usage.json());
    emit(&report.to_string());
    emit(&format!(
        "fanout: {} subscribers, {} msg/s for {} s ({sent} sent in {publish_secs:.1} s): {deliveries} of {expected} \
         deliveries, {per_second:.0}/s",
        args.subscribers, args.rate, args.seconds
    ));
    emit(&format!("  latency {} (targets at 10,000 subscribers: p99 <= 50 ms)", latencies.human()));
    emit(&format!("  CPU: {}; server {server_us_per_delivery:.2} µs per delivery", usage.human()));
    emit(&format!(
        "  joined in {:.1} s, settled at {:.1} s; {failed} failed, {closed} closed, {resyncs} lag resyncs, \
         {refused} publisher events refused",
        joined_in.as_secs_f64(),
        settled_in.as_secs_f64()
    ));
    for (reason, count) in &reasons {
        emit(&format!("  {count} x {reason}"));
    }

    let _ = stop.send(true);
    let closing = async {
        for subscriber in subscribers {
            let _ = subscriber.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), closing).await.is_err() {
        eprintln!("some subscribers did not close within 20 s");
    }
    publisher.close().await;
    Ok(failed == 0 && closed == 0 && deliveries == expected && refused == 0)
}

struct Subscriber {
    protocol: Arc<dyn Protocol>,
    addr: String,
    credential: String,
    topic: String,
    shared: Arc<Shared>,
    quickack: bool,
}

impl Subscriber {
    async fn run(self, permits: Arc<Semaphore>, mut stop: watch::Receiver<bool>) {
        let shared = &self.shared;
        let permit = permits.acquire_owned().await;
        let mut conn = match Conn::connect(self.protocol.clone(), &self.addr, &self.credential).await {
            Ok(conn) => conn,
            Err(error) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.reason(format!("connect: {error:#}"));
                return;
            }
        };
        conn.set_quickack(self.quickack);
        shared.connected.fetch_add(1, Ordering::Relaxed);
        let join_ref = match conn.join(&self.topic, &json!({})).await {
            Ok(reference) => reference.to_string(),
            Err(error) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.reason(format!("join: {error:#}"));
                return;
            }
        };
        let mut permit = Some(permit);
        loop {
            let received = tokio::select! {
                _ = stop.changed() => break,
                received = conn.recv() => received,
            };
            let received = match received {
                Ok(received) => received,
                Err(ended) => {
                    if permit.is_some() {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        shared.reason(format!("before the join reply: {ended}"));
                    } else {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        shared.reason(ended.to_string());
                    }
                    break;
                }
            };
            shared.frames.fetch_add(1, Ordering::Relaxed);
            match self.protocol.decode(received.text.as_str()) {
                Incoming::Event { event: "shout", payload, .. } => {
                    let data = self.protocol.data(payload);
                    if let Some(shout) = data.and_then(|data| serde_json::from_str::<Shout>(&data).ok()) {
                        let at = instant_us(received.at);
                        // One tokio worker under `taskset -c 1`: the lock is not contended.
                        shared
                            .latencies
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .record_us(at.saturating_sub(shout.sent_us));
                        shared.last_delivery_us.fetch_max(at, Ordering::Relaxed);
                        shared.deliveries.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Incoming::PresenceState { .. } if shared.measuring.load(Ordering::Relaxed) => {
                    shared.resyncs.fetch_add(1, Ordering::Relaxed);
                }
                Incoming::Reply { topic, reference, ok, response, .. }
                    if permit.is_some() && self.protocol.is_reply(reference, topic, &self.topic, &join_ref) =>
                {
                    if !ok {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        shared.reason(format!("join refused: {response}"));
                        return;
                    }
                    permit = None;
                    shared.joined.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        conn.close().await;
    }
}
