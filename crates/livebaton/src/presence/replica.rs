//! Keeping [`PresenceState`] a faithful replica of a shared roster (Redis): the pure rules, no I/O.
//!
//! With a shared roster every node's state holds its own entries *and* every other node's (Phoenix's tracker also
//! replicates everything to every node), so `list`, the order and the owner are read locally. The shared roster
//! publishes one [`RemoteEvent`] per change of a topic, numbered by a per-topic version that grows by one per event;
//! each node applies them in version order (a gap means messages were lost: reload the topic's [`TopicSnapshot`]).
//!
//! # Who is the truth for what
//!
//! - **Own entries** (tracked on this node): their existence and metadata are this node's truth — it is their only
//!   writer, and changes them locally first, then writes through. Their *place in the order* is the shared roster's:
//!   it numbers joins, and swaps, reclaims and re-asserts move entries. So an event about an own entry may move it but
//!   never changes its meta, and never resurrects an own entry this node already removed. An own entry whose join is
//!   still in flight ([`PresenceState::begin_join`]) is inserted by the first event or reload that lists it, even
//!   before the join's reply: a reclaim is one event (the lingering entry leaves, the new one joins) and must be
//!   applied as one step, as on a single node.
//! - **Remote entries**: entirely the shared roster's; events and snapshots replace them.
//! - A remote removal of an own entry is applied only if the entry was closing (another node's tab reclaimed it). A
//!   live own entry removed remotely (or missing from a reload) means this node was declared dead (its lease
//!   expired): it keeps the entry, marked `stale` (the shared roster does not hold it) until it is re-asserted, and
//!   meanwhile the roster keeps the shared document of the entry's topic ([`dropped_topics`]).
//!
//! Every entry remembers the version of the last change of its metadata (`Entry::ver`) and the version at which its
//! place was last stated (`Entry::place_ver`), so a change heard twice (in a join's reply and again as an event, or
//! an event older than a snapshot) is applied once and never goes backwards. An event moves an entry only if it is
//! newer than the place it has; a read of the whole roster (a snapshot, a join's reply) taken at version `S` moves it
//! if `S` is at least as new, which is what corrects a place this node guessed itself (a swap Redis refused).

use std::collections::HashMap;
use std::sync::Arc;

use super::change::RosterChange;
use super::shapes::Meta;
use super::state::{Authority, EntryId, Insert, PresenceState};

/// An entry as the shared roster describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteEntry {
    /// Its id in the shared roster (`<node id>#<n>`).
    pub member: Arc<str>,
    /// Presence key.
    pub key: Arc<str>,
    /// The `phx_ref` its node gave it.
    pub phx_ref: Arc<str>,
    /// Application metadata.
    pub fields: Arc<Meta>,
    /// Whether it may lead the topic.
    pub eligible: bool,
    /// Place in the topic's order.
    pub seq: u64,
    /// Version of the topic at the entry's last change.
    pub ver: u64,
}

/// One change of one topic in the shared roster.
#[derive(Clone, Debug, PartialEq)]
pub enum RemoteOp {
    /// An entry joined (or was re-asserted): insert it, or bring it up to date.
    Upsert(RemoteEntry),
    /// An entry left.
    Leave {
        /// Its id.
        member: Arc<str>,
    },
    /// An entry's metadata changed.
    Update {
        /// Its id.
        member: Arc<str>,
        /// Its new `phx_ref`.
        phx_ref: Arc<str>,
        /// Its new metadata.
        fields: Arc<Meta>,
        /// The topic's version at this change.
        ver: u64,
    },
    /// An entry moved in the order (a swap).
    Move {
        /// Its id.
        member: Arc<str>,
        /// Its new place.
        seq: u64,
        /// The topic's version at this change.
        ver: u64,
    },
}

/// What the shared roster publishes after each change of a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteEvent {
    /// The topic.
    pub topic: Arc<str>,
    /// The topic's version after the change: exactly one more than before.
    pub ver: u64,
    /// The topic had no entries before this change.
    pub first: bool,
    /// What changed, in order.
    pub ops: Vec<RemoteOp>,
    /// The topic's leader after the change.
    pub authority: Authority,
}

/// A topic as the shared roster holds it at one version.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSnapshot {
    /// The topic.
    pub topic: Arc<str>,
    /// Its version.
    pub ver: u64,
    /// Every entry.
    pub entries: Vec<RemoteEntry>,
    /// Its leader (`None` once the dataset had no generation).
    pub authority: Option<Authority>,
}

/// The shared roster's answer to this node's join.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinOutcome {
    /// The new entry's place.
    pub seq: u64,
    /// The topic's version after the join.
    pub ver: u64,
    /// The lingering entry the join reclaimed (same tab, possibly tracked on another node), whose place it took.
    pub reclaimed: Option<Arc<str>>,
    /// What the joiner must see that its replica may not have yet: every entry changed since the version the joiner
    /// said it had (all entries when it had none). Applying these before the new entry means no node can believe it is
    /// first while an earlier entry exists.
    pub earlier: Vec<RemoteEntry>,
    /// The topic's leader after the join.
    pub authority: Authority,
}

/// The outcome of applying an event.
#[derive(Debug)]
pub enum Applied {
    /// Applied (possibly changing nothing visible, for example a duplicate).
    Changed(RosterChange),
    /// Versions are missing before this event: reload the topic from the shared roster.
    Gap,
}

/// One of this node's entries, as it must be in the shared roster (for re-asserting it).
#[derive(Clone, Debug)]
pub struct OwnEntry {
    /// The topic.
    pub topic: Arc<str>,
    /// Its id in the shared roster.
    pub member: Arc<str>,
    /// Presence key.
    pub key: Arc<str>,
    /// Current `phx_ref`.
    pub phx_ref: Arc<str>,
    /// Current metadata.
    pub fields: Arc<Meta>,
    /// Whether it may lead the topic.
    pub eligible: bool,
    /// Place in the order as this node knows it.
    pub seq: u64,
    /// Reclaim identity.
    pub tab: Option<Arc<str>>,
    /// Lingering after its page closed.
    pub closing: bool,
}

/// Whether `member` is one of this node's (`own` is `"<node id>#"`).
pub fn is_own(member: &str, own: &str) -> bool {
    member.starts_with(own)
}

/// Applies an event of the shared roster, in version order.
pub fn apply_event(state: &mut PresenceState, own: &str, event: &RemoteEvent) -> Applied {
    let topic = &*event.topic;
    match state.topic_ver(topic) {
        None if !event.first => {
            // This replica has nothing of the topic: fine for leaves, updates and moves (of entries it does not have),
            // but a join of a topic that already had entries needs the rest of it. So does any change while this
            // node's own join on the topic is in flight: the join's answer lists the topic as it was when Redis
            // numbered the join, which may be older than this change (an entry it lists may have left since), and
            // only a replica that knows the topic's version can tell (see `apply_own_join`).
            if state.joining_on(topic)
                || event.ops.iter().any(|op| matches!(op, RemoteOp::Upsert(entry) if !is_own(&entry.member, own)))
            {
                return Applied::Gap;
            }
            return Applied::Changed(RosterChange::default());
        }
        None => {}
        Some(ver) if event.ver <= ver => return Applied::Changed(RosterChange::default()),
        Some(ver) if event.ver > ver + 1 => return Applied::Gap,
        Some(_) => {}
    }
    let mut change = RosterChange::default();
    for op in &event.ops {
        change.merge(apply_op(state, topic, own, op));
    }
    state.set_topic_ver(topic, event.ver);
    state.set_authority(topic, Some(event.authority.clone()));
    Applied::Changed(change)
}

fn apply_op(state: &mut PresenceState, topic: &str, own: &str, op: &RemoteOp) -> RosterChange {
    match op {
        RemoteOp::Upsert(entry) => upsert(state, topic, own, entry, None),
        RemoteOp::Leave { member } => {
            let Some(entry) = state.by_member(topic, member) else { return RosterChange::default() };
            if !entry.remote && entry.closing.is_none() {
                // A live own entry removed by another node: this node was taken for dead. It re-asserts its entries
                // (the shared roster tells it so); its pages are alive, so they stay listed here meanwhile.
                let id = entry.id;
                if let Some(entry) = state.entry_mut(topic, id) {
                    entry.stale = true;
                }
                return RosterChange::default();
            }
            let id = entry.id;
            state.leave(topic, id)
        }
        RemoteOp::Update { member, phx_ref, fields, ver } => {
            let Some(entry) = state.by_member(topic, member) else { return RosterChange::default() };
            if !entry.remote || entry.ver >= *ver {
                return RosterChange::default();
            }
            let id = entry.id;
            let change = state.set_meta(topic, id, fields.clone(), Some(phx_ref.clone())).unwrap_or_default();
            if let Some(entry) = state.entry_mut(topic, id) {
                entry.ver = *ver;
            }
            change
        }
        RemoteOp::Move { member, seq, ver } => {
            let Some(entry) = state.by_member(topic, member) else { return RosterChange::default() };
            if entry.place_ver >= *ver {
                return RosterChange::default();
            }
            let id = entry.id;
            let change = state.move_to(topic, &[(id, *seq)]);
            if let Some(entry) = state.entry_mut(topic, id) {
                entry.place_ver = *ver;
            }
            change
        }
    }
}

/// Inserts a remote entry or brings an existing entry up to date (an own entry only moves). `read_at` is `None` for
/// an event (the entry's version is when it was stated), or the version of the whole-roster read it comes from (a
/// snapshot, a join's reply), whose statement of the place wins over any place not newer than it.
fn upsert(
    state: &mut PresenceState,
    topic: &str,
    own: &str,
    remote: &RemoteEntry,
    read_at: Option<u64>,
) -> RosterChange {
    let Some(entry) = state.by_member(topic, &remote.member) else {
        let insert = if is_own(&remote.member, own) {
            // Left here already (nothing to do), or joining right now: the shared roster announced the join before
            // its reply came back. Insert it now, as the reply would. Skipping it would break a reclaim in two: its
            // event removes the lingering entry in the same step, and the topic would look empty in between (to the
            // layers above, everyone left) although the tab is back.
            let Some(joining) = state.joining(topic, &remote.member) else { return RosterChange::default() };
            Insert { seq: remote.seq, ver: remote.ver, replacing: None, ..joining.clone() }
        } else {
            Insert {
                id: None,
                key: remote.key.clone(),
                fields: remote.fields.clone(),
                eligible: remote.eligible,
                phx_ref: Some(remote.phx_ref.clone()),
                seq: remote.seq,
                tab_id: None,
                member: remote.member.clone(),
                remote: true,
                ver: remote.ver,
                replacing: None,
            }
        };
        let (id, change) = state.insert(topic, insert);
        if let (Some(read_at), Some(entry)) = (read_at, state.entry_mut(topic, id)) {
            entry.place_ver = entry.place_ver.max(read_at);
        }
        return change;
    };
    let (id, is_remote, seq) = (entry.id, entry.remote, entry.meta.seq);
    let newer_meta = remote.ver > entry.ver;
    let (newer_place, place_ver) = match read_at {
        None => (remote.ver > entry.place_ver, remote.ver),
        Some(read_at) => (read_at >= entry.place_ver, read_at),
    };
    let mut change = RosterChange::default();
    if newer_place && seq != remote.seq {
        change.merge(state.move_to(topic, &[(id, remote.seq)]));
    }
    if is_remote && newer_meta {
        change
            .merge(state.set_meta(topic, id, remote.fields.clone(), Some(remote.phx_ref.clone())).unwrap_or_default());
    }
    if let Some(entry) = state.entry_mut(topic, id) {
        if is_remote && newer_meta {
            entry.eligible = remote.eligible;
        }
        entry.ver = entry.ver.max(remote.ver);
        if newer_place {
            entry.place_ver = entry.place_ver.max(place_ver);
        }
        entry.stale = false;
    }
    change
}

/// Replaces what this replica holds of a topic with a snapshot, keeping own entries (only their places are taken
/// from the snapshot) and anything this replica learned after the snapshot was taken. With `drop_stale` false, remote
/// entries marked stale (waiting to be re-asserted after the shared roster was lost) are kept even if absent.
pub fn apply_snapshot(
    state: &mut PresenceState,
    own: &str,
    snapshot: &TopicSnapshot,
    drop_stale: bool,
) -> RosterChange {
    let topic = &*snapshot.topic;
    let listed: HashMap<&str, &RemoteEntry> = snapshot.entries.iter().map(|entry| (&*entry.member, entry)).collect();
    let gone: Vec<EntryId> = state
        .entries(topic)
        .filter(|entry| {
            entry.remote
                && entry.member.as_deref().is_none_or(|member| !listed.contains_key(member))
                && (drop_stale || !entry.stale)
                && (entry.ver.max(entry.place_ver) <= snapshot.ver || entry.stale)
        })
        .map(|entry| entry.id)
        .collect();
    // Live own entries the shared roster no longer holds (though it held them when this replica last heard of them):
    // this node was declared dead, and re-asserts them.
    let dropped: Vec<EntryId> = state
        .entries(topic)
        .filter(|entry| {
            !entry.remote
                && entry.closing.is_none()
                && entry.member.as_deref().is_some_and(|member| !listed.contains_key(member))
                && entry.ver.max(entry.place_ver) <= snapshot.ver
        })
        .map(|entry| entry.id)
        .collect();
    for id in dropped {
        if let Some(entry) = state.entry_mut(topic, id) {
            entry.stale = true;
        }
    }
    let mut change = RosterChange::default();
    for id in gone {
        change.merge(state.leave(topic, id));
    }
    let mut entries: Vec<&RemoteEntry> = snapshot.entries.iter().collect();
    entries.sort_by_key(|entry| entry.seq);
    for entry in entries {
        change.merge(upsert(state, topic, own, entry, Some(snapshot.ver)));
    }
    // The snapshot's version is the truth, even if this replica had got further (a join's reply applied meanwhile):
    // events after it are applied again, which the per-entry versions make harmless.
    state.set_topic_ver(topic, snapshot.ver);
    state.set_authority(topic, snapshot.authority.clone());
    change
}

/// What this node's join brings into its replica: the entries its reply says it must see, then the entry itself
/// (taking the place of the entry it reclaimed, if any).
pub struct OwnJoin<'a> {
    /// The id reserved for the entry.
    pub id: EntryId,
    /// Presence key.
    pub key: Arc<str>,
    /// Metadata.
    pub fields: Arc<Meta>,
    /// Whether it may lead the topic.
    pub eligible: bool,
    /// The `phx_ref` reserved for it.
    pub phx_ref: Arc<str>,
    /// Reclaim identity.
    pub tab_id: Option<Arc<str>>,
    /// Its id in the shared roster.
    pub member: Arc<str>,
    /// The shared roster's answer.
    pub outcome: &'a JoinOutcome,
}

/// Applies this node's join once the shared roster numbered it, and ends its registration as a join in flight
/// ([`PresenceState::begin_join`]).
pub fn apply_own_join(state: &mut PresenceState, own: &str, topic: &str, join: OwnJoin<'_>) -> RosterChange {
    state.end_join(&join.member);
    let known = state.topic_ver(topic);
    let mut change = RosterChange::default();
    // The answer lists the topic as of the join's version. A replica that is already there or further (it applied
    // later events, or reloaded the topic, before the answer was applied) knows better: an entry the answer lists
    // may have left since, and inserting it again would leave a ghost that no later event removes.
    if known.is_none_or(|ver| ver < join.outcome.ver) {
        for entry in &join.outcome.earlier {
            change.merge(upsert(state, topic, own, entry, Some(join.outcome.ver)));
        }
    }
    let replacing = join.outcome.reclaimed.as_ref().and_then(|member| state.by_member(topic, member)).map(|e| e.id);
    if state.by_member(topic, &join.member).is_some() {
        // Inserted already by the event or reload that announced the join; it stated the place at this reply's
        // version or later. A reload keeps own entries, so a reclaimed own entry may still be here.
        if let Some(old) = replacing {
            change.merge(state.leave(topic, old));
        }
        return change;
    }
    let insert = Insert {
        id: Some(join.id),
        key: join.key,
        fields: join.fields,
        eligible: join.eligible,
        phx_ref: Some(join.phx_ref),
        seq: join.outcome.seq,
        tab_id: join.tab_id,
        member: join.member,
        remote: false,
        ver: join.outcome.ver,
        replacing,
    };
    change.merge(state.insert(topic, insert).1);
    // If the topic was new here, the reply listed all of it, so the replica is complete at the join's version.
    // Otherwise the events up to the join's version are on their way and bring the version and leader in order.
    if known.is_none() {
        state.set_topic_ver(topic, join.outcome.ver);
        state.set_authority(topic, Some(join.outcome.authority.clone()));
    }
    change
}

/// The shared roster was lost (Redis restarted or flushed): versions start again, leaders are unknown until heard
/// again, and remote entries stay listed but stale until their nodes re-assert them (or the grace ends). Nothing
/// visible changes, so no member sees an owner change because of the outage itself.
pub fn begin_reset(state: &mut PresenceState) {
    let topics: Vec<Arc<str>> = state.topic_names().cloned().collect();
    for topic in topics {
        state.set_topic_ver(&topic, 0);
        state.set_authority(&topic, None);
        let ids: Vec<EntryId> = state.entries(&topic).map(|entry| entry.id).collect();
        for id in ids {
            if let Some(entry) = state.entry_mut(&topic, id) {
                entry.ver = 0;
                entry.place_ver = 0;
                entry.stale = entry.remote;
            }
        }
    }
}

/// The topics where this node has live entries the shared roster dropped (this node was declared dead while its
/// pages stayed): those topics go on here, so their shared documents are kept until the entries are re-asserted.
pub fn dropped_topics(state: &PresenceState) -> Vec<Arc<str>> {
    state.topic_names().filter(|topic| holds_dropped(state, topic)).cloned().collect()
}

/// Whether this node has live entries in `topic` that the shared roster dropped (see [`dropped_topics`]).
pub fn holds_dropped(state: &PresenceState, topic: &str) -> bool {
    state.entries(topic).any(|entry| !entry.remote && entry.stale && entry.closing.is_none())
}

/// This node's entries, as they must be in the shared roster.
pub fn own_entries(state: &PresenceState) -> Vec<OwnEntry> {
    let mut own = Vec::new();
    for topic in state.topic_names() {
        for entry in state.entries(topic) {
            if entry.remote {
                continue;
            }
            let Some(member) = &entry.member else { continue };
            own.push(OwnEntry {
                topic: topic.clone(),
                member: member.clone(),
                key: entry.key.clone(),
                phx_ref: entry.meta.phx_ref.clone(),
                fields: entry.meta.fields.clone(),
                eligible: entry.eligible,
                seq: entry.meta.seq,
                tab: entry.tab_id.clone(),
                closing: entry.closing.is_some(),
            });
        }
    }
    own
}
