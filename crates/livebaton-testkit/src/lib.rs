//! # livebaton-testkit
//!
//! Test live views and channels as their users would, over real sockets, without a browser: like Phoenix's
//! `LiveViewTest` and `ChannelTest`. Add it as a dev-dependency.
//!
//! - [`TestServer`]: the application's router on a free loopback port, stopped when the test ends.
//! - [`get`]: an HTTP GET with headers (cookies): status, headers and body ([`Answer`]).
//! - [`Peer`]: a Phoenix Channels V2 client. Frames it reads while waiting for something else are kept, so a test can
//!   wait for one event without losing the others.
//! - [`LivePage`]: a live page opened as a browser opens it (the static render, then the socket join with the page's
//!   token), clicked, typed into and submitted, with its regions as they are now and the diffs pushed to it.
//! - [`eventually`]: a condition polled until it holds.
//!
//! Every wait is bounded by [`WAIT`] and fails the test with what it waited for.
//!
//! ```no_run
//! # async fn test(app: axum::Router) {
//! use livebaton_testkit::{LivePage, TestServer};
//! use serde_json::json;
//!
//! let server = TestServer::start(app).await;
//! let mut page = LivePage::open(&server, "/", &[]).await.expect("the page renders");
//! assert!(page.region("count").contains("<b>0</b>"));
//! let reply = page.click("inc", json!({})).await;
//! assert!(reply.region("count").contains("<b>1</b>"));
//! # }
//! ```

#![warn(missing_docs)]

mod http;
mod live;
mod peer;
mod server;

use std::time::Duration;

pub use http::{Answer, get};
pub use live::{EventReply, LivePage};
pub use peer::{Peer, Refusal, connect, error_reason, ws_request};
pub use server::TestServer;

/// The longest any single wait (a frame, a close, a condition) may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Polls `condition` every 5 ms until it holds; fails after [`WAIT`] with `what`.
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    eventually_within(what, WAIT, condition).await;
}

/// [`eventually`] with its own bound (a cluster that must notice a dead node, a backend that reconnects).
pub async fn eventually_within(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// [`eventually_within`] with an async condition.
pub async fn eventually_async<F: Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
