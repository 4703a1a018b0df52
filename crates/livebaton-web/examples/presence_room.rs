//! Who is here, live: a room that lists everyone with the page open, with names from the application's own user
//! type, cleaned up by itself when a page goes away.
//!
//! `cargo run -p livebaton-web --example presence_room`, then open <http://127.0.0.1:4000> in two browsers (or a
//! private window) and pick two names. The `member` cookie stands in for the application's real sign-in: here anyone
//! may pick any name.

use livebaton::Engine;
use livebaton::presence::Meta;
use livebaton::pubsub::Broadcast;
use livebaton_web::app::{Authentication, Caller, CallerKind, LiveApp, LiveHandle};
use livebaton_web::channel::{BoxFuture, UserInfo};
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session, percent_decode};
use serde_json::{Map, Value, json};
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// The presence topic of the room.
pub const ROOM: &str = "room:lobby";

/// The application's own record of a user: what its sign-in gives, carried by the socket to every view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The name they picked.
    pub name: String,
    /// A colour for their badge, drawn from the name.
    pub color: &'static str,
}

impl Member {
    fn named(name: &str) -> Member {
        const COLORS: [&str; 5] = ["teal", "plum", "amber", "slate", "coral"];
        let index = name.bytes().map(usize::from).sum::<usize>() % COLORS.len();
        Member { name: name.to_owned(), color: COLORS[index] }
    }
}

/// Who calls: the member named by the `member` cookie. Pages without it go to `/join`; sockets without it are
/// refused.
async fn authenticate(caller: Caller) -> Authentication {
    let cookies = caller.headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok());
    let name = cookies
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix("member="))
        .map(percent_decode)
        .filter(|name| !name.trim().is_empty() && name.chars().count() <= 40);
    match (name, caller.kind) {
        (Some(name), _) => Ok(Some(UserInfo::new(&name, &name, "", "member").with_data(Member::named(&name)))),
        (None, CallerKind::Page) => Err(Redirect::to("/join").into_response()),
        (None, CallerKind::Socket) => Err((StatusCode::FORBIDDEN, "pick a name first").into_response()),
    }
}

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

/// `GET /join?name=…`: sets the `member` cookie and goes to the room; without a name, the form to pick one.
async fn join(axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>) -> Response {
    let name = query.into_iter().find(|(key, _)| key == "name").map(|(_, name)| name.trim().to_owned());
    match name.filter(|name| !name.is_empty() && name.chars().count() <= 40) {
        Some(name) => {
            let encoded: String = name
                .bytes()
                .map(|byte| match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => char::from(byte).to_string(),
                    other => format!("%{other:02X}"),
                })
                .collect();
            let cookie = format!("member={encoded}; Path=/; HttpOnly; SameSite=Lax");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        None => axum::response::Html(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Pick a name</title></head><body>
<form action="/join" method="get"><label>Your name <input name="name" maxlength="40" required></label>
<button>Enter the room</button></form></body></html>"#,
        )
        .into_response(),
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
    let secret = std::env::var("SECRET").map(String::into_bytes).unwrap_or_else(|_| random_secret());
    let (app, handle) = app(&engine, secret);
    let port = std::env::var("PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(4000u16);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("presence room on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            handle.shutdown();
        })
        .await
}

/// 32 bytes from the standard library's per-process random hash keys (an example needs no crate for this).
fn random_secret() -> Vec<u8> {
    use std::hash::{BuildHasher, RandomState};
    (0..4u64).flat_map(|part| RandomState::new().hash_one(part).to_le_bytes()).collect()
}
