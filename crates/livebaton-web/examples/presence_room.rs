//! Who is here, live: a room that lists everyone with the page open, with names from the application's own user
//! type, cleaned up by itself when a page goes away.
//!
//! `cargo run -p livebaton-web --example presence_room`, then open <http://127.0.0.1:4000> in two browsers (or a
//! private window) and pick two names. The `member` cookie stands in for the application's real sign-in: here anyone
//! may pick any name.

mod common;

use std::sync::Arc;

use common::{Member, authenticate, join};
use livebaton::Engine;
use livebaton::presence::Meta;
use livebaton::pubsub::Broadcast;
use livebaton_web::app::{LiveApp, LiveHandle};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use serde_json::{Map, Value, json};

/// The presence topic of the room.
pub const ROOM: &str = "room:lobby";

/// The room: everyone with the page open, in the order they came.
#[derive(Default)]
pub struct Room {
    me: String,
    /// `(name, colour, open pages)` of everyone here.
    members: Vec<(String, String, usize)>,
}

impl Room {
    /// Reads the room's roster again (after a `presence_diff`).
    fn refresh(&mut self, socket: &LiveSocket) {
        let list = socket.presence().list(ROOM);
        self.members = list
            .iter()
            .filter_map(|(_key, entry)| {
                let meta = entry.metas.first()?;
                Some((meta.get_str("name")?.to_owned(), meta.get_str("color")?.to_owned(), entry.metas.len()))
            })
            .collect();
    }
}

impl LiveView for Room {
    fn mount<'a>(
        &'a mut self,
        _params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let member = session.user.data::<Member>().cloned().ok_or_else(|| MountError::redirect("/join"))?;
            self.me = member.name.clone();
            socket.set_title("Who is here");
            // Both last as long as the page: nothing to clean up when it closes.
            socket.subscribe(ROOM);
            let meta: Meta = [("name".to_owned(), json!(member.name)), ("color".to_owned(), json!(member.color))]
                .into_iter()
                .collect();
            socket.track(ROOM, session.user.id(), meta).await.map_err(|error| MountError::Failed(error.to_string()))?;
            self.refresh(socket);
            Ok(())
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        if message.event() == "presence_diff" {
            self.refresh(socket);
        }
        Box::pin(async {})
    }

    fn render(&self) -> Html {
        let items: String = self
            .members
            .iter()
            .map(|(name, color, pages)| {
                let you = if *name == self.me { " (you)" } else { "" };
                let tabs = if *pages > 1 { format!(" · {pages} pages") } else { String::new() };
                format!(r#"<li data-color="{}">{}{you}{tabs}</li>"#, Html::escape(color), Html::escape(name))
            })
            .collect();
        Html::new(format!(
            r#"<h1>Who is here</h1><p>Signed in as <b>{}</b>.</p><ul id="members" data-lb-region>{items}</ul>"#,
            Html::escape(&self.me)
        ))
    }
}

/// The application's routes: its own `/join`, and the room at `/` with its socket.
pub fn app(engine: &Engine, secret: Vec<u8>) -> (axum::Router, LiveHandle) {
    let (live, handle) = LiveApp::new(engine, secret)
        .authenticate(authenticate)
        .sign_in("/join")
        .live("/", "room", Room::default)
        .build();
    (axum::Router::new().route("/join", axum::routing::get(join)).merge(live), handle)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let engine = Engine::new(Default::default());
    let (app, handle) = app(&engine, common::secret());
    common::serve("presence room", app, handle).await
}
