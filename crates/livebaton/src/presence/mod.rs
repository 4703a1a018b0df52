//! Phoenix-compatible presence: who is on a topic, in one total order, cleaned up when its owner goes away.
//!
//! [`Presence`] is the async shell (locking, publishing diffs, grace timers, coalescing) around the pure roster of the
//! `state` module. [`Presence::track`] returns a [`TrackGuard`]; the entry lives exactly as long as the guard:
//! [`TrackGuard::leave`] removes it at once, dropping the guard (the owning task ended: a closed tab, a crash) keeps
//! it listed for `leave_grace` so the same tab can come back and reclaim its place, then removes it.
//!
//! On several nodes the roster is shared ([`RedisRoster`], built by [`Presence::connect_redis`] or
//! [`crate::Engine::with_redis`]): each node is the only writer of its own entries, Redis numbers every join in one
//! atomic step and publishes every change, and each node keeps a replica of every other node's entries in the same
//! roster, so reads stay local and every node computes the same order, diffs and owners. The rules for keeping the
//! replica faithful are in the `replica` module; the Redis side is in [`RedisRoster`]'s module documentation.

mod backend;
pub(crate) mod change;
mod meta;
mod redis;
pub(crate) mod replica;
mod shapes;
pub(crate) mod state;
mod tab;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;

use crate::pubsub::{PubSub, Subscription};

pub use backend::RosterBackendError;
pub(crate) use backend::{AuthorityCheck, JoinCall, LocalRoster, OwnOp, RosterBackend};
pub(crate) use change::RosterChange;
pub(crate) use redis::{DocSink, DocWrite};
pub use redis::{RedisRoster, RedisRosterConfig, RedisRosterError, RedisRosterStats, RedisRosterStatus};
pub(crate) use replica::{Applied, OwnEntry, RemoteEvent, TopicSnapshot};
pub use shapes::{Meta, PresenceDiff, PresenceEntry, PresenceEntryRef, PresenceList, PresenceMeta, RESERVED_META_KEYS};
pub use state::{Authority, NotTracked};
pub(crate) use state::{Entry, EntryId, Insert, JoinRequest, PresenceState};
pub use tab::{InvalidTabId, MAX_TAB_ID_LEN, validate_tab_id};

/// Most metas in one published `presence_diff`: a coalesced burst goes out as several diffs of at most this many
/// (about 1.5 KiB of JSON each), so no frame that every member of a room is sent grows with the burst. Equal to the
/// transport's `presence_state` chunk.
pub const MAX_DIFF_METAS: usize = 16;

/// How [`Presence::track_with`] tracks an entry, beyond its key and metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackOptions<'a> {
    /// The browser tab that owns the entry: if an entry of the same tab is lingering on the topic (the tab reloaded),
    /// it is reclaimed with its place in the order. Make it something a client cannot forge alone (the editing layer
    /// uses the user id and the tab id together); at most 256 bytes.
    pub tab_id: Option<&'a str>,
    /// Whether the entry may *lead* its topic. A topic's leader is its first entry in the order that may; a shared
    /// roster keeps the same leader on every node with a fencing number ([`Presence::authority`]), so work can be
    /// checked against it. Editing uses it for who may hold the baton. Fixed for the entry's life (a reclaim sets
    /// it again); not part of the metadata, so members never see it unless the application also puts it there.
    pub may_lead: bool,
}

/// Settings for a [`Presence`] tracker.
#[derive(Clone, Debug)]
pub struct PresenceConfig {
    /// How long an entry whose guard was dropped (not left) stays listed and reclaimable by its tab. Zero removes it
    /// at once.
    pub leave_grace: Duration,
    /// Window over which diffs of one topic are merged before publishing (how, [`PresenceConfig::coalescing`] says).
    /// Zero publishes every change at once.
    pub coalesce_window: Duration,
    /// How the window is used: only for busy topics (the default), or for every change.
    pub coalescing: Coalescing,
}

/// How a topic's diffs are merged over [`PresenceConfig::coalesce_window`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Coalescing {
    /// A quiet topic publishes each change at once; a change that comes within a window of the topic's last
    /// published one waits for that window to close, merged with whatever else comes meanwhile. One join in a quiet
    /// room costs no latency; a storm of N joins costs about one diff per window instead of N.
    #[default]
    Adaptive,
    /// Every change waits for the window to close (merging what comes meanwhile), quiet topic or not.
    Fixed,
}

/// The default coalescing window: long enough to merge a join storm, short enough that a member of a busy room sees
/// a change within a frame of a screen's refresh.
pub const DEFAULT_COALESCE_WINDOW: Duration = Duration::from_millis(15);

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            leave_grace: Duration::from_secs(1),
            coalesce_window: DEFAULT_COALESCE_WINDOW,
            coalescing: Coalescing::Adaptive,
        }
    }
}

/// Errors from the presence tracker.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The entry is no longer tracked.
    #[error(transparent)]
    NotTracked(#[from] NotTracked),
    /// The shared roster could not be reached; nothing was tracked.
    #[error(transparent)]
    Backend(#[from] RosterBackendError),
    /// The shared roster could not be set up.
    #[error(transparent)]
    Redis(#[from] RedisRosterError),
    /// A client's tab id is not a plain short id; nothing was tracked.
    #[error(transparent)]
    InvalidTabId(#[from] InvalidTabId),
}

/// Something that must react to every change of some topics' rosters at once (not coalesced): the editing layer
/// uses it to hand over ownership the moment an owner leaves, as Phoenix.Tracker's `handle_diff` callback does.
pub(crate) trait PresenceObserver: Send + Sync + 'static {
    /// Whether `topic` concerns this observer; cheap, checked on every change.
    fn watches(&self, topic: &str) -> bool;

    /// Called after each change of a watched topic, with the roster as it now is. Runs while the tracker is locked:
    /// it must be quick and must not call the tracker in any way, which includes dropping a [`TrackGuard`] (that
    /// would deadlock on the tracker's lock).
    fn on_change(&self, topic: &str, roster: &PresenceState, change: &RosterChange);

    /// Whether the watched topics' diffs must be published at once, bypassing the coalescing window, so that what the
    /// observer publishes in reaction never arrives before the diff that caused it.
    fn needs_immediate_diffs(&self) -> bool {
        false
    }
}

/// The presence tracker. Cheap to clone; clones share one roster.
#[derive(Clone)]
pub struct Presence {
    shared: Arc<Shared>,
}

struct Shared {
    /// The roster and the diffs waiting for their coalescing window. A std `Mutex`: no critical section awaits; most
    /// are a few map operations, the longest is `list` of one topic (about 0.5 ms for 10,000 entries). Publishing under
    /// it keeps each topic's diffs in order. One lock for all topics is simple and measured fast enough; shard it by
    /// topic if contention shows up. With a shared roster, own changes are handed to the backend (a non-blocking
    /// queue) under this lock too, so their order in the queue is their order here, and a backend reading this node's
    /// entries under the lock ([`RosterHandle::own_entries`]) knows exactly which queued changes they include; other
    /// nodes' events are applied under it, so the replica changes in one place only.
    inner: Mutex<Inner>,
    pubsub: PubSub,
    config: PresenceConfig,
    /// Where order comes from: this node ([`LocalRoster`]) or a shared roster. A trait object, shared with the
    /// backend's own tasks, which reach back only through a weak [`RosterHandle`] (no cycle keeps a tracker alive).
    backend: Arc<dyn RosterBackend>,
    /// With a shared roster, `"<node id>#"`: the prefix of this node's member ids (`None` on a single node).
    own_prefix: Option<Arc<str>>,
    /// Registered once at start-up and read on every change: an `RwLock` so readers never contend.
    observers: RwLock<Vec<Arc<dyn PresenceObserver>>>,
    /// Grace timers and coalescing flushes are spawned here, also from `Drop` where no runtime context may exist.
    runtime: Handle,
}

struct Inner {
    state: PresenceState,
    /// Per topic, the changes waiting for the coalescing window to close. With [`Coalescing::Adaptive`] a topic that
    /// just published is listed with an empty change until the window closes: what comes meanwhile waits and merges.
    /// Emptied by each window's flush, so it holds only topics active within the last window.
    pending: HashMap<Arc<str>, RosterChange>,
}

impl Presence {
    /// A single-node tracker publishing diffs on `pubsub`.
    ///
    /// # Panics
    /// Outside a Tokio runtime. Grace timers and coalescing run on that runtime, which must have its time driver
    /// enabled and outlive the tracker (entries released after it shut down are never removed).
    pub fn new(pubsub: PubSub, config: PresenceConfig) -> Self {
        Self::with_backend(pubsub, config, Arc::new(LocalRoster))
    }

    /// A tracker whose sequence numbers come from `backend`.
    ///
    /// # Panics
    /// As [`Presence::new`].
    pub(crate) fn with_backend(pubsub: PubSub, config: PresenceConfig, backend: Arc<dyn RosterBackend>) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as u64);
        let shared = Shared {
            inner: Mutex::new(Inner { state: PresenceState::new(format!("{nanos:x}.")), pending: HashMap::new() }),
            pubsub,
            config,
            own_prefix: backend.node_id().map(|node| Arc::from(format!("{node}#"))),
            backend,
            observers: RwLock::new(Vec::new()),
            runtime: Handle::current(),
        };
        let shared = Arc::new(shared);
        shared.backend.attach(RosterHandle { shared: Arc::downgrade(&shared) });
        Presence { shared }
    }

    /// A tracker whose roster is shared with other nodes through the Redis at `redis` (a URL or a
    /// [`crate::RedisAddress`]), as node `node_name`: connects,
    /// loads every node's entries, and starts the node's lease, writer and subscriber tasks. When it returns, `list`
    /// shows the whole cluster. Diffs are published on `pubsub` (which should carry other broadcasts between the same
    /// nodes, e.g. with [`crate::pubsub::RedisBackend`]).
    ///
    /// # Errors
    /// [`PresenceError::Redis`] when Redis cannot be reached or the settings cannot work.
    pub async fn connect_redis(
        pubsub: PubSub,
        config: PresenceConfig,
        redis: impl Into<crate::RedisAddress>,
        node_name: &str,
        roster: RedisRosterConfig,
    ) -> Result<(Self, Arc<RedisRoster>), PresenceError> {
        let backend = RedisRoster::connect(redis, node_name, roster).await?;
        let presence = Self::with_backend(pubsub, config, backend.clone());
        backend.start().await?;
        Ok((presence, backend))
    }

    /// Whether the roster is shared with other nodes.
    pub fn is_shared(&self) -> bool {
        self.shared.own_prefix.is_some()
    }

    /// This node's id in the shared roster, if it is shared.
    pub fn node_id(&self) -> Option<&str> {
        self.shared.backend.node_id()
    }

    /// The shared roster's leader of `topic` as this node last heard it (`None` on a single node, or while unknown).
    pub fn authority(&self, topic: &str) -> Option<Authority> {
        self.shared.lock().state.authority(topic).cloned()
    }

    /// Asks the shared roster, atomically, whether `authority` still leads `topic` (always valid on a single node).
    ///
    /// # Errors
    /// [`PresenceError::Backend`] when the shared roster cannot be reached.
    pub(crate) async fn check_authority(
        &self,
        topic: &str,
        authority: &Authority,
    ) -> Result<AuthorityCheck, PresenceError> {
        Ok(self.shared.backend.check_authority(topic, authority).await?)
    }

    /// Whether this node can vouch for its view of the shared roster now (always true on a single node).
    pub fn is_healthy(&self) -> bool {
        self.shared.backend.is_healthy()
    }

    /// Waits until this node's changes so far have been written to the shared roster (at once on a single node).
    pub async fn flush(&self) {
        self.shared.backend.flush().await;
    }

    /// The PubSub diffs are published on.
    pub fn pubsub(&self) -> &PubSub {
        &self.shared.pubsub
    }

    /// The tracker's settings.
    pub fn config(&self) -> &PresenceConfig {
        &self.shared.config
    }

    /// Registers an observer for roster changes.
    pub(crate) fn observe(&self, observer: Arc<dyn PresenceObserver>) {
        self.shared.observers.write().unwrap_or_else(|poisoned| poisoned.into_inner()).push(observer);
    }

    /// Tracks `key` on `topic` with `meta`. The entry lives as long as the returned guard.
    ///
    /// # Errors
    /// [`PresenceError::Backend`] if a shared backend could not number the entry.
    pub async fn track(&self, topic: &str, key: &str, meta: Meta) -> Result<TrackGuard, PresenceError> {
        self.track_with(topic, key, meta, TrackOptions::default()).await
    }

    /// Like [`Presence::track`], for a browser tab that may reclaim its lingering entry ([`TrackOptions::tab_id`]).
    ///
    /// # Errors
    /// As [`Presence::track_with`].
    pub async fn track_in_tab(
        &self,
        topic: &str,
        key: &str,
        meta: Meta,
        tab_id: Option<&str>,
    ) -> Result<TrackGuard, PresenceError> {
        self.track_with(topic, key, meta, TrackOptions { tab_id, may_lead: false }).await
    }

    /// Tracks `key` on `topic` with `meta` and `options`. The entry lives as long as the returned guard.
    ///
    /// # Errors
    /// [`PresenceError::Backend`] if a shared backend could not number the entry; [`PresenceError::InvalidTabId`]
    /// for a reclaim identity over 256 bytes (check a client's own tab id with [`validate_tab_id`] first).
    pub async fn track_with(
        &self,
        topic: &str,
        key: &str,
        meta: Meta,
        options: TrackOptions<'_>,
    ) -> Result<TrackGuard, PresenceError> {
        let TrackOptions { tab_id, may_lead } = options;
        if tab_id.is_some_and(|tab| tab.len() > 256) {
            return Err(InvalidTabId.into());
        }
        if let Some(own) = &self.shared.own_prefix {
            return self.track_shared(own.clone(), topic, key, meta, options).await;
        }
        let request = JoinRequest {
            key: Arc::from(key),
            fields: meta.into_kept(),
            eligible: may_lead,
            tab_id: tab_id.map(Arc::from),
            seq: None,
        };
        let mut inner = self.shared.lock();
        let joined = inner.state.join(topic, request);
        let topic: Arc<str> = Arc::from(topic);
        self.shared.apply(&mut inner, &topic, joined.change);
        drop(inner);
        Ok(TrackGuard { shared: self.shared.clone(), topic, id: joined.id, key: Arc::from(key), released: false })
    }

    /// A join numbered by the shared roster: reserve the entry's id and ref, have the roster number it (its answer
    /// also says what this node must see first), then insert it.
    async fn track_shared(
        &self,
        own: Arc<str>,
        topic: &str,
        key: &str,
        meta: Meta,
        options: TrackOptions<'_>,
    ) -> Result<TrackGuard, PresenceError> {
        let TrackOptions { tab_id, may_lead: eligible } = options;
        let topic: Arc<str> = Arc::from(topic);
        let key: Arc<str> = Arc::from(key);
        let fields = state::without_reserved_keys(meta.into_kept());
        let tab: Option<Arc<str>> = tab_id.map(Arc::from);
        let (id, phx_ref, member, known_ver, floor) = {
            let mut inner = self.shared.lock();
            let (id, phx_ref) = inner.state.reserve_entry();
            let member: Arc<str> = Arc::from(format!("{own}{:x}", id.get()));
            // Registered before Redis can run the join: its event may be applied before its reply (see `replica`).
            let joining = Insert {
                id: Some(id),
                key: key.clone(),
                fields: fields.clone(),
                eligible,
                phx_ref: Some(phx_ref.clone()),
                seq: 0,
                tab_id: tab.clone(),
                member: member.clone(),
                remote: false,
                ver: 0,
                replacing: None,
            };
            inner.state.begin_join(topic.clone(), joining);
            (id, phx_ref, member, inner.state.topic_ver(&topic).unwrap_or(0), inner.state.max_seq(&topic))
        };
        let call = JoinCall {
            topic: topic.clone(),
            member: member.clone(),
            key: key.clone(),
            phx_ref: phx_ref.clone(),
            eligible,
            fields: fields.clone(),
            tab: tab.clone(),
            floor,
            known_ver,
        };
        let in_flight = JoinInFlight {
            shared: self.shared.clone(),
            topic: topic.clone(),
            id,
            member: member.clone(),
            completed: false,
        };
        let outcome = self.shared.backend.join(call).await?;
        let mut inner = self.shared.lock();
        let join = replica::OwnJoin {
            id,
            key: key.clone(),
            fields,
            eligible,
            phx_ref,
            tab_id: tab,
            member,
            outcome: &outcome,
        };
        let change = replica::apply_own_join(&mut inner.state, &own, &topic, join);
        self.shared.apply(&mut inner, &topic, change);
        drop(inner);
        // No await from here on: the guard exists before this task can be cancelled again.
        in_flight.complete();
        Ok(TrackGuard { shared: self.shared.clone(), topic, id, key, released: false })
    }

    /// Phoenix's `list(topic)`: `key → {metas}`, in order.
    pub fn list(&self, topic: &str) -> PresenceList {
        self.shared.lock().state.list(topic)
    }

    /// Phoenix's `get_by_key(topic, key)`.
    pub fn get_by_key(&self, topic: &str, key: &str) -> Option<PresenceEntry> {
        self.shared.lock().state.get_by_key(topic, key)
    }

    /// Every entry of `topic` as `(key, meta)`, in order (earliest first).
    pub fn sorted(&self, topic: &str) -> Vec<(Arc<str>, Arc<PresenceMeta>)> {
        self.shared.lock().state.entries(topic).map(|entry| (entry.key.clone(), entry.meta.clone())).collect()
    }

    /// Number of entries on every topic.
    pub fn entry_count(&self) -> usize {
        self.shared.lock().state.entry_count()
    }

    /// Number of topics with at least one entry (emptied topics are forgotten).
    pub fn topic_count(&self) -> usize {
        self.shared.lock().state.topic_count()
    }

    /// Number of entries on `topic`.
    pub fn count(&self, topic: &str) -> usize {
        self.shared.lock().state.topic_len(topic)
    }

    /// Subscribes to `topic`'s diffs (and anything else published on it).
    pub fn subscribe(&self, topic: &str) -> Subscription {
        self.shared.pubsub.subscribe(topic)
    }

    /// Removes the entry `guard` keeps alive, now (Phoenix's `untrack`). The same as [`TrackGuard::leave`].
    pub fn untrack(&self, guard: TrackGuard) {
        guard.leave();
    }

    /// Reads the roster under the tracker's lock.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&PresenceState) -> R) -> R {
        read(&self.shared.lock().state)
    }

    /// Exchanges the places of two entries chosen by `pick`, which reads the roster under the same lock as the swap
    /// (so the choice cannot go stale before it is applied).
    pub(crate) fn swap_order<E: From<NotTracked>>(
        &self,
        topic: &str,
        pick: impl FnOnce(&PresenceState) -> Result<(EntryId, EntryId), E>,
    ) -> Result<(), E> {
        let mut inner = self.shared.lock();
        let (first, second) = pick(&inner.state)?;
        let before = |state: &PresenceState, id| {
            state.entry(topic, id).and_then(|entry| Some((entry.member.clone()?, entry.meta.seq)))
        };
        let shared_swap = (before(&inner.state, first), before(&inner.state, second));
        let change = inner.state.swap_order(topic, first, second)?;
        let topic: Arc<str> = Arc::from(topic);
        if !change.is_empty() {
            if let (Some(first), Some(second)) = shared_swap {
                self.shared.backend.submit(OwnOp::Swap { topic: topic.clone(), first, second });
            }
        }
        self.shared.apply(&mut inner, &topic, change);
        Ok(())
    }
}

/// How a shared roster backend reaches the tracker it serves: applies other nodes' changes, reads this node's own
/// entries for re-asserting them. Holds the tracker weakly: a backend never keeps a dropped tracker alive.
#[derive(Clone)]
pub(crate) struct RosterHandle {
    shared: Weak<Shared>,
}

impl RosterHandle {
    /// Applies an event of the shared roster (see [`replica::apply_event`]); `None` once the tracker is gone.
    pub fn apply_event(&self, event: &RemoteEvent) -> Option<Applied> {
        let shared = self.shared.upgrade()?;
        let own = shared.own_prefix.clone()?;
        let mut inner = shared.lock();
        let applied = replica::apply_event(&mut inner.state, &own, event);
        if let Applied::Changed(change) = &applied {
            shared.apply(&mut inner, &event.topic, change.clone());
        }
        Some(applied)
    }

    /// Replaces the replica of a topic with a snapshot (see [`replica::apply_snapshot`]); false once the tracker is
    /// gone.
    pub fn apply_snapshot(&self, snapshot: &TopicSnapshot, drop_stale: bool) -> bool {
        let Some(shared) = self.shared.upgrade() else { return false };
        let Some(own) = shared.own_prefix.clone() else { return false };
        let mut inner = shared.lock();
        let change = replica::apply_snapshot(&mut inner.state, &own, snapshot, drop_stale);
        shared.apply(&mut inner, &snapshot.topic, change);
        true
    }

    /// The replica's version of `topic` (0: none) and the highest seq in use on it, read just before a join is sent,
    /// so the answer carries only what the replica is still missing at that moment.
    pub fn topic_position(&self, topic: &str) -> (u64, u64) {
        self.shared.upgrade().map_or((0, 0), |shared| {
            let inner = shared.lock();
            (inner.state.topic_ver(topic).unwrap_or(0), inner.state.max_seq(topic))
        })
    }

    /// The topics this replica holds entries of.
    pub fn topics(&self) -> Vec<Arc<str>> {
        self.shared.upgrade().map_or_else(Vec::new, |shared| shared.lock().state.topic_names().cloned().collect())
    }

    /// The shared roster was lost: runs `switch` (which records the new dataset generation and says whether it is
    /// new) and, if it is, [`replica::begin_reset`], both under the tracker's lock, so no event of the new generation
    /// can be applied to the old versions in between. Returns what `switch` returned.
    pub fn begin_reset(&self, switch: impl FnOnce() -> bool) -> bool {
        match self.shared.upgrade() {
            Some(shared) => {
                let mut inner = shared.lock();
                let switched = switch();
                if switched {
                    replica::begin_reset(&mut inner.state);
                }
                switched
            }
            None => switch(),
        }
    }

    /// This node's entries, read under the tracker's lock together with `mark()` (changes are submitted under the same
    /// lock, so `mark` can note which submitted changes the list already includes). `None` once the tracker is gone.
    pub fn own_entries<R>(&self, mark: impl FnOnce() -> R) -> Option<(Vec<OwnEntry>, R)> {
        let shared = self.shared.upgrade()?;
        let inner = shared.lock();
        Some((replica::own_entries(&inner.state), mark()))
    }

    /// The topics where this node has live entries that the shared roster dropped (see [`replica::dropped_topics`]).
    pub fn dropped_topics(&self) -> Vec<Arc<str>> {
        self.shared.upgrade().map_or_else(Vec::new, |shared| replica::dropped_topics(&shared.lock().state))
    }

    /// Whether this node has live entries in `topic` that the shared roster dropped (see [`replica::holds_dropped`]).
    pub fn holds_dropped(&self, topic: &str) -> bool {
        self.shared.upgrade().is_some_and(|shared| replica::holds_dropped(&shared.lock().state, topic))
    }

    /// Whether the tracker still exists.
    pub fn is_alive(&self) -> bool {
        self.shared.strong_count() > 0
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Roster operations do not panic on valid input (their `expect`s state invariants); if one ever did, the
        // roster may be partly updated, but serving the rest of the site beats poisoning every page.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes a change (now, or when its coalescing window closes), then tells the observers, so a subscriber hears
    /// the diff before anything an observer derives from it (such as an owner change).
    fn apply(self: &Arc<Self>, inner: &mut Inner, topic: &Arc<str>, change: RosterChange) {
        if change.is_empty() {
            return;
        }
        let observers = self.observers.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let watching: Vec<&Arc<dyn PresenceObserver>> =
            observers.iter().filter(|observer| observer.watches(topic)).collect();
        let immediate =
            self.config.coalesce_window.is_zero() || watching.iter().any(|observer| observer.needs_immediate_diffs());
        // Adaptive: a topic with nothing published within the window publishes at once, and opens a window.
        let leading =
            !immediate && self.config.coalescing == Coalescing::Adaptive && !inner.pending.contains_key(topic);
        if immediate {
            // Anything still waiting for this topic goes first, to keep its diffs in order.
            match inner.pending.remove(topic) {
                Some(mut pending) => {
                    pending.merge(change.clone());
                    self.publish(topic, &pending);
                }
                None => self.publish(topic, &change),
            }
        } else if leading {
            self.publish(topic, &change);
        }
        for observer in watching {
            observer.on_change(topic, &inner.state, &change);
        }
        drop(observers);
        if immediate {
            return;
        }
        let flush_due = inner.pending.is_empty();
        if leading {
            inner.pending.insert(topic.clone(), RosterChange::default());
        } else {
            match inner.pending.get_mut(topic) {
                Some(pending) => pending.merge(change),
                None => {
                    inner.pending.insert(topic.clone(), change);
                }
            }
        }
        if flush_due {
            let shared = self.clone();
            let window = self.config.coalesce_window;
            self.runtime.spawn(async move {
                tokio::time::sleep(window).await;
                let mut inner = shared.lock();
                for (topic, change) in std::mem::take(&mut inner.pending) {
                    shared.publish(&topic, &change);
                }
            });
        }
    }

    fn publish(&self, topic: &str, change: &RosterChange) {
        // Diffs are local: every node computes and delivers its own, as Phoenix.Presence does.
        if change.is_empty() || self.pubsub.subscriber_count(topic) == 0 {
            return;
        }
        let diff = change.to_diff();
        if diff.joins.meta_count() + diff.leaves.meta_count() <= MAX_DIFF_METAS {
            self.pubsub.local_broadcast(topic, diff);
            return;
        }
        // Joins first, then leaves: the order in which a client applies one diff, so the pieces end where the
        // whole would.
        let joins =
            diff.joins.chunks(MAX_DIFF_METAS).into_iter().map(|joins| PresenceDiff { joins, ..Default::default() });
        let leaves =
            diff.leaves.chunks(MAX_DIFF_METAS).into_iter().map(|leaves| PresenceDiff { leaves, ..Default::default() });
        // A list with no metas still comes out as one (empty) chunk: a burst of only joins must not send an empty
        // diff to every member after its joins.
        for piece in joins.chain(leaves).filter(|piece| !(piece.joins.is_empty() && piece.leaves.is_empty())) {
            self.pubsub.local_broadcast(topic, piece);
        }
    }

    fn release(self: &Arc<Self>, topic: &Arc<str>, id: EntryId, grace: Duration) {
        let mut inner = self.lock();
        let member = inner.state.entry(topic, id).and_then(|entry| entry.member.clone());
        if grace.is_zero() {
            let change = inner.state.leave(topic, id);
            if let (Some(member), false) = (member, change.is_empty()) {
                self.backend.submit(OwnOp::Leave { topic: topic.clone(), member });
            }
            self.apply(&mut inner, topic, change);
            return;
        }
        let Some(token) = inner.state.close(topic, id) else { return };
        let tab = inner.state.entry(topic, id).and_then(|entry| entry.tab_id.clone());
        if let (Some(member), Some(tab)) = (member.clone(), tab) {
            self.backend.submit(OwnOp::Close { topic: topic.clone(), member, tab });
        }
        drop(inner);
        let shared = self.clone();
        let topic = topic.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            let mut inner = shared.lock();
            let change = inner.state.expire(&topic, id, token);
            if let (Some(member), false) = (member, change.is_empty()) {
                shared.backend.submit(OwnOp::Leave { topic: topic.clone(), member });
            }
            shared.apply(&mut inner, &topic, change);
        });
    }
}

/// A join of this node waiting for the shared roster, from before Redis can run it until its [`TrackGuard`] exists.
///
/// The task awaiting a join can be cancelled at any await (a socket that closes mid-join has its channel tasks
/// aborted), also after Redis numbered the entry and before the task took the answer. Then no guard exists, nobody
/// would ever remove the entry, and every node would list it for good. Dropping this before [`JoinInFlight::complete`]
/// ends the join: it removes the entry here (an event may have inserted it already) and queues its leave, which the
/// writer runs after the join (and which removes nothing if the join never ran).
struct JoinInFlight {
    shared: Arc<Shared>,
    topic: Arc<str>,
    id: EntryId,
    member: Arc<str>,
    completed: bool,
}

impl JoinInFlight {
    /// The join completed and its guard is handed out: the guard owns the entry from now on.
    fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for JoinInFlight {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let mut inner = self.shared.lock();
        inner.state.end_join(&self.member);
        let change = inner.state.leave(&self.topic, self.id);
        self.shared.backend.submit(OwnOp::Leave { topic: self.topic.clone(), member: self.member.clone() });
        self.shared.apply(&mut inner, &self.topic, change);
    }
}

/// Keeps one presence entry alive. Dropping it releases the entry after the tracker's grace period.
#[must_use = "the presence entry is removed when the guard is dropped"]
pub struct TrackGuard {
    shared: Arc<Shared>,
    topic: Arc<str>,
    id: EntryId,
    key: Arc<str>,
    released: bool,
}

impl TrackGuard {
    /// The topic tracked on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The presence key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The entry's current meta (its `phx_ref` changes with every update), or `None` if it was removed.
    pub fn meta(&self) -> Option<Arc<PresenceMeta>> {
        self.shared.lock().state.entry(&self.topic, self.id).map(|entry| entry.meta.clone())
    }

    /// Replaces the entry's metadata; subscribers see a leave of the old meta and a join of the new one.
    ///
    /// # Errors
    /// [`PresenceError::NotTracked`] if the entry is gone.
    pub fn update(&self, meta: Meta) -> Result<(), PresenceError> {
        let mut inner = self.shared.lock();
        let change = inner.state.update(&self.topic, self.id, meta.into_kept())?;
        if let Some(entry) = inner.state.entry(&self.topic, self.id) {
            if let Some(member) = &entry.member {
                self.shared.backend.submit(OwnOp::Update {
                    topic: self.topic.clone(),
                    member: member.clone(),
                    key: entry.key.clone(),
                    phx_ref: entry.meta.phx_ref.clone(),
                    fields: entry.meta.fields.clone(),
                    eligible: entry.eligible,
                });
            }
        }
        self.shared.apply(&mut inner, &self.topic, change);
        Ok(())
    }

    /// Removes the entry now (an explicit leave or navigation).
    pub fn leave(mut self) {
        self.released = true;
        self.shared.release(&self.topic, self.id, Duration::ZERO);
    }

    /// Releases the entry as "closed": it lingers for the grace period (reclaimable by its tab), then goes.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if !self.released {
            self.shared.release(&self.topic, self.id, self.shared.config.leave_grace);
        }
    }
}

impl std::fmt::Debug for TrackGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackGuard").field("topic", &self.topic).field("key", &self.key).finish()
    }
}
