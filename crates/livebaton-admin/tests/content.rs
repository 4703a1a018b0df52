//! The content service's fence: a save from an editing session commits only while its tab holds the baton, and only
//! for the record the token was issued for; otherwise nothing is written and the draft stays.

use std::time::Duration;

use livebaton::editing::merge::Resolutions;
use livebaton::editing::{DraftBase, EditTarget, Editor};
use livebaton::presence::PresenceConfig;
use livebaton::{Engine, EngineConfig};
use livebaton_admin::content::editing::Author;
use livebaton_admin::content::{ContentError, ContentService, SaveRequest, entity_values};
use livebaton_admin::storage::Store;
use livebaton_content::{EntityInput, RecordInput};
use serde_json::json;

async fn service() -> (ContentService, Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("content.db").display());
    let store = Store::connect(&url).await.unwrap();
    let engine = Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace: Duration::ZERO, ..Default::default() },
        ..Default::default()
    });
    (ContentService::new(store, engine.editing.clone(), engine.pubsub.clone()), engine, dir)
}

fn editor(id: &str, name: &str) -> Editor {
    Editor::new(id, name)
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
    let target = EditTarget::new("data", record.id).unwrap();
    let alice = engine.editing.track_editing_session(&target, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    let _bob = engine.editing.track_editing_session(&target, "bob-1", &editor("2", "Bob"), None).await.unwrap();
    engine.editing.update_draft(&target, "alice-1", record.lock_version, json!({"title": "Alice's"})).unwrap();
    let alice_token = engine.editing.fence(&target, "alice-1").unwrap();

    alice.leave();
    let refused = content
        .update_record(
            &entity,
            record.id,
            record.lock_version,
            &titled("Alice's"),
            Some(&alice_token),
            &Author::new("1", "Alice"),
        )
        .await;
    assert!(matches!(refused, Err(ContentError::NotOwner(_))), "got {refused:?}");
    let stored = content.store().find_record(entity.id, record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Original", 1), "nothing written");
    assert!(engine.editing.draft(&target).is_some(), "the draft is kept for the new owner");

    let bob_token = engine.editing.fence(&target, "bob-1").unwrap();
    let base = bob_token.base_lock_version().unwrap();
    let saved = content
        .update_record(&entity, record.id, base, &titled("Alice's"), Some(&bob_token), &Author::new("2", "Bob"))
        .await
        .unwrap();
    assert_eq!((saved.title.as_str(), saved.lock_version), ("Alice's", 2));
    assert_eq!(engine.editing.draft(&target), None, "the saved draft ends");
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
        .track_editing_session(&EditTarget::new("data", first.id).unwrap(), "v1", &editor("1", "Alice"), None)
        .await
        .unwrap();
    let token = engine.editing.fence(&EditTarget::new("data", first.id).unwrap(), "v1").unwrap();
    let refused = content
        .update_record(
            &entity,
            second.id,
            second.lock_version,
            &titled("Hijacked"),
            Some(&token),
            &Author::new("1", "Alice"),
        )
        .await;
    assert!(matches!(refused, Err(ContentError::NotOwner(_))));
    let stored = content.store().find_record(entity.id, second.id).await.unwrap().unwrap();
    assert_eq!(stored.title, "Second");
}

/// Entity definitions merge per attribute, with the field list as one field: Alice's new description and an
/// outside writer's new display name both survive; when both change the field list, only `fields_definition` is
/// offered, and nothing is written.
#[tokio::test]
async fn entity_definitions_merge_per_attribute_and_the_field_list_as_a_whole() {
    let (content, engine, _dir) = service().await;
    let entity = note_entity(&content).await;
    let target = EditTarget::new("entity", entity.id).unwrap();
    let _alice = engine.editing.track_editing_session(&target, "alice-1", &editor("1", "Alice"), None).await.unwrap();
    let base = entity_values(&entity);
    let mut mine = EntityInput {
        name: Some(entity.name.clone()),
        display_name: entity.display_name.clone(),
        display_name_plural: entity.display_name_plural.clone(),
        description: Some("Alice's description".into()),
        ..Default::default()
    };
    let draft = serde_json::to_value(&mine).unwrap();
    engine.editing.update_draft(&target, "alice-1", DraftBase::new(entity.lock_version, base), draft).unwrap();

    let outside = EntityInput { display_name: "Memo".into(), ..mine.clone() };
    let outside = EntityInput { description: Some(entity.description.clone()), ..outside };
    let moved =
        content.update_entity(entity.id, entity.lock_version, &outside, None, &Author::new("2", "Bob")).await.unwrap();
    let save = |mine: &EntityInput, token: &livebaton::editing::OwnerToken| {
        let draft = token.draft().unwrap().clone();
        let mine = mine.clone();
        let content = content.clone();
        let token = token.clone();
        async move {
            let base = draft.base_values.clone();
            let request = SaveRequest {
                mine: &mine,
                base_version: draft.base_lock_version,
                base_values: base.as_ref(),
                resolve: &Resolutions::new(),
                resolved_against: None,
            };
            content.save_entity(entity.id, request, &token, &Author::new("1", "Alice")).await
        }
    };
    let token = engine.editing.fence(&target, "alice-1").unwrap();
    let saved = save(&mine, &token).await.unwrap();
    assert_eq!(saved.merged, ["display_name"]);
    assert_eq!((saved.row.display_name.as_str(), saved.row.description.as_str()), ("Memo", "Alice's description"));
    assert_eq!(saved.row.lock_version, moved.lock_version + 1);

    // Both change the field list (Alice adds a field, the outside writer another): only the list is offered.
    mine.display_name = "Memo".into();
    mine.fields_definition = vec![json!({"type": "text", "key": "mood", "label": "Mood"})];
    let draft = serde_json::to_value(&mine).unwrap();
    engine
        .editing
        .update_draft(&target, "alice-1", DraftBase::new(saved.row.lock_version, entity_values(&saved.row)), draft)
        .unwrap();
    let outside = EntityInput {
        display_name: "Memo".into(),
        description: Some("Alice's description".into()),
        fields_definition: vec![json!({"type": "number", "key": "score", "label": "Score"})],
        ..mine.clone()
    };
    let moved = content
        .update_entity(entity.id, saved.row.lock_version, &outside, None, &Author::new("2", "Bob"))
        .await
        .unwrap();
    let token = engine.editing.fence(&target, "alice-1").unwrap();
    let conflict = match save(&mine, &token).await {
        Err(ContentError::EntityMerge(conflict)) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!(conflict.fields.keys().collect::<Vec<_>>(), ["fields_definition"]);
    assert_eq!(conflict.current.lock_version, moved.lock_version);
    let stored = content.store().find_entity(entity.id).await.unwrap().unwrap();
    assert_eq!((stored.fields_definition[0].key.as_str(), stored.lock_version), ("score", moved.lock_version));
}
