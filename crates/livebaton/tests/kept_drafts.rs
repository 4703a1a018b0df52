//! Drafts outlive their session: a session's last member leaving hands its unsaved draft to the kept-draft store
//! under its author, who finds it when they come back and restores it (with its base, so its save merges) or discards
//! it. The store contract runs against the in-memory store and Redis (a Redis server at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`: without one these tests fail, never skip); two Redis nodes share kept drafts.

mod support;

use std::time::Duration;

use livebaton::editing::{
    DraftBase, DraftChanged, EditTarget, EditingError, Editor, MemoryKeptDrafts, RedisKeptDrafts,
};
use livebaton::presence::PresenceConfig;
use livebaton::{Engine, EngineConfig, RedisAddress};
use serde_json::json;

static RECORD: std::sync::LazyLock<EditTarget> = std::sync::LazyLock::new(|| EditTarget::new("article", 42).unwrap());

fn engine() -> Engine {
    Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace: Duration::from_millis(200), ..Default::default() },
        ..Default::default()
    })
}

fn editor(id: &str, name: &str) -> Editor {
    Editor::new(id, name)
}

/// Waits until `view_id` owns `RECORD`'s session, as `roles` (a subscription to its editing topic) hears it.
async fn wait_for_owner(engine: &Engine, roles: &mut livebaton::pubsub::Subscription, view_id: &str) {
    while engine.editing.lock_owner(&RECORD).is_none_or(|owner| &*owner.view_id != view_id) {
        tokio::time::timeout(Duration::from_secs(10), roles.recv()).await.expect("an owner change").unwrap();
    }
}

/// Waits until `user`'s kept draft of `RECORD` is there (the keeper writes from its own task).
async fn kept_for(engine: &Engine, user: &str) -> livebaton::editing::KeptDraft {
    for _ in 0..200 {
        if let Some(kept) = engine.editing.find_kept_draft(&RECORD, user).await.unwrap() {
            return kept;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no draft kept for {user}");
}

/// Alice types and leaves by a link (her page's presence goes after the grace): her draft is kept under her, with
/// its base; Bob, who opens the form next, is not offered it; Alice restores it when she is back, and it is the
/// session's draft again with its original base (so its save merges with what was saved since), reaching Bob; the
/// kept copy is gone.
#[tokio::test]
async fn a_draft_left_behind_is_kept_for_its_author_and_restored_with_its_base() {
    let engine = engine();
    let alice = editor("1", "Alice");
    let guard = engine.editing.track_editing_session(&RECORD, "alice-1", &alice, None).await.unwrap();
    let base = DraftBase::new(3, json!({"title": "Stored", "data": {"venue": "Hall A"}}));
    engine.editing.update_draft(&RECORD, "alice-1", base.clone(), json!({"title": "Typed"})).unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Typed more"})).unwrap();
    guard.leave();
    let kept = kept_for(&engine, "1").await;
    assert_eq!(kept.draft.params, json!({"title": "Typed more"}));
    assert_eq!((kept.draft.base_lock_version, &kept.draft.base_values), (3, &base.values), "kept with its base");
    assert_eq!(engine.editing.draft(&RECORD), None, "the session ended");

    let _bob = engine.editing.track_editing_session(&RECORD, "bob-1", &editor("2", "Bob"), None).await.unwrap();
    assert!(engine.editing.find_kept_draft(&RECORD, "2").await.unwrap().is_none(), "not offered to Bob");
    let mut bob_drafts = engine.editing.subscribe_to_drafts(&RECORD);
    let _alice = engine.editing.track_editing_session(&RECORD, "alice-2", &alice, None).await.unwrap();
    let refused = engine.editing.restore_kept_draft(&RECORD, "alice-2").await;
    assert!(matches!(refused, Err(EditingError::NotOwner(_))), "Bob holds the baton: {refused:?}");
    assert!(kept_for(&engine, "1").await == kept, "still kept after a refused restore");
    let mut alice_role = engine.editing.subscribe_to_editing(&RECORD);
    drop(_bob);
    wait_for_owner(&engine, &mut alice_role, "alice-2").await;
    let restored = engine.editing.restore_kept_draft(&RECORD, "alice-2").await.expect("restored by the owner");
    assert_eq!(restored.params, json!({"title": "Typed more"}));
    assert_eq!((restored.base_lock_version, &restored.base_values), (3, &base.values));
    assert_eq!(engine.editing.draft(&RECORD).as_deref(), Some(&*restored), "the session's draft again");
    let published = tokio::time::timeout(Duration::from_secs(5), bob_drafts.recv()).await.unwrap().unwrap();
    assert!(published.downcast::<DraftChanged>().is_some_and(|changed| changed.draft.as_deref() == Some(&*restored)));
    assert!(engine.editing.find_kept_draft(&RECORD, "1").await.unwrap().is_none(), "the kept copy is gone");
    let again = engine.editing.restore_kept_draft(&RECORD, "alice-2").await;
    assert!(matches!(again, Err(EditingError::NoKeptDraft)), "{again:?}");
}

/// A kept draft is not restored over someone else's live draft; over the owner's own (typed before choosing) it is.
#[tokio::test]
async fn a_kept_draft_is_restored_over_the_owners_own_typing_only() {
    let engine = engine();
    let (alice, bob) = (editor("1", "Alice"), editor("2", "Bob"));
    let guard = engine.editing.track_editing_session(&RECORD, "alice-1", &alice, None).await.unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Kept"})).unwrap();
    guard.leave();
    kept_for(&engine, "1").await;

    // Bob owns and types, then leaves while Alice waits: Alice is promoted with Bob's draft.
    let bob_guard = engine.editing.track_editing_session(&RECORD, "bob-1", &bob, None).await.unwrap();
    let _alice = engine.editing.track_editing_session(&RECORD, "alice-2", &alice, None).await.unwrap();
    engine.editing.update_draft(&RECORD, "bob-1", 3, json!({"title": "Bob's"})).unwrap();
    let mut roles = engine.editing.subscribe_to_editing(&RECORD);
    bob_guard.leave();
    wait_for_owner(&engine, &mut roles, "alice-2").await;
    let refused = engine.editing.restore_kept_draft(&RECORD, "alice-2").await;
    assert!(matches!(&refused, Err(EditingError::DraftInProgress { by }) if by == "Bob"), "{refused:?}");
    assert_eq!(engine.editing.draft(&RECORD).unwrap().params, json!({"title": "Bob's"}), "Bob's draft stays");

    // Alice changes the form herself: now the draft is hers, and restoring replaces it.
    engine.editing.update_draft(&RECORD, "alice-2", 3, json!({"title": "Alice now"})).unwrap();
    let restored = engine.editing.restore_kept_draft(&RECORD, "alice-2").await.unwrap();
    assert_eq!(restored.params, json!({"title": "Kept"}));
}

/// A discard forgets only the draft the user was shown.
#[tokio::test]
async fn a_discard_forgets_the_kept_draft_shown() {
    let engine = engine();
    let guard = engine.editing.track_editing_session(&RECORD, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Kept"})).unwrap();
    guard.leave();
    let kept = kept_for(&engine, "1").await;
    assert!(!engine.editing.discard_kept_draft(&RECORD, "1", kept.draft.updated_at + 1).await.unwrap());
    assert!(engine.editing.discard_kept_draft(&RECORD, "1", kept.draft.updated_at).await.unwrap());
    assert!(engine.editing.find_kept_draft(&RECORD, "1").await.unwrap().is_none());
}

/// A save ends the draft without keeping it: only unsaved work is kept.
#[tokio::test]
async fn a_saved_draft_is_not_kept() {
    let engine = engine();
    let guard = engine.editing.track_editing_session(&RECORD, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Saved"})).unwrap();
    let token = engine.editing.fence(&RECORD, "alice-1").unwrap();
    engine.editing.finish_save(&token, 4);
    guard.leave();
    while !engine.editing.sorted_presences(&RECORD).is_empty() {
        tokio::task::yield_now().await;
    }
    // The session ended; whatever it handed to the keeper is written once the keeper is flushed.
    engine.editing.keep_open_drafts().await;
    assert!(engine.editing.find_kept_draft(&RECORD, "1").await.unwrap().is_none());
}

/// At a graceful shutdown of a single node every open session's draft is kept, including one whose page is still in
/// its reload grace (the process ends before the grace does).
#[tokio::test]
async fn a_shutdown_keeps_the_open_drafts() {
    let engine = engine();
    let _alice = engine.editing.track_editing_session(&RECORD, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Open"})).unwrap();
    let other = EditTarget::new("article", 43).unwrap();
    let bob = engine.editing.track_editing_session(&other, "bob-1", &editor("2", "Bob"), Some("tab-b")).await.unwrap();
    engine.editing.update_draft(&other, "bob-1", 1, json!({"title": "Reloading"})).unwrap();
    drop(bob);
    engine.editing.keep_open_drafts().await;
    let alice_kept = engine.editing.find_kept_draft(&RECORD, "1").await.unwrap().expect("an open session's draft");
    assert_eq!(alice_kept.draft.params["title"], "Open");
    let bob_kept = engine.editing.find_kept_draft(&other, "2").await.unwrap().expect("a draft in its grace");
    assert_eq!(bob_kept.draft.params["title"], "Reloading");
}

#[tokio::test]
async fn the_memory_store_meets_the_contract() {
    livebaton::testing::kept_draft_store_contract(
        |limits| async move { MemoryKeptDrafts::new(limits) },
        ("invoice", "order"),
        1,
    )
    .await;
}

#[tokio::test]
async fn the_redis_store_meets_the_contract() {
    let url = support::redis_url();
    let prefix = support::unique_prefix();
    let stores = std::sync::atomic::AtomicUsize::new(0);
    livebaton::testing::kept_draft_store_contract(
        |limits| {
            let store = format!("{prefix}:kept{}", stores.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let url = url.clone();
            async move { RedisKeptDrafts::new(&RedisAddress::new(url), &store, limits).expect("a Redis URL") }
        },
        ("invoice", "order"),
        1,
    )
    .await;
    support::delete_prefix(&url, &prefix);
}

/// Two nodes of a cluster: a session that ends on both (its last member was on node A) keeps the draft once, and its
/// author finds it on node B.
#[tokio::test]
async fn a_draft_kept_on_one_node_is_found_on_another() {
    let cluster = support::cluster(2).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let guard = a.editing.track_editing_session(&RECORD, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    a.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Across"})).unwrap();
    guard.leave();
    let mut found = None;
    for _ in 0..300 {
        found = b.editing.find_kept_draft(&RECORD, "1").await.unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let found = found.expect("kept in Redis, found from the other node");
    assert_eq!(found.draft.params["title"], "Across");
    let _alice = b.editing.track_editing_session(&RECORD, "alice-2", &editor("1", "Alice"), None).await.unwrap();
    let restored = b.editing.restore_kept_draft(&RECORD, "alice-2").await.expect("restored on node B");
    assert_eq!(restored.params["title"], "Across");
}
