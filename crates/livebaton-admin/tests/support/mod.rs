//! Helpers shared by the in-process HTTP suites (`api.rs`, `pages.rs`): the application over a fresh SQLite file, and
//! requests sent through the router exactly as the server would dispatch them.

#![allow(dead_code)] // Each suite uses a different subset.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use livebaton_admin::accounts::{Role, ThrottleConfig};
use livebaton_admin::app::{AppState, router};
use livebaton_admin::storage::{Store, User};
use tower::ServiceExt;

/// The secret the test applications sign with.
pub const SECRET: &str = "a-secret-key-base-of-at-least-32-chars!!";

/// The client address requests come from unless a test says otherwise.
pub const CLIENT: &str = "127.0.0.1:40000";

/// One application over its own database file.
pub struct TestApp {
    /// The state the router serves (store, engine, throttle…).
    pub state: AppState,
    /// The router built by `livebaton_admin::app::router`.
    pub router: Router,
    /// Keeps the database file until the test ends.
    _dir: tempfile::TempDir,
}

/// A response, read to the end.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (with the body) when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("expected a JSON body ({error}), got {:?} {:?}", self.status, self.text()))
    }

    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|value| value.to_str().ok()).map(str::to_owned).collect()
    }

    /// The value a `Set-Cookie` header gives cookie `name` (`Some("")` when it deletes it).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|header| {
            let pair = header.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    }
}

impl TestApp {
    /// An application with the default sign-in throttle.
    pub async fn new() -> Self {
        Self::with_throttle(ThrottleConfig::default()).await
    }

    /// An application with `throttle`.
    pub async fn with_throttle(throttle: ThrottleConfig) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
        let store = Store::connect(&url).await.expect("the store opens");
        let state = AppState::new(store, livebaton::Engine::new(Default::default()), SECRET, throttle);
        let router = router(state.clone());
        TestApp { state, router, _dir: dir }
    }

    /// Creates (or updates) a user with `livebaton_admin::seed::upsert_user`.
    pub async fn user(&self, email: &str, password: &str, role: Role) -> User {
        livebaton_admin::seed::upsert_user(&self.state.store, email, password, role, None)
            .await
            .expect("upsert_user succeeds")
    }

    /// Sends `request` from the default client address.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        self.send_from(CLIENT, request).await
    }

    /// Sends `request` as if it came from `address` (handlers read `ConnectInfo<SocketAddr>`).
    pub async fn send_from(&self, address: &str, mut request: Request<Body>) -> Reply {
        let address: SocketAddr = address.parse().expect("a socket address");
        request.extensions_mut().insert(ConnectInfo(address));
        let response = self.router.clone().oneshot(request).await.expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the body reads").to_vec();
        Reply { status, headers, body }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Browser-like requests to the server-rendered pages (sign-in, one-time links)
// ---------------------------------------------------------------------------------------------------------------

/// The `Host` the page requests are sent to.
pub const HOST: &str = "localhost:4000";

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A form POST to `uri` from a browser on this site (Host set, no Origin unless added), with `cookies` and `fields`.
pub fn form_post(
    uri: &str,
    cookies: &[(&str, &str)],
    fields: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Request<Body> {
    let body: Vec<String> = fields.iter().map(|(key, value)| format!("{}={}", encode(key), encode(value))).collect();
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("host", HOST)
        .header("content-type", "application/x-www-form-urlencoded");
    if !cookies.is_empty() {
        let cookie: Vec<String> = cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
        builder = builder.header("cookie", cookie.join("; "));
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.join("&"))).expect("a valid request")
}

/// A GET of `uri` with `cookies`.
pub fn get(uri: &str, cookies: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(Method::GET).uri(uri).header("host", HOST);
    if !cookies.is_empty() {
        let cookie: Vec<String> = cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
        builder = builder.header("cookie", cookie.join("; "));
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// The value of the hidden `_csrf_token` input of a page.
pub fn hidden_csrf_token(html: &str) -> String {
    let marker = r#"name="_csrf_token" value=""#;
    let start = html.find(marker).unwrap_or_else(|| panic!("no _csrf_token input in {html}")) + marker.len();
    html[start..].split('"').next().expect("a closing quote").to_owned()
}

/// Signs `email` in through the sign-in form (a fresh CSRF cookie first); returns the session cookie's value.
pub async fn sign_in_with_form(app: &TestApp, email: &str, password: &str) -> String {
    let page = app.send(get("/admin/login", &[])).await;
    let csrf =
        page.cookie(livebaton_admin::pages::session::CSRF_COOKIE).expect("the sign-in page sets the CSRF cookie");
    let fields = [("email", email), ("password", password), ("_csrf_token", csrf.as_str())];
    let reply = app
        .send(form_post("/admin/login", &[(livebaton_admin::pages::session::CSRF_COOKIE, &csrf)], &fields, &[]))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in failed: {}", reply.text());
    reply
        .cookie(livebaton_admin::pages::session::SESSION_COOKIE)
        .filter(|value| !value.is_empty())
        .expect("a session cookie")
}
