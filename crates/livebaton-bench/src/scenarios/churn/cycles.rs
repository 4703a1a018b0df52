//! The cycles of `churn`: a client connects, joins the room, and leaves or closes; many at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Conn;
use crate::protocol::{Incoming, Protocol};
use crate::stats::Latencies;

/// A bound on each step of a cycle (connect, join reply, leave reply).
const STEP: Duration = Duration::from_secs(30);

/// How a cycling client ends, by its cycle number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `phx_leave`, its reply, then a close frame: the entry leaves at once.
    Leave,
    /// A close frame without leaving: the entry leaves after the grace.
    Close,
    /// The TCP connection dropped, no close frame: the entry leaves after the grace.
    Drop,
}

impl Ending {
    fn of(cycle: usize) -> Ending {
        match cycle % 4 {
            0 | 2 => Ending::Leave,
            1 => Ending::Close,
            _ => Ending::Drop,
        }
    }
}

/// What the cycles did, all of them together.
#[derive(Default)]
pub struct CycleOutcome {
    pub left: usize,
    pub closed: usize,
    pub dropped: usize,
    pub failed: usize,
    pub reasons: BTreeMap<String, usize>,
    pub join_replies: Latencies,
    /// From connecting to the end of the leave or close.
    pub durations: Latencies,
}

/// The cycles: a counter the workers take numbers from, and what they did.
pub struct Cycles {
    protocol: Arc<dyn Protocol>,
    addr: String,
    token: String,
    topic: String,
    hold: Duration,
    /// The next cycle number to run.
    next: AtomicUsize,
    /// A std `Mutex`: updated once per cycle, never held across an `.await`.
    outcome: Mutex<CycleOutcome>,
}

/// Runs cycles until `until` of them (counted from the first ever) have run, `concurrency` at a time.
pub async fn run_cycles(cycles: &Arc<Cycles>, until: usize, concurrency: usize) {
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let cycles = cycles.clone();
            tokio::spawn(async move {
                loop {
                    let cycle = cycles.next.fetch_add(1, Ordering::Relaxed);
                    if cycle >= until {
                        cycles.next.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    let started = Instant::now();
                    let result = cycles.cycle(cycle).await;
                    let mut outcome = cycles.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match result {
                        Ok((ending, join_reply)) => {
                            outcome.join_replies.record(join_reply);
                            outcome.durations.record(started.elapsed());
                            *match ending {
                                Ending::Leave => &mut outcome.left,
                                Ending::Close => &mut outcome.closed,
                                Ending::Drop => &mut outcome.dropped,
                            } += 1;
                        }
                        Err(reason) => {
                            outcome.failed += 1;
                            *outcome.reasons.entry(reason).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

impl Cycles {
    /// Cycles of clients signed in with `token` on `topic`, each staying `hold` after its join reply.
    pub fn new(protocol: Arc<dyn Protocol>, addr: String, token: String, topic: String, hold: Duration) -> Cycles {
        Cycles { protocol, addr, token, topic, hold, next: AtomicUsize::new(0), outcome: Mutex::default() }
    }

    /// What the cycles so far did (and a fresh count from here on).
    pub fn take_outcome(&self) -> CycleOutcome {
        std::mem::take(&mut *self.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// One cycle: how it ended and how long its join reply took, or why it failed.
    async fn cycle(&self, cycle: usize) -> Result<(Ending, Duration), String> {
        let started = Instant::now();
        let mut conn = tokio::time::timeout(STEP, Conn::connect(self.protocol.clone(), &self.addr, &self.token))
            .await
            .map_err(|_| "connect: no answer within 30 s".to_owned())?
            .map_err(|error| format!("connect: {error:#}"))?;
        let join_ref = conn.join(&self.topic, &json!({})).await.map_err(|error| format!("join: {error:#}"))?;
        let replied = self.reply(&mut conn, join_ref).await.map_err(|reason| format!("join: {reason}"))?;
        let join_reply = replied.saturating_duration_since(started);
        if !self.hold.is_zero() {
            tokio::time::sleep(self.hold).await;
        }
        let ending = Ending::of(cycle);
        match ending {
            Ending::Leave => {
                let leave_ref = conn.leave(&self.topic, join_ref).await.map_err(|error| format!("leave: {error:#}"))?;
                self.reply(&mut conn, leave_ref).await.map_err(|reason| format!("leave: {reason}"))?;
                conn.close().await;
            }
            Ending::Close => conn.close().await,
            Ending::Drop => drop(conn),
        }
        Ok((ending, join_reply))
    }

    /// Reads until the reply to `reference` on the room; when it was read, or why there was none.
    async fn reply(&self, conn: &mut Conn, reference: u64) -> Result<Instant, String> {
        let reference = reference.to_string();
        let wait = async {
            loop {
                let received = conn.recv().await.map_err(|ended| ended.to_string())?;
                if let Incoming::Reply { topic, reference: replied, ok, response, .. } =
                    self.protocol.decode(received.text.as_str())
                    && self.protocol.is_reply(replied, topic, &self.topic, &reference)
                {
                    return if ok { Ok(received.at) } else { Err(format!("refused: {response}")) };
                }
            }
        };
        tokio::time::timeout(STEP, wait).await.map_err(|_| "no reply within 30 s".to_owned())?
    }
}
