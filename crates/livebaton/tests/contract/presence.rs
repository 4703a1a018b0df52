//! The presence contract: what every roster backend must share, single node or cluster. A backend's test file invokes
//! `presence_contract!(factory)` with an async expression returning the nodes of one fresh cluster as
//! `Vec<livebaton::Engine>` (one engine for the single-node tracker; two or three for a shared roster, each with its
//! own PubSub and roster, i.e. a separate node). Every test spreads its members over the nodes round-robin, so with
//! one node everything happens on it and with several the same assertions hold on every node.
//!
//! The engines must have a `leave_grace` of a few hundred milliseconds (the tests wait for it), and diff coalescing
//! off. Tests use real time (a shared roster does real I/O) and wait for convergence with [`eventually`], never with a
//! fixed sleep where a condition can be awaited.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use livebaton::Engine;
use livebaton::editing::{EditTarget, Editor, OwnerChanged};
use livebaton::presence::{Meta, PresenceDiff, PresenceMeta};
use livebaton::pubsub::Subscription;

/// How long a cluster may take to converge before a test fails.
pub const SETTLE: Duration = Duration::from_secs(10);

pub fn meta(name: &str) -> Meta {
    let mut meta = Meta::new();
    meta.insert("name".into(), serde_json::json!(name));
    meta
}

pub fn editor(id: &str, name: &str) -> Editor {
    Editor::new(id, name)
}

pub fn viewer(id: &str, name: &str) -> Editor {
    Editor { can_edit: false, ..editor(id, name) }
}

/// The node member `i` lives on.
pub fn on(nodes: &[Engine], i: usize) -> &Engine {
    &nodes[i % nodes.len()]
}

/// Waits until `condition` holds, failing the test after [`SETTLE`].
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    livebaton_testkit::eventually_within(what, SETTLE, condition).await;
}

/// Like [`eventually`] for a condition that needs to await.
pub async fn eventually_async<F: Future<Output = bool>>(what: &str, condition: impl FnMut() -> F) {
    livebaton_testkit::eventually_async(what, SETTLE, condition).await;
}

/// `(key, seq)` of a topic's entries in order, as one node lists them.
pub fn order(engine: &Engine, topic: &str) -> Vec<(String, u64)> {
    engine.presence.sorted(topic).iter().map(|(key, meta)| (key.to_string(), meta.seq)).collect()
}

/// The keys of a topic in order, as one node lists them.
pub fn keys(engine: &Engine, topic: &str) -> Vec<String> {
    order(engine, topic).into_iter().map(|(key, _)| key).collect()
}

/// Whether every node lists exactly `expected` keys, in this order.
pub fn all_list(nodes: &[Engine], topic: &str, expected: &[&str]) -> bool {
    nodes.iter().all(|node| keys(node, topic) == expected)
}

/// Whether every node lists the same entries with the same seqs.
pub fn converged(nodes: &[Engine], topic: &str) -> bool {
    let first = order(&nodes[0], topic);
    nodes.iter().all(|node| order(node, topic) == first)
}

/// The next presence diff on a subscription (other messages are skipped).
pub async fn next_diff(subscription: &mut Subscription) -> Arc<PresenceDiff> {
    loop {
        let broadcast = tokio::time::timeout(SETTLE, subscription.recv())
            .await
            .expect("a presence diff in time")
            .expect("no lag, not closed");
        if let Some(diff) = broadcast.downcast::<PresenceDiff>() {
            return Arc::new(diff.clone());
        }
    }
}

/// The next owner change on a subscription (presence diffs are skipped).
pub async fn next_owner_change(subscription: &mut Subscription) -> Arc<OwnerChanged> {
    loop {
        let broadcast = tokio::time::timeout(SETTLE, subscription.recv())
            .await
            .expect("an owner change in time")
            .expect("no lag, not closed");
        if let Some(change) = broadcast.downcast::<OwnerChanged>() {
            return Arc::new(change.clone());
        }
    }
}

/// The only meta of `key` in a diff's joins (or leaves).
pub fn only_meta(list: &livebaton::presence::PresenceList, key: &str) -> Arc<PresenceMeta> {
    let entry = list.get(key).unwrap_or_else(|| panic!("{key} in {list:?}"));
    assert_eq!(entry.metas.len(), 1, "one meta for {key}");
    entry.metas[0].clone()
}

/// The owner's view id of a session, as one node sees it.
pub fn owner_of(engine: &Engine, target: &EditTarget) -> Option<String> {
    engine.editing.lock_owner(target).map(|owner| owner.view_id.to_string())
}

#[macro_export]
macro_rules! presence_contract {
    ($make:expr) => {
        use std::time::Duration;

        use livebaton::editing::{EditTarget, OwnerChangeReason, RoleChange};
        use $crate::contract::presence::{
            all_list, converged, editor, eventually, eventually_async, keys, meta, next_diff, next_owner_change, on,
            only_meta, order, owner_of, viewer,
        };

        /// `list` has Phoenix's shape on every node (`key → {metas: [{…, phx_ref, seq}]}`), `get_by_key` finds the
        /// entry, and `untrack` removes it everywhere.
        #[tokio::test]
        async fn track_list_and_untrack_have_phoenix_shapes_on_every_node() {
            let nodes = $make;
            let guard = on(&nodes, 0).presence.track("room:shapes", "alice", meta("Alice")).await.unwrap();
            let tracked = guard.meta().unwrap();
            eventually("every node lists alice", || all_list(&nodes, "room:shapes", &["alice"])).await;
            for node in nodes.iter() {
                let json = serde_json::to_value(node.presence.list("room:shapes")).unwrap();
                assert_eq!(
                    json,
                    serde_json::json!({"alice": {"metas": [{"name": "Alice", "phx_ref": &*tracked.phx_ref, "seq": tracked.seq}]}})
                );
                let by_key = node.presence.get_by_key("room:shapes", "alice").unwrap();
                assert_eq!(by_key.metas[0].get_str("name"), Some("Alice"));
                assert_eq!(node.presence.count("room:shapes"), 1);
            }
            on(&nodes, 0).presence.untrack(guard);
            assert!(on(&nodes, 0).presence.list("room:shapes").is_empty(), "gone at once on its own node");
            eventually("gone from every node", || nodes.iter().all(|node| node.presence.list("room:shapes").is_empty()))
                .await;
        }

        /// Members joining one after another on different nodes are listed in join order on every node, with
        /// strictly increasing seqs that every node agrees on.
        #[tokio::test]
        async fn order_is_join_order_on_every_node() {
            let nodes = $make;
            let names: Vec<String> = (0..6).map(|n| format!("member-{n}")).collect();
            let mut guards = Vec::new();
            for (n, name) in names.iter().enumerate() {
                guards.push(on(&nodes, n).presence.track("room:order", name, meta(name)).await.unwrap());
                // The joiner's own node already sees everyone who joined before it, in order.
                assert_eq!(keys(on(&nodes, n), "room:order"), names[..=n].to_vec(), "on the joiner's node");
            }
            let expected: Vec<&str> = names.iter().map(String::as_str).collect();
            eventually("every node lists the join order", || all_list(&nodes, "room:order", &expected)).await;
            let seqs: Vec<u64> = order(&nodes[0], "room:order").into_iter().map(|(_, seq)| seq).collect();
            assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing: {seqs:?}");
            assert!(converged(&nodes, "room:order"), "same seqs on every node");
        }

        /// Members joining all at once on every node end up in one order that every node agrees on.
        #[tokio::test]
        async fn concurrent_joins_converge_to_one_order() {
            let nodes = $make;
            let joins = (0..12).map(|n| {
                let presence = on(&nodes, n).presence.clone();
                tokio::spawn(async move { presence.track("room:storm", &format!("m{n}"), meta("x")).await.unwrap() })
            });
            let mut guards = Vec::new();
            for join in joins.collect::<Vec<_>>() {
                guards.push(join.await.unwrap());
            }
            eventually("every node lists 12 members", || nodes.iter().all(|node| node.presence.count("room:storm") == 12))
                .await;
            eventually("every node agrees on the order", || converged(&nodes, "room:storm")).await;
            let seqs: Vec<u64> = order(&nodes[0], "room:storm").into_iter().map(|(_, seq)| seq).collect();
            assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "unique seqs: {seqs:?}");
        }

        /// A join, an update and a leave each reach a subscriber on every node as one Phoenix diff; the update is a
        /// leave of the old meta and a join of the new one naming it as `phx_ref_prev`.
        #[tokio::test]
        async fn diffs_reach_subscribers_on_every_node() {
            let nodes = $make;
            let mut subscriptions: Vec<_> = nodes.iter().map(|node| node.presence.subscribe("room:diffs")).collect();
            let guard = on(&nodes, 0).presence.track("room:diffs", "alice", meta("Alice")).await.unwrap();
            let first = guard.meta().unwrap();
            for subscription in &mut subscriptions {
                let diff = next_diff(subscription).await;
                assert_eq!(only_meta(&diff.joins, "alice").phx_ref, first.phx_ref);
                assert!(diff.leaves.is_empty());
            }
            guard.update(meta("Alice (away)")).unwrap();
            let second = guard.meta().unwrap();
            for subscription in &mut subscriptions {
                let diff = next_diff(subscription).await;
                let joined = only_meta(&diff.joins, "alice");
                assert_eq!(only_meta(&diff.leaves, "alice").phx_ref, first.phx_ref);
                assert_eq!(joined.phx_ref, second.phx_ref);
                assert_eq!(joined.phx_ref_prev.as_ref(), Some(&first.phx_ref));
                assert_eq!(joined.get_str("name"), Some("Alice (away)"));
                assert_eq!(joined.seq, first.seq, "an update keeps the place");
            }
            guard.leave();
            for subscription in &mut subscriptions {
                let diff = next_diff(subscription).await;
                assert_eq!(only_meta(&diff.leaves, "alice").phx_ref, second.phx_ref);
                assert!(diff.joins.is_empty());
            }
        }

        /// A dropped guard (the page's task ended) keeps its entry listed on every node for the leave grace, then it
        /// leaves everywhere.
        #[tokio::test]
        async fn a_closed_entry_lingers_for_the_grace_then_leaves_everywhere() {
            let nodes = $make;
            let grace = nodes[0].presence.config().leave_grace;
            assert!(grace >= Duration::from_millis(100), "the contract needs a leave grace");
            let guard = on(&nodes, 0).presence.track("room:grace", "bob", meta("Bob")).await.unwrap();
            eventually("every node lists bob", || all_list(&nodes, "room:grace", &["bob"])).await;
            let closed_at = tokio::time::Instant::now();
            drop(guard);
            tokio::time::sleep(grace / 2).await;
            if closed_at.elapsed() < grace {
                assert!(all_list(&nodes, "room:grace", &["bob"]), "still listed everywhere within the grace");
            }
            eventually("gone everywhere after the grace", || all_list(&nodes, "room:grace", &[])).await;
            assert!(closed_at.elapsed() >= grace, "not before the grace");
        }

        /// A reloading tab that tracks again with the same tab id within the grace (on any node) takes its old place:
        /// same seq, ahead of later joiners, and the old entry's expiry does not remove it.
        #[tokio::test]
        async fn a_reloading_tab_reclaims_its_place_on_any_node() {
            let nodes = $make;
            let last = nodes.len() - 1;
            let first = on(&nodes, 0).presence.track_in_tab("room:reload", "view-1", meta("A"), Some("tab-a")).await.unwrap();
            let _second = on(&nodes, 1).presence.track_in_tab("room:reload", "view-2", meta("B"), Some("tab-b")).await.unwrap();
            let seq = first.meta().unwrap().seq;
            eventually("both listed everywhere", || all_list(&nodes, "room:reload", &["view-1", "view-2"])).await;
            drop(first);
            on(&nodes, 0).presence.flush().await;
            let reloaded =
                on(&nodes, last).presence.track_in_tab("room:reload", "view-3", meta("A"), Some("tab-a")).await.unwrap();
            assert_eq!(reloaded.meta().unwrap().seq, seq, "same place in the order");
            eventually("the reclaimed entry is first everywhere", || {
                all_list(&nodes, "room:reload", &["view-3", "view-2"])
            })
            .await;
            tokio::time::sleep(nodes[0].presence.config().leave_grace * 2).await;
            assert!(all_list(&nodes, "room:reload", &["view-3", "view-2"]), "the old expiry did not remove it");
        }

        /// The owner of an editing session is its first eligible entry, the same on every node: a viewer who came
        /// first is skipped; when the owner leaves the next eligible entry is promoted and every node says so.
        #[tokio::test]
        async fn the_owner_is_the_first_eligible_entry_on_every_node() {
            let nodes = $make;
            let record = EditTarget::new("article", 7001).unwrap();
            let mut watching: Vec<_> = nodes.iter().map(|node| node.editing.subscribe_to_editing(&record)).collect();
            let _vera = on(&nodes, 0).editing.track_editing_session(&record, "vera-1", &viewer("9", "Vera"), None).await.unwrap();
            let alice = on(&nodes, 1).editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
            let _bob = on(&nodes, 2).editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
            eventually("Alice owns on every node", || {
                nodes.iter().all(|node| owner_of(node, &record).as_deref() == Some("alice-1") && node.editing.sorted_presences(&record).len() == 3)
            })
            .await;
            for node in nodes.iter() {
                assert!(node.editing.editing_role(&record, "alice-1", "1").is_owner());
                assert!(!node.editing.editing_role(&record, "vera-1", "9").is_owner());
                assert!(!node.editing.editing_role(&record, "bob-1", "2").is_owner());
                assert_eq!(node.editing.spectators(&record).len(), 2);
            }
            alice.leave();
            for subscription in &mut watching {
                let change = loop {
                    let change = next_owner_change(subscription).await;
                    if change.reason == OwnerChangeReason::Promoted {
                        break change;
                    }
                };
                assert_eq!(change.role_change_for("bob-1"), RoleChange::Promoted);
                assert_eq!(change.role_change_for("alice-1"), RoleChange::Demoted);
            }
            for node in nodes.iter() {
                assert_eq!(owner_of(node, &record).as_deref(), Some("bob-1"));
            }
        }

        /// However the joins interleave across nodes, no joiner ever sees itself as owner while an earlier eligible
        /// entry exists: at the moment `track` returns, its node already lists every earlier entry.
        #[tokio::test]
        async fn no_joiner_believes_it_is_first_while_an_earlier_entry_exists() {
            let nodes = $make;
            let record = EditTarget::new("article", 7002).unwrap();
            let joins = (0..12).map(|n| {
                let engine = on(&nodes, n).clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let view = format!("view-{n}");
                    let guard = engine.editing.track_editing_session(&record, &view, &editor(&n.to_string(), "E"), None).await.unwrap();
                    let owner = engine.editing.editing_role(&record, &view, &n.to_string()).is_owner();
                    (guard.meta().unwrap().seq, owner, guard)
                })
            });
            let mut seen = Vec::new();
            for join in joins.collect::<Vec<_>>() {
                seen.push(join.await.unwrap());
            }
            let first = seen.iter().map(|(seq, _, _)| *seq).min().unwrap();
            for (seq, owner, _) in &seen {
                assert!(!owner || *seq == first, "seq {seq} believed it was first while seq {first} existed");
            }
            eventually("one owner everywhere", || {
                let owners: Vec<_> = nodes.iter().map(|node| node.editing.lock_owner(&record).map(|o| o.seq)).collect();
                owners.iter().all(|owner| *owner == Some(first))
            })
            .await;
        }

        /// The owner's draft reaches every node (a late joiner anywhere reads it), only the owner may write it, and a
        /// promoted owner on another node continues from it.
        #[tokio::test]
        async fn the_draft_is_shared_and_survives_a_handover() {
            let nodes = $make;
            let record = EditTarget::new("article", 7003).unwrap();
            let last = nodes.len() - 1;
            let alice = on(&nodes, 0).editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
            let _bob = on(&nodes, last).editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
            eventually("Alice owns everywhere", || nodes.iter().all(|node| owner_of(node, &record).as_deref() == Some("alice-1"))).await;
            let draft = on(&nodes, 0).editing.update_draft(&record, "alice-1", 5, serde_json::json!({"title": "Hello"})).unwrap();
            assert_eq!(draft.version, 1);
            eventually("every node holds the draft", || {
                nodes.iter().all(|node| node.editing.draft(&record).is_some_and(|d| d.version == 1 && d.params["title"] == "Hello"))
            })
            .await;
            assert!(on(&nodes, last).editing.update_draft(&record, "bob-1", 5, serde_json::json!({"title": "no"})).is_err());
            let _carol = on(&nodes, 1).editing.track_editing_session(&record, "carol-1", &editor("3", "Carol"), None).await.unwrap();
            assert_eq!(on(&nodes, 1).editing.draft(&record).unwrap().params["title"], "Hello", "a late joiner reads it");
            alice.leave();
            eventually("Bob owns everywhere", || nodes.iter().all(|node| owner_of(node, &record).as_deref() == Some("bob-1"))).await;
            let next = on(&nodes, last).editing.update_draft(&record, "bob-1", 9, serde_json::json!({"title": "Hello, Bob"})).unwrap();
            assert_eq!((next.version, next.base_lock_version), (2, 5), "continues from Alice's draft");
            eventually("every node holds Bob's draft", || {
                nodes.iter().all(|node| node.editing.draft(&record).is_some_and(|d| d.version == 2))
            })
            .await;
        }

        /// A save fenced before a hand-over is refused afterwards, on the node that issued the token, by both checks;
        /// the new owner's token verifies.
        #[tokio::test]
        async fn a_token_that_lost_ownership_is_refused() {
            let nodes = $make;
            let record = EditTarget::new("article", 7004).unwrap();
            let last = nodes.len() - 1;
            let alice_node = on(&nodes, 0);
            let bob_node = on(&nodes, last);
            let alice = alice_node.editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
            let _bob = bob_node.editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
            let mut alice_token = None;
            eventually("Alice can fence", || {
                alice_token = alice_node.editing.fence(&record, "alice-1").ok();
                alice_token.is_some()
            })
            .await;
            let alice_token = alice_token.unwrap();
            alice_node.editing.verify(&alice_token).unwrap();
            alice_node.editing.verify_with_authority(&alice_token).await.unwrap();
            assert!(bob_node.editing.fence(&record, "bob-1").is_err(), "a spectator cannot fence");
            alice.leave();
            assert!(alice_node.editing.verify(&alice_token).is_err(), "refused at once on Alice's node");
            assert!(alice_node.editing.verify_with_authority(&alice_token).await.is_err());
            let mut bob_token = None;
            eventually("Bob can fence", || {
                bob_token = bob_node.editing.fence(&record, "bob-1").ok();
                bob_token.is_some()
            })
            .await;
            let bob_token = bob_token.unwrap();
            bob_node.editing.verify(&bob_token).unwrap();
            eventually_async("Bob's token verifies with the authority", || {
                let editing = bob_node.editing.clone();
                let token = bob_token.clone();
                async move { editing.verify_with_authority(&token).await.is_ok() }
            })
            .await;
            assert!(alice_node.editing.verify_with_authority(&alice_token).await.is_err(), "still refused");
        }
    };
}
