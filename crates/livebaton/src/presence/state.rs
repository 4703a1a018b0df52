//! The pure presence roster: entries per topic in one total order, with the diffs every operation produces.
//!
//! No clocks, no tasks, no I/O: the async tracker ([`super::Presence`]) drives it and owns timers and publishing,
//! the way Phoenix separates `tracker/state.ex` from `tracker/shard.ex`. Everything here is deterministic, which is
//! what the property tests rely on.
//!
//! Lingering ("closed") entries stay listed until the tracker expires them or the same tab reclaims them; reads do not
//! distinguish them, so a tab that reloads within the grace period never appears to leave.
//!
//! With a shared roster (Redis) the same state also holds *remote* entries (other nodes' entries, replicated) and this
//! node's own entries numbered by the shared roster. Those are driven through the lower-level operations at the end of
//! this file ([`PresenceState::insert`], [`PresenceState::set_meta`], [`PresenceState::move_to`]) by
//! [`super::replica`]; the operations above stay what a single node uses.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::change::RosterChange;
use super::shapes::{Meta, PresenceEntry, PresenceList, PresenceMeta, RESERVED_META_KEYS};

/// Who leads a topic according to the shared roster (Redis), and the fencing number of that leadership.
///
/// The shared roster keeps, per topic, its first *eligible* entry (one tracked as one that may lead, see
/// [`super::TrackOptions::may_lead`]) and a number that changes every time that entry changes, drawn from a counter that only grows within one Redis dataset (`generation`). A
/// fencing token names all three, so it matches the authority again only if nothing changed in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The Redis dataset's generation: a random id created with the dataset, so numbers from before a Redis restart
    /// or flush never match numbers after it.
    pub generation: Arc<str>,
    /// The member id of the first eligible entry, if any.
    pub member: Option<Arc<str>>,
    /// Changes whenever `member` changes.
    pub fence: u64,
}

/// Identifies one tracked entry for its whole life, across updates (which change `phx_ref`) and reorders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u64);

impl EntryId {
    /// The number behind the id (unique within one [`PresenceState`]).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Proof that an entry was closed at a given moment; expiring with a stale token (the entry was reclaimed and closed
/// again since) does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CloseToken(u64);

/// The operation named an entry that is not (or no longer) tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such presence entry")]
pub struct NotTracked;

/// One tracked entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Stable identity.
    pub id: EntryId,
    /// The presence key (Phoenix groups metas by it).
    pub key: Arc<str>,
    /// The current meta, with `phx_ref` and `seq`.
    pub meta: Arc<PresenceMeta>,
    /// Whether the entry may lead its topic (see [`super::TrackOptions::may_lead`]); fixed when it joins.
    pub eligible: bool,
    /// The browser tab that owns the entry, which may reclaim it within the grace period after closing.
    pub tab_id: Option<Arc<str>>,
    /// Set while the entry lingers after its owner closed without leaving.
    pub closing: Option<CloseToken>,
    /// The entry's id in the shared roster (`<node id>#<n>`), unique in the cluster; `None` on a single node.
    pub member: Option<Arc<str>>,
    /// Whether another node tracks this entry (this node only replicates it).
    pub remote: bool,
    /// The shared roster's version of the last change of this entry's metadata applied here (0 when unknown), so a
    /// replayed older change never overwrites a newer one.
    pub ver: u64,
    /// The shared roster's version at which this entry's place was last stated (its join, a move, a reload). Kept
    /// apart from `ver` because this node may reorder entries itself (a swap) before the roster confirms it.
    pub place_ver: u64,
    /// Set on remote entries when the shared roster was lost (Redis restarted or flushed) until their node re-asserts
    /// them; entries still stale after the re-assert grace are dropped. Set on a live own entry that the shared roster
    /// dropped (this node was declared dead) until this node re-asserts it.
    pub stale: bool,
}

/// What a join asks for.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// Presence key.
    pub key: Arc<str>,
    /// Application metadata.
    pub fields: Arc<Meta>,
    /// Whether the entry may lead its topic.
    pub eligible: bool,
    /// Tab identity for reclaiming a lingering entry.
    pub tab_id: Option<Arc<str>>,
    /// A sequence number assigned by a shared backend, or `None` to let this roster assign the next one.
    pub seq: Option<u64>,
}

/// The outcome of a join.
#[derive(Debug)]
pub struct Joined {
    /// The entry's identity.
    pub id: EntryId,
    /// True when a lingering entry of the same tab was taken over (keeping its sequence number).
    #[cfg_attr(not(feature = "testing"), allow(dead_code, reason = "read by the roster's property tests"))]
    pub reclaimed: bool,
    /// The diff to publish.
    pub change: RosterChange,
}

/// What [`PresenceState::insert`] adds: an entry whose number (and, for a remote entry, whose `phx_ref`) the shared
/// roster decided.
#[derive(Clone, Debug)]
pub struct Insert {
    /// The entry's id: reserved with [`PresenceState::reserve_entry`], or `None` for a new one.
    pub id: Option<EntryId>,
    /// Presence key.
    pub key: Arc<str>,
    /// Application metadata.
    pub fields: Arc<Meta>,
    /// Whether the entry may lead its topic.
    pub eligible: bool,
    /// The entry's `phx_ref`, or `None` for a new local one.
    pub phx_ref: Option<Arc<str>>,
    /// Place in the order.
    pub seq: u64,
    /// Reclaim identity (own entries only).
    pub tab_id: Option<Arc<str>>,
    /// Shared roster id.
    pub member: Arc<str>,
    /// Whether another node tracks it.
    pub remote: bool,
    /// Shared roster version of the entry.
    pub ver: u64,
    /// An entry this one replaces in the same change (a reclaim): it leaves, and if it had the same key the new meta
    /// names its `phx_ref` as `phx_ref_prev`.
    pub replacing: Option<EntryId>,
}

/// One topic's entries.
#[derive(Debug, Default)]
struct TopicRoster {
    /// Entries by sequence number (then id): the topic's total order. The id is part of the key only so that two
    /// entries can briefly hold the same number while a replica converges (a shared roster's order is unique; a
    /// replica may apply a local reorder before hearing a concurrent one); on a single node numbers are unique.
    ///
    /// Entries are boxed: a B-tree node holds 11 values whatever it uses, and entries arrive in order, which leaves
    /// nodes about half full. With the 104-byte `Entry` inline, a topic of one entry held a 1.3 KiB node and a big
    /// room about 220 bytes an entry; boxed, a node is 280 bytes and an entry its own 112-byte block
    /// (`BENCHMARKS.md`, "RSS per idle connection").
    by_seq: BTreeMap<(u64, EntryId), Box<Entry>>,
    /// Where each entry sits in `by_seq`.
    seq_of: HashMap<EntryId, u64>,
    /// Lingering entries by tab, most recently closed last, for reclaim. (A tab normally has one entry per topic; if
    /// it had several, the one it closed last is the one it reclaims.)
    closing_tabs: HashMap<Arc<str>, Vec<EntryId>>,
    /// The next number this roster assigns itself.
    next_seq: u64,
    /// Entries per key, and how many keys have more than one: while none do, `list` needs no grouping.
    key_counts: HashMap<Arc<str>, u32>,
    shared_keys: usize,
    /// Entries by shared roster id.
    members: HashMap<Arc<str>, EntryId>,
    /// The shared roster's version of this topic that the replica has applied (0: none yet).
    ver: u64,
    /// The shared roster's leader of this topic, as last heard.
    authority: Option<Authority>,
}

impl TopicRoster {
    fn count_key(&mut self, key: &Arc<str>) {
        let count = self.key_counts.entry(key.clone()).or_insert(0);
        *count += 1;
        if *count == 2 {
            self.shared_keys += 1;
        }
    }

    fn uncount_key(&mut self, key: &Arc<str>) {
        if let Some(count) = self.key_counts.get_mut(key) {
            *count -= 1;
            match *count {
                0 => {
                    self.key_counts.remove(key);
                }
                1 => self.shared_keys -= 1,
                _ => {}
            }
        }
    }

    fn forget_closing(&mut self, tab: &Arc<str>, id: EntryId) {
        if let Some(ids) = self.closing_tabs.get_mut(tab) {
            ids.retain(|closing| *closing != id);
            if ids.is_empty() {
                self.closing_tabs.remove(tab);
            }
        }
    }

    fn entry_mut(&mut self, id: EntryId) -> Option<&mut Entry> {
        let seq = *self.seq_of.get(&id)?;
        self.by_seq.get_mut(&(seq, id)).map(|entry| &mut **entry)
    }

    fn seq_taken(&self, seq: u64) -> bool {
        self.by_seq.range((seq, EntryId(0))..=(seq, EntryId(u64::MAX))).next().is_some()
    }
}

/// The tracker owns `phx_ref`, `phx_ref_prev` and `seq`: values an application supplied under those names are dropped.
pub(crate) fn without_reserved_keys(mut fields: Arc<Meta>) -> Arc<Meta> {
    if RESERVED_META_KEYS.iter().any(|key| fields.contains_key(key)) {
        let fields = Arc::make_mut(&mut fields);
        for key in RESERVED_META_KEYS {
            fields.remove(key);
        }
    }
    fields
}

/// Every topic's roster, plus the counters that name entries and refs.
#[derive(Debug)]
pub struct PresenceState {
    topics: HashMap<Arc<str>, TopicRoster>,
    /// Prefix making refs unique across trackers (nodes); the counter makes them unique within one.
    ref_prefix: String,
    next_ref: u64,
    next_entry: u64,
    next_close: u64,
    /// Own entries whose join a shared roster is numbering right now, by member id, with their topic and everything
    /// but their place. The join's reply inserts them, but the roster's event (or a reload) announcing them can be
    /// applied first; it then inserts them itself (see [`super::replica`]).
    joining: HashMap<Arc<str>, (Arc<str>, Insert)>,
}

impl PresenceState {
    /// An empty state whose refs start with `ref_prefix` (unique per node).
    pub fn new(ref_prefix: impl Into<String>) -> Self {
        PresenceState {
            topics: HashMap::new(),
            ref_prefix: ref_prefix.into(),
            next_ref: 0,
            next_entry: 0,
            next_close: 0,
            joining: HashMap::new(),
        }
    }

    fn new_ref(&mut self) -> Arc<str> {
        self.next_ref += 1;
        Arc::from(format!("{}{:x}", self.ref_prefix, self.next_ref))
    }

    /// Adds an entry, or reclaims the lingering entry of the same tab (same sequence number, new key and meta).
    pub fn join(&mut self, topic: &str, mut request: JoinRequest) -> Joined {
        request.fields = without_reserved_keys(request.fields);
        let phx_ref = self.new_ref();
        if !self.topics.contains_key(topic) {
            self.topics.insert(Arc::from(topic), TopicRoster { next_seq: 1, ..TopicRoster::default() });
        }
        let roster = self.topics.get_mut(topic).expect("inserted above");

        let reclaimable = request.tab_id.as_ref().and_then(|tab| roster.closing_tabs.get(tab)?.last().copied());
        if let (Some(id), Some(tab)) = (reclaimable, &request.tab_id) {
            roster.forget_closing(tab, id);
        }
        if let Some((old_key, id)) = reclaimable.and_then(|id| Some((roster.entry_mut(id)?.key.clone(), id))) {
            roster.uncount_key(&old_key);
            roster.count_key(&request.key);
            let entry = roster.entry_mut(id).expect("seq_of and by_seq agree");
            let old = (entry.key.clone(), entry.meta.clone());
            let same_key = entry.key == request.key;
            entry.key = request.key;
            entry.eligible = request.eligible;
            entry.closing = None;
            entry.meta = Arc::new(PresenceMeta {
                phx_ref,
                phx_ref_prev: same_key.then(|| old.1.phx_ref.clone()),
                seq: entry.meta.seq,
                fields: request.fields,
            });
            let change = RosterChange { joins: vec![(entry.key.clone(), entry.meta.clone())], leaves: vec![old] };
            return Joined { id: entry.id, reclaimed: true, change };
        }

        let seq = match request.seq {
            Some(seq) if !roster.seq_taken(seq) => seq,
            _ => roster.next_seq,
        };
        roster.next_seq = roster.next_seq.max(seq + 1);
        self.next_entry += 1;
        let id = EntryId(self.next_entry);
        let meta = Arc::new(PresenceMeta { phx_ref, phx_ref_prev: None, seq, fields: request.fields });
        let entry = Entry {
            id,
            key: request.key,
            meta,
            eligible: request.eligible,
            tab_id: request.tab_id,
            closing: None,
            member: None,
            remote: false,
            ver: 0,
            place_ver: 0,
            stale: false,
        };
        let change = RosterChange { joins: vec![(entry.key.clone(), entry.meta.clone())], leaves: Vec::new() };
        roster.count_key(&entry.key);
        roster.seq_of.insert(id, seq);
        roster.by_seq.insert((seq, id), Box::new(entry));
        Joined { id, reclaimed: false, change }
    }

    /// Replaces an entry's metadata: a new `phx_ref`, `phx_ref_prev` naming the old one, same place in the order.
    ///
    /// # Errors
    /// [`NotTracked`] if the entry is gone.
    pub fn update(&mut self, topic: &str, id: EntryId, fields: Arc<Meta>) -> Result<RosterChange, NotTracked> {
        let fields = without_reserved_keys(fields);
        let phx_ref = self.new_ref();
        let entry = self.topics.get_mut(topic).and_then(|roster| roster.entry_mut(id)).ok_or(NotTracked)?;
        let old = entry.meta.clone();
        entry.meta = Arc::new(PresenceMeta { phx_ref, phx_ref_prev: Some(old.phx_ref.clone()), seq: old.seq, fields });
        Ok(RosterChange {
            joins: vec![(entry.key.clone(), entry.meta.clone())],
            leaves: vec![(entry.key.clone(), old)],
        })
    }

    /// Removes an entry now. Removing an absent entry changes nothing.
    pub fn leave(&mut self, topic: &str, id: EntryId) -> RosterChange {
        let Some(roster) = self.topics.get_mut(topic) else { return RosterChange::default() };
        let Some(seq) = roster.seq_of.remove(&id) else { return RosterChange::default() };
        let entry = roster.by_seq.remove(&(seq, id)).expect("seq_of and by_seq agree");
        roster.uncount_key(&entry.key);
        if let Some(member) = &entry.member {
            roster.members.remove(member);
        }
        if let (Some(tab), Some(_)) = (&entry.tab_id, entry.closing) {
            roster.forget_closing(tab, id);
        }
        if roster.by_seq.is_empty() {
            self.topics.remove(topic);
        }
        RosterChange { joins: Vec::new(), leaves: vec![(entry.key, entry.meta)] }
    }

    /// Marks an entry as lingering: still listed, reclaimable by its tab, removed by [`PresenceState::expire`] with
    /// the returned token. `None` if the entry is gone.
    pub fn close(&mut self, topic: &str, id: EntryId) -> Option<CloseToken> {
        self.next_close += 1;
        let token = CloseToken(self.next_close);
        let roster = self.topics.get_mut(topic)?;
        let entry = roster.entry_mut(id)?;
        let was_closing = entry.closing.replace(token).is_some();
        if let Some(tab) = entry.tab_id.clone() {
            if was_closing {
                roster.forget_closing(&tab, id);
            }
            roster.closing_tabs.entry(tab).or_default().push(id);
        }
        Some(token)
    }

    /// Removes a lingering entry if it is still lingering from the close that gave `token`.
    pub fn expire(&mut self, topic: &str, id: EntryId, token: CloseToken) -> RosterChange {
        let still_closing = self.entry(topic, id).is_some_and(|entry| entry.closing == Some(token));
        if still_closing { self.leave(topic, id) } else { RosterChange::default() }
    }

    /// Exchanges the places of two entries in the order (both get new refs, as for an update).
    ///
    /// # Errors
    /// [`NotTracked`] if either entry is gone.
    pub fn swap_order(&mut self, topic: &str, first: EntryId, second: EntryId) -> Result<RosterChange, NotTracked> {
        let (ref_a, ref_b) = (self.new_ref(), self.new_ref());
        let roster = self.topics.get_mut(topic).ok_or(NotTracked)?;
        let seq_a = *roster.seq_of.get(&first).ok_or(NotTracked)?;
        let seq_b = *roster.seq_of.get(&second).ok_or(NotTracked)?;
        if seq_a == seq_b {
            return Ok(RosterChange::default());
        }
        let mut a = roster.by_seq.remove(&(seq_a, first)).expect("seq_of and by_seq agree");
        let mut b = roster.by_seq.remove(&(seq_b, second)).expect("seq_of and by_seq agree");
        let mut change = RosterChange::default();
        for (entry, seq, phx_ref) in [(&mut a, seq_b, ref_a), (&mut b, seq_a, ref_b)] {
            // With a shared roster this place is a guess until the roster confirms the swap (its event is newer than
            // `place_ver`) or refuses it (the node reloads the topic, and a reload at or after `place_ver` wins).
            let old = entry.meta.clone();
            entry.meta = Arc::new(PresenceMeta {
                phx_ref,
                phx_ref_prev: Some(old.phx_ref.clone()),
                seq,
                fields: old.fields.clone(),
            });
            change.leaves.push((entry.key.clone(), old));
            change.joins.push((entry.key.clone(), entry.meta.clone()));
        }
        roster.seq_of.insert(first, seq_b);
        roster.seq_of.insert(second, seq_a);
        roster.by_seq.insert((seq_b, first), a);
        roster.by_seq.insert((seq_a, second), b);
        Ok(change)
    }

    /// Phoenix's `list(topic)`.
    pub fn list(&self, topic: &str) -> PresenceList {
        let Some(roster) = self.topics.get(topic) else { return PresenceList::default() };
        let pairs = roster.by_seq.values().map(|entry| (entry.key.clone(), entry.meta.clone()));
        if roster.shared_keys == 0 { PresenceList::from_distinct_pairs(pairs) } else { PresenceList::from_pairs(pairs) }
    }

    /// Phoenix's `get_by_key(topic, key)`.
    pub fn get_by_key(&self, topic: &str, key: &str) -> Option<PresenceEntry> {
        let metas: Vec<Arc<PresenceMeta>> =
            self.entries(topic).filter(|entry| &*entry.key == key).map(|entry| entry.meta.clone()).collect();
        (!metas.is_empty()).then_some(PresenceEntry { metas })
    }

    /// A topic's entries in order (lingering ones included).
    pub fn entries(&self, topic: &str) -> impl Iterator<Item = &Entry> + Clone + '_ {
        self.topics.get(topic).into_iter().flat_map(|roster| roster.by_seq.values().map(|entry| &**entry))
    }

    /// One entry.
    pub fn entry(&self, topic: &str, id: EntryId) -> Option<&Entry> {
        let roster = self.topics.get(topic)?;
        roster.by_seq.get(&(*roster.seq_of.get(&id)?, id)).map(|entry| &**entry)
    }

    /// The entry with presence key `key` that comes first in the order.
    pub fn entry_by_key(&self, topic: &str, key: &str) -> Option<&Entry> {
        self.entries(topic).find(|entry| &*entry.key == key)
    }

    /// Number of entries on a topic.
    pub fn topic_len(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, |roster| roster.by_seq.len())
    }

    /// Number of entries on every topic.
    pub fn entry_count(&self) -> usize {
        self.topics.values().map(|roster| roster.by_seq.len()).sum()
    }

    /// Number of topics with at least one entry.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    // ---- Shared-roster operations: entries numbered (and, if remote, named) by another authority. ----

    /// Reserves an entry id and a `phx_ref` for an entry that a shared roster has still to number
    /// (see [`PresenceState::insert`]).
    pub fn reserve_entry(&mut self) -> (EntryId, Arc<str>) {
        self.next_entry += 1;
        (EntryId(self.next_entry), self.new_ref())
    }

    /// Adds an entry numbered by a shared roster, replacing `insert.replacing` in the same change if it is still there.
    /// A seq already held by another entry is accepted (the replica converges; see `TopicRoster::by_seq`).
    pub fn insert(&mut self, topic: &str, insert: Insert) -> (EntryId, RosterChange) {
        let fields = without_reserved_keys(insert.fields);
        let phx_ref = match insert.phx_ref {
            Some(phx_ref) => phx_ref,
            None => self.new_ref(),
        };
        let id = match insert.id {
            Some(id) => id,
            None => {
                self.next_entry += 1;
                EntryId(self.next_entry)
            }
        };
        let mut change = match insert.replacing {
            Some(old) => self.leave(topic, old),
            None => RosterChange::default(),
        };
        let prev = change.leaves.first().filter(|(key, _)| *key == insert.key).map(|(_, meta)| meta.phx_ref.clone());
        if !self.topics.contains_key(topic) {
            self.topics.insert(Arc::from(topic), TopicRoster { next_seq: 1, ..TopicRoster::default() });
        }
        let roster = self.topics.get_mut(topic).expect("inserted above");
        roster.next_seq = roster.next_seq.max(insert.seq + 1);
        let meta = Arc::new(PresenceMeta { phx_ref, phx_ref_prev: prev, seq: insert.seq, fields });
        let entry = Entry {
            id,
            key: insert.key,
            meta,
            eligible: insert.eligible,
            tab_id: insert.tab_id,
            closing: None,
            member: Some(insert.member.clone()),
            remote: insert.remote,
            ver: insert.ver,
            place_ver: insert.ver,
            stale: false,
        };
        change.joins.push((entry.key.clone(), entry.meta.clone()));
        roster.count_key(&entry.key);
        roster.members.insert(insert.member, id);
        roster.seq_of.insert(id, insert.seq);
        roster.by_seq.insert((insert.seq, id), Box::new(entry));
        (id, change)
    }

    /// Registers an own entry whose join a shared roster is about to number: `insert` has its reserved id and
    /// everything but its place (`seq`, `ver`). Until [`PresenceState::end_join`], a change of the shared roster that
    /// lists the member inserts it (see [`PresenceState::joining`]).
    pub fn begin_join(&mut self, topic: Arc<str>, insert: Insert) {
        self.joining.insert(insert.member.clone(), (topic, insert));
    }

    /// The join of `member` was answered (or abandoned): it is no longer in flight.
    pub fn end_join(&mut self, member: &str) {
        self.joining.remove(member);
    }

    /// The own entry `member` whose join on `topic` is in flight, as registered by [`PresenceState::begin_join`].
    pub fn joining(&self, topic: &str, member: &str) -> Option<&Insert> {
        self.joining.get(member).filter(|(joining_topic, _)| &**joining_topic == topic).map(|(_, insert)| insert)
    }

    /// Whether a join of an own entry on `topic` is in flight.
    pub fn joining_on(&self, topic: &str) -> bool {
        self.joining.values().any(|(joining_topic, _)| &**joining_topic == topic)
    }

    /// The entry with shared roster id `member`.
    pub fn by_member(&self, topic: &str, member: &str) -> Option<&Entry> {
        let roster = self.topics.get(topic)?;
        let id = *roster.members.get(member)?;
        roster.by_seq.get(&(*roster.seq_of.get(&id)?, id)).map(|entry| &**entry)
    }

    /// Replaces an entry's metadata with a version decided elsewhere: `phx_ref` as given (a new local one when `None`),
    /// `phx_ref_prev` naming the ref this replica listed until now.
    ///
    /// # Errors
    /// [`NotTracked`] if the entry is gone.
    pub fn set_meta(
        &mut self,
        topic: &str,
        id: EntryId,
        fields: Arc<Meta>,
        phx_ref: Option<Arc<str>>,
    ) -> Result<RosterChange, NotTracked> {
        let fields = without_reserved_keys(fields);
        let phx_ref = match phx_ref {
            Some(phx_ref) => phx_ref,
            None => self.new_ref(),
        };
        let entry = self.topics.get_mut(topic).and_then(|roster| roster.entry_mut(id)).ok_or(NotTracked)?;
        let old = entry.meta.clone();
        if old.phx_ref == phx_ref && old.fields == fields {
            return Ok(RosterChange::default());
        }
        entry.meta = Arc::new(PresenceMeta { phx_ref, phx_ref_prev: Some(old.phx_ref.clone()), seq: old.seq, fields });
        Ok(RosterChange {
            joins: vec![(entry.key.clone(), entry.meta.clone())],
            leaves: vec![(entry.key.clone(), old)],
        })
    }

    /// Moves entries to new places in the order (a shared roster's reorder); each moved entry gets a new local
    /// `phx_ref`, as for a swap. Entries already in place, or gone, are skipped.
    pub fn move_to(&mut self, topic: &str, moves: &[(EntryId, u64)]) -> RosterChange {
        let mut change = RosterChange::default();
        for &(id, seq) in moves {
            let Some(current) = self.topics.get(topic).and_then(|roster| roster.seq_of.get(&id).copied()) else {
                continue;
            };
            if current == seq {
                continue;
            }
            let phx_ref = self.new_ref();
            let roster = self.topics.get_mut(topic).expect("checked above");
            let mut entry = roster.by_seq.remove(&(current, id)).expect("seq_of and by_seq agree");
            let old = entry.meta.clone();
            entry.meta = Arc::new(PresenceMeta {
                phx_ref,
                phx_ref_prev: Some(old.phx_ref.clone()),
                seq,
                fields: old.fields.clone(),
            });
            change.leaves.push((entry.key.clone(), old));
            change.joins.push((entry.key.clone(), entry.meta.clone()));
            roster.next_seq = roster.next_seq.max(seq + 1);
            roster.seq_of.insert(id, seq);
            roster.by_seq.insert((seq, id), entry);
        }
        change
    }

    /// Bookkeeping fields of one entry (`ver`, `stale`, `closing`); not its key, meta or place, which only the
    /// operations above may change.
    pub(crate) fn entry_mut(&mut self, topic: &str, id: EntryId) -> Option<&mut Entry> {
        self.topics.get_mut(topic)?.entry_mut(id)
    }

    /// The topics with at least one entry.
    pub fn topic_names(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.topics.keys()
    }

    /// The shared roster's version of `topic` this replica has applied; `None` when the topic has no entries here.
    pub fn topic_ver(&self, topic: &str) -> Option<u64> {
        self.topics.get(topic).map(|roster| roster.ver)
    }

    /// Records the shared roster's version of `topic` (ignored when the topic has no entries here).
    pub fn set_topic_ver(&mut self, topic: &str, ver: u64) {
        if let Some(roster) = self.topics.get_mut(topic) {
            roster.ver = ver;
        }
    }

    /// The shared roster's leader of `topic`, as last heard.
    pub fn authority(&self, topic: &str) -> Option<&Authority> {
        self.topics.get(topic)?.authority.as_ref()
    }

    /// Records the shared roster's leader of `topic` (ignored when the topic has no entries here).
    pub fn set_authority(&mut self, topic: &str, authority: Option<Authority>) {
        if let Some(roster) = self.topics.get_mut(topic) {
            roster.authority = authority;
        }
    }

    /// The highest sequence number in use on `topic` (0 when empty).
    pub fn max_seq(&self, topic: &str) -> u64 {
        self.topics.get(topic).and_then(|roster| roster.by_seq.keys().next_back()).map_or(0, |(seq, _)| *seq)
    }
}
