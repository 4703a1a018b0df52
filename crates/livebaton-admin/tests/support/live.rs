//! The harness of the live suite (`live.rs`): the whole admin application served on a real port over a fresh SQLite
//! file, users and their tokens, JSON API calls; the Phoenix V2 client and the waits are livebaton-testkit's.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use livebaton::presence::PresenceConfig;
use livebaton::{Engine, EngineConfig};
use livebaton_admin::accounts::{Role, ThrottleConfig};
use livebaton_admin::app::{AppState, router};
use livebaton_admin::storage::{Store, User};
use livebaton_web::config::SocketConfig;
use serde_json::Value;
use tokio_tungstenite::tungstenite::handshake::client::{Request as WsRequest, Response as WsResponse};
use tower::ServiceExt;

/// The secret the test servers sign with.
pub const SECRET: &str = "a-secret-key-base-of-at-least-32-chars!!";

/// How long any single wait for a frame, a close or a condition may take before the test fails.
#[allow(unused_imports, reason = "each suite including this file uses part of it")]
pub use livebaton_testkit::WAIT;

/// The raw WebSocket (the churn suite drives thousands of sockets without a client's bookkeeping).
#[allow(dead_code, reason = "only the churn suite uses it")]
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery";

/// The admin application on a real port.
pub struct LiveServer {
    /// The state the server runs on (store, engine, signer, shutdown handle…).
    pub state: AppState,
    /// Where it listens.
    pub address: SocketAddr,
    /// The same router the server serves, for in-process HTTP requests.
    router: axum::Router,
    /// Serves until the test ends.
    _server: livebaton_testkit::TestServer,
    /// Keeps the database file until the test ends.
    _dir: tempfile::TempDir,
}

/// Starts the application with presence `leave_grace` and `allowed_origins` (empty: same origin only).
pub async fn start(leave_grace: Duration, allowed_origins: Vec<String>) -> LiveServer {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("live.db").display());
    let store = Store::connect(&url).await.expect("the store opens");
    let engine = Engine::new(EngineConfig {
        presence: PresenceConfig { leave_grace, ..Default::default() },
        ..Default::default()
    });
    // A generous idle timeout: the clients of these tests do not heartbeat, and a loaded machine must not close them.
    let sockets = SocketConfig { idle_timeout: Duration::from_secs(60), ..SocketConfig::default() };
    let state = AppState::with_live(store, engine, SECRET, ThrottleConfig::default(), sockets, allowed_origins);
    let app = router(state.clone());
    let server = livebaton_testkit::TestServer::start(app.clone()).await;
    LiveServer { state, address: server.address(), router: app, _server: server, _dir: dir }
}

/// A JSON API answer.
#[derive(Debug)]
pub struct ApiReply {
    /// Status.
    pub status: StatusCode,
    /// Body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// Body as text.
    pub text: String,
    /// Headers.
    pub headers: axum::http::HeaderMap,
}

impl ApiReply {
    /// The value a `Set-Cookie` header gives cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|value| value.to_str().ok()).find_map(|header| {
            let (key, value) = header.split(';').next()?.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    }
}

impl LiveServer {
    /// Creates a user with `livebaton_admin::seed::upsert_user`.
    pub async fn user(&self, email: &str, name: &str, role: Role) -> User {
        livebaton_admin::seed::upsert_user(&self.state.store, email, PASSWORD, role, Some(name))
            .await
            .expect("upsert_user succeeds")
    }

    /// A bearer token for `user`, issued as the server issues them (a stored row, the user's current generation).
    pub async fn token(&self, user: &User) -> String {
        self.state.people.issue_token(user, "test").await.expect("a token is issued").0
    }

    /// `ws://<address>/live/websocket?<query>`.
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/live/websocket?{query}", self.address)
    }

    /// The same-origin `Origin` of this server.
    pub fn origin(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends `request` through the application's router, as from 127.0.0.1.
    pub async fn http(&self, mut request: Request<Body>) -> ApiReply {
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = self.router.clone().oneshot(request).await.expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the body reads");
        let text = String::from_utf8_lossy(&body).into_owned();
        ApiReply { status, json: serde_json::from_str(&text).unwrap_or(Value::Null), text, headers }
    }

    /// A JSON API call with a bearer token.
    pub async fn api(&self, method: Method, uri: &str, token: &str, body: Option<Value>) -> ApiReply {
        let builder = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
        let request = match body {
            Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.http(request.expect("a valid request")).await
    }

    /// Opens a socket authenticated with `token` (as the `token` connect param); panics if refused.
    pub async fn connect(&self, token: &str) -> Peer {
        let url = self.ws_url(&format!("vsn=2.0.0&token={token}"));
        try_open(ws_request(&url, &[])).await.expect("the upgrade succeeds").0
    }
}

#[allow(unused_imports, reason = "each suite including this file uses part of it")]
pub use livebaton_testkit::{Peer, Refusal, error_reason, eventually, ws_request};

/// Opens `request`: the socket and the handshake response, or how the upgrade was refused.
pub async fn try_open(request: WsRequest) -> Result<(Peer, WsResponse), Refusal> {
    livebaton_testkit::connect(request).await
}
