//! The multi-node robustness items of issue 6: a Redis that comes back from an old snapshot, a lease that lapses for
//! a moment under a sole editor, and this node's writes piling up while Redis is away. Each test failed before its
//! fix.

use std::time::Duration;

use livebaton::Engine;
use livebaton::editing::EditTarget;
use livebaton::presence::RedisRoster;
use serde_json::json;

use crate::contract::presence::{editor, eventually, keys, meta, order, owner_of};
use crate::support::{
    Proxy, RedisServer, delete_prefix, engine_config, node, notice_cuts_quickly, raw, redis_config, unique_prefix,
};

/// The leave grace of the nodes.
const GRACE: Duration = Duration::from_millis(300);

fn roster(engine: &Engine) -> &RedisRoster {
    engine.roster.as_deref().expect("a clustered engine")
}

fn owned_by(nodes: &[&Engine], target: &EditTarget, view: &str) -> bool {
    nodes.iter().all(|node| owner_of(node, target).as_deref() == Some(view))
}

/// Members Redis holds for a topic, in order.
async fn redis_members(url: &str, prefix: &str, topic: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(format!("{prefix}:presence:t:order:{topic}"))
        .arg(0)
        .arg(-1)
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

/// A field of a hash in Redis.
async fn redis_hget(url: &str, key: &str, field: &str) -> Option<String> {
    redis::cmd("HGET").arg(key).arg(field).query_async(&mut raw(url).await).await.unwrap()
}

/// Whether Redis holds the live roster of the snapshot test: Bob (on B) then Eve (on A) with Bob as owner, two room
/// members, and Bob's draft.
async fn redis_holds_live_truth(url: &str, prefix: &str, topic: &str, a_id: &str, b_id: &str) -> bool {
    let members = redis_members(url, prefix, topic).await;
    let room = redis_members(url, prefix, "room").await;
    let owner = redis_hget(url, &format!("{prefix}:presence:t:owner:{topic}"), "m").await;
    let draft = redis_hget(url, &format!("{prefix}:presence:doc:{topic}"), "j").await;
    members.len() == 2
        && members[0].starts_with(b_id)
        && members[1].starts_with(a_id)
        && room.len() == 2
        && owner.is_some_and(|owner| owner == members[0])
        && draft.is_some_and(|draft| draft.contains(r#""by":"bob""#))
}

/// Redis is restored from a snapshot taken earlier in the session (an operator restoring a backup; a replica that was
/// behind promoted after a failover). The snapshot still carries the dataset generation the nodes work in, together
/// with an owner who has left since, a room member who has left since, the entries of a node that has died since and
/// an older draft, and it misses an editor who joined since. The nodes recognise the restored dataset as a reset (by
/// Redis's `run_id`), and everything converges to the live truth, on every node and in Redis: exactly one owner per
/// session (the one the live entries give), nothing of the departed or of the dead comes back, the newcomer stays,
/// and the draft is the latest one.
#[tokio::test]
async fn a_redis_restored_from_an_old_snapshot_converges_to_the_live_roster() {
    let mut server = RedisServer::start().await;
    let prefix = unique_prefix();
    let mut config = redis_config(&prefix);
    config.roster.reassert_grace = Duration::from_secs(1);
    let a = node(&server.url(), "a", engine_config(GRACE), config.clone()).await;
    let b = node(&server.url(), "b", engine_config(GRACE), config.clone()).await;
    let c = node(&server.url(), "c", engine_config(GRACE), config).await;
    let record = EditTarget::new("article", 1).unwrap();
    let topic = record.presence_topic();
    let alice = a.editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    let _bob = b.editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
    let _on_a = a.presence.track("room", "on-a", meta("A")).await.unwrap();
    let _on_b = b.presence.track("room", "on-b", meta("B")).await.unwrap();
    let gone = b.presence.track("room", "gone", meta("B")).await.unwrap();
    let _on_c = c.presence.track("room", "on-c", meta("C")).await.unwrap();
    let everyone = [&a, &b, &c];
    eventually("Alice owns everywhere", || owned_by(&everyone, &record, "alice-1")).await;
    eventually("the room everywhere", || everyone.iter().all(|node| node.presence.count("room") == 4)).await;
    a.editing.update_draft(&record, "alice-1", 1, json!({"by": "alice"})).unwrap();
    a.presence.flush().await;
    eventually("Alice's draft everywhere", || everyone.iter().all(|node| node.editing.draft(&record).is_some())).await;
    let generation = roster(&a).generation();
    let snapshot = server.snapshot("before").await;

    // After the snapshot: Alice leaves and Bob, promoted, types; "gone" leaves the room; Eve joins on A; C dies.
    alice.leave();
    gone.leave();
    let _eve = a.editing.track_editing_session(&record, "eve-1", &editor("5", "Eve"), None).await.unwrap();
    let survivors = [&a, &b];
    eventually("Bob owns on both survivors", || owned_by(&survivors, &record, "bob-1")).await;
    b.editing.update_draft(&record, "bob-1", 1, json!({"by": "bob"})).unwrap();
    b.presence.flush().await;
    let bobs = |node: &Engine| node.editing.draft(&record).is_some_and(|draft| draft.params == json!({"by": "bob"}));
    eventually("Bob's draft on both survivors", || survivors.iter().all(|node| bobs(node))).await;
    roster(&c).halt();

    server.restart_from(&snapshot).await;
    eventually("both survivors moved to a new dataset generation", || {
        survivors.iter().all(|node| roster(node).generation() != generation)
    })
    .await;
    let live = |node: &Engine| {
        keys(node, &topic) == ["bob-1", "eve-1"]
            && keys(node, "room") == ["on-a", "on-b"]
            && owner_of(node, &record).as_deref() == Some("bob-1")
            && bobs(node)
    };
    eventually("every survivor lists the live roster and Bob's draft", || survivors.iter().all(|node| live(node)))
        .await;
    assert_eq!(order(&a, &topic), order(&b, &topic), "same order and seqs");
    let (url, a_id, b_id) = (server.url(), roster(&a).node_id().to_owned(), roster(&b).node_id().to_owned());
    let holds_live_truth = || redis_holds_live_truth(&url, &prefix, &topic, &a_id, &b_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !holds_live_truth().await {
        assert!(tokio::time::Instant::now() < deadline, "Redis holds the live roster, Bob as owner and his draft");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the re-assert grace nothing of the departed or the dead comes back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(survivors.iter().all(|node| live(node)), "still the live roster after the grace");
    assert!(holds_live_truth().await, "Redis still holds the live roster after the grace");
    let mut token = None;
    eventually("Bob can fence", || {
        token = b.editing.fence(&record, "bob-1").ok();
        token.is_some()
    })
    .await;
    b.editing.verify_with_authority(&token.unwrap()).await.unwrap();
    for node in survivors {
        roster(node).halt();
    }
    delete_prefix(&server.url(), &prefix);
}

/// Node A, where Alice is the only editor of a record, is cut off from Redis for longer than its lease (Redis slow,
/// a network blip): B takes A for dead, removes Alice and, the session being empty as far as B can tell, ends its
/// draft. Alice is still there: when A is back it re-asserts her and writes back the draft it kept, so after the blip
/// every node (and Redis) lists Alice as the owner with her unsaved draft, and she can go on typing.
#[tokio::test]
async fn a_lease_blip_keeps_the_sole_editors_draft() {
    let server = RedisServer::start().await;
    let mut proxy = Proxy::start(format!("127.0.0.1:{}", server.port)).await;
    let prefix = unique_prefix();
    let mut config = redis_config(&prefix);
    config.roster.lease = Duration::from_millis(2000);
    config.roster.refresh = Duration::from_millis(400);
    notice_cuts_quickly(&mut config, Duration::from_millis(300));
    let a = node(&proxy.url(), "a", engine_config(GRACE), config.clone()).await;
    let b = node(&server.url(), "b", engine_config(GRACE), config).await;
    let nodes = [&a, &b];
    let record = EditTarget::new("article", 3).unwrap();
    let topic = record.presence_topic();
    let doc_key = format!("{prefix}:presence:doc:{topic}");
    let _alice = a.editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    eventually("Alice owns everywhere", || owned_by(&nodes, &record, "alice-1")).await;
    let typed = json!({"title": "typed before the blip"});
    let mut written = false;
    eventually("Alice can type", || {
        written = written || a.editing.update_draft(&record, "alice-1", 7, typed.clone()).is_ok();
        written
    })
    .await;
    let holds = |node: &Engine| node.editing.draft(&record).is_some_and(|draft| draft.params == typed);
    eventually("the draft everywhere", || nodes.iter().all(|node| holds(node))).await;

    proxy.stop().await;
    eventually("B takes A for dead: the session is empty there and its draft ended", || {
        keys(&b, &topic).is_empty() && b.editing.draft(&record).is_none()
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while redis_hget(&server.url(), &doc_key, "j").await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "B ended the draft in Redis too");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(keys(&a, &topic), ["alice-1"], "Alice is still there on A");

    proxy.restart().await;
    eventually("after the blip every node lists Alice as the owner, with her draft", || {
        nodes
            .iter()
            .all(|node| keys(node, &topic) == ["alice-1"] && owned_by(&[node], &record, "alice-1") && holds(node))
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !redis_hget(&server.url(), &doc_key, "j").await.is_some_and(|json| json.contains("typed before the blip")) {
        assert!(tokio::time::Instant::now() < deadline, "the draft is back in Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(roster(&a).stats().reconciles >= 1, "A re-asserted its entries");
    let more = json!({"title": "typed after the blip"});
    let mut written = false;
    eventually("Alice goes on typing", || {
        written = written || a.editing.update_draft(&record, "alice-1", 7, more.clone()).is_ok();
        written
    })
    .await;
    eventually("her new draft everywhere", || {
        nodes.iter().all(|node| node.editing.draft(&record).is_some_and(|draft| draft.params == more))
    })
    .await;
    for node in nodes {
        roster(node).halt();
    }
    delete_prefix(&server.url(), &prefix);
}

/// The latest `n` each node lists for every key of `topic`, in order.
fn latest(node: &Engine, topic: &str) -> Vec<(String, Option<u64>)> {
    node.presence
        .sorted(topic)
        .iter()
        .map(|(key, meta)| (key.to_string(), meta.get("n").and_then(serde_json::Value::as_u64)))
        .collect()
}

/// Redis does not answer node A for a while, and A's pages keep changing: thousands of updates, leaves, and joins
/// that give up waiting. A's queue of roster writes stays within its capacity (plus a few commands) all along, instead
/// of growing with every change, and once Redis answers again every node and Redis hold exactly A's live entries
/// with their latest metadata, and A's pages can join again.
#[tokio::test]
async fn while_redis_is_away_the_write_queue_stays_bounded_and_the_roster_is_right_afterwards() {
    const CAPACITY: usize = 64;
    let server = RedisServer::start().await;
    let mut proxy = Proxy::start(format!("127.0.0.1:{}", server.port)).await;
    let prefix = unique_prefix();
    let mut config = redis_config(&prefix);
    config.roster.queue_capacity = CAPACITY;
    config.roster.join_timeout = Duration::from_millis(100);
    config.roster.lease = Duration::from_secs(30);
    notice_cuts_quickly(&mut config, Duration::from_millis(300));
    let a = node(&proxy.url(), "a", engine_config(GRACE), config.clone()).await;
    let b = node(&server.url(), "b", engine_config(GRACE), config).await;
    let nodes = [&a, &b];
    let mut guards = Vec::new();
    for i in 0..20 {
        let mut fields = meta("A");
        fields.insert("n".into(), json!(0));
        guards.push(Some(a.presence.track("room", &format!("k{i:02}"), fields).await.unwrap()));
    }
    eventually("the room on B", || b.presence.count("room") == 20).await;

    proxy.stop().await;
    let mut peak = 0u64;
    let mut failed_joins = 0;
    for n in 1..=4000u64 {
        let i = (n % 20) as usize;
        if n % 400 == 0 {
            // Ten of the twenty leave while Redis is away.
            if let Some(guard) = guards[(n / 400) as usize * 2 - 1].take() {
                guard.leave();
            }
        }
        if let Some(guard) = &guards[i] {
            let mut fields = meta("A");
            fields.insert("n".into(), json!(n));
            guard.update(fields).unwrap();
        }
        if n % 100 == 0 {
            // A page that tries to join and gives up.
            failed_joins += usize::from(a.presence.track("room", &format!("late-{n}"), meta("A")).await.is_err());
            tokio::task::yield_now().await;
        }
        peak = peak.max(roster(&a).stats().queued);
    }
    let stats = roster(&a).stats();
    println!("while Redis was away: peak queue {peak} (capacity {CAPACITY}), {} writes coalesced", stats.coalesced);
    assert_eq!(failed_joins, 40, "joins fail while Redis is away");
    assert!(peak <= CAPACITY as u64 + 8, "the queue stayed bounded: peak {peak}");
    assert!(stats.coalesced > 0, "writes were coalesced");

    proxy.restart().await;
    let expected: Vec<(String, Option<u64>)> = guards
        .iter()
        .enumerate()
        .filter(|(_, guard)| guard.is_some())
        .map(|(i, _)| (format!("k{i:02}"), Some(4000 - 20 + i as u64 + if i == 0 { 20 } else { 0 })))
        .collect();
    assert_eq!(expected.len(), 10);
    eventually("every node lists A's live entries with their latest metadata", || {
        nodes.iter().all(|node| latest(node, "room") == expected)
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while redis_members(&server.url(), &prefix, "room").await.len() != 10 {
        assert!(tokio::time::Instant::now() < deadline, "Redis holds A's ten live entries");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // This node's joins give up after 100 ms, which a loaded machine can exceed: try until one is numbered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let _again = loop {
        match a.presence.track("room", "again", meta("A")).await {
            Ok(guard) => break guard,
            Err(error) => assert!(tokio::time::Instant::now() < deadline, "a join works again: {error}"),
        }
    };
    eventually("a join works again", || b.presence.count("room") == 11).await;
    assert!(roster(&a).stats().queued <= 1);
    for node in nodes {
        roster(node).halt();
    }
    delete_prefix(&server.url(), &prefix);
}
