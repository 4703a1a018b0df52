//! The content service's fence: a save from an editing session commits only while its tab holds the baton, and only
//! for the record the token was issued for; otherwise nothing is written and the draft stays.

use std::time::Duration;

use livebaton::editing::{EditTarget, Editor};
use livebaton::presence::PresenceConfig;
use livebaton::{Engine, EngineConfig};
use livebaton_admin::content::{ContentError, ContentService};
use livebaton_admin::storage::Store;
use livebaton_content::RecordInput;
use serde_json::json;

async fn service() -> (ContentService, Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("content.db").display());
    let store = Store::connect(&url).await.unwrap();
    let engine = Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace: Duration::ZERO, ..Default::default() },
        ..Default::default()
    });
    (ContentService::new(store, engine.events.clone(), engine.editing.clone(), engine.pubsub.clone()), engine, dir)
}

fn editor(id: &str, name: &str) -> Editor {
    Editor { user_id: id.into(), name: name.into(), can_edit: true }
}

fn titled(title: &str) -> RecordInput {
    RecordInput { title: title.into(), ..Default::default() }
}

/// An entity "Note" with no fields.
async fn note_entity(content: &ContentService) -> livebaton_admin::storage::Entity {
    let input = livebaton_content::EntityInput {
        display_name: "Note".into(),
        display_name_plural: "Notes".into(),
        ..Default::default()
    };
    content.create_entity(&input, None).await.unwrap()
}

/// Alice fences a save, then loses the baton before it commits: the save is refused, the row is unchanged and her
/// draft is still there for Bob; Bob's save with his own token commits and ends the draft.
#[tokio::test]
async fn a_save_commits_only_while_its_tab_owns_the_record() {
    let (content, engine, _dir) = service().await;
    let entity = note_entity(&content).await;
    let record = content.create_record(&entity, &titled("Original"), None).await.unwrap();
    let target = EditTarget::data(record.id);
    let alice = engine.editing.track_editing_session(target, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    let _bob = engine.editing.track_editing_session(target, "bob-1", &editor("2", "Bob"), None).await.unwrap();
    engine.editing.update_draft(target, "alice-1", record.lock_version, json!({"title": "Alice's"})).unwrap();
    let alice_token = engine.editing.fence(target, "alice-1").unwrap();

    alice.leave();
    let refused = content
        .update_record(&entity, record.id, record.lock_version, &titled("Alice's"), Some(&alice_token), "Alice")
        .await;
    assert!(matches!(refused, Err(ContentError::NotOwner(_))), "got {refused:?}");
    let stored = content.store().find_record(entity.id, record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Original", 1), "nothing written");
    assert!(engine.editing.get_draft(target).is_some(), "the draft is kept for the new owner");

    let bob_token = engine.editing.fence(target, "bob-1").unwrap();
    let base = bob_token.base_lock_version().unwrap();
    let saved =
        content.update_record(&entity, record.id, base, &titled("Alice's"), Some(&bob_token), "Bob").await.unwrap();
    assert_eq!((saved.title.as_str(), saved.lock_version), ("Alice's", 2));
    assert_eq!(engine.editing.get_draft(target), None, "the saved draft ends");
}

/// A token issued for one record cannot save another.
#[tokio::test]
async fn a_token_only_saves_its_own_record() {
    let (content, engine, _dir) = service().await;
    let entity = note_entity(&content).await;
    let first = content.create_record(&entity, &titled("First"), None).await.unwrap();
    let second = content.create_record(&entity, &titled("Second"), None).await.unwrap();
    let _tab = engine
        .editing
        .track_editing_session(EditTarget::data(first.id), "v1", &editor("1", "Alice"), None)
        .await
        .unwrap();
    let token = engine.editing.fence(EditTarget::data(first.id), "v1").unwrap();
    let refused = content
        .update_record(&entity, second.id, second.lock_version, &titled("Hijacked"), Some(&token), "Alice")
        .await;
    assert!(matches!(refused, Err(ContentError::NotOwner(_))));
    let stored = content.store().find_record(entity.id, second.id).await.unwrap().unwrap();
    assert_eq!(stored.title, "Second");
}
