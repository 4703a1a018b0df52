//! The [`LiveView`] trait: what a live page is.
//!
//! Object-safe (futures are boxed) so the registry can hold views of many types and build one per join. A view keeps
//! its state in `self` (the "assigns"); the runtime calls `render` after every callback and sends the changed regions.

use std::sync::Arc;

use livebaton::pubsub::Broadcast;
use serde_json::{Map, Value};

use super::html::Html;
use super::socket::{LiveSocket, Session};
use crate::channel::BoxFuture;

/// Why a view (or a hook) refused to mount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// Halt and send the client elsewhere (signed out, not allowed): `{"reason": "redirect", "redirect": {"to"}}`.
    #[error("redirect to {to}")]
    Redirect {
        /// Where to.
        to: String,
    },
    /// The thing the page shows does not exist.
    #[error("not found")]
    NotFound,
    /// Anything else, with a reason the client may see.
    #[error("{0}")]
    Failed(String),
}

impl MountError {
    /// Halts with a redirect to `to`.
    pub fn redirect(to: impl Into<String>) -> Self {
        MountError::Redirect { to: to.into() }
    }
}

/// A live page. Its methods run on the view's own task, one at a time.
pub trait LiveView: Send + 'static {
    /// Sets up the view from its (signed) params; runs after the hooks, for the first HTTP render and again for the
    /// socket join. Subscribe and track through `socket`: they last as long as the view.
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>>;

    /// A client event: `phx-click` (value: the `phx-value-*` object), `phx-change` / `phx-submit` (value: the form
    /// as an object of strings).
    fn handle_event<'a>(
        &'a mut self,
        name: &'a str,
        value: &'a Value,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, ()> {
        let _ = (name, value, socket);
        Box::pin(async {})
    }

    /// A broadcast on one of the socket's subscriptions.
    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        let _ = (message, socket);
        Box::pin(async {})
    }

    /// The whole page (or the part the layout wraps), with live regions marked `data-lb-region` and an `id`.
    fn render(&self) -> Html;
}
