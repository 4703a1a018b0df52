//! The own-account page in-process (mirrors `src/pages/account.rs` and `src/views/account.rs`): changing one's
//! password needs the current one, ends every other session and token, and keeps this browser signed in; a refused
//! change changes nothing; the form needs its CSRF token.

mod support;

use axum::http::StatusCode;
use livebaton_admin::accounts::Role;
use livebaton_admin::pages::session::SESSION_COOKIE;
use support::{TestApp, form_post, get, hidden_csrf_token, sign_in_with_form};

const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "alice password 1";

/// The account page (as the browser gets it) and its password form's CSRF token.
async fn account_page(app: &TestApp, session: &str, path: &str) -> (String, String) {
    let page = app.send(get(path, &[(SESSION_COOKIE, session)])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    let csrf = hidden_csrf_token(&html);
    (html, csrf)
}

async fn change(app: &TestApp, session: &str, csrf: &str, current: &str, new: &str, confirm: &str) -> support::Reply {
    let fields = [("_csrf_token", csrf), ("current", current), ("password", new), ("confirm", confirm)];
    app.send(form_post("/admin/account/password", &[(SESSION_COOKIE, session)], &fields, &[])).await
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_keeps_only_this_browser() {
    let app = TestApp::new().await;
    let alice = app.user(EMAIL, PASSWORD, Role::Editor).await;
    let here = sign_in_with_form(&app, EMAIL, PASSWORD).await;
    let elsewhere = sign_in_with_form(&app, EMAIL, PASSWORD).await;
    let token = app.state.people.issue_token(&alice, "script").await.unwrap().0;
    let (html, csrf) = account_page(&app, &here, "/admin/account").await;
    assert!(html.contains("Where you are signed in") && html.contains(EMAIL), "{html}");

    for (current, new, confirm, outcome) in [
        ("not my password", "a new password 1", "a new password 1", "wrong"),
        (PASSWORD, "a new password 1", "another one 2345", "differ"),
        (PASSWORD, "short", "short", "invalid"),
    ] {
        let refused = change(&app, &here, &csrf, current, new, confirm).await;
        assert_eq!(refused.status, StatusCode::SEE_OTHER);
        let location = format!("/admin/account?password={outcome}");
        assert_eq!(refused.header("location"), Some(location.as_str()));
        let (html, _) = account_page(&app, &here, &location).await;
        assert!(html.contains("Not changed"), "{outcome}: {html}");
    }
    assert!(app.state.people.bearer_user(&token).await.unwrap().is_some(), "nothing changed yet");
    let forged = change(&app, &here, "not-the-token", PASSWORD, "a new password 1", "a new password 1").await;
    assert_eq!(forged.header("location"), Some("/admin/account?password=expired"));

    let done = change(&app, &here, &csrf, PASSWORD, "a new password 1", "a new password 1").await;
    assert_eq!(done.header("location"), Some("/admin/account?password=changed"));
    let renewed = done.cookie(SESSION_COOKIE).expect("this browser is signed in again");
    let (html, _) = account_page(&app, &renewed, "/admin/account?password=changed").await;
    assert!(html.contains("Your password was changed"), "{html}");
    let old_elsewhere = app.send(get("/admin/account", &[(SESSION_COOKIE, &elsewhere)])).await;
    assert_eq!(old_elsewhere.status, StatusCode::SEE_OTHER, "the other browser was signed out");
    assert!(app.state.people.bearer_user(&token).await.unwrap().is_none(), "and the token ended");
    let client = "127.0.0.1".parse().unwrap();
    assert!(app.state.authenticate(EMAIL, "a new password 1", client).await.is_ok());
}
