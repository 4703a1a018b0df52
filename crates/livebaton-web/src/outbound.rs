//! The frames waiting to be written to one client: a small bounded queue that channels (and the tasks of live views)
//! fill and the connection's task drains.
//!
//! Not a tokio `mpsc`: that allocates a block of 32 slots plus cache-padded state up front and keeps extra blocks after
//! a burst, about 2–3 KiB per connection that sits idle almost all the time. Here an idle connection holds one small
//! `Arc` and an empty `VecDeque` (no allocation): the queue's slots are released whenever it is drained.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

/// Why the connection must close, told through its queue (see [`crate::connections`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The server is shutting down.
    Shutdown,
    /// The application disconnected the user ([`crate::endpoint::LiveEndpoint::disconnect_user`]), with the close
    /// frame's reason (at most 123 bytes, the most a close frame carries).
    Kicked(&'static str),
    /// A producer found the queue full: the client does not read fast enough.
    Overflowed,
}

/// `last_heard` once the endpoint's sweep found the client silent for the idle timeout.
const SILENT: u64 = u64::MAX;
/// Set in `last_heard` by the sweep when the client was silent for half the idle timeout: the connection owes it a
/// WebSocket ping. Cleared by the connection when it queues the ping.
const PING_DUE: u64 = 1 << 62;
/// Set in `last_heard` with [`PING_DUE`] and kept until the client is heard from again: one ping per silence.
const PINGED: u64 = 1 << 61;
/// The bits of `last_heard` that hold the time (milliseconds: 2^61 ms is 73 million years).
const TIME: u64 = PINGED - 1;

/// What the endpoint's sweep found for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Silence {
    /// Heard from recently enough, already pinged, or already marked.
    Nothing,
    /// Silent for the ping threshold: a ping is now due (the client's pong, or any frame, counts as life).
    PingDue,
    /// Silent for the idle timeout, but still reading (the caller's judgement): a new silence starts now.
    Reading,
    /// Silent for the idle timeout: marked silent, the connection closes.
    Silent,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds its limit: the connection is closed as a slow consumer.
    Full,
    /// The connection has ended; the frame has nobody to go to.
    Closed,
}

/// One connection's outgoing frames.
pub(crate) struct Outbound {
    /// A std mutex: it is held only to push or take frames (never across an `.await`), by the connection's task and
    /// by whichever channel or view task is producing, and it is uncontended almost always.
    state: Mutex<State>,
    /// Producers that wait for room ([`Outbound::push_waiting`]) park here; the connection wakes them after draining.
    /// A `Notify` costs nothing while nobody waits.
    space: Notify,
    limit: usize,
    /// When the client last sent a frame (milliseconds on its endpoint's clock, [`crate::connections`]), with the
    /// [`PING_DUE`] and [`PINGED`] bits, or [`SILENT`]. Atomic: the connection's task stores it on every frame, the
    /// endpoint's idle sweep reads it once a period and swaps in a ping request or `SILENT` only if no frame came
    /// meanwhile; neither waits for the other.
    last_heard: AtomicU64,
    /// Set by the connection when a write went through after the socket had been full: the client's TCP stack took
    /// more data, so the client reads (a peer whose host is gone acknowledges nothing; a frozen application stops the
    /// flow once its receive buffer is full, so its idle close comes at most that much data later). The sweep takes it
    /// as life, so a client too busy to answer our ping while it reads a burst is not closed as idle. Atomic: set by
    /// the connection's task, taken by the sweep.
    drained: AtomicBool,
}

struct State {
    frames: VecDeque<Bytes>,
    /// The connection's task, woken when a frame arrives or the queue overflows.
    waker: Option<Waker>,
    overflowed: bool,
    closed: bool,
    /// Set once by a shutdown or a kick; the connection closes with 1001.
    stop: Option<Stop>,
}

impl Outbound {
    /// A queue of at most `limit` frames (at least one).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        let state = State { frames: VecDeque::new(), waker: None, overflowed: false, closed: false, stop: None };
        let last_heard = AtomicU64::new(0);
        let drained = AtomicBool::new(false);
        Arc::new(Outbound { state: Mutex::new(state), space: Notify::new(), limit: limit.max(1), last_heard, drained })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A producer that panicked while holding the lock left the queue itself intact (push and pop cannot
        // half-happen), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `frame` without waiting. A full queue marks the connection as a slow consumer (it is closed with 1008).
    pub(crate) fn push(&self, frame: Bytes) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= self.limit {
            state.overflowed = true;
            wake(&mut state);
            return Err(Refused::Full);
        }
        state.frames.push_back(frame);
        wake(&mut state);
        Ok(())
    }

    /// Queues `frame`, waiting up to `patience` for room; only after that is the client a slow consumer.
    pub(crate) async fn push_waiting(&self, frame: Bytes, patience: Duration) -> Result<(), Refused> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut frame = Some(frame);
        loop {
            let room = self.space.notified();
            tokio::pin!(room);
            // Registered before checking, so a drain between the check and the wait is not missed.
            room.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return Err(Refused::Closed);
                }
                if state.frames.len() < self.limit {
                    state.frames.extend(frame.take());
                    wake(&mut state);
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                let mut state = self.lock();
                state.overflowed = true;
                wake(&mut state);
                return Err(Refused::Full);
            }
        }
    }

    /// Moves up to `max` queued frames into `batch`, or registers the caller to be woken when there are some. An
    /// overflow is reported by [`Outbound::poll_stop`], which the connection polls on every wake-up.
    pub(crate) fn poll_frames(&self, cx: &mut Context<'_>, batch: &mut Vec<Bytes>, max: usize) -> Poll<()> {
        let mut state = self.lock();
        if state.frames.is_empty() {
            if !state.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                state.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let take = state.frames.len().min(max);
        batch.extend(state.frames.drain(..take));
        if state.frames.is_empty() {
            // Released once drained: an idle connection keeps no slots.
            state.frames = VecDeque::new();
        }
        drop(state);
        self.space.notify_waiters();
        Poll::Ready(())
    }

    /// Takes every queued frame (to flush them before the close frame), unless the client overflowed its queue.
    pub(crate) fn take_all(&self) -> Vec<Bytes> {
        let mut state = self.lock();
        if state.overflowed {
            return Vec::new();
        }
        std::mem::take(&mut state.frames).into()
    }

    /// Tells the connection to close (the first reason wins), waking its task whatever it is waiting for.
    pub(crate) fn stop(&self, reason: Stop) {
        let mut state = self.lock();
        state.stop.get_or_insert(reason);
        wake(&mut state);
    }

    /// The reason to close once [`Outbound::stop`] was called or the queue overflowed, or registers the caller to be
    /// woken by either. Polled on every wake-up of the connection's task, so both reach it even while its socket takes
    /// no writes (then the writer does not come back for more frames, where [`Outbound::poll_frames`] would tell).
    pub(crate) fn poll_stop(&self, cx: &mut Context<'_>) -> Poll<Stop> {
        let mut state = self.lock();
        if let Some(stop) = state.stop {
            return Poll::Ready(stop);
        }
        if state.overflowed {
            return Poll::Ready(Stop::Overflowed);
        }
        if !state.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Ends the queue: later pushes are refused as [`Refused::Closed`] and waiting producers give up.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.frames = VecDeque::new();
        state.waker = None;
        drop(state);
        self.space.notify_waiters();
    }

    /// Records that the client sent a frame at `now_ms` (which also takes back an idle verdict not acted on yet).
    pub(crate) fn heard(&self, now_ms: u64) {
        self.last_heard.store(now_ms, Ordering::Relaxed);
    }

    /// Records that a write went through after the socket had been full: the client read, which the next sweep takes
    /// as life.
    pub(crate) fn drained(&self) {
        self.drained.store(true, Ordering::Relaxed);
    }

    /// When the silence being judged began (milliseconds on the endpoint's clock): the client's last frame, or the
    /// last sign that it read. `None` once it was marked silent.
    pub(crate) fn quiet_since(&self) -> Option<u64> {
        let heard = self.last_heard.load(Ordering::Relaxed);
        (heard != SILENT).then_some(heard & TIME)
    }

    /// Judges the client's silence at `now_ms`: silent since `ping_ms` or more and not pinged in this silence, a ping
    /// is requested; pinged, and silent since `timeout_ms` or more, it is marked silent (it closes) unless
    /// `reading(since)` says it is reading all the same (then a new silence starts, as for [`Outbound::drained`]).
    /// Both wake the connection. A client heard from between the reading and the verdict is left alone. `reading` is
    /// asked only of a client about to be closed, with the start of its silence ([`Outbound::quiet_since`]).
    pub(crate) fn judge_silence(
        &self,
        now_ms: u64,
        ping_ms: u64,
        timeout_ms: u64,
        reading: impl FnOnce(u64) -> bool,
    ) -> Silence {
        let heard = self.last_heard.load(Ordering::Relaxed);
        if heard == SILENT {
            return Silence::Nothing;
        }
        if self.drained.swap(false, Ordering::Relaxed) {
            // The client read since the last sweep: alive, as if it had sent a frame now (a ping owed is dropped).
            let _ = self.last_heard.compare_exchange(heard, now_ms & TIME, Ordering::Relaxed, Ordering::Relaxed);
            return Silence::Nothing;
        }
        let (silence, pinged) = (now_ms.saturating_sub(heard & TIME), heard & PINGED != 0);
        if silence >= timeout_ms && pinged && reading(heard & TIME) {
            // Alive, as for a drained socket. No wake-up: the new silence owes no ping yet.
            let spared = self.last_heard.compare_exchange(heard, now_ms & TIME, Ordering::Relaxed, Ordering::Relaxed);
            return if spared.is_ok() { Silence::Reading } else { Silence::Nothing };
        }
        let (verdict, next) = if silence >= timeout_ms && pinged {
            (Silence::Silent, SILENT)
        } else if silence >= timeout_ms {
            // A sweep held up (a busy runtime) finds a client past the timeout that it never pinged in this silence:
            // it is pinged now, and gets the time to answer that a sweep on time gives, as if its silence had begun
            // `ping_ms` ago. Never closed without a ping it had that time to answer.
            (Silence::PingDue, (now_ms.saturating_sub(ping_ms) & TIME) | PING_DUE | PINGED)
        } else if silence >= ping_ms && !pinged {
            (Silence::PingDue, heard | PING_DUE | PINGED)
        } else {
            return Silence::Nothing;
        };
        // Only if no frame came since the load: a client that just spoke is neither pinged nor closed.
        if self.last_heard.compare_exchange(heard, next, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return Silence::Nothing;
        }
        wake(&mut self.lock());
        verdict
    }

    /// Whether a ping is due, clearing the request: the connection then queues one. Polled on every wake-up of the
    /// connection's writer (one atomic load when none is due).
    pub(crate) fn take_ping_due(&self) -> bool {
        let heard = self.last_heard.load(Ordering::Relaxed);
        heard != SILENT
            && heard & PING_DUE != 0
            && self.last_heard.compare_exchange(heard, heard & !PING_DUE, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Whether the sweep found the client silent. Polled by the connection only once its socket has nothing to read,
    /// so a frame that already arrived is handled (and counts) before an idle close. Registers no waker: the
    /// connection polls [`Outbound::poll_stop`] first on every wake-up, which does, and `judge_silence` wakes that.
    pub(crate) fn is_silent(&self) -> bool {
        self.last_heard.load(Ordering::Relaxed) == SILENT
    }

    /// Frames queued right now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }
}

fn wake(state: &mut State) {
    if let Some(waker) = state.waker.take() {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    async fn next_batch(outbound: &Outbound) -> Vec<Bytes> {
        let mut batch = Vec::new();
        std::future::poll_fn(|cx| outbound.poll_frames(cx, &mut batch, 64)).await;
        batch
    }

    /// The stop the connection would see now, if any.
    fn stopped(outbound: &Outbound) -> Option<Stop> {
        match outbound.poll_stop(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(stop) => Some(stop),
            Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_in_batches() {
        let outbound = Outbound::new(4);
        for n in 0..3 {
            outbound.push(frame(n)).unwrap();
        }
        assert_eq!(next_batch(&outbound).await, vec![frame(0), frame(1), frame(2)]);
        assert_eq!(outbound.len(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_reports_the_slow_consumer() {
        let outbound = Outbound::new(2);
        outbound.push(frame(0)).unwrap();
        outbound.push(frame(1)).unwrap();
        assert_eq!(outbound.push(frame(2)), Err(Refused::Full));
        assert_eq!(outbound.len(), 2, "the refused frame is not queued");
        assert_eq!(stopped(&outbound), Some(Stop::Overflowed));
        assert!(outbound.take_all().is_empty(), "nothing is flushed to a client that does not read");
    }

    #[tokio::test]
    async fn the_connection_is_woken_by_a_push_from_another_task() {
        let outbound = Outbound::new(4);
        let producer = outbound.clone();
        let reader = tokio::spawn(async move { next_batch(&outbound).await });
        tokio::task::yield_now().await;
        producer.push(frame(7)).unwrap();
        assert_eq!(reader.await.unwrap(), vec![frame(7)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_push_gets_room_once_the_queue_drains() {
        let outbound = Outbound::new(1);
        outbound.push(frame(0)).unwrap();
        let producer = outbound.clone();
        let waiting = tokio::spawn(async move { producer.push_waiting(frame(1), Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a full queue makes the producer wait");
        assert_eq!(next_batch(&outbound).await, vec![frame(0)]);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(next_batch(&outbound).await, vec![frame(1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_push_gives_up_after_its_patience_and_marks_overflow() {
        let outbound = Outbound::new(1);
        outbound.push(frame(0)).unwrap();
        assert_eq!(outbound.push_waiting(frame(1), Duration::from_secs(5)).await, Err(Refused::Full));
        assert_eq!(stopped(&outbound), Some(Stop::Overflowed));
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_and_frees_its_frames() {
        let outbound = Outbound::new(4);
        outbound.push(frame(0)).unwrap();
        outbound.close();
        assert_eq!(outbound.len(), 0);
        assert_eq!(outbound.push(frame(1)), Err(Refused::Closed));
        assert_eq!(outbound.push_waiting(frame(2), Duration::from_secs(1)).await, Err(Refused::Closed));
    }

    #[test]
    fn a_drained_socket_counts_as_life_once() {
        let outbound = Outbound::new(4);
        assert_eq!(outbound.judge_silence(600, 500, 1000, |_| false), Silence::PingDue, "quiet since 0");
        outbound.drained();
        assert_eq!(outbound.judge_silence(1200, 500, 1000, |_| false), Silence::Nothing, "it read: alive at 1200");
        assert!(!outbound.take_ping_due(), "the ping owed is dropped");
        assert_eq!(outbound.judge_silence(1800, 500, 1000, |_| false), Silence::PingDue, "quiet since 1200");
        assert_eq!(
            outbound.judge_silence(2200, 500, 1000, |_| false),
            Silence::Silent,
            "and closed a timeout after it read"
        );
    }

    /// A sweep that comes late (a busy runtime) never closes a client it did not ping in this silence: it pings it,
    /// and judges it as long after as a sweep on time would.
    #[test]
    fn a_late_sweep_pings_before_it_closes() {
        let outbound = Outbound::new(4);
        outbound.heard(1_000);
        assert_eq!(outbound.judge_silence(12_000, 5_000, 9_000, |_| false), Silence::PingDue, "11 s, never pinged");
        assert_eq!(outbound.quiet_since(), Some(7_000), "counted as quiet since the ping threshold");
        assert_eq!(outbound.judge_silence(15_999, 5_000, 9_000, |_| false), Silence::Nothing, "4 s to answer");
        assert_eq!(outbound.judge_silence(16_000, 5_000, 9_000, |_| false), Silence::Silent);
    }

    #[tokio::test]
    async fn a_stop_wakes_the_connection_and_stays() {
        let outbound = Outbound::new(4);
        let stopper = outbound.clone();
        let waiting = tokio::spawn(async move { std::future::poll_fn(|cx| outbound.poll_stop(cx)).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no stop yet");
        stopper.stop(Stop::Kicked("signed out"));
        stopper.stop(Stop::Shutdown);
        assert_eq!(waiting.await.unwrap(), Stop::Kicked("signed out"), "woken, with the first reason");
    }

    #[tokio::test]
    async fn an_overflow_stops_the_connection_without_waiting_for_the_writer() {
        let outbound = Outbound::new(1);
        let waiting = {
            let outbound = outbound.clone();
            tokio::spawn(async move { std::future::poll_fn(|cx| outbound.poll_stop(cx)).await })
        };
        tokio::task::yield_now().await;
        outbound.push(frame(0)).unwrap();
        assert_eq!(outbound.push(frame(1)), Err(Refused::Full));
        assert_eq!(waiting.await.unwrap(), Stop::Overflowed);
    }

    #[tokio::test]
    async fn a_burst_does_not_stay_allocated() {
        let outbound = Outbound::new(256);
        for n in 0..100 {
            outbound.push(frame(n)).unwrap();
        }
        let batch = next_batch(&outbound).await;
        assert_eq!(batch.len(), 64);
        let batch = next_batch(&outbound).await;
        assert_eq!(batch.len(), 36);
        assert_eq!(outbound.lock().frames.capacity(), 0, "the drained queue releases its slots");
    }
}
