//! The clients of `churn` that join the room first and stay to the end, each keeping the room's presence list, and
//! what they share with the scenario.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::client::Conn;
use crate::presence::PresenceView;
use crate::protocol::{Incoming, Protocol};
use crate::scenarios::now_us;

/// What the staying clients share with the scenario.
pub struct Room {
    pub joined: AtomicUsize,
    pub failed: AtomicUsize,
    /// Closed by the server (or broken) after joining.
    pub closed: AtomicUsize,
    /// When any staying client last received a frame ([`now_us`]).
    pub last_frame_us: AtomicU64,
    reasons: Mutex<BTreeMap<String, usize>>,
    /// Each staying client's list: `(key, entries)`, keys sorted. A std `Mutex`: written after each frame by its
    /// client, read by the checks, never held across an `.await`.
    lists: Vec<Mutex<Vec<(String, usize)>>>,
}

impl Room {
    pub fn new(stay: usize) -> Room {
        Room {
            joined: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            last_frame_us: AtomicU64::new(now_us()),
            reasons: Mutex::new(BTreeMap::new()),
            lists: (0..stay).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    pub fn count(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    fn reason(&self, counter: &AtomicUsize, reason: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        *self.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(reason).or_default() += 1;
    }

    pub fn reasons(&self) -> BTreeMap<String, usize> {
        self.reasons.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn list(&self, index: usize) -> Vec<(String, usize)> {
        self.lists[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Staying clients whose list is not exactly `stay` entries under `stay_key`.
    pub fn wrong_lists(&self, stay_key: &str, stay: usize) -> usize {
        let expected = [(stay_key.to_owned(), stay)];
        (0..self.lists.len()).filter(|index| self.list(*index) != expected).count()
    }

    pub fn progress(&self) -> String {
        format!(
            "{} joined, {} failed, {} closed",
            self.count(&self.joined),
            self.count(&self.failed),
            self.count(&self.closed)
        )
    }
}

/// A client that joins the room and stays, keeping its list.
pub struct Stayer {
    pub index: usize,
    pub protocol: Arc<dyn Protocol>,
    pub addr: String,
    pub token: String,
    pub topic: String,
    pub room: Arc<Room>,
}

impl Stayer {
    pub async fn run(self, permits: Arc<Semaphore>, mut stop: watch::Receiver<bool>) {
        let room = &self.room;
        let permit = permits.acquire_owned().await;
        let mut conn = match Conn::connect(self.protocol.clone(), &self.addr, &self.token).await {
            Ok(conn) => conn,
            Err(error) => return room.reason(&room.failed, format!("connect: {error:#}")),
        };
        let join_ref = match conn.join(&self.topic, &json!({})).await {
            Ok(reference) => reference.to_string(),
            Err(error) => return room.reason(&room.failed, format!("join: {error:#}")),
        };
        let mut permit = Some(permit);
        let mut view = PresenceView::default();
        loop {
            let received = tokio::select! {
                _ = stop.changed() => break,
                received = conn.recv() => received,
            };
            let received = match received {
                Ok(received) => received,
                Err(ended) if permit.is_some() => {
                    return room.reason(&room.failed, format!("before the join reply: {ended}"));
                }
                Err(ended) => return room.reason(&room.closed, ended.to_string()),
            };
            match self.protocol.decode(received.text.as_str()) {
                Incoming::Reply { topic, reference, ok, response, .. }
                    if permit.is_some() && self.protocol.is_reply(reference, topic, &self.topic, &join_ref) =>
                {
                    if !ok {
                        return room.reason(&room.failed, format!("join refused: {response}"));
                    }
                    permit = None;
                    room.joined.fetch_add(1, Ordering::Relaxed);
                }
                Incoming::PresenceState { payload, .. } => {
                    if let Some(members) = self.protocol.members(payload) {
                        view.sync_state(members);
                    }
                }
                Incoming::PresenceDiff { payload, .. } => {
                    if let Some((joins, leaves)) = self.protocol.diff(payload) {
                        view.sync_diff(joins, leaves);
                    }
                }
                Incoming::Closed { event, .. } => return room.reason(&room.closed, format!("{event} on the room")),
                _ => {}
            }
            let list = view.key_names().into_iter().map(|key| {
                let entries = view.entries_of(&key);
                (key, entries)
            });
            *room.lists[self.index].lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = list.collect();
            room.last_frame_us.store(now_us(), Ordering::Relaxed);
        }
        conn.close().await;
    }
}
