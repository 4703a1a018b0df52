//! The route and the view task without a network: joins, event routing, hooks, broadcasts.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use livebaton::pubsub::{Broadcast, JsonMessage};
use livebaton::{Engine, EngineConfig};
use serde_json::{Map, Value, json};

use super::super::{
    Html, LiveSession, LiveSocket, LiveView, LiveViewRoute, MountError, Registry, RequireRole, Session, ViewToken,
};
use crate::channel::{BoxFuture, Channel, ChannelRoute, JoinRequest, Pusher, Responder, SocketInfo, UserInfo};
use crate::outbound::Outbound;
use crate::protocol::ReplyStatus;

const SECRET: &[u8] = b"test secret";

#[derive(Default)]
struct Form {
    name: String,
    clicks: u32,
    last: Value,
}

impl LiveView for Form {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        _session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        self.name = params.get("name").and_then(Value::as_str).unwrap_or("none").to_owned();
        socket.subscribe("form:updates");
        socket.set_title("Form");
        Box::pin(async { Ok(()) })
    }

    fn handle_event<'a>(
        &'a mut self,
        name: &'a str,
        value: &'a Value,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, ()> {
        match name {
            "click" => self.clicks += 1,
            "save" => {
                self.last = value.clone();
                socket.put_flash("info", "Saved");
                socket.set_title("Saved");
            }
            "leave" => socket.navigate("/elsewhere"),
            "shout" => {
                let message = JsonMessage::new("rename", json!({"name": "shouted"}));
                socket.pubsub().broadcast("form:updates", message).unwrap();
                self.clicks += 1;
            }
            "boom" => panic!("view crash"),
            // Busy for a while: broadcasts meanwhile wait in the view's inbox and its topic's ring.
            "nap" => return Box::pin(tokio::time::sleep(Duration::from_millis(300))),
            _ => {}
        }
        Box::pin(async {})
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, _socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        if let Some(name) = message.payload_json().get("name").and_then(Value::as_str) {
            self.name = name.to_owned();
        }
        Box::pin(async {})
    }

    fn render(&self) -> Html {
        Html(format!(
            r#"<h1 id="name" data-lb-region>{}</h1><p id="clicks" data-lb-region>{}</p><pre id="last" data-lb-region>{}</pre>"#,
            Html::escape(&self.name),
            self.clicks,
            Html::escape(&self.last.to_string())
        ))
    }
}

struct Harness {
    engine: Engine,
    route: LiveViewRoute,
    pusher: Pusher,
    frames: Arc<Outbound>,
    info: SocketInfo,
}

fn harness(role: &str) -> Harness {
    let engine = Engine::new(EngineConfig::default());
    let registry = Registry::new()
        .view("form", Form::default)
        .session(LiveSession::new().on_mount(RequireRole::new(&["admin"], "/login")).view("admin", Form::default));
    let route = LiveViewRoute::new(registry, engine.presence.clone(), SECRET);
    let frames = Outbound::new(16);
    let pusher = Pusher::new(frames.clone(), Arc::from("lv:form"), None);
    let user = UserInfo::new("1", "Ann", "", role);
    let info = SocketInfo { connection_id: Arc::from("c1"), user: Arc::new(user) };
    Harness { engine, route, pusher, frames, info }
}

impl Harness {
    async fn join(&self, topic: &str, payload: Value) -> Result<Box<dyn Channel>, Value> {
        let request = JoinRequest { topic, payload, socket: &self.info, pusher: &self.pusher };
        let joined = self.route.join(request).await?;
        assert!(joined.subscriptions.is_empty());
        let mut channel = joined.channel;
        assert_eq!(joined.reply["rendered"]["regions"].as_object().map(Map::len), Some(3), "{}", joined.reply);
        channel.after_join(&self.pusher).await;
        Ok(channel)
    }

    async fn next_push(&mut self) -> Value {
        let mut batch = Vec::new();
        let next = std::future::poll_fn(|cx| self.frames.poll_frames(cx, &mut batch, 1));
        tokio::time::timeout(Duration::from_secs(5), next).await.unwrap();
        serde_json::from_slice(&batch[0]).unwrap()
    }
}

fn token(view: &str, params: Value) -> String {
    ViewToken::sign(SECRET, view, params.as_object().unwrap(), SystemTime::now())
}

/// Sends an event as the transport does, and returns its reply (skipping pushes sent before it).
async fn event(harness: &mut Harness, channel: &mut Box<dyn Channel>, payload: Value) -> (ReplyStatus, Value) {
    send_event(harness, channel, payload).await;
    loop {
        let frame = harness.next_push().await;
        if frame[3] == "phx_reply" {
            assert_eq!(frame[1], "7");
            let status = if frame[4]["status"] == "ok" { ReplyStatus::Ok } else { ReplyStatus::Error };
            return (status, frame[4]["response"].clone());
        }
    }
}

async fn send_event(harness: &Harness, channel: &mut Box<dyn Channel>, payload: Value) {
    let pusher = harness.pusher.clone();
    channel.handle_in_with("event", payload, Responder::new(pusher.clone(), Some("7".into())), &pusher).await;
}

#[tokio::test]
async fn events_are_routed_and_reply_with_changed_regions_only() {
    let mut harness = harness("editor");
    let mut channel = harness.join("lv:form", json!({"token": token("form", json!({"name": "<b>"}))})).await.unwrap();
    let h = &mut harness;
    let (status, reply) = event(h, &mut channel, json!({"type": "click", "event": "click", "value": {}})).await;
    assert_eq!(status, ReplyStatus::Ok);
    assert_eq!(reply, json!({"regions": {"clicks": r#"<p id="clicks" data-lb-region>1</p>"#}}));
    let form = json!({"type": "submit", "event": "save", "value": "title=a+b&n=%3C1%3E"});
    let (_, reply) = event(h, &mut channel, form).await;
    assert_eq!(reply["regions"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["last"]);
    assert!(reply["regions"]["last"].as_str().unwrap().contains("&quot;title&quot;:&quot;a b&quot;"));
    assert_eq!(reply["flash"], json!({"info": "Saved"}));
    assert_eq!(reply["title"], "Saved");
    let (_, reply) = event(h, &mut channel, json!({"type": "click", "event": "nothing"})).await;
    assert_eq!(reply, json!({"regions": {}}));
    let (_, reply) = event(h, &mut channel, json!({"type": "click", "event": "leave"})).await;
    assert_eq!(reply["navigate"], json!({"to": "/elsewhere"}));
    let pusher = h.pusher.clone();
    channel.handle_in_with("other", json!({}), Responder::new(pusher.clone(), Some("7".into())), &pusher).await;
    let reply = h.next_push().await;
    assert_eq!((&reply[3], &reply[4]["status"]), (&json!("phx_reply"), &json!("error")), "{reply}");
}

/// The view's own broadcast, handled after the event, reaches the client after the event's reply: the reply and the
/// diff leave from the same task in order.
#[tokio::test]
async fn a_diff_caused_by_an_event_follows_its_reply() {
    let mut harness = harness("editor");
    let mut channel = harness.join("lv:form", json!({"token": token("form", json!({}))})).await.unwrap();
    send_event(&harness, &mut channel, json!({"type": "click", "event": "shout"})).await;
    let first = harness.next_push().await;
    assert_eq!(first[3], "phx_reply", "the reply comes first: {first}");
    assert!(first[4]["response"]["regions"]["clicks"].is_string(), "{first}");
    let second = harness.next_push().await;
    assert_eq!(second[3], "diff", "{second}");
    assert_eq!(second[4]["regions"]["name"], r#"<h1 id="name" data-lb-region>shouted</h1>"#);
}

#[tokio::test]
async fn broadcasts_push_a_diff_and_the_subscription_ends_with_the_view() {
    let mut harness = harness("editor");
    let mut channel = harness.join("lv:form", json!({"token": token("form", json!({}))})).await.unwrap();
    let pubsub = harness.engine.pubsub.clone();
    pubsub.broadcast("form:updates", JsonMessage::new("rename", json!({"name": "Zoë"}))).unwrap();
    let push = harness.next_push().await;
    assert_eq!(push[3], "diff");
    assert_eq!(push[4], json!({"regions": {"name": r#"<h1 id="name" data-lb-region>Zoë</h1>"#}}));
    assert_eq!(pubsub.subscriber_count("form:updates"), 1);
    channel.terminate(crate::channel::Termination::Left);
    drop(channel);
    tokio::time::timeout(Duration::from_secs(5), async {
        while pubsub.subscriber_count("form:updates") > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the subscription ends with the view");
}

#[tokio::test]
async fn a_panicking_view_reports_phx_error_and_refuses_later_events() {
    let mut harness = harness("editor");
    let mut channel = harness.join("lv:form", json!({"token": token("form", json!({}))})).await.unwrap();
    send_event(&harness, &mut channel, json!({"type": "click", "event": "boom"})).await;
    let push = harness.next_push().await;
    assert_eq!(push[3], "phx_error");
    let (status, reply) = event(&mut harness, &mut channel, json!({"type": "click", "event": "click"})).await;
    assert_eq!((status, reply), (ReplyStatus::Error, json!({"reason": "view crashed"})));
}

/// A view that fell behind its subscriptions missed broadcasts, so it may show stale data: it ends with `phx_error`
/// `{reason: "lagged"}`, as after a crash, so that the client rejoins and the view mounts afresh.
#[tokio::test]
async fn a_view_that_fell_behind_its_broadcasts_asks_the_client_to_rejoin() {
    let mut harness = harness("editor");
    let mut channel = harness.join("lv:form", json!({"token": token("form", json!({}))})).await.unwrap();
    send_event(&harness, &mut channel, json!({"type": "click", "event": "nap"})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // More than the topic's ring (128) and the view's inbox (64) hold while it is busy.
    for _ in 0..400 {
        let message = JsonMessage::new("rename", json!({"name": "flood"}));
        harness.engine.pubsub.broadcast("form:updates", message).unwrap();
    }
    let mut events = Vec::new();
    for _ in 0..8 {
        let push = harness.next_push().await;
        events.push(push[3].clone());
        if push[3] == "phx_error" {
            assert_eq!(push[4], json!({"reason": "lagged"}));
            break;
        }
    }
    assert_eq!(events.last(), Some(&json!("phx_error")), "pushed: {events:?}");
    let (status, reply) = event(&mut harness, &mut channel, json!({"type": "click", "event": "click"})).await;
    assert_eq!((status, reply), (ReplyStatus::Error, json!({"reason": "view crashed"})));
}

#[tokio::test]
async fn tokens_are_checked_on_join() {
    let harness = harness("editor");
    let expired = ViewToken::sign(SECRET, "form", &Map::new(), SystemTime::now() - Duration::from_secs(3 * 60 * 60));
    let refused = |result: Result<Box<dyn Channel>, Value>| result.err().unwrap();
    assert_eq!(refused(harness.join("lv:form", json!({"token": expired})).await), json!({"reason": "expired"}));
    let forged = ViewToken::sign(b"other", "form", &Map::new(), SystemTime::now());
    assert_eq!(refused(harness.join("lv:form", json!({"token": forged})).await), json!({"reason": "invalid"}));
    // A genuine token for another view does not open this one.
    let other = token("admin", json!({}));
    assert_eq!(refused(harness.join("lv:form", json!({"token": other})).await), json!({"reason": "invalid"}));
    assert_eq!(refused(harness.join("lv:form", json!({})).await), json!({"reason": "invalid"}));
}

#[tokio::test]
async fn hooks_halt_with_a_redirect_before_mount() {
    let harness = harness("viewer");
    let refused = harness.join("lv:admin", json!({"token": token("admin", json!({}))})).await.err().unwrap();
    assert_eq!(refused["reason"], "redirect");
    assert_eq!(refused["redirect"], json!({"to": "/login"}));
    assert!(refused["flash"]["error"].is_string());
    let user = harness.info.user.clone();
    let error = harness.route.render_static("admin", Map::new(), user.clone()).await.unwrap_err();
    assert_eq!(error.to_string(), "redirect to /login");
    // A signed param wins over a client param of the same name.
    let page = harness.route.render_static("form", json!({"name": "Bo"}).as_object().cloned().unwrap(), user).await;
    let page = page.unwrap();
    assert!(page.html.as_str().contains(">Bo</h1>"));
    assert_eq!(page.title.as_deref(), Some("Form"));
    let payload = json!({"token": page.token, "params": {"name": "Eve", "extra": 1}});
    assert!(harness.join("lv:form", payload).await.is_ok());
}

#[tokio::test]
async fn an_admin_passes_the_hook() {
    let harness = harness("admin");
    assert!(harness.join("lv:admin", json!({"token": token("admin", json!({}))})).await.is_ok());
}
