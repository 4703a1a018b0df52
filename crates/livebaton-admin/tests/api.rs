//! The JSON API in-process (mirrors `src/api/`): permissions on every route, validation and conflict errors, events
//! after commit, and sign-in throttling on `POST /api/tokens`. Requests go through `livebaton_admin::app::router`
//! with `tower::ServiceExt::oneshot`, over a fresh SQLite file per test.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use livebaton::events::{Action, ResourceEvent};
use livebaton::pubsub::Subscription;
use livebaton_admin::accounts::{Role, ThrottleConfig};
use livebaton_admin::content::events::{ENTITIES, ENTITY_DATA, data_event, entity_event};
use livebaton_admin::storage::{Entity, Record, now_ms};
use livebaton_content::{EntityInput, RecordInput};
use serde_json::{Value, json};
use support::{Reply, TestApp};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");
const EDITOR: (&str, &str) = ("editor@example.com", "editor-password");
const VIEWER: (&str, &str) = ("viewer@example.com", "viewer-password");

/// A request to the API, with a bearer token and a JSON body when given.
fn request(method: Method, uri: &str, token: Option<&str>, body: Option<&Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("a valid request"),
        None => builder.body(Body::empty()).expect("a valid request"),
    }
}

/// A request with a raw body sent as JSON.
fn raw_json(method: Method, uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_owned())).expect("a valid request")
}

/// `POST /api/tokens` for `(email, password)` from `address`.
async fn sign_in(app: &TestApp, address: &str, (email, password): (&str, &str)) -> Reply {
    let body = json!({"email": email, "password": password});
    app.send_from(address, request(Method::POST, "/api/tokens", None, Some(&body))).await
}

/// A bearer token for `credentials`, through `POST /api/tokens`.
async fn token(app: &TestApp, credentials: (&str, &str)) -> String {
    let reply = sign_in(app, support::CLIENT, credentials).await;
    assert_eq!(reply.status, StatusCode::OK, "sign-in of {} failed: {}", credentials.0, reply.text());
    let body = reply.json();
    assert!(body["expires_at"].as_i64().expect("expires_at") > now_ms());
    body["token"].as_str().expect("a token").to_owned()
}

/// The `article` entity the tests write to.
fn article_input() -> EntityInput {
    serde_json::from_value(json!({
        "name": "article",
        "display_name": "Article",
        "display_name_plural": "Articles",
        "fields_definition": [
            {"type": "text", "key": "summary", "label": "Summary"},
            {"type": "select", "key": "category", "label": "Category", "required": true, "options": ["news", "guide"]},
            {"type": "date", "key": "published_on", "label": "Published on"}
        ]
    }))
    .expect("a valid entity input")
}

fn record_input(title: &str) -> RecordInput {
    serde_json::from_value(json!({"title": title, "data": {"category": "news"}})).expect("a valid record input")
}

/// An application with an admin, an editor and a viewer signed in, the `article` entity and one record.
struct Fixture {
    app: TestApp,
    admin: String,
    editor: String,
    viewer: String,
    article: Entity,
    record: Record,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_throttle(ThrottleConfig::default()).await
    }

    async fn with_throttle(throttle: ThrottleConfig) -> Self {
        let app = TestApp::with_throttle(throttle).await;
        tokio::join!(
            app.user(ADMIN.0, ADMIN.1, Role::Admin),
            app.user(EDITOR.0, EDITOR.1, Role::Editor),
            app.user(VIEWER.0, VIEWER.1, Role::Viewer),
        );
        let (admin, editor, viewer) = tokio::join!(token(&app, ADMIN), token(&app, EDITOR), token(&app, VIEWER));
        let article = app.state.content.create_entity(&article_input(), None).await.expect("article is created");
        let record =
            app.state.content.create_record(&article, &record_input("First post"), None).await.expect("a record");
        Fixture { app, admin, editor, viewer, article, record }
    }

    /// Everything stored: entities and their records, to tell whether a request changed anything.
    async fn snapshot(&self) -> Value {
        let store = &self.app.state.store;
        let mut entities = Vec::new();
        for entity in store.list_entities().await.expect("entities") {
            let records = store.list_records(entity.id).await.expect("records");
            let trash = store.list_trash(entity.id).await.expect("the trash");
            entities.push(json!({"entity": entity, "records": records, "trash": trash}));
        }
        Value::Array(entities)
    }

    async fn current_record(&self, id: i64) -> Record {
        self.app.state.store.find_record(self.article.id, id).await.unwrap().expect("the record exists")
    }

    async fn current_article(&self) -> Entity {
        self.app.state.store.find_entity(self.article.id).await.unwrap().expect("article exists")
    }
}

/// The next content event on `subscription`, waiting at most two seconds.
async fn next_event(subscription: &mut Subscription) -> ResourceEvent {
    let broadcast = tokio::time::timeout(Duration::from_secs(2), subscription.recv())
        .await
        .unwrap_or_else(|_| panic!("no event on {} within 2 s", subscription.topic()))
        .expect("the subscription is open");
    match broadcast.downcast::<ResourceEvent>() {
        Some(event) => event.clone(),
        None => panic!("expected a content event, got {:?}", broadcast.event()),
    }
}

/// Asserts nothing was published on `subscription` (events are sent before the response, so none can be late).
fn assert_no_event(subscription: &mut Subscription, after: &str) {
    match subscription.try_recv() {
        Ok(None) => {}
        Ok(Some(broadcast)) => panic!("{after} published {:?} on {}", broadcast.event(), broadcast.topic),
        Err(error) => panic!("subscription to {} failed: {error:?}", subscription.topic()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    ListEntities,
    CreateEntity,
    ShowEntity,
    UpdateEntity,
    DeleteEntity,
    ListRecords,
    CreateRecord,
    ShowRecord,
    UpdateRecord,
    DeleteRecord,
    ListTrash,
    RestoreRecord,
    PurgeRecord,
}

#[derive(Clone, Copy, Debug)]
enum Caller {
    Admin,
    Editor,
    Viewer,
    NoToken,
    Garbage,
}

const CALLERS: [Caller; 5] = [Caller::Admin, Caller::Editor, Caller::Viewer, Caller::NoToken, Caller::Garbage];

/// Expected status of each route for admin, editor, viewer, no token and a garbage token.
const PERMISSIONS: [(Route, [u16; 5]); 13] = [
    (Route::ListEntities, [200, 200, 200, 401, 401]),
    (Route::CreateEntity, [201, 403, 403, 401, 401]),
    (Route::ShowEntity, [200, 200, 200, 401, 401]),
    (Route::UpdateEntity, [200, 403, 403, 401, 401]),
    (Route::DeleteEntity, [204, 403, 403, 401, 401]),
    (Route::ListRecords, [200, 200, 200, 401, 401]),
    (Route::CreateRecord, [201, 201, 403, 401, 401]),
    (Route::ShowRecord, [200, 200, 200, 401, 401]),
    (Route::UpdateRecord, [200, 200, 403, 401, 401]),
    (Route::DeleteRecord, [204, 204, 403, 401, 401]),
    (Route::ListTrash, [200, 200, 200, 401, 401]),
    (Route::RestoreRecord, [200, 200, 403, 401, 401]),
    (Route::PurgeRecord, [204, 403, 403, 401, 401]),
];

impl Fixture {
    fn token_of(&self, caller: Caller) -> Option<String> {
        match caller {
            Caller::Admin => Some(self.admin.clone()),
            Caller::Editor => Some(self.editor.clone()),
            Caller::Viewer => Some(self.viewer.clone()),
            Caller::NoToken => None,
            Caller::Garbage => Some("lb1.garbage.not-a-signature".to_owned()),
        }
    }

    /// The request `caller` sends to `route`; write routes get a target of their own (and the current
    /// lock_version), so every caller's request would succeed if its role allowed it.
    async fn prepare(&self, route: Route, caller: Caller) -> (Method, String, Option<Value>) {
        let tag = format!("{caller:?}").to_lowercase();
        let records = "/api/entities/article/records";
        match route {
            Route::ListEntities => (Method::GET, "/api/entities".into(), None),
            Route::CreateEntity => {
                let body =
                    json!({"name": format!("made_by_{tag}"), "display_name": "Made", "display_name_plural": "Mades"});
                (Method::POST, "/api/entities".into(), Some(body))
            }
            Route::ShowEntity => (Method::GET, "/api/entities/article".into(), None),
            Route::UpdateEntity => {
                let mut body = serde_json::to_value(article_input()).unwrap();
                body["display_name"] = json!(format!("Article by {tag}"));
                body["lock_version"] = json!(self.current_article().await.lock_version);
                (Method::PUT, "/api/entities/article".into(), Some(body))
            }
            Route::DeleteEntity => {
                let input = EntityInput { name: Some(format!("doomed_{tag}")), ..article_input() };
                self.app.state.content.create_entity(&input, None).await.expect("a doomed entity");
                (Method::DELETE, format!("/api/entities/doomed_{tag}"), None)
            }
            Route::ListRecords => (Method::GET, records.into(), None),
            Route::CreateRecord => (
                Method::POST,
                records.into(),
                Some(json!({"title": format!("By {tag}"), "data": {"category": "guide"}})),
            ),
            Route::ShowRecord => (Method::GET, format!("{records}/{}", self.record.id), None),
            Route::UpdateRecord => {
                let version = self.current_record(self.record.id).await.lock_version;
                let body =
                    json!({"title": format!("Edited by {tag}"), "data": {"category": "news"}, "lock_version": version});
                (Method::PUT, format!("{records}/{}", self.record.id), Some(body))
            }
            Route::DeleteRecord => {
                let doomed = self.app.state.content.create_record(&self.article, &record_input(&tag), None).await;
                (Method::DELETE, format!("{records}/{}", doomed.expect("a doomed record").id), None)
            }
            Route::ListTrash => (Method::GET, "/api/entities/article/trash".into(), None),
            Route::RestoreRecord => {
                let content = &self.app.state.content;
                let trashed =
                    content.create_record(&self.article, &record_input(&format!("trashed {tag}")), None).await;
                let id = trashed.expect("a record").id;
                content.delete_record(&self.article, id, None, None).await.expect("moved to the trash");
                (Method::POST, format!("{records}/{id}/restore"), None)
            }
            Route::PurgeRecord => {
                let content = &self.app.state.content;
                let doomed = content.create_record(&self.article, &record_input(&format!("purged {tag}")), None).await;
                (Method::DELETE, format!("{records}/{}?purge=true", doomed.expect("a doomed record").id), None)
            }
        }
    }
}

/// Every route answers admin, editor, viewer, no token and a garbage token as the permissions table says: viewers
/// read but may not write, editors write records but not entities, no valid token is 401; refused writes change
/// nothing and allowed writes do.
#[tokio::test]
async fn every_route_answers_each_role_as_its_permissions_say() {
    let fixture = Fixture::new().await;
    let mut failures = Vec::new();
    for (route, statuses) in PERMISSIONS {
        for (caller, expected) in CALLERS.into_iter().zip(statuses) {
            let (method, uri, body) = fixture.prepare(route, caller).await;
            let is_write = method != Method::GET;
            let before = fixture.snapshot().await;
            let token = fixture.token_of(caller);
            let reply = fixture.app.send(request(method.clone(), &uri, token.as_deref(), body.as_ref())).await;
            let after = fixture.snapshot().await;

            if reply.status.as_u16() != expected {
                failures.push(format!(
                    "{route:?} as {caller:?}: {method} {uri} gave {} (expected {expected}): {}",
                    reply.status,
                    reply.text()
                ));
                continue;
            }
            match expected {
                401 => assert_eq!(reply.json()["error"], "unauthorized", "{route:?} as {caller:?}"),
                403 => assert_eq!(reply.json()["error"], "forbidden", "{route:?} as {caller:?}"),
                204 => assert!(reply.body.is_empty()),
                _ => assert!(reply.json().get("error").is_none(), "{route:?} as {caller:?}: {}", reply.text()),
            }
            let allowed_write = is_write && expected < 300;
            if allowed_write {
                assert_ne!(before, after, "{route:?} as {caller:?} was allowed but changed nothing");
            } else {
                assert_eq!(before, after, "{route:?} as {caller:?} was refused or read-only but changed the store");
            }
        }
    }
    assert!(failures.is_empty(), "permission table mismatches:\n{}", failures.join("\n"));

    // Reads return the data, not just a status.
    let listed = fixture.app.send(request(Method::GET, "/api/entities", Some(&fixture.viewer), None)).await.json();
    let names: Vec<&str> = listed["entities"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"article") && names.contains(&"made_by_admin"), "{names:?}");
    assert!(!names.contains(&"made_by_editor") && !names.contains(&"doomed_admin") && names.contains(&"doomed_editor"));
}

/// A token that expired or was signed with another key is refused with 401, and a valid one names its user.
#[tokio::test]
async fn expired_and_foreign_tokens_are_refused() {
    let app = TestApp::new().await;
    let admin = app.user(ADMIN.0, ADMIN.1, Role::Admin).await;
    let expired = app.state.signer.sign(admin.id, admin.token_generation, 1, now_ms() - 1);
    let foreign = livebaton_admin::accounts::TokenSigner::new("another-secret-key-base-of-32-chars!!").sign(
        admin.id,
        admin.token_generation,
        1,
        now_ms() + 60_000,
    );
    let valid = app.state.people.issue_token(&admin, "test").await.unwrap().0;

    for (what, token) in [("expired", &expired), ("foreign", &foreign)] {
        let reply = app.send(request(Method::GET, "/api/entities", Some(token), None)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what} token");
        assert_eq!(reply.json()["error"], "unauthorized");
    }
    let reply = app.send(request(Method::GET, "/api/entities", Some(&valid), None)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Several invalid fields are reported together as 422 JSON with a message per field, and nothing is stored.
#[tokio::test]
async fn invalid_fields_are_reported_together_as_422() {
    let fixture = Fixture::new().await;
    let before = fixture.snapshot().await;

    let bad_entity = json!({
        "name": "1bad",
        "display_name": "",
        "display_name_plural": "X",
        "status": "live",
        "fields_definition": [{"type": "nope", "key": "Bad Key", "label": ""}]
    });
    let reply = fixture.app.send(request(Method::POST, "/api/entities", Some(&fixture.admin), Some(&bad_entity))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["error"], "invalid");
    let fields = body["fields"].as_object().expect("fields by name");
    for field in [
        "name",
        "display_name",
        "display_name_plural",
        "status",
        "fields_definition[0].type",
        "fields_definition[0].key",
        "fields_definition[0].label",
    ] {
        let messages =
            fields.get(field).and_then(Value::as_array).unwrap_or_else(|| panic!("no message for {field}: {body}"));
        assert!(messages.iter().all(|m| m.as_str().is_some_and(|m| !m.is_empty())), "{field}: {messages:?}");
    }
    assert_eq!(fields["display_name"][0], "can't be blank");

    let bad_record = json!({
        "title": "   ",
        "slug": "Not A Slug",
        "data": {"category": "gossip", "published_on": "2026-02-30", "colour": "red"}
    });
    let uri = "/api/entities/article/records";
    let reply = fixture.app.send(request(Method::POST, uri, Some(&fixture.editor), Some(&bad_record))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    let body = reply.json();
    let fields = body["fields"].as_object().expect("fields by name");
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["data.category", "data.colour", "data.published_on", "slug", "title"], "{body}");
    assert_eq!(fields["title"][0], "can't be blank");
    assert_eq!(fields["data.category"][0], "must be one of: news, guide");
    assert_eq!(fields["data.published_on"][0], "is not a real calendar date");

    // A missing required field on update is reported the same way.
    let path = format!("{uri}/{}", fixture.record.id);
    let update = json!({"title": "Still fine", "data": {}, "lock_version": 1});
    let reply = fixture.app.send(request(Method::PUT, &path, Some(&fixture.editor), Some(&update))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.json()["fields"]["data.category"][0], "can't be blank");

    assert_eq!(fixture.snapshot().await, before, "nothing half-written reaches the database");
}

/// A taken entity name or record slug is a 422 on that field, not a server error.
#[tokio::test]
async fn taken_names_and_slugs_are_422_on_their_field() {
    let fixture = Fixture::new().await;
    let reply = fixture
        .app
        .send(request(
            Method::POST,
            "/api/entities",
            Some(&fixture.admin),
            Some(&serde_json::to_value(article_input()).unwrap()),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["fields"]["name"][0], "has already been taken");

    let uri = "/api/entities/article/records";
    let taken = json!({"title": "Another", "slug": fixture.record.slug, "data": {"category": "news"}});
    let reply = fixture.app.send(request(Method::POST, uri, Some(&fixture.editor), Some(&taken))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["fields"]["slug"][0], "has already been taken");
}

/// A PUT without `lock_version` is refused with 422 on `lock_version`, for entities and records, and changes nothing.
#[tokio::test]
async fn an_update_without_lock_version_is_422() {
    let fixture = Fixture::new().await;
    let before = fixture.snapshot().await;

    let entity = serde_json::to_value(article_input()).unwrap();
    let reply =
        fixture.app.send(request(Method::PUT, "/api/entities/article", Some(&fixture.admin), Some(&entity))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert!(reply.json()["fields"]["lock_version"][0].as_str().unwrap().starts_with("is required"));

    let uri = format!("/api/entities/article/records/{}", fixture.record.id);
    let record = json!({"title": "No version", "data": {"category": "news"}});
    let reply = fixture.app.send(request(Method::PUT, &uri, Some(&fixture.editor), Some(&record))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["error"], "invalid");
    assert!(reply.json()["fields"]["lock_version"].is_array());

    assert_eq!(fixture.snapshot().await, before);
}

/// A PUT or DELETE based on a stale `lock_version` is 409 with the current row in the body; the row stays as it was.
#[tokio::test]
async fn a_stale_write_is_409_with_the_current_row() {
    let fixture = Fixture::new().await;
    let uri = format!("/api/entities/article/records/{}", fixture.record.id);

    let first = json!({"title": "Saved first", "data": {"category": "guide"}, "lock_version": 1});
    let reply = fixture.app.send(request(Method::PUT, &uri, Some(&fixture.editor), Some(&first))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["lock_version"], 2);
    assert_eq!(reply.json()["slug"], "first-post", "the slug is kept when none is sent");

    let stale = json!({"title": "Saved second", "data": {"category": "news"}, "lock_version": 1});
    let reply = fixture.app.send(request(Method::PUT, &uri, Some(&fixture.admin), Some(&stale))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["error"], "conflict");
    assert_eq!(body["current"]["id"], fixture.record.id);
    assert_eq!(body["current"]["title"], "Saved first");
    assert_eq!(body["current"]["lock_version"], 2);
    assert_eq!(body["current"]["data"]["category"], "guide");

    let reply =
        fixture.app.send(request(Method::DELETE, &format!("{uri}?lock_version=1"), Some(&fixture.editor), None)).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
    assert_eq!(reply.json()["current"]["lock_version"], 2);
    assert_eq!(fixture.current_record(fixture.record.id).await.title, "Saved first");

    let mut entity = serde_json::to_value(article_input()).unwrap();
    entity["display_name"] = json!("Post");
    entity["lock_version"] = json!(1);
    let reply =
        fixture.app.send(request(Method::PUT, "/api/entities/article", Some(&fixture.admin), Some(&entity))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    entity["display_name"] = json!("Stale");
    let reply =
        fixture.app.send(request(Method::PUT, "/api/entities/article", Some(&fixture.admin), Some(&entity))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
    assert_eq!(reply.json()["current"]["display_name"], "Post");
    assert_eq!(reply.json()["current"]["lock_version"], 2);
    assert_eq!(fixture.current_article().await.display_name, "Post");

    let reply =
        fixture.app.send(request(Method::DELETE, &format!("{uri}?lock_version=2"), Some(&fixture.editor), None)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "a delete at the current version goes through");
}

/// Unknown entities and records are 404 JSON on every route that names one.
#[tokio::test]
async fn unknown_entities_and_records_are_404() {
    let fixture = Fixture::new().await;
    let missing = fixture.record.id + 1000;
    let record = json!({"title": "x", "data": {"category": "news"}, "lock_version": 1});
    let entity = json!({"display_name": "Nope", "display_name_plural": "Nopes", "lock_version": 1});
    let cases = [
        (Method::GET, "/api/entities/nope".to_owned(), None),
        (Method::PUT, "/api/entities/nope".to_owned(), Some(&entity)),
        (Method::DELETE, "/api/entities/nope".to_owned(), None),
        (Method::GET, "/api/entities/nope/records".to_owned(), None),
        (Method::POST, "/api/entities/nope/records".to_owned(), Some(&record)),
        (Method::GET, format!("/api/entities/nope/records/{}", fixture.record.id), None),
        (Method::GET, format!("/api/entities/article/records/{missing}"), None),
        (Method::PUT, format!("/api/entities/article/records/{missing}"), Some(&record)),
        (Method::DELETE, format!("/api/entities/article/records/{missing}"), None),
    ];
    for (method, uri, body) in cases {
        let reply = fixture.app.send(request(method.clone(), &uri, Some(&fixture.admin), body)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {uri}: {}", reply.text());
        assert_eq!(reply.json()["error"], "not_found", "{method} {uri}");
    }
}

/// A body that is not valid JSON is a 400 with a JSON error body, on every route that takes one.
#[tokio::test]
async fn malformed_json_is_a_400_json_error() {
    let fixture = Fixture::new().await;
    let before = fixture.snapshot().await;
    let record_uri = format!("/api/entities/article/records/{}", fixture.record.id);
    let cases = [
        (Method::POST, "/api/tokens", None),
        (Method::POST, "/api/entities", Some(&fixture.admin)),
        (Method::PUT, "/api/entities/article", Some(&fixture.admin)),
        (Method::POST, "/api/entities/article/records", Some(&fixture.editor)),
        (Method::PUT, record_uri.as_str(), Some(&fixture.editor)),
    ];
    for (method, uri, token) in cases {
        for body in [r#"{"title": "#, "not json at all", r#""a string, not an object""#] {
            let reply = fixture.app.send(raw_json(method.clone(), uri, token.map(String::as_str), body)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {uri} with {body:?}: {}", reply.text());
            let json = reply.json();
            assert_eq!(json["error"], "bad_request", "{method} {uri}");
            assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    assert_eq!(fixture.snapshot().await, before);
}

/// Bad path or query values and unknown `/api` routes also answer in JSON, never plain text or an empty body.
#[tokio::test]
async fn every_api_error_is_json() {
    let fixture = Fixture::new().await;
    let token = Some(fixture.admin.as_str());
    let cases = [
        (Method::GET, "/api/entities/article/records/not-a-number", StatusCode::BAD_REQUEST, "bad_request"),
        (Method::DELETE, "/api/entities/article/records/1?lock_version=abc", StatusCode::BAD_REQUEST, "bad_request"),
        (Method::GET, "/api/no-such-route", StatusCode::NOT_FOUND, "not_found"),
        (Method::GET, "/api", StatusCode::NOT_FOUND, "not_found"),
    ];
    for (method, uri, status, error) in cases {
        let reply = fixture.app.send(request(method.clone(), uri, token, None)).await;
        assert_eq!(reply.status, status, "{method} {uri}: {}", reply.text());
        assert_eq!(reply.json()["error"], error, "{method} {uri}");
    }
}

/// Entity writes through the API announce `entity_created`, `entity_updated` and `entity_deleted` on `entities`.
#[tokio::test]
async fn entity_writes_announce_after_commit() {
    let fixture = Fixture::new().await;
    let mut entities = fixture.app.state.content.events().subscribe(ENTITIES);

    let body = json!({"name": "page", "display_name": "Page", "display_name_plural": "Pages"});
    let reply = fixture.app.send(request(Method::POST, "/api/entities", Some(&fixture.admin), Some(&body))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let id = reply.json()["id"].as_i64().expect("the new entity's id");
    assert_eq!(reply.json()["lock_version"], 1);
    assert_eq!(next_event(&mut entities).await, entity_event(Action::Created, id));
    assert!(fixture.app.state.store.find_entity(id).await.unwrap().is_some(), "the event came after the commit");

    let update =
        json!({"name": "page", "display_name": "Web page", "display_name_plural": "Web pages", "lock_version": 1});
    let reply = fixture.app.send(request(Method::PUT, "/api/entities/page", Some(&fixture.admin), Some(&update))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["lock_version"], 2);
    assert_eq!(next_event(&mut entities).await, entity_event(Action::Updated, id));

    let reply = fixture
        .app
        .send(request(Method::DELETE, "/api/entities/page?lock_version=2", Some(&fixture.admin), None))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(next_event(&mut entities).await, entity_event(Action::Deleted, id));
    assert_no_event(&mut entities, "three writes");
}

/// Record writes through the API announce `data_created`, `data_updated` and `data_deleted` on the entity's topic
/// and on all records' topic.
#[tokio::test]
async fn record_writes_announce_after_commit() {
    let fixture = Fixture::new().await;
    let entity_id = fixture.article.id;
    let mut one = fixture.app.state.content.events().subscribe_scoped(ENTITY_DATA, &entity_id.to_string());
    let mut all = fixture.app.state.content.events().subscribe(ENTITY_DATA);
    let uri = "/api/entities/article/records";

    let body = json!({"title": "Hello World", "data": {"category": "news", "published_on": "2026-03-01"}});
    let reply = fixture.app.send(request(Method::POST, uri, Some(&fixture.editor), Some(&body))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let created = reply.json();
    assert_eq!(created["slug"], "hello-world");
    assert_eq!(created["lock_version"], 1);
    let data_id = created["id"].as_i64().unwrap();
    assert_eq!(next_event(&mut one).await, data_event(Action::Created, entity_id, data_id));
    assert_eq!(next_event(&mut all).await, data_event(Action::Created, entity_id, data_id));

    let update = json!({"title": "Hello again", "data": {"category": "guide"}, "lock_version": 1});
    let reply =
        fixture.app.send(request(Method::PUT, &format!("{uri}/{data_id}"), Some(&fixture.editor), Some(&update))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(next_event(&mut one).await, data_event(Action::Updated, entity_id, data_id));
    assert_eq!(next_event(&mut all).await, data_event(Action::Updated, entity_id, data_id));
    let shown = fixture.app.send(request(Method::GET, &format!("{uri}/{data_id}"), Some(&fixture.viewer), None)).await;
    assert_eq!(shown.json()["title"], "Hello again");

    let reply =
        fixture.app.send(request(Method::DELETE, &format!("{uri}/{data_id}"), Some(&fixture.editor), None)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(next_event(&mut one).await, data_event(Action::Deleted, entity_id, data_id));
    assert_eq!(next_event(&mut all).await, data_event(Action::Deleted, entity_id, data_id));
    assert_no_event(&mut one, "three writes");
}

/// `DELETE` moves a record to the trash (announced as `data_deleted`; the trash lists it with who deleted it), a
/// restore brings it back with its id, slug and `lock_version` (announced as `data_created`), and an admin's
/// `?purge=true` removes it for good.
#[tokio::test]
async fn a_deleted_record_can_be_restored_from_the_trash_until_purged() {
    let fixture = Fixture::new().await;
    let entity_id = fixture.article.id;
    let mut events = fixture.app.state.content.events().subscribe_scoped(ENTITY_DATA, &entity_id.to_string());
    let (uri, data_id) = ("/api/entities/article/records", fixture.record.id);
    let before = fixture.current_record(data_id).await;

    let reply =
        fixture.app.send(request(Method::DELETE, &format!("{uri}/{data_id}"), Some(&fixture.editor), None)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(next_event(&mut events).await, data_event(Action::Deleted, entity_id, data_id));
    let shown = fixture.app.send(request(Method::GET, &format!("{uri}/{data_id}"), Some(&fixture.viewer), None)).await;
    assert_eq!(shown.status, StatusCode::NOT_FOUND);
    let trash =
        fixture.app.send(request(Method::GET, "/api/entities/article/trash", Some(&fixture.viewer), None)).await;
    let trash = trash.json();
    assert_eq!(trash["records"].as_array().map(Vec::len), Some(1), "{trash}");
    assert_eq!(trash["records"][0]["id"], data_id);
    let editor = fixture.app.state.store.find_user_by_email(EDITOR.0).await.unwrap().expect("the editor");
    assert_eq!(trash["records"][0]["deleted_by"], editor.id);
    assert!(trash["records"][0]["deleted_at"].as_i64().is_some(), "{trash}");

    let restore = format!("{uri}/{data_id}/restore");
    let reply = fixture.app.send(request(Method::POST, &restore, Some(&fixture.editor), None)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let restored = reply.json();
    assert_eq!((restored["id"].as_i64(), restored["slug"].as_str()), (Some(data_id), Some(before.slug.as_str())));
    assert_eq!(restored["lock_version"], before.lock_version);
    assert!(restored.get("deleted_at").is_none(), "a live record has no deleted_at: {restored}");
    assert_eq!(next_event(&mut events).await, data_event(Action::Created, entity_id, data_id));
    assert_eq!(fixture.current_record(data_id).await, before, "exactly as it was");
    let again = fixture.app.send(request(Method::POST, &restore, Some(&fixture.editor), None)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "only a trashed record is restored: {}", again.text());

    let purge = format!("{uri}/{data_id}?purge=true");
    let refused = fixture.app.send(request(Method::DELETE, &purge, Some(&fixture.editor), None)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "purging is for admins");
    let reply = fixture.app.send(request(Method::DELETE, &purge, Some(&fixture.admin), None)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(next_event(&mut events).await, data_event(Action::Deleted, entity_id, data_id));
    let gone = fixture.app.send(request(Method::POST, &restore, Some(&fixture.editor), None)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "a purged record cannot be restored");
    assert_no_event(&mut events, "after the purge");
}

/// Writes that fail (422, 409, 403, 404) publish nothing on any content topic.
#[tokio::test]
async fn failed_writes_publish_nothing() {
    let fixture = Fixture::new().await;
    let events = fixture.app.state.content.events();
    let (mut entities, mut one, mut all) = (
        events.subscribe(ENTITIES),
        events.subscribe_scoped(ENTITY_DATA, &fixture.article.id.to_string()),
        events.subscribe(ENTITY_DATA),
    );
    let records = "/api/entities/article/records";
    let record = format!("{records}/{}", fixture.record.id);
    let mut article = serde_json::to_value(article_input()).unwrap();
    article["lock_version"] = json!(99);

    let (admin, editor, viewer) =
        (Some(fixture.admin.as_str()), Some(fixture.editor.as_str()), Some(fixture.viewer.as_str()));
    let stale_record = json!({"title": "x", "data": {"category": "news"}, "lock_version": 99});
    let valid_record = json!({"title": "x", "data": {"category": "news"}});
    let failures = [
        (
            "invalid record",
            request(Method::POST, records, editor, Some(&json!({"title": ""}))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "invalid entity",
            request(Method::POST, "/api/entities", admin, Some(&json!({"display_name": ""}))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("stale record update", request(Method::PUT, &record, editor, Some(&stale_record)), StatusCode::CONFLICT),
        (
            "stale record delete",
            request(Method::DELETE, &format!("{record}?lock_version=99"), editor, None),
            StatusCode::CONFLICT,
        ),
        (
            "stale entity update",
            request(Method::PUT, "/api/entities/article", admin, Some(&article)),
            StatusCode::CONFLICT,
        ),
        (
            "stale entity delete",
            request(Method::DELETE, "/api/entities/article?lock_version=99", admin, None),
            StatusCode::CONFLICT,
        ),
        ("forbidden record write", request(Method::POST, records, viewer, Some(&valid_record)), StatusCode::FORBIDDEN),
        (
            "missing record",
            request(Method::DELETE, &format!("{records}/{}", fixture.record.id + 1000), editor, None),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, request, status) in failures {
        let reply = fixture.app.send(request).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text());
        assert_no_event(&mut entities, what);
        assert_no_event(&mut one, what);
        assert_no_event(&mut all, what);
    }

    // The subscriptions do work: a successful write right after is heard.
    let body = json!({"title": "Control", "data": {"category": "news"}});
    let reply = fixture.app.send(request(Method::POST, records, Some(&fixture.editor), Some(&body))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(next_event(&mut one).await.name(), "data_created");
}

/// After the per-account limit of wrong passwords from one address, `POST /api/tokens` answers 429 with Retry-After
/// for that account from that address (even with the right password), while the account's owner at another address,
/// and another account, still sign in: someone else's guesses never lock the owner out.
#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_per_account() {
    let throttle =
        ThrottleConfig { per_account: 3, per_address: 100, window: Duration::from_secs(600), max_keys: 1000 };
    let app = TestApp::with_throttle(throttle).await;
    tokio::join!(app.user(ADMIN.0, ADMIN.1, Role::Admin), app.user(EDITOR.0, EDITOR.1, Role::Editor));

    for attempt in 1..=3 {
        let reply = sign_in(&app, "10.0.0.1:5000", (ADMIN.0, "wrong-password")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}: {}", reply.text());
    }
    let reply = sign_in(&app, "10.0.0.1:5000", (ADMIN.0, "wrong-password")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
    let retry_after: u64 = reply.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=600).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(reply.json()["error"], "throttled");

    let reply = sign_in(&app, "10.0.0.1:5000", ADMIN).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "the right password does not bypass the throttle");
    let reply = sign_in(&app, "10.0.0.1:5000", (&ADMIN.0.to_uppercase(), ADMIN.1)).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "in any case of the email");
    let reply = sign_in(&app, "10.9.9.9:5000", ADMIN).await;
    assert_eq!(reply.status, StatusCode::OK, "the owner at another address is let in: {}", reply.text());

    let reply = sign_in(&app, "10.0.0.2:5000", EDITOR).await;
    assert_eq!(reply.status, StatusCode::OK, "another account from another address: {}", reply.text());
    assert!(reply.json()["token"].as_str().is_some_and(|token| token.starts_with("lb1.")));
}

/// An unknown email and a wrong password get the same 401 body, so responses do not reveal which accounts exist.
#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::new().await;
    app.user(ADMIN.0, ADMIN.1, Role::Admin).await;

    let unknown = sign_in(&app, support::CLIENT, ("nobody@example.com", ADMIN.1)).await;
    let wrong = sign_in(&app, support::CLIENT, (ADMIN.0, "not-the-password")).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body, wrong.body, "{} vs {}", unknown.text(), wrong.text());
    assert_eq!(wrong.json()["error"], "unauthorized");
    assert!(wrong.json().get("token").is_none());

    let right = sign_in(&app, support::CLIENT, ("  Admin@Example.com ", ADMIN.1)).await;
    assert_eq!(right.status, StatusCode::OK, "emails are case-insensitive: {}", right.text());
}
