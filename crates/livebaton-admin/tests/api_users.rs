//! People through the JSON API (mirrors `src/api/users.rs`): the role matrix of every route, invitations and their
//! links, role changes and deactivation taking effect at once (old tokens refused), the last admin, the audit trail,
//! and one's own API tokens revoked one by one. In-process, over a fresh SQLite file per test.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use livebaton_admin::accounts::Role;
use serde_json::{Value, json};
use support::{Reply, TestApp};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");
const EDITOR: (&str, &str) = ("editor@example.com", "editor-password");
const VIEWER: (&str, &str) = ("viewer@example.com", "viewer-password");

fn request(method: Method, uri: &str, token: &str, body: Option<&Value>) -> Request<Body> {
    let builder = Request::builder().method(method).uri(uri).header("host", "cms.example.com");
    let builder = builder.header("authorization", format!("Bearer {token}"));
    match body {
        Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("a valid request")
}

async fn sign_in(app: &TestApp, (email, password): (&str, &str)) -> Reply {
    let body = json!({"email": email, "password": password, "name": "test"});
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/tokens")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request");
    app.send(request).await
}

async fn token(app: &TestApp, credentials: (&str, &str)) -> String {
    let reply = sign_in(app, credentials).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["token"].as_str().expect("a token").to_owned()
}

struct People {
    app: TestApp,
    admin: String,
    editor: String,
    viewer: String,
    editor_id: i64,
    admin_id: i64,
}

async fn people() -> People {
    let app = TestApp::new().await;
    let admin = app.user(ADMIN.0, ADMIN.1, Role::Admin).await;
    let editor = app.user(EDITOR.0, EDITOR.1, Role::Editor).await;
    app.user(VIEWER.0, VIEWER.1, Role::Viewer).await;
    let (admin_token, editor_token, viewer_token) =
        (token(&app, ADMIN).await, token(&app, EDITOR).await, token(&app, VIEWER).await);
    People {
        app,
        admin: admin_token,
        editor: editor_token,
        viewer: viewer_token,
        editor_id: editor.id,
        admin_id: admin.id,
    }
}

/// Every people route answers admins and refuses editors and viewers with 403 (and changes nothing for them).
#[tokio::test]
async fn only_admins_manage_people() {
    let p = people().await;
    let routes = [
        (Method::GET, "/api/users".to_owned(), None),
        (Method::PATCH, format!("/api/users/{}", p.editor_id), Some(json!({"name": "Eddie"}))),
        (Method::POST, "/api/invitations".to_owned(), Some(json!({"email": "new@example.com", "role": "viewer"}))),
        (Method::GET, "/api/invitations".to_owned(), None),
        (Method::POST, format!("/api/users/{}/password_reset", p.editor_id), None),
        (Method::GET, "/api/audit".to_owned(), None),
        (Method::DELETE, format!("/api/users/{}", p.editor_id), None),
    ];
    for (method, uri, body) in &routes {
        for (who, token) in [("editor", &p.editor), ("viewer", &p.viewer)] {
            let reply = p.app.send(request(method.clone(), uri, token, body.as_ref())).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{who} {method} {uri}: {}", reply.text());
        }
    }
    let users = p.app.send(request(Method::GET, "/api/users", &p.admin, None)).await;
    assert_eq!(users.status, StatusCode::OK);
    let listed = users.json();
    let editor = listed["users"].as_array().unwrap().iter().find(|user| user["email"] == EDITOR.0).unwrap().clone();
    for key in ["id", "email", "name", "role", "active", "last_seen_at"] {
        assert!(editor.get(key).is_some(), "{key} in {editor}");
    }
    assert_eq!((editor["role"].as_str(), editor["active"].as_bool()), (Some("editor"), Some(true)));
    for (method, uri, body) in routes {
        let reply = p.app.send(request(method.clone(), &uri, &p.admin, body.as_ref())).await;
        assert!(reply.status.is_success(), "admin {method} {uri}: {} {}", reply.status, reply.text());
    }
}

/// An invitation gives a one-time link on this site; it is listed while pending and can be revoked; a second
/// invitation to the same address replaces the first; an address with an account cannot be invited.
#[tokio::test]
async fn invitations_are_listed_replaced_and_revoked() {
    let p = people().await;
    let invite = |email: &str, role: &str| json!({"email": email, "role": role, "name": "Nia"});
    let reply = p
        .app
        .send(request(Method::POST, "/api/invitations", &p.admin, Some(&invite("Nia@Example.com", "editor"))))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let first = reply.json();
    let url = first["url"].as_str().unwrap();
    assert!(url.starts_with("http://cms.example.com/account/link/"), "{url}");
    assert!(url.len() > "http://cms.example.com/account/link/".len() + 40, "an unguessable token: {url}");
    assert!(first["expires_at"].as_i64().unwrap() > livebaton_admin::storage::now_ms());

    let again = p
        .app
        .send(request(Method::POST, "/api/invitations", &p.admin, Some(&invite("nia@example.com", "viewer"))))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    let pending = p.app.send(request(Method::GET, "/api/invitations", &p.admin, None)).await.json();
    let pending = pending["invitations"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 1, "the second replaced the first: {pending:?}");
    assert_eq!((pending[0]["email"].as_str(), pending[0]["role"].as_str()), (Some("nia@example.com"), Some("viewer")));
    assert!(pending[0].get("url").is_none() && pending[0].get("token_hash").is_none(), "never the token");

    let id = pending[0]["id"].as_i64().unwrap();
    let revoked = p.app.send(request(Method::DELETE, &format!("/api/invitations/{id}"), &p.admin, None)).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let twice = p.app.send(request(Method::DELETE, &format!("/api/invitations/{id}"), &p.admin, None)).await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
    assert_eq!(
        p.app.send(request(Method::GET, "/api/invitations", &p.admin, None)).await.json()["invitations"],
        json!([])
    );

    for (body, field) in [
        (invite(EDITOR.0, "viewer"), "email"),
        (invite("not an address", "viewer"), "email"),
        (invite("x@example.com", "owner"), "role"),
    ] {
        let reply = p.app.send(request(Method::POST, "/api/invitations", &p.admin, Some(&body))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.text());
        assert!(reply.json()["fields"].get(field).is_some(), "{}", reply.text());
    }
}

/// A role change and a deactivation take effect at once: the person's old token is refused; deactivated, they cannot
/// sign in; each change is in the audit trail, newest first, with who did it.
#[tokio::test]
async fn role_changes_and_deactivation_take_effect_at_once_and_are_audited() {
    let p = people().await;
    let user = format!("/api/users/{}", p.editor_id);
    let demoted = p.app.send(request(Method::PATCH, &user, &p.admin, Some(&json!({"role": "viewer"})))).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());
    assert_eq!(demoted.json()["role"], "viewer");
    let old = p.app.send(request(Method::GET, "/api/entities", &p.editor, None)).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "the token from before the demotion is refused");

    let fresh = token(&p.app, EDITOR).await;
    let off = p.app.send(request(Method::PATCH, &user, &p.admin, Some(&json!({"active": false})))).await;
    assert_eq!((off.status, off.json()["active"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(p.app.send(request(Method::GET, "/api/entities", &fresh, None)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&p.app, EDITOR).await.status, StatusCode::UNAUTHORIZED, "a deactivated account cannot sign in");

    let on = p.app.send(request(Method::PATCH, &user, &p.admin, Some(&json!({"active": true})))).await;
    assert_eq!(on.json()["active"], true);
    assert_eq!(sign_in(&p.app, EDITOR).await.status, StatusCode::OK);

    let trail = p.app.send(request(Method::GET, "/api/audit?limit=2", &p.admin, None)).await.json();
    let entries = trail["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|entry| entry["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["reactivated", "deactivated"]);
    assert_eq!(
        (entries[0]["actor_id"].as_i64(), entries[0]["subject_id"].as_i64()),
        (Some(p.admin_id), Some(p.editor_id))
    );
    let next = trail["next"].as_i64().expect("a next page");
    let older =
        p.app.send(request(Method::GET, &format!("/api/audit?before={next}&limit=2"), &p.admin, None)).await.json();
    let older = &older["entries"][0];
    assert_eq!(
        (older["action"].as_str(), &older["detail"]),
        (Some("role_changed"), &json!({"from": "editor", "to": "viewer"}))
    );
    let bad = p.app.send(request(Method::GET, "/api/audit?limit=0", &p.admin, None)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The last active admin can be neither demoted, deactivated nor deleted (409 last_admin), and an admin demoted a
/// moment ago can no longer manage anyone, even with a token issued before.
#[tokio::test]
async fn the_last_admin_stays_and_a_demoted_admin_manages_nobody() {
    let p = people().await;
    let me = format!("/api/users/{}", p.admin_id);
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "editor"}))),
        (Method::PATCH, Some(json!({"active": false}))),
        (Method::DELETE, None),
    ] {
        let reply = p.app.send(request(method, &me, &p.admin, body.as_ref())).await;
        assert_eq!(
            (reply.status, reply.json()["error"].as_str()),
            (StatusCode::CONFLICT, Some("last_admin")),
            "{}",
            reply.text()
        );
    }
    // A second admin demotes the first; the first's token is refused from then on.
    let promoted = p
        .app
        .send(request(Method::PATCH, &format!("/api/users/{}", p.editor_id), &p.admin, Some(&json!({"role": "admin"}))))
        .await;
    assert_eq!(promoted.status, StatusCode::OK);
    let second = token(&p.app, EDITOR).await;
    let demoted = p.app.send(request(Method::PATCH, &me, &second, Some(&json!({"role": "viewer"})))).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());
    let refused = p.app.send(request(Method::GET, "/api/users", &p.admin, None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

/// One's tokens are listed with their names and revoked one by one (only one's own): the revoked one is refused,
/// the other still works.
#[tokio::test]
async fn own_tokens_are_listed_and_revoked_one_by_one() {
    let p = people().await;
    let second = token(&p.app, EDITOR).await;
    let listed = p.app.send(request(Method::GET, "/api/tokens", &p.editor, None)).await.json();
    let tokens = listed["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert_eq!(tokens[0]["name"], "test");
    let first_id = tokens[1]["id"].as_i64().unwrap();
    let foreign = p.app.send(request(Method::DELETE, &format!("/api/tokens/{first_id}"), &p.viewer, None)).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another user's token is not theirs to revoke");
    let revoked = p.app.send(request(Method::DELETE, &format!("/api/tokens/{first_id}"), &second, None)).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        p.app.send(request(Method::GET, "/api/entities", &p.editor, None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(p.app.send(request(Method::GET, "/api/entities", &second, None)).await.status, StatusCode::OK);
}
