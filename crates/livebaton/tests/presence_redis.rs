//! The presence contract against the Redis roster with two and three nodes in one process (each engine has its own
//! PubSub backend and roster connection: a separate node), and what only a shared roster has to get right: dead
//! nodes' leases, Redis losing its data, reconnects, and fencing across nodes.
//!
//! Needs a Redis server at `REDIS_URL` (default `redis://127.0.0.1:6379`): without one these tests fail, they never
//! skip. Every test uses its own key prefix and channels. Tests that restart or flush Redis start a private
//! `redis-server` (on PATH) on a free port and kill it at the end, also when the test fails.

mod contract;
#[path = "presence_redis/regressions.rs"]
mod regressions;
#[path = "presence_redis/robustness.rs"]
mod robustness;
mod support;

mod two_nodes {
    crate::presence_contract!(crate::support::cluster(2).await);
}

mod three_nodes {
    crate::presence_contract!(crate::support::cluster(3).await);
}

mod redis_only {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use livebaton::Engine;
    use livebaton::editing::{EditTarget, OwnerChangeReason};
    use livebaton::presence::{RedisRoster, RedisRosterConfig};
    use livebaton::{editing::OwnerChanged, pubsub::Subscription};
    use serde_json::json;
    use tokio::time::{Instant, sleep};

    use crate::contract::presence::{editor, eventually, keys, meta, next_owner_change, order, owner_of};
    use crate::support::{
        Cluster, Proxy, RedisServer, cluster_at, delete_prefix, engine_config, node, notice_cuts_quickly, raw,
        redis_config, redis_url, unique_prefix,
    };

    const GRACE: Duration = Duration::from_millis(300);

    fn roster(engine: &Engine) -> &RedisRoster {
        engine.roster.as_deref().expect("a clustered engine")
    }

    /// Owner changes heard so far on a subscription, without waiting.
    fn owner_changes(subscription: &mut Subscription) -> Vec<String> {
        let mut changes = Vec::new();
        while let Ok(Some(broadcast)) = subscription.try_recv() {
            if let Some(change) = broadcast.downcast::<OwnerChanged>() {
                let owner = change.owner.as_ref().map(|owner| owner.view_id.to_string());
                changes.push(format!("{:?} -> {owner:?}", change.previous_owner));
            }
        }
        changes
    }

    /// Every node's `(key, seq)` list of `topic`.
    fn orders(nodes: &[Engine], topic: &str) -> Vec<Vec<(String, u64)>> {
        nodes.iter().map(|node| order(node, topic)).collect()
    }

    /// Whether every node has the same single owner `view` for `target`.
    fn owned_by(nodes: &[Engine], target: &EditTarget, view: &str) -> bool {
        nodes.iter().all(|node| owner_of(node, target).as_deref() == Some(view))
    }

    /// The leader member Redis records for a topic.
    async fn redis_owner(cluster: &Cluster, topic: &str) -> Option<String> {
        let mut redis = raw(cluster.url()).await;
        redis::cmd("HGET")
            .arg(format!("{}:presence:t:owner:{topic}", cluster.prefix()))
            .arg("m")
            .query_async(&mut redis)
            .await
            .unwrap()
    }

    /// Members Redis holds for a topic, in order.
    async fn redis_members(url: &str, prefix: &str, topic: &str) -> Vec<String> {
        let mut redis = raw(url).await;
        redis::cmd("ZRANGE")
            .arg(format!("{prefix}:presence:t:order:{topic}"))
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .unwrap()
    }

    /// A topic's leader is its first entry tracked as one that may lead, on every node and in Redis, whatever the
    /// entries' metadata says: a `can_edit` field means nothing to presence.
    #[tokio::test]
    async fn the_leader_is_the_first_entry_tracked_as_one_that_may_lead() {
        use livebaton::presence::TrackOptions;

        let cluster = cluster_at(&redis_url(), 2, GRACE, &unique_prefix()).await;
        let (a, b) = (&cluster[0], &cluster[1]);
        let mut looks_eligible = meta("Mallory");
        looks_eligible.insert("can_edit".into(), json!(true));
        let _first = a.presence.track("doc", "mallory", looks_eligible).await.unwrap();
        let may_lead = TrackOptions { tab_id: None, may_lead: true };
        let _second = b.presence.track_with("doc", "bob", meta("Bob"), may_lead).await.unwrap();
        eventually("both nodes list both", || cluster.iter().all(|n| n.presence.count("doc") == 2)).await;
        let leader = redis_owner(&cluster, "doc").await.expect("Redis names a leader");
        assert!(leader.starts_with(roster(b).node_id()), "Bob's entry on b leads, not Mallory's: {leader}");
        eventually("both nodes agree with Redis", || {
            cluster.iter().all(|n| n.presence.authority("doc").and_then(|a| a.member).as_deref() == Some(&*leader))
        })
        .await;
        assert_eq!(order(a, "doc").first().map(|(key, _)| key.as_str()), Some("mallory"), "Mallory is still first");
    }

    /// A node that stops refreshing its lease (halted: its tasks stop and nothing is removed, as with `kill -9`) has
    /// its entries removed by the survivors within the lease plus one refresh period, and the next eligible editor is
    /// promoted on every surviving node. Nothing of it comes back afterwards.
    #[tokio::test]
    async fn a_crashed_node_is_removed_within_the_lease_and_the_next_editor_is_promoted() {
        let cluster = cluster_at(&redis_url(), 3, GRACE, &unique_prefix()).await;
        let (a, b, c) = (&cluster[0], &cluster[1], &cluster[2]);
        let record = EditTarget::new("article", 1).unwrap();
        let _alice = a.editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
        let _bob = b.editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
        let _room = a.presence.track("room", "alice", meta("Alice")).await.unwrap();
        let _room_c = c.presence.track("room", "carol", meta("Carol")).await.unwrap();
        eventually("Alice owns everywhere", || owned_by(&cluster, &record, "alice-1")).await;
        eventually("the room lists both everywhere", || cluster.iter().all(|n| n.presence.count("room") == 2)).await;
        let mut on_b = b.editing.subscribe_to_editing(&record);
        let mut on_c = c.editing.subscribe_to_editing(&record);
        let defaults = RedisRosterConfig::default();

        let crashed = Instant::now();
        roster(a).halt();
        for subscription in [&mut on_b, &mut on_c] {
            let change = next_owner_change(subscription).await;
            assert_eq!(change.reason, OwnerChangeReason::Promoted);
            assert_eq!(change.owner.as_ref().map(|o| &*o.view_id), Some("bob-1"));
        }
        let elapsed = crashed.elapsed();
        println!(
            "crash -> promotion on the survivors: {elapsed:?} (lease {:?}, refresh {:?})",
            defaults.lease, defaults.refresh
        );
        assert!(elapsed >= defaults.lease - defaults.refresh, "not before the lease ran out: {elapsed:?}");
        assert!(
            elapsed <= defaults.lease + defaults.refresh + Duration::from_millis(300),
            "within the lease + 1 s: {elapsed:?}"
        );
        for survivor in [b, c] {
            assert_eq!(keys(survivor, "room"), ["carol"], "Alice's presence is gone");
            assert_eq!(keys(survivor, &record.presence_topic()), ["bob-1"]);
            assert!(survivor.editing.editing_role(&record, "bob-1", "2").is_owner());
        }
        // No ghost afterwards: nothing of the dead node comes back, and Redis holds nothing of it.
        sleep(defaults.refresh * 2).await;
        for survivor in [b, c] {
            assert_eq!(keys(survivor, "room"), ["carol"]);
            assert_eq!(keys(survivor, &record.presence_topic()), ["bob-1"]);
        }
        let mut redis = raw(cluster.url()).await;
        let owned: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{}:presence:owned:{}", cluster.prefix(), roster(a).node_id()))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(owned.is_empty(), "the dead node owns nothing in Redis: {owned:?}");
        assert_eq!(
            redis_owner(&cluster, &record.presence_topic())
                .await
                .as_deref()
                .map(|m| m.starts_with(roster(b).node_id())),
            Some(true)
        );
    }

    /// Sessions for the Redis-loss tests: record 1 owned by Alice (node A) with Bob (B) and Carol (C) waiting;
    /// record 2 owned by Bob with Alice waiting; record 3 owned by Carol with Dave (A) waiting; and a room with
    /// members on every node.
    async fn sessions(cluster: &Cluster) -> Vec<livebaton::presence::TrackGuard> {
        let (a, b, c) = (&cluster[0], &cluster[1], &cluster[2]);
        let (r1, r2, r3) = (
            EditTarget::new("article", 1).unwrap(),
            EditTarget::new("article", 2).unwrap(),
            EditTarget::new("article", 3).unwrap(),
        );
        let mut guards = Vec::new();
        guards.push(a.editing.track_editing_session(&r1, "alice-1", &editor("1", "Alice"), Some("a1")).await.unwrap());
        guards.push(b.editing.track_editing_session(&r1, "bob-1", &editor("2", "Bob"), Some("b1")).await.unwrap());
        guards.push(c.editing.track_editing_session(&r1, "carol-1", &editor("3", "Carol"), Some("c1")).await.unwrap());
        guards.push(b.editing.track_editing_session(&r2, "bob-2", &editor("2", "Bob"), Some("b2")).await.unwrap());
        guards.push(a.editing.track_editing_session(&r2, "alice-2", &editor("1", "Alice"), Some("a2")).await.unwrap());
        guards.push(c.editing.track_editing_session(&r3, "carol-3", &editor("3", "Carol"), Some("c3")).await.unwrap());
        guards.push(a.editing.track_editing_session(&r3, "dave-3", &editor("4", "Dave"), Some("d3")).await.unwrap());
        for (n, node) in cluster.iter().enumerate() {
            guards.push(node.presence.track("room", &format!("member-{n}"), meta("x")).await.unwrap());
        }
        eventually("owners everywhere", || {
            owned_by(cluster, &r1, "alice-1") && owned_by(cluster, &r2, "bob-2") && owned_by(cluster, &r3, "carol-3")
        })
        .await;
        eventually("the room everywhere", || cluster.iter().all(|node| node.presence.count("room") == 3)).await;
        guards
    }

    /// Redis loses everything (FLUSHALL) mid-session, and node C dies at the same time. The survivors notice,
    /// re-assert their entries at their old places, and nobody sees an owner change for the sessions whose owners
    /// survived; the dead node's entries stay listed (stale) during the re-assert grace, then go, and the next in
    /// line is promoted where the dead node held the baton. Exactly one owner per session, on every node and in Redis;
    /// tokens of the old dataset are refused; the roster works as before afterwards.
    #[tokio::test]
    async fn after_a_flushall_nodes_re_assert_and_each_session_keeps_exactly_one_owner() {
        let server = RedisServer::start().await;
        let cluster = cluster_at(&server.url(), 3, GRACE, &unique_prefix()).await;
        let _guards = sessions(&cluster).await;
        let (a, b) = (&cluster[0], &cluster[1]);
        let survivors = &cluster.nodes[..2];
        let (r1, r2, r3) = (
            EditTarget::new("article", 1).unwrap(),
            EditTarget::new("article", 2).unwrap(),
            EditTarget::new("article", 3).unwrap(),
        );
        let before: Vec<_> = [&r1, &r2].iter().map(|r| orders(survivors, &r.presence_topic())).collect();
        let old_generation = roster(a).generation();
        let mut watching: Vec<Subscription> = survivors
            .iter()
            .flat_map(|node| [node.editing.subscribe_to_editing(&r1), node.editing.subscribe_to_editing(&r2)])
            .collect();
        let old_token = a.editing.fence(&r1, "alice-1").unwrap();

        roster(&cluster[2]).halt();
        let mut redis = raw(&server.url()).await;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut redis).await.unwrap();
        let flushed = Instant::now();

        eventually("both survivors moved to the new dataset", || {
            survivors.iter().all(|node| roster(node).generation() != old_generation)
        })
        .await;
        assert_eq!(roster(a).generation(), roster(b).generation());
        let mut reasserted = false;
        for _ in 0..200 {
            let r1_members = redis_members(&server.url(), cluster.prefix(), &r1.presence_topic()).await;
            let r2_members = redis_members(&server.url(), cluster.prefix(), &r2.presence_topic()).await;
            if r1_members.len() == 2 && r2_members.len() == 2 {
                reasserted = true;
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
        assert!(reasserted, "the survivors re-asserted their entries in Redis");
        println!("FLUSHALL -> entries re-asserted: {:?}", flushed.elapsed());
        // Within the grace the dead node's entries are still listed, so nothing moved for anyone.
        if flushed.elapsed() < RedisRosterConfig::default().reassert_grace / 2 {
            assert_eq!(owner_of(a, &r3).as_deref(), Some("carol-3"), "Carol stays listed during the grace");
        }
        eventually("after the grace Carol is gone and Dave holds record 3", || {
            owned_by(survivors, &r3, "dave-3")
                && survivors.iter().all(|node| keys(node, &r1.presence_topic()) == ["alice-1", "bob-1"])
        })
        .await;
        let after: Vec<_> = [&r1, &r2].iter().map(|r| orders(survivors, &r.presence_topic())).collect();
        let without_carol: Vec<Vec<Vec<(String, u64)>>> = before
            .iter()
            .map(|per_node| {
                per_node.iter().map(|list| list.iter().filter(|(key, _)| key != "carol-1").cloned().collect()).collect()
            })
            .collect();
        assert_eq!(after, without_carol, "same order and seqs as before the flush");
        for subscription in &mut watching {
            assert_eq!(
                owner_changes(subscription),
                Vec::<String>::new(),
                "no owner change for sessions whose owner lived"
            );
        }
        assert!(owned_by(survivors, &r1, "alice-1") && owned_by(survivors, &r2, "bob-2"));
        let r1_owner = redis_owner(&cluster, &r1.presence_topic()).await.expect("Redis records an owner");
        assert!(r1_owner.starts_with(roster(a).node_id()), "Redis agrees: {r1_owner}");
        assert!(a.editing.verify_with_authority(&old_token).await.is_err(), "a token of the lost dataset is refused");
        let mut new_token = None;
        eventually("Alice can fence again", || {
            new_token = a.editing.fence(&r1, "alice-1").ok();
            new_token.is_some()
        })
        .await;
        a.editing.verify_with_authority(&new_token.unwrap()).await.unwrap();
        // The roster works as before: a newcomer goes to the back, everywhere.
        let _eve = b.editing.track_editing_session(&r1, "eve-1", &editor("5", "Eve"), None).await.unwrap();
        eventually("Eve is last everywhere", || {
            survivors.iter().all(|node| keys(node, &r1.presence_topic()) == ["alice-1", "bob-1", "eve-1"])
        })
        .await;
    }

    /// Redis is killed and restarted empty mid-session: every node reconnects, notices the new dataset, re-asserts
    /// its entries at their old places; the lists, seqs and owners are as before on every node, nobody sees an owner
    /// change, no ghost appears, drafts are written back, and a newcomer joins at the back.
    #[tokio::test]
    async fn after_a_redis_restart_nodes_re_assert_and_nothing_moves() {
        let mut server = RedisServer::start().await;
        let cluster = cluster_at(&server.url(), 3, GRACE, &unique_prefix()).await;
        let _guards = sessions(&cluster).await;
        let (r1, r2, r3) = (
            EditTarget::new("article", 1).unwrap(),
            EditTarget::new("article", 2).unwrap(),
            EditTarget::new("article", 3).unwrap(),
        );
        cluster[0].editing.update_draft(&r1, "alice-1", 4, json!({"title": "typed before the restart"})).unwrap();
        eventually("the draft everywhere", || cluster.iter().all(|node| node.editing.draft(&r1).is_some())).await;
        let topics = [&r1, &r2, &r3].map(|r| r.presence_topic());
        let before: Vec<_> = topics.iter().map(|topic| orders(&cluster, topic)).collect();
        let room_before = orders(&cluster, "room");
        let old_generation = roster(&cluster[0]).generation();
        let mut watching: Vec<Subscription> =
            cluster.iter().flat_map(|node| [&r1, &r2, &r3].map(|r| node.editing.subscribe_to_editing(r))).collect();

        server.kill();
        sleep(Duration::from_millis(300)).await;
        server.restart().await;
        let restarted = Instant::now();
        eventually("every node moved to the new dataset", || {
            cluster.iter().all(|node| roster(node).generation() != old_generation)
        })
        .await;
        let mut reasserted = false;
        for _ in 0..500 {
            let mut complete = true;
            for topic in &topics {
                complete &= redis_members(&server.url(), cluster.prefix(), topic).await.len()
                    == if topic.ends_with(":1") { 3 } else { 2 };
            }
            if complete {
                reasserted = true;
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
        assert!(reasserted, "every node re-asserted its entries");
        println!("restart -> entries re-asserted: {:?}", restarted.elapsed());
        // Past the re-assert grace nothing was dropped and nothing moved.
        sleep(RedisRosterConfig::default().reassert_grace + Duration::from_millis(500)).await;
        let after: Vec<_> = topics.iter().map(|topic| orders(&cluster, topic)).collect();
        assert_eq!(after, before, "same lists, order and seqs on every node");
        assert_eq!(orders(&cluster, "room"), room_before, "no ghost, nobody lost");
        for subscription in &mut watching {
            assert_eq!(owner_changes(subscription), Vec::<String>::new(), "nobody saw an owner change");
        }
        assert!(
            owned_by(&cluster, &r1, "alice-1")
                && owned_by(&cluster, &r2, "bob-2")
                && owned_by(&cluster, &r3, "carol-3")
        );
        for (topic, node) in topics.iter().zip([0, 1, 2]) {
            let owner = redis_owner(&cluster, topic).await.expect("Redis records an owner");
            assert!(owner.starts_with(roster(&cluster[node]).node_id()), "{topic}: {owner}");
        }
        let mut redis = raw(&server.url()).await;
        let draft: Option<String> = redis::cmd("HGET")
            .arg(format!("{}:presence:doc:{}", cluster.prefix(), r1.presence_topic()))
            .arg("j")
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(draft.is_some_and(|draft| draft.contains("typed before the restart")), "the draft was written back");
        let _eve = cluster[1].editing.track_editing_session(&r1, "eve-1", &editor("5", "Eve"), None).await.unwrap();
        eventually("Eve is last everywhere", || {
            cluster.iter().all(|node| keys(node, &r1.presence_topic()) == ["alice-1", "bob-1", "carol-1", "eve-1"])
        })
        .await;
    }

    /// Node A is cut off from Redis longer than its lease: the others declare it dead and promote Bob; A, which
    /// cannot vouch for its view any more, refuses Alice's save meanwhile. When A is back it learns it was declared
    /// dead and re-asserts Alice at the back of the queue: Bob keeps the baton, and every node agrees on one owner.
    #[tokio::test]
    async fn a_node_cut_off_past_its_lease_rejoins_at_the_back_and_one_owner_remains() {
        let server = RedisServer::start().await;
        let mut proxy = Proxy::start(format!("127.0.0.1:{}", server.port)).await;
        let prefix = unique_prefix();
        let mut config = redis_config(&prefix);
        config.roster.lease = Duration::from_millis(1000);
        config.roster.refresh = Duration::from_millis(200);
        notice_cuts_quickly(&mut config, Duration::from_millis(200));
        let a = node(&proxy.url(), "a", engine_config(GRACE), config.clone()).await;
        let b = node(&server.url(), "b", engine_config(GRACE), config).await;
        let nodes = [a, b];
        let (a, b) = (&nodes[0], &nodes[1]);
        let record = EditTarget::new("article", 5).unwrap();
        let _alice = a.editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
        let _bob = b.editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
        eventually("Alice owns everywhere", || owned_by(&nodes, &record, "alice-1")).await;
        let mut token = None;
        eventually("Alice can fence", || {
            token = a.editing.fence(&record, "alice-1").ok();
            token.is_some()
        })
        .await;
        let token = token.unwrap();

        proxy.stop().await;
        eventually("B declares A dead and promotes Bob", || owner_of(b, &record).as_deref() == Some("bob-1")).await;
        assert!(a.editing.verify(&token).is_err(), "A cannot vouch for Alice any more: its lease is stale");
        assert!(a.editing.verify_with_authority(&token).await.is_err());

        proxy.restart().await;
        eventually("every node lists Bob, then Alice", || {
            nodes.iter().all(|node| keys(node, &record.presence_topic()) == ["bob-1", "alice-1"])
        })
        .await;
        eventually("one owner everywhere: Bob", || owned_by(&nodes, &record, "bob-1")).await;
        assert!(roster(a).stats().reconciles >= 1);
        assert!(a.editing.fence(&record, "alice-1").is_err());
        for node in &nodes {
            roster(node).halt();
        }
        delete_prefix(&server.url(), &prefix);
    }

    /// A node whose subscription is cut (shorter than its lease) misses the others' changes; when it is back it
    /// reloads the replica and lists exactly what the others list.
    #[tokio::test]
    async fn a_reconnected_node_reloads_what_it_missed() {
        let server = RedisServer::start().await;
        let mut proxy = Proxy::start(format!("127.0.0.1:{}", server.port)).await;
        let prefix = unique_prefix();
        let config = redis_config(&prefix);
        let a = node(&proxy.url(), "a", engine_config(GRACE), config.clone()).await;
        let b = node(&server.url(), "b", engine_config(GRACE), config).await;
        let nodes = [a, b];
        let (a, b) = (&nodes[0], &nodes[1]);
        let mine = a.presence.track("room", "on-a", meta("A")).await.unwrap();
        let leaving = b.presence.track("room", "leaving", meta("B")).await.unwrap();
        eventually("both everywhere", || nodes.iter().all(|node| node.presence.count("room") == 2)).await;
        let mut status = roster(a).status();

        proxy.stop().await;
        leaving.leave();
        let _late = b.presence.track("room", "late", meta("B")).await.unwrap();
        let _elsewhere = b.presence.track("other", "only-b", meta("B")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(|status| !status.connected))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keys(a, "room"), ["on-a", "leaving"], "A missed the changes while cut off");

        proxy.restart().await;
        eventually("A lists what B lists", || {
            keys(a, "room") == ["on-a", "late"]
                && keys(a, "other") == ["only-b"]
                && order(a, "room") == order(b, "room")
        })
        .await;
        // The counter goes up once the reload (the replica, then the drafts) is done, a moment after the lists agree.
        eventually("A reloaded after reconnecting", || roster(a).stats().resyncs >= 2).await;
        mine.leave();
        eventually("A's leave reaches B", || keys(b, "room") == ["late"]).await;
        for node in &nodes {
            roster(node).halt();
        }
        delete_prefix(&server.url(), &prefix);
    }

    /// Forced split brain, many times over, in random timings: the owner's tab on node A fences a save; another tab of
    /// the same user, on node B, takes the baton and its write reaches Redis; A, which may not have heard of it yet,
    /// then tries to commit the save. The store commits only after `verify_with_authority` and the row's
    /// `lock_version` check. Counts the rounds where A's own view still believed it owned (the split brain really
    /// happened) and the lost updates (a save accepted from a token that had lost ownership): these must be 0.
    ///
    /// Node A reaches Redis through a proxy that adds 3 ms to everything Redis sends it (a node far away), so A often
    /// has not heard of a hand-over made on B when it checks; B is near.
    #[tokio::test]
    async fn split_brain_saves_fenced_by_a_lost_ownership_are_refused() {
        let server = RedisServer::start().await;
        let proxy = Proxy::with_latency(format!("127.0.0.1:{}", server.port), Duration::from_millis(3)).await;
        let prefix = unique_prefix();
        let config = redis_config(&prefix);
        let a = node(&proxy.url(), "a", engine_config(GRACE), config.clone()).await;
        let b = node(&server.url(), "b", engine_config(GRACE), config).await;
        let cluster = [a, b];
        let record = EditTarget::new("article", 77).unwrap();
        let alice = editor("1", "Alice");
        let tabs = [(&cluster[0], "alice-a"), (&cluster[1], "alice-b")];
        let _tab_a = tabs[0].0.editing.track_editing_session(&record, tabs[0].1, &alice, Some("ta")).await.unwrap();
        let _tab_b = tabs[1].0.editing.track_editing_session(&record, tabs[1].1, &alice, Some("tb")).await.unwrap();
        let _bob = cluster[1].editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
        let mut rng = seed;
        let mut random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut row_lock_version = 1i64;
        let (mut lost, mut stale_views, mut refused, mut saved) = (0, 0, 0, 0);
        let rounds = 150;
        let mut holder = 0;
        for round in 0..rounds {
            let (old_node, old_view) = tabs[holder];
            let (new_node, new_view) = tabs[1 - holder];
            eventually("both nodes agree on the holder", || owned_by(&cluster, &record, old_view)).await;
            let mut token = None;
            eventually("the holder can fence", || {
                token = old_node.editing.fence(&record, old_view).ok();
                token.is_some()
            })
            .await;
            old_node.editing.update_draft(&record, old_view, row_lock_version, json!({"round": round})).unwrap();
            let token = old_node.editing.fence(&record, old_view).unwrap();

            new_node.editing.take_here(&record, new_view).unwrap();
            new_node.presence.flush().await;
            let pause = random() % 4;
            if pause > 0 {
                sleep(Duration::from_micros(pause * 1000)).await;
            }
            if old_node.editing.verify(&token).is_ok() {
                stale_views += 1;
            }
            // The store's commit of the old holder's save.
            match old_node.editing.verify_with_authority(&token).await {
                Ok(()) if token.base_lock_version() == Some(row_lock_version) => {
                    row_lock_version += 1;
                    lost += 1;
                }
                Ok(()) => {}
                Err(_) => refused += 1,
            }
            // The new holder saves: it must succeed once its node has heard of the hand-over.
            let mut new_token = None;
            eventually("the new holder can fence", || {
                new_token = new_node.editing.fence(&record, new_view).ok();
                new_token.is_some()
            })
            .await;
            let new_token = new_token.unwrap();
            new_node.editing.verify_with_authority(&new_token).await.unwrap();
            row_lock_version += 1;
            new_node.editing.finish_save(&new_token, row_lock_version);
            saved += 1;
            holder = 1 - holder;
        }
        println!(
            "split brain (seed {seed}): {rounds} rounds; the old holder's node still believed it owned in {stale_views}; \
             refused {refused}; new holders saved {saved}; lost updates: {lost}"
        );
        assert_eq!(lost, 0, "a save fenced with a token that lost ownership was accepted");
        assert_eq!(refused, rounds);
        assert!(stale_views > 0, "the race never caught a node with a stale view: the test proves nothing");
        for node in &cluster {
            roster(node).halt();
        }
        delete_prefix(&server.url(), &prefix);
    }

    /// A node that shuts down in order (`Engine::retire`) takes its presences with it at once: the others see them
    /// leave and promote the next editor without waiting for its lease.
    #[tokio::test]
    async fn a_retiring_node_removes_its_entries_at_once() {
        let cluster = cluster_at(&redis_url(), 2, GRACE, &unique_prefix()).await;
        let (a, b) = (&cluster[0], &cluster[1]);
        let record = EditTarget::new("article", 9).unwrap();
        let _alice = a.editing.track_editing_session(&record, "alice-1", &editor("1", "Alice"), None).await.unwrap();
        let _bob = b.editing.track_editing_session(&record, "bob-1", &editor("2", "Bob"), None).await.unwrap();
        let _room = a.presence.track("room", "alice", meta("Alice")).await.unwrap();
        eventually("Alice owns everywhere", || owned_by(&cluster, &record, "alice-1")).await;
        let retired = Instant::now();
        a.retire().await.unwrap();
        eventually("Bob owns on B", || owner_of(b, &record).as_deref() == Some("bob-1")).await;
        assert!(
            retired.elapsed() < RedisRosterConfig::default().lease / 2,
            "not by lease expiry: {:?}",
            retired.elapsed()
        );
        assert!(keys(b, "room").is_empty());
    }

    /// No Redis at the address: building a clustered engine, or a roster alone, fails with an error that says where
    /// it looked and never shows the password.
    #[tokio::test]
    async fn connecting_to_a_missing_redis_fails_clearly() {
        let port = crate::support::free_port();
        let url = format!("redis://user:secret@127.0.0.1:{port}");
        let config = redis_config(&unique_prefix());
        let error = RedisRoster::connect(&url, "n", config.roster.clone()).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")) && !text.contains("secret"), "{text}");
        let error = Engine::with_redis_config(engine_config(GRACE), &url, "n", config).await.err().expect("no Redis");
        let text = error.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")) && !text.contains("secret"), "{text}");
        let bad = RedisRoster::connect(&redis_url(), "", RedisRosterConfig::default()).await.unwrap_err();
        assert!(bad.to_string().contains("node name"), "{bad}");
    }

    /// Measures (and prints) how long a spectator on another node takes to be promoted after the owner's page left:
    /// from the owner's `leave` on node A to the moment node B observed the change that promoted Bob (the
    /// `owner_changed` it publishes carries that instant). The figures are for the record (the benchmarks measure
    /// latency), never a pass/fail threshold. What is asserted is correctness, every round: both nodes list exactly
    /// that round's two editors, Bob is promoted on B when Alice leaves, and the session ends on both nodes, so
    /// nothing of an earlier round is ever listed again.
    ///
    /// This test used to fail now and then under load with the session never ending on A: A listed the previous
    /// round's Bob again. A slow A applied the answer to its join after it had reloaded the topic at a later version
    /// (the answer listed that Bob, who had left since), and brought him back as a ghost that no event removed. The
    /// replica rules now keep such an answer from going backwards (`presence_replica.rs`:
    /// `a_join_answer_older_than_the_replica_brings_nobody_back`).
    #[tokio::test]
    async fn cross_node_promotion_latency() {
        let cluster = cluster_at(&redis_url(), 2, GRACE, &unique_prefix()).await;
        let (a, b) = (&cluster[0], &cluster[1]);
        let record = EditTarget::new("article", 11).unwrap();
        let topic = record.presence_topic();
        let mut on_b = b.editing.subscribe_to_editing(&record);
        let mut latencies = Vec::new();
        for round in 0..200 {
            let alice = a
                .editing
                .track_editing_session(&record, &format!("alice-{round}"), &editor("1", "Alice"), None)
                .await
                .unwrap();
            let bob = b
                .editing
                .track_editing_session(&record, &format!("bob-{round}"), &editor("2", "Bob"), None)
                .await
                .unwrap();
            let editors = [format!("alice-{round}"), format!("bob-{round}")];
            eventually("both nodes list exactly this round's editors", || {
                cluster.iter().all(|node| keys(node, &topic) == editors)
            })
            .await;
            while on_b.try_recv().unwrap().is_some() {}
            let left = std::time::Instant::now();
            alice.leave();
            let change = loop {
                let change = next_owner_change(&mut on_b).await;
                if change.reason == OwnerChangeReason::Promoted {
                    break change;
                }
            };
            assert_eq!(change.owner.as_ref().map(|owner| owner.view_id.to_string()), Some(format!("bob-{round}")));
            latencies.push(change.observed_at.expect("set by the node").duration_since(left));
            bob.leave();
            eventually("the session ended everywhere", || cluster.iter().all(|node| node.presence.count(&topic) == 0))
                .await;
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "cross-node promotion ({} hand-overs, one machine, shared Redis): p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            at(0.5),
            at(0.99),
            latencies[latencies.len() - 1]
        );
    }

    /// Session statistics count the whole cluster: pages open on either node show on both dashboards, and a page
    /// closed on one node leaves both counts.
    #[tokio::test]
    async fn session_statistics_cover_the_whole_cluster() {
        let cluster = crate::support::cluster(2).await;
        let (a, b) = (&cluster[0], &cluster[1]);
        let alice = livebaton::stats::SessionUser { id: "1".into(), email: "alice@example.com".into() };
        let bob = livebaton::stats::SessionUser { id: "2".into(), email: "bob@example.com".into() };
        let alice_on_a = a.stats.track_user(&alice, meta("/admin")).await.unwrap();
        let _bob_on_b = b.stats.track_user(&bob, meta("/admin/entities")).await.unwrap();
        let _visitor_on_b = b.stats.track_anonymous("sess-9", meta("/e/article/hello")).await.unwrap();
        let counts = |node: &Engine| {
            let stats = node.stats.presence_stats();
            (stats.total_sessions, stats.authenticated_sessions, stats.anonymous_sessions, stats.unique_users)
        };
        eventually("both nodes count all three pages", || counts(a) == (3, 2, 1, 2) && counts(b) == (3, 2, 1, 2)).await;
        let listed = |node: &Engine| node.stats.list_active_sessions().len();
        assert_eq!((listed(a), listed(b)), (3, 3), "both nodes list every open page");
        alice_on_a.leave();
        eventually("Alice's page left both counts", || counts(a) == (2, 1, 1, 1) && counts(b) == (2, 1, 1, 1)).await;
    }
}
