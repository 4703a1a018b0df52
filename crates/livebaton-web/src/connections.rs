//! The open connections of one endpoint, so that a shutdown or a kick reaches each connection through its own
//! outbound queue ([`Outbound::stop`]).
//!
//! Before, every connection's task waited on a shared `watch` (shutdown) and a shared `broadcast` (kicks). Each of
//! their wait futures is part of the task for as long as the connection lives (224 bytes of every idle connection),
//! and each wake-up of any connection registered anew in, and left, two wait lists that every connection of the
//! server shares. Shutdowns and kicks are rare; a registry walked when one happens costs nothing in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::outbound::{Outbound, Stop};

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
    /// The connection's user id (for kicks) and queue.
    open: HashMap<u64, (Arc<str>, Arc<Outbound>)>,
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
    pub(crate) fn register(self: &Arc<Self>, user_id: Arc<str>, outbound: Arc<Outbound>) -> Registration {
        let mut state = self.lock();
        if state.stopping {
            outbound.stop(Stop::Shutdown);
        }
        let number = state.next;
        state.next += 1;
        state.open.insert(number, (user_id, outbound));
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
            if **user == *user_id {
                outbound.stop(Stop::Kicked);
            }
        }
    }

    /// Connections open right now.
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

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
            connections.register("alice".into(), alice.clone()),
            connections.register("alice".into(), alice_too.clone()),
            connections.register("bob".into(), bob.clone()),
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
        let registration = connections.register("alice".into(), open.clone());
        assert_eq!(connections.len(), 1);
        connections.stop_all();
        assert_eq!(stopped(&open), Some(Stop::Shutdown));
        let late = Outbound::new(4);
        let late_registration = connections.register("bob".into(), late.clone());
        assert_eq!(stopped(&late), Some(Stop::Shutdown), "a connection opening during the shutdown stops at once");
        drop((registration, late_registration));
        assert_eq!(connections.len(), 0);
    }
}
