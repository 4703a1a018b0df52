//! The examples, run as their users would: each example's own `app` served on a free port, its page fetched over
//! HTTP, and its live view joined over the socket by one or several clients (livebaton-testkit).

// Each example is included exactly as `cargo run --example` builds it, and each has its own `mod common;`.
#![allow(clippy::duplicate_mod, reason = "each included example brings the examples' common module")]

#[allow(dead_code, reason = "the example's main is not run here")]
#[path = "../examples/counter.rs"]
mod counter;

#[allow(dead_code, reason = "the example's main is not run here")]
#[path = "../examples/presence_room.rs"]
mod presence_room;

#[allow(dead_code, reason = "the example's main is not run here")]
#[path = "../examples/notes.rs"]
mod notes;

use livebaton::Engine;
use livebaton_testkit::{LivePage, TestServer, connect, get, ws_request};
use serde_json::json;

const SECRET: &[u8] = b"examples test secret, 32 bytes or more";

#[tokio::test]
async fn the_counter_renders_statically_then_counts_live() {
    let engine = Engine::new(Default::default());
    let server = TestServer::start(counter::app(&engine, SECRET.to_vec()).0).await;

    let mut page = LivePage::open(&server, "/", &[]).await.expect("a live page");
    let html = &page.page;
    assert_eq!(html.status, 200, "{}", html.body);
    assert!(html.body.contains("The count is <b>0</b>."), "readable without JavaScript: {}", html.body);
    assert!(html.header("content-security-policy").is_some_and(|csp| csp.contains("script-src 'self'")));
    assert_eq!(html.header("cache-control"), Some("no-store"));
    let script = html.attribute("script src").expect("the client's script tag");
    let stylesheet = html.attribute(r#"rel="stylesheet" href"#).expect("the default stylesheet");
    let client_js = get(server.address(), &script, &[]).await;
    assert!(client_js.status == 200 && client_js.body.contains("lb-root"), "the client itself");
    assert_eq!(get(server.address(), &stylesheet, &[]).await.header("content-type"), Some("text/css; charset=utf-8"));

    assert_eq!(page.title.as_deref(), Some("Counter"));
    assert!(page.region("count").contains("<b>0</b>"), "{}", page.region("count"));
    for (event, expected) in [("inc", "<b>1</b>"), ("inc", "<b>2</b>"), ("dec", "<b>1</b>")] {
        let reply = page.click(event, json!({})).await;
        assert!(reply.region("count").contains(expected), "{event}: {reply:?}");
    }
}

#[tokio::test]
async fn the_socket_refuses_other_sites_and_other_protocol_versions() {
    let engine = Engine::new(Default::default());
    let server = TestServer::start(counter::app(&engine, SECRET.to_vec()).0).await;
    let url = server.socket_url("vsn=2.0.0");
    assert!(connect(ws_request(&url, &[("origin", &server.origin())])).await.is_ok(), "the page's own origin");
    let other_site = connect(ws_request(&url, &[("origin", "https://evil.example")])).await.err().unwrap();
    assert_eq!(other_site.status, 403);
    assert_eq!(connect(ws_request(&server.socket_url("vsn=1.0.0"), &[])).await.err().unwrap().status, 403);
    assert_eq!(get(server.address(), "/assets/livebaton-0000000000000000.js", &[]).await.status, 404);
}

#[tokio::test]
async fn the_presence_room_lists_who_is_here_and_forgets_who_left() {
    let engine = Engine::new(Default::default());
    let server = TestServer::start(presence_room::app(&engine, SECRET.to_vec()).0).await;

    // Without a name: the page goes to the app's own /join, the socket is refused.
    let anonymous = LivePage::open(&server, "/", &[]).await.err().expect("not a live page");
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/join")));
    assert_eq!(connect(ws_request(&server.socket_url("vsn=2.0.0"), &[])).await.err().unwrap().status, 403);
    let joined = get(server.address(), "/join?name=Ann%20%3Cb%3E", &[]).await;
    assert_eq!(joined.header("set-cookie"), Some("member=Ann%20%3Cb%3E; Path=/; HttpOnly; SameSite=Lax"));

    let ann_cookie = [("cookie", "member=Ann%20%3Cb%3E")];
    let mut ann = LivePage::open_in_tab(&server, "/", &ann_cookie, "tab-ann").await.expect("Ann's page");
    assert!(ann.region("members").contains("Ann &lt;b&gt; (you)"), "the app's own name, escaped");

    let mut bob = LivePage::open_in_tab(&server, "/", &[("cookie", "member=Bob")], "tab-bob").await.unwrap();
    let list = bob.region("members").to_owned();
    assert!(list.contains("Ann &lt;b&gt;</li>") && list.contains("Bob (you)"), "{list}");
    assert!(list.find("Ann").unwrap() < list.find("Bob").unwrap(), "in the order they came: {list}");
    ann.diff_until("members", "Bob</li>").await;

    bob.leave().await;
    let deadline = tokio::time::Instant::now() + livebaton_testkit::WAIT;
    while ann.region("members").contains("Bob") {
        assert!(tokio::time::Instant::now() < deadline, "Bob's leave reaches Ann");
        ann.next_diff().await;
    }
    assert!(ann.region("members").contains("Ann &lt;b&gt; (you)"), "{}", ann.region("members"));
}

#[tokio::test]
async fn the_notes_form_has_one_owner_live_spectators_promotion_with_the_draft_and_merged_saves() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
    notes::prepare(&pool).await.unwrap();
    let id = notes::create(&pool, "Plan", "first").await.unwrap();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let engine = Engine::new(Default::default());
    let server = TestServer::start(notes::app(&engine, pool.clone(), SECRET.to_vec()).0).await;
    let stored = || async { notes::find(&pool, &id).await.unwrap().unwrap() };
    let path = format!("/notes/{id}");

    let mut ann = LivePage::open_in_tab(&server, &path, &[("cookie", "member=Ann")], "tab-ann").await.unwrap();
    assert!(
        ann.region("editing-bar").contains(r#"data-role="owner" aria-live="polite""#),
        "{}",
        ann.region("editing-bar")
    );
    let mut bob = LivePage::open_in_tab(&server, &path, &[("cookie", "member=Bob")], "tab-bob").await.unwrap();
    let bar = bob.region("editing-bar");
    assert!(bar.contains(r#"data-role="spectator""#) && bar.contains("Read-only — Ann is editing"), "{bar}");
    let editor = bob.region("collab-editor");
    assert!(editor.contains("<fieldset disabled>") && editor.contains(r#"value="Plan""#), "{editor}");

    // Ann's typing reaches Bob as she types; Bob's own edits are refused and change nothing.
    let typed = ann.change("draft", json!({"title": "Plan <B>", "body": "second", "_lock_version": "1"})).await;
    assert!(typed.region("collab-editor").contains(r#"data-status="unsaved">Unsaved changes<"#), "{typed:?}");
    let seen = bob.diff_until("collab-editor", "Plan &lt;B&gt;").await;
    assert!(seen.contains(">second</textarea>"), "{seen}");
    let refused = bob.change("draft", json!({"title": "Bob wins", "body": ""})).await;
    assert!(refused.flash("error").contains("Read-only — Ann is editing"), "{refused:?}");
    assert_eq!(stored().await.title, "Plan", "nothing saved yet");

    // Ann leaves: Bob is promoted at once, with her unsaved text, and saves it with his change.
    ann.leave().await;
    let bar = bob.diff_until("editing-bar", "You are now editing").await;
    assert!(bar.contains("Ann&#39;s unsaved changes"), "{bar}");
    let saved = bob.submit("save", json!({"title": "Plan <B>", "body": "second, by Bob"})).await;
    assert_eq!(saved.flash("info"), "Saved.", "{saved:?}");
    assert!(bob.region("collab-editor").contains(r#"data-status="saved">Saved at "#), "the status beside Save");
    let note = stored().await;
    assert_eq!((note.title.as_str(), note.body.as_str(), note.lock_version), ("Plan <B>", "second, by Bob", 2));

    // Someone else saves the title meanwhile; Bob's save of another title is not written over it: he chooses.
    sqlx::query("UPDATE notes SET title = 'Elsewhere', lock_version = 3 WHERE id = ?")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let conflict = bob.submit("save", json!({"title": "Bob's", "body": "second, by Bob"})).await;
    assert!(conflict.flash("error").starts_with("Not saved"), "{conflict:?}");
    let panel = bob.region("collab-editor");
    assert!(panel.contains(r#"data-field="title""#) && !panel.contains(r#"data-field="body""#), "{panel}");
    assert!(panel.contains("data-lb-focus") && panel.contains(r#"data-status="not-saved">Not saved"#), "{panel}");
    assert_eq!(stored().await.title, "Elsewhere", "nothing written");
    let resolved = bob.submit("resolve", json!({"resolve[title]": "mine"})).await;
    assert_eq!(resolved.flash("info"), "Saved.", "{resolved:?}");
    let note = stored().await;
    assert_eq!((note.title.as_str(), note.lock_version), ("Bob's", 4));
}
