//! The open connections of one endpoint, so that a shutdown or a kick reaches each connection through its own
//! outbound queue ([`Outbound::stop`]).
//!
//! Before, every connection's task waited on a shared `watch` (shutdown) and a shared `broadcast` (kicks). Each of
//! their wait futures is part of the task for as long as the connection lives (224 bytes of every idle connection),
//! and each wake-up of any connection registered anew in, and left, two wait lists that every connection of the
//! server shares. Shutdowns and kicks are rare; a registry walked when one happens costs nothing in between.
//!
//! The idle timeout works the same way: instead of a timer in every connection's task (tokio's `Sleep` is 112 bytes,
//! held by every idle connection), each connection records when its client last sent a frame, and one task per
//! endpoint walks the registry a few times per timeout ([`start_idle_sweep`]) and stops the silent ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::channel::UserInfo;
use crate::outbound::{Outbound, Stop, clock_ms};

/// Every open connection, by number.
#[derive(Default)]
pub(crate) struct Connections {
    /// A std mutex, held only to add, remove or walk entries (never across an `.await`): once per connection at open
    /// and close, and once per shutdown or kick.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// The connection's user (for kicks; the connection's own, shared, not a copy of its id) and queue.
    open: HashMap<u64, (Arc<UserInfo>, Arc<Outbound>)>,
    /// Set by [`Connections::stop_all`]: a connection that opens afterwards is stopped at once.
    stopping: bool,
}

/// Keeps a connection registered while it lives; dropping it removes the connection.
pub(crate) struct Registration {
    number: u64,
    connections: Arc<Connections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.number);
    }
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing is left half-done under this lock (map inserts and removes), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an opening connection of user `user_id`, whose task reads `outbound`.
    pub(crate) fn register(self: &Arc<Self>, user: Arc<UserInfo>, outbound: Arc<Outbound>) -> Registration {
        let mut state = self.lock();
        if state.stopping {
            outbound.stop(Stop::Shutdown);
        }
        let number = state.next;
        state.next += 1;
        state.open.insert(number, (user, outbound));
        Registration { number, connections: self.clone() }
    }

    /// Stops every connection, and every one that opens from now on.
    pub(crate) fn stop_all(&self) {
        let mut state = self.lock();
        state.stopping = true;
        for (_, outbound) in state.open.values() {
            outbound.stop(Stop::Shutdown);
        }
    }

    /// Stops every connection of user `user_id`.
    pub(crate) fn kick(&self, user_id: &str) {
        for (user, outbound) in self.lock().open.values() {
            if user.id() == user_id {
                outbound.stop(Stop::Kicked);
            }
        }
    }

    /// Stops every connection whose client sent nothing for `timeout`; how many.
    pub(crate) fn stop_idle(&self, timeout: Duration) -> usize {
        let (now, timeout) = (clock_ms(), timeout.as_millis() as u64);
        let mut stopped = 0;
        for (_, outbound) in self.lock().open.values() {
            if outbound.silent_for_ms(now) >= timeout {
                outbound.stop(Stop::Idle);
                stopped += 1;
            }
        }
        stopped
    }

    /// Connections open right now.
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

/// How often the idle sweep runs for `timeout`: four times per timeout, at most once every 10 ms and at least once a
/// second. A silent client is closed between `timeout` and `timeout` plus one period (10 s: within 11 s).
pub(crate) fn idle_sweep_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Starts the task that closes `connections` whose clients sent nothing for `timeout`. It ends once the endpoint and
/// its shutdown handle are gone. Walking the registry costs about a microsecond per 100 connections (one atomic
/// load each) under the registry's lock, which opens and closes also take: at 10,000 connections, 0.1 ms a second.
pub(crate) fn start_idle_sweep(connections: &Arc<Connections>, timeout: Duration) {
    let connections: Weak<Connections> = Arc::downgrade(connections);
    let mut every = tokio::time::interval(idle_sweep_period(timeout));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            every.tick().await;
            let Some(connections) = connections.upgrade() else { return };
            connections.stop_idle(timeout);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

    fn user(id: &str) -> Arc<UserInfo> {
        Arc::new(UserInfo::new(id, id, "", "editor"))
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
            connections.register(user("alice"), alice.clone()),
            connections.register(user("alice"), alice_too.clone()),
            connections.register(user("bob"), bob.clone()),
        ];
        connections.kick("alice");
        assert_eq!(
            (stopped(&alice), stopped(&alice_too), stopped(&bob)),
            (Some(Stop::Kicked), Some(Stop::Kicked), None)
        );
    }

    #[test]
    fn a_shutdown_stops_open_and_later_connections_and_registrations_end_with_them() {
        let connections = Arc::new(Connections::default());
        let open = Outbound::new(4);
        let registration = connections.register(user("alice"), open.clone());
        assert_eq!(connections.len(), 1);
        connections.stop_all();
        assert_eq!(stopped(&open), Some(Stop::Shutdown));
        let late = Outbound::new(4);
        let late_registration = connections.register(user("bob"), late.clone());
        assert_eq!(stopped(&late), Some(Stop::Shutdown), "a connection opening during the shutdown stops at once");
        drop((registration, late_registration));
        assert_eq!(connections.len(), 0);
    }

    /// The sweep stops exactly the connections whose clients were silent for the timeout, and ends with the registry.
    #[tokio::test(start_paused = true)]
    async fn the_idle_sweep_stops_only_silent_connections() {
        let timeout = Duration::from_secs(10);
        let connections = Arc::new(Connections::default());
        let (silent, talking) = (Outbound::new(4), Outbound::new(4));
        let _registrations =
            [connections.register(user("a"), silent.clone()), connections.register(user("b"), talking.clone())];
        start_idle_sweep(&connections, timeout);
        for _ in 0..9 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            talking.heard();
        }
        assert_eq!((stopped(&silent), stopped(&talking)), (None, None), "nobody is silent for 10 s yet");
        tokio::time::sleep(Duration::from_secs(1) + idle_sweep_period(timeout)).await;
        assert_eq!(stopped(&silent), Some(Stop::Idle), "silent for a timeout and one sweep period");
        assert_eq!(stopped(&talking), None, "heard from a second ago");
        assert_eq!(idle_sweep_period(Duration::from_millis(300)), Duration::from_millis(75));
        assert_eq!(idle_sweep_period(Duration::from_secs(1800)), Duration::from_secs(1));
    }
}
