//! The async presence tracker: guards, grace, reclaim, coalescing and lag, with real subscriptions and paused time.

use std::sync::Arc;
use std::time::Duration;

use livebaton::presence::{Coalescing, MAX_DIFF_METAS, Meta, Presence, PresenceConfig, PresenceDiff};
use livebaton::pubsub::{PubSub, PubSubConfig, RecvError, Subscription};

fn meta(value: &str) -> Meta {
    let mut meta = Meta::new();
    meta.insert("name".into(), serde_json::json!(value));
    meta
}

/// A tracker whose diffs wait for a fixed window of `coalesce_ms` (0: none).
fn tracker(grace_ms: u64, coalesce_ms: u64) -> Presence {
    tracker_with(grace_ms, coalesce_ms, Coalescing::Fixed)
}

fn tracker_with(grace_ms: u64, coalesce_ms: u64, coalescing: Coalescing) -> Presence {
    let config = PresenceConfig {
        leave_grace: Duration::from_millis(grace_ms),
        coalesce_window: Duration::from_millis(coalesce_ms),
        coalescing,
    };
    Presence::new(PubSub::default(), config)
}

async fn next_diff(subscription: &mut Subscription) -> Arc<PresenceDiff> {
    let broadcast = tokio::time::timeout(Duration::from_secs(30), subscription.recv())
        .await
        .expect("a diff in time")
        .expect("no lag");
    match broadcast.downcast::<PresenceDiff>() {
        Some(diff) => Arc::new(diff.clone()),
        None => panic!("expected a PresenceDiff, got {broadcast:?}"),
    }
}

fn keys(list: &livebaton::presence::PresenceList) -> Vec<String> {
    list.iter().map(|(key, _)| key.to_owned()).collect()
}

/// Tracking publishes a join; `leave()` removes the entry at once and publishes the leave.
#[tokio::test(start_paused = true)]
async fn leave_is_immediate() {
    let presence = tracker(1_000, 0);
    let mut diffs = presence.subscribe("room");
    let guard = presence.track("room", "alice", meta("Alice")).await.unwrap();
    let joined = next_diff(&mut diffs).await;
    assert_eq!(keys(&joined.joins), ["alice"]);
    guard.leave();
    assert!(presence.list("room").is_empty(), "gone without waiting for the grace");
    let left = next_diff(&mut diffs).await;
    assert_eq!(keys(&left.leaves), ["alice"]);
}

/// Dropping the guard (the owning task ended) keeps the entry for the grace period, then removes it: callers never
/// write cleanup code.
#[tokio::test(start_paused = true)]
async fn dropping_the_guard_releases_after_the_grace() {
    let presence = tracker(1_000, 0);
    let task_presence = presence.clone();
    let task = tokio::spawn(async move {
        let _guard = task_presence.track("room", "bob", meta("Bob")).await.unwrap();
        // the task ends here, dropping its guard
    });
    task.await.unwrap();
    let mut diffs = presence.subscribe("room");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(keys(&presence.list("room")), ["bob"], "still listed within the grace");
    let left = next_diff(&mut diffs).await;
    assert_eq!(keys(&left.leaves), ["bob"]);
    assert!(presence.list("room").is_empty());
}

/// With a zero grace, dropping the guard removes the entry at once (the seed's behaviour).
#[tokio::test(start_paused = true)]
async fn zero_grace_releases_on_drop() {
    let presence = tracker(0, 0);
    let guard = presence.track("room", "carol", meta("Carol")).await.unwrap();
    drop(guard);
    assert!(presence.list("room").is_empty());
}

/// A reloaded tab that comes back within the grace reclaims its place: same sequence number, ahead of later joiners,
/// and the old entry's expiry timer does not remove the new one.
#[tokio::test(start_paused = true)]
async fn a_reloading_tab_keeps_its_place() {
    let presence = tracker(1_000, 0);
    let first = presence.track_in_tab("room", "view-1", meta("Alice"), Some("tab-a")).await.unwrap();
    let _second = presence.track_in_tab("room", "view-2", meta("Bob"), Some("tab-b")).await.unwrap();
    let seq = first.meta().unwrap().seq;
    drop(first); // tab closed for a reload
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut diffs = presence.subscribe("room");
    let reloaded = presence.track_in_tab("room", "view-3", meta("Alice"), Some("tab-a")).await.unwrap();
    assert_eq!(reloaded.meta().unwrap().seq, seq, "same place in the order");
    let diff = next_diff(&mut diffs).await;
    assert_eq!(keys(&diff.joins), ["view-3"]);
    assert_eq!(keys(&diff.leaves), ["view-1"]);
    assert_eq!(keys(&presence.list("room")), ["view-3", "view-2"], "still first");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(keys(&presence.list("room")), ["view-3", "view-2"], "the old timer did not remove the reclaimed entry");
}

/// After the grace, the same tab gets a new place at the end.
#[tokio::test(start_paused = true)]
async fn after_the_grace_a_tab_starts_over() {
    let presence = tracker(1_000, 0);
    let first = presence.track_in_tab("room", "view-1", meta("Alice"), Some("tab-a")).await.unwrap();
    let _second = presence.track_in_tab("room", "view-2", meta("Bob"), Some("tab-b")).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let _again = presence.track_in_tab("room", "view-3", meta("Alice"), Some("tab-a")).await.unwrap();
    assert_eq!(keys(&presence.list("room")), ["view-2", "view-3"]);
}

/// An update is one diff with a leave of the old meta and a join of the new one carrying `phx_ref_prev`.
#[tokio::test(start_paused = true)]
async fn update_is_leave_and_join_in_one_diff() {
    let presence = tracker(0, 0);
    let guard = presence.track("room", "alice", meta("Alice")).await.unwrap();
    let before = guard.meta().unwrap();
    let mut diffs = presence.subscribe("room");
    guard.update(meta("Alice (away)")).unwrap();
    let diff = next_diff(&mut diffs).await;
    let joined = &diff.joins.get("alice").unwrap().metas[0];
    let left = &diff.leaves.get("alice").unwrap().metas[0];
    assert_eq!(left.phx_ref, before.phx_ref);
    assert_eq!(joined.phx_ref_prev.as_ref(), Some(&before.phx_ref));
    assert_ne!(joined.phx_ref, before.phx_ref);
    assert_eq!(joined.get_str("name"), Some("Alice (away)"));
    assert_eq!(presence.get_by_key("room", "alice").unwrap().metas, vec![joined.clone()]);
}

/// Two entries under one key (a user's two tabs) are two metas of that key; one leaving leaves the other.
#[tokio::test(start_paused = true)]
async fn one_key_can_hold_several_entries() {
    let presence = tracker(0, 0);
    let first = presence.track("room", "user:1", meta("tab 1")).await.unwrap();
    let second = presence.track("room", "user:1", meta("tab 2")).await.unwrap();
    assert_eq!(presence.get_by_key("room", "user:1").unwrap().metas.len(), 2);
    let second_ref = second.meta().unwrap().phx_ref.clone();
    first.leave();
    let metas = presence.get_by_key("room", "user:1").unwrap().metas;
    assert_eq!(metas.len(), 1);
    assert_eq!(metas[0].phx_ref, second_ref);
}

/// With a coalescing window, a burst of joins reaches a subscriber as one diff; a join and leave inside the window
/// cancel out.
#[tokio::test(start_paused = true)]
async fn coalescing_merges_a_burst_into_one_diff() {
    let presence = tracker(0, 20);
    let mut diffs = presence.subscribe("room");
    let mut guards = Vec::new();
    for n in 0..MAX_DIFF_METAS {
        guards.push(presence.track("room", &format!("user:{n}"), meta("x")).await.unwrap());
    }
    presence.track("room", "ghost", meta("x")).await.unwrap().leave();
    let diff = next_diff(&mut diffs).await;
    assert_eq!(diff.joins.len(), MAX_DIFF_METAS);
    assert!(diff.joins.get("ghost").is_none() && diff.leaves.is_empty(), "join+leave in one window cancel out");
    assert!(diffs.try_recv().unwrap().is_none(), "one diff for the whole burst");
}

/// A coalesced burst bigger than [`MAX_DIFF_METAS`] goes out as several diffs of at most that many metas, joins
/// before leaves, which together change a copy of the list exactly as the whole burst does: no frame grows with the
/// burst.
#[tokio::test(start_paused = true)]
async fn a_big_burst_is_published_in_bounded_diffs_that_add_up_to_it() {
    let presence = tracker(0, 20);
    let mut leaving = Vec::new();
    for n in 0..20 {
        leaving.push(presence.track("room", &format!("old:{n}"), meta("x")).await.unwrap());
    }
    // Past the window of those joins: the copy starts from the list, and the burst below is one window of its own.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut diffs = presence.subscribe("room");
    let mut copy: std::collections::BTreeMap<String, usize> =
        presence.list("room").iter().map(|(key, entry)| (key.to_owned(), entry.metas.len())).collect();
    assert_eq!(copy.len(), 20);
    let mut guards = Vec::new();
    for n in 0..100 {
        guards.push(presence.track("room", &format!("user:{n}"), meta("x")).await.unwrap());
    }
    // Two metas under one key in the same window, split across pieces if need be.
    guards.push(presence.track("room", "user:0", meta("again")).await.unwrap());
    for guard in leaving {
        guard.leave();
    }
    let (mut pieces, mut seen_leave) = (0, false);
    while copy.len() != 100 || copy.get("user:0") != Some(&2) {
        let diff = next_diff(&mut diffs).await;
        pieces += 1;
        let metas = diff.joins.meta_count() + diff.leaves.meta_count();
        assert!(metas <= MAX_DIFF_METAS, "a diff of {metas} metas");
        assert!(!seen_leave || diff.joins.is_empty(), "joins come before leaves");
        seen_leave |= !diff.leaves.is_empty();
        for (key, _) in diff.joins.metas() {
            *copy.entry(key.to_owned()).or_default() += 1;
        }
        for (key, _) in diff.leaves.metas() {
            let count = copy.get_mut(key).expect("a leave of a listed key");
            *count -= 1;
            if *count == 0 {
                copy.remove(key);
            }
        }
    }
    assert_eq!(
        pieces,
        101_usize.div_ceil(MAX_DIFF_METAS) + 20_usize.div_ceil(MAX_DIFF_METAS),
        "as few pieces as the bound allows"
    );
    assert!(diffs.try_recv().unwrap().is_none(), "nothing after the pieces");
    let listed: Vec<String> = presence.list("room").iter().map(|(key, _)| key.to_owned()).collect();
    assert_eq!(copy.keys().cloned().collect::<Vec<_>>(), {
        let mut sorted = listed;
        sorted.sort();
        sorted
    });
}

/// A subscriber that falls behind a join storm is told it lagged, resyncs from `list`, and from then on the diffs
/// keep its copy equal to the tracker's.
#[tokio::test(start_paused = true)]
async fn a_lagging_subscriber_resyncs_from_the_list() {
    let pubsub = PubSub::new(PubSubConfig { topic_capacity: 8 });
    // Without coalescing, so that the storm is 50 diffs for a ring of 8.
    let config = PresenceConfig { leave_grace: Duration::ZERO, coalesce_window: Duration::ZERO, ..Default::default() };
    let presence = Presence::new(pubsub, config);
    let mut diffs = presence.subscribe("room");
    let mut guards = Vec::new();
    for n in 0..50 {
        guards.push(presence.track("room", &format!("user:{n}"), meta("x")).await.unwrap());
    }
    assert!(matches!(diffs.recv().await, Err(RecvError::Lagged(_))));
    // Resync: drop what is queued, take the list, then follow the diffs.
    while diffs.try_recv().unwrap().is_some() {}
    let mut replica: Vec<String> = keys(&presence.list("room"));
    guards.remove(10).leave();
    guards.push(presence.track("room", "late", meta("x")).await.unwrap());
    for _ in 0..2 {
        let diff = next_diff(&mut diffs).await;
        replica.extend(keys(&diff.joins));
        replica.retain(|key| diff.leaves.get(key).is_none());
    }
    assert_eq!(replica, keys(&presence.list("room")));
    assert_eq!(replica.len(), 50);
}

/// Topics are independent, and an emptied topic leaves nothing behind.
#[tokio::test(start_paused = true)]
async fn topics_are_independent() {
    let presence = tracker(0, 0);
    let a = presence.track("room:a", "alice", meta("Alice")).await.unwrap();
    let _b = presence.track("room:b", "bob", meta("Bob")).await.unwrap();
    assert_eq!(presence.count("room:a"), 1);
    assert_eq!(presence.topic_count(), 2);
    a.leave();
    assert_eq!(presence.count("room:a"), 0);
    assert_eq!(presence.topic_count(), 1, "an emptied topic is forgotten");
    assert_eq!(keys(&presence.list("room:b")), ["bob"]);
}

/// A tracked meta is kept trimmed: it lives as long as the entry, so spare room would be paid by every member of
/// every room (a `Meta` built field by field has room for four).
#[tokio::test(start_paused = true)]
async fn a_tracked_meta_keeps_no_spare_room() {
    let presence = tracker(0, 0);
    let mut fields = meta("Alice");
    fields.insert("joined_at".into(), serde_json::json!(1));
    assert!(fields.capacity() > 2, "built field by field");
    let guard = presence.track("room", "alice", fields).await.unwrap();
    let first = |list: livebaton::presence::PresenceList| list.metas().next().map(|(_, meta)| meta.clone()).unwrap();
    let entry = first(presence.list("room"));
    assert_eq!((entry.fields.len(), entry.fields.capacity()), (2, 2));
    let mut fields = meta("Alice");
    fields.insert("status".into(), serde_json::json!("away"));
    fields.insert("joined_at".into(), serde_json::json!(1));
    guard.update(fields).unwrap();
    let entry = first(presence.list("room"));
    assert_eq!((entry.fields.len(), entry.fields.capacity()), (3, 3), "an update is trimmed too");
}

/// Adaptive coalescing (the default): a quiet room's join is published at once, with no wait; a storm of joins in
/// one room costs a few diffs per window instead of one per join, and adds up to every join.
#[tokio::test(start_paused = true)]
async fn adaptive_coalescing_sends_a_quiet_change_at_once_and_merges_a_storm() {
    let presence = tracker_with(0, 15, Coalescing::Adaptive);
    let mut diffs = presence.subscribe("room");
    let _first = presence.track("room", "first", meta("First")).await.unwrap();
    let broadcast = diffs.try_recv().unwrap().expect("published at once, before any time passed");
    assert!(broadcast.downcast::<PresenceDiff>().is_some_and(|diff| keys(&diff.joins) == ["first"]));
    // A quiet topic again once the window has passed.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut guards = Vec::new();
    for n in 0..200 {
        guards.push(presence.track("room", &format!("m{n:03}"), meta("M")).await.unwrap());
    }
    let leading = diffs.try_recv().unwrap().expect("the storm's first join goes out at once");
    assert!(leading.downcast::<PresenceDiff>().is_some_and(|diff| keys(&diff.joins) == ["m000"]));
    assert!(diffs.try_recv().unwrap().is_none(), "the rest waits for the window");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut joined = 1;
    let mut frames = 1;
    while let Some(broadcast) = diffs.try_recv().unwrap() {
        if let Some(diff) = broadcast.downcast::<PresenceDiff>() {
            joined += diff.joins.meta_count();
            frames += 1;
            assert!(!diff.joins.is_empty() || !diff.leaves.is_empty(), "an empty diff was sent");
        }
    }
    assert_eq!(joined, 200, "every join arrives");
    assert!(frames <= 1 + 199usize.div_ceil(MAX_DIFF_METAS), "{frames} diffs for 200 joins");
}
