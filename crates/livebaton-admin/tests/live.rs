//! The live transport of the admin server over real sockets (mirrors `src/live/`): who may open `/live/websocket`
//! (token, `authToken` subprotocol, session cookie + CSRF, origin, vsn) and that long-polling is gone; content events
//! on `entities` / `entity_data:<name>`; the collaborative editing channels `edit:data:<id>` (roles, drafts, refusals,
//! promotion after the grace, fenced saves, "edit here", viewers); presence rooms; and graceful shutdown.
//!
//! Each test starts the whole application (`livebaton_admin::app::router`) on 127.0.0.1:0 over a fresh SQLite file
//! and talks to it with tokio-tungstenite, speaking raw Phoenix V2 frames.

#[path = "support/live.rs"]
mod live_support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use live_support::{LiveServer, PASSWORD, Peer, error_reason, eventually, start, try_open, ws_request};
use livebaton::editing::EditTarget;
use livebaton_admin::accounts::{Role, sha256_hex};
use livebaton_admin::pages::session::{CSRF_COOKIE, SESSION_COOKIE};
use livebaton_admin::storage::{Entity, Record, Session, User, now_ms};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The presence grace of most tests: long enough to observe, short enough to wait for.
const GRACE: Duration = Duration::from_millis(300);
/// A grace no test waits for: anything that happens within [`WAIT`] happened without it.
const LONG_GRACE: Duration = Duration::from_secs(30);
/// How long "nothing else arrives" is watched for.
const QUIET: Duration = Duration::from_millis(200);

/// The people of the editing scenarios.
struct People {
    admin: User,
    alice: User,
    bob: User,
    carol: User,
    vera: User,
}

/// A server with the admin, Alice, Bob and Carol (editors), Vera (viewer), and the demo content (`article` with three
/// records).
async fn setup(grace: Duration) -> (LiveServer, People, Entity, Vec<Record>) {
    let server = start(grace, Vec::new()).await;
    let people = People {
        admin: server.user("admin@example.com", "Admin", Role::Admin).await,
        alice: server.user("alice@example.com", "Alice", Role::Editor).await,
        bob: server.user("bob@example.com", "Bob", Role::Editor).await,
        carol: server.user("carol@example.com", "Carol", Role::Editor).await,
        vera: server.user("vera@example.com", "Vera", Role::Viewer).await,
    };
    let done = livebaton_admin::seed::bootstrap(&server.state.content, None, true).await.expect("the demo seeds");
    assert!(done.seeded_demo && done.generated_admin.is_none());
    let article = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let records = server.state.store.list_records(article.id).await.unwrap();
    assert_eq!(records.len(), 3);
    (server, people, article, records)
}

/// The status an upgrade of `request` was refused with (fails if it was accepted, or if the refusal does not say
/// why).
async fn refused(request: tokio_tungstenite::tungstenite::handshake::client::Request) -> StatusCode {
    let uri = request.uri().to_string();
    match try_open(request).await {
        Ok(_) => panic!("{uri}: the upgrade was accepted"),
        Err(refusal) => {
            assert!(!refusal.body.is_empty(), "{uri}: a {} without a reason", refusal.status);
            refusal.status
        }
    }
}

/// A socket opened with `request` answers a heartbeat (so it really is a live Phoenix socket).
async fn assert_live(peer: &mut Peer) {
    peer.send(json!([null, "hb", "phoenix", "heartbeat", {}])).await;
    assert_eq!(
        peer.reply("phoenix", "hb").await,
        json!([null, "hb", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
    );
}

/// The user a socket was authenticated as: joins a room and reads its own presence.
async fn assert_signed_in_as(peer: &mut Peer, user: &User) {
    peer.join_ok("room:whoami", json!({})).await;
    let state = peer.event("room:whoami", "presence_state").await;
    let mine = &state[4][user.id.to_string()]["metas"];
    assert_eq!(mine[0]["name"], user.name.as_str(), "the socket is {}'s: {state}", user.name);
}

/// Signs `email` in through the sign-in form; returns the session cookie's value.
async fn sign_in(server: &LiveServer, email: &str) -> String {
    let page = server
        .http(Request::get("/admin/login").header("host", server.address.to_string()).body(Body::empty()).unwrap())
        .await;
    let csrf = page.cookie(CSRF_COOKIE).expect("the sign-in page sets the CSRF cookie");
    let form =
        format!("email={}&password={}&_csrf_token={csrf}", email.replace('@', "%40"), PASSWORD.replace(' ', "+"));
    let reply = server
        .http(
            Request::post("/admin/login")
                .header("host", server.address.to_string())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", format!("{CSRF_COOKIE}={csrf}"))
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in failed: {}", reply.text);
    reply.cookie(SESSION_COOKIE).filter(|value| !value.is_empty()).expect("a session cookie")
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Authentication and handshake
// ---------------------------------------------------------------------------------------------------------------

/// Without credentials, with a forged, foreign-key or expired token (as a param or as the `authToken` subprotocol),
/// or for a user that does not exist, the upgrade is refused with 403 and a reason.
#[tokio::test]
async fn connects_without_valid_credentials_are_refused_with_403() {
    let (server, people, _, _) = setup(GRACE).await;
    let signer = &server.state.signer;
    let expired = signer.sign(people.alice.id, people.alice.token_generation, 1, now_ms() - 1);
    let foreign = livebaton_admin::accounts::TokenSigner::new("another secret key base, also 32+ chars").sign(
        people.alice.id,
        people.alice.token_generation,
        1,
        now_ms() + 60_000,
    );
    // Bob's claims under Alice's signature.
    let (alice_token, bob_token) = (server.token(&people.alice).await, server.token(&people.bob).await);
    let (bob_claims, alice_signature) =
        (bob_token.rsplit_once('.').expect("lb1.<claims>.<signature>").0, alice_token.rsplit_once('.').unwrap().1);
    let forged = format!("{bob_claims}.{alice_signature}");
    let nobody = signer.sign(9_999, 0, 1, now_ms() + 60_000);
    let no_credentials = server.ws_url("vsn=2.0.0");
    assert_eq!(refused(ws_request(&no_credentials, &[])).await, StatusCode::FORBIDDEN, "no credentials");
    for (what, token) in [
        ("garbage", "not-a-token"),
        ("expired", &expired),
        ("foreign", &foreign),
        ("forged", &forged),
        ("nobody", &nobody),
    ] {
        let url = server.ws_url(&format!("vsn=2.0.0&token={token}"));
        assert_eq!(refused(ws_request(&url, &[])).await, StatusCode::FORBIDDEN, "{what} token param");
        let protocol =
            format!("phoenix, base64url.bearer.phx.{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(token));
        let request = ws_request(&no_credentials, &[("sec-websocket-protocol", &protocol)]);
        assert_eq!(refused(request).await, StatusCode::FORBIDDEN, "{what} authToken subprotocol");
    }
    let Err(refusal) = try_open(ws_request(&no_credentials, &[])).await else { panic!("accepted") };
    assert!(refusal.body.contains("sign in first"), "{refusal:?}");
}

/// A valid `token` connect param upgrades, and the socket is that user's.
#[tokio::test]
async fn a_token_param_upgrades() {
    let (server, people, _, _) = setup(GRACE).await;
    let mut peer = server.connect(&server.token(&people.bob).await).await;
    assert_live(&mut peer).await;
    assert_signed_in_as(&mut peer, &people.bob).await;
}

/// A database that does not answer is the server's problem, not the client's credentials: 503, not 403, so a client
/// retries instead of concluding it was signed out.
#[tokio::test]
async fn a_database_that_does_not_answer_is_503_not_403() {
    let (server, people, _, _) = setup(GRACE).await;
    let token = server.token(&people.bob).await;
    server.state.store.pool().close().await;
    let url = server.ws_url(&format!("vsn=2.0.0&token={token}"));
    assert_eq!(refused(ws_request(&url, &[])).await, StatusCode::SERVICE_UNAVAILABLE);
}

/// phoenix.js 1.8's `authToken` (`Sec-WebSocket-Protocol: phoenix, base64url.bearer.phx.<standard base64, no
/// padding>`) upgrades as that user, and the server selects `phoenix`.
#[tokio::test]
async fn the_auth_token_subprotocol_upgrades_and_phoenix_is_selected() {
    let (server, people, _, _) = setup(GRACE).await;
    let token = server.token(&people.carol).await;
    let protocol =
        format!("phoenix, base64url.bearer.phx.{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(&token));
    let request = ws_request(&server.ws_url("vsn=2.0.0"), &[("sec-websocket-protocol", &protocol)]);
    let (mut peer, response) = try_open(request).await.expect("the upgrade succeeds");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()), Some("phoenix"));
    assert_live(&mut peer).await;
    assert_signed_in_as(&mut peer, &people.carol).await;
}

/// The session cookie upgrades only with the session's own `_csrf_token`: a wrong or missing token, or an expired
/// session, is refused with 403.
#[tokio::test]
async fn a_session_cookie_needs_its_csrf_token() {
    let (server, people, _, _) = setup(GRACE).await;
    let session_id = sign_in(&server, "alice@example.com").await;
    let session = server.state.store.find_session(&sha256_hex(&session_id)).await.unwrap().expect("the session");
    assert_eq!(session.user_id, people.alice.id);
    let cookie = format!("{SESSION_COOKIE}={session_id}");

    let url = server.ws_url(&format!("vsn=2.0.0&_csrf_token={}", session.csrf_token));
    let (mut peer, _) = try_open(ws_request(&url, &[("cookie", &cookie)])).await.expect("cookie + CSRF upgrades");
    assert_live(&mut peer).await;
    assert_signed_in_as(&mut peer, &people.alice).await;

    let wrong = server.ws_url("vsn=2.0.0&_csrf_token=not-the-session-token");
    assert_eq!(refused(ws_request(&wrong, &[("cookie", &cookie)])).await, StatusCode::FORBIDDEN, "wrong CSRF");
    let missing = server.ws_url("vsn=2.0.0");
    assert_eq!(refused(ws_request(&missing, &[("cookie", &cookie)])).await, StatusCode::FORBIDDEN, "no CSRF");
    let empty = server.ws_url("vsn=2.0.0&_csrf_token=");
    assert_eq!(refused(ws_request(&empty, &[("cookie", &cookie)])).await, StatusCode::FORBIDDEN, "empty CSRF");
    // The CSRF token alone is not a credential.
    assert_eq!(refused(ws_request(&url, &[])).await, StatusCode::FORBIDDEN, "CSRF without the cookie");

    // A session inserted directly, already expired.
    let expired_id = "an-expired-session-id";
    let expired = Session {
        id_hash: sha256_hex(expired_id),
        user_id: people.bob.id,
        csrf_token: "expired-csrf-token".into(),
        expires_at: now_ms() - 1,
        token_generation: people.bob.token_generation,
    };
    server.state.store.create_session(&expired).await.unwrap();
    let url = server.ws_url("vsn=2.0.0&_csrf_token=expired-csrf-token");
    let cookie = format!("{SESSION_COOKIE}={expired_id}");
    assert_eq!(refused(ws_request(&url, &[("cookie", &cookie)])).await, StatusCode::FORBIDDEN, "expired session");
}

/// Signing out closes the user's live connections with 1001 (their presences leave at once); other users' stay.
#[tokio::test]
async fn signing_out_disconnects_the_users_sockets() {
    let (server, people, _, _) = setup(LONG_GRACE).await;
    let session_id = sign_in(&server, "alice@example.com").await;
    let session = server.state.store.find_session(&sha256_hex(&session_id)).await.unwrap().expect("the session");
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    alice.join_ok("room:out", json!({})).await;
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    bob.join_ok("room:out", json!({})).await;

    let form = format!("_csrf_token={}", session.csrf_token);
    let reply = server
        .http(
            Request::post("/admin/logout")
                .header("host", server.address.to_string())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", format!("{SESSION_COOKIE}={session_id}"))
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert!(reply.status.is_redirection(), "signed out: {}", reply.status);
    assert_eq!(alice.close_frame().await, (CloseCode::Away, "signed out".to_owned()));
    eventually("Alice's presence to leave at once", || server.state.engine.presence.count("room:out") == 1).await;
    assert_live(&mut bob).await;
}

/// A cross-site `Origin` is refused with 403; the same origin (and no `Origin`, which is not a browser) is allowed.
/// With a configured list, only the listed origins are.
#[tokio::test]
async fn cross_site_origins_are_refused() {
    let (server, people, _, _) = setup(GRACE).await;
    let url = server.ws_url(&format!("vsn=2.0.0&token={}", server.token(&people.alice).await));
    let same = server.origin();
    let (mut peer, _) = try_open(ws_request(&url, &[("origin", &same)])).await.expect("same origin upgrades");
    assert_live(&mut peer).await;
    try_open(ws_request(&url, &[])).await.expect("no Origin upgrades");
    let other_port = format!("http://127.0.0.1:{}", server.address.port().wrapping_add(1));
    for origin in ["https://evil.example", "null", "http://localhost", other_port.as_str()] {
        assert_eq!(refused(ws_request(&url, &[("origin", origin)])).await, StatusCode::FORBIDDEN, "{origin}");
    }

    let listed = start(GRACE, vec!["https://admin.example.com".into(), "127.0.0.1:1".into()]).await;
    let user = listed.user("dora@example.com", "Dora", Role::Editor).await;
    let url = listed.ws_url(&format!("vsn=2.0.0&token={}", listed.token(&user).await));
    for origin in ["https://admin.example.com", "http://127.0.0.1:1"] {
        try_open(ws_request(&url, &[("origin", origin)]))
            .await
            .unwrap_or_else(|refusal| panic!("{origin}: {refusal:?}"));
    }
    for origin in [listed.origin().as_str(), "https://evil.example", "https://admin.example.com.evil.example"] {
        assert_eq!(refused(ws_request(&url, &[("origin", origin)])).await, StatusCode::FORBIDDEN, "{origin}");
    }
}

/// Only protocol version 2.0.x is spoken: a missing `vsn`, 1.0.0 or 2.1.0 is refused with 403 even with a valid
/// token.
#[tokio::test]
async fn only_vsn_2_is_spoken() {
    let (server, people, _, _) = setup(GRACE).await;
    let token = server.token(&people.alice).await;
    for query in [format!("token={token}"), format!("vsn=1.0.0&token={token}"), format!("vsn=2.1.0&token={token}")] {
        assert_eq!(refused(ws_request(&server.ws_url(&query), &[])).await, StatusCode::FORBIDDEN, "{query}");
    }
    let (mut peer, _) =
        try_open(ws_request(&server.ws_url(&format!("vsn=2.0.3&token={token}")), &[])).await.expect("2.0.3 upgrades");
    assert_live(&mut peer).await;
}

/// `/live/longpoll` answers 410 Gone, for any method, with a body pointing to the WebSocket endpoint.
#[tokio::test]
async fn long_polling_is_gone() {
    let (server, _, _, _) = setup(GRACE).await;
    for method in [Method::GET, Method::POST] {
        let reply = server
            .http(
                Request::builder().method(method.clone()).uri("/live/longpoll?vsn=2.0.0").body(Body::empty()).unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::GONE, "{method}");
        assert!(reply.text.contains("WebSocket") && reply.text.contains("/live/websocket"), "{method}: {}", reply.text);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Content events
// ---------------------------------------------------------------------------------------------------------------

/// `entities` pushes `entity_created` / `entity_updated` / `entity_deleted` with the entity id for changes made
/// through the JSON API; `entity_data:article` pushes `data_created` / `data_updated` / `data_deleted` for article
/// records only; `entity_data:nope` is refused; both channels refuse client events.
#[tokio::test]
async fn content_events_reach_their_channels() {
    let (server, people, article, records) = setup(GRACE).await;
    let admin = server.token(&people.admin).await;
    let mut peer = server.connect(&server.token(&people.vera).await).await;
    let joined = peer.join("entities", json!({})).await;
    assert_eq!(joined, json!(["1", "1", "entities", "phx_reply", {"status": "ok", "response": {}}]));
    let joined = peer.join("entity_data:article", json!({})).await;
    assert_eq!(
        joined,
        json!(["2", "2", "entity_data:article", "phx_reply", {"status": "ok", "response": {"entity_id": article.id}}])
    );
    let refused = peer.join("entity_data:nope", json!({})).await;
    assert_eq!(
        refused,
        json!(["3", "3", "entity_data:nope", "phx_reply", {"status": "error", "response": {"reason": "no such entity"}}])
    );
    let listen_only = peer.push("entities", "entity_created", json!({"entity_id": 1})).await;
    assert!(error_reason(&listen_only).contains("only sends"), "{listen_only}");

    // A second entity, through the API: created, updated.
    let page = json!({"name": "page", "display_name": "Page", "display_name_plural": "Pages",
        "fields_definition": [{"type": "text", "key": "intro", "label": "Intro"}]});
    let created = server.api(Method::POST, "/api/entities", &admin, Some(page.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let page_id = created.json["id"].as_i64().expect("an id");
    let frame = peer.event("entities", "entity_created").await;
    assert_eq!(
        &frame.as_array().unwrap()[..4],
        &[Value::Null, Value::Null, json!("entities"), json!("entity_created")]
    );
    assert_eq!(frame[4]["entity_id"], page_id, "{frame}");
    let mut update = page.clone();
    update["display_name"] = json!("Web page");
    update["lock_version"] = created.json["lock_version"].clone();
    let updated = server.api(Method::PUT, "/api/entities/page", &admin, Some(update)).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(peer.event("entities", "entity_updated").await[4]["entity_id"], page_id);

    // A page record: nothing on entity_data:article. Then an article record: data_created, pushed on the channel.
    let page_record = json!({"title": "About", "data": {"intro": "hello"}});
    let reply = server.api(Method::POST, "/api/entities/page/records", &admin, Some(page_record)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let input = json!({"title": "Breaking", "data": {"category": "news"}});
    let reply = server.api(Method::POST, "/api/entities/article/records", &admin, Some(input.clone())).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let record_id = reply.json["id"].as_i64().expect("an id");
    let frame = peer.take("a data event on entity_data:article", |frame| frame[2] == "entity_data:article").await;
    assert_eq!(
        &frame.as_array().unwrap()[..4],
        &[json!("2"), Value::Null, json!("entity_data:article"), json!("data_created")]
    );
    assert_eq!((&frame[4]["entity_id"], &frame[4]["data_id"]), (&json!(article.id), &json!(record_id)), "{frame}");

    // Updated and deleted through the API; a record of the demo deleted directly through the content service.
    let mut update = input;
    update["title"] = json!("Breaking, updated");
    update["lock_version"] = json!(1);
    let uri = format!("/api/entities/article/records/{record_id}");
    assert_eq!(server.api(Method::PUT, &uri, &admin, Some(update)).await.status, StatusCode::OK);
    let frame = peer.event("entity_data:article", "data_updated").await;
    assert_eq!((&frame[4]["entity_id"], &frame[4]["data_id"]), (&json!(article.id), &json!(record_id)), "{frame}");
    assert_eq!(server.api(Method::DELETE, &uri, &admin, None).await.status, StatusCode::NO_CONTENT);
    let frame = peer.event("entity_data:article", "data_deleted").await;
    assert_eq!(frame[4]["data_id"], record_id, "{frame}");
    server.state.content.delete_record(&article, records[0].id, None, None).await.expect("deleted");
    let frame = peer.event("entity_data:article", "data_deleted").await;
    assert_eq!(frame[4]["data_id"], records[0].id, "{frame}");

    // The page entity deleted: entity_deleted, and still nothing about pages on the article channel.
    assert_eq!(server.api(Method::DELETE, "/api/entities/page", &admin, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(peer.event("entities", "entity_deleted").await[4]["entity_id"], page_id);
    peer.assert_none("event on entity_data:article or a data event on entities", QUIET, |frame| {
        frame[2] == "entity_data:article"
            || (frame[2] == "entities" && frame[3].as_str().is_some_and(|e| e.starts_with("data_")))
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Collaborative editing
// ---------------------------------------------------------------------------------------------------------------

/// A user's id as the channels send it (text) and display name.
fn person(user: &User) -> (String, &str) {
    (user.id.to_string(), user.name.as_str())
}

/// Checks a join reply's queue entry: user and whether they may edit; returns its view id.
fn queue_entry(entry: &Value, user: &User, can_edit: bool) -> String {
    let (id, name) = person(user);
    assert_eq!((&entry["user_id"], &entry["name"], &entry["can_edit"]), (&json!(id), &json!(name), &json!(can_edit)));
    entry["view_id"].as_str().expect("a view id").to_owned()
}

/// An editor as `owner` and `updated_by` show it.
fn owner_json(user: &User, view_id: &str) -> Value {
    let (id, name) = person(user);
    json!({"user_id": id, "name": name, "view_id": view_id})
}

/// A `saved` push: `user` saved the row at `lock_version`, taking `merged` from the row.
fn saved_by(user: &User, lock_version: i64, merged: &[&str]) -> Value {
    let (id, name) = person(user);
    json!({"lock_version": lock_version, "by": name, "by_id": id, "merged": merged})
}

/// Valid record params for the demo article.
fn article_params(title: &str) -> Value {
    json!({"title": title, "data": {"summary": format!("{title}: summary"), "category": "guide"}})
}

/// Alice, Bob and Carol join in order: owner, spectator, spectator, with the queue in order and `presence_state`
/// listing everyone. Alice's `draft` reaches Bob and Carol (not Alice); a late joiner gets it in the join reply.
/// Carol's `draft` and `save` are refused with `not_owner` and change nothing. When the record is deleted elsewhere,
/// everyone gets `deleted`; when it is restored, `restored`, and the owner's draft saves.
#[tokio::test]
async fn the_first_editor_owns_and_spectators_watch_the_draft() {
    let (server, people, _, records) = setup(GRACE).await;
    let record = &records[1];
    let topic = format!("edit:data:{}", record.id);
    let target = EditTarget::new("data", record.id).unwrap();

    let mut alice = server.connect(&server.token(&people.alice).await).await;
    let reply = alice.join_ok(&topic, json!({"tab_id": "alice-tab"})).await;
    let alice_view = queue_entry(&reply["queue"][0], &people.alice, true);
    assert_eq!(
        reply,
        json!({"role": "owner", "owner": owner_json(&people.alice, &alice_view),
            "queue": [reply["queue"][0].clone()], "draft": null, "lock_version": 1, "kept_draft": null})
    );
    // The session's first owner is also told so as a `role` change, reason `first`.
    let role = alice.event(&topic, "role").await;
    assert_eq!(
        role,
        json!([alice.join_ref(&topic), null, topic, "role",
            {"role": "owner", "owner": owner_json(&people.alice, &alice_view), "reason": "first", "draft": null}])
    );

    let mut bob = server.connect(&server.token(&people.bob).await).await;
    let reply = bob.join_ok(&topic, json!({"tab_id": "bob-tab"})).await;
    assert_eq!((&reply["role"], &reply["owner"]), (&json!("spectator"), &owner_json(&people.alice, &alice_view)));
    assert_eq!(queue_entry(&reply["queue"][0], &people.alice, true), alice_view);
    let bob_view = queue_entry(&reply["queue"][1], &people.bob, true);

    let mut carol = server.connect(&server.token(&people.carol).await).await;
    let reply = carol.join_ok(&topic, json!({"tab_id": "carol-tab"})).await;
    assert_eq!((&reply["role"], &reply["owner"]), (&json!("spectator"), &owner_json(&people.alice, &alice_view)));
    assert_eq!(reply["queue"].as_array().unwrap().len(), 3);
    assert_eq!(queue_entry(&reply["queue"][0], &people.alice, true), alice_view);
    assert_eq!(queue_entry(&reply["queue"][1], &people.bob, true), bob_view);
    let carol_view = queue_entry(&reply["queue"][2], &people.carol, true);
    assert_eq!((&reply["draft"], &reply["lock_version"]), (&Value::Null, &json!(1)));

    // presence_state, pushed with the join_ref: keyed by view id, metas with user, tab and phx_ref.
    let state = carol.event(&topic, "presence_state").await;
    assert_eq!(state[0], json!(carol.join_ref(&topic)));
    let mut keys: Vec<&String> = state[4].as_object().expect("a presence map").keys().collect();
    keys.sort();
    let mut expected = vec![&alice_view, &bob_view, &carol_view];
    expected.sort();
    assert_eq!(keys, expected, "{state}");
    for (view, user, tab) in [
        (&alice_view, &people.alice, "alice-tab"),
        (&bob_view, &people.bob, "bob-tab"),
        (&carol_view, &people.carol, "carol-tab"),
    ] {
        let meta = &state[4][view.as_str()]["metas"][0];
        assert_eq!(
            (&meta["user_id"], &meta["user_name"], &meta["tab_id"]),
            (&json!(user.id.to_string()), &json!(user.name), &json!(tab))
        );
        assert!(meta["phx_ref"].is_string(), "{meta}");
    }
    // Alice saw Bob and Carol arrive.
    for view in [&bob_view, &carol_view] {
        alice
            .take("Alice sees a join", |frame| {
                frame[3] == "presence_diff" && frame[4]["joins"][view.as_str()].is_object()
            })
            .await;
    }

    // Alice types: Bob and Carol get the draft, Alice gets her reply and no echo.
    let params = article_params("Alice was here");
    let reply = alice.push(&topic, "draft", json!({"params": params})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"version": 1}}));
    let draft = json!({"params": params, "version": 1, "updated_by": owner_json(&people.alice, &alice_view)});
    for peer in [&mut bob, &mut carol] {
        let frame = peer.event(&topic, "draft").await;
        assert_eq!(frame, json!([peer.join_ref(&topic), null, topic, "draft", draft]));
    }
    alice.assert_none("echo of Alice's own draft", QUIET, |frame| frame[3] == "draft").await;

    // Carol is a spectator: her draft and save are refused, and nothing changes.
    let refusal =
        json!({"status": "error", "response": {"reason": "not_owner", "message": "read-only: Alice is editing"}});
    let reply = carol.push(&topic, "draft", json!({"params": article_params("Carol's take")})).await;
    assert_eq!(reply[4], refusal);
    let reply = carol.push(&topic, "save", json!({"params": article_params("Carol's take")})).await;
    assert_eq!(reply[4], refusal);
    let reply = carol.push(&topic, "save", json!({})).await;
    assert_eq!(reply[4], refusal, "saving the owner's draft is the owner's call");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(&stored, record, "the record is unchanged");
    let kept = server.state.engine.editing.draft(&target).expect("the draft");
    assert_eq!((kept.version, &kept.params), (1, &params), "the draft is Alice's");
    for peer in [&mut alice, &mut bob] {
        peer.assert_none("a draft from Carol", QUIET, |frame| frame[3] == "draft").await;
    }

    // A late joiner (Vera, a viewer) renders the current draft from the join reply.
    let mut vera = server.connect(&server.token(&people.vera).await).await;
    let reply = vera.join_ok(&topic, json!({"tab_id": "vera-tab"})).await;
    assert_eq!(reply["role"], "spectator");
    assert_eq!(reply["draft"], draft);
    queue_entry(&reply["queue"][3], &people.vera, false);

    // Malformed drafts are refused; so are unknown events.
    let reply = alice.push(&topic, "draft", json!({"params": "not an object"})).await;
    assert_eq!(reply[4]["response"], json!({"reason": "invalid", "errors": {"params": ["must be an object"]}}));
    assert!(error_reason(&alice.push(&topic, "publish", json!({})).await).contains("unknown event"));

    // The record is moved to the trash elsewhere: everyone is told, and the owner's save says so.
    let uri = format!("/api/entities/article/records/{}", record.id);
    let deleted = server.api(Method::DELETE, &uri, &server.token(&people.admin).await, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    for peer in [&mut alice, &mut bob, &mut carol, &mut vera] {
        let trashed = json!([peer.join_ref(&topic), null, topic, "deleted", {"trash": true}]);
        assert_eq!(peer.event(&topic, "deleted").await, trashed);
    }
    assert_eq!(error_reason(&alice.push(&topic, "save", json!({})).await), "deleted");

    // Restored: everyone is told, at the version it had, and the owner's draft saves over it.
    let restore = format!("{uri}/restore");
    let restored = server.api(Method::POST, &restore, &server.token(&people.admin).await, None).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text);
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().expect("back");
    for peer in [&mut alice, &mut bob, &mut carol, &mut vera] {
        let back = json!([peer.join_ref(&topic), null, topic, "restored", {"lock_version": stored.lock_version}]);
        assert_eq!(peer.event(&topic, "restored").await, back);
    }
    let saved = alice.push(&topic, "save", json!({})).await;
    assert_eq!(saved[4]["status"], "ok", "the draft saves over the restored row: {saved}");
}

/// `edit:data:<id>` of a record that does not exist (or is not a number) and `edit:entity:<id>` of a missing entity
/// are refused with `not found`.
#[tokio::test]
async fn editing_a_missing_row_is_refused() {
    let (server, people, _, _) = setup(GRACE).await;
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    for topic in ["edit:data:9999", "edit:data:abc", "edit:entity:9999"] {
        let reply = alice.join(topic, json!({"tab_id": "a"})).await;
        assert_eq!(reply[4], json!({"status": "error", "response": {"reason": "not found"}}), "{topic}");
    }
}

/// On `edit:entity:<id>` only admins may hold the baton: an editor who came first watches, the admin behind her owns
/// (and the join reply names the admin, not the first in the queue), and the admin's save of the entity is fenced
/// and announced like a record's.
#[tokio::test]
async fn only_admins_hold_the_baton_on_entities() {
    let (server, people, article, _) = setup(GRACE).await;
    let topic = format!("edit:entity:{}", article.id);
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    let reply = alice.join_ok(&topic, json!({"tab_id": "a"})).await;
    assert_eq!(
        (&reply["role"], &reply["owner"], &reply["lock_version"]),
        (&json!("spectator"), &Value::Null, &json!(1))
    );
    queue_entry(&reply["queue"][0], &people.alice, false);
    let mut admin = server.connect(&server.token(&people.admin).await).await;
    let reply = admin.join_ok(&topic, json!({"tab_id": "root"})).await;
    let admin_view = queue_entry(&reply["queue"][1], &people.admin, true);
    assert_eq!((&reply["role"], &reply["owner"]), (&json!("owner"), &owner_json(&people.admin, &admin_view)));
    let role = alice.event(&topic, "role").await;
    let owner = owner_json(&people.admin, &admin_view);
    assert_eq!(role[4], json!({"role": "spectator", "owner": owner, "reason": "owner_changed", "draft": null}));

    let params = json!({"name": "article", "display_name": "Story", "display_name_plural": "Stories",
        "fields_definition": article.fields_definition});
    assert_eq!(error_reason(&alice.push(&topic, "draft", json!({"params": params})).await), "not_owner");
    assert_eq!(admin.push(&topic, "draft", json!({"params": params})).await[4]["status"], "ok");
    assert_eq!(alice.event(&topic, "draft").await[4]["params"]["display_name"], "Story");
    let reply = admin.push(&topic, "save", json!({})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"lock_version": 2, "merged": []}}));
    assert_eq!(alice.event(&topic, "saved").await[4], saved_by(&people.admin, 2, &[]));
    let stored = server.state.store.find_entity(article.id).await.unwrap().unwrap();
    assert_eq!((stored.display_name.as_str(), stored.lock_version), ("Story", 2));
}

/// Users are told apart by id, not by display name: two editors both named "Sam" share a record's session, one over
/// `edit:data`, the other on the live form, and Carol watches over the channel. Every `saved` push carries the
/// saver's id in `by_id` beside the name in `by`, whether the save came from the channel or from the live form; and
/// the form of the Sam who did not save says who did, though the name is its own user's.
#[tokio::test]
async fn saved_pushes_identify_the_saver_by_id() {
    let (server, people, _, records) = setup(GRACE).await;
    let record = &records[1];
    let topic = format!("edit:data:{}", record.id);
    let sam = server.user("sam@example.com", "Sam", Role::Editor).await;
    let other_sam = server.user("sam.two@example.com", "Sam", Role::Editor).await;
    let mut sam_channel = server.connect(&server.token(&sam).await).await;
    assert_eq!(sam_channel.join_ok(&topic, json!({"tab_id": "s1"})).await["role"], "owner");
    let mut page = server.connect(&server.token(&other_sam).await).await;
    let params: serde_json::Map<String, Value> = [("entity", "article".to_owned()), ("id", record.id.to_string())]
        .into_iter()
        .chain([("path", "/edit".to_owned())])
        .map(|(key, value)| (key.to_owned(), json!(value)))
        .collect();
    let view_token = server.state.views.token("record_edit", &params);
    page.join_ok("lv:record_edit", json!({"token": view_token, "tab_id": "s2"})).await;
    let mut carol = server.connect(&server.token(&people.carol).await).await;
    carol.join_ok(&topic, json!({"tab_id": "c"})).await;

    // Sam saves over the channel: everyone hears it was Sam, by id.
    let reply = sam_channel.push(&topic, "save", json!({"params": article_params("Sam's title")})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    let by_sam = saved_by(&sam, record.lock_version + 1, &[]);
    assert_eq!(sam_channel.event(&topic, "saved").await[4], by_sam);
    assert_eq!(carol.event(&topic, "saved").await[4], by_sam);
    assert_ne!(by_sam["by_id"], json!(other_sam.id.to_string()));
    page.take("the other Sam's form says who saved", |frame| {
        frame[3] == "diff" && frame[4].to_string().contains("Saved by Sam.")
    })
    .await;

    // Sam leaves: the other Sam's page is promoted and saves from the live form.
    assert_eq!(sam_channel.push(&topic, "phx_leave", json!({})).await[4]["status"], "ok");
    page.take("the promotion", |frame| frame[3] == "diff" && frame[4].to_string().contains("You are now editing"))
        .await;
    let form = "title=Other+Sam&slug=&status=published&data%5Bsummary%5D=sum&data%5Bcategory%5D=guide";
    let reply = page.push("lv:record_edit", "event", json!({"type": "submit", "event": "save", "value": form})).await;
    assert_eq!(reply[4]["response"]["flash"]["info"], "Saved.", "{reply}");
    assert_eq!(carol.event(&topic, "saved").await[4], saved_by(&other_sam, record.lock_version + 2, &[]));
}

/// Alice drafts and her socket dies: for the grace she still owns; then Bob is promoted (`role` `promoted`, with her
/// draft) and Carol told. Bob saves Alice's draft: `lock_version` 2, the row changed, everyone gets `saved`. A save of
/// a draft whose base moved (the row was updated through the API meanwhile) is a `conflict` with the current row, and
/// the draft is kept; saving again with the `lock_version` the owner merged with resolves it.
#[tokio::test]
async fn a_dropped_owner_hands_over_after_the_grace_and_saves_are_fenced() {
    let (server, people, article, records) = setup(GRACE).await;
    let record = &records[0];
    let topic = format!("edit:data:{}", record.id);
    let target = EditTarget::new("data", record.id).unwrap();
    let editing = &server.state.engine.editing;

    let mut alice = server.connect(&server.token(&people.alice).await).await;
    let alice_view = queue_entry(&alice.join_ok(&topic, json!({"tab_id": "a"})).await["queue"][0], &people.alice, true);
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    let bob_view = queue_entry(&bob.join_ok(&topic, json!({"tab_id": "b"})).await["queue"][1], &people.bob, true);
    let mut carol = server.connect(&server.token(&people.carol).await).await;
    carol.join_ok(&topic, json!({"tab_id": "c"})).await;

    let params = article_params("Drafted by Alice");
    assert_eq!(alice.push(&topic, "draft", json!({"params": params})).await[4]["status"], "ok");
    bob.event(&topic, "draft").await;
    carol.event(&topic, "draft").await;

    // The tab dies without a close frame.
    drop(alice);
    let dropped = Instant::now();
    tokio::time::sleep(GRACE / 3).await;
    assert_eq!(editing.lock_owner(&target).map(|owner| owner.view_id.to_string()), Some(alice_view.clone()));
    let role = bob.event(&topic, "role").await;
    let waited = dropped.elapsed();
    assert!(waited >= GRACE - Duration::from_millis(50), "promoted after {waited:?}, before the grace of {GRACE:?}");
    let handed = json!({"version": 1, "updated_by": owner_json(&people.alice, &alice_view)});
    assert_eq!(
        role,
        json!([bob.join_ref(&topic), null, topic, "role",
            {"role": "owner", "owner": owner_json(&people.bob, &bob_view), "reason": "promoted", "draft": handed}])
    );
    let role = carol.event(&topic, "role").await;
    assert_eq!(
        role[4],
        json!({"role": "spectator", "owner": owner_json(&people.bob, &bob_view), "reason": "owner_changed", "draft": handed})
    );
    for peer in [&mut bob, &mut carol] {
        peer.take("Alice's leave", |frame| {
            frame[3] == "presence_diff" && frame[4]["leaves"][alice_view.as_str()].is_object()
        })
        .await;
    }
    let draft = editing.draft(&target).expect("Bob holds Alice's draft");
    assert_eq!((&draft.params, draft.updated_by.name.as_str(), draft.base_lock_version), (&params, "Alice", 1));

    // Bob saves what Alice typed.
    let reply = bob.push(&topic, "save", json!({})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"lock_version": 2, "merged": []}}));
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Drafted by Alice", 2));
    assert_eq!(stored.data["summary"], "Drafted by Alice: summary");
    for peer in [&mut bob, &mut carol] {
        let saved = peer.event(&topic, "saved").await;
        let body = saved_by(&people.bob, 2, &[]);
        assert_eq!(saved, json!([peer.join_ref(&topic), null, topic, "saved", body]));
    }
    assert!(editing.draft(&target).is_none(), "a saved draft ends");

    // Bob drafts on version 2; meanwhile the row is updated through the API (to 3). His save is a conflict.
    let params = article_params("Bob's second thoughts");
    assert_eq!(bob.push(&topic, "draft", json!({"params": params})).await[4]["status"], "ok");
    let admin = server.token(&people.admin).await;
    let uri = format!("/api/entities/{}/records/{}", article.name, record.id);
    let mut body = article_params("Changed through the API");
    body["lock_version"] = json!(2);
    let api = server.api(Method::PUT, &uri, &admin, Some(body)).await;
    assert_eq!((api.status, &api.json["lock_version"]), (StatusCode::OK, &json!(3)), "{}", api.text);
    for peer in [&mut bob, &mut carol] {
        assert_eq!(peer.event(&topic, "saved").await[4], saved_by(&people.admin, 3, &[]));
    }
    let reply = bob.push(&topic, "save", json!({})).await;
    assert_eq!(error_reason(&reply), "conflict");
    let current = &reply[4]["response"]["current"];
    assert_eq!(reply[4]["response"]["lock_version"], 3);
    assert_eq!(
        (&current["id"], &current["title"], &current["lock_version"]),
        (&json!(record.id), &json!("Changed through the API"), &json!(3))
    );
    // Only the fields both changed are offered (the category, unchanged on both sides, is not).
    let drafted = article_params("Drafted by Alice");
    assert_eq!(
        reply[4]["response"]["fields"],
        json!({
            "title": {"base": drafted["title"], "mine": params["title"], "theirs": "Changed through the API"},
            "data.summary": {
                "base": drafted["data"]["summary"],
                "mine": params["data"]["summary"],
                "theirs": "Changed through the API: summary"
            },
        })
    );
    let draft = editing.draft(&target).expect("the draft is kept after a conflict");
    assert_eq!((&draft.params, draft.base_lock_version), (&params, 2));
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Changed through the API", 3));
    carol.assert_none("a saved notice for the refused save", QUIET, |frame| frame[3] == "saved").await;

    // Typing on does not help: the draft keeps its base, so the same save conflicts again; naming the version alone
    // does not either (it no longer saves the draft over it: that would write fields Bob never chose).
    let params = article_params("Bob, merged with the API's change");
    assert_eq!(bob.push(&topic, "draft", json!({"params": params})).await[4]["response"], json!({"version": 2}));
    assert_eq!(error_reason(&bob.push(&topic, "save", json!({})).await), "conflict");
    assert_eq!(error_reason(&bob.push(&topic, "save", json!({"lock_version": 3})).await), "conflict");
    // A resolution needs the conflict's version; a side must be "mine" or "theirs".
    let reply = bob.push(&topic, "save", json!({"resolve": {"title": "mine"}})).await;
    assert_eq!(error_reason(&reply), "invalid", "{reply}");
    let reply = bob.push(&topic, "save", json!({"resolve": {"title": "both"}, "lock_version": 3})).await;
    assert_eq!(
        reply[4]["response"]["errors"]["resolve"][0],
        "must be an object of field names to \"mine\" or \"theirs\""
    );
    // Choosing only one of the two fields resolves that one: the other is still offered, nothing is written.
    let reply = bob.push(&topic, "save", json!({"resolve": {"title": "mine"}, "lock_version": 3})).await;
    assert_eq!(reply[4]["response"]["fields"].as_object().unwrap().keys().collect::<Vec<_>>(), ["data.summary"]);
    // Bob resolves both: his title, the API's summary.
    let resolve = json!({"title": "mine", "data.summary": "theirs"});
    let reply = bob.push(&topic, "save", json!({"resolve": resolve, "lock_version": 3})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"lock_version": 4, "merged": ["data.summary"]}}));
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Bob, merged with the API's change", 4));
    assert_eq!(stored.data["summary"], "Changed through the API: summary");
    assert!(editing.draft(&target).is_none(), "the resolved draft ended");
    assert_eq!(carol.event(&topic, "saved").await[4], saved_by(&people.bob, 4, &["data.summary"]));
}

/// Over `edit:data`: two people change different fields and both changes survive (the reply and `saved` name the
/// field merged in); when both change the same field only that one is offered; a resolution made against a row that
/// moved again is not applied: the newer conflict is offered instead, and nothing is overwritten. A client that
/// merged by hand saves `params` naming the version it merged with.
#[tokio::test]
async fn a_save_over_a_moved_row_merges_per_field() {
    let (server, people, _, records) = setup(GRACE).await;
    let record = &records[2];
    let topic = format!("edit:data:{}", record.id);
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    assert_eq!(alice.join_ok(&topic, json!({"tab_id": "a"})).await["role"], "owner");
    let admin = server.token(&people.admin).await;
    let uri = format!("/api/entities/article/records/{}", record.id);
    let put = |body: Value| server.api(Method::PUT, &uri, &admin, Some(body));

    // Alice changes the title; the admin changes the summary through the API. Alice's save keeps both.
    let mut mine = json!({"title": "Alice's title", "data": record.data});
    assert_eq!(alice.push(&topic, "draft", json!({"params": mine})).await[4]["status"], "ok");
    let mut theirs = json!({"title": record.title, "data": record.data, "lock_version": record.lock_version});
    theirs["data"]["summary"] = json!("The admin's summary");
    assert_eq!(put(theirs.clone()).await.status, StatusCode::OK);
    let reply = alice.push(&topic, "save", json!({})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"lock_version": 3, "merged": ["data.summary"]}}));
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.title.as_str(), stored.data["summary"].as_str()),
        ("Alice's title", Some("The admin's summary"))
    );
    assert_eq!(stored.data["category"], record.data["category"]);
    let saved = alice.take("the saved push", |frame| frame[3] == "saved" && frame[4]["lock_version"] == 3).await;
    assert_eq!(saved[4], saved_by(&people.alice, 3, &["data.summary"]));

    // Both change the summary (and only the admin the category): only the summary is offered.
    mine =
        json!({"title": "Alice's title", "data": {"summary": "Alice's summary", "category": stored.data["category"]}});
    assert_eq!(alice.push(&topic, "draft", json!({"params": mine})).await[4]["status"], "ok");
    // A category the record does not have yet.
    let category = if stored.data["category"] == "news" { "opinion" } else { "news" };
    let body =
        json!({"title": "Alice's title", "data": {"summary": "Admin again", "category": category}, "lock_version": 3});
    assert_eq!(put(body).await.status, StatusCode::OK);
    let reply = alice.push(&topic, "save", json!({})).await;
    assert_eq!(error_reason(&reply), "conflict");
    assert_eq!(
        reply[4]["response"]["fields"],
        json!({"data.summary": {"base": "The admin's summary", "mine": "Alice's summary", "theirs": "Admin again"}})
    );
    assert_eq!(reply[4]["response"]["lock_version"], 4);

    // The row moves again before Alice answers: her choice, made against version 4, is not applied to version 5.
    let data = json!({"summary": "Admin, third time", "category": category});
    let body = json!({"title": "Alice's title", "data": data, "lock_version": 4});
    assert_eq!(put(body).await.status, StatusCode::OK);
    let reply = alice.push(&topic, "save", json!({"resolve": {"data.summary": "mine"}, "lock_version": 4})).await;
    assert_eq!(error_reason(&reply), "conflict", "{reply}");
    assert_eq!(reply[4]["response"]["lock_version"], 5);
    assert_eq!(reply[4]["response"]["fields"]["data.summary"]["theirs"], "Admin, third time");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.data["summary"].as_str(), stored.lock_version), (Some("Admin, third time"), 5));
    // More resolutions than the values have fields are refused.
    let many: serde_json::Map<String, Value> = (0..20).map(|n| (format!("f{n}"), json!("mine"))).collect();
    let reply = alice.push(&topic, "save", json!({"resolve": many, "lock_version": 5})).await;
    assert_eq!(error_reason(&reply), "invalid", "{reply}");
    // Answered against version 5, it saves: her summary, the admin's category.
    let reply = alice.push(&topic, "save", json!({"resolve": {"data.summary": "mine"}, "lock_version": 5})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"lock_version": 6, "merged": ["data.category"]}}));
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.data["summary"].as_str(), stored.data["category"].as_str()),
        (Some("Alice's summary"), Some(category))
    );

    // Params merged by hand and named with the version they merged with are saved as they are.
    let body = json!({"title": "Admin's title", "data": stored.data, "lock_version": 6});
    assert_eq!(put(body).await.status, StatusCode::OK);
    let merged_by_hand = json!({"title": "Both titles", "data": stored.data});
    let reply = alice.push(&topic, "save", json!({"params": merged_by_hand, "lock_version": 7})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"lock_version": 8, "merged": []}}));
}

/// A second tab of the owner's user joins as a spectator and takes the baton at once with `take_here`: both tabs get
/// `role` `taken_here`, the others `owner_changed`, and the tabs swap places. Another user's `take_here` is
/// `not_same_user`; a viewer's is `not_eligible`.
#[tokio::test]
async fn take_here_moves_the_baton_between_tabs_of_one_user() {
    let (server, people, _, records) = setup(GRACE).await;
    let topic = format!("edit:data:{}", records[2].id);
    let target = EditTarget::new("data", records[2].id).unwrap();
    let alice_token = server.token(&people.alice).await;

    let mut tab1 = server.connect(&alice_token).await;
    let tab1_view = queue_entry(&tab1.join_ok(&topic, json!({"tab_id": "t1"})).await["queue"][0], &people.alice, true);
    assert_eq!(tab1.event(&topic, "role").await[4]["reason"], "first");
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    bob.join_ok(&topic, json!({"tab_id": "b"})).await;
    let mut tab2 = server.connect(&alice_token).await;
    let reply = tab2.join_ok(&topic, json!({"tab_id": "t2"})).await;
    assert_eq!((&reply["role"], &reply["owner"]), (&json!("spectator"), &owner_json(&people.alice, &tab1_view)));
    let tab2_view = queue_entry(&reply["queue"][2], &people.alice, true);
    let bob_view = queue_entry(&reply["queue"][1], &people.bob, true);
    let mut vera = server.connect(&server.token(&people.vera).await).await;
    let vera_view = queue_entry(&vera.join_ok(&topic, json!({"tab_id": "v"})).await["queue"][3], &people.vera, false);

    assert_eq!(tab1.push(&topic, "draft", json!({"params": article_params("From tab 1")})).await[4]["status"], "ok");
    let reply = bob.push(&topic, "take_here", json!({})).await;
    assert_eq!(error_reason(&reply), "not_same_user");
    assert_eq!(reply[4]["response"]["message"], "only another tab of the person editing can take over");
    assert_eq!(error_reason(&vera.push(&topic, "take_here", json!({})).await), "not_eligible");

    let reply = tab2.push(&topic, "take_here", json!({})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {}}));
    let owner = owner_json(&people.alice, &tab2_view);
    let handed = json!({"version": 1, "updated_by": owner_json(&people.alice, &tab1_view)});
    let role = |role: &str, reason: &str| json!({"role": role, "owner": owner, "reason": reason, "draft": handed});
    assert_eq!(tab2.event(&topic, "role").await[4], role("owner", "taken_here"));
    assert_eq!(tab1.event(&topic, "role").await[4], role("spectator", "taken_here"));
    assert_eq!(bob.event(&topic, "role").await[4], role("spectator", "owner_changed"));
    assert_eq!(vera.event(&topic, "role").await[4], role("spectator", "owner_changed"));
    let order: Vec<String> =
        server.state.engine.editing.sorted_presences(&target).iter().map(|p| p.view_id.to_string()).collect();
    assert_eq!(order, [tab2_view.clone(), bob_view, tab1_view, vera_view], "the two tabs swapped places");

    // The baton is tab 2's now: tab 1 is refused, tab 2 continues the draft.
    assert_eq!(
        error_reason(&tab1.push(&topic, "draft", json!({"params": article_params("Old tab")})).await),
        "not_owner"
    );
    let reply = tab2.push(&topic, "draft", json!({"params": article_params("From tab 2")})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {"version": 2}}));
    assert_eq!(tab1.event(&topic, "draft").await[4]["params"]["title"], "From tab 2");
    // Taking over when already the owner is a no-op.
    assert_eq!(tab2.push(&topic, "take_here", json!({})).await[4]["status"], "ok");
    bob.assert_none("another role change", QUIET, |frame| frame[3] == "role").await;
}

/// A viewer joins as a spectator and is never promoted: when the owner leaves with `phx_leave` the next *editor* is
/// promoted at once (no grace), skipping the viewer; when the last editor leaves nobody owns. The viewer's `draft`,
/// `save` and `take_here` are refused throughout.
#[tokio::test]
async fn viewers_never_hold_the_baton_and_an_explicit_leave_promotes_at_once() {
    // A grace no test waits for: a promotion seen within WAIT did not wait for it.
    let (server, people, _, records) = setup(LONG_GRACE).await;
    let record = &records[0];
    let topic = format!("edit:data:{}", record.id);
    let target = EditTarget::new("data", record.id).unwrap();

    let mut alice = server.connect(&server.token(&people.alice).await).await;
    alice.join_ok(&topic, json!({"tab_id": "a"})).await;
    let mut vera = server.connect(&server.token(&people.vera).await).await;
    let reply = vera.join_ok(&topic, json!({"tab_id": "v"})).await;
    assert_eq!(reply["role"], "spectator");
    let vera_view = queue_entry(&reply["queue"][1], &people.vera, false);
    let mut carol = server.connect(&server.token(&people.carol).await).await;
    let carol_view = queue_entry(&carol.join_ok(&topic, json!({"tab_id": "c"})).await["queue"][2], &people.carol, true);
    let reply = vera.push(&topic, "draft", json!({"params": article_params("Vera's")})).await;
    assert_eq!(reply[4]["response"], json!({"reason": "not_owner", "message": "read-only: Alice is editing"}));

    // Alice leaves explicitly: reply, phx_close, and Carol (not Vera, who is ahead of her) is promoted at once.
    let join_ref = alice.join_ref(&topic);
    alice.send(json!([join_ref, "leave", topic, "phx_leave", {}])).await;
    assert_eq!(
        alice.reply(&topic, "leave").await,
        json!([join_ref, "leave", topic, "phx_reply", {"status": "ok", "response": {}}])
    );
    assert_eq!(alice.event(&topic, "phx_close").await, json!([join_ref, join_ref, topic, "phx_close", {}]));
    let left = Instant::now();
    let owner = owner_json(&people.carol, &carol_view);
    let role = carol.event(&topic, "role").await;
    assert!(left.elapsed() < LONG_GRACE);
    assert_eq!(role[4], json!({"role": "owner", "owner": owner, "reason": "promoted", "draft": null}));
    assert_eq!(
        vera.event(&topic, "role").await[4],
        json!({"role": "spectator", "owner": owner, "reason": "owner_changed", "draft": null})
    );
    let lock_owner = server.state.engine.editing.lock_owner(&target).expect("an owner");
    assert_eq!(*lock_owner.view_id, *carol_view);

    for (event, reason) in [("draft", "not_owner"), ("save", "not_owner"), ("take_here", "not_eligible")] {
        let reply = vera.push(&topic, event, json!({"params": article_params("Vera's")})).await;
        assert_eq!(error_reason(&reply), reason, "{event}");
    }

    // Carol leaves too: Vera stays, alone and read-only; nobody owns.
    let join_ref = carol.join_ref(&topic);
    carol.send(json!([join_ref, "bye", topic, "phx_leave", {}])).await;
    carol.reply(&topic, "bye").await;
    let role = vera.event(&topic, "role").await;
    assert_eq!(role[4], json!({"role": "spectator", "owner": null, "reason": "owner_changed", "draft": null}));
    assert!(server.state.engine.editing.lock_owner(&target).is_none());
    let reply = vera.push(&topic, "draft", json!({"params": article_params("Vera's")})).await;
    assert_eq!(reply[4]["response"], json!({"reason": "not_owner", "message": "read-only: you are not editing this"}));
    let presences = server.state.engine.editing.sorted_presences(&target);
    assert_eq!(presences.iter().map(|p| p.view_id.to_string()).collect::<Vec<_>>(), [vera_view]);
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(&stored, record, "nothing was saved");

    // An editor arriving takes the baton although Vera came first.
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    let reply = bob.join_ok(&topic, json!({"tab_id": "b"})).await;
    let bob_view = queue_entry(&reply["queue"][1], &people.bob, true);
    assert_eq!((&reply["role"], &reply["owner"]), (&json!("owner"), &owner_json(&people.bob, &bob_view)));
    assert_eq!(vera.event(&topic, "role").await[4]["owner"], owner_json(&people.bob, &bob_view));
}

/// Leaves `topic` explicitly and waits for the reply.
async fn leave(peer: &mut Peer, topic: &str) {
    let join_ref = peer.join_ref(topic);
    peer.send(json!([join_ref, "bye", topic, "phx_leave", {}])).await;
    peer.reply(topic, "bye").await;
}

/// Drafts outlive their session over `edit:*`: Alice types and leaves; her draft is kept for her, offered in her next
/// join reply only (`kept_draft`, not in Bob's); she cannot restore it while Bob holds the baton; once promoted she
/// restores it (it is the session's draft, with its base, and reaches Carol as a `draft` push) and the kept copy is
/// gone; a draft kept again is discarded by the `updated_at` it was offered with, and not by another.
#[tokio::test]
async fn a_draft_left_behind_is_offered_to_its_author_on_the_next_join() {
    let (server, people, _, records) = setup(LONG_GRACE).await;
    let record = &records[0];
    let topic = format!("edit:data:{}", record.id);
    let target = EditTarget::new("data", record.id).unwrap();
    let kept_for = |user: &User| {
        let (editing, id, target) = (server.state.engine.editing.clone(), user.id.to_string(), target.clone());
        async move { editing.find_kept_draft(&target, &id).await.unwrap() }
    };

    let mut alice = server.connect(&server.token(&people.alice).await).await;
    assert_eq!(alice.join_ok(&topic, json!({"tab_id": "a"})).await["kept_draft"], Value::Null);
    let typed = article_params("Typed, then left");
    let reply = alice.push(&topic, "draft", json!({"params": typed, "lock_version": record.lock_version})).await;
    assert_eq!(reply[4]["status"], "ok");
    leave(&mut alice, &topic).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while kept_for(&people.alice).await.is_none() {
        assert!(Instant::now() < deadline, "Alice's draft was not kept");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut bob = server.connect(&server.token(&people.bob).await).await;
    let reply = bob.join_ok(&topic, json!({"tab_id": "b"})).await;
    assert_eq!((&reply["role"], &reply["kept_draft"]), (&json!("owner"), &Value::Null), "not offered to Bob");
    let reply = alice.join_ok(&topic, json!({"tab_id": "a"})).await;
    let offered = &reply["kept_draft"];
    assert_eq!(offered["params"], typed);
    assert_eq!(offered["base_lock_version"], record.lock_version);
    let updated_at = offered["updated_at"].as_u64().expect("updated_at in ms");
    let refused = alice.push(&topic, "restore_draft", json!({})).await;
    assert_eq!(error_reason(&refused), "not_owner", "Bob holds the baton");
    let mut carol = server.connect(&server.token(&people.carol).await).await;
    carol.join_ok(&topic, json!({"tab_id": "c"})).await;

    leave(&mut bob, &topic).await;
    // (Her first join's `first` role comes before.)
    while alice.event(&topic, "role").await[4]["reason"] != "promoted" {}
    let restored = alice.push(&topic, "restore_draft", json!({})).await;
    assert_eq!(restored[4]["status"], "ok", "{restored}");
    assert_eq!(restored[4]["response"]["params"], typed);
    let pushed = carol.event(&topic, "draft").await;
    assert_eq!(pushed[4]["params"], typed, "the spectator sees the restored draft");
    let draft = server.state.engine.editing.draft(&target).expect("the session's draft again");
    assert_eq!((draft.base_lock_version, &draft.params), (record.lock_version, &typed));
    assert!(kept_for(&people.alice).await.is_none(), "the kept copy is gone");
    let again = alice.push(&topic, "restore_draft", json!({})).await;
    assert_eq!(error_reason(&again), "no_kept_draft");
    let discarded = alice.push(&topic, "discard_draft", json!({"updated_at": updated_at})).await;
    assert_eq!(discarded[4]["response"], json!({"discarded": false}), "nothing left to discard");

    // Everyone leaves: the restored (still unsaved) draft is kept again; a discard of another version leaves it.
    leave(&mut carol, &topic).await;
    leave(&mut alice, &topic).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let kept = loop {
        if let Some(kept) = kept_for(&people.alice).await {
            break kept;
        }
        assert!(Instant::now() < deadline, "the restored draft was not kept again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let reply = alice.join_ok(&topic, json!({"tab_id": "a"})).await;
    assert_eq!(reply["kept_draft"]["updated_at"], kept.draft.updated_at);
    let invalid = alice.push(&topic, "discard_draft", json!({})).await;
    assert_eq!(error_reason(&invalid), "invalid");
    let other = alice.push(&topic, "discard_draft", json!({"updated_at": kept.draft.updated_at + 1})).await;
    assert_eq!(other[4]["response"], json!({"discarded": false}));
    let discarded = alice.push(&topic, "discard_draft", json!({"updated_at": kept.draft.updated_at})).await;
    assert_eq!(discarded[4]["response"], json!({"discarded": true}));
    assert!(kept_for(&people.alice).await.is_none());
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(&stored, record, "nothing was saved");
}

/// A tab that reloads (its socket dies, a new one joins with the same `tab_id` within the grace) keeps its place and
/// the baton; nobody is promoted meanwhile or after the grace.
#[tokio::test]
async fn a_reloading_owner_keeps_the_baton_with_its_tab_id() {
    let (server, people, _, records) = setup(GRACE).await;
    let topic = format!("edit:data:{}", records[0].id);
    let target = EditTarget::new("data", records[0].id).unwrap();
    let token = server.token(&people.alice).await;

    let mut alice = server.connect(&token).await;
    alice.join_ok(&topic, json!({"tab_id": "alice-tab"})).await;
    let params = article_params("Typed before the reload");
    assert_eq!(alice.push(&topic, "draft", json!({"params": params})).await[4]["status"], "ok");
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    bob.join_ok(&topic, json!({"tab_id": "bob-tab"})).await;

    drop(alice);
    let mut alice = server.connect(&token).await;
    let reply = alice.join_ok(&topic, json!({"tab_id": "alice-tab"})).await;
    let alice_view = queue_entry(&reply["queue"][0], &people.alice, true);
    assert_eq!(reply["role"], "owner", "{reply}");
    assert_eq!(reply["draft"]["params"], params, "the draft survived the reload");
    queue_entry(&reply["queue"][1], &people.bob, true);
    assert_eq!(reply["queue"].as_array().unwrap().len(), 2, "the old entry was reclaimed, not duplicated: {reply}");

    tokio::time::sleep(GRACE * 2).await;
    let owner = server.state.engine.editing.lock_owner(&target).expect("an owner");
    assert_eq!(*owner.view_id, *alice_view);
    bob.assert_none("Bob's promotion", QUIET, |frame| frame[3] == "role" && frame[4]["role"] == "owner").await;
    assert_eq!(error_reason(&bob.push(&topic, "draft", json!({"params": params})).await), "not_owner");
}

/// Joining the same editing topic again on the same socket (phoenix.js does this when a join times out) keeps the
/// owner's baton: the old channel lets go before the new one joins and the tab reclaims its own place.
#[tokio::test]
async fn rejoining_on_the_same_socket_keeps_the_baton() {
    let (server, people, _, records) = setup(GRACE).await;
    let topic = format!("edit:data:{}", records[0].id);
    let target = EditTarget::new("data", records[0].id).unwrap();
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    alice.join_ok(&topic, json!({"tab_id": "alice-tab"})).await;
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    bob.join_ok(&topic, json!({"tab_id": "bob-tab"})).await;

    let reply = alice.join_ok(&topic, json!({"tab_id": "alice-tab"})).await;
    assert_eq!(reply["role"], "owner", "still the owner after a rejoin: {reply}");
    assert_eq!(reply["queue"].as_array().unwrap().len(), 2, "one entry per tab: {reply}");
    tokio::time::sleep(GRACE * 2).await;
    assert_eq!(server.state.engine.editing.lock_owner(&target).unwrap().user_name, "Alice");
    bob.assert_none("Bob's promotion", QUIET, |frame| frame[3] == "role" && frame[4]["role"] == "owner").await;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Presence rooms
// ---------------------------------------------------------------------------------------------------------------

/// Two clients in `room:lobby` see each other in `presence_state` / `presence_diff` (keyed by user id), a `shout`
/// reaches both as one broadcast frame, and a leave is seen at once.
#[tokio::test]
async fn room_members_see_each_other_and_shouts() {
    let (server, people, _, _) = setup(GRACE).await;
    let (alice_key, bob_key) = (people.alice.id.to_string(), people.bob.id.to_string());
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    let reply = alice.join("room:lobby", json!({})).await;
    assert_eq!(reply, json!(["1", "1", "room:lobby", "phx_reply", {"status": "ok", "response": {}}]));
    let state = alice.event("room:lobby", "presence_state").await;
    assert_eq!(state[0], "1");
    assert_eq!(state[4][&alice_key]["metas"][0]["name"], "Alice");

    let mut bob = server.connect(&server.token(&people.bob).await).await;
    bob.join_ok("room:lobby", json!({})).await;
    let state = bob.event("room:lobby", "presence_state").await;
    assert_eq!(state[4][&alice_key]["metas"][0]["name"], "Alice");
    assert_eq!(state[4][&bob_key]["metas"][0]["name"], "Bob");
    let diff = alice.take("Bob's join", |f| f[3] == "presence_diff" && f[4]["joins"][&bob_key].is_object()).await;
    assert_eq!((&diff[0], &diff[1], &diff[2]), (&Value::Null, &Value::Null, &json!("room:lobby")));
    assert_eq!(diff[4]["joins"][&bob_key]["metas"][0]["name"], "Bob");

    let reply = bob.push("room:lobby", "shout", json!({"text": "hello"})).await;
    assert_eq!(reply[4], json!({"status": "ok", "response": {}}));
    for peer in [&mut alice, &mut bob] {
        assert_eq!(
            peer.event("room:lobby", "shout").await,
            json!([null, null, "room:lobby", "shout", {"text": "hello"}])
        );
    }

    let join_ref = bob.join_ref("room:lobby");
    bob.send(json!([join_ref, "9", "room:lobby", "phx_leave", {}])).await;
    bob.reply("room:lobby", "9").await;
    alice.take("Bob's leave", |f| f[3] == "presence_diff" && f[4]["leaves"][&bob_key].is_object()).await;
    assert_eq!(server.state.engine.presence.count("room:lobby"), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Shutdown
// ---------------------------------------------------------------------------------------------------------------

/// `live_shutdown.shutdown()` closes every socket with 1001 and their room and editing presences leave at once (the
/// grace is 30 s here); a socket opened afterwards is closed at once too.
#[tokio::test]
async fn shutdown_closes_with_1001_and_releases_presences_at_once() {
    let (server, people, _, records) = setup(LONG_GRACE).await;
    let topic = format!("edit:data:{}", records[0].id);
    let target = EditTarget::new("data", records[0].id).unwrap();
    let editing = &server.state.engine.editing;
    let mut alice = server.connect(&server.token(&people.alice).await).await;
    alice.join_ok("room:ops", json!({})).await;
    alice.join_ok(&topic, json!({"tab_id": "a"})).await;
    assert_eq!(alice.push(&topic, "draft", json!({"params": article_params("Unsaved")})).await[4]["status"], "ok");
    let mut bob = server.connect(&server.token(&people.bob).await).await;
    bob.join_ok(&topic, json!({"tab_id": "b"})).await;
    assert_eq!(server.state.engine.presence.count("room:ops"), 1);
    assert_eq!(editing.sorted_presences(&target).len(), 2);
    assert_eq!(server.state.live.open_sockets(), 2);

    server.state.live_shutdown.shutdown();
    assert_eq!(alice.close_code().await, CloseCode::Away);
    assert_eq!(bob.close_code().await, CloseCode::Away);
    eventually("the room presence left", || server.state.engine.presence.count("room:ops") == 0).await;
    eventually("the editing session emptied", || editing.sorted_presences(&target).is_empty()).await;
    assert!(editing.draft(&target).is_none(), "the session's draft ended with its last editor");
    eventually("no socket is served", || server.state.live.open_sockets() == 0).await;

    let mut late = server.connect(&server.token(&people.carol).await).await;
    assert_eq!(late.close_code().await, CloseCode::Away);
}
