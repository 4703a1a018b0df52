//! The server-rendered sign-in pages in-process (mirrors `src/pages/`): the form, CSRF and origin checks, sessions,
//! the redirect to sign-in, and sign-out.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use livebaton_admin::accounts::{Role, ThrottleConfig, sha256_hex};
use livebaton_admin::content::editing::Author;
use livebaton_admin::pages::session::{CSRF_COOKIE, SESSION_COOKIE};
use support::{Reply, TestApp, form_post, get, hidden_csrf_token};

const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery";

/// An app with Alice (an editor).
async fn app_with_alice() -> TestApp {
    let app = TestApp::new().await;
    app.user(EMAIL, PASSWORD, Role::Editor).await;
    app
}

/// The CSRF cookie a fresh visit to the sign-in page sets.
async fn csrf_cookie(app: &TestApp) -> String {
    let page = app.send(get("/admin/login", &[])).await;
    page.cookie(CSRF_COOKIE).expect("the sign-in page sets the CSRF cookie")
}

/// Signs Alice in through the form; returns the session cookie's value.
async fn sign_in(app: &TestApp) -> String {
    support::sign_in_with_form(app, EMAIL, PASSWORD).await
}

fn assert_no_session(reply: &Reply, what: &str) {
    let session = reply.cookie(SESSION_COOKIE).unwrap_or_default();
    assert!(session.is_empty(), "{what} must not start a session, but set {SESSION_COOKIE}={session}");
}

fn assert_redirects_to_login(reply: &Reply, what: &str) {
    assert!(reply.status.is_redirection(), "{what}: expected a redirect, got {} {}", reply.status, reply.text());
    assert_eq!(reply.header("location"), Some("/admin/login"), "{what}");
}

/// The sign-in page has labelled email and password inputs, a "Sign in" button and a hidden CSRF token equal to the
/// HttpOnly, SameSite cookie it sets; a second visit keeps the same token.
#[tokio::test]
async fn the_sign_in_page_has_a_labelled_form_and_sets_the_csrf_cookie() {
    let app = TestApp::new().await;
    let page = app.send(get("/admin/login", &[])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").is_some_and(|value| value.starts_with("text/html")));
    let html = page.text();
    assert!(html.contains(r#"<label for="email">Email</label>"#), "{html}");
    assert!(html.contains(r#"<label for="password">Password</label>"#), "{html}");
    assert!(html.contains(r#"id="email" type="email" name="email""#), "{html}");
    assert!(html.contains(r#"id="password" type="password" name="password""#), "{html}");
    assert!(html.contains(r#"<button type="submit">Sign in</button>"#), "{html}");

    let token = page.cookie(CSRF_COOKIE).expect("a CSRF cookie");
    assert!(token.len() >= 16, "a real token: {token:?}");
    assert_eq!(hidden_csrf_token(&html), token, "the form echoes the cookie's token");
    let header = page.set_cookies().into_iter().find(|header| header.starts_with(CSRF_COOKIE)).unwrap();
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"), "{header}");

    let again = app.send(get("/admin/login", &[(CSRF_COOKIE, &token)])).await;
    assert_eq!(hidden_csrf_token(&again.text()), token, "a returning visitor keeps the token");
    let other = app.send(get("/admin/login", &[])).await;
    assert_ne!(other.cookie(CSRF_COOKIE).unwrap(), token, "each new visitor gets a fresh token");
}

/// Posting the form with the matching cookie and token (same origin) signs in: 303 to /admin with an HttpOnly
/// session cookie whose hash is stored, and /admin then shows the user.
#[tokio::test]
async fn signing_in_with_the_csrf_token_starts_a_session() {
    let app = app_with_alice().await;
    let csrf = csrf_cookie(&app).await;
    let reply = app
        .send(form_post(
            "/admin/login",
            &[(CSRF_COOKIE, &csrf)],
            &[("email", "Alice@Example.com"), ("password", PASSWORD), ("_csrf_token", &csrf)],
            &[("origin", "http://localhost:4000"), ("sec-fetch-site", "same-origin")],
        ))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/admin"));
    let session = reply.cookie(SESSION_COOKIE).expect("a session cookie");
    assert!(session.len() >= 32, "{session:?}");
    let header = reply.set_cookies().into_iter().find(|header| header.starts_with(SESSION_COOKIE)).unwrap();
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"), "{header}");
    assert_eq!(reply.cookie(CSRF_COOKIE).as_deref(), Some(""), "the pre-sign-in CSRF cookie is cleared");

    let stored = app.state.store.find_session(&sha256_hex(&session)).await.unwrap().expect("the session is stored");
    assert_ne!(stored.id_hash, session, "only the hash of the cookie is stored");

    let home = app.send(get("/admin", &[(SESSION_COOKIE, &session)])).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    let html = home.text();
    assert!(html.contains("<h1>Dashboard</h1>"), "{html}");
    assert!(html.contains("alice") && html.contains("editor"), "the header names the user and role: {html}");
}

/// A wrong or missing CSRF token, a cross-site `Origin` or `Sec-Fetch-Site: cross-site` is refused with 403 and
/// starts no session, even with the right password.
#[tokio::test]
async fn a_wrong_csrf_token_or_a_cross_site_origin_is_refused() {
    let app = app_with_alice().await;
    let csrf = csrf_cookie(&app).await;
    let wrong = format!("{}x", &csrf[..csrf.len() - 1]);
    let login = |token: Option<&str>, with_cookie: bool, headers: &[(&str, &str)]| {
        let mut fields = vec![("email", EMAIL), ("password", PASSWORD)];
        fields.extend(token.map(|token| ("_csrf_token", token)));
        let cookies: &[(&str, &str)] = if with_cookie { &[(CSRF_COOKIE, &csrf)] } else { &[] };
        form_post("/admin/login", cookies, &fields, headers)
    };

    let cases = [
        ("a wrong token", login(Some(&wrong), true, &[])),
        ("no cookie", login(Some(&csrf), false, &[])),
        ("no token field", login(None, true, &[])),
        ("a cross-site Origin", login(Some(&csrf), true, &[("origin", "http://evil.example")])),
        ("Sec-Fetch-Site: cross-site", login(Some(&csrf), true, &[("sec-fetch-site", "cross-site")])),
    ];
    for (what, request) in cases {
        let reply = app.send(request).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {}", reply.text());
        assert_no_session(&reply, what);
        let fresh = reply.cookie(CSRF_COOKIE).expect("a fresh CSRF cookie to retry with");
        assert_eq!(hidden_csrf_token(&reply.text()), fresh, "{what}: the retry form carries the fresh token");
    }

    // The same request with the matching token, from this site, goes through.
    let reply = app.send(login(Some(&csrf), true, &[("origin", "http://localhost:4000")])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
}

/// A wrong password is 401 with "Invalid email or password", keeps the typed email and starts no session.
#[tokio::test]
async fn a_wrong_password_is_401_with_a_message() {
    let app = app_with_alice().await;
    let csrf = csrf_cookie(&app).await;
    for (email, password) in [(EMAIL, "not the password"), ("nobody@example.com", PASSWORD)] {
        let fields = [("email", email), ("password", password), ("_csrf_token", csrf.as_str())];
        let reply = app.send(form_post("/admin/login", &[(CSRF_COOKIE, &csrf)], &fields, &[])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{email}: {}", reply.text());
        let html = reply.text();
        assert!(html.contains("Invalid email or password"), "{html}");
        assert!(html.contains(&format!(r#"value="{email}""#)), "the typed email is kept: {html}");
        assert!(!html.contains(password), "the password is never echoed");
        assert_no_session(&reply, "a wrong password");
    }
}

/// Admin pages without a valid session (none, unknown, or signed out) redirect to the sign-in page.
#[tokio::test]
async fn admin_pages_without_a_session_redirect_to_sign_in() {
    let app = TestApp::new().await;
    assert_redirects_to_login(&app.send(get("/admin", &[])).await, "no cookie");
    assert_redirects_to_login(&app.send(get("/admin", &[(SESSION_COOKIE, "made-up-session-id")])).await, "unknown id");
    assert_redirects_to_login(&app.send(get("/admin/logout", &[])).await, "the sign-out page");
    let reply = app.send(form_post("/admin/logout", &[], &[("_csrf_token", "anything")], &[])).await;
    assert_redirects_to_login(&reply, "signing out without a session");
}

/// Signing out with the session's CSRF token ends the session: 303 to /admin/login, the cookie is cleared, and the
/// old cookie no longer opens /admin.
#[tokio::test]
async fn signing_out_with_the_session_csrf_token_ends_the_session() {
    let app = app_with_alice().await;
    let session = sign_in(&app).await;

    let confirm = app.send(get("/admin/logout", &[(SESSION_COOKIE, &session)])).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let token = hidden_csrf_token(&confirm.text());
    let stored = app.state.store.find_session(&sha256_hex(&session)).await.unwrap().unwrap();
    assert_eq!(token, stored.csrf_token, "the form carries the session's own token");

    let reply =
        app.send(form_post("/admin/logout", &[(SESSION_COOKIE, &session)], &[("_csrf_token", &token)], &[])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/admin/login"));
    assert_eq!(reply.cookie(SESSION_COOKIE).as_deref(), Some(""), "the session cookie is cleared");
    assert_eq!(app.state.store.find_session(&sha256_hex(&session)).await.unwrap(), None);
    assert_redirects_to_login(&app.send(get("/admin", &[(SESSION_COOKIE, &session)])).await, "the old cookie");
}

/// Signing out without the session's token (missing, wrong, or another session's) or cross-site is refused with
/// 403 and the session stays signed in.
#[tokio::test]
async fn signing_out_without_the_session_token_is_refused() {
    let app = app_with_alice().await;
    let session = sign_in(&app).await;
    let other_session = sign_in(&app).await;
    let other_token = app.state.store.find_session(&sha256_hex(&other_session)).await.unwrap().unwrap().csrf_token;
    let token = app.state.store.find_session(&sha256_hex(&session)).await.unwrap().unwrap().csrf_token;

    let logout = |fields: &[(&str, &str)], headers: &[(&str, &str)]| {
        form_post("/admin/logout", &[(SESSION_COOKIE, &session)], fields, headers)
    };
    let cases = [
        ("no token field", logout(&[], &[])),
        ("an empty token", logout(&[("_csrf_token", "")], &[])),
        ("a wrong token", logout(&[("_csrf_token", "not-the-token-at-all-000000")], &[])),
        ("another session's token", logout(&[("_csrf_token", &other_token)], &[])),
        ("a cross-site Origin", logout(&[("_csrf_token", &token)], &[("origin", "https://evil.example")])),
    ];
    for (what, request) in cases {
        let reply = app.send(request).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {}", reply.text());
        assert!(reply.cookie(SESSION_COOKIE).is_none(), "{what}: the session cookie is left alone");
        let home = app.send(get("/admin", &[(SESSION_COOKIE, &session)])).await;
        assert_eq!(home.status, StatusCode::OK, "{what}: still signed in");
    }
}

/// The sign-in page and `POST /api/tokens` share one throttle: after the per-account limit of wrong passwords on
/// the page, the page answers 429 with a message (even for the right password) and so does the API.
#[tokio::test]
async fn the_sign_in_page_and_the_api_share_the_throttle() {
    let throttle = ThrottleConfig { per_account: 2, per_address: 100, window: Duration::from_secs(600), max_keys: 100 };
    let app = TestApp::with_throttle(throttle).await;
    app.user(EMAIL, PASSWORD, Role::Editor).await;
    let csrf = csrf_cookie(&app).await;
    let attempt = |password: &'static str| {
        let fields = [("email", EMAIL), ("password", password), ("_csrf_token", csrf.as_str())];
        form_post("/admin/login", &[(CSRF_COOKIE, &csrf)], &fields, &[])
    };

    for _ in 0..2 {
        assert_eq!(app.send(attempt("wrong password")).await.status, StatusCode::UNAUTHORIZED);
    }
    let reply = app.send(attempt(PASSWORD)).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
    assert!(reply.text().contains("too many failed sign-in attempts"), "{}", reply.text());
    assert_no_session(&reply, "a throttled sign-in");

    let api = Request::builder()
        .method(Method::POST)
        .uri("/api/tokens")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({"email": EMAIL, "password": PASSWORD}).to_string()))
        .unwrap();
    // From the same address: the account is closed to that address, whichever door it knocks at.
    let reply = app.send(api).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
}

/// Values are stored as given and escaped where HTML is rendered: an entity named `<script>…` shows as text.
#[tokio::test]
async fn stored_text_is_escaped_when_rendered() {
    let app = app_with_alice().await;
    let input = livebaton_content::EntityInput {
        display_name: "<script>alert(1)</script>".into(),
        display_name_plural: "<b>Evil</b> things".into(),
        name: Some("evil".into()),
        ..Default::default()
    };
    let entity = app.state.content.create_entity(&input, None).await.unwrap();
    assert_eq!(entity.display_name_plural, "<b>Evil</b> things", "stored as given");
    let session = sign_in(&app).await;
    let page = app.send(get("/admin/entities", &[("livebaton_session", &session)])).await.text();
    assert!(page.contains("&lt;b&gt;Evil&lt;/b&gt; things"), "escaped on the page: {page}");
    assert!(!page.contains("<b>Evil</b>"));
}

/// Every page comes with a Content-Security-Policy that allows no inline script or style (the page has none: the
/// stylesheet is a file), may not be framed, is not sniffed, and is not stored; the assets are cached for ever.
#[tokio::test]
async fn pages_carry_security_headers_and_no_inline_style_or_script() {
    let app = app_with_alice().await;
    let session = sign_in(&app).await;
    for (uri, cookies) in [("/admin/login", vec![]), ("/admin", vec![(SESSION_COOKIE, session.as_str())])] {
        let page = app.send(get(uri, &cookies)).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let header = |name: &str| page.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
        let csp = header("content-security-policy");
        for directive in ["script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"] {
            assert!(csp.contains(directive), "{uri}: {directive} missing from {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{uri}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header("referrer-policy"), "same-origin", "{uri}");
        assert_eq!(header("cache-control"), "no-store", "{uri}");
        let html = page.text();
        assert!(!html.contains("<style") && !html.contains("style="), "{uri}: inline style in {html}");
        let inline_handler = html.split(" on").skip(1).any(|rest| {
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!html.contains("<script>") && !inline_handler, "{uri}: inline script in {html}");
        let sheet = html.split(r#"<link rel="stylesheet" href=""#).nth(1).expect("a linked stylesheet");
        let sheet = sheet.split('"').next().unwrap().to_owned();
        let asset = app.send(get(&sheet, &[])).await;
        assert_eq!(asset.status, StatusCode::OK, "{sheet}");
        assert_eq!(asset.headers["content-type"], "text/css; charset=utf-8");
        assert_eq!(asset.headers["cache-control"], "public, max-age=31536000, immutable");
        assert!(asset.text().contains(".notice"), "the stylesheet itself");
    }
}

/// After an entity is renamed, its admin and public pages under the old name redirect permanently to the same page
/// under the new name; a name that never existed is still 404.
#[tokio::test]
async fn pages_under_a_renamed_entitys_old_name_redirect_to_the_new_name() {
    let app = app_with_alice().await;
    let session = sign_in(&app).await;
    livebaton_admin::seed::bootstrap(&app.state.content, None, true).await.expect("the demo seeds");
    let article = app.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let record = app.state.store.list_records(article.id).await.unwrap().pop().expect("a record");
    let mut renamed = serde_json::to_value(&article).unwrap();
    renamed["name"] = "story".into();
    let input: livebaton_content::EntityInput = serde_json::from_value(renamed).expect("an entity input");
    app.state
        .content
        .update_entity(article.id, article.lock_version, &input, None, &Author::new("0", "test"))
        .await
        .expect("renamed");

    let cookies = [(SESSION_COOKIE, session.as_str())];
    for (old, new) in [
        ("/admin/entities/article/data".to_owned(), "/admin/entities/story/data".to_owned()),
        (
            format!("/admin/entities/article/data/{}/edit", record.id),
            format!("/admin/entities/story/data/{}/edit", record.id),
        ),
        ("/admin/entities/article/trash".to_owned(), "/admin/entities/story/trash".to_owned()),
        (format!("/e/article/{}", record.slug), format!("/e/story/{}", record.slug)),
    ] {
        let reply = app.send(get(&old, &cookies)).await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "{old}: {}", reply.text());
        assert_eq!(reply.header("location"), Some(new.as_str()), "{old}");
        assert_eq!(app.send(get(&new, &cookies)).await.status, StatusCode::OK, "{new}");
    }
    let reply = app.send(get("/admin/entities/never/data", &cookies)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}
