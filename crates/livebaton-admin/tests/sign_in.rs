//! Signing in under attack (mirrors `src/accounts/throttle.rs`, `src/accounts/passwords.rs`, `src/proxy.rs` and the
//! cookie writer of `src/pages/session.rs`): concurrent guesses stop at the throttle's limit before they are hashed,
//! a full hasher answers 503, forwarded client addresses and HTTPS are believed only from trusted proxies, and
//! cookies carry `Secure` when the page was served over HTTPS. Requests go through `livebaton_admin::app::router`
//! with `tower::ServiceExt::oneshot`, over a fresh SQLite file per test, on both `/admin/login` and
//! `POST /api/tokens`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use livebaton_admin::accounts::{PasswordHasher, Role, ThrottleConfig};
use livebaton_admin::app::router;
use livebaton_admin::pages::session::{CSRF_COOKIE, SESSION_COOKIE};
use livebaton_admin::proxy::{IpNet, TrustedProxies};
use serde_json::json;
use support::{Reply, TestApp};
use tower::ServiceExt;

const EMAIL: &str = "admin@example.com";
const PASSWORD: &str = "the admin's password";
/// A double-submit CSRF token: the same value in the cookie and the form, as the sign-in page sets it.
const CSRF: &str = "a-csrf-token-of-24-chars";

/// An application with its own hasher, trusted proxies and cookie policy, and an admin account.
struct Site {
    /// Keeps the database and the accounts.
    _app: TestApp,
    router: Router,
    hasher: Arc<PasswordHasher>,
}

impl Site {
    async fn new(throttle: ThrottleConfig, hasher: PasswordHasher, proxies: &[&str], secure_cookies: bool) -> Self {
        let app = TestApp::with_throttle(throttle).await;
        app.user(EMAIL, PASSWORD, Role::Admin).await;
        let hasher = Arc::new(hasher);
        let proxies = TrustedProxies::new(proxies.iter().map(|net| net.parse::<IpNet>().expect("a network")));
        let state = app.state.clone().with_hasher(hasher.clone()).with_proxies(proxies, secure_cookies);
        Site { router: router(state), _app: app, hasher }
    }

    /// Sends `request` over a connection from `peer`.
    async fn send(&self, peer: &str, mut request: Request<Body>) -> Reply {
        let peer: SocketAddr = peer.parse().expect("a socket address");
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = self.router.clone().oneshot(request).await.expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the body reads").to_vec();
        Reply { status, headers, body }
    }
}

/// A roomy hasher: enough patience that no test request waits in vain.
fn patient_hasher() -> PasswordHasher {
    PasswordHasher::new(2, Duration::from_secs(60))
}

fn throttle(per_account: usize, per_address: usize) -> ThrottleConfig {
    ThrottleConfig { per_account, per_address, window: Duration::from_secs(900), max_keys: 1000 }
}

/// `POST /api/tokens` with `password`, and `headers`.
fn api_sign_in(password: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder =
        Request::builder().method(Method::POST).uri("/api/tokens").header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(json!({"email": EMAIL, "password": password}).to_string())).expect("a valid request")
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `POST /admin/login` with `password`, the double-submit CSRF token, and `headers`.
fn page_sign_in(password: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let body = format!("email={}&password={}&_csrf_token={CSRF}", encode(EMAIL), encode(password));
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/admin/login")
        .header("host", "localhost:4000")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("{CSRF_COOKIE}={CSRF}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body)).expect("a valid request")
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().uri(uri).header("host", "localhost:4000");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// The statuses of `replies`, counted: (401, 429, other).
fn tally(replies: &[Reply]) -> (usize, usize, Vec<StatusCode>) {
    let count = |status| replies.iter().filter(|reply| reply.status == status).count();
    let other = replies
        .iter()
        .map(|reply| reply.status)
        .filter(|status| ![StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(status))
        .collect();
    (count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS), other)
}

/// 40 concurrent wrong passwords for one account through `POST /api/tokens` from one address (the issue's repro):
/// only the limit (5) is hashed and answered 401; the other 35 are refused before hashing with 429 and `Retry-After`.
/// From 60 addresses at once, the account-wide limit (50) holds the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_on_the_api_stop_at_the_limit_before_hashing() {
    let site = Site::new(ThrottleConfig::default(), patient_hasher(), &[], false).await;
    let site = &site;
    let guesses = (0..40).map(|_| async move { site.send("10.0.0.1:5000", api_sign_in("wrong", &[])).await });
    let replies = futures_util::future::join_all(guesses).await;
    let (unauthorized, throttled, other) = tally(&replies);
    assert_eq!((unauthorized, throttled, other), (5, 35, vec![]), "statuses");
    assert_eq!(site.hasher.computed(), 5, "only the admitted guesses reach Argon2");
    for reply in replies.iter().filter(|reply| reply.status == StatusCode::TOO_MANY_REQUESTS) {
        let retry: u64 = reply.header("retry-after").expect("Retry-After").parse().expect("seconds");
        assert!((1..=5).contains(&retry), "the first delay is 5 s: {retry}");
        assert_eq!(reply.json()["error"], "throttled");
    }

    let site = Site::new(ThrottleConfig::default(), patient_hasher(), &[], false).await;
    let site = &site;
    let spread =
        (0..60).map(|n| async move { site.send(&format!("10.1.0.{n}:5000"), api_sign_in("wrong", &[])).await });
    let replies = futures_util::future::join_all(spread).await;
    assert_eq!(tally(&replies), (50, 10, vec![]), "from 60 addresses: the account-wide limit");
    assert_eq!(site.hasher.computed(), 50);
}

/// The same storm on the sign-in page: 5 forms answered 401, 35 answered 429 with `Retry-After` and the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_on_the_page_stop_at_the_limit_before_hashing() {
    let site = Site::new(ThrottleConfig::default(), patient_hasher(), &[], false).await;
    let site = &site;
    let guesses = (0..40).map(|_| async move { site.send("10.0.1.1:5000", page_sign_in("wrong", &[])).await });
    let replies = futures_util::future::join_all(guesses).await;
    assert_eq!(tally(&replies), (5, 35, vec![]), "statuses");
    assert_eq!(site.hasher.computed(), 5);
    let refused = replies.iter().find(|reply| reply.status == StatusCode::TOO_MANY_REQUESTS).expect("a 429");
    assert!(refused.header("retry-after").is_some_and(|secs| secs.parse::<u64>().is_ok()), "Retry-After");
    assert!(refused.text().contains("too many failed sign-in attempts; try again in"), "{}", refused.text());
}

/// While every hashing slot is held, both sign-in routes answer 503 with `Retry-After` (JSON on the API, the page
/// with a message) without counting a failure; once a slot is free the right password signs in.
#[tokio::test]
async fn a_full_hasher_answers_503_with_retry_after() {
    let site = Site::new(throttle(1, 100), PasswordHasher::new(1, Duration::from_millis(50)), &[], false).await;
    let held = site.hasher.try_permit().expect("the only slot");

    let reply = site.send("10.0.0.1:5000", api_sign_in(PASSWORD, &[])).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.json()["error"], "busy");
    let reply = site.send("10.0.0.1:5000", page_sign_in("wrong", &[])).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(reply.text().contains("Signing in is busy right now"), "{}", reply.text());
    assert_eq!(site.hasher.computed(), 0);

    drop(held);
    let reply = site.send("10.0.0.1:5000", api_sign_in(PASSWORD, &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "a refusal for a busy hasher is not a failure: {}", reply.text());
}

/// Behind a trusted proxy each client has its own per-address count (taken from `X-Forwarded-For`), so one guesser
/// does not lock out everyone behind the proxy; from an untrusted peer the header is ignored, so a guesser cannot
/// escape its count by forging a new address on every try.
#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let site = Site::new(throttle(100, 2), patient_hasher(), &["127.0.0.1/32", "::1/128"], false).await;
    const NGINX: &str = "127.0.0.1:36000";

    for forged in ["198.51.100.1", "198.51.100.2"] {
        let reply = site.send("203.0.113.5:5000", api_sign_in("wrong", &[("x-forwarded-for", forged)])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    }
    let reply = site.send("203.0.113.5:5000", api_sign_in(PASSWORD, &[("x-forwarded-for", "198.51.100.3")])).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "a direct peer's forged header is ignored");

    // The guesser behind nginx forges a hop too; nginx appends the address it saw, which is the one counted.
    let guesser = [("x-forwarded-for", "192.0.2.99, 198.51.100.7")];
    for _ in 0..2 {
        assert_eq!(site.send(NGINX, page_sign_in("wrong", &guesser)).await.status, StatusCode::UNAUTHORIZED);
    }
    let reply = site.send(NGINX, api_sign_in(PASSWORD, &[("x-forwarded-for", "192.0.2.1, 198.51.100.7")])).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "the guesser is throttled whatever it forges on the left");

    let reply = site.send(NGINX, page_sign_in(PASSWORD, &[("x-forwarded-for", "198.51.100.8")])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "another client behind the same proxy signs in: {}", reply.text());
    let reply = site.send("[::1]:36000", api_sign_in(PASSWORD, &[("forwarded", "for=\"[2001:db8::8]:4711\"")])).await;
    assert_eq!(reply.status, StatusCode::OK, "Forwarded from a trusted proxy: {}", reply.text());
}

/// Session and CSRF cookies carry `Secure` when a trusted proxy says the browser used HTTPS, or always with
/// `--secure-cookies`; a direct peer's `X-Forwarded-Proto` does not count, and plain HTTP gets no `Secure` (the
/// browser would drop the cookie).
#[tokio::test]
async fn cookies_are_secure_when_a_trusted_proxy_forwarded_https() {
    let site = Site::new(ThrottleConfig::default(), patient_hasher(), &["127.0.0.1/32"], false).await;
    let https = [("x-forwarded-proto", "https")];
    let secure = |reply: &Reply| {
        assert!(!reply.set_cookies().is_empty(), "cookies expected: {}", reply.text());
        reply.set_cookies().iter().all(|cookie| cookie.split(';').any(|attribute| attribute.trim() == "Secure"))
    };

    assert!(secure(&site.send("127.0.0.1:36000", get("/admin/login", &https)).await), "the CSRF cookie");
    assert!(!secure(&site.send("203.0.113.5:5000", get("/admin/login", &https)).await), "not from a direct peer");
    assert!(!secure(&site.send("127.0.0.1:36000", get("/admin/login", &[])).await), "not over plain HTTP");

    let signed_in = site.send("127.0.0.1:36000", page_sign_in(PASSWORD, &https)).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.text());
    assert!(secure(&signed_in), "the session cookie and the CSRF cookie's removal: {:?}", signed_in.set_cookies());
    let session = signed_in.cookie(SESSION_COOKIE).expect("a session");

    let cookie = format!("{SESSION_COOKIE}={session}");
    let confirm = site.send("127.0.0.1:36000", get("/admin/logout", &[("cookie", &cookie)])).await;
    let marker = r#"name="_csrf_token" value=""#;
    let token = confirm.text().split(marker).nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned);
    let token = token.expect("the sign-out form's token");
    let logout = Request::builder()
        .method(Method::POST)
        .uri("/admin/logout")
        .header("host", "localhost:4000")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .header("x-forwarded-proto", "https")
        .body(Body::from(format!("_csrf_token={token}")))
        .unwrap();
    let reply = site.send("127.0.0.1:36000", logout).await;
    assert!(reply.status.is_redirection(), "{}", reply.text());
    assert!(secure(&reply), "the session cookie's removal: {:?}", reply.set_cookies());

    let forced = Site::new(ThrottleConfig::default(), patient_hasher(), &[], true).await;
    assert!(secure(&forced.send("203.0.113.5:5000", get("/admin/login", &[])).await), "--secure-cookies");
}
