//! The baton passing, in one terminal: Alice, Bob and Carol open the same record; Alice edits; Bob tries and is
//! refused; Alice closes her tab and Bob is promoted with her unsaved draft; Bob saves with a fenced token.
//!
//! Run it with `cargo run -p livebaton --example baton`. Every line it prints is a message a page would receive.

use std::time::Duration;

use livebaton::editing::{DraftChanged, EditTarget, Editor, OwnerChanged};
use livebaton::presence::{PresenceConfig, PresenceDiff};
use livebaton::pubsub::Subscription;
use livebaton::{Engine, EngineConfig};
use serde_json::json;

fn person(id: &str, name: &str) -> Editor {
    Editor::new(id, name)
}

/// Prints everything a page subscribed to `subscription` has heard so far.
fn show(who: &str, subscription: &mut Subscription) {
    while let Ok(Some(broadcast)) = subscription.try_recv() {
        let payload = if let Some(diff) = broadcast.downcast::<PresenceDiff>() {
            let joins: Vec<&str> = diff.joins.iter().map(|(key, _)| key).collect();
            let leaves: Vec<&str> = diff.leaves.iter().map(|(key, _)| key).collect();
            format!("joins {joins:?} leaves {leaves:?}")
        } else if let Some(change) = broadcast.downcast::<OwnerChanged>() {
            format!(
                "owner is now {:?} ({:?}); you: {:?}",
                change.owner.as_ref().map(|owner| owner.user_name.as_str()),
                change.reason,
                change.role_change_for(who)
            )
        } else if let Some(draft) = broadcast.downcast::<DraftChanged>() {
            format!("draft {}", json!(draft.draft.as_ref().map(|draft| &draft.params)))
        } else {
            broadcast.payload_json().to_string()
        };
        println!("  {who:>11} hears {:<14} {payload}", broadcast.event());
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace: Duration::from_millis(300), ..Default::default() },
        ..Default::default()
    });
    let record = EditTarget::new("article", 42).unwrap();
    let (alice, bob, carol) = (person("1", "Alice"), person("2", "Bob"), person("3", "Carol"));

    println!("Alice, Bob and Carol open record 42 in that order");
    let mut bob_feed = engine.editing.subscribe_to_editing(&record);
    let mut bob_drafts = engine.editing.subscribe_to_drafts(&record);
    let alice_tab = engine.editing.track_editing_session(&record, "view-alice", &alice, Some("tab-a")).await?;
    let _bob_tab = engine.editing.track_editing_session(&record, "view-bob", &bob, Some("tab-b")).await?;
    let _carol_tab = engine.editing.track_editing_session(&record, "view-carol", &carol, Some("tab-c")).await?;
    show("view-bob", &mut bob_feed);

    println!("\nAlice types a title");
    engine.editing.update_draft(&record, "view-alice", 1, json!({"title": "Spring release notes"}))?;
    show("view-bob", &mut bob_drafts);

    println!("\nBob tries to type too");
    if let Err(refused) = engine.editing.update_draft(&record, "view-bob", 1, json!({"title": "mine"})) {
        println!("  refused: {refused}");
    }

    println!("\nAlice closes her tab (the page's task ends; after a 300 ms grace her place is released)");
    drop(alice_tab);
    tokio::time::sleep(Duration::from_millis(400)).await;
    show("view-bob", &mut bob_feed);
    let draft = engine.editing.draft(&record).expect("the draft survives the hand-over");
    println!("  Bob continues from version {} written by {}: {}", draft.version, draft.updated_by.name, draft.params);

    println!("\nBob saves: fence, (the store commits and verifies), finish");
    let token = engine.editing.fence(&record, "view-bob")?;
    engine.editing.verify(&token)?;
    engine.editing.finish_save(&token, 2); // the store saved the row at lock_version 2
    println!("  saved from lock_version {:?}; Carol cannot fence: {}", token.base_lock_version(), {
        engine.editing.fence(&record, "view-carol").unwrap_err()
    });
    Ok(())
}
