//! Links by mail (mirrors `src/accounts/mail.rs` and `src/pages/forgot.rs`), with the in-memory mailer in place of an
//! SMTP server: an invitation and an admin's reset link are mailed as links on the public URL (never the request's
//! host) that work; "forgot password" exists only with mail, answers the same for every address, mails only existing
//! active accounts, and is throttled.

mod support;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use livebaton_admin::accounts::{MemoryMailer, Role, ThrottleConfig};
use livebaton_admin::pages::session::CSRF_COOKIE;
use serde_json::json;
use support::{TestApp, form_post, get, hidden_csrf_token};

const PUBLIC: &str = "https://cms.example.com";

async fn with_mail(app: &TestApp) -> MemoryMailer {
    let mailer = MemoryMailer::new();
    assert!(app.state.people.set_mail(Arc::new(mailer.clone()), PUBLIC));
    mailer
}

/// The link in a mail's body.
fn link_in(body: &str) -> String {
    let start = body.find(PUBLIC).unwrap_or_else(|| panic!("no link on {PUBLIC} in {body}"));
    body[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn invitations_and_resets_are_mailed_as_links_on_the_public_url() {
    let app = TestApp::new().await;
    let admin = app.user("admin@example.com", "admin-password", Role::Admin).await;
    let mailer = with_mail(&app).await;
    let token = app.state.people.issue_token(&admin, "t").await.unwrap().0;
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/invitations")
        .header("host", "attacker.example")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({"email": "nia@example.com", "role": "editor"}).to_string()))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["mailed"], true);
    let sent = mailer.sent();
    assert_eq!((sent.len(), sent[0].to.as_str()), (1, "nia@example.com"));
    assert!(sent[0].body.contains("invites you to livebaton as an editor"), "{}", sent[0].body);
    let link = link_in(&sent[0].body);
    assert!(!sent[0].body.contains("attacker.example"), "the mailed link never takes the request's host");
    let page = app.send(get(link.strip_prefix(PUBLIC).unwrap(), &[])).await;
    assert_eq!(page.status, StatusCode::OK, "the mailed link opens the form");

    let alice = app.user("alice@example.com", "alice password 1", Role::Editor).await;
    let issued = app.state.people.reset_link(admin.id, alice.id).await.unwrap();
    assert!(issued.mailed);
    assert_eq!(mailer.sent()[1].to, "alice@example.com");
}

#[tokio::test]
async fn forgot_password_exists_only_with_mail_and_never_tells_who_has_an_account() {
    let app =
        TestApp::with_throttle(ThrottleConfig { per_account: 3, per_address: 10, ..ThrottleConfig::default() }).await;
    app.user("alice@example.com", "alice password 1", Role::Editor).await;
    assert_eq!(app.send(get("/admin/forgot", &[])).await.status, StatusCode::NOT_FOUND, "no mail, no page");
    assert!(!app.send(get("/admin/login", &[])).await.text().contains("Forgot your password?"));

    let mailer = with_mail(&app).await;
    assert!(app.send(get("/admin/login", &[])).await.text().contains("Forgot your password?"));
    let page = app.send(get("/admin/forgot", &[])).await;
    let (cookie, csrf) = (page.cookie(CSRF_COOKIE).unwrap(), hidden_csrf_token(&page.text()));
    let ask = |email: &'static str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let app = &app;
        async move {
            let fields = [("_csrf_token", csrf.as_str()), ("email", email)];
            app.send(form_post("/admin/forgot", &[(CSRF_COOKIE, &cookie)], &fields, &[])).await
        }
    };
    let known = ask("alice@example.com").await;
    let unknown = ask("nobody@example.com").await;
    assert_eq!((known.status, unknown.status), (StatusCode::OK, StatusCode::OK));
    let same = |text: String, email: &str| text.replace(email, "EMAIL");
    assert_eq!(
        same(known.text(), "alice@example.com"),
        same(unknown.text(), "nobody@example.com"),
        "one answer for both"
    );

    livebaton_testkit::eventually("the link mailed to Alice", || mailer.sent().len() == 1).await;
    let mail = &mailer.sent()[0];
    assert_eq!(mail.to, "alice@example.com");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(mailer.sent().len(), 1, "nothing to the unknown address");
    let audit = app.state.store.audit_trail(None, 5).await.unwrap();
    assert_eq!((audit[0].action.as_str(), audit[0].actor_id), ("reset_requested", None));

    // The same address again and again: throttled.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(ask("alice@example.com").await.status);
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}
