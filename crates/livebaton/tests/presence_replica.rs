//! The replica rules of a shared roster ([`livebaton::testing::presence_core::replica`]), without Redis: deterministic cases for
//! each rule, and a property test against a model of the Redis roster (one order of execution, one event per change
//! numbered by a per-topic version) with several replicas that apply their own changes at once and receive the events
//! late, in any interleaving. Every replica must end up equal to the model, and no joiner may ever miss an entry that
//! joined before it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use livebaton::presence::{Authority, Meta};
use livebaton::testing::presence_core::replica::{
    self, Applied, JoinOutcome, OwnJoin, RemoteEntry, RemoteEvent, RemoteOp, TopicSnapshot,
};
use livebaton::testing::presence_core::{EntryId, Insert, PresenceState};
use proptest::prelude::*;

const TOPIC: &str = "data_edit:1";

fn fields(n: u64) -> Arc<Meta> {
    let mut meta = Meta::new();
    meta.insert("n".into(), serde_json::json!(n));
    Arc::new(meta)
}

fn authority(member: Option<&str>, fence: u64) -> Authority {
    Authority { generation: Arc::from("g1"), member: member.map(Arc::from), fence }
}

fn remote(member: &str, seq: u64, ver: u64) -> RemoteEntry {
    RemoteEntry {
        member: Arc::from(member),
        key: Arc::from(member),
        phx_ref: Arc::from(format!("ref-{member}-{ver}")),
        fields: fields(ver),
        eligible: false,
        seq,
        ver,
    }
}

fn event(ver: u64, first: bool, ops: Vec<RemoteOp>) -> RemoteEvent {
    RemoteEvent { topic: Arc::from(TOPIC), ver, first, ops, authority: authority(None, 0) }
}

fn members(state: &PresenceState) -> Vec<(String, u64)> {
    state.entries(TOPIC).map(|entry| (entry.member.as_deref().unwrap_or("?").to_owned(), entry.meta.seq)).collect()
}

fn changed(applied: Applied) -> livebaton::testing::presence_core::RosterChange {
    match applied {
        Applied::Changed(change) => change,
        Applied::Gap => panic!("unexpected gap"),
    }
}

/// Joins an own entry the way the tracker does once the shared roster answered.
fn own_join(state: &mut PresenceState, own: &str, n: u64, outcome: &JoinOutcome) -> (EntryId, Arc<str>) {
    let (id, phx_ref) = state.reserve_entry();
    let member: Arc<str> = Arc::from(format!("{own}{n}"));
    let join = OwnJoin {
        id,
        key: member.clone(),
        fields: fields(n),
        eligible: false,
        phx_ref,
        tab_id: None,
        member: member.clone(),
        outcome,
    };
    replica::apply_own_join(state, own, TOPIC, join);
    (id, member)
}

#[test]
fn events_apply_in_version_order_once_and_a_gap_is_reported() {
    let mut state = PresenceState::new("r");
    let first = event(1, true, vec![RemoteOp::Upsert(remote("b#1", 1, 1))]);
    assert!(!changed(replica::apply_event(&mut state, "a#", &first)).is_empty());
    assert!(changed(replica::apply_event(&mut state, "a#", &first)).is_empty(), "a replay changes nothing");
    // Version 2 empties the topic, so in the roster version 3 is its first join again.
    let third = event(3, true, vec![RemoteOp::Upsert(remote("b#2", 2, 3))]);
    assert!(matches!(replica::apply_event(&mut state, "a#", &third), Applied::Gap), "version 2 is missing");
    let second = event(2, false, vec![RemoteOp::Leave { member: Arc::from("b#1") }]);
    changed(replica::apply_event(&mut state, "a#", &second));
    changed(replica::apply_event(&mut state, "a#", &third));
    assert_eq!(members(&state), [("b#2".to_owned(), 2)]);
    assert_eq!(state.topic_ver(TOPIC), Some(3));
}

#[test]
fn an_unknown_topic_needs_its_first_event_or_a_snapshot() {
    let mut state = PresenceState::new("r");
    let join = event(7, false, vec![RemoteOp::Upsert(remote("b#1", 4, 7))]);
    assert!(matches!(replica::apply_event(&mut state, "a#", &join), Applied::Gap), "the rest of the topic is unknown");
    let leave = event(8, false, vec![RemoteOp::Leave { member: Arc::from("b#9") }]);
    assert!(changed(replica::apply_event(&mut state, "a#", &leave)).is_empty(), "nothing to remove here");
    let snapshot = TopicSnapshot {
        topic: Arc::from(TOPIC),
        ver: 8,
        entries: vec![remote("b#1", 4, 7)],
        authority: Some(authority(Some("b#1"), 3)),
    };
    replica::apply_snapshot(&mut state, "a#", &snapshot, false);
    assert_eq!(members(&state), [("b#1".to_owned(), 4)]);
    assert_eq!(state.authority(TOPIC), Some(&authority(Some("b#1"), 3)));
    assert!(changed(replica::apply_event(&mut state, "a#", &join)).is_empty(), "older than the snapshot");
}

#[test]
fn own_entries_keep_their_meta_move_with_the_roster_and_never_come_back() {
    let mut state = PresenceState::new("r");
    let outcome =
        JoinOutcome { seq: 1, ver: 1, reclaimed: None, earlier: vec![], authority: authority(Some("a#1"), 1) };
    let (id, member) = own_join(&mut state, "a#", 1, &outcome);
    let mine = state.entry(TOPIC, id).unwrap().meta.clone();
    // Another node's stale idea of this entry's meta does not overwrite it.
    let foreign = RemoteOp::Update { member: member.clone(), phx_ref: Arc::from("x"), fields: fields(99), ver: 2 };
    changed(replica::apply_event(&mut state, "a#", &event(2, false, vec![foreign])));
    assert_eq!(state.entry(TOPIC, id).unwrap().meta.fields, mine.fields);
    // The roster's order does move it.
    let moved = RemoteOp::Move { member: member.clone(), seq: 5, ver: 3 };
    changed(replica::apply_event(&mut state, "a#", &event(3, false, vec![moved])));
    assert_eq!(state.entry(TOPIC, id).unwrap().meta.seq, 5);
    // A live own entry removed by another node (this node was taken for dead) stays: it will be re-asserted.
    let reaped = RemoteOp::Leave { member: member.clone() };
    changed(replica::apply_event(&mut state, "a#", &event(4, false, vec![reaped.clone()])));
    assert!(state.entry(TOPIC, id).is_some());
    // A closing one (reclaimed by a tab on another node) goes.
    state.close(TOPIC, id).unwrap();
    changed(replica::apply_event(&mut state, "a#", &event(5, false, vec![reaped])));
    assert!(state.entry(TOPIC, id).is_none());
    // Its join heard late does not bring it back.
    let late = RemoteOp::Upsert(RemoteEntry { member: member.clone(), ..remote("a#1", 5, 6) });
    changed(replica::apply_event(&mut state, "a#", &event(6, false, vec![late])));
    assert!(state.by_member(TOPIC, &member).is_none());
}

#[test]
fn an_older_change_never_overwrites_a_newer_one() {
    let mut state = PresenceState::new("r");
    changed(replica::apply_event(&mut state, "a#", &event(1, true, vec![RemoteOp::Upsert(remote("b#1", 1, 1))])));
    // A join reply brought version 5 of the entry early.
    let outcome = JoinOutcome {
        seq: 6,
        ver: 6,
        reclaimed: None,
        earlier: vec![remote("b#1", 1, 5)],
        authority: authority(None, 0),
    };
    own_join(&mut state, "a#", 1, &outcome);
    assert_eq!(state.by_member(TOPIC, "b#1").unwrap().meta.fields, fields(5));
    // The events of versions 2..=6 arrive afterwards; version 3 is older than what the replica has.
    let older = RemoteOp::Update { member: Arc::from("b#1"), phx_ref: Arc::from("old"), fields: fields(3), ver: 3 };
    changed(replica::apply_event(&mut state, "a#", &event(2, false, vec![])));
    changed(replica::apply_event(&mut state, "a#", &event(3, false, vec![older])));
    assert_eq!(state.by_member(TOPIC, "b#1").unwrap().meta.fields, fields(5), "not overwritten by version 3");
}

#[test]
fn a_snapshot_replaces_remote_entries_and_keeps_own_and_stale_ones() {
    let mut state = PresenceState::new("r");
    let ops = vec![RemoteOp::Upsert(remote("b#1", 1, 1)), RemoteOp::Upsert(remote("c#1", 2, 1))];
    changed(replica::apply_event(&mut state, "a#", &event(1, true, ops)));
    let outcome = JoinOutcome { seq: 3, ver: 2, reclaimed: None, earlier: vec![], authority: authority(None, 0) };
    own_join(&mut state, "a#", 1, &outcome);
    // Redis lost its data: nothing visible changes, remote entries wait to be re-asserted.
    let before = members(&state);
    replica::begin_reset(&mut state);
    assert_eq!(members(&state), before);
    assert_eq!(state.topic_ver(TOPIC), Some(0));
    // B re-asserted its entry, C did not (yet); the own entry is not in Redis yet either.
    let snapshot =
        TopicSnapshot { topic: Arc::from(TOPIC), ver: 1, entries: vec![remote("b#1", 1, 1)], authority: None };
    replica::apply_snapshot(&mut state, "a#", &snapshot, false);
    assert_eq!(members(&state), before, "during the grace nothing goes");
    replica::apply_snapshot(&mut state, "a#", &snapshot, true);
    assert_eq!(members(&state), [("b#1".to_owned(), 1), ("a#1".to_owned(), 3)], "after it, C's entry goes");
}

#[test]
fn a_joiner_sees_what_its_reply_says_before_itself() {
    let mut state = PresenceState::new("r");
    changed(replica::apply_event(&mut state, "a#", &event(1, true, vec![RemoteOp::Upsert(remote("b#1", 1, 1))])));
    // C joined (version 2) but its event has not arrived; the reply to A's join (version 3) carries it.
    let outcome = JoinOutcome {
        seq: 3,
        ver: 3,
        reclaimed: None,
        earlier: vec![remote("c#1", 2, 2)],
        authority: authority(Some("b#1"), 1),
    };
    own_join(&mut state, "a#", 1, &outcome);
    assert_eq!(members(&state), [("b#1".to_owned(), 1), ("c#1".to_owned(), 2), ("a#1".to_owned(), 3)]);
    // The events then change nothing.
    let c = event(2, false, vec![RemoteOp::Upsert(remote("c#1", 2, 2))]);
    assert!(changed(replica::apply_event(&mut state, "a#", &c)).is_empty());
    let a = event(3, false, vec![RemoteOp::Upsert(RemoteEntry { member: Arc::from("a#1"), ..remote("a#1", 3, 3) })]);
    assert!(changed(replica::apply_event(&mut state, "a#", &a)).is_empty());
}

/// A reclaim is one event: the lingering entry leaves and the tab's new entry joins. When that event reaches the
/// joining node before the join's own reply, the replica applies it as one step (the new entry takes the old one's
/// place at once, so the topic never looks empty and an editing session never ends), and the reply then changes
/// nothing. The lingering entry may be another node's (the tab reloaded onto this node) or this node's own.
#[test]
fn a_reclaim_heard_before_its_reply_is_applied_as_one_step() {
    for old in ["b#1", "a#1"] {
        let mut state = PresenceState::new("r");
        if old == "b#1" {
            changed(replica::apply_event(&mut state, "a#", &event(1, true, vec![RemoteOp::Upsert(remote(old, 1, 1))])));
        } else {
            let outcome =
                JoinOutcome { seq: 1, ver: 1, reclaimed: None, earlier: vec![], authority: authority(Some(old), 1) };
            let (id, _) = own_join(&mut state, "a#", 1, &outcome);
            state.close(TOPIC, id).unwrap();
        }
        let (id, phx_ref) = state.reserve_entry();
        let member: Arc<str> = Arc::from("a#2");
        let tab: Option<Arc<str>> = Some(Arc::from("user/tab"));
        let joining = Insert {
            id: Some(id),
            key: member.clone(),
            fields: fields(2),
            eligible: false,
            phx_ref: Some(phx_ref.clone()),
            seq: 0,
            tab_id: tab.clone(),
            member: member.clone(),
            remote: false,
            ver: 0,
            replacing: None,
        };
        state.begin_join(Arc::from(TOPIC), joining);
        let reclaim =
            event(2, false, vec![RemoteOp::Leave { member: Arc::from(old) }, RemoteOp::Upsert(remote("a#2", 1, 2))]);
        let change = changed(replica::apply_event(&mut state, "a#", &reclaim));
        assert_eq!(members(&state), [("a#2".to_owned(), 1)], "{old}: the new entry took the place in the same step");
        assert_eq!((change.leaves.len(), change.joins.len()), (1, 1), "{old}");
        let entry = state.entry(TOPIC, id).expect("inserted with its reserved id");
        assert_eq!((&entry.meta.phx_ref, &entry.meta.fields, &entry.tab_id), (&phx_ref, &fields(2), &tab), "{old}");
        assert!(!entry.remote, "{old}: it is this node's own entry");
        let outcome = JoinOutcome {
            seq: 1,
            ver: 2,
            reclaimed: Some(Arc::from(old)),
            earlier: vec![],
            authority: authority(Some("a#2"), 2),
        };
        let join = OwnJoin {
            id,
            key: member.clone(),
            fields: fields(2),
            eligible: false,
            phx_ref,
            tab_id: tab,
            member,
            outcome: &outcome,
        };
        assert!(replica::apply_own_join(&mut state, "a#", TOPIC, join).is_empty(), "{old}: the reply changes nothing");
        assert_eq!(members(&state), [("a#2".to_owned(), 1)], "{old}");
        assert!(state.joining(TOPIC, "a#2").is_none(), "{old}: no longer in flight");
    }
}

/// A model of the Redis roster: what the Lua scripts do, in one order.
#[derive(Default)]
struct Model {
    ver: u64,
    seq: u64,
    /// member → (seq, version of its last change, fields)
    members: BTreeMap<String, (u64, u64, u64)>,
    /// Every event, in execution order.
    log: Vec<RemoteEvent>,
}

impl Model {
    fn entry(&self, member: &str) -> RemoteEntry {
        let (seq, ver, n) = self.members[member];
        RemoteEntry { fields: fields(n), ..remote(member, seq, ver) }
    }

    fn publish(&mut self, first: bool, ops: Vec<RemoteOp>) {
        self.log.push(event(self.ver, first, ops));
    }

    fn join(&mut self, member: &str, n: u64, known: u64, own: &str) -> JoinOutcome {
        let first = self.members.is_empty();
        self.seq += 1;
        self.ver += 1;
        self.members.insert(member.to_owned(), (self.seq, self.ver, n));
        let entry = self.entry(member);
        self.publish(first, vec![RemoteOp::Upsert(entry)]);
        let earlier = self
            .members
            .iter()
            .filter(|(m, (_, ver, _))| *ver > known && !m.starts_with(own))
            .map(|(m, _)| self.entry(m))
            .collect();
        JoinOutcome { seq: self.seq, ver: self.ver, reclaimed: None, earlier, authority: authority(None, 0) }
    }

    fn leave(&mut self, member: &str) {
        self.members.remove(member);
        self.ver += 1;
        self.publish(false, vec![RemoteOp::Leave { member: Arc::from(member) }]);
    }

    fn update(&mut self, member: &str, n: u64) {
        if let Some(entry) = self.members.get_mut(member) {
            self.ver += 1;
            *entry = (entry.0, self.ver, n);
            let op = RemoteOp::Update {
                member: Arc::from(member),
                phx_ref: Arc::from(format!("ref-{member}-{n}")),
                fields: fields(n),
                ver: self.ver,
            };
            self.publish(false, vec![op]);
        }
    }

    /// The swap script: applies only if both are still where the caller saw them.
    fn swap(&mut self, a: (&str, u64), b: (&str, u64)) -> bool {
        let seq_of = |m: &str| self.members.get(m).map(|entry| entry.0);
        if seq_of(a.0) != Some(a.1) || seq_of(b.0) != Some(b.1) {
            return false;
        }
        self.ver += 1;
        let ver = self.ver;
        for (member, seq) in [(a.0, b.1), (b.0, a.1)] {
            let entry = self.members.get_mut(member).unwrap();
            *entry = (seq, ver, entry.2);
        }
        let ops = vec![
            RemoteOp::Move { member: Arc::from(a.0), seq: b.1, ver },
            RemoteOp::Move { member: Arc::from(b.0), seq: a.1, ver },
        ];
        self.publish(false, ops);
        true
    }
}

/// One node: its replica, what it has received of the log, its own entries.
struct Node {
    own: String,
    state: PresenceState,
    /// Index of the next event of the log to deliver.
    delivered: usize,
    mine: HashMap<String, EntryId>,
    next: u64,
    resync: VecDeque<()>,
}

impl Node {
    /// Delivers the next event, reloading the topic (as the subscriber does) on a gap.
    fn deliver(&mut self, model: &Model) {
        let event = &model.log[self.delivered];
        self.delivered += 1;
        if let Applied::Gap = replica::apply_event(&mut self.state, &self.own, event) {
            let snapshot = snapshot_at(model, self.delivered);
            replica::apply_snapshot(&mut self.state, &self.own, &snapshot, false);
        }
    }
}

/// The model's roster as it was after the first `upto` events (what a snapshot read then returns).
fn snapshot_at(model: &Model, upto: usize) -> TopicSnapshot {
    // Replay the log into a fresh model: every event is deterministic.
    let mut members: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for event in &model.log[..upto] {
        for op in &event.ops {
            match op {
                RemoteOp::Upsert(entry) => {
                    let n = entry.fields["n"].as_u64().unwrap();
                    members.insert(entry.member.to_string(), (entry.seq, entry.ver, n));
                }
                RemoteOp::Leave { member } => {
                    members.remove(&**member);
                }
                RemoteOp::Update { member, fields, ver, .. } => {
                    if let Some(entry) = members.get_mut(&**member) {
                        *entry = (entry.0, *ver, fields["n"].as_u64().unwrap());
                    }
                }
                RemoteOp::Move { member, seq, ver } => {
                    if let Some(entry) = members.get_mut(&**member) {
                        *entry = (*seq, *ver, entry.2);
                    }
                }
            }
        }
    }
    TopicSnapshot {
        topic: Arc::from(TOPIC),
        ver: model.log[..upto].last().map_or(0, |event| event.ver),
        entries: members
            .iter()
            .map(|(m, (seq, ver, n))| RemoteEntry { fields: fields(*n), ..remote(m, *seq, *ver) })
            .collect(),
        authority: Some(authority(None, 0)),
    }
}

#[derive(Clone, Debug)]
enum Step {
    Join(usize),
    Leave(usize, usize),
    Update(usize, usize),
    Swap(usize, usize, usize),
    Deliver(usize),
    Resync(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..3).prop_map(Step::Join),
        2 => (0usize..3, any::<usize>()).prop_map(|(node, pick)| Step::Leave(node, pick)),
        1 => (0usize..3, any::<usize>()).prop_map(|(node, pick)| Step::Update(node, pick)),
        1 => (0usize..3, any::<usize>(), any::<usize>()).prop_map(|(node, a, b)| Step::Swap(node, a, b)),
        6 => (0usize..3).prop_map(Step::Deliver),
        1 => (0usize..3).prop_map(Step::Resync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Three nodes change one topic in any interleaving; each applies its own changes at once and hears every event
    /// late, in order. After a join, the joiner lists every entry that joined before it. Once every event is
    /// delivered, every replica equals the model: same members, places and metadata.
    #[test]
    fn replicas_converge_to_the_shared_roster(steps in proptest::collection::vec(step(), 1..80)) {
        let mut model = Model::default();
        let mut nodes: Vec<Node> = (0..3)
            .map(|n| Node {
                own: format!("n{n}#"),
                state: PresenceState::new(format!("r{n}.")),
                delivered: 0,
                mine: HashMap::new(),
                next: 0,
                resync: VecDeque::new(),
            })
            .collect();
        for (counter, step) in steps.into_iter().enumerate() {
            let counter = counter as u64 + 1;
            match step {
                Step::Join(n) => {
                    let node = &mut nodes[n];
                    node.next += 1;
                    let member = format!("{}{}", node.own, node.next);
                    let known = node.state.topic_ver(TOPIC).unwrap_or(0);
                    let outcome = model.join(&member, counter, known, &node.own);
                    let (id, phx_ref) = node.state.reserve_entry();
                    let join = OwnJoin {
                        id,
                        key: Arc::from(member.as_str()),
                        fields: fields(counter),
                        eligible: false,
                        phx_ref,
                        tab_id: None,
                        member: Arc::from(member.as_str()),
                        outcome: &outcome,
                    };
                    replica::apply_own_join(&mut node.state, &node.own, TOPIC, join);
                    node.mine.insert(member.clone(), id);
                    // No node believes it is first while an earlier entry exists.
                    for (other, (seq, _, _)) in &model.members {
                        if *seq < outcome.seq {
                            prop_assert!(node.state.by_member(TOPIC, other).is_some(), "{member} joined without seeing {other}");
                        }
                    }
                }
                Step::Leave(n, pick) => {
                    let node = &mut nodes[n];
                    let mut mine: Vec<_> = node.mine.keys().cloned().collect();
                    mine.sort();
                    if !mine.is_empty() {
                        let member = mine[pick % mine.len()].clone();
                        let id = node.mine.remove(&member).unwrap();
                        node.state.leave(TOPIC, id);
                        model.leave(&member);
                    }
                }
                Step::Update(n, pick) => {
                    let node = &mut nodes[n];
                    let mut mine: Vec<_> = node.mine.keys().cloned().collect();
                    mine.sort();
                    if !mine.is_empty() {
                        let member = mine[pick % mine.len()].clone();
                        let id = node.mine[&member];
                        node.state.update(TOPIC, id, fields(counter)).unwrap();
                        model.update(&member, counter);
                    }
                }
                Step::Swap(n, a, b) => {
                    let node = &mut nodes[n];
                    let listed: Vec<(EntryId, String, u64)> = node
                        .state
                        .entries(TOPIC)
                        .map(|entry| (entry.id, entry.member.as_deref().unwrap().to_owned(), entry.meta.seq))
                        .collect();
                    if listed.len() >= 2 {
                        let (first, second) = (&listed[a % listed.len()], &listed[b % listed.len()]);
                        if first.0 != second.0 {
                            node.state.swap_order(TOPIC, first.0, second.0).unwrap();
                            if !model.swap((&first.1, first.2), (&second.1, second.2)) {
                                node.resync.push_back(());
                            }
                        }
                    }
                }
                Step::Deliver(n) => {
                    if nodes[n].delivered < model.log.len() {
                        nodes[n].deliver(&model);
                    }
                }
                Step::Resync(n) => {
                    let node = &mut nodes[n];
                    if node.resync.pop_front().is_some() {
                        let snapshot = snapshot_at(&model, model.log.len());
                        replica::apply_snapshot(&mut node.state, &node.own, &snapshot, false);
                    }
                }
            }
        }
        for node in &mut nodes {
            while node.delivered < model.log.len() {
                node.deliver(&model);
            }
            if node.resync.pop_front().is_some() {
                let snapshot = snapshot_at(&model, model.log.len());
                replica::apply_snapshot(&mut node.state, &node.own, &snapshot, false);
            }
            let listed: Vec<(String, u64, Arc<Meta>)> = node
                .state
                .entries(TOPIC)
                .map(|entry| (entry.member.as_deref().unwrap().to_owned(), entry.meta.seq, entry.meta.fields.clone()))
                .collect();
            let mut expected: Vec<(String, u64, Arc<Meta>)> =
                model.members.iter().map(|(m, (seq, _, n))| (m.clone(), *seq, fields(*n))).collect();
            expected.sort_by_key(|(_, seq, _)| *seq);
            prop_assert_eq!(listed, expected, "replica of {} differs from the roster", node.own);
        }
    }
}

/// Registers this node's join of `a#<n>` as in flight, as the tracker does before asking the shared roster.
fn begin_own_join(state: &mut PresenceState, n: u64) -> (EntryId, Arc<str>, Arc<str>) {
    let (id, phx_ref) = state.reserve_entry();
    let member: Arc<str> = Arc::from(format!("a#{n}"));
    let insert = Insert {
        id: Some(id),
        key: member.clone(),
        fields: fields(n),
        eligible: false,
        phx_ref: Some(phx_ref.clone()),
        seq: 0,
        tab_id: None,
        member: member.clone(),
        remote: false,
        ver: 0,
        replacing: None,
    };
    state.begin_join(Arc::from(TOPIC), insert);
    (id, phx_ref, member)
}

fn answer(state: &mut PresenceState, joining: (EntryId, Arc<str>, Arc<str>), n: u64, outcome: &JoinOutcome) {
    let (id, phx_ref, member) = joining;
    let join =
        OwnJoin { id, key: member.clone(), fields: fields(n), eligible: false, phx_ref, tab_id: None, member, outcome };
    replica::apply_own_join(state, "a#", TOPIC, join);
}

/// Found by the flaky `cross_node_promotion_latency` (a ghost of the previous round's spectator on one node). This
/// node's join is numbered at version 5, when `b#23` was still there, so the answer lists it; `b#23` leaves at 6 and
/// `b#24` joins at 7. The replica, which had no entry of the topic, hears of version 7 (a gap), reloads the topic at
/// 7, and only then is the answer applied: it is older than what the replica knows and must not bring `b#23` back
/// (no later event would remove it).
#[test]
fn a_join_answer_older_than_the_replica_brings_nobody_back() {
    let mut state = PresenceState::new("r");
    let joining = begin_own_join(&mut state, 24);
    let joined = event(7, false, vec![RemoteOp::Upsert(remote("b#24", 50, 7))]);
    assert!(matches!(replica::apply_event(&mut state, "a#", &joined), Applied::Gap));
    let snapshot = TopicSnapshot {
        topic: Arc::from(TOPIC),
        ver: 7,
        entries: vec![remote("a#24", 49, 5), remote("b#24", 50, 7)],
        authority: Some(authority(Some("a#24"), 9)),
    };
    replica::apply_snapshot(&mut state, "a#", &snapshot, false);
    let outcome = JoinOutcome {
        seq: 49,
        ver: 5,
        reclaimed: None,
        earlier: vec![remote("b#23", 48, 2)],
        authority: authority(Some("b#23"), 8),
    };
    answer(&mut state, joining, 24, &outcome);
    assert_eq!(members(&state), [("a#24".to_owned(), 49), ("b#24".to_owned(), 50)], "no ghost of b#23");
}

/// The same answer, when the replica heard of `b#23` leaving (version 6) while it had no entry of the topic: a change
/// of a topic this node is joining, heard while the replica has none of it, is a gap, so the replica knows the topic
/// at version 6 (with this node's entry) before the answer from version 5 lands, and nobody comes back.
#[test]
fn a_change_heard_while_joining_an_unknown_topic_is_a_gap() {
    let mut state = PresenceState::new("r");
    let joining = begin_own_join(&mut state, 24);
    let left = event(6, false, vec![RemoteOp::Leave { member: Arc::from("b#23") }]);
    assert!(matches!(replica::apply_event(&mut state, "a#", &left), Applied::Gap), "reload before the answer");
    let snapshot = TopicSnapshot {
        topic: Arc::from(TOPIC),
        ver: 6,
        entries: vec![remote("a#24", 49, 5)],
        authority: Some(authority(Some("a#24"), 9)),
    };
    replica::apply_snapshot(&mut state, "a#", &snapshot, false);
    let outcome = JoinOutcome {
        seq: 49,
        ver: 5,
        reclaimed: None,
        earlier: vec![remote("b#23", 48, 2)],
        authority: authority(Some("b#23"), 8),
    };
    answer(&mut state, joining, 24, &outcome);
    assert_eq!(members(&state), [("a#24".to_owned(), 49)], "no ghost of b#23");
}
