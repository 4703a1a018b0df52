//! Contract tests for the engine's extension points, for an application that implements one (feature `testing`): run
//! them against your store in your own tests, as the engine and the admin app run them against theirs.

use std::time::Duration;

use serde_json::json;

use crate::editing::{Draft, DraftAuthor, EditTarget, KeptDraftLimits, KeptDraftStore};

fn draft(user: &str, title: &str, updated_at: u64, version: u64) -> Draft {
    Draft {
        params: json!({"title": title, "data": {"venue": "Hall A"}}),
        version,
        base_lock_version: 7,
        base_values: Some(json!({"title": "Stored", "data": {"venue": "Hall A"}})),
        updated_by: DraftAuthor { user_id: user.into(), name: format!("{user} name"), view_id: "view-1".into() },
        updated_at,
    }
}

/// Waits past a millisecond, so the next keep's time (the store's clock) is later than the last.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// Checks a [`KeptDraftStore`] against the engine's contract: `make` builds an empty store with the given limits (each
/// call a separate store: its own database or key prefix). The contract's targets are of the two kinds in `kinds` (the
/// first for most rules, the second to show that another kind is another form), with ids `first_id..first_id + 20`,
/// for a store that holds only its application's kinds or needs the rows to exist. Panics on the first broken rule.
///
/// Takes about three seconds: one rule waits for a kept draft to expire.
pub async fn kept_draft_store_contract<S, F>(make: impl Fn(KeptDraftLimits) -> F, kinds: (&str, &str), first_id: i64)
where
    S: KeptDraftStore,
    F: std::future::Future<Output = S>,
{
    let day = KeptDraftLimits::default();
    let target = EditTarget::new(kinds.0, first_id).unwrap();

    // Kept under its author, per target; found as it was kept, base included.
    let store = make(day).await;
    let kept = draft("ann", "Mine", 2_000, 5);
    store.keep(&target, &kept).await.expect("keep");
    let found = store.find(&target, "ann").await.expect("find").expect("kept for its author");
    assert_eq!((&found.target, &found.draft), (&target, &kept), "found as kept");
    assert!(found.kept_at > 1_700_000_000_000, "kept_at is the store's clock in ms: {}", found.kept_at);
    assert!(store.find(&target, "bob").await.unwrap().is_none(), "not another user's");
    assert!(
        store.find(&EditTarget::new(kinds.1, first_id).unwrap(), "ann").await.unwrap().is_none(),
        "not another kind's"
    );
    assert!(
        store.find(&EditTarget::new(kinds.0, first_id + 1).unwrap(), "ann").await.unwrap().is_none(),
        "not another record's"
    );

    // The newest write wins; the same draft kept again (by a second node) changes nothing.
    store.keep(&target, &draft("ann", "Older", 1_000, 9)).await.unwrap();
    assert_eq!(store.find(&target, "ann").await.unwrap().unwrap().draft.params["title"], "Mine", "an older one");
    tick().await;
    store.keep(&target, &kept).await.unwrap();
    assert_eq!(store.find(&target, "ann").await.unwrap().unwrap().kept_at, found.kept_at, "the same one again");
    store.keep(&target, &draft("ann", "Newer", 2_000, 6)).await.unwrap();
    assert_eq!(store.find(&target, "ann").await.unwrap().unwrap().draft.params["title"], "Newer", "a later version");
    store.keep(&target, &draft("bob", "Bob's", 1_500, 1)).await.unwrap();
    assert_eq!(store.find(&target, "bob").await.unwrap().unwrap().draft.params["title"], "Bob's", "one per user");

    // A discard removes only the draft the user was shown.
    assert!(!store.discard(&target, "ann", 2_001).await.unwrap(), "a discard of another version");
    assert!(store.find(&target, "ann").await.unwrap().is_some());
    assert!(store.discard(&target, "ann", 2_000).await.unwrap());
    assert!(store.find(&target, "ann").await.unwrap().is_none());
    assert!(!store.discard(&target, "ann", 2_000).await.unwrap(), "twice");
    store.keep(&target, &draft("ann", "Newer", 2_000, 6)).await.unwrap();
    assert!(store.find(&target, "ann").await.unwrap().is_none(), "a late keep of the discarded draft stays discarded");
    store.keep(&target, &draft("ann", "After", 2_500, 1)).await.unwrap();
    assert_eq!(
        store.find(&target, "ann").await.unwrap().unwrap().draft.params["title"],
        "After",
        "a newer one is kept"
    );
    assert!(store.discard(&target, "ann", 2_500).await.unwrap());
    assert!(store.find(&target, "bob").await.unwrap().is_some(), "another user's stays");

    // A batch (a shutdown's open forms) keeps each draft as a keep would: newer ones win, older ones change nothing.
    let batch = [
        (EditTarget::new(kinds.0, first_id + 7).unwrap(), std::sync::Arc::new(draft("ann", "Batch A", 3_000, 1))),
        (EditTarget::new(kinds.0, first_id + 8).unwrap(), std::sync::Arc::new(draft("bob", "Batch B", 3_000, 1))),
        (target.clone(), std::sync::Arc::new(draft("bob", "Older than Bob's", 1_000, 1))),
    ];
    store.keep_batch(&batch).await.expect("keep a batch");
    assert_eq!(
        store.find(&EditTarget::new(kinds.0, first_id + 7).unwrap(), "ann").await.unwrap().unwrap().draft.params["title"],
        "Batch A"
    );
    assert_eq!(
        store.find(&EditTarget::new(kinds.0, first_id + 8).unwrap(), "bob").await.unwrap().unwrap().draft.params["title"],
        "Batch B"
    );
    assert_eq!(store.find(&target, "bob").await.unwrap().unwrap().draft.params["title"], "Bob's", "not replaced");

    // Beyond a user's limit that user's oldest go; beyond the limit of all, the oldest of all.
    let store = make(KeptDraftLimits { max_drafts: 4, max_per_user: 2, ..day }).await;
    for offset in 1..=3 {
        store
            .keep(&EditTarget::new(kinds.0, first_id + offset).unwrap(), &draft("ann", "A", offset as u64, 1))
            .await
            .unwrap();
        tick().await;
    }
    assert!(
        store.find(&EditTarget::new(kinds.0, first_id + 1).unwrap(), "ann").await.unwrap().is_none(),
        "ann's oldest went"
    );
    assert!(store.find(&EditTarget::new(kinds.0, first_id + 2).unwrap(), "ann").await.unwrap().is_some());
    assert!(store.find(&EditTarget::new(kinds.0, first_id + 3).unwrap(), "ann").await.unwrap().is_some());
    for (offset, user) in [(4, "bob"), (5, "cid"), (6, "dan")] {
        store
            .keep(&EditTarget::new(kinds.0, first_id + offset).unwrap(), &draft(user, "B", offset as u64, 1))
            .await
            .unwrap();
        tick().await;
    }
    assert!(
        store.find(&EditTarget::new(kinds.0, first_id + 2).unwrap(), "ann").await.unwrap().is_none(),
        "the oldest of all went"
    );
    assert!(
        store.find(&EditTarget::new(kinds.0, first_id + 3).unwrap(), "ann").await.unwrap().is_some(),
        "four remain"
    );
    assert!(store.find(&EditTarget::new(kinds.0, first_id + 6).unwrap(), "dan").await.unwrap().is_some());

    // Expired drafts are not found (a retention of 2 s: the first find is well within it even on a loaded machine).
    let store = make(KeptDraftLimits { retention: Duration::from_secs(2), ..day }).await;
    store.keep(&target, &kept).await.unwrap();
    assert!(store.find(&target, "ann").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(store.find(&target, "ann").await.unwrap().is_none(), "expired after the retention");
}

/// The presence tracker's pure state core and the replica rules of a shared roster, for property tests of the
/// engine's own (`tests/presence_state.rs`, `tests/presence_replica.rs`). Not part of the API: they may change in any
/// release.
pub mod presence_core {
    pub use crate::presence::change::RosterChange;
    pub use crate::presence::state::{CloseToken, EntryId, Insert, JoinRequest, Joined, PresenceState};

    /// The replica rules ([`crate::presence::RedisRoster`]'s pure core).
    pub mod replica {
        pub use crate::presence::replica::*;
    }
}
