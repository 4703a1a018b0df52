//! The live admin pages over real sockets (mirrors `src/views/`): what the server guarantees whatever the browser
//! does. Several users join the same collaborative form on `lv:record_edit`; the owner's changes reach spectators as
//! region diffs; a spectator's events are refused server-side; leaving promotes the next in line with the draft;
//! saves are validated and fenced (conflicts keep the draft); record pages follow writes made through the JSON API;
//! the dashboard counts open pages; visitors of public pages may join nothing else.
//!
//! The browser suite (`tests/browser/`) drives the same pages through Chromium; these tests pin the server side.

// Shared with `live.rs`, which uses all of it; this suite uses part.
#[path = "support/live.rs"]
#[allow(dead_code)]
mod live_support;

use std::time::Duration;

use axum::http::Method;
use live_support::{LiveServer, Peer, start};
use livebaton_admin::accounts::Role;
use livebaton_admin::storage::{Record, User};
use serde_json::{Map, Value, json};

/// The presence grace: short, so a closed page's place frees soon.
const GRACE: Duration = Duration::from_millis(300);

struct Scene {
    server: LiveServer,
    alice: User,
    bob: User,
    carol: User,
    record: Record,
}

async fn scene() -> Scene {
    let server = start(GRACE, Vec::new()).await;
    let alice = server.user("alice@example.com", "Alice", Role::Editor).await;
    let bob = server.user("bob@example.com", "Bob", Role::Editor).await;
    let carol = server.user("carol@example.com", "Carol", Role::Editor).await;
    livebaton_admin::seed::bootstrap(&server.state.content, None, true).await.expect("the demo seeds");
    let article = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let record = server.state.store.list_records(article.id).await.unwrap().pop().expect("a record");
    Scene { server, alice, bob, carol, record }
}

fn params(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), json!(value))).collect()
}

/// A page of `view` with `params`, opened by `user` in tab `tab`: the socket and the join reply's regions.
async fn open(server: &LiveServer, user: &User, view: &str, params: &Map<String, Value>, tab: &str) -> (Peer, Value) {
    let mut peer = server.connect(&server.token(user).await).await;
    let token = server.state.views.token(view, params);
    let reply = peer.join_ok(&format!("lv:{view}"), json!({"token": token, "tab_id": tab})).await;
    (peer, reply["rendered"]["regions"].clone())
}

fn edit_params(record: &Record) -> Map<String, Value> {
    params(&[("entity", "article".into()), ("id", record.id.to_string()), ("path", "/edit".into())])
}

/// Sends a client event; returns the reply's response.
async fn event(peer: &mut Peer, view: &str, kind: &str, name: &str, value: Value) -> Value {
    let reply = peer.push(&format!("lv:{view}"), "event", json!({"type": kind, "event": name, "value": value})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    reply[4]["response"].clone()
}

/// The conflict panel's choices as a browser sends them: "Keep yours" for every field `form` has.
fn keep_mine() -> Value {
    let fields = ["title", "slug", "status", "data.summary", "data.category", "data.featured"];
    json!(fields.map(|field| format!("resolve%5B{field}%5D=mine")).join("&"))
}

/// The form as a browser sends it (URL-encoded) with `title`.
fn form(title: &str) -> Value {
    let encoded: String = title.bytes().map(|byte| format!("%{byte:02X}")).collect();
    json!(format!(
        "title={encoded}&slug=&status=published&data%5Bsummary%5D=sum&data%5Bcategory%5D=guide&data%5Bfeatured%5D=false"
    ))
}

/// The next `diff` pushed on `lv:view` whose regions contain `needle`.
async fn diff_containing(peer: &mut Peer, view: &str, needle: &str) -> Value {
    let topic = format!("lv:{view}");
    peer.take(&format!("a diff containing {needle:?}"), |frame| {
        frame[2] == topic.as_str() && frame[3] == "diff" && frame[4].to_string().contains(needle)
    })
    .await
}

fn region<'a>(regions: &'a Value, id: &str) -> &'a str {
    regions[id].as_str().unwrap_or_else(|| panic!("no region {id} in {regions}"))
}

#[tokio::test]
async fn the_first_editor_owns_the_form_and_spectators_watch_it_read_only() {
    let Scene { server, alice, bob, carol, record } = scene().await;
    let view = "record_edit";
    let (mut alice_page, regions) = open(&server, &alice, view, &edit_params(&record), "tab-a").await;
    assert!(region(&regions, "editing-bar").contains("You are editing"), "{regions}");
    assert!(!region(&regions, "record-editor").contains("<fieldset disabled"), "the owner's inputs are enabled");

    let (mut bob_page, regions) = open(&server, &bob, view, &edit_params(&record), "tab-b").await;
    let bar = region(&regions, "editing-bar");
    assert!(bar.contains("Read-only — Alice is editing"), "{bar}");
    assert!(bar.contains("1 other person"), "{bar}");
    assert!(region(&regions, "record-editor").contains("<fieldset disabled"), "a spectator's inputs are disabled");
    // Alice's bar now counts Bob as waiting.
    diff_containing(&mut alice_page, view, "1 waiting: Bob").await;

    // Alice types: Bob sees her value in his (disabled) input.
    let reply = event(&mut alice_page, view, "change", "draft", form("Alice's <b>draft</b>")).await;
    assert!(reply["flash"].is_null(), "{reply}");
    let diff = diff_containing(&mut bob_page, view, "Alice's &lt;b&gt;draft&lt;/b&gt;").await;
    assert!(!diff.to_string().contains("<b>draft"), "typed markup is escaped: {diff}");

    // A late joiner sees the unsaved draft at once, and the queue in order.
    let (_carol_page, regions) = open(&server, &carol, view, &edit_params(&record), "tab-c").await;
    assert!(region(&regions, "record-editor").contains("Alice's &lt;b&gt;draft&lt;/b&gt;"), "{regions}");
    let bar = region(&regions, "editing-bar");
    assert!(bar.contains("2 waiting: Bob, you") && bar.contains("2 other people"), "{bar}");

    // Bob's events change nothing, whatever his client sends.
    for name in ["draft", "save"] {
        let reply =
            event(&mut bob_page, view, if name == "save" { "submit" } else { "change" }, name, form("Bob wins")).await;
        assert!(reply["flash"]["error"].as_str().unwrap().contains("Read-only — Alice is editing"), "{reply}");
    }
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), (record.title.as_str(), record.lock_version));
    let draft =
        server.state.engine.editing.draft(&livebaton::editing::EditTarget::new("data", record.id).unwrap()).unwrap();
    assert_eq!(draft.params["title"], "Alice's <b>draft</b>", "the draft is still Alice's");

    // Alice navigates away (an explicit leave): Bob is promoted at once, with her draft.
    let left = alice_page.push(&format!("lv:{view}"), "phx_leave", json!({})).await;
    assert_eq!(left[4]["status"], "ok");
    let diff = diff_containing(&mut bob_page, view, "You are now editing").await;
    assert!(diff.to_string().contains("Alice&#39;s unsaved changes"), "the note says whose draft it holds: {diff}");
    let reply = event(&mut bob_page, view, "click", "dismiss", json!({})).await;
    assert!(!reply.to_string().contains("You are now editing"), "the note is dismissed: {reply}");
    assert!(reply["regions"]["editing-bar"].as_str().unwrap().contains("You are editing"), "{reply}");
    let reply = event(&mut bob_page, view, "submit", "save", form("Saved by Bob")).await;
    assert_eq!(reply["flash"]["info"], "Saved.", "{reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Saved by Bob", record.lock_version + 1));
}

#[tokio::test]
async fn a_save_reports_invalid_fields_and_conflicts_and_keeps_the_draft() {
    let Scene { server, alice, record, .. } = scene().await;
    let view = "record_edit";
    let (mut page, _) = open(&server, &alice, view, &edit_params(&record), "tab-a").await;

    let reply = event(&mut page, view, "submit", "save", form("")).await;
    assert!(reply["flash"]["error"].as_str().unwrap().contains("Not saved"), "{reply}");
    assert!(reply["regions"].to_string().contains("can't be blank"), "the error is shown inline: {reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored.lock_version, record.lock_version, "nothing was written");

    // Alice drafts; someone saves through the API meanwhile; her save conflicts and keeps her draft.
    event(&mut page, view, "change", "draft", form("Alice's version")).await;
    let admin = server.user("admin@example.com", "Admin", Role::Admin).await;
    let uri = format!("/api/entities/article/records/{}", record.id);
    let body = json!({"title": "API version", "lock_version": record.lock_version, "data": {"category": "news"}});
    let written = server.api(Method::PUT, &uri, &server.token(&admin).await, Some(body)).await;
    assert_eq!(written.status, 200, "{}", written.text);
    let reply = event(&mut page, view, "submit", "save", form("Alice's version")).await;
    let regions = reply["regions"].to_string();
    assert!(regions.contains("Someone else saved this record"), "{reply}");
    assert!(regions.contains("data-field=\\\"title\\\""), "the title, changed on both sides, is offered: {reply}");
    assert!(regions.contains("API version"), "with their value: {reply}");
    assert!(regions.contains("value=\\\"Alice's version\\\""), "the draft stays in the form: {reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored.title, "API version", "the other save was not overwritten");

    // She keeps hers for every field offered.
    let reply = event(&mut page, view, "submit", "resolve", keep_mine()).await;
    assert!(reply["flash"]["info"].as_str().is_some_and(|info| info.starts_with("Saved.")), "{reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Alice's version", record.lock_version + 2));
}

/// The record form as a browser sends it for `record` as stored, with `title` and the data values of `data` in place
/// of the stored ones.
fn row_form(record: &Record, title: &str, data: &[(&str, &str)]) -> Value {
    let encode = |text: &str| -> String { text.bytes().map(|byte| format!("%{byte:02X}")).collect() };
    let mut pairs = vec![
        ("title".to_owned(), title.to_owned()),
        ("slug".to_owned(), record.slug.clone()),
        ("status".to_owned(), record.status.as_str().to_owned()),
    ];
    for (key, value) in &record.data {
        let text = data.iter().find(|(changed, _)| changed == key).map_or_else(
            || value.as_str().map_or_else(|| value.to_string(), str::to_owned),
            |(_, text)| (*text).to_owned(),
        );
        pairs.push((format!("data[{key}]"), text));
    }
    json!(pairs.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect::<Vec<_>>().join("&"))
}

/// A save over a record that moved since the draft began is merged per field: the summary only the API changed is
/// kept (and the flash names it), the title only Alice changed is saved. When both change the body, only the body is
/// offered, with both values sanitised (rich text) and escaped; choosing "theirs" saves it, with Alice's other field.
#[tokio::test]
async fn a_save_over_a_moved_row_merges_and_offers_only_the_fields_both_changed() {
    let Scene { server, alice, record, .. } = scene().await;
    let view = "record_edit";
    let admin = server.user("admin@example.com", "Admin", Role::Admin).await;
    let uri = format!("/api/entities/article/records/{}", record.id);
    let token = server.token(&admin).await;
    let (mut page, _) = open(&server, &alice, view, &edit_params(&record), "tab-a").await;

    event(&mut page, view, "change", "draft", row_form(&record, "Alice's title", &[])).await;
    let mut data = record.data.clone();
    data.insert("summary".into(), json!("The API's summary"));
    let body = json!({"title": record.title, "data": data, "lock_version": record.lock_version});
    assert_eq!(server.api(Method::PUT, &uri, &token, Some(body)).await.status, 200);
    let reply = event(&mut page, view, "submit", "save", row_form(&record, "Alice's title", &[])).await;
    assert_eq!(reply["flash"]["info"], "Saved. Kept the newer values saved meanwhile of: Summary.", "{reply}");
    assert!(
        reply["regions"]["record-editor"].as_str().unwrap().contains("The API&#39;s summary")
            || reply["regions"]["record-editor"].as_str().unwrap().contains("The API's summary"),
        "{reply}"
    );
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.data["summary"].as_str()), ("Alice's title", Some("The API's summary")));
    assert_eq!(stored.lock_version, record.lock_version + 2);

    // Both change the body; only the API changes the title.
    let mine = "<p>Alice's body</p><script>alert(1)</script>";
    event(&mut page, view, "change", "draft", row_form(&stored, "Alice's title", &[("body", mine)])).await;
    let mut data = stored.data.clone();
    data.insert("body".into(), json!("<p onclick=\"steal()\">The API's body</p><img src=x onerror=alert(2)>"));
    let body = json!({"title": "<b>The API's title</b>", "data": data, "lock_version": stored.lock_version});
    assert_eq!(server.api(Method::PUT, &uri, &token, Some(body)).await.status, 200);
    let reply = event(&mut page, view, "submit", "save", row_form(&stored, "Alice's title", &[("body", mine)])).await;
    assert!(reply["flash"]["error"].as_str().unwrap().contains("Not saved"), "{reply}");
    let editor = reply["regions"]["record-editor"].as_str().unwrap();
    let panel = &editor[editor.find("id=\"conflict\"").expect("the panel")..editor.find("id=\"record-form\"").unwrap()];
    assert_eq!(panel.matches("data-field=").count(), 1, "only the body is offered: {panel}");
    assert!(panel.contains("data-field=\"data.body\""), "{panel}");
    assert!(panel.contains("Alice's body") && panel.contains("The API's body"), "both values side by side: {panel}");
    for unsafe_markup in ["<script", "onclick", "onerror", "steal()"] {
        assert!(!panel.contains(unsafe_markup), "{unsafe_markup} reached the page: {panel}");
    }
    let stored_now = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored_now.lock_version, stored.lock_version + 1, "nothing was written");

    let reply = event(&mut page, view, "submit", "resolve", json!("resolve%5Bdata.body%5D=theirs")).await;
    assert!(reply["flash"]["info"].as_str().unwrap().starts_with("Saved."), "{reply}");
    let saved = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(saved.title, "<b>The API's title</b>", "the API's title, which Alice never touched");
    assert_eq!(saved.data["body"], stored_now.data["body"], "the API's body, as chosen");
    assert_eq!(saved.lock_version, stored_now.lock_version + 1);
    let editor = reply["regions"]["record-editor"].as_str().unwrap();
    assert!(!editor.contains("<b>The API"), "the title is escaped: {editor}");
}

#[tokio::test]
async fn record_pages_follow_writes_made_through_the_api() {
    let Scene { server, alice, record, .. } = scene().await;
    let admin = server.user("admin@example.com", "Admin", Role::Admin).await;
    let token = server.token(&admin).await;
    let (mut list, _) = open(&server, &alice, "records", &params(&[("entity", "article".into())]), "t1").await;
    let show_params = params(&[("entity", "article".into()), ("id", record.id.to_string())]);
    let (mut show, _) = open(&server, &alice, "record_show", &show_params, "t2").await;

    let body = json!({"title": "Brand <new> record", "data": {"category": "news"}});
    let created = server.api(Method::POST, "/api/entities/article/records", &token, Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    diff_containing(&mut list, "records", "Brand &lt;new&gt; record").await;

    let uri = format!("/api/entities/article/records/{}", record.id);
    let body = json!({"title": "Renamed elsewhere", "lock_version": record.lock_version, "data": {"category": "news"}});
    assert_eq!(server.api(Method::PUT, &uri, &token, Some(body)).await.status, 200);
    diff_containing(&mut show, "record_show", "Updated in another session").await;

    assert_eq!(server.api(Method::DELETE, &uri, &token, None).await.status, 204);
    let diff = diff_containing(&mut show, "record_show", "/admin/entities/article/data").await;
    assert_eq!(diff[4]["redirect"]["to"], "/admin/entities/article/data", "{diff}");
    assert!(diff[4]["flash"]["error"].as_str().unwrap().contains("was deleted in another session"), "{diff}");
}

#[tokio::test]
async fn the_dashboard_counts_pages_opening_and_closing() {
    let Scene { server, alice, bob, .. } = scene().await;
    let (mut dashboard, regions) = open(&server, &alice, "dashboard", &params(&[("path", "/admin".into())]), "d").await;
    assert!(
        region(&regions, "stats").contains(r#"<div class="stat" id="total-sessions"><div class="value">1</div>"#),
        "{regions}"
    );
    let (mut bobs, _) = open(&server, &bob, "entities", &params(&[("path", "/admin/entities".into())]), "e").await;
    let diff = diff_containing(&mut dashboard, "dashboard", r#"id=\"total-sessions\"><div class=\"value\">2<"#).await;
    assert!(diff.to_string().contains("/admin/entities"), "top pages list Bob's page: {diff}");
    assert!(diff.to_string().contains(r#"id=\"unique-users\"><div class=\"value\">2<"#), "{diff}");
    bobs.push("lv:entities", "phx_leave", json!({})).await;
    diff_containing(&mut dashboard, "dashboard", r#"id=\"total-sessions\"><div class=\"value\">1<"#).await;
}

/// The largest record the API accepts can be edited in the live form: its whole form, URL-encoded at the worst (every
/// character escaped as %XX), travels in one frame within the default 64 KiB limit, and saves. (A record of 100,000
/// characters once saved through the API closed its form's socket with 1009 for ever.)
#[tokio::test]
async fn the_largest_record_the_api_takes_can_be_saved_from_the_live_form() {
    let Scene { server, alice, .. } = scene().await;
    let admin = server.user("root@example.com", "Root", Role::Admin).await;
    let fields: Vec<Value> =
        (0..4).map(|n| json!({"type": "textarea", "key": format!("t{n}"), "label": format!("T{n}")})).collect();
    let entity =
        json!({"name": "memo", "display_name": "Memo", "display_name_plural": "Memos", "fields_definition": fields});
    assert_eq!(server.api(Method::POST, "/api/entities", &server.token(&admin).await, Some(entity)).await.status, 201);
    let data: Map<String, Value> = (0..4).map(|n| (format!("t{n}"), json!("<".repeat(4_900)))).collect();
    let body = json!({"title": "Big", "status": "draft", "data": data});
    let created = server.api(Method::POST, "/api/entities/memo/records", &server.token(&alice).await, Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let too_big: Map<String, Value> = (0..4).map(|n| (format!("t{n}"), json!("<".repeat(5_000)))).collect();
    let body = json!({"title": "Bigger", "data": too_big});
    let refused = server.api(Method::POST, "/api/entities/memo/records", &server.token(&alice).await, Some(body)).await;
    assert_eq!(refused.status, 422, "beyond the content limit: {}", refused.text);

    let id = created.json["id"].as_i64().unwrap();
    let edit = params(&[("entity", "memo".into()), ("id", id.to_string()), ("path", "/edit".into())]);
    let (mut page, _) = open(&server, &alice, "record_edit", &edit, "tab-big").await;
    let fields: String = (0..4).map(|n| format!("&data%5Bt{n}%5D={}", "%3E".repeat(4_900))).collect();
    let form = format!("title=Big&slug=&status=draft{fields}");
    let reply = event(&mut page, "record_edit", "submit", "save", json!(form)).await;
    assert_eq!(reply["flash"]["info"], "Saved.", "{reply}");
    let stored = server.state.store.find_record_by_id(id).await.unwrap().unwrap();
    assert_eq!(stored.data["t3"], json!(">".repeat(4_900)));
}

/// Only admins see other people's emails on the dashboard; editors and viewers see names.
#[tokio::test]
async fn the_dashboard_shows_emails_only_to_admins() {
    let Scene { server, alice, bob, .. } = scene().await;
    let admin = server.user("root@example.com", "Root", Role::Admin).await;
    let (_bobs, _) = open(&server, &bob, "entities", &params(&[("path", "/admin/entities".into())]), "e").await;
    let dashboard = params(&[("path", "/admin".into())]);
    let (_page, regions) = open(&server, &alice, "dashboard", &dashboard, "d").await;
    let sessions = region(&regions, "stats");
    assert!(
        sessions.contains(r#"<td data-label="Who">Bob</td>"#) && !sessions.contains('@'),
        "an editor sees names: {sessions}"
    );
    let (_page, regions) = open(&server, &admin, "dashboard", &dashboard, "d2").await;
    let sessions = region(&regions, "stats");
    assert!(sessions.contains("bob@example.com"), "an admin sees emails: {sessions}");
}

#[tokio::test]
async fn a_visitor_may_join_the_public_page_and_nothing_else() {
    let Scene { server, record, .. } = scene().await;
    let visitor = livebaton_admin::views::visitor_token(live_support::SECRET, "visitor-0123456789abcdef");
    let url = server.ws_url(&format!("vsn=2.0.0&visitor={visitor}"));
    let mut peer = Peer::new(tokio_tungstenite::connect_async(url).await.expect("a visitor connects").0);
    let public = params(&[("entity", "article".into()), ("slug", record.slug.clone()), ("path", "/e".into())]);
    let token = server.state.views.token("public_record", &public);
    let reply = peer.join_ok("lv:public_record", json!({"token": token})).await;
    assert!(reply["rendered"]["regions"]["public-record"].as_str().unwrap().contains(&record.title));
    let stats = server.state.engine.stats.presence_stats();
    assert_eq!((stats.anonymous_sessions, stats.unique_anonymous_visitors), (1, 1));

    let dashboard = server.state.views.token("dashboard", &Map::new());
    let refused = peer.join("lv:dashboard", json!({"token": dashboard})).await;
    assert_eq!(refused[4]["response"]["redirect"]["to"], "/admin/login", "{refused}");
    for topic in ["room:lobby", "entities", "entity_data:article"] {
        let refused = peer.join(topic, json!({})).await;
        assert_eq!(refused[4]["response"]["reason"], "unauthorized", "{topic}: {refused}");
    }
    let forged = server.ws_url("vsn=2.0.0&visitor=forged.token");
    assert!(tokio_tungstenite::connect_async(forged).await.is_err(), "a forged visitor token is refused");
}

/// A write from elsewhere reaches an owner who has no unsaved changes (her next draft starts from it, so it cannot be
/// overwritten unseen); after a conflict, "Discard mine" shows every spectator the stored row again.
#[tokio::test]
async fn writes_from_elsewhere_reach_the_owner_and_a_discard_reaches_spectators() {
    let Scene { server, alice, bob, record, .. } = scene().await;
    let view = "record_edit";
    let admin = server.user("admin@example.com", "Admin", Role::Admin).await;
    let token = server.token(&admin).await;
    let uri = format!("/api/entities/article/records/{}", record.id);
    let (mut alice_page, _) = open(&server, &alice, view, &edit_params(&record), "tab-a").await;
    let (mut bob_page, _) = open(&server, &bob, view, &edit_params(&record), "tab-b").await;

    let body = json!({"title": "First API write", "lock_version": record.lock_version, "data": {"category": "news"}});
    assert_eq!(server.api(Method::PUT, &uri, &token, Some(body)).await.status, 200);
    let diff = diff_containing(&mut alice_page, view, "value=\\\"First API write\\\"").await;
    assert!(diff.to_string().contains("Saved by Admin."), "{diff}");

    // Alice drafts, the API writes again, her save conflicts; she discards hers.
    event(&mut alice_page, view, "change", "draft", form("Alice gives up")).await;
    diff_containing(&mut bob_page, view, "value=\\\"Alice gives up\\\"").await;
    let body = json!({"title": "Theirs wins", "lock_version": record.lock_version + 1, "data": {"category": "news"}});
    assert_eq!(server.api(Method::PUT, &uri, &token, Some(body)).await.status, 200);
    let reply = event(&mut alice_page, view, "submit", "save", form("Alice gives up")).await;
    assert!(reply["regions"].to_string().contains("Someone else saved this record"), "{reply}");
    let reply = event(&mut alice_page, view, "click", "discard", json!({})).await;
    assert!(reply["regions"].to_string().contains("value=\\\"Theirs wins\\\""), "{reply}");
    diff_containing(&mut bob_page, view, "value=\\\"Theirs wins\\\"").await;
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored.title, "Theirs wins");
}

/// `form(title)` as a page that showed row version `version` sends it (the form's hidden `_lock_version`).
fn form_at(title: &str, version: i64) -> Value {
    json!(format!("{}&_lock_version={version}", form(title).as_str().unwrap()))
}

/// Form recovery: after a rejoin (server restart, crash, lost connection) the browser offers what its page showed to
/// the fresh view as `recover`. It becomes the owner's draft only while the session has none, never from a spectator.
#[tokio::test]
async fn a_rejoined_owner_gets_back_what_the_page_showed_and_nothing_else_changes() {
    let Scene { server, alice, bob, record, .. } = scene().await;
    let view = "record_edit";
    let target = livebaton::editing::EditTarget::new("data", record.id).unwrap();

    let (mut alice_page, regions) = open(&server, &alice, view, &edit_params(&record), "tab-a").await;
    assert!(region(&regions, "record-editor").contains("name=\"_lock_version\""), "the form carries its version");

    // What Alice's page showed before it lost its view comes back as her draft, based on the version it showed.
    let reply =
        event(&mut alice_page, view, "change", "recover", form_at("Typed before the restart", record.lock_version))
            .await;
    assert_eq!(reply["flash"]["info"], "Your unsaved changes are back.", "{reply}");
    assert!(reply["regions"]["record-editor"].as_str().unwrap().contains("Typed before the restart"), "{reply}");
    let draft = server.state.engine.editing.draft(&target).expect("the recovered values are the draft");
    assert_eq!((draft.params["title"].as_str(), draft.base_lock_version), (Some("Typed before the restart"), 1));

    // A spectator's recovery changes nothing (its form was read-only), nor does a second one once a draft exists.
    let (mut bob_page, regions) = open(&server, &bob, view, &edit_params(&record), "tab-b").await;
    assert!(region(&regions, "record-editor").contains("Typed before the restart"), "Bob sees the draft");
    let reply = event(&mut bob_page, view, "change", "recover", form_at("Bob's old page", record.lock_version)).await;
    assert!(reply["flash"].is_null(), "{reply}");
    let reply = event(&mut alice_page, view, "change", "recover", form_at("An older page", record.lock_version)).await;
    assert!(reply["flash"].is_null(), "{reply}");
    let draft = server.state.engine.editing.draft(&target).unwrap();
    assert_eq!(draft.params["title"], "Typed before the restart", "the draft is unchanged");

    // Saved as usual.
    let reply = event(&mut alice_page, view, "submit", "save", form_at("Typed before the restart", 1)).await;
    assert_eq!(reply["flash"]["info"], "Saved.", "{reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Typed before the restart", record.lock_version + 1));

    // A page that shows the row as stored (nothing typed; the form sends `false` where the row has `false`) makes
    // no draft when it recovers.
    let shown =
        form_at("Typed before the restart", 2).as_str().unwrap().replace("slug=", &format!("slug={}", stored.slug));
    let reply = event(&mut alice_page, view, "change", "recover", json!(shown)).await;
    assert!(reply["flash"].is_null(), "{reply}");
    assert!(server.state.engine.editing.draft(&target).is_none(), "no draft from an untouched form");

    // After a restart another page may rejoin first and own the form: a spectator's recovery is held, and it says so.
    let held = || form_at("Bob's held page", 2);
    let reply = event(&mut bob_page, view, "change", "recover", held()).await;
    let message = reply["flash"]["error"].as_str().unwrap_or_else(|| panic!("a notice: {reply}"));
    assert!(message.starts_with("Alice is editing now. Your unsaved changes are kept on this page"), "{message}");
    assert!(server.state.engine.editing.draft(&target).is_none(), "a spectator makes no draft");
    // Someone else's draft replaces held values, and the page says so.
    event(&mut alice_page, view, "change", "draft", form_at("Alice again", 2)).await;
    diff_containing(&mut bob_page, view, "your earlier unsaved changes are gone").await;
    let reply = event(&mut alice_page, view, "submit", "save", form_at("Alice again", 2)).await;
    assert_eq!(reply["flash"]["info"], "Saved.", "{reply}");
    // Held again; promoted while the session has no draft, the held values become the draft.
    event(&mut bob_page, view, "change", "recover", form_at("Bob's held page", 3)).await;
    let left = alice_page.push(&format!("lv:{view}"), "phx_leave", json!({})).await;
    assert_eq!(left[4]["status"], "ok");
    let diff = diff_containing(&mut bob_page, view, "Your unsaved changes are back.").await;
    assert!(diff.to_string().contains("Bob&#39;s held page") || diff.to_string().contains("Bob's held page"), "{diff}");
    let draft = server.state.engine.editing.draft(&target).expect("Bob's held values are the draft");
    assert_eq!((draft.params["title"].as_str(), draft.base_lock_version), (Some("Bob's held page"), 3));
}

/// A recovery over a row that was saved while the page was away shows the conflict at once, keeps the recovered
/// values, and never overwrites the other save unless the user says so.
#[tokio::test]
async fn a_recovery_over_a_row_saved_meanwhile_conflicts_instead_of_overwriting() {
    let Scene { server, alice, record, .. } = scene().await;
    let view = "record_edit";
    let admin = server.user("admin@example.com", "Admin", Role::Admin).await;
    let uri = format!("/api/entities/article/records/{}", record.id);
    let body = json!({"title": "Saved while away", "lock_version": record.lock_version, "data": {"category": "news"}});
    let written = server.api(Method::PUT, &uri, &server.token(&admin).await, Some(body)).await;
    assert_eq!(written.status, 200, "{}", written.text);

    let (mut page, regions) = open(&server, &alice, view, &edit_params(&record), "tab-a").await;
    assert!(region(&regions, "record-editor").contains("Saved while away"), "the fresh view shows the row");
    let reply = event(&mut page, view, "change", "recover", form_at("Typed before", record.lock_version)).await;
    let message = reply["flash"]["error"].as_str().unwrap_or_else(|| panic!("a warning: {reply}"));
    assert!(message.contains("saved meanwhile"), "{message}");
    let editor = reply["regions"]["record-editor"].as_str().unwrap();
    assert!(editor.contains("value=\"Typed before\""), "the recovered values stay in the form: {editor}");

    // A plain save conflicts: the page never had the row its values came from, so every field where they differ
    // from the row is offered; the other save stays.
    let reply = event(&mut page, view, "submit", "save", form_at("Typed before", record.lock_version)).await;
    assert!(reply["flash"]["error"].as_str().unwrap().contains("Not saved"), "{reply}");
    let editor = reply["regions"]["record-editor"].as_str().unwrap();
    assert!(editor.contains("data-field=\"title\"") && editor.contains("Saved while away"), "{editor}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(stored.title, "Saved while away");

    // Keeping hers is the user's explicit choice, field by field.
    let reply = event(&mut page, view, "submit", "resolve", keep_mine()).await;
    assert!(reply["flash"]["info"].as_str().is_some_and(|info| info.starts_with("Saved.")), "{reply}");
    let stored = server.state.store.find_record_by_id(record.id).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.lock_version), ("Typed before", record.lock_version + 2));
}

/// The entity form as a browser sends it for `entity`, with `display_name` in place of the stored one.
fn entity_form(entity: &livebaton_admin::storage::Entity, display_name: &str) -> Value {
    let encode = |text: &str| -> String { text.bytes().map(|byte| format!("%{byte:02X}")).collect() };
    let mut pairs = vec![
        ("display_name".to_owned(), display_name.to_owned()),
        ("display_name_plural".to_owned(), entity.display_name_plural.clone()),
        ("name".to_owned(), entity.name.clone()),
        ("status".to_owned(), entity.status.as_str().to_owned()),
        ("description".to_owned(), entity.description.clone()),
    ];
    for (index, field) in entity.fields_definition.iter().enumerate() {
        pairs.push((format!("fields[{index}][label]"), field.label.clone()));
        pairs.push((format!("fields[{index}][key]"), field.key.clone()));
        pairs.push((format!("fields[{index}][type]"), field.field_type.as_str().to_owned()));
        if field.field_type.has_options() {
            pairs.push((format!("fields[{index}][options]"), field.options.join(", ")));
        }
        pairs.push((format!("fields[{index}][required]"), "false".to_owned()));
        if field.required {
            pairs.push((format!("fields[{index}][required]"), "true".to_owned()));
        }
    }
    pairs.push(("_lock_version".to_owned(), entity.lock_version.to_string()));
    let encoded: Vec<String> =
        pairs.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect();
    json!(encoded.join("&"))
}

/// The entity form recovers the same way: an untouched form makes no draft, a typed one becomes the owner's draft.
#[tokio::test]
async fn the_entity_form_recovers_what_its_page_showed() {
    let Scene { server, alice, .. } = scene().await;
    let view = "entity_edit";
    // An editor may not edit entity definitions: whatever her page sends, her recovery keeps nothing and says nothing.
    let entity = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let (mut editor_page, _) = open(&server, &alice, view, &params(&[("id", entity.id.to_string())]), "tab-e").await;
    let reply = event(&mut editor_page, view, "change", "recover", entity_form(&entity, "Not hers")).await;
    assert!(reply["flash"].is_null(), "{reply}");
    drop(editor_page);
    let ada = server.user("ada@example.com", "Ada", Role::Admin).await;
    let target = livebaton::editing::EditTarget::new("entity", entity.id).unwrap();
    let (mut page, regions) = open(&server, &ada, view, &params(&[("id", entity.id.to_string())]), "tab-a").await;
    assert!(region(&regions, "entity-editor").contains("name=\"_lock_version\""), "the form carries its version");

    let reply = event(&mut page, view, "change", "recover", entity_form(&entity, &entity.display_name)).await;
    assert!(reply["flash"].is_null(), "{reply}");
    assert!(server.state.engine.editing.draft(&target).is_none(), "no draft from an untouched form");

    let reply = event(&mut page, view, "change", "recover", entity_form(&entity, "Recovered article")).await;
    assert_eq!(reply["flash"]["info"], "Your unsaved changes are back.", "{reply}");
    let draft = server.state.engine.editing.draft(&target).expect("the recovered values are the draft");
    assert_eq!(draft.params["display_name"], "Recovered article");
    let fields = draft.params["fields_definition"].as_array().expect("the fields came along");
    assert_eq!(fields.len(), entity.fields_definition.len());
}

/// The people page: an admin's follows account changes made elsewhere (an invitation through the service, a role
/// change), live; an editor's join is refused, and an admin's event after their demotion changes nothing.
#[tokio::test]
async fn the_people_page_follows_account_changes_and_refuses_non_admins() {
    let Scene { server, alice, bob, .. } = scene().await;
    let ada = server.user("ada@example.com", "Ada", Role::Admin).await;
    let root = server.user("root@example.com", "Root", Role::Admin).await;
    let users = params(&[("origin", "https://cms.example.com".into())]);
    let (mut page, regions) = open(&server, &ada, "users", &users, "u").await;
    assert!(region(&regions, "people").contains("alice@example.com"), "the users are listed");

    let people = &server.state.people;
    people.invite(root.id, "nia@example.com", Role::Viewer, Some("Nia")).await.unwrap();
    diff_containing(&mut page, "users", "nia@example.com").await;
    people.update_account(root.id, bob.id, Some(Role::Viewer), None, None).await.unwrap();
    diff_containing(&mut page, "users", "changed the role of bob@example.com from editor to viewer").await;

    // Ada invites through the page: the link shown is absolute, on the site's origin.
    let invite = json!({"type": "submit", "event": "invite", "value": "email=sam%40example.com&name=Sam&role=editor"});
    let reply = page.push("lv:users", "event", invite).await;
    assert!(reply[4]["response"].to_string().contains("https://cms.example.com/account/link/"), "{reply}");

    let mut editor = server.connect(&server.token(&alice).await).await;
    let refused =
        editor.join("lv:users", json!({"token": server.state.views.token("users", &users), "tab_id": "e"})).await;
    assert_eq!(refused[4]["response"]["redirect"]["to"], "/admin", "an editor is sent away: {refused}");

    // Root demotes Ada; an event from her still-open page (its socket closes, but a late frame could arrive) is
    // refused by the service, which re-reads her role.
    people.update_account(root.id, ada.id, Some(Role::Editor), None, None).await.unwrap();
    let refused = people.invite(ada.id, "late@example.com", Role::Viewer, None).await;
    assert!(matches!(refused, Err(livebaton_admin::accounts::AccountError::Forbidden)), "{refused:?}");
    assert!(
        server.state.store.pending_invitations().await.unwrap().iter().all(|link| link.email != "late@example.com")
    );
}
