//! Session statistics: one entry per open page, counted live.

use std::time::Duration;

use livebaton::presence::{Meta, PresenceConfig, PresenceDiff};
use livebaton::stats::SessionUser;
use livebaton::{Engine, EngineConfig};

fn page(path: &str) -> Meta {
    let mut meta = Meta::new();
    meta.insert("current_page".into(), serde_json::json!(path));
    meta
}

fn engine() -> Engine {
    Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace: Duration::ZERO, ..Default::default() },
        ..Default::default()
    })
}

/// Two tabs of one user and one anonymous visitor: three sessions, two authenticated, one unique user, one unique
/// visitor; closing a tab updates the numbers and subscribers hear of each change.
#[tokio::test]
async fn two_tabs_of_one_user_and_one_visitor() {
    let engine = engine();
    let mut changes = engine.stats.subscribe();
    let alice = SessionUser { id: "1".into(), email: "alice@example.com".into() };
    let tab1 = engine.stats.track_user(&alice, page("/admin")).await.unwrap();
    let tab2 = engine.stats.track_user(&alice, page("/admin/entities")).await.unwrap();
    let visitor = engine.stats.track_anonymous("sess-9", page("/e/article/hello")).await.unwrap();

    let stats = engine.stats.presence_stats();
    assert_eq!(stats.total_sessions, 3);
    assert_eq!(stats.authenticated_sessions, 2);
    assert_eq!(stats.anonymous_sessions, 1);
    assert_eq!(stats.unique_users, 1);
    assert_eq!(stats.unique_anonymous_visitors, 1);
    assert_eq!(stats.top_pages.len(), 3);
    assert!(stats.last_updated > 0);
    // Three joins, heard as diffs (a burst may be merged into fewer: presence coalesces busy topics).
    let mut joins = 0;
    while joins < 3 {
        let broadcast = changes.recv().await.unwrap();
        match broadcast.downcast::<PresenceDiff>() {
            Some(diff) => joins += diff.joins.meta_count(),
            None => panic!("expected a presence diff, got {broadcast:?}"),
        }
    }

    tab2.leave();
    let stats = engine.stats.presence_stats();
    assert_eq!((stats.total_sessions, stats.authenticated_sessions, stats.unique_users), (2, 1, 1));
    assert!(changes.recv().await.unwrap().downcast::<PresenceDiff>().is_some());
    tab1.leave();
    visitor.leave();
    let stats = engine.stats.presence_stats();
    assert_eq!((stats.total_sessions, stats.unique_users, stats.unique_anonymous_visitors), (0, 0, 0));
}

/// Top pages are counted per open page, most visited first, at most ten.
#[tokio::test]
async fn top_pages_are_ranked_and_capped() {
    let engine = engine();
    let mut guards = Vec::new();
    for n in 0..12 {
        guards.push(engine.stats.track_anonymous(&format!("s{n}"), page(&format!("/p/{n}"))).await.unwrap());
    }
    for n in 0..3 {
        guards.push(engine.stats.track_anonymous(&format!("x{n}"), page("/popular")).await.unwrap());
    }
    let stats = engine.stats.presence_stats();
    assert_eq!(stats.top_pages.len(), 10);
    assert_eq!(stats.top_pages[0], ("/popular".to_owned(), 3));
    assert_eq!(stats.unique_anonymous_visitors, 15);
    let active = engine.stats.list_active_sessions();
    assert_eq!(active.len(), 15);
    assert!(active.iter().all(|session| session.meta["type"] == "anonymous"));
}

/// An entry lives as long as its page: nothing expires while the guard is held.
#[tokio::test(start_paused = true)]
async fn nothing_expires_while_the_page_is_open() {
    let engine = engine();
    let _guard = engine.stats.track_anonymous("s1", page("/")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    assert_eq!(engine.stats.presence_stats().total_sessions, 1);
}
