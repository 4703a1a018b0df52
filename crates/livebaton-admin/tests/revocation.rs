//! Revocation (issue 15, finding 5): a change of a user's password or role, or the deletion of the account, ends what
//! the old credentials gave. API tokens issued before are refused (401), cookie sessions end, the user's sockets close
//! with 1001 on every node (the kick travels through PubSub: an in-process cluster and Redis), and a page or `edit:*`
//! channel that is still open is refused every write once the user's role no longer permits it, even when no kick
//! reaches it (the `livebaton user add` command runs in another process).
//!
//! Redis tests read `REDIS_URL` (default `redis://127.0.0.1:6379`); PostgreSQL tests read `DATABASE_URL` and fail,
//! never skip, without it.

#[path = "support/live.rs"]
#[allow(dead_code)]
mod live_support;

use livebaton_testkit::TestServer;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use live_support::{LiveServer, PASSWORD, Peer, SECRET, error_reason, start, try_open, ws_request};
use livebaton::Engine;
use livebaton::editing::Editing;
use livebaton::events::Events;
use livebaton::presence::{Presence, PresenceConfig};
use livebaton::pubsub::{LocalCluster, PubSub, PubSubBackend, PubSubConfig, RedisBackend, RedisConfig};
use livebaton::stats::SessionStats;
use livebaton_admin::accounts::{Role, ThrottleConfig, hash_password, sha256_hex};
use livebaton_admin::app::{AppState, router};
use livebaton_admin::pages::session::{CSRF_COOKIE, CookieWriter, SESSION_COOKIE, start_session};
use livebaton_admin::seed::{bootstrap, put_user};
use livebaton_admin::storage::{Record, Session, Store, StoreError, User, UserChange, now_ms};
use livebaton_web::config::SocketConfig;
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const GRACE: Duration = Duration::from_millis(200);
/// The close reason of a revoked socket (docs/protocol.md §3), written out: clients match on it.
const REVOKED: &str = "credentials revoked: sign in again";

/// A server with Alice and Bob (editors) and the demo content; returns one of its records.
async fn scene() -> (LiveServer, User, User, Record) {
    let server = start(GRACE, Vec::new()).await;
    let alice = server.user("alice@example.com", "Alice", Role::Editor).await;
    let bob = server.user("bob@example.com", "Bob", Role::Editor).await;
    bootstrap(&server.state.content, None, true).await.expect("the demo seeds");
    let article = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let record = server.state.store.list_records(article.id).await.unwrap().pop().expect("a record");
    (server, alice, bob, record)
}

/// Demotes `user` to viewer the way `livebaton user add` does from its own process: through the store only, so
/// nothing closes the user's sockets on the running server.
async fn demote_from_the_command_line(server: &LiveServer, user: &User) {
    let changed = put_user(&server.state.store, &user.email, PASSWORD, Role::Viewer, None).await.unwrap();
    assert!(changed.revoked, "a role change revokes");
}

/// A bearer token from `POST /api/tokens`.
async fn sign_in_for_token(server: &LiveServer, email: &str, password: &str) -> String {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/tokens")
        .header("content-type", "application/json")
        .body(Body::from(json!({"email": email, "password": password}).to_string()))
        .unwrap();
    let reply = server.http(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["token"].as_str().expect("a token").to_owned()
}

/// Signs in through the sign-in form; returns the session cookie's value.
async fn sign_in_with_form(server: &LiveServer, email: &str) -> String {
    let page = server.http(page_request(Method::GET, "/admin/login", "", "")).await;
    let csrf = page.cookie(CSRF_COOKIE).expect("the sign-in page sets the CSRF cookie");
    let body =
        format!("email={}&password={}&_csrf_token={csrf}", email.replace('@', "%40"), PASSWORD.replace(' ', "+"));
    let reply = server.http(page_request(Method::POST, "/admin/login", &format!("{CSRF_COOKIE}={csrf}"), &body)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in failed: {}", reply.text);
    reply.cookie(SESSION_COOKIE).filter(|value| !value.is_empty()).expect("a session cookie")
}

/// A request of a browser on this site (no `Origin`), with `cookie` and a form `body`.
fn page_request(method: Method, uri: &str, cookie: &str, body: &str) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri).header("host", "localhost:4000");
    if !cookie.is_empty() {
        builder = builder.header("cookie", cookie);
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

/// A socket of this server answers a heartbeat.
async fn assert_live(peer: &mut Peer) {
    peer.send(json!([null, "hb", "phoenix", "heartbeat", {}])).await;
    assert_eq!(peer.reply("phoenix", "hb").await[4]["status"], "ok");
}

fn article_params(title: &str) -> Value {
    json!({"title": title, "data": {"summary": format!("{title}: summary"), "category": "guide"}})
}

/// An API token issued before a password change is refused (401) after it; a token issued after it works. Before the
/// fix tokens carried no generation and the old one kept working for its 12 hours.
#[tokio::test]
async fn an_api_token_issued_before_a_password_change_is_refused_after_it() {
    let (server, alice, _, _) = scene().await;
    let old = sign_in_for_token(&server, &alice.email, PASSWORD).await;
    assert_eq!(server.api(Method::GET, "/api/entities", &old, None).await.status, StatusCode::OK);

    let changed =
        put_user(&server.state.store, &alice.email, "a brand new password", Role::Editor, None).await.unwrap();
    assert!(changed.revoked, "a new password revokes");

    let reply = server.api(Method::GET, "/api/entities", &old, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(reply.text.contains("revoked"), "{}", reply.text);
    // Nor does it open a socket any more.
    let refused = try_open(ws_request(&server.ws_url(&format!("vsn=2.0.0&token={old}")), &[])).await;
    assert_eq!(refused.err().map(|refusal| refusal.status), Some(StatusCode::FORBIDDEN));

    let new = sign_in_for_token(&server, &alice.email, "a brand new password").await;
    assert_eq!(server.api(Method::GET, "/api/entities", &new, None).await.status, StatusCode::OK);
    let mut socket = server.connect(&new).await;
    assert_live(&mut socket).await;
}

/// A session cookie stops working after a password change made through the server (`AppState::change_user`): the
/// admin pages send it to sign in, and it no longer opens a socket. Before the fix the session lived on.
#[tokio::test]
async fn a_session_cookie_stops_working_after_a_password_change() {
    let (server, alice, _, _) = scene().await;
    let session = sign_in_with_form(&server, &alice.email).await;
    let cookie = format!("{SESSION_COOKIE}={session}");
    assert_eq!(server.http(page_request(Method::GET, "/admin", &cookie, "")).await.status, StatusCode::OK);
    let csrf = server.state.store.find_session(&sha256_hex(&session)).await.unwrap().expect("the session").csrf_token;
    let connect =
        || ws_request(&server.ws_url(&format!("vsn=2.0.0&_csrf_token={csrf}")), &[("cookie", cookie.as_str())]);
    let (mut socket, _) = try_open(connect()).await.expect("the session opens a socket");
    assert_live(&mut socket).await;

    let hash = hash_password("a brand new password").await;
    let change = UserChange::Update { name: None, password_hash: Some(&hash), role: None };
    assert!(server.state.change_user(alice.id, change).await.unwrap().revoked);

    let reply = server.http(page_request(Method::GET, "/admin", &cookie, "")).await;
    assert!(reply.status.is_redirection(), "expected the sign-in redirect, got {} {}", reply.status, reply.text);
    assert_eq!(reply.headers.get("location").and_then(|value| value.to_str().ok()), Some("/admin/login"));
    assert_eq!(
        socket.close_frame().await,
        (CloseCode::Away, REVOKED.to_owned()),
        "the open socket is closed with 1001"
    );
    assert_eq!(try_open(connect()).await.err().map(|refusal| refusal.status), Some(StatusCode::FORBIDDEN));
}

/// A sign-in checks the password against the user as read before hashing, and creates its session after: a
/// password change landing in between deleted the sessions too early to catch this one. The session carries the
/// generation its sign-in saw and is void from the change on: no page, no socket. Before the fix it stayed valid.
#[tokio::test]
async fn a_session_started_by_a_sign_in_that_raced_a_password_change_is_void() {
    let (server, alice, _, _) = scene().await;
    // What the sign-in read before its hash: Alice as she was.
    let as_read = server.state.store.find_user(alice.id).await.unwrap().expect("Alice");
    let hash = hash_password("a brand new password").await;
    let change = UserChange::Update { name: None, password_hash: Some(&hash), role: None };
    assert!(server.state.change_user(alice.id, change).await.unwrap().revoked);

    // The sign-in's password matched the old hash; its session is created after the change.
    let set_cookie =
        start_session(&server.state, &as_read, CookieWriter::new(false), &Default::default(), [127, 0, 0, 1].into())
            .await
            .unwrap();
    let id = set_cookie.split(';').next().and_then(|pair| pair.split_once('=')).map(|(_, id)| id.to_owned()).unwrap();
    let cookie = format!("{SESSION_COOKIE}={id}");
    let reply = server.http(page_request(Method::GET, "/admin", &cookie, "")).await;
    assert!(reply.status.is_redirection(), "expected the sign-in redirect, got {} {}", reply.status, reply.text);
    assert_eq!(server.state.store.find_session(&sha256_hex(&id)).await.unwrap(), None, "no session is found");

    // A sign-in that read Alice after the change gets a session that works.
    let fresh = server.state.store.find_user(alice.id).await.unwrap().expect("Alice");
    let set_cookie =
        start_session(&server.state, &fresh, CookieWriter::new(false), &Default::default(), [127, 0, 0, 1].into())
            .await
            .unwrap();
    let id = set_cookie.split(';').next().and_then(|pair| pair.split_once('=')).map(|(_, id)| id.to_owned()).unwrap();
    let cookie = format!("{SESSION_COOKIE}={id}");
    assert_eq!(server.http(page_request(Method::GET, "/admin", &cookie, "")).await.status, StatusCode::OK);
}

/// A demoted editor's open `edit:data:<id>` channel can no longer save or change the draft, even though nothing
/// closed its socket (the role was changed from the command line, in another process): every write re-reads the
/// user. Before the fix the channel saved with the role its socket authenticated.
#[tokio::test]
async fn a_demoted_editors_open_edit_channel_can_no_longer_save() {
    let (server, alice, _, record) = scene().await;
    let topic = format!("edit:data:{}", record.id);
    let mut socket = server.connect(&server.token(&alice).await).await;
    assert_eq!(socket.join_ok(&topic, json!({"tab_id": "tab-a"})).await["role"], "owner");
    let reply = socket.push(&topic, "draft", json!({"params": article_params("Before")})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");

    demote_from_the_command_line(&server, &alice).await;

    let reply = socket.push(&topic, "save", json!({"params": article_params("Saved after demotion")})).await;
    assert_eq!(error_reason(&reply), "role_changed", "{reply}");
    assert_eq!(reply[4]["response"]["message"], "Your role changed: you may no longer edit.");
    let reply = socket.push(&topic, "save", json!({})).await;
    assert_eq!(error_reason(&reply), "role_changed", "saving the draft is refused too: {reply}");
    let reply = socket.push(&topic, "draft", json!({"params": article_params("Drafted after demotion")})).await;
    assert_eq!(error_reason(&reply), "role_changed", "and so are drafts: {reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored, record, "nothing was written");
}

/// The same on a live page: a demoted owner's record form refuses Save with "Your role changed" and writes nothing.
#[tokio::test]
async fn a_demoted_editors_open_record_form_can_no_longer_save() {
    let (server, alice, _, record) = scene().await;
    let mut socket = server.connect(&server.token(&alice).await).await;
    let params: Map<String, Value> = [("entity", "article".to_owned()), ("id", record.id.to_string())]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), json!(value)))
        .collect();
    let token = server.state.views.token("record_edit", &params);
    let joined = socket.join_ok("lv:record_edit", json!({"token": token, "tab_id": "tab-a"})).await;
    assert!(joined.to_string().contains("You are editing"), "{joined}");

    demote_from_the_command_line(&server, &alice).await;

    let form = "title=Saved+after+demotion&slug=&status=published&data%5Bsummary%5D=s&data%5Bcategory%5D=guide";
    let event = json!({"type": "submit", "event": "save", "value": form});
    let reply = socket.push("lv:record_edit", "event", event).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    assert_eq!(reply[4]["response"]["flash"]["error"], "Your role changed: you may no longer edit.", "{reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored, record, "nothing was written");
    let draft = server.state.engine.editing.draft(&livebaton::editing::EditTarget::new("data", record.id).unwrap());
    assert!(draft.is_none(), "not even a draft: {draft:?}");
}

/// Params of a live page of the demo's `article` entity.
fn page_params(pairs: &[(&str, String)]) -> Map<String, Value> {
    let mut params: Map<String, Value> = pairs.iter().map(|(key, value)| ((*key).to_owned(), json!(value))).collect();
    params.insert("entity".into(), json!("article"));
    params
}

/// A demoted editor whose socket no kick reached can neither delete a record from its page nor create one: the
/// record page and the new-record form re-read the user before the write, like the edit form.
#[tokio::test]
async fn a_demoted_editor_can_neither_delete_nor_create() {
    let (server, alice, _, record) = scene().await;
    let mut socket = server.connect(&server.token(&alice).await).await;
    let show = server.state.views.token("record_show", &page_params(&[("id", record.id.to_string())]));
    let shown = socket.join_ok("lv:record_show", json!({"token": show, "tab_id": "tab-s"})).await;
    assert!(shown.to_string().contains("Delete"), "an editor is offered Delete: {shown}");
    let new = server.state.views.token("record_new", &page_params(&[]));
    socket.join_ok("lv:record_new", json!({"token": new, "tab_id": "tab-n"})).await;

    demote_from_the_command_line(&server, &alice).await;

    let reply = socket.push("lv:record_show", "event", json!({"type": "click", "event": "delete", "value": {}})).await;
    assert!(reply.to_string().contains("to the trash?"), "a delete asks first: {reply}");
    let confirm = json!({"type": "click", "event": "delete_confirmed", "value": {}});
    let reply = socket.push("lv:record_show", "event", confirm).await;
    assert_eq!(reply[4]["response"]["flash"]["error"], "Your role changed: you may no longer edit.", "{reply}");
    assert!(server.state.store.find_record_by_id(record.id).await.unwrap().is_some(), "not deleted");
    let form = "title=Created+after+demotion&slug=&status=published&data%5Bsummary%5D=s&data%5Bcategory%5D=guide";
    let event = json!({"type": "submit", "event": "save", "value": form});
    let reply = socket.push("lv:record_new", "event", event).await;
    let flash = reply[4]["response"]["flash"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(flash.starts_with("Your role changed: you may no longer edit."), "{reply}");
    let article = server.state.store.find_entity_by_name("article").await.unwrap().unwrap();
    let titles: Vec<String> =
        server.state.store.list_records(article.id).await.unwrap().into_iter().map(|record| record.title).collect();
    assert!(!titles.iter().any(|title| title == "Created after demotion"), "not created: {titles:?}");
}

/// A socket opened before a password change (the owner changed it from the command line: nothing kicked the socket)
/// mounts the record form read-only and cannot save: it remembers the credentials it was opened with.
#[tokio::test]
async fn a_socket_opened_before_a_password_change_writes_nothing() {
    let (server, alice, _, record) = scene().await;
    let mut socket = server.connect(&server.token(&alice).await).await;
    let changed = put_user(&server.state.store, &alice.email, "a new password 123", Role::Editor, None).await.unwrap();
    assert!(changed.revoked, "a password change revokes");

    let token = server.state.views.token("record_edit", &page_params(&[("id", record.id.to_string())]));
    let joined = socket.join_ok("lv:record_edit", json!({"token": token, "tab_id": "tab-a"})).await;
    assert!(!joined.to_string().contains("You are editing"), "the old socket got the baton: {joined}");
    let form = "title=Saved+with+old+credentials&slug=&status=published&data%5Bsummary%5D=s&data%5Bcategory%5D=guide";
    let event = json!({"type": "submit", "event": "save", "value": form});
    socket.push("lv:record_edit", "event", event).await;
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored, record, "nothing was written");
}

/// A role change made through the running server closes that user's sockets with 1001 at once, and only theirs; the
/// client's old token no longer reconnects. Before the fix nothing was closed.
#[tokio::test]
async fn a_role_change_through_the_server_closes_the_users_sockets_with_1001() {
    let (server, alice, bob, _) = scene().await;
    let old_token = server.token(&alice).await;
    let mut alice_socket = server.connect(&old_token).await;
    let mut bob_socket = server.connect(&server.token(&bob).await).await;
    assert_live(&mut alice_socket).await;

    let change = UserChange::Update { name: None, password_hash: None, role: Some(Role::Viewer) };
    let changed = server.state.change_user(alice.id, change).await.unwrap();
    assert!(changed.revoked);
    assert_eq!(changed.user.map(|user| user.role), Some(Role::Viewer));

    assert_eq!(alice_socket.close_frame().await, (CloseCode::Away, REVOKED.to_owned()));
    assert_live(&mut bob_socket).await;
    let refused = try_open(ws_request(&server.ws_url(&format!("vsn=2.0.0&token={old_token}")), &[])).await;
    assert_eq!(refused.err().map(|refusal| refusal.status), Some(StatusCode::FORBIDDEN));

    // A change of the name alone revokes nothing.
    let bob_token = server.token(&bob).await;
    let change = UserChange::Update { name: Some("Robert"), password_hash: None, role: Some(Role::Editor) };
    assert!(!server.state.change_user(bob.id, change).await.unwrap().revoked);
    assert_live(&mut bob_socket).await;
    assert_eq!(server.api(Method::GET, "/api/entities", &bob_token, None).await.status, StatusCode::OK);

    // Deleting the account closes its sockets too.
    server.state.change_user(bob.id, UserChange::Delete).await.unwrap();
    assert_eq!(bob_socket.close_frame().await, (CloseCode::Away, REVOKED.to_owned()));
    assert_eq!(server.api(Method::GET, "/api/entities", &bob_token, None).await.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------------------------
// Several nodes
// ---------------------------------------------------------------------------------------------------------------

/// An engine on `pubsub` with in-process presence (enough for sockets; the roster is not what is tested here).
fn engine_on(pubsub: PubSub) -> Engine {
    let presence = Presence::new(pubsub.clone(), PresenceConfig { leave_grace: GRACE, ..Default::default() });
    Engine {
        editing: Editing::new(presence.clone()),
        events: Events::new(pubsub.clone(), livebaton::events::DEFAULT_TOPIC_PREFIX),
        stats: SessionStats::new(presence.clone(), livebaton_admin::server::SESSIONS_TOPIC),
        pubsub,
        presence,
        roster: None,
    }
}

/// The application over `store` and `engine`, served on a free port until the test ends.
async fn serve(store: &Store, engine: Engine) -> (AppState, TestServer) {
    let sockets = SocketConfig { idle_timeout: Duration::from_secs(60), ..SocketConfig::default() };
    let state = AppState::with_live(store.clone(), engine, SECRET, ThrottleConfig::default(), sockets, Vec::new());
    let server = TestServer::start(router(state.clone())).await;
    (state, server)
}

async fn connect(server: &TestServer, token: &str) -> Peer {
    let url = server.socket_url(&format!("vsn=2.0.0&token={token}"));
    livebaton_testkit::connect(ws_request(&url, &[])).await.expect("the upgrade succeeds").0
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    Store::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("cluster.db").display())).await.unwrap()
}

/// Two nodes share a database and an (in-process) cluster PubSub: a password change made on node A closes the user's
/// socket on node B with 1001, and only that user's.
#[tokio::test]
async fn a_change_on_one_node_closes_the_users_socket_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let cluster = LocalCluster::new();
    let node = |name: &str| engine_on(PubSub::with_backend(PubSubConfig::default(), cluster.node(name)));
    let (node_a, _) = serve(&store, node("a")).await;
    let (node_b, address_b) = serve(&store, node("b")).await;
    let alice = put_user(&store, "alice@example.com", PASSWORD, Role::Editor, None).await.unwrap().user.unwrap();
    let bob = put_user(&store, "bob@example.com", PASSWORD, Role::Editor, None).await.unwrap().user.unwrap();
    let mut alice_on_b = connect(&address_b, &node_b.people.issue_token(&alice, "test").await.unwrap().0).await;
    let mut bob_on_b = connect(&address_b, &node_b.people.issue_token(&bob, "test").await.unwrap().0).await;
    assert_live(&mut alice_on_b).await;

    let hash = hash_password("a brand new password").await;
    let change = UserChange::Update { name: None, password_hash: Some(&hash), role: None };
    assert!(node_a.change_user(alice.id, change).await.unwrap().revoked);

    assert_eq!(alice_on_b.close_frame().await, (CloseCode::Away, REVOKED.to_owned()), "node B closed Alice's socket");
    assert_live(&mut bob_on_b).await;
}

/// Revoking one API token (made on node A) closes, on node B too, the socket that token opened and no other: not the
/// same user's socket opened with another token.
#[tokio::test]
async fn revoking_one_token_closes_only_the_sockets_it_opened_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let cluster = LocalCluster::new();
    let node = |name: &str| engine_on(PubSub::with_backend(PubSubConfig::default(), cluster.node(name)));
    let (node_a, address_a) = serve(&store, node("a")).await;
    let (node_b, address_b) = serve(&store, node("b")).await;
    let alice = put_user(&store, "alice@example.com", PASSWORD, Role::Editor, None).await.unwrap().user.unwrap();
    let (script, script_row) = node_b.people.issue_token(&alice, "script").await.unwrap();
    let (laptop, _) = node_b.people.issue_token(&alice, "laptop").await.unwrap();
    let mut script_on_b = connect(&address_b, &script).await;
    let mut laptop_on_b = connect(&address_b, &laptop).await;
    assert_live(&mut script_on_b).await;
    assert_live(&mut laptop_on_b).await;

    // `DELETE /api/tokens/{id}` on node A, with the other token.
    let request = Request::builder()
        .method(Method::DELETE)
        .uri(format!("/api/tokens/{}", script_row.id))
        .header("authorization", format!("Bearer {laptop}"))
        .body(Body::empty())
        .unwrap();
    let revoked = tower::ServiceExt::oneshot(router(node_a), request).await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(script_on_b.close_frame().await, (CloseCode::Away, REVOKED.to_owned()), "node B closed its socket");
    assert_live(&mut laptop_on_b).await;
    drop(address_a);
}

/// `livebaton user add --redis-url …` runs outside the cluster: it announces the change over Redis, and a node of the
/// cluster closes the user's socket.
#[tokio::test]
async fn the_command_line_reaches_the_sockets_of_a_cluster_over_redis() {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // A channel of its own, so no other test (or running cluster) hears these kicks.
    let config = RedisConfig {
        channel: format!("livebaton:test:revocation:{}", livebaton_admin::accounts::random_token(8)),
        ..RedisConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let backend = RedisBackend::connect(&redis_url, Some("node-b"), config.clone()).await.expect("Redis answers");
    let backend: std::sync::Arc<dyn PubSubBackend> = backend;
    let (node_b, address_b) = serve(&store, engine_on(PubSub::with_backend(PubSubConfig::default(), backend))).await;
    let alice = put_user(&store, "alice@example.com", PASSWORD, Role::Editor, None).await.unwrap().user.unwrap();
    let mut alice_on_b = connect(&address_b, &node_b.people.issue_token(&alice, "test").await.unwrap().0).await;
    assert_live(&mut alice_on_b).await;

    // What `livebaton user add` does.
    let changed = put_user(&store, &alice.email, PASSWORD, Role::Viewer, None).await.unwrap();
    assert!(changed.revoked);
    livebaton_admin::live::announce_revocation_over_redis(&redis_url, config, alice.id).await.expect("announced");

    assert_eq!(
        alice_on_b.close_frame().await,
        (CloseCode::Away, REVOKED.to_owned()),
        "the cluster node closed Alice's socket"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The store function, on both databases
// ---------------------------------------------------------------------------------------------------------------

/// `Store::change_user` revokes (moves the token generation and deletes the sessions, together) exactly when the
/// password hash or the role changes or the account is deleted; a change of the name alone, or to the same role,
/// revokes nothing.
async fn change_user_revokes_exactly_on_password_role_or_deletion(store: Store) {
    let new = |email: &str| livebaton_admin::storage::NewUser {
        email: email.to_owned(),
        name: "Someone".to_owned(),
        password_hash: "$argon2id$first".to_owned(),
        role: Role::Editor,
    };
    let alice = store.create_user(&new("alice@example.com")).await.unwrap();
    let bob = store.create_user(&new("bob@example.com")).await.unwrap();
    assert_eq!(alice.token_generation, 0);
    let session = |user: &User, id: &str| Session {
        id_hash: id.repeat(64),
        user_id: user.id,
        csrf_token: "csrf".to_owned(),
        expires_at: now_ms() + 60_000,
        token_generation: user.token_generation,
    };
    let (alices, bobs) = (session(&alice, "a"), session(&bob, "b"));
    store.create_session(&alices).await.unwrap();
    store.create_session(&bobs).await.unwrap();

    let unchanged = [
        UserChange::Update { name: Some("Alice"), password_hash: None, role: None },
        UserChange::Update { name: None, password_hash: Some("$argon2id$first"), role: Some(Role::Editor) },
    ];
    for change in unchanged {
        let changed = store.change_user(alice.id, change).await.unwrap();
        assert!(!changed.revoked, "{change:?}");
        assert_eq!(changed.user.as_ref().map(|user| user.token_generation), Some(0), "{change:?}");
        assert!(store.find_session(&alices.id_hash).await.unwrap().is_some(), "{change:?} kept the session");
    }
    let alice = store.find_user(alice.id).await.unwrap().unwrap();
    assert_eq!((alice.name.as_str(), alice.role), ("Alice", Role::Editor));

    let role =
        store.change_user(alice.id, UserChange::Update { name: None, password_hash: None, role: Some(Role::Admin) });
    let role = role.await.unwrap();
    assert!(role.revoked);
    let promoted = role.user.unwrap();
    assert_eq!(
        (promoted.role, promoted.token_generation, promoted.password_hash.as_str()),
        (Role::Admin, 1, "$argon2id$first")
    );
    assert!(store.find_session(&alices.id_hash).await.unwrap().is_none(), "the role change ended the session");
    assert!(store.find_session(&bobs.id_hash).await.unwrap().is_some(), "and no one else's");

    store.create_session(&alices).await.unwrap();
    let password = UserChange::Update { name: None, password_hash: Some("$argon2id$second"), role: None };
    let changed = store.change_user(alice.id, password).await.unwrap();
    assert!(changed.revoked);
    assert_eq!(
        changed.user.map(|user| (user.token_generation, user.password_hash)),
        Some((2, "$argon2id$second".into()))
    );
    assert!(store.find_session(&alices.id_hash).await.unwrap().is_none(), "the password change ended the session");

    let deleted = store.change_user(bob.id, UserChange::Delete).await.unwrap();
    assert!(deleted.revoked && deleted.user.is_none());
    assert!(store.find_session(&bobs.id_hash).await.unwrap().is_none(), "deleting the account ended its session");
    assert!(matches!(store.change_user(bob.id, UserChange::Delete).await, Err(StoreError::NotFound)));
    let missing = UserChange::Update { name: Some("Nobody"), password_hash: None, role: None };
    assert!(matches!(store.change_user(bob.id, missing).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn change_user_revokes_exactly_on_password_role_or_deletion_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    change_user_revokes_exactly_on_password_role_or_deletion(sqlite_store(&dir).await).await;
}

#[tokio::test]
async fn change_user_revokes_exactly_on_password_role_or_deletion_on_postgres() {
    use sqlx::{Connection, Executor};
    let server_url = std::env::var("DATABASE_URL").unwrap_or_default();
    assert!(server_url.starts_with("postgres"), "set DATABASE_URL to a PostgreSQL server (got {server_url:?})");
    let database = format!("livebaton_revocation_{}", livebaton_admin::accounts::random_token(8).to_lowercase());
    let database: String = database.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let mut admin = sqlx::PgConnection::connect(&server_url).await.expect("PostgreSQL answers");
    admin.execute(format!("CREATE DATABASE {database}").as_str()).await.unwrap();
    let base = server_url.rsplit_once('/').map_or(server_url.as_str(), |(base, _)| base);
    let store = Store::connect(&format!("{base}/{database}")).await.unwrap();
    let outcome = tokio::spawn(change_user_revokes_exactly_on_password_role_or_deletion(store.clone())).await;
    store.pool().close().await;
    let _ = admin.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str()).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Restarting with the same `--admin-email/--admin-password` revokes nothing (the stored hash is kept); a different
/// password revokes the admin's sessions and says so, for the other nodes to be told.
#[tokio::test]
async fn restarting_with_the_same_admin_password_revokes_nothing() {
    let server = start(GRACE, Vec::new()).await;
    let first = bootstrap(&server.state.content, Some(("root@example.com", PASSWORD)), false).await.unwrap();
    assert_eq!(first.revoked_admin, None);
    let admin = server.state.store.find_user_by_email("root@example.com").await.unwrap().unwrap();
    let token = sign_in_for_token(&server, "root@example.com", PASSWORD).await;

    let again = bootstrap(&server.state.content, Some(("root@example.com", PASSWORD)), false).await.unwrap();
    assert_eq!(again.revoked_admin, None, "the same password changes nothing");
    assert_eq!(server.api(Method::GET, "/api/entities", &token, None).await.status, StatusCode::OK);

    let changed = bootstrap(&server.state.content, Some(("root@example.com", "another password")), false).await;
    assert_eq!(changed.unwrap().revoked_admin, Some(admin.id));
    assert_eq!(server.api(Method::GET, "/api/entities", &token, None).await.status, StatusCode::UNAUTHORIZED);
}
