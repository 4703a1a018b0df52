//! The examples, run as their users would: each example's own `app` served on a free port, its page fetched over
//! HTTP, and its live view joined over the socket by one or several clients.

// Each example is included exactly as `cargo run --example` builds it, and each has its own `mod common;`.
#![allow(clippy::duplicate_mod, reason = "each included example brings the examples' common module")]

mod support;

#[allow(dead_code, reason = "the example's main is not run here")]
#[path = "../examples/counter.rs"]
mod counter;

#[allow(dead_code, reason = "the example's main is not run here")]
#[path = "../examples/presence_room.rs"]
mod presence_room;

use std::time::Duration;

use livebaton::Engine;
use serde_json::json;
use support::{connect, get, join, next, send, serve};

const SECRET: &[u8] = b"examples test secret, 32 bytes or more";

#[tokio::test]
async fn the_counter_renders_statically_then_counts_live() {
    let engine = Engine::new(Default::default());
    let (app, _handle) = counter::app(&engine, SECRET.to_vec());
    let address = serve(app).await;

    let page = get(address, "/", &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("The count is <b>0</b>."), "readable without JavaScript: {}", page.body);
    assert_eq!(page.attribute("data-lb-view").as_deref(), Some("counter"));
    let token = page.attribute("data-lb-token").expect("a view token");
    let script = page.attribute("script src").expect("the client's script tag");
    assert!(page.header("content-security-policy").is_some_and(|csp| csp.contains("script-src 'self'")));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let client_js = get(address, &script, &[]).await;
    assert_eq!(client_js.status, 200);
    assert!(client_js.body.contains("lb-root"), "the client itself");

    let mut client = connect(address, "vsn=2.0.0", &[]).await.expect("the socket opens");
    let (status, response) = join(&mut client, "1", "lv:counter", json!({"token": token})).await;
    assert_eq!(status, "ok", "{response}");
    assert_eq!(response["title"], "Counter");
    let count = |html: &serde_json::Value| html.as_str().unwrap_or_default().to_owned();
    assert!(count(&response["rendered"]["regions"]["count"]).contains("<b>0</b>"), "{response}");
    for (event, expected) in [("inc", "<b>1</b>"), ("inc", "<b>2</b>"), ("dec", "<b>1</b>")] {
        let payload = json!({"type": "click", "event": event, "value": {}});
        send(&mut client, json!(["1", "9", "lv:counter", "event", payload])).await;
        let reply = next(&mut client).await;
        assert_eq!((reply[1].as_str(), reply[4]["status"].as_str()), (Some("9"), Some("ok")), "{reply}");
        assert!(count(&reply[4]["response"]["regions"]["count"]).contains(expected), "{event}: {reply}");
    }
}

#[tokio::test]
async fn the_socket_refuses_other_sites_and_other_protocol_versions() {
    let engine = Engine::new(Default::default());
    let (app, _handle) = counter::app(&engine, SECRET.to_vec());
    let address = serve(app).await;
    let same_site = format!("http://{address}");
    assert!(connect(address, "vsn=2.0.0", &[("origin", &same_site)]).await.is_ok(), "the page's own origin");
    assert_eq!(connect(address, "vsn=2.0.0", &[("origin", "https://evil.example")]).await.err(), Some(403));
    assert_eq!(connect(address, "vsn=1.0.0", &[]).await.err(), Some(403));
    assert_eq!(get(address, "/assets/livebaton-0000000000000000.js", &[]).await.status, 404);
}

/// The member list of a join reply or a diff push.
fn members(regions: &serde_json::Value) -> String {
    regions["members"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_presence_room_lists_who_is_here_and_forgets_who_left() {
    let engine = Engine::new(Default::default());
    let (app, _handle) = presence_room::app(&engine, SECRET.to_vec());
    let address = serve(app).await;

    // Without a name: the page goes to the app's own /join, the socket is refused.
    let anonymous = get(address, "/", &[]).await;
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/join")));
    assert_eq!(connect(address, "vsn=2.0.0", &[]).await.err(), Some(403));
    let joined = get(address, "/join?name=Ann%20%3Cb%3E", &[]).await;
    assert_eq!(joined.header("set-cookie"), Some("member=Ann%20%3Cb%3E; Path=/; HttpOnly; SameSite=Lax"));

    let open = |name: &'static str, tab: &'static str| async move {
        let cookie = format!("Cookie: member={name}");
        let page = get(address, "/", &[&cookie]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let token = page.attribute("data-lb-token").unwrap();
        let mut client = connect(address, "vsn=2.0.0", &[("cookie", &format!("member={name}"))]).await.unwrap();
        let (status, response) = join(&mut client, "1", "lv:room", json!({"token": token, "tab_id": tab})).await;
        assert_eq!(status, "ok", "{response}");
        (client, response)
    };
    let (mut ann, response) = open("Ann%20%3Cb%3E", "tab-ann").await;
    let list = members(&response["rendered"]["regions"]);
    assert!(list.contains("Ann &lt;b&gt; (you)"), "the app's own name, escaped: {list}");

    let (mut bob, response) = open("Bob", "tab-bob").await;
    let list = members(&response["rendered"]["regions"]);
    assert!(list.contains("Ann &lt;b&gt;</li>") && list.contains("Bob (you)"), "{list}");
    assert!(list.find("Ann").unwrap() < list.find("Bob").unwrap(), "in the order they came: {list}");
    let push = next(&mut ann).await;
    assert_eq!(push[3], "diff", "{push}");
    assert!(members(&push[4]["regions"]).contains("Bob</li>"), "Ann sees Bob arrive: {push}");

    send(&mut bob, json!(["1", "2", "lv:room", "phx_leave", {}])).await;
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let push = next(&mut ann).await;
            if push[3] == "diff" && !members(&push[4]["regions"]).contains("Bob") {
                return members(&push[4]["regions"]);
            }
        }
    })
    .await
    .expect("Bob's leave reaches Ann");
    assert!(gone.contains("Ann &lt;b&gt; (you)"), "{gone}");
}

#[allow(dead_code, reason = "the example's main is not run here")]
#[path = "../examples/notes.rs"]
mod notes;

/// A page of the notes example, signed in as `name`, joined to note `id`: its client and the join's regions.
async fn open_note(address: std::net::SocketAddr, name: &str, id: &str) -> (support::Client, serde_json::Value) {
    let cookie = format!("member={name}");
    let page = get(address, &format!("/notes/{id}"), &[&format!("Cookie: {cookie}")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.attribute("data-lb-token").unwrap();
    let mut client = connect(address, "vsn=2.0.0", &[("cookie", &cookie)]).await.unwrap();
    let tab = format!("tab-{name}");
    let (status, response) = join(&mut client, "1", "lv:note", json!({"token": token, "tab_id": tab})).await;
    assert_eq!(status, "ok", "{response}");
    (client, response["rendered"]["regions"].clone())
}

/// Sends a form event (`draft` as a change, `save` as a submit) and returns its reply's response.
async fn form_event(client: &mut support::Client, event: &str, value: serde_json::Value) -> serde_json::Value {
    let kind = if event == "draft" { "change" } else { "submit" };
    send(client, json!(["1", "7", "lv:note", "event", {"type": kind, "event": event, "value": value}])).await;
    loop {
        let frame = next(client).await;
        if frame[3] == "phx_reply" && frame[1] == "7" {
            assert_eq!(frame[4]["status"], "ok", "{frame}");
            return frame[4]["response"].clone();
        }
    }
}

/// The next pushed diff whose `region` contains `text`.
async fn diff_with(client: &mut support::Client, region: &str, text: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let frame = next(client).await;
            let html = frame[4]["regions"][region].as_str().unwrap_or_default();
            if frame[3] == "diff" && html.contains(text) {
                return html.to_owned();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no diff of {region} with {text:?}"))
}

#[tokio::test]
async fn the_notes_form_has_one_owner_live_spectators_promotion_with_the_draft_and_merged_saves() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
    notes::prepare(&pool).await.unwrap();
    let id = notes::create(&pool, "Plan", "first").await.unwrap();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let engine = Engine::new(Default::default());
    let (app, _handle) = notes::app(&engine, pool.clone(), SECRET.to_vec());
    let address = serve(app).await;
    let stored = || async { notes::find(&pool, &id).await.unwrap().unwrap() };

    let (mut ann, regions) = open_note(address, "Ann", &id).await;
    assert!(regions["editing-bar"].as_str().unwrap().contains(r#"data-role="owner""#), "{regions}");
    let (mut bob, regions) = open_note(address, "Bob", &id).await;
    let bar = regions["editing-bar"].as_str().unwrap();
    assert!(bar.contains(r#"data-role="spectator""#) && bar.contains("Read-only — Ann is editing"), "{bar}");
    let editor = regions["collab-editor"].as_str().unwrap();
    assert!(editor.contains("<fieldset disabled>") && editor.contains(r#"value="Plan""#), "{editor}");

    // Ann's typing reaches Bob as she types; Bob's own edits are refused and change nothing.
    let typed = json!({"title": "Plan <B>", "body": "second", "_lock_version": "1"});
    form_event(&mut ann, "draft", typed).await;
    let seen = diff_with(&mut bob, "collab-editor", "Plan &lt;B&gt;").await;
    assert!(seen.contains(">second</textarea>"), "{seen}");
    let refused = form_event(&mut bob, "draft", json!({"title": "Bob wins", "body": ""})).await;
    assert!(refused["flash"]["error"].as_str().unwrap().contains("Read-only — Ann is editing"), "{refused}");
    assert_eq!(stored().await.title, "Plan", "nothing saved yet");

    // Ann leaves: Bob is promoted at once, with her unsaved text, and saves it with his change.
    send(&mut ann, json!(["1", "2", "lv:note", "phx_leave", {}])).await;
    let bar = diff_with(&mut bob, "editing-bar", "You are now editing").await;
    assert!(bar.contains("Ann&#39;s unsaved changes"), "{bar}");
    let saved = form_event(&mut bob, "save", json!({"title": "Plan <B>", "body": "second, by Bob"})).await;
    assert_eq!(saved["flash"]["info"], "Saved.", "{saved}");
    let note = stored().await;
    assert_eq!((note.title.as_str(), note.body.as_str(), note.lock_version), ("Plan <B>", "second, by Bob", 2));

    // Someone else saves the title meanwhile; Bob's save of another title is not written over it: he chooses.
    sqlx::query("UPDATE notes SET title = 'Elsewhere', lock_version = 3 WHERE id = ?")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let conflict = form_event(&mut bob, "save", json!({"title": "Bob's", "body": "second, by Bob"})).await;
    assert!(conflict["flash"]["error"].as_str().unwrap().starts_with("Not saved"), "{conflict}");
    let panel = conflict["regions"]["collab-editor"].as_str().unwrap();
    assert!(panel.contains(r#"data-field="title""#) && !panel.contains(r#"data-field="body""#), "{panel}");
    assert_eq!(stored().await.title, "Elsewhere", "nothing written");
    let choice = json!({"resolve[title]": "mine"});
    send(&mut bob, json!(["1", "8", "lv:note", "event", {"type": "submit", "event": "resolve", "value": choice}]))
        .await;
    let resolved = loop {
        let frame = next(&mut bob).await;
        if frame[3] == "phx_reply" && frame[1] == "8" {
            break frame[4]["response"].clone();
        }
    };
    assert_eq!(resolved["flash"]["info"], "Saved.", "{resolved}");
    let note = stored().await;
    assert_eq!((note.title.as_str(), note.lock_version), ("Bob's", 4));
}
