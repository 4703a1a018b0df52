//! Live views over a real socket: a Counter view joined with a signed token, clicked, updated by a broadcast, and
//! refused for an expired token or a missing role. Clients are livebaton-testkit peers speaking raw Phoenix V2 frames.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use livebaton::pubsub::{Broadcast, JsonMessage};
use livebaton::{Engine, EngineConfig};
use livebaton_testkit::{Peer, TestServer, ws_request};
use livebaton_web::channel::{BoxFuture, Router, UserInfo};
use livebaton_web::config::SocketConfig;
use livebaton_web::endpoint::{LiveEndpoint, ShutdownHandle, vsn_supported};
use livebaton_web::live::{
    Html, LiveSession, LiveSocket, LiveView, LiveViewRoute, MountError, Registry, RequireRole, Session, Subscribe,
    ViewToken,
};
use livebaton_web::websocket::Upgrade;
use serde_json::{Map, Value, json};

const SECRET: &[u8] = b"integration secret";

/// A counter: `inc` clicks add one; a broadcast on `counter:<id>` sets the count.
#[derive(Default)]
struct Counter {
    id: String,
    count: i64,
    viewer: String,
}

impl LiveView for Counter {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        self.id = params.get("id").and_then(Value::as_str).unwrap_or("0").to_owned();
        self.viewer = session.user.name().to_owned();
        socket.subscribe(&format!("counter:{}", self.id));
        socket.set_title(format!("Counter {}", self.id));
        Box::pin(async { Ok(()) })
    }

    fn handle_event<'a>(
        &'a mut self,
        name: &'a str,
        _value: &'a Value,
        _socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, ()> {
        if name == "inc" {
            self.count += 1;
        }
        Box::pin(async {})
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, _socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        if let Some(count) = message.payload_json().get("count").and_then(Value::as_i64) {
            self.count = count;
        }
        Box::pin(async {})
    }

    fn render(&self) -> Html {
        Html(format!(
            r#"<main><section id="count" data-lb-region><b>{}</b></section><section id="status" data-lb-region>Watched by {}</section></main>"#,
            self.count,
            Html::escape(&self.viewer)
        ))
    }
}

struct Server {
    http: TestServer,
    engine: Engine,
    /// Dropping it would shut the endpoint down.
    _shutdown: ShutdownHandle,
}

#[derive(serde::Deserialize)]
struct Params {
    vsn: Option<String>,
    token: Option<String>,
}

async fn websocket(State(endpoint): State<LiveEndpoint>, Query(params): Query<Params>, upgrade: Upgrade) -> Response {
    if !vsn_supported(params.vsn.as_deref()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    // Test authentication: the token is `name:role`.
    let Some((name, role)) = params.token.as_deref().and_then(|token| token.split_once(':')) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let user = UserInfo::new(&format!("id-{name}"), name, "", role);
    endpoint.accept(upgrade, user)
}

async fn start() -> Server {
    let engine = Engine::new(EngineConfig::default());
    let registry = Registry::new()
        .view("counter", Counter::default)
        .session(
            LiveSession::new().on_mount(RequireRole::new(&["admin"], "/admin/login")).view("admin", Counter::default),
        )
        .session(LiveSession::new().on_mount(Subscribe::new(&["announcements"])).view("subscribed", Counter::default));
    let live = LiveViewRoute::new(registry, engine.presence.clone(), SECRET);
    let router = Router::new().channel("lv:*", live);
    let (endpoint, shutdown) = LiveEndpoint::new(router, SocketConfig::default());
    let app = axum::Router::new().route("/live/websocket", get(websocket)).with_state(endpoint);
    Server { http: TestServer::start(app).await, engine, _shutdown: shutdown }
}

async fn connect(server: &Server, user: &str) -> Peer {
    let url = server.http.socket_url(&format!("vsn=2.0.0&token={user}"));
    livebaton_testkit::connect(ws_request(&url, &[])).await.expect("connects").0
}

async fn send(client: &mut Peer, frame: Value) {
    client.send(frame).await;
}

/// The next text frame as JSON.
async fn next(client: &mut Peer) -> Value {
    client.take("a frame", |_| true).await
}

fn token(view: &str, params: Value, now: SystemTime) -> String {
    ViewToken::sign(SECRET, view, params.as_object().unwrap(), now)
}

/// Joins `topic` and returns the reply's `[status, response]`.
async fn join(client: &mut Peer, topic: &str, token: String) -> (String, Value) {
    let reply = client.join(topic, json!({"token": token, "tab_id": "tab-1"})).await;
    (reply[4]["status"].as_str().unwrap().to_owned(), reply[4]["response"].clone())
}

#[tokio::test]
async fn counter_joins_clicks_and_hears_broadcasts() {
    let server = start().await;
    let mut client = connect(&server, "ann:editor").await;
    let (status, response) =
        join(&mut client, "lv:counter", token("counter", json!({"id": "7"}), SystemTime::now())).await;
    assert_eq!(status, "ok", "{response}");
    assert_eq!(
        response,
        json!({
            "rendered": {"regions": {
                "count": r#"<section id="count" data-lb-region><b>0</b></section>"#,
                "status": r#"<section id="status" data-lb-region>Watched by ann</section>"#,
            }},
            "title": "Counter 7",
        })
    );

    send(&mut client, json!(["1", "2", "lv:counter", "event", {"type": "click", "event": "inc", "value": {}}])).await;
    let reply = next(&mut client).await;
    assert_eq!(reply[1], "2");
    assert_eq!(reply[4]["status"], "ok");
    assert_eq!(
        reply[4]["response"],
        json!({"regions": {"count": r#"<section id="count" data-lb-region><b>1</b></section>"#}})
    );

    let set = |count: i64| JsonMessage::new("set", json!({"count": count}));
    server.engine.pubsub.broadcast("counter:7", set(42)).unwrap();
    let push = next(&mut client).await;
    assert_eq!(push[3], "diff");
    assert_eq!(push[4], json!({"regions": {"count": r#"<section id="count" data-lb-region><b>42</b></section>"#}}));

    // A broadcast that changes nothing pushes nothing: the next frame is the heartbeat reply.
    server.engine.pubsub.broadcast("counter:7", set(42)).unwrap();
    send(&mut client, json!([null, "3", "phoenix", "heartbeat", {}])).await;
    let frame = next(&mut client).await;
    assert_eq!((frame[1].clone(), frame[3].clone()), (json!("3"), json!("phx_reply")));

    // Leaving ends the view and its subscription.
    send(&mut client, json!(["1", "4", "lv:counter", "phx_leave", {}])).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.engine.pubsub.subscriber_count("counter:7") > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the view's subscription ends when it leaves");
}

#[tokio::test]
async fn expired_and_forged_tokens_are_refused() {
    let server = start().await;
    let mut client = connect(&server, "ann:editor").await;
    let old = SystemTime::now() - Duration::from_secs(3 * 60 * 60);
    let (status, response) = join(&mut client, "lv:counter", token("counter", json!({"id": "1"}), old)).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "expired"})));
    let forged = ViewToken::sign(b"not the secret", "counter", &Map::new(), SystemTime::now());
    let (status, response) = join(&mut client, "lv:counter", forged).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "invalid"})));
}

#[tokio::test]
async fn a_hook_requiring_a_role_halts_with_a_redirect() {
    let server = start().await;
    let mut client = connect(&server, "bob:viewer").await;
    let (status, response) = join(&mut client, "lv:admin", token("admin", json!({}), SystemTime::now())).await;
    assert_eq!(status, "error");
    assert_eq!(response["reason"], "redirect");
    assert_eq!(response["redirect"], json!({"to": "/admin/login"}));

    let mut admin = connect(&server, "root:admin").await;
    let (status, _) = join(&mut admin, "lv:admin", token("admin", json!({}), SystemTime::now())).await;
    assert_eq!(status, "ok");
}

/// A live page's tab id reaches presence metas that others receive: a long or odd one refuses the join, and the reply
/// says why (phoenix.js retries refused joins, so the reason must be in the reply).
#[tokio::test]
async fn a_join_with_a_bad_tab_id_is_refused_with_its_reason() {
    let server = start().await;
    let mut client = connect(&server, "ann:editor").await;
    for (n, tab) in [json!("t".repeat(60_000)), json!("a b"), json!(7)].into_iter().enumerate() {
        let token = token("counter", json!({"id": "7"}), SystemTime::now());
        let reference = format!("{}", n + 1);
        send(&mut client, json!([reference, reference, "lv:counter", "phx_join", {"token": token, "tab_id": tab}]))
            .await;
        let reply = next(&mut client).await;
        assert_eq!(reply[4]["status"], "error", "{reply}");
        assert_eq!(reply[4]["response"]["reason"], "invalid tab_id: 1 to 64 characters of A-Z a-z 0-9 _ -");
    }
    let (status, response) =
        join(&mut client, "lv:counter", token("counter", json!({"id": "7"}), SystemTime::now())).await;
    assert_eq!(status, "ok", "a plain tab id joins: {response}");
}

/// A live session's `Subscribe` hook makes its views hear a topic they never subscribed to themselves; views outside
/// the session do not.
#[tokio::test]
async fn a_subscribe_hook_subscribes_every_view_of_its_session() {
    let server = start().await;
    let mut inside = connect(&server, "ann:editor").await;
    let (status, _) =
        join(&mut inside, "lv:subscribed", token("subscribed", json!({"id": "9"}), SystemTime::now())).await;
    assert_eq!(status, "ok");
    let mut outside = connect(&server, "bob:editor").await;
    let (status, _) = join(&mut outside, "lv:counter", token("counter", json!({"id": "9"}), SystemTime::now())).await;
    assert_eq!(status, "ok");
    assert_eq!(server.engine.pubsub.subscriber_count("announcements"), 1, "only the session's view");

    server.engine.pubsub.broadcast("announcements", JsonMessage::new("set", json!({"count": 5}))).unwrap();
    let push = next(&mut inside).await;
    assert_eq!(push[3], "diff");
    assert_eq!(push[4]["regions"]["count"], r#"<section id="count" data-lb-region><b>5</b></section>"#);
}
