//! Property tests of the pure presence roster: random operation sequences against a model and against a client
//! replica that applies the emitted diffs exactly as phoenix.js's `Presence.syncDiff` does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use livebaton::presence::{Meta, PresenceDiff, PresenceList, PresenceMeta};
use livebaton::testing::presence_core::{CloseToken, EntryId, JoinRequest, PresenceState, RosterChange};
use proptest::prelude::*;

const TOPIC: &str = "room:1";

/// A phoenix.js-style client state: key → metas.
#[derive(Default)]
struct Replica(BTreeMap<String, Vec<Arc<PresenceMeta>>>);

impl Replica {
    /// phoenix.js `syncDiff`: joins first (keeping current metas not re-joined), then leaves by `phx_ref`.
    fn apply(&mut self, diff: &PresenceDiff) {
        for (key, entry) in diff.joins.iter() {
            let joined: Vec<&str> = entry.metas.iter().map(|meta| &*meta.phx_ref).collect();
            let mut metas: Vec<Arc<PresenceMeta>> = self
                .0
                .get(key)
                .map(|current| current.iter().filter(|meta| !joined.contains(&&*meta.phx_ref)).cloned().collect())
                .unwrap_or_default();
            metas.extend(entry.metas.iter().cloned());
            self.0.insert(key.to_owned(), metas);
        }
        for (key, entry) in diff.leaves.iter() {
            if let Some(current) = self.0.get_mut(key) {
                current.retain(|meta| !entry.metas.iter().any(|left| left.phx_ref == meta.phx_ref));
                if current.is_empty() {
                    self.0.remove(key);
                }
            }
        }
    }

    fn snapshot(&self) -> Vec<(String, String, u64)> {
        let mut all: Vec<_> = self
            .0
            .iter()
            .flat_map(|(key, metas)| metas.iter().map(move |meta| (key.clone(), meta.phx_ref.to_string(), meta.seq)))
            .collect();
        all.sort();
        all
    }
}

fn listed(state: &PresenceState) -> Vec<(String, String, u64)> {
    let list = state.list(TOPIC);
    let mut all: Vec<_> =
        list.metas().map(|(key, meta)| (key.to_owned(), meta.phx_ref.to_string(), meta.seq)).collect();
    all.sort();
    all
}

#[derive(Clone, Debug)]
enum Op {
    Join { key: u8, tab: Option<u8> },
    Leave(usize),
    Close(usize),
    Expire(usize),
    Update(usize),
    Swap(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, proptest::option::of(0u8..4)).prop_map(|(key, tab)| Op::Join { key, tab }),
        2 => any::<usize>().prop_map(Op::Leave),
        2 => any::<usize>().prop_map(Op::Close),
        2 => any::<usize>().prop_map(Op::Expire),
        1 => any::<usize>().prop_map(Op::Update),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Swap(a, b)),
    ]
}

/// What the test believes about each live entry.
#[derive(Clone, Debug)]
struct Model {
    seq: u64,
    tab: Option<Arc<str>>,
    closed: Option<CloseToken>,
}

fn meta(n: usize) -> Arc<Meta> {
    let mut meta = Meta::new();
    meta.insert("n".into(), serde_json::json!(n));
    Arc::new(meta)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Applying every emitted diff to an empty replica reproduces `list`; the order is total and only a swap moves an
    /// entry; no entry outlives its leave or its expiry; a reclaim within the grace keeps the sequence number; and
    /// coalescing (merging changes before publishing) reproduces `list` too.
    #[test]
    fn diffs_reproduce_the_list_and_order_is_total(ops in proptest::collection::vec(op(), 1..80), batch in 1usize..6) {
        let mut state = PresenceState::new("r");
        let mut replica = Replica::default();
        let mut coalesced = Replica::default();
        let mut pending = RosterChange::default();
        let mut model: HashMap<EntryId, Model> = HashMap::new();
        let mut ids: Vec<EntryId> = Vec::new();

        for (step, op) in ops.into_iter().enumerate() {
            let pick = |index: usize| (!ids.is_empty()).then(|| ids[index % ids.len()]);
            let change = match op {
                Op::Join { key, tab } => {
                    let tab: Option<Arc<str>> = tab.map(|tab| Arc::from(format!("tab-{tab}")));
                    // The tab reclaims the entry it closed most recently.
                    let lingering = model
                        .iter()
                        .filter(|(_, m)| m.closed.is_some() && m.tab.is_some() && m.tab == tab)
                        .max_by_key(|(_, m)| m.closed)
                        .map(|(id, m)| (*id, m.seq));
                    let joined = state.join(TOPIC, JoinRequest { key: Arc::from(format!("k{key}")), fields: meta(step), eligible: false, tab_id: tab.clone(), seq: None });
                    match lingering {
                        Some((id, seq)) => {
                            prop_assert!(joined.reclaimed, "a closed entry of the same tab must be reclaimed");
                            prop_assert_eq!(joined.id, id);
                            prop_assert_eq!(state.entry(TOPIC, id).unwrap().meta.seq, seq, "reclaim keeps the sequence number");
                            model.get_mut(&id).unwrap().closed = None;
                        }
                        None => {
                            prop_assert!(!joined.reclaimed);
                            let seq = state.entry(TOPIC, joined.id).unwrap().meta.seq;
                            prop_assert!(model.values().all(|m| m.seq < seq), "a new entry goes last");
                            model.insert(joined.id, Model { seq, tab, closed: None });
                            ids.push(joined.id);
                        }
                    }
                    joined.change
                }
                Op::Leave(index) => match pick(index) {
                    Some(id) => {
                        let change = state.leave(TOPIC, id);
                        model.remove(&id);
                        prop_assert!(state.entry(TOPIC, id).is_none(), "no entry outlives its leave");
                        change
                    }
                    None => RosterChange::default(),
                },
                Op::Close(index) => match pick(index) {
                    Some(id) => {
                        let token = state.close(TOPIC, id);
                        prop_assert_eq!(token.is_some(), model.contains_key(&id));
                        if let (Some(token), Some(m)) = (token, model.get_mut(&id)) {
                            m.closed = Some(token);
                        }
                        prop_assert!(state.entry(TOPIC, id).is_some() == model.contains_key(&id), "a closed entry lingers");
                        RosterChange::default()
                    }
                    None => RosterChange::default(),
                },
                Op::Expire(index) => match pick(index) {
                    Some(id) => match model.get(&id).and_then(|m| m.closed) {
                        Some(token) => {
                            let change = state.expire(TOPIC, id, token);
                            model.remove(&id);
                            prop_assert!(state.entry(TOPIC, id).is_none(), "no entry outlives its grace");
                            change
                        }
                        None => RosterChange::default(),
                    },
                    None => RosterChange::default(),
                },
                Op::Update(index) => match pick(index) {
                    Some(id) => match state.update(TOPIC, id, meta(step)) {
                        Ok(change) => {
                            prop_assert!(model.contains_key(&id));
                            let (joined, left) = (&change.joins[0].1, &change.leaves[0].1);
                            prop_assert_eq!(joined.phx_ref_prev.as_ref(), Some(&left.phx_ref));
                            prop_assert_eq!(joined.seq, left.seq);
                            change
                        }
                        Err(_) => {
                            prop_assert!(!model.contains_key(&id));
                            RosterChange::default()
                        }
                    },
                    None => RosterChange::default(),
                },
                Op::Swap(a, b) => match (pick(a), pick(b)) {
                    (Some(a), Some(b)) => match state.swap_order(TOPIC, a, b) {
                        Ok(change) => {
                            let (seq_a, seq_b) = (model[&a].seq, model[&b].seq);
                            model.get_mut(&a).unwrap().seq = seq_b;
                            model.get_mut(&b).unwrap().seq = seq_a;
                            change
                        }
                        Err(_) => {
                            prop_assert!(!model.contains_key(&a) || !model.contains_key(&b));
                            RosterChange::default()
                        }
                    },
                    _ => RosterChange::default(),
                },
            };

            replica.apply(&change.to_diff());
            pending.merge(change);
            if step % batch == 0 {
                let merged = std::mem::take(&mut pending);
                for (_, joined) in &merged.joins {
                    prop_assert!(
                        !merged.leaves.iter().any(|(_, left)| left.phx_ref == joined.phx_ref),
                        "a meta joined and left within one window is not published at all"
                    );
                }
                coalesced.apply(&merged.to_diff());
                prop_assert_eq!(coalesced.snapshot(), listed(&state), "coalesced diffs reproduce list");
            }
            prop_assert_eq!(replica.snapshot(), listed(&state), "diffs reproduce list");
            // `list` skips grouping while every key is distinct; it must match the grouped result exactly.
            let grouped = PresenceList::from_pairs(state.entries(TOPIC).map(|entry| (entry.key.clone(), entry.meta.clone())));
            prop_assert_eq!(state.list(TOPIC), grouped);

            // One total order: strictly increasing, unique sequence numbers, exactly the model's.
            let seqs: Vec<u64> = state.entries(TOPIC).map(|entry| entry.meta.seq).collect();
            prop_assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]));
            prop_assert_eq!(seqs.len(), model.len());
            for entry in state.entries(TOPIC) {
                prop_assert_eq!(model[&entry.id].seq, entry.meta.seq, "only a swap moves an entry");
            }
        }
        coalesced.apply(&pending.to_diff());
        prop_assert_eq!(coalesced.snapshot(), listed(&state));
    }
}

/// `list` has Phoenix's exact JSON shape: `key → {metas: [...]}` with `phx_ref`, `seq`, and `phx_ref_prev` after an
/// update; a diff is `{joins, leaves}`.
#[test]
fn list_and_diff_have_phoenix_shapes() {
    let mut state = PresenceState::new("r");
    let mut fields = Meta::new();
    fields.insert("user_id".into(), serde_json::json!(7));
    fields.insert("phx_ref".into(), serde_json::json!("forged"));
    let joined = state.join(
        TOPIC,
        JoinRequest { key: "user:7".into(), fields: Arc::new(fields), eligible: false, tab_id: None, seq: None },
    );
    assert_eq!(
        serde_json::to_value(state.list(TOPIC)).unwrap(),
        serde_json::json!({"user:7": {"metas": [{"user_id": 7, "phx_ref": "r1", "seq": 1}]}}),
        "the tracker's phx_ref replaces one supplied by the application"
    );
    let update = state.update(TOPIC, joined.id, meta(2)).unwrap();
    assert_eq!(
        serde_json::to_value(update.to_diff()).unwrap(),
        serde_json::json!({
            "joins": {"user:7": {"metas": [{"n": 2, "phx_ref": "r2", "phx_ref_prev": "r1", "seq": 1}]}},
            "leaves": {"user:7": {"metas": [{"user_id": 7, "phx_ref": "r1", "seq": 1}]}}
        })
    );
    let diff: PresenceDiff = serde_json::from_value(serde_json::to_value(update.to_diff()).unwrap()).unwrap();
    assert_eq!(diff, update.to_diff(), "diffs survive a serde round trip (the Redis backend carries them)");
}

/// Keys are listed in the order of their earliest entry, and one key's metas in join order.
#[test]
fn list_keeps_join_order() {
    let mut state = PresenceState::new("r");
    for key in ["c", "a", "b", "a"] {
        state.join(TOPIC, JoinRequest { key: key.into(), fields: meta(0), eligible: false, tab_id: None, seq: None });
    }
    let list = state.list(TOPIC);
    let keys: Vec<&str> = list.iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["c", "a", "b"]);
    let seqs: Vec<u64> = list.get("a").unwrap().metas.iter().map(|meta| meta.seq).collect();
    assert_eq!(seqs, [2, 4]);
    let json = serde_json::to_string(&list).unwrap();
    assert!(json.find("\"c\"").unwrap() < json.find("\"a\"").unwrap(), "JSON keeps the order: {json}");
}

/// A diff's client payload keeps its keys in join order on the wire (a `serde_json::Value` would sort them).
#[test]
fn diff_payloads_keep_key_order() {
    let mut state = PresenceState::new("r");
    let mut change = RosterChange::default();
    for key in ["zed", "amy"] {
        change.merge(
            state
                .join(TOPIC, JoinRequest { key: key.into(), fields: meta(0), eligible: false, tab_id: None, seq: None })
                .change,
        );
    }
    let mut wire = Vec::new();
    livebaton::pubsub::Message::write_payload(&change.to_diff(), &mut wire).unwrap();
    let wire = String::from_utf8(wire).unwrap();
    assert!(wire.find("zed").unwrap() < wire.find("amy").unwrap(), "{wire}");
}

proptest! {
    /// Chunks of a list, concatenated, are the list: same keys in the same order, every meta once, no chunk over the
    /// limit (a key with more metas is split across chunks).
    #[test]
    fn chunks_partition_the_list(keys in proptest::collection::vec(0u8..5, 0..200), limit in 1usize..30) {
        let mut state = PresenceState::new("r");
        for key in &keys {
            state.join(TOPIC, JoinRequest { key: format!("k{key}").into(), fields: meta(0), eligible: false, tab_id: None, seq: None });
        }
        let list = state.list(TOPIC);
        let chunks = list.chunks(limit);
        let mut pairs = Vec::new();
        for chunk in &chunks {
            prop_assert!(chunk.meta_count() <= limit, "chunk of {} metas", chunk.meta_count());
            pairs.extend(chunk.metas().map(|(key, meta)| (key.to_owned(), meta.phx_ref.clone())));
        }
        let expected: Vec<_> = list.metas().map(|(key, meta)| (key.to_owned(), meta.phx_ref.clone())).collect();
        prop_assert_eq!(pairs, expected);
    }
}
