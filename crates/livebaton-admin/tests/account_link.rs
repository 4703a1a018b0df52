//! The one-time link page in-process (mirrors `src/pages/account_link.rs`): an invitation's link sets the password,
//! signs the invitee in and is then used up; a reset link replaces the password and ends the old sessions; a used,
//! withdrawn, expired or unknown link gets a page that says so; the form needs its CSRF token and this site's origin,
//! two different passwords or a short one do not use the link up, and guessing links is throttled.

mod support;

use axum::http::StatusCode;
use livebaton_admin::accounts::{Role, ThrottleConfig};
use livebaton_admin::pages::session::{CSRF_COOKIE, SESSION_COOKIE};
use support::{Reply, TestApp, form_post, get, hidden_csrf_token};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// The link's path and the form page's CSRF cookie and token.
async fn open_link(app: &TestApp, path: &str) -> (Reply, String, String) {
    let page = app.send(get(path, &[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let cookie = page.cookie(CSRF_COOKIE).expect("the form sets its CSRF cookie");
    let token = hidden_csrf_token(&page.text());
    (page, cookie, token)
}

async fn post(app: &TestApp, path: &str, cookie: &str, token: &str, password: &str, confirm: &str) -> Reply {
    let fields = [("_csrf_token", token), ("password", password), ("confirm", confirm)];
    app.send(form_post(path, &[(CSRF_COOKIE, cookie)], &fields, &[])).await
}

async fn admin_app() -> (TestApp, i64) {
    let app = TestApp::new().await;
    let admin = app.user(ADMIN.0, ADMIN.1, Role::Admin).await;
    (app, admin.id)
}

/// The invitee chooses a password, is signed in and lands in the admin; the account has the invited role; the link
/// is used up and says so; the new password signs in.
#[tokio::test]
async fn an_invitation_link_creates_the_account_once_and_signs_the_invitee_in() {
    let (app, admin) = admin_app().await;
    let issued = app.state.people.invite(admin, "nia@example.com", Role::Editor, Some("Nia")).await.unwrap();
    let (page, cookie, token) = open_link(&app, &issued.path).await;
    let html = page.text();
    assert!(html.contains("Welcome, Nia") && html.contains("nia@example.com (editor)"), "{html}");
    assert_eq!(page.header("referrer-policy"), Some("same-origin"), "the secret URL leaks to no other site");
    assert_eq!(page.header("cache-control"), Some("no-store"));

    let differ = post(&app, &issued.path, &cookie, &token, "a good password", "another password").await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(differ.text().contains("The two passwords differ"), "{}", differ.text());
    let short = post(&app, &issued.path, &cookie, &token, "short", "short").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text().contains("The password must be at least 8 characters"), "{}", short.text());
    assert!(app.state.store.find_user_by_email("nia@example.com").await.unwrap().is_none(), "not created yet");

    let done = post(&app, &issued.path, &cookie, &token, "nias good password", "nias good password").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.header("location"), Some("/admin"));
    let session = done.cookie(SESSION_COOKIE).expect("signed in");
    let landing = app.send(get("/admin", &[(SESSION_COOKIE, &session)])).await;
    assert_eq!(landing.status, StatusCode::OK, "the session works");
    let nia = app.state.store.find_user_by_email("nia@example.com").await.unwrap().expect("the account");
    assert_eq!((nia.name.as_str(), nia.role), ("Nia", Role::Editor));
    let sessions = app.state.store.sessions_of(nia.id).await.unwrap();
    assert_eq!(sessions.len(), 1);

    let again = app.send(get(&issued.path, &[])).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.text().contains("This link was used already"), "{}", again.text());
    let reuse = post(&app, &issued.path, &cookie, &token, "another password", "another password").await;
    assert_eq!(reuse.status, StatusCode::GONE);
    let audit = app.state.store.audit_trail(None, 5).await.unwrap();
    assert_eq!(audit[0].action, "joined");
}

/// A reset link sets a new password: the old one no longer signs in, the old sessions end.
#[tokio::test]
async fn a_reset_link_replaces_the_password_and_ends_the_old_sessions() {
    let (app, admin) = admin_app().await;
    let alice = app.user("alice@example.com", "alice old password", Role::Editor).await;
    let old = app.state.people.issue_token(&alice, "old").await.unwrap().0;
    let issued = app.state.people.reset_link(admin, alice.id).await.unwrap();
    let (page, cookie, token) = open_link(&app, &issued.path).await;
    assert!(page.text().contains("Set a new password for alice@example.com"), "{}", page.text());
    let done = post(&app, &issued.path, &cookie, &token, "alice new password", "alice new password").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert!(app.state.people.bearer_user(&old).await.unwrap().is_none(), "the token from before ended");
    let client = "127.0.0.1".parse().unwrap();
    assert!(app.state.authenticate("alice@example.com", "alice old password", client).await.is_err());
    assert!(app.state.authenticate("alice@example.com", "alice new password", client).await.is_ok());
}

/// Unknown, withdrawn and expired links each get a page that says which; a form posted without its CSRF token or
/// from another site is refused and the link stays usable.
#[tokio::test]
async fn unusable_links_say_why_and_forged_posts_are_refused() {
    let (app, admin) = admin_app().await;
    let unknown = app.send(get("/account/link/not-a-real-token", &[])).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text().contains("This link is not valid"));

    let first = app.state.people.invite(admin, "sam@example.com", Role::Viewer, None).await.unwrap();
    let second = app.state.people.invite(admin, "sam@example.com", Role::Viewer, None).await.unwrap();
    let replaced = app.send(get(&first.path, &[])).await;
    assert_eq!(replaced.status, StatusCode::GONE);
    assert!(replaced.text().contains("replaced by a newer one"), "{}", replaced.text());

    let (_, cookie, token) = open_link(&app, &second.path).await;
    let forged = post(&app, &second.path, &cookie, "wrong-token-wrong-token", "sams password", "sams password").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let fields = [("_csrf_token", token.as_str()), ("password", "sams password"), ("confirm", "sams password")];
    let cross_site = app
        .send(form_post(&second.path, &[(CSRF_COOKIE, &cookie)], &fields, &[("origin", "https://evil.example")]))
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(app.state.store.find_user_by_email("sam@example.com").await.unwrap().is_none());

    app.state.people.revoke_invitation(admin, second.link.id).await.unwrap();
    let withdrawn = post(&app, &second.path, &cookie, &token, "sams password", "sams password").await;
    assert_eq!(withdrawn.status, StatusCode::GONE);
    assert!(withdrawn.text().contains("withdrawn"));
}

/// Posting to links that do not exist is a failed attempt like a wrong password: the address is throttled.
#[tokio::test]
async fn guessing_links_is_throttled() {
    let app =
        TestApp::with_throttle(ThrottleConfig { per_account: 3, per_address: 3, ..ThrottleConfig::default() }).await;
    let mut statuses = Vec::new();
    for guess in 0..5 {
        let path = format!("/account/link/guess-{guess}");
        statuses.push(post(&app, &path, "c", "c", "whatever pw", "whatever pw").await.status);
    }
    assert!(statuses[..3].iter().all(|status| *status == StatusCode::NOT_FOUND), "{statuses:?}");
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
