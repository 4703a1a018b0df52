//! Collaborative editing with several editors at once: who owns the form, drafts, promotion, hand-over between tabs of
//! one user, and fenced saves. Each editor is its own subscriber; editors that leave do so by ending their task.

use std::time::Duration;

use livebaton::editing::{
    DraftBase, DraftChanged, EditTarget, EditingError, EditingRole, Editor, OwnerChangeReason, OwnerChanged, RoleChange,
};
use livebaton::presence::{PresenceConfig, PresenceDiff, TrackGuard};
use livebaton::pubsub::Subscription;
use livebaton::{Engine, EngineConfig};
use serde_json::json;

static RECORD: std::sync::LazyLock<EditTarget> = std::sync::LazyLock::new(|| EditTarget::new("article", 42).unwrap());

fn engine() -> Engine {
    Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace: Duration::from_secs(1), ..Default::default() },
        ..Default::default()
    })
}

fn editor(id: &str, name: &str) -> Editor {
    Editor::new(id, name)
}

fn viewer(id: &str, name: &str) -> Editor {
    Editor { can_edit: false, ..editor(id, name) }
}

/// One open edit form: its guard, its editing subscription and its draft subscription.
struct Tab {
    view_id: String,
    user: Editor,
    guard: Option<TrackGuard>,
    editing: Subscription,
    drafts: Subscription,
}

async fn open(engine: &Engine, view_id: &str, user: &Editor, tab_id: Option<&str>) -> Tab {
    let editing = engine.editing.subscribe_to_editing(&RECORD);
    let drafts = engine.editing.subscribe_to_drafts(&RECORD);
    let guard = engine.editing.track_editing_session(&RECORD, view_id, user, tab_id).await.unwrap();
    Tab { view_id: view_id.into(), user: user.clone(), guard: Some(guard), editing, drafts }
}

impl Tab {
    fn role(&self, engine: &Engine) -> EditingRole {
        engine.editing.editing_role(&RECORD, &self.view_id, &self.user.user_id)
    }

    /// The next owner change this tab hears, skipping presence diffs.
    async fn next_owner_change(&mut self) -> OwnerChanged {
        loop {
            let broadcast = tokio::time::timeout(Duration::from_secs(30), self.editing.recv()).await.unwrap().unwrap();
            if let Some(change) = broadcast.downcast::<OwnerChanged>() {
                return change.clone();
            }
        }
    }

    async fn next_draft(&mut self) -> DraftChanged {
        let broadcast = tokio::time::timeout(Duration::from_secs(30), self.drafts.recv()).await.unwrap().unwrap();
        match broadcast.downcast::<DraftChanged>() {
            Some(draft) => draft.clone(),
            None => panic!("expected a DraftChanged, got {broadcast:?}"),
        }
    }

    /// Drains owner changes heard so far; returns the last one.
    fn last_owner_change(&mut self) -> Option<OwnerChanged> {
        let mut last = None;
        while let Some(broadcast) = self.editing.try_recv().unwrap() {
            if let Some(change) = broadcast.downcast::<OwnerChanged>() {
                last = Some(change.clone());
            }
        }
        last
    }
}

fn owner_name(role: &EditingRole) -> Option<String> {
    match role {
        EditingRole::Owner { .. } => None,
        EditingRole::Spectator { owner, .. } => owner.as_ref().map(|owner| owner.user_name.clone()),
    }
}

/// The scenario from the issue: Alice, Bob and Carol open the same record in that order; Alice owns it and her draft
/// reaches the others; Dave joins late and reads it; Bob cannot write it; when Alice's page goes away Bob is promoted,
/// told so, and holds Alice's draft unchanged; only the owner can fence a save.
/// Who may hold the baton is what the editing layer told presence when the page joined, not a metadata field: an
/// entry tracked on the session's topic by other means, even one whose metadata says `can_edit`, is never the owner.
#[tokio::test]
async fn only_editors_joined_through_editing_may_own_the_session() {
    let engine = engine();
    let mut meta = livebaton::presence::Meta::new();
    meta.insert("user_id".into(), json!("9"));
    meta.insert("can_edit".into(), json!(true));
    let _intruder = engine.presence.track(&RECORD.presence_topic(), "intruder-1", meta).await.unwrap();
    let ann = open(&engine, "ann-1", &editor("1", "Ann"), None).await;
    assert!(ann.role(&engine).is_owner(), "Ann owns although an entry with can_edit joined first");
    let owner = engine.editing.lock_owner(&RECORD).map(|owner| owner.view_id.to_string());
    assert_eq!(owner.as_deref(), Some("ann-1"));
}

#[tokio::test(start_paused = true)]
async fn first_in_line_owns_and_the_next_is_promoted_with_the_draft() {
    let engine = engine();
    let (alice, bob, carol, dave) =
        (editor("1", "Alice"), editor("2", "Bob"), editor("3", "Carol"), editor("4", "Dave"));

    // Alice's page runs as its own task, owning its guard; it ends when told to.
    let (close_alice, closed) = tokio::sync::oneshot::channel::<()>();
    let alice_engine = engine.clone();
    let alice_user = alice.clone();
    let (opened_tx, opened) = tokio::sync::oneshot::channel();
    let alice_page = tokio::spawn(async move {
        let guard = alice_engine.editing.track_editing_session(&RECORD, "view-alice", &alice_user, Some("tab-a")).await;
        opened_tx.send(()).unwrap();
        let _guard = guard.unwrap();
        let _ = closed.await;
    });
    opened.await.unwrap();
    let mut bob_tab = open(&engine, "view-bob", &bob, Some("tab-b")).await;
    let mut carol_tab = open(&engine, "view-carol", &carol, Some("tab-c")).await;

    assert!(engine.editing.editing_role(&RECORD, "view-alice", "1").is_owner());
    assert_eq!(owner_name(&bob_tab.role(&engine)), Some("Alice".into()));
    assert_eq!(owner_name(&carol_tab.role(&engine)), Some("Alice".into()));
    let queue: Vec<String> = engine.editing.sorted_presences(&RECORD).iter().map(|p| p.user_name.clone()).collect();
    assert_eq!(queue, ["Alice", "Bob", "Carol"]);
    assert_eq!(engine.editing.lock_owner(&RECORD).unwrap().user_name, "Alice");
    assert_eq!(engine.editing.spectators(&RECORD).len(), 2);

    // Alice types: Bob and Carol receive the draft.
    let draft = engine.editing.update_draft(&RECORD, "view-alice", 5, json!({"title": "Hello"})).unwrap();
    assert_eq!(draft.version, 1);
    for tab in [&mut bob_tab, &mut carol_tab] {
        let heard = tab.next_draft().await;
        assert_eq!(heard.source, "view-alice");
        assert_eq!(heard.draft.as_ref().unwrap().params, json!({"title": "Hello"}));
    }

    // Dave joins late and reads Alice's draft at once.
    let dave_tab = open(&engine, "view-dave", &dave, Some("tab-d")).await;
    let late = engine.editing.draft(&RECORD).unwrap();
    assert_eq!((late.version, late.params.clone()), (1, json!({"title": "Hello"})));
    assert!(!dave_tab.role(&engine).is_owner());

    // Bob may not write the draft; it stays Alice's.
    let refused = engine.editing.update_draft(&RECORD, "view-bob", 5, json!({"title": "Bob was here"})).unwrap_err();
    assert_eq!(refused.to_string(), "read-only: Alice is editing");
    assert_eq!(engine.editing.draft(&RECORD).unwrap(), late);

    // Only the owner can fence a save.
    let alice_token = engine.editing.fence(&RECORD, "view-alice").unwrap();
    assert_eq!(alice_token.base_lock_version(), Some(5));
    for view in ["view-bob", "view-carol", "view-dave", "view-nobody"] {
        assert!(engine.editing.fence(&RECORD, view).is_err(), "{view} must not fence");
    }

    // Alice's page goes away (task ends, guard dropped). After the grace Bob is promoted and told so.
    close_alice.send(()).unwrap();
    alice_page.await.unwrap();
    assert!(!bob_tab.role(&engine).is_owner(), "within the grace Alice's tab may still come back");
    let change = bob_tab.next_owner_change().await;
    let change = if change.reason == OwnerChangeReason::First { bob_tab.next_owner_change().await } else { change };
    assert_eq!(change.reason, OwnerChangeReason::Promoted);
    assert_eq!(change.role_change_for("view-bob"), RoleChange::Promoted);
    assert_eq!(change.role_change_for("view-carol"), RoleChange::Unchanged);
    let summary = change.draft.as_ref().expect("the new owner learns there is a draft");
    assert_eq!((summary.version, summary.updated_by.name.as_str()), (1, "Alice"));
    assert!(bob_tab.role(&engine).is_owner());
    assert_eq!(engine.editing.draft(&RECORD).unwrap().version, 1, "promotion keeps the draft as it was");
    assert_eq!(carol_tab.last_owner_change().unwrap().owner.as_ref().unwrap().user_name, "Bob");

    // Alice's old token is refused; Bob continues from the draft.
    assert!(engine.editing.verify(&alice_token).is_err(), "the store refuses Alice's save, so the draft stays");
    assert_eq!(engine.editing.draft(&RECORD).unwrap().version, 1);
    let next = engine.editing.update_draft(&RECORD, "view-bob", 9, json!({"title": "Hello, Bob"})).unwrap();
    assert_eq!((next.version, next.base_lock_version, next.updated_by.name.as_str()), (2, 5, "Bob"));
    assert!(engine.editing.fence(&RECORD, "view-carol").is_err());
    assert!(engine.editing.fence(&RECORD, "view-bob").is_ok());
}

/// Ownership is per tab: Alice's second tab watches, can take over at once, and nobody else moves in the queue.
#[tokio::test(start_paused = true)]
async fn another_tab_of_the_owner_can_take_over_at_once() {
    let engine = engine();
    let (alice, bob) = (editor("1", "Alice"), editor("2", "Bob"));
    let mut tab1 = open(&engine, "alice-1", &alice, Some("a1")).await;
    let mut bob_tab = open(&engine, "bob-1", &bob, Some("b1")).await;
    let mut tab2 = open(&engine, "alice-2", &alice, Some("a2")).await;

    assert!(tab1.role(&engine).is_owner());
    assert!(matches!(tab2.role(&engine), EditingRole::Spectator { can_take_here: true, .. }));
    assert!(matches!(bob_tab.role(&engine), EditingRole::Spectator { can_take_here: false, .. }));
    let tab1_token = engine.editing.fence(&RECORD, "alice-1").unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 1, json!({"title": "from tab 1"})).unwrap();
    assert!(engine.editing.update_draft(&RECORD, "alice-2", 1, json!({})).is_err(), "tab 2 is read-only");

    assert!(matches!(engine.editing.take_here(&RECORD, "bob-1"), Err(EditingError::NotSameUser)));
    engine.editing.take_here(&RECORD, "alice-2").unwrap();

    assert!(tab2.role(&engine).is_owner());
    assert!(!tab1.role(&engine).is_owner());
    let queue: Vec<String> = engine.editing.sorted_presences(&RECORD).iter().map(|p| p.view_id.to_string()).collect();
    assert_eq!(queue, ["alice-2", "bob-1", "alice-1"], "Bob keeps his place");
    for tab in [&mut tab1, &mut tab2, &mut bob_tab] {
        let change = tab.last_owner_change().unwrap();
        assert_eq!(change.reason, OwnerChangeReason::Handover);
        assert_eq!(change.role_change_for("alice-1"), RoleChange::Demoted);
        assert_eq!(change.role_change_for("alice-2"), RoleChange::Promoted);
    }
    assert!(engine.editing.verify(&tab1_token).is_err(), "the demoted tab's token is dead");
    assert_eq!(engine.editing.draft(&RECORD).unwrap().params, json!({"title": "from tab 1"}), "draft carried over");
    assert!(engine.editing.update_draft(&RECORD, "alice-1", 1, json!({})).is_err());
    assert_eq!(engine.editing.update_draft(&RECORD, "alice-2", 1, json!({"title": "tab 2"})).unwrap().version, 2);

    // When the new owner leaves explicitly, Bob (next in line) is promoted at once, not Alice's first tab.
    tab2.guard.take().unwrap().leave();
    assert!(bob_tab.role(&engine).is_owner());
}

/// A viewer (whose role may not edit) watches but never holds the baton, and cannot take it.
#[tokio::test(start_paused = true)]
async fn a_viewer_is_skipped_for_ownership() {
    let engine = engine();
    let mut watcher = open(&engine, "viewer-1", &viewer("9", "Vera"), None).await;
    assert!(!watcher.role(&engine).is_owner());
    assert_eq!(engine.editing.lock_owner(&RECORD), None);
    let mut alice = open(&engine, "alice-1", &editor("1", "Alice"), None).await;
    assert!(alice.role(&engine).is_owner(), "the first eligible entry owns, even behind a viewer");
    assert!(matches!(engine.editing.take_here(&RECORD, "viewer-1"), Err(EditingError::NotEligible)));
    assert!(engine.editing.fence(&RECORD, "viewer-1").is_err());
    assert!(engine.editing.update_draft(&RECORD, "viewer-1", 1, json!({})).is_err());

    alice.guard.take().unwrap().leave();
    let change = watcher.last_owner_change().unwrap();
    assert_eq!(change.reason, OwnerChangeReason::Vacated);
    assert_eq!(change.owner, None);
    assert!(alice.last_owner_change().is_some());
}

/// Saving: the owner fences, the store verifies at commit, `finish_save` ends the saved draft and tells the
/// spectators; a draft typed after the fence is kept and rebased on the saved row.
#[tokio::test(start_paused = true)]
async fn a_save_ends_the_draft_and_tells_spectators() {
    let engine = engine();
    let _alice = open(&engine, "alice-1", &editor("1", "Alice"), None).await;
    let mut bob = open(&engine, "bob-1", &editor("2", "Bob"), None).await;
    engine.editing.update_draft(&RECORD, "alice-1", 3, json!({"title": "Final"})).unwrap();
    assert!(bob.next_draft().await.draft.is_some());
    let token = engine.editing.fence(&RECORD, "alice-1").unwrap();
    assert_eq!((token.base_lock_version(), token.draft_version()), (Some(3), Some(1)));
    engine.editing.verify(&token).unwrap();
    engine.editing.finish_save(&token, 4);
    assert_eq!(engine.editing.draft(&RECORD), None);
    let cleared = bob.next_draft().await;
    assert_eq!((cleared.draft.clone(), cleared.source.as_str()), (None, "alice-1"));
    assert_eq!(engine.editing.fence(&RECORD, "alice-1").unwrap().base_lock_version(), None, "no draft, no base");

    // Alice types while her next save is in flight: the newer draft survives, based on the row just saved.
    engine.editing.update_draft(&RECORD, "alice-1", 4, json!({"title": "Final!"})).unwrap();
    let token = engine.editing.fence(&RECORD, "alice-1").unwrap();
    engine.editing.update_draft(&RECORD, "alice-1", 4, json!({"title": "Final!!"})).unwrap();
    engine.editing.finish_save(&token, 5);
    let kept = engine.editing.draft(&RECORD).unwrap();
    assert_eq!((kept.params.clone(), kept.base_lock_version), (json!({"title": "Final!!"}), 5));
}

/// A draft snapshots its base values when it starts (the base of a per-field merge) and keeps them while it is typed
/// on and when the baton passes; the fence token carries the draft. After a save that merged in someone else's venue,
/// a draft typed meanwhile is rebased: its own changes stay, the merged venue replaces the stale one it carried (else
/// the next save would write the old venue back), and spectators are shown the rebased values.
#[tokio::test(start_paused = true)]
async fn a_draft_keeps_its_base_values_and_a_rebase_keeps_only_its_own_changes() {
    let engine = engine();
    let alice = open(&engine, "alice-1", &editor("1", "Alice"), None).await;
    let mut bob = open(&engine, "bob-1", &editor("2", "Bob"), None).await;
    let base = json!({"title": "Gig", "data": {"venue": "Old hall"}});
    let typed = json!({"title": "Gig, sold out", "data": {"venue": "Old hall"}});
    engine.editing.update_draft(&RECORD, "alice-1", DraftBase::new(3, base.clone()), typed.clone()).unwrap();
    let later = DraftBase::new(9, json!({"title": "ignored"}));
    let draft = engine.editing.update_draft(&RECORD, "alice-1", later, typed.clone()).unwrap();
    assert_eq!((draft.base_lock_version, draft.base_values.as_ref()), (3, Some(&base)), "the first base stays");
    let token = engine.editing.fence(&RECORD, "alice-1").unwrap();
    assert_eq!(token.draft().map(|draft| draft.base_values.clone()), Some(Some(base.clone())));
    assert!(bob.next_draft().await.draft.is_some());
    assert!(bob.next_draft().await.draft.is_some());

    // Alice types on while her save commits a merge with Carol's new venue.
    let more = json!({"title": "Gig, sold out!", "data": {"venue": "Old hall"}});
    engine.editing.update_draft(&RECORD, "alice-1", 3, more).unwrap();
    assert!(bob.next_draft().await.draft.is_some());
    let saved = json!({"title": "Gig, sold out", "data": {"venue": "New hall"}});
    engine.editing.finish_save(&token, DraftBase::new(4, saved.clone()));
    let rebased = engine.editing.draft(&RECORD).unwrap();
    assert_eq!(rebased.params, json!({"title": "Gig, sold out!", "data": {"venue": "New hall"}}));
    assert_eq!((rebased.base_lock_version, rebased.base_values.as_ref()), (4, Some(&saved)));
    let shown = bob.next_draft().await;
    assert_eq!(shown.draft.as_ref().map(|draft| &draft.params), Some(&rebased.params));

    // Promoted, Bob continues from the same base.
    drop(alice);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let continued = engine.editing.update_draft(&RECORD, "bob-1", 7, json!({"title": "Bob's"})).unwrap();
    assert_eq!((continued.base_lock_version, continued.base_values.as_ref()), (4, Some(&saved)));
}

/// A draft stored before base snapshots existed (no `base_values` in its JSON) still reads, with an unknown base.
#[test]
fn a_stored_draft_without_base_values_still_reads() {
    let stored = r#"{"params":{"title":"x"},"version":2,"base_lock_version":5,
        "updated_by":{"user_id":"1","name":"Alice","view_id":"v"},"updated_at":1}"#;
    let draft: livebaton::editing::Draft = serde_json::from_str(stored).unwrap();
    assert_eq!((draft.base_lock_version, draft.base_values), (5, None));
}

/// Tokens die with every change of owner, even when the same tab gets the baton back: the epoch never repeats.
#[tokio::test(start_paused = true)]
async fn a_token_from_an_earlier_ownership_is_refused() {
    let engine = engine();
    let alice = editor("1", "Alice");
    let _tab1 = open(&engine, "alice-1", &alice, Some("a1")).await;
    let _tab2 = open(&engine, "alice-2", &alice, Some("a2")).await;
    let first = engine.editing.fence(&RECORD, "alice-1").unwrap();
    engine.editing.take_here(&RECORD, "alice-2").unwrap();
    engine.editing.take_here(&RECORD, "alice-1").unwrap();
    let second = engine.editing.fence(&RECORD, "alice-1").unwrap();
    assert!(engine.editing.verify(&second).is_ok());
    assert!(engine.editing.verify(&first).is_err(), "same tab, earlier ownership: refused");
}

/// When the session ends and starts again, tokens of the old session stay dead.
#[tokio::test(start_paused = true)]
async fn a_token_does_not_outlive_its_session() {
    let engine = engine();
    let alice = editor("1", "Alice");
    let tab = open(&engine, "alice-1", &alice, None).await;
    let old = engine.editing.fence(&RECORD, "alice-1").unwrap();
    drop(tab);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _again = open(&engine, "alice-1", &alice, None).await;
    engine.editing.update_draft(&RECORD, "alice-1", 1, json!({"title": "new session"})).unwrap();
    assert!(engine.editing.verify(&old).is_err());
}

/// A reloading owner stays owner: the same user's tab reclaims its place within the grace, and nobody else can
/// claim it by sending the same tab id.
#[tokio::test(start_paused = true)]
async fn a_reloading_owner_keeps_the_baton_and_a_tab_id_cannot_be_stolen() {
    let engine = engine();
    let (alice, mallory) = (editor("1", "Alice"), editor("6", "Mallory"));
    let tab = open(&engine, "alice-1", &alice, Some("tab-a")).await;
    let _bob = open(&engine, "bob-1", &editor("2", "Bob"), Some("tab-b")).await;
    engine.editing.update_draft(&RECORD, "alice-1", 1, json!({"title": "typed before reload"})).unwrap();
    drop(tab);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _thief = open(&engine, "mallory-1", &mallory, Some("tab-a")).await;
    let reloaded = open(&engine, "alice-2", &alice, Some("tab-a")).await;
    assert!(reloaded.role(&engine).is_owner(), "the reloaded tab is first again");
    assert_eq!(engine.editing.lock_owner(&RECORD).unwrap().user_name, "Alice");
    let queue: Vec<String> = engine.editing.sorted_presences(&RECORD).iter().map(|p| p.view_id.to_string()).collect();
    assert_eq!(queue, ["alice-2", "bob-1", "mallory-1"], "Mallory joined at the back despite the tab id");
    engine.editing.update_draft(&RECORD, "alice-2", 1, json!({"title": "after reload"})).unwrap();
    assert_eq!(engine.editing.draft(&RECORD).unwrap().version, 2, "the draft carried over the reload");
}

/// The draft ends when the last editor has left (after the grace); a new session starts from nothing.
#[tokio::test(start_paused = true)]
async fn the_draft_ends_with_the_last_editor() {
    let engine = engine();
    let alice = open(&engine, "alice-1", &editor("1", "Alice"), None).await;
    engine.editing.update_draft(&RECORD, "alice-1", 1, json!({"title": "Unsaved"})).unwrap();
    drop(alice);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(engine.editing.draft(&RECORD).is_some(), "kept during the grace");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(engine.editing.draft(&RECORD), None);
    let _bob = open(&engine, "bob-1", &editor("2", "Bob"), None).await;
    assert_eq!(engine.editing.update_draft(&RECORD, "bob-1", 7, json!({})).unwrap().version, 1);
}

/// Different records are different sessions: owning one says nothing about another.
#[tokio::test(start_paused = true)]
async fn sessions_are_per_target() {
    let engine = engine();
    let alice = editor("1", "Alice");
    let _a = engine
        .editing
        .track_editing_session(&EditTarget::new("article", 1).unwrap(), "v1", &alice, None)
        .await
        .unwrap();
    let _b = engine
        .editing
        .track_editing_session(&EditTarget::new("category", 1).unwrap(), "v2", &editor("2", "Bob"), None)
        .await
        .unwrap();
    assert!(engine.editing.fence(&EditTarget::new("article", 1).unwrap(), "v1").is_ok());
    assert!(engine.editing.fence(&EditTarget::new("category", 1).unwrap(), "v1").is_err());
    assert!(engine.editing.fence(&EditTarget::new("category", 1).unwrap(), "v2").is_ok());
    assert_eq!(EditTarget::from_presence_topic("category_edit:1"), Some(EditTarget::new("category", 1).unwrap()));
    assert_eq!(EditTarget::from_presence_topic("room:1"), None);
}

/// Any application's resource has sessions: a kind it names and an id of any shape (UUIDs, slugs, composite keys),
/// each its own session; ids and kinds that would make ambiguous topics or keys are refused.
#[tokio::test]
async fn any_kind_and_any_id_shape_name_a_session() {
    let engine = engine();
    let invoice = EditTarget::new("invoice", "5f0c2a9e-7b1d-4c55-9a0e-2f3b8d6c1e47").unwrap();
    let slug = EditTarget::new("invoice", "2026:Q4/acme").unwrap();
    let alice = editor("1", "Alice");
    let _a = engine.editing.track_editing_session(&invoice, "v1", &alice, None).await.unwrap();
    let _b = engine.editing.track_editing_session(&slug, "v2", &editor("2", "Bob"), None).await.unwrap();
    assert!(engine.editing.editing_role(&invoice, "v1", "1").is_owner());
    assert!(engine.editing.editing_role(&slug, "v2", "2").is_owner(), "another id is another session");
    assert_eq!(invoice.presence_topic(), "invoice_edit:5f0c2a9e-7b1d-4c55-9a0e-2f3b8d6c1e47");
    assert_eq!(slug.form_topic(), "invoice_form:2026:Q4/acme");
    for target in [&invoice, &slug] {
        assert_eq!(EditTarget::from_presence_topic(&target.presence_topic()).as_ref(), Some(target));
        let json = serde_json::to_string(target).unwrap();
        assert_eq!(&serde_json::from_str::<EditTarget>(&json).unwrap(), target);
    }
    assert_eq!(EditTarget::new("invoice", "+1").unwrap().id(), "+1", "ids are compared as text");
    assert_ne!(EditTarget::new("invoice", "+1").unwrap(), EditTarget::new("invoice", 1).unwrap());
    use livebaton::editing::InvalidTarget;
    for kind in ["", "Invoice", "in voice", "a:b", &"k".repeat(33)] {
        assert_eq!(EditTarget::new(kind, 1), Err(InvalidTarget::Kind), "{kind:?}");
    }
    for id in ["", "a b", "tab\there", "line\n", &"x".repeat(129)] {
        assert_eq!(EditTarget::new("invoice", id), Err(InvalidTarget::Id), "{id:?}");
    }
    assert!(serde_json::from_str::<EditTarget>(r#"{"kind":"Bad Kind","id":"1"}"#).is_err(), "validated when read");
}

/// The application's rank, yielded state and display fields travel with the member; a yielded editor watches and
/// does not take the baton; the engine's own fields cannot be replaced by display fields.
#[tokio::test]
async fn an_editor_carries_rank_yielded_and_display_fields() {
    let engine = engine();
    let target = EditTarget::new("invoice", "inv-7").unwrap();
    let admin = Editor::new("1", "Ann")
        .with_rank(10)
        .with_yielded(true)
        .with_field("color", "#c33")
        .with_field("user_name", "Mallory");
    let _ann = engine.editing.track_editing_session(&target, "ann-1", &admin, None).await.unwrap();
    let _bob = engine.editing.track_editing_session(&target, "bob-1", &editor("2", "Bob"), None).await.unwrap();
    let presences = engine.editing.sorted_presences(&target);
    let ann = presences.iter().find(|presence| &*presence.view_id == "ann-1").unwrap();
    assert_eq!((ann.rank, ann.yielded, ann.can_edit, ann.user_name.as_str()), (10, true, false, "Ann"));
    assert!(engine.editing.editing_role(&target, "bob-1", "2").is_owner(), "the yielded editor came first but waits");
    let list = engine.presence.list(&target.presence_topic());
    let (_, meta) = list.metas().find(|(key, _)| *key == "ann-1").unwrap();
    assert_eq!((meta.get("color"), meta.get("user_name")), (Some(&json!("#c33")), Some(&json!("Ann"))));
}

/// With diff coalescing on, editing topics still publish each diff at once, so a member always hears the
/// `presence_diff` before the `owner_changed` it caused.
#[tokio::test(start_paused = true)]
async fn with_coalescing_the_diff_still_comes_before_the_owner_change() {
    let engine = Engine::new(EngineConfig {
        presence: PresenceConfig {
            leave_grace: Duration::ZERO,
            coalesce_window: Duration::from_millis(20),
            coalescing: livebaton::presence::Coalescing::Fixed,
        },
        ..Default::default()
    });
    let mut alice = open(&engine, "alice-1", &editor("1", "Alice"), None).await;
    let mut bob = open(&engine, "bob-1", &editor("2", "Bob"), None).await;
    while bob.editing.try_recv().unwrap().is_some() {}
    alice.guard.take().unwrap().leave();
    let first = bob.editing.try_recv().unwrap().expect("published at once, not after the window");
    match first.downcast::<PresenceDiff>() {
        Some(diff) => assert!(diff.leaves.get("alice-1").is_some()),
        None => panic!("expected a PresenceDiff, got {first:?}"),
    }
    let second = bob.editing.try_recv().unwrap().unwrap();
    assert!(second.downcast::<OwnerChanged>().is_some_and(|change| change.reason == OwnerChangeReason::Promoted));
    assert!(alice.last_owner_change().is_some());
}

/// A client's tab id is broadcast to every member in every diff: one that is not a short plain id is refused and
/// nothing is tracked. Metas carry the user's id and name, never an email (every member receives them).
#[tokio::test]
async fn a_bad_tab_id_is_refused_and_metas_carry_no_email() {
    let engine = engine();
    let alice = editor("1", "Alice");
    for bad in ["x".repeat(60_000), "a/b".to_owned(), "<b>".to_owned()] {
        let refused = engine.editing.track_editing_session(&RECORD, "view-bad", &alice, Some(&bad)).await;
        assert!(
            matches!(refused, Err(livebaton::presence::PresenceError::InvalidTabId(_))),
            "a tab id of {} characters was accepted",
            bad.len()
        );
    }
    assert!(engine.editing.sorted_presences(&RECORD).is_empty(), "nothing was tracked");
    let _tab = open(&engine, "view-1", &alice, Some("0123456789abcdef0123456789abcdef")).await;
    let list = engine.presence.list(&RECORD.presence_topic());
    let listed = serde_json::to_value(&list).unwrap();
    let meta = &listed["view-1"]["metas"][0];
    assert_eq!((meta["user_id"].as_str(), meta["user_name"].as_str()), (Some("1"), Some("Alice")));
    assert!(!listed.to_string().contains('@') && meta.get("user_email").is_none(), "no email in {meta}");
}
