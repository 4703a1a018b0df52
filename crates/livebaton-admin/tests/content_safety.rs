//! Issue 15's content findings, replayed as an attacker would through the JSON API and the pages: stored XSS through a
//! field's change of type or a reused key (finding 1), HTML that is costly to sanitise (finding 4), and unbounded
//! entity definitions (finding 9). Requests go through `livebaton_admin::app::router` over a fresh SQLite file.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use livebaton_admin::accounts::Role;
use livebaton_admin::pages::session::{CSRF_COOKIE, SESSION_COOKIE};
use livebaton_content::{Status, ValidRecord};
use serde_json::{Map, Value, json};
use support::{Reply, TestApp};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");
const EDITOR: (&str, &str) = ("editor@example.com", "editor-password");
const HOST: &str = "localhost:4000";
/// What an editor types into a textarea in the repro.
const PAYLOAD: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

/// A JSON API request with a bearer token.
fn api(method: Method, uri: &str, token: &str, body: Option<&Value>) -> Request<Body> {
    let builder = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    match body {
        Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("a valid request")
}

/// A GET of a page, with a session cookie when given.
fn page(uri: &str, session: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(Method::GET).uri(uri).header("host", HOST);
    if let Some(session) = session {
        builder = builder.header("cookie", format!("{SESSION_COOKIE}={session}"));
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// An application with an admin and an editor, their API tokens and the admin's page session.
struct Site {
    app: TestApp,
    admin: String,
    editor: String,
    admin_session: String,
}

impl Site {
    async fn new() -> Self {
        let app = TestApp::new().await;
        app.user(ADMIN.0, ADMIN.1, Role::Admin).await;
        app.user(EDITOR.0, EDITOR.1, Role::Editor).await;
        let admin = token(&app, ADMIN).await;
        let editor = token(&app, EDITOR).await;
        let admin_session = page_session(&app, ADMIN).await;
        Site { app, admin, editor, admin_session }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        self.app.send(request).await
    }

    /// `POST /api/entities` as the admin; the entity's JSON.
    async fn create_entity(&self, name: &str, fields: Value) -> Value {
        let body =
            json!({"name": name, "display_name": "Note", "display_name_plural": "Notes", "fields_definition": fields});
        let reply = self.send(api(Method::POST, "/api/entities", &self.admin, Some(&body))).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()
    }

    /// `PUT /api/entities/{name}` as the admin with new fields; the entity's JSON.
    async fn retype(&self, entity: &Value, fields: Value) -> Value {
        let name = entity["name"].as_str().expect("a name");
        let mut body = entity.clone();
        body["fields_definition"] = fields;
        let reply = self.send(api(Method::PUT, &format!("/api/entities/{name}"), &self.admin, Some(&body))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }

    /// `POST /api/entities/{name}/records` as the editor, published; the record's JSON.
    async fn create_record(&self, entity: &str, data: Value) -> Value {
        let body = json!({"title": "Hello", "status": "published", "data": data});
        let uri = format!("/api/entities/{entity}/records");
        let reply = self.send(api(Method::POST, &uri, &self.editor, Some(&body))).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()
    }

    /// The record as the API returns it, the admin record page and the public page.
    async fn everywhere(&self, entity: &str, record: &Value) -> [(String, String); 3] {
        let id = record["id"].as_i64().expect("an id");
        let slug = record["slug"].as_str().expect("a slug");
        let from_api = self.send(api(Method::GET, &format!("/api/entities/{entity}/records/{id}"), &self.admin, None));
        let from_list = self.send(api(Method::GET, &format!("/api/entities/{entity}/records"), &self.admin, None));
        let admin_page = self.send(page(&format!("/admin/entities/{entity}/data/{id}"), Some(&self.admin_session)));
        let public_page = self.send(page(&format!("/e/{entity}/{slug}"), None));
        let (from_api, from_list, admin_page, public_page) = tokio::join!(from_api, from_list, admin_page, public_page);
        for reply in [&from_api, &from_list, &admin_page, &public_page] {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        }
        assert_eq!(from_list.json()["records"][0]["data"], from_api.json()["data"], "list and show agree");
        [
            ("the API".to_owned(), from_api.json()["data"]["body"].as_str().unwrap_or_default().to_owned()),
            ("the admin record page".to_owned(), admin_page.text()),
            ("the public page".to_owned(), public_page.text()),
        ]
    }
}

/// A bearer token through `POST /api/tokens`.
async fn token(app: &TestApp, (email, password): (&str, &str)) -> String {
    let body = json!({"email": email, "password": password});
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/tokens")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request");
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "sign-in of {email}: {}", reply.text());
    reply.json()["token"].as_str().expect("a token").to_owned()
}

/// A page session through the sign-in form (CSRF cookie and token, same origin).
async fn page_session(app: &TestApp, (email, password): (&str, &str)) -> String {
    let csrf = app.send(page("/admin/login", None)).await.cookie(CSRF_COOKIE).expect("a CSRF cookie");
    let form =
        format!("email={}&password={}&_csrf_token={csrf}", email.replace('@', "%40"), password.replace(' ', "+"));
    let request = Request::builder()
        .method(Method::POST)
        .uri("/admin/login")
        .header("host", HOST)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("{CSRF_COOKIE}={csrf}"))
        .body(Body::from(form))
        .expect("a valid request");
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in form: {}", reply.text());
    reply.cookie(SESSION_COOKIE).filter(|value| !value.is_empty()).expect("a session cookie")
}

/// Panics when `text` (shown by `place`) carries live markup from the payload: an `<img>` or a `<script>` element, or
/// `onerror` anywhere but inside the escaped text `&lt;img src=x onerror…`.
fn assert_inert(place: &str, text: &str) {
    assert!(!text.contains("<img"), "{place} carries an <img>: {text}");
    assert!(!text.contains("<script>alert"), "{place} carries a <script>: {text}");
    let escaped = text.matches("&lt;img src=x onerror=").count();
    assert_eq!(text.matches("onerror").count(), escaped, "{place} carries an event handler: {text}");
}

/// The repro: an editor stores markup in a textarea; the admin makes that field rich text through the API.
/// The value is kept as the text it was (escaped into rich text), never as markup: not in the API's answer, not on the
/// admin record page, not on the public page.
#[tokio::test]
async fn a_textarea_retyped_as_rich_text_never_becomes_markup() {
    let site = Site::new().await;
    let entity = site.create_entity("note", json!([{"type": "textarea", "key": "body", "label": "Body"}])).await;
    let record = site.create_record("note", json!({"body": PAYLOAD})).await;
    assert_eq!(record["data"]["body"], PAYLOAD, "plain text is stored as typed");

    site.retype(&entity, json!([{"type": "rich_text", "key": "body", "label": "Body"}])).await;

    let stored = site.app.state.store.find_record_by_id(record["id"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.data["body"], "<p>&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;</p>");
    assert!(stored.lock_version > record["lock_version"].as_i64().unwrap(), "the migrated row has a new version");
    for (place, text) in site.everywhere("note", &record).await {
        assert_inert(&place, &text);
        assert!(text.contains("&lt;script&gt;alert(2)"), "{place} shows the text as typed: {text}");
    }
}

/// A field removed and a rich-text field added under the same key: the old value went with the removed field, so the
/// new field starts empty and the markup is nowhere.
#[tokio::test]
async fn a_removed_key_re_added_as_rich_text_starts_empty() {
    let site = Site::new().await;
    let other = json!({"type": "text", "key": "summary", "label": "Summary"});
    let body = |kind: &str| json!({"type": kind, "key": "body", "label": "Body"});
    let entity = site.create_entity("note", json!([other, body("textarea")])).await;
    let record = site.create_record("note", json!({"summary": "kept", "body": PAYLOAD})).await;

    let entity = site.retype(&entity, json!([other])).await;
    site.retype(&entity, json!([other, body("rich_text")])).await;

    let stored = site.app.state.store.find_record_by_id(record["id"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(Value::Object(stored.data), json!({"summary": "kept"}), "the removed key was pruned");
    for (place, text) in site.everywhere("note", &record).await {
        assert!(!text.contains("alert("), "{place} shows the removed value: {text}");
    }
}

/// Rich text that reached the database unsanitised (an older version's data, a save from a form loaded before the
/// field's type changed) is sanitised whenever it is shown: pages and API alike.
#[tokio::test]
async fn stored_rich_text_is_sanitised_again_when_shown() {
    let site = Site::new().await;
    site.create_entity("note", json!([{"type": "rich_text", "key": "body", "label": "Body"}])).await;
    let entity = site.app.state.store.find_entity_by_name("note").await.unwrap().unwrap();
    let mut data = Map::new();
    data.insert("body".into(), json!(format!("<p>kept</p>{PAYLOAD}<a href=\"javascript:alert(3)\">x</a>")));
    let raw = ValidRecord { title: "Hello".into(), slug: None, status: Status::Published, data, metadata: Map::new() };
    let stored = site.app.state.store.insert_record(entity.id, &raw, None).await.unwrap();
    let record = serde_json::to_value(&stored).unwrap();

    for (place, text) in site.everywhere("note", &record).await {
        for live in ["<img src=x", "<script>alert", "onerror", "javascript:"] {
            assert!(!text.contains(live), "{place} carries {live:?}: {text}");
        }
        assert!(text.contains("<p>kept</p>"), "{place} keeps the safe markup: {text}");
    }
}

/// Finding 4: a body of `<div>`s nested 1,700 deep is refused with a message for the field, at once; so is one with too
/// many elements. A bigger body is refused by the record's size (20,000 bytes in all).
#[tokio::test]
async fn deeply_nested_rich_text_is_refused_with_a_message() {
    let site = Site::new().await;
    site.create_entity("note", json!([{"type": "rich_text", "key": "body", "label": "Body"}])).await;
    // As deep as the most one record holds (20,000 bytes) allows.
    let depth = 19_000 / 11;
    let attack = format!("{}x{}", "<div>".repeat(depth), "</div>".repeat(depth));
    let body = json!({"title": "Deep", "data": {"body": attack}});
    let start = Instant::now();
    let reply = site.send(api(Method::POST, "/api/entities/note/records", &site.editor, Some(&body))).await;
    let elapsed = start.elapsed();
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["fields"]["data.body"], json!(["is nested too deeply (at most 32 levels)"]));
    assert!(elapsed < Duration::from_secs(1), "answered in {elapsed:?}");

    let wide = json!({"title": "Wide", "data": {"body": "<p>x</p>".repeat(2_001)}});
    let reply = site.send(api(Method::POST, "/api/entities/note/records", &site.editor, Some(&wide))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["fields"]["data.body"], json!(["has too many HTML elements (at most 2000)"]));
}

/// The costliest record the bounds allow (20,000 bytes of `<div>`s nested 32 deep, within 2,000 elements) is saved;
/// one over the bounds is refused. What one save may cost to sanitise is bounded by them (the blocking pool
/// runs it: see `content::off_the_workers_tests`).
#[tokio::test]
async fn the_costliest_record_within_the_bounds_is_saved() {
    let site = Site::new().await;
    site.create_entity("note", json!([{"type": "rich_text", "key": "body", "label": "Body"}])).await;
    let group = format!("{}x{}", "<div>".repeat(32), "</div>".repeat(32));
    for (groups, status) in [(55, StatusCode::CREATED), (63, StatusCode::UNPROCESSABLE_ENTITY)] {
        let body = json!({"title": "Costly", "data": {"body": group.repeat(groups)}});
        let reply = site.send(api(Method::POST, "/api/entities/note/records", &site.editor, Some(&body))).await;
        assert_eq!(reply.status, status, "{groups} groups: {}", reply.text());
    }
}

/// Finding 9: an entity definition is bounded: fields, options, and the length of keys, labels, options and defaults;
/// each problem is a 422 on its field, and nothing is stored.
#[tokio::test]
async fn entity_definitions_are_bounded() {
    let site = Site::new().await;
    let post = |body: Value| site.send(api(Method::POST, "/api/entities", &site.admin, Some(&body)));
    let entity = |fields: Value| {
        let mut entity = json!({"name": "big", "display_name": "Big", "display_name_plural": "Bigs"});
        entity["fields_definition"] = fields;
        entity
    };

    let many: Vec<Value> = (0..101).map(|i| json!({"type": "text", "key": format!("f{i}"), "label": "F"})).collect();
    let reply = post(entity(Value::Array(many))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["fields"]["fields_definition"], json!(["must have at most 100 fields"]));

    let options: Vec<String> = (0..101).map(|i| format!("o{i}")).collect();
    let reply = post(entity(json!([
        {"type": "checkbox", "key": "tags", "label": "Tags", "options": options},
        {"type": "text", "key": "k".repeat(51), "label": "l".repeat(101)},
        {"type": "select", "key": "pick", "label": "Pick", "options": ["o".repeat(256)]},
        {"type": "rich_text", "key": "body", "label": "Body", "default": "x".repeat(5_001)},
    ])))
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    let fields = &reply.json()["fields"];
    assert_eq!(fields["fields_definition[0].options"], json!(["must have at most 100 options"]));
    assert_eq!(fields["fields_definition[1].key"], json!(["must be at most 50 characters"]));
    assert_eq!(fields["fields_definition[1].label"], json!(["must be at most 100 characters"]));
    assert_eq!(fields["fields_definition[2].options"], json!(["each option must be at most 255 characters"]));
    assert_eq!(fields["fields_definition[3].default"], json!(["must be at most 5000 characters"]));
    assert!(site.app.state.store.find_entity_by_name("big").await.unwrap().is_none(), "nothing stored");
}
