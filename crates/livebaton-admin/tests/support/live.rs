//! The harness of the live suite (`live.rs`): the whole admin application served on a real port over a fresh SQLite
//! file, users and their tokens, JSON API calls, and a Phoenix V2 WebSocket client that keeps frames it has read but
//! not yet been asked for, so a test can wait for one event without losing the others.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use livebaton::presence::PresenceConfig;
use livebaton::{Engine, EngineConfig};
use livebaton_admin::accounts::{Role, ThrottleConfig};
use livebaton_admin::app::{AppState, router};
use livebaton_admin::storage::{Store, User, now_ms};
use livebaton_web::config::SocketConfig;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::ServiceExt;

/// The secret the test servers sign with.
pub const SECRET: &str = "a-secret-key-base-of-at-least-32-chars!!";

/// How long any single wait for a frame, a close or a condition may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery";

/// The raw WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The admin application on a real port.
pub struct LiveServer {
    /// The state the server runs on (store, engine, signer, shutdown handle…).
    pub state: AppState,
    /// Where it listens.
    pub address: SocketAddr,
    /// The same router the server serves, for in-process HTTP requests.
    router: axum::Router,
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("a local address");
    let service = app.clone().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.expect("the server runs") });
    LiveServer { state, address, router: app, _dir: dir }
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

    /// A bearer token for `user`, valid for a minute.
    pub fn token(&self, user: &User) -> String {
        self.state.signer.sign(user.id, now_ms() + 60_000)
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
        Peer::new(tokio_tungstenite::connect_async(url).await.expect("the upgrade succeeds").0)
    }
}

/// A WebSocket handshake request for `url` with extra `headers`.
pub fn ws_request(url: &str, headers: &[(&str, &str)]) -> WsRequest {
    let mut request = url.into_client_request().expect("a valid WebSocket URL");
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    request
}

/// An upgrade the server answered with something other than 101.
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, as text.
    pub body: String,
}

/// Opens `request`: the socket and the handshake response, or how the upgrade was refused.
pub async fn try_open(request: WsRequest) -> Result<(Peer, WsResponse), Refusal> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("a handshake answer") {
        Ok((ws, response)) => Ok((Peer::new(ws), response)),
        Err(WsError::Http(response)) => Err(Refusal {
            status: response.status(),
            body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        }),
        Err(other) => panic!("the handshake failed without an HTTP status: {other}"),
    }
}

/// A Phoenix V2 client on one socket. Frames read while looking for something else are kept for later.
pub struct Peer {
    ws: Ws,
    inbox: VecDeque<Value>,
    next_ref: u64,
    /// The join_ref of each topic this client joined.
    joins: HashMap<String, String>,
}

impl Peer {
    /// A client on an open socket.
    pub fn new(ws: Ws) -> Self {
        Peer { ws, inbox: VecDeque::new(), next_ref: 0, joins: HashMap::new() }
    }

    fn reference(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// The join_ref this client used for `topic`.
    pub fn join_ref(&self, topic: &str) -> String {
        self.joins.get(topic).cloned().unwrap_or_else(|| panic!("{topic} was not joined"))
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.expect("the frame is sent");
    }

    /// Reads the next text frame from the socket, or `None` if nothing arrives by `deadline`.
    async fn read_until(&mut self, deadline: tokio::time::Instant) -> Option<Value> {
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(message))) => message,
                Ok(other) => panic!("the socket ended while a frame was expected: {other:?}"),
            };
            match message {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("frames are JSON")),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The first frame (kept or new) that `wanted` accepts, within [`WAIT`]; `what` names it in the failure.
    pub async fn take(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.inbox.iter().position(&wanted) {
            return self.inbox.remove(index).expect("the index is valid");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.read_until(deadline).await {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) => self.inbox.push_back(frame),
                None => panic!("no {what} within {WAIT:?}; frames seen but not taken: {:?}", self.inbox),
            }
        }
    }

    /// The first `event` pushed on `topic`.
    pub async fn event(&mut self, topic: &str, event: &str) -> Value {
        self.take(&format!("{event} on {topic}"), |frame| frame[2] == topic && frame[3] == event).await
    }

    /// Fails if a frame `unwanted` accepts is kept or arrives within `quiet`.
    pub async fn assert_none(&mut self, what: &str, quiet: Duration, unwanted: impl Fn(&Value) -> bool) {
        if let Some(frame) = self.inbox.iter().find(|frame| unwanted(frame)) {
            panic!("unexpected {what}: {frame}");
        }
        let deadline = tokio::time::Instant::now() + quiet;
        while let Some(frame) = self.read_until(deadline).await {
            assert!(!unwanted(&frame), "unexpected {what}: {frame}");
            self.inbox.push_back(frame);
        }
    }

    /// Joins `topic` with `payload`; returns the reply frame.
    pub async fn join(&mut self, topic: &str, payload: Value) -> Value {
        let reference = self.reference();
        self.joins.insert(topic.to_owned(), reference.clone());
        self.send(json!([reference, reference, topic, "phx_join", payload])).await;
        self.reply(topic, &reference).await
    }

    /// Joins `topic` and returns the reply's `response`, failing unless the join succeeded.
    pub async fn join_ok(&mut self, topic: &str, payload: Value) -> Value {
        let reply = self.join(topic, payload).await;
        assert_eq!(reply[4]["status"], "ok", "joining {topic} failed: {reply}");
        reply[4]["response"].clone()
    }

    /// Pushes `event` to the joined `topic`; returns the reply frame.
    pub async fn push(&mut self, topic: &str, event: &str, payload: Value) -> Value {
        let reference = self.reference();
        let join_ref = self.join_ref(topic);
        self.send(json!([join_ref, reference, topic, event, payload])).await;
        self.reply(topic, &reference).await
    }

    /// The reply with `reference` on `topic`.
    pub async fn reply(&mut self, topic: &str, reference: &str) -> Value {
        let what = format!("phx_reply {reference} on {topic}");
        self.take(&what, |frame| frame[1] == reference && frame[2] == topic && frame[3] == "phx_reply").await
    }

    /// Waits for the server's close frame (other frames are skipped) and returns its code.
    pub async fn close_code(&mut self) -> CloseCode {
        self.close_frame().await.0
    }

    /// Waits for the server's close frame (other frames are skipped) and returns its code and reason.
    pub async fn close_frame(&mut self) -> (CloseCode, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("the socket closes in time") {
                Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// Polls `condition` every 10 ms until it holds; fails after [`WAIT`] with `what`.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `reason` of an error reply frame; fails unless the reply is an error.
pub fn error_reason(reply: &Value) -> &str {
    assert_eq!(reply[4]["status"], "error", "expected an error reply: {reply}");
    reply[4]["response"]["reason"].as_str().unwrap_or_else(|| panic!("an error reply without a reason: {reply}"))
}
