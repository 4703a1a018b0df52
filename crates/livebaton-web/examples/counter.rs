//! The smallest live page: a counter that stays on the server and updates in place.
//!
//! `cargo run -p livebaton-web --example counter`, then open <http://127.0.0.1:4000>. Each page has its own count;
//! clicking sends an event over the socket, the view changes its state, and only the region that changed is sent back.

mod common;

use livebaton::Engine;
use livebaton_web::app::{LiveApp, LiveHandle};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
use serde_json::{Map, Value};

/// The view's state (its "assigns"): one per open page.
#[derive(Default)]
pub struct Counter {
    count: i64,
}

impl LiveView for Counter {
    fn mount<'a>(
        &'a mut self,
        _params: &'a Map<String, Value>,
        _session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        socket.set_title("Counter");
        Box::pin(async { Ok(()) })
    }

    fn handle_event<'a>(&'a mut self, name: &'a str, _value: &'a Value, _: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        match name {
            "inc" => self.count += 1,
            "dec" => self.count -= 1,
            _ => {}
        }
        Box::pin(async {})
    }

    fn render(&self) -> Html {
        // A live region is an element with an id and `data-lb-region`: only regions whose HTML changed are sent.
        Html::new(format!(
            r#"<h1>Counter</h1>
<p id="count" data-lb-region aria-live="polite">The count is <b>{}</b>.</p>
<button type="button" phx-click="dec">−1</button> <button type="button" phx-click="inc">+1</button>"#,
            self.count
        ))
    }
}

/// The application's routes: the counter at `/`, its socket and the client script.
pub fn app(engine: &Engine, secret: Vec<u8>) -> (axum::Router, LiveHandle) {
    LiveApp::new(engine, secret).live("/", "counter", Counter::default).build()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let engine = Engine::new(Default::default());
    let (live, handle) = app(&engine, common::secret());
    common::serve("counter", live, handle).await
}
