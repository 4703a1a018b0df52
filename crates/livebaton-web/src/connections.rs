//! The open connections of one endpoint, so that a shutdown or a kick reaches each connection through its own
//! outbound queue ([`Outbound::stop`]).
//!
//! Before, every connection's task waited on a shared `watch` (shutdown) and a shared `broadcast` (kicks). Each of
//! their wait futures is part of the task for as long as the connection lives (224 bytes of every idle connection),
//! and each wake-up of any connection registered anew in, and left, two wait lists that every connection of the
//! server shares. Shutdowns and kicks are rare; a registry walked when one happens costs nothing in between.
//!
//! The idle timeout works the same way: instead of a timer in every connection's task (tokio's `Sleep` is 112 bytes,
//! held by every idle connection), each connection records when its client last sent a frame, on its endpoint's clock
//! ([`Registration::now_ms`]), and one task per endpoint walks the registry every quarter of the timeout
//! ([`start_idle_sweep`]). A client silent for half the timeout is sent a WebSocket ping: browsers and WebSocket
//! libraries answer it without application code, and the pong counts as life, so a client that heartbeats rarely
//! (phoenix.js: every 30 s) is never closed while its connection works, and a busy one is never pinged. A client silent
//! for the whole timeout (it did not answer the ping either) is marked silent, and its connection closes.
//!
//! Unless it is reading: a pong waits behind every byte sent before it, and a client reading a big backlog slowly (one
//! process serving thousands of sockets, in a reconnect storm) answers late. Two signs count as life. A write that
//! goes through after the socket was full ([`Outbound::drained`]); and, for a client about to be closed, its receive
//! window reaching further than at the ping, which only its application's reads move on ([`judge_acks`]), read from
//! the kernel (`TCP_INFO`, [`TcpSocket`]) once at the ping and once at the verdict, never per frame.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::channel::UserInfo;
use crate::outbound::{Outbound, Silence, Stop};
use crate::websocket::tcp::{Delivery, TcpSocket};

/// Every open connection, by number.
pub(crate) struct Connections {
    /// A std mutex, held only to add, remove or walk entries (never across an `.await`): once per connection at open
    /// and close, once per shutdown or kick, and once per idle sweep.
    state: Mutex<State>,
    /// Zero of the clock on which connections record when they last heard from their client: tokio's, so paused
    /// time in tests moves it, and this endpoint's own, so every reading is on the same runtime's clock.
    epoch: tokio::time::Instant,
}

impl Default for Connections {
    fn default() -> Self {
        Connections { state: Mutex::default(), epoch: tokio::time::Instant::now() }
    }
}

#[derive(Default)]
struct State {
    next: u64,
    /// Every open connection, by number.
    open: HashMap<u64, Open>,
    /// Open connections per client address (only addresses with at least one).
    per_address: HashMap<IpAddr, usize>,
    /// Set by [`Connections::stop_all`]: a connection that opens afterwards is stopped at once.
    stopping: bool,
}

/// One open connection as the registry knows it.
struct Open {
    /// Its user, for kicks: the connection's own, shared, not a copy of its id.
    user: Arc<UserInfo>,
    /// Its queue, through which it is stopped and pinged.
    outbound: Arc<Outbound>,
    /// Its client's address, if the application named it (counted per address).
    address: Option<IpAddr>,
    /// The TCP socket under it, once the upgrade found one ([`Registration::watch`]), until it closes.
    tcp: Option<TcpSocket>,
    /// Its TCP counts when the sweep last pinged it.
    acked_at_ping: Option<AckMark>,
}

/// A client's TCP counts when the sweep pinged it, in the silence that began at `since` (on the endpoint's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AckMark {
    pub(crate) since: u64,
    pub(crate) acked: u64,
    pub(crate) window_end: Option<u64>,
}

impl AckMark {
    fn new(since: u64, delivery: Delivery) -> Self {
        AckMark { since, acked: delivery.acked, window_end: delivery.window_end }
    }
}

/// What the kernel's counts say of a client about to be closed as silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acks {
    /// Its application read since the ping: it is spared.
    Reading,
    /// It read nothing since the ping, and bytes wait for it (its window is full, or its host is gone).
    Stalled,
    /// It read nothing since the ping, and nothing waits for it: its host holds everything we sent, the ping included.
    Delivered,
    /// No socket to ask (another platform, a server that hides it, a pipe), or no reading at this silence's ping.
    Unknown,
}

/// Judges a client about to be closed as silent (quiet since `since`) by its TCP counts: `at_ping` when it was pinged,
/// `now` at the verdict. Only [`Acks::Reading`] spares it: its pong is queued behind what it is reading.
///
/// The sign of reading is the right edge of its receive window moving on since the ping while bytes still wait for it:
/// a receiver's host moves it only as its application frees room by reading (Linux never shrinks a window, and lets
/// it grow by itself only early in a connection, by at most its receive buffer, as data arrives). A client that holds
/// everything we sent is never spared: nothing stands between it and the ping. Without the edge (a kernel before 5.4), acknowledgements while
/// bytes wait for it: once its window is full, its host takes more only as the application reads; while the window
/// has room, a frozen application's host still takes data, until its receive buffer is full. So a client that reads
/// nothing is closed at the first verdict after that, at most a receive buffer's worth of data and one idle timeout
/// after it stopped reading; and each silence spared starts a new one, with a new ping, so reading must show anew.
pub(crate) fn judge_acks(at_ping: Option<AckMark>, since: u64, now: Option<Delivery>) -> Acks {
    let Some(now) = now else { return Acks::Unknown };
    let Some(mark) = at_ping.filter(|mark| mark.since == since) else { return Acks::Unknown };
    let read = match (mark.window_end, now.window_end) {
        (Some(then), Some(edge)) => edge > then,
        _ => now.outstanding && now.acked > mark.acked,
    };
    // Only while bytes wait for it: a client whose host holds everything we sent, the ping included, has its pong to
    // answer and nothing ahead of it; a moving edge there may be its host growing a young connection's window on its
    // own (a frozen peer was spared again and again so, and left after 15 s, not 10).
    match (read, now.outstanding) {
        (true, true) => Acks::Reading,
        (false, true) => Acks::Stalled,
        (_, false) => Acks::Delivered,
    }
}

/// Keeps a connection registered while it lives; dropping it removes the connection.
pub(crate) struct Registration {
    number: u64,
    connections: Arc<Connections>,
}

impl Registration {
    /// Now, in milliseconds on the endpoint's clock: when the connection heard from its client.
    pub(crate) fn now_ms(&self) -> u64 {
        self.connections.now_ms()
    }

    /// Tells the idle sweep which TCP socket the connection runs on (`None`: forget it, before the socket closes).
    pub(crate) fn watch(&self, tcp: Option<TcpSocket>) {
        if let Some(open) = self.connections.lock().open.get_mut(&self.number) {
            open.tcp = tcp;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.connections.lock();
        if let Some(Open { address: Some(address), .. }) = state.open.remove(&self.number) {
            if let Some(count) = state.per_address.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    state.per_address.remove(&address);
                }
            }
        }
    }
}

/// Why a connection was not registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The endpoint serves its limit of connections.
    Endpoint,
    /// The client's address holds its limit of connections.
    Address,
}

/// How many connections an endpoint serves at most: in all, and per client address (0: no limit).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) total: usize,
    pub(crate) per_address: usize,
}

impl Connections {
    fn now_ms(&self) -> u64 {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing is left half-done under this lock (map inserts and removes), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an opening connection of `user` from `address` (if known), whose task reads `outbound`, unless the
    /// endpoint or the address already holds its limit.
    pub(crate) fn register(
        self: &Arc<Self>,
        user: Arc<UserInfo>,
        outbound: Arc<Outbound>,
        address: Option<IpAddr>,
        limits: Limits,
    ) -> Result<Registration, Full> {
        let mut state = self.lock();
        if state.open.len() >= limits.total {
            return Err(Full::Endpoint);
        }
        if let Some(address) = address {
            let count = state.per_address.entry(address).or_default();
            if limits.per_address > 0 && *count >= limits.per_address {
                return Err(Full::Address);
            }
            *count += 1;
        }
        if state.stopping {
            outbound.stop(Stop::Shutdown);
        }
        outbound.heard(self.now_ms());
        let number = state.next;
        state.next += 1;
        state.open.insert(number, Open { user, outbound, address, tcp: None, acked_at_ping: None });
        Ok(Registration { number, connections: self.clone() })
    }

    /// Stops every connection, and every one that opens from now on.
    pub(crate) fn stop_all(&self) {
        let mut state = self.lock();
        state.stopping = true;
        for open in state.open.values() {
            open.outbound.stop(Stop::Shutdown);
        }
    }

    /// Stops every connection of user `user_id`, closing with `reason`.
    pub(crate) fn kick(&self, user_id: &str, reason: &'static str) {
        self.kick_where(user_id, reason, &|_| true);
    }

    /// Stops the connections of user `user_id` that `which` picks (by what the application attached to the user, see
    /// `UserInfo::with_data`), closing with `reason`.
    pub(crate) fn kick_where(&self, user_id: &str, reason: &'static str, which: &dyn Fn(&UserInfo) -> bool) {
        for open in self.lock().open.values() {
            if open.user.id() == user_id && which(&open.user) {
                open.outbound.stop(Stop::Kicked(reason));
            }
        }
    }

    /// Pings every connection whose client sent nothing for `ping_after`, and marks every one silent for `timeout` (it
    /// closes with 1001) unless it is still reading ([`judge_acks`]). Returns how many of each.
    ///
    /// Under the registry's lock, a `TCP_INFO` reading for each connection pinged or about to be closed (a system call
    /// of about a microsecond), none for the others.
    pub(crate) fn sweep(&self, ping_after: Duration, timeout: Duration) -> SweepCount {
        let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let (now, ping_ms, timeout_ms) = (self.now_ms(), millis(ping_after), millis(timeout));
        let mut count = SweepCount::default();
        for open in self.lock().open.values_mut() {
            let Open { outbound, tcp, acked_at_ping, .. } = open;
            let mut acks = Acks::Unknown;
            let reading = |since| {
                acks = judge_acks(*acked_at_ping, since, tcp.and_then(TcpSocket::delivery));
                acks == Acks::Reading
            };
            match outbound.judge_silence(now, ping_ms, timeout_ms, reading) {
                Silence::Nothing => {}
                Silence::PingDue => {
                    count.pinged += 1;
                    let delivery = tcp.and_then(TcpSocket::delivery);
                    *acked_at_ping =
                        outbound.quiet_since().zip(delivery).map(|(since, delivery)| AckMark::new(since, delivery));
                }
                Silence::Reading => count.reading += 1,
                Silence::Silent => match acks {
                    Acks::Stalled => count.silent_stalled += 1,
                    Acks::Delivered => count.silent_delivered += 1,
                    Acks::Reading | Acks::Unknown => count.silent_unknown += 1,
                },
            }
        }
        count
    }

    /// Connections open right now.
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SweepCount {
    /// Connections sent a ping.
    pub(crate) pinged: usize,
    /// Connections silent for the timeout but spared: still reading ([`Acks::Reading`]).
    pub(crate) reading: usize,
    /// Connections marked silent (they close), by what their acknowledgements said: [`Acks::Stalled`],
    /// [`Acks::Delivered`], [`Acks::Unknown`].
    pub(crate) silent_stalled: usize,
    pub(crate) silent_delivered: usize,
    pub(crate) silent_unknown: usize,
}

/// How often the idle sweep runs for `timeout`: every quarter of it, but at least once a second and at most every
/// 10 ms.
pub(crate) fn idle_sweep_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The silence after which the sweep pings a client: half the timeout, so its pong has the other half to arrive.
pub(crate) fn ping_after(timeout: Duration) -> Duration {
    timeout / 2
}

/// The silence after which the sweep marks a client silent: one sweep period short of the timeout, so that a client
/// silent for `timeout` has been closed by then (10 s: between 9 and 10 s after its last frame).
pub(crate) fn silent_after(timeout: Duration) -> Duration {
    timeout.saturating_sub(idle_sweep_period(timeout)).max(ping_after(timeout))
}

/// Starts the task that pings `connections` whose clients went quiet and closes those that sent nothing, not even a
/// pong, for `timeout`. It ends once the endpoint, its shutdown handle and every registration are gone (it holds only
/// a `Weak`). Walking the registry costs about a microsecond per 100 connections (one atomic
/// load each) under the registry's lock, which opens and closes also take: at 10,000 connections, 0.1 ms a second.
pub(crate) fn start_idle_sweep(connections: &Arc<Connections>, timeout: Duration) -> tokio::task::JoinHandle<()> {
    let connections: Weak<Connections> = Arc::downgrade(connections);
    let mut every = tokio::time::interval(idle_sweep_period(timeout));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            every.tick().await;
            let Some(connections) = connections.upgrade() else { return };
            let count = connections.sweep(ping_after(timeout), silent_after(timeout));
            if count.pinged > 0 {
                metrics::counter!("livebaton_pings_total").increment(count.pinged as u64);
            }
            if count.reading > 0 {
                metrics::counter!("livebaton_idle_spared_total").increment(count.reading as u64);
            }
            for (acks, closed) in [
                ("stalled", count.silent_stalled),
                ("delivered", count.silent_delivered),
                ("unknown", count.silent_unknown),
            ] {
                if closed > 0 {
                    metrics::counter!("livebaton_idle_closes_total", "acks" => acks).increment(closed as u64);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

    fn user(id: &str) -> Arc<UserInfo> {
        Arc::new(UserInfo::new(id, id, "", "editor"))
    }

    const UNLIMITED: Limits = Limits { total: usize::MAX, per_address: 0 };

    fn register(connections: &Arc<Connections>, id: &str, outbound: &Arc<Outbound>) -> Registration {
        connections.register(user(id), outbound.clone(), None, UNLIMITED).expect("no limit")
    }

    /// Connections beyond the endpoint's limit, or beyond an address's, are refused; a closed one makes room.
    #[test]
    fn limits_count_open_connections_in_all_and_per_address() {
        let connections = Arc::new(Connections::default());
        let limits = Limits { total: 3, per_address: 2 };
        let (home, office): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let open = |address| connections.register(user("a"), Outbound::new(4), address, limits);
        let first = open(Some(home)).unwrap();
        let second = open(Some(home)).unwrap();
        assert_eq!(open(Some(home)).err(), Some(Full::Address), "a third from one address");
        let third = open(Some(office)).unwrap();
        assert_eq!(open(None).err(), Some(Full::Endpoint), "a fourth in all");
        drop(first);
        assert_eq!(open(Some(office)).map(|_| ()), Ok(()), "a closed connection makes room");
        assert!(open(Some(home)).is_ok());
        drop((second, third));
        assert!(connections.lock().per_address.is_empty(), "no count kept for addresses with no connection");
    }

    fn stopped(outbound: &Outbound) -> Option<Stop> {
        let waker = std::task::Waker::noop();
        match outbound.poll_stop(&mut std::task::Context::from_waker(waker)) {
            Poll::Ready(stop) => Some(stop),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_kick_stops_only_that_users_connections() {
        let connections = Arc::new(Connections::default());
        let (alice, alice_too, bob) = (Outbound::new(4), Outbound::new(4), Outbound::new(4));
        let _registrations = [
            register(&connections, "alice", &alice),
            register(&connections, "alice", &alice_too),
            register(&connections, "bob", &bob),
        ];
        connections.kick("alice", "signed out");
        assert_eq!(
            (stopped(&alice), stopped(&alice_too), stopped(&bob)),
            (Some(Stop::Kicked("signed out")), Some(Stop::Kicked("signed out")), None)
        );
    }

    #[test]
    fn a_shutdown_stops_open_and_later_connections_and_registrations_end_with_them() {
        let connections = Arc::new(Connections::default());
        let open = Outbound::new(4);
        let registration = register(&connections, "alice", &open);
        assert_eq!(connections.len(), 1);
        connections.stop_all();
        assert_eq!(stopped(&open), Some(Stop::Shutdown));
        let late = Outbound::new(4);
        let late_registration = register(&connections, "bob", &late);
        assert_eq!(stopped(&late), Some(Stop::Shutdown), "a connection opening during the shutdown stops at once");
        drop((registration, late_registration));
        assert_eq!(connections.len(), 0);
    }

    /// The sweep pings a client silent for half the timeout (once per silence), closes one silent for the timeout, leaves
    /// alone one that keeps talking, and ends with the registry.
    #[tokio::test(start_paused = true)]
    async fn the_idle_sweep_pings_quiet_connections_and_marks_silent_ones() {
        let timeout = Duration::from_secs(10);
        let connections = Arc::new(Connections::default());
        let (silent, talking) = (Outbound::new(4), Outbound::new(4));
        let registrations = [register(&connections, "a", &silent), register(&connections, "b", &talking)];
        let sweep = start_idle_sweep(&connections, timeout);
        let mut pings = 0;
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            talking.heard(registrations[1].now_ms());
            pings += usize::from(silent.take_ping_due());
            assert!(!talking.take_ping_due(), "a client heard from within half the timeout is not pinged");
        }
        assert_eq!(pings, 1, "one ping per silence, once it lasted half the timeout");
        assert_eq!((silent.is_silent(), talking.is_silent()), (false, false), "nobody is silent for 9 s yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(silent.is_silent(), "closed within the timeout");
        assert!(!talking.is_silent(), "heard from two seconds ago");
        // A frame after the verdict takes it back (the connection handles what it read before closing as idle).
        silent.heard(registrations[0].now_ms());
        assert!(!silent.is_silent());
        // Shutdowns and kicks are not hidden by an idle verdict.
        assert_eq!(stopped(&talking), None);
        drop((registrations, connections));
        tokio::time::sleep(idle_sweep_period(timeout)).await;
        assert!(sweep.is_finished(), "the sweep ends with its registry");
    }

    /// A pong (any frame) after the ping starts a new silence: a client that answers every ping is never closed.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_answers_pings_stays_open() {
        let timeout = Duration::from_secs(10);
        let connections = Arc::new(Connections::default());
        let outbound = Outbound::new(4);
        let registration = register(&connections, "a", &outbound);
        let _sweep = start_idle_sweep(&connections, timeout);
        let mut pings = 0;
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if outbound.take_ping_due() {
                pings += 1;
                outbound.heard(registration.now_ms());
            }
            assert!(!outbound.is_silent(), "a client answering pings is never marked silent");
        }
        assert!((9..=12).contains(&pings), "pinged every 5-6 s of silence, {pings} times in a minute");
    }

    #[test]
    fn the_sweeps_thresholds_keep_the_close_within_the_timeout() {
        assert_eq!(idle_sweep_period(Duration::from_millis(300)), Duration::from_millis(75));
        assert_eq!(idle_sweep_period(Duration::from_secs(1800)), Duration::from_secs(1));
        assert_eq!(ping_after(Duration::from_secs(10)), Duration::from_secs(5));
        assert_eq!(silent_after(Duration::from_secs(10)), Duration::from_secs(9));
        assert_eq!(silent_after(Duration::from_millis(300)), Duration::from_millis(225));
        assert_eq!(silent_after(Duration::from_millis(20)), Duration::from_millis(10), "never before the ping");
    }

    /// A verdict is not given to a client heard from between the sweep's reading and its verdict.
    #[test]
    fn a_client_heard_from_is_neither_pinged_nor_marked_silent() {
        let outbound = Outbound::new(4);
        outbound.heard(1_000);
        assert_eq!(outbound.judge_silence(5_999, 5_000, 10_000, |_| false), Silence::Nothing, "quiet for 4.999 s");
        assert_eq!(outbound.judge_silence(6_000, 5_000, 10_000, |_| false), Silence::PingDue, "quiet for 5 s");
        assert_eq!(
            outbound.judge_silence(7_000, 5_000, 10_000, |_| false),
            Silence::Nothing,
            "pinged once per silence"
        );
        assert!(outbound.take_ping_due());
        assert!(!outbound.take_ping_due(), "taken once");
        assert_eq!(outbound.judge_silence(10_999, 5_000, 10_000, |_| false), Silence::Nothing, "silent for 9.999 s");
        assert_eq!(outbound.judge_silence(11_000, 5_000, 10_000, |_| false), Silence::Silent, "silent for 10 s");
        assert!(outbound.is_silent());
        assert_eq!(outbound.judge_silence(12_000, 5_000, 10_000, |_| false), Silence::Nothing, "marked once");
        assert!(!outbound.take_ping_due(), "no ping for a client marked silent");
        outbound.heard(12_000);
        assert!(!outbound.is_silent());
        assert_eq!(outbound.judge_silence(12_000, 5_000, 10_000, |_| false), Silence::Nothing);
        assert_eq!(
            outbound.judge_silence(17_000, 5_000, 10_000, |_| false),
            Silence::PingDue,
            "a new silence, a new ping"
        );
    }

    /// A client about to be closed counts as reading when its receive window reaches further than at the ping of this
    /// silence; on a kernel that does not tell the window, when its host acknowledged more while bytes wait for it.
    /// Without a socket to ask, or a reading at the ping, silence alone decides.
    #[test]
    fn a_client_reads_when_its_window_moves_on_since_the_ping() {
        let delivery = |acked, outstanding, window_end| Some(Delivery { acked, outstanding, window_end });
        let at_ping = Some(AckMark { since: 1_000, acked: 50_000, window_end: Some(60_000) });
        let judge = |now| judge_acks(at_ping, 1_000, now);
        assert_eq!(judge(delivery(70_000, true, Some(80_000))), Acks::Reading, "it freed room: more was sent");
        assert_eq!(
            judge(delivery(50_000, false, Some(64_000))),
            Acks::Delivered,
            "its edge moved, but nothing waits ahead of the ping: a young connection's window grows by itself"
        );
        assert_eq!(judge(delivery(60_000, true, Some(60_000))), Acks::Stalled, "its host took the rest of the window");
        assert_eq!(judge(delivery(50_000, true, Some(60_000))), Acks::Stalled, "nothing more taken");
        assert_eq!(judge(delivery(55_000, false, Some(60_000))), Acks::Delivered, "it holds all we sent, unread");
        assert_eq!(judge_acks(at_ping, 2_000, delivery(70_000, true, Some(80_000))), Acks::Unknown, "another silence");
        assert_eq!(
            judge_acks(None, 1_000, delivery(70_000, true, Some(80_000))),
            Acks::Unknown,
            "not asked at the ping"
        );
        assert_eq!(judge(None), Acks::Unknown, "no socket to ask (another platform, a pipe)");
        // A kernel before 5.4: no window; acknowledgements while bytes wait.
        let at_ping = Some(AckMark { since: 1_000, acked: 50_000, window_end: None });
        let judge = |now| judge_acks(at_ping, 1_000, now);
        assert_eq!(judge(delivery(70_000, true, None)), Acks::Reading, "acknowledged more, more to go");
        assert_eq!(judge(delivery(50_000, true, None)), Acks::Stalled, "nothing acknowledged since the ping");
        assert_eq!(judge(delivery(70_000, false, None)), Acks::Delivered, "all delivered: the pong is up to it");
    }

    /// A client spared as reading starts a new silence: a new ping, and the next verdict a timeout later; the reading is
    /// asked for only at the verdict, with the start of the silence.
    #[test]
    fn a_client_spared_as_reading_starts_a_new_silence() {
        let outbound = Outbound::new(4);
        outbound.heard(1_000);
        let asked = std::cell::Cell::new(None);
        let reading = |since| {
            asked.set(Some(since));
            true
        };
        assert_eq!(outbound.judge_silence(6_000, 5_000, 10_000, reading), Silence::PingDue);
        assert_eq!(asked.get(), None, "not asked before the verdict");
        assert!(outbound.take_ping_due());
        assert_eq!(outbound.judge_silence(11_000, 5_000, 10_000, reading), Silence::Reading);
        assert_eq!(asked.get(), Some(1_000), "asked with the start of the silence");
        assert_eq!(outbound.quiet_since(), Some(11_000));
        assert!(!outbound.is_silent());
        assert_eq!(outbound.judge_silence(16_000, 5_000, 10_000, |_| false), Silence::PingDue, "pinged anew");
        assert_eq!(
            outbound.judge_silence(21_000, 5_000, 10_000, |_| false),
            Silence::Silent,
            "and closed if not reading"
        );
        assert_eq!(outbound.quiet_since(), None);
    }
}
