//! [`LiveSocket`]: everything a view may do besides rendering — subscribe, track presence, flash, navigate.
//!
//! The socket, not the view, owns subscriptions and presence guards, and the runtime owns the socket: when the view
//! task ends (leave, disconnect, crash) they end with it, so views never write cleanup code. Before the socket is
//! connected (the first HTTP render) subscribing and tracking do nothing: a static page has nobody to push to.

use std::collections::HashSet;
use std::sync::Arc;

use livebaton::presence::{Meta, Presence, PresenceError, TrackGuard};
use livebaton::pubsub::{Broadcast, PubSub, RecvError};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::channel::{Termination, UserInfo};

/// Who is looking at the view, and from where.
#[derive(Clone, Debug)]
pub struct Session {
    /// The signed-in person (as the socket authenticated them).
    pub user: Arc<UserInfo>,
    /// The connection (unique per process); `"static"` for the first HTTP render.
    pub connection_id: Arc<str>,
    /// The browser tab's id (kept in `sessionStorage` by the client), so a reloaded tab can reclaim its place.
    pub tab_id: Option<Arc<str>>,
}

/// A redirect (full page load) or a navigation (leave this view, join the next).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Navigation {
    /// Full page load of `to`.
    Redirect(String),
    /// Client-side navigation to `to`.
    Navigate(String),
}

/// What subscriptions forward to the view task.
pub(crate) type Inbound = Result<Arc<Broadcast>, RecvError>;

/// How many broadcasts may wait for a busy view before its subscriptions fall behind (and report lag).
const INBOX: usize = 64;

/// Aborts a forwarding task when dropped, which drops its subscription.
struct Forwarder(AbortHandle);

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A view's handle on the runtime.
pub struct LiveSocket {
    session: Session,
    presence: Presence,
    /// `Some` once connected: where subscriptions forward their broadcasts.
    inbox: Option<mpsc::Sender<Inbound>>,
    forwarders: Vec<Forwarder>,
    topics: HashSet<String>,
    guards: Vec<TrackGuard>,
    pub(crate) title: Option<String>,
    pub(crate) flash: Map<String, Value>,
    pub(crate) navigation: Option<Navigation>,
}

impl LiveSocket {
    /// A socket for the first HTTP render: subscriptions and tracking are no-ops.
    pub fn disconnected(session: Session, presence: Presence) -> Self {
        LiveSocket {
            session,
            presence,
            inbox: None,
            forwarders: Vec::new(),
            topics: HashSet::new(),
            guards: Vec::new(),
            title: None,
            flash: Map::new(),
            navigation: None,
        }
    }

    /// A connected socket, and the receiver where its subscriptions' broadcasts arrive.
    pub(crate) fn connected(session: Session, presence: Presence) -> (Self, mpsc::Receiver<Inbound>) {
        let (sender, receiver) = mpsc::channel(INBOX);
        let mut socket = Self::disconnected(session, presence);
        socket.inbox = Some(sender);
        (socket, receiver)
    }

    /// Whether the view runs over a socket (false during the first HTTP render).
    pub fn is_connected(&self) -> bool {
        self.inbox.is_some()
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The PubSub, to broadcast.
    pub fn pubsub(&self) -> &PubSub {
        self.presence.pubsub()
    }

    /// The presence tracker, to list who is where.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Delivers `topic`'s broadcasts to `handle_info` for as long as the view lives. Subscribing twice is a no-op.
    pub fn subscribe(&mut self, topic: &str) {
        let Some(inbox) = &self.inbox else { return };
        if !self.topics.insert(topic.to_owned()) {
            return;
        }
        let mut subscription = self.presence.pubsub().subscribe(topic);
        let inbox = inbox.clone();
        let task = tokio::spawn(async move {
            loop {
                let received = subscription.recv().await;
                let closed = matches!(received, Err(RecvError::Closed));
                if inbox.send(received).await.is_err() || closed {
                    return;
                }
            }
        });
        self.forwarders.push(Forwarder(task.abort_handle()));
    }

    /// Tracks `key` on `topic` (in this tab) until the view ends.
    ///
    /// # Errors
    /// As [`Presence::track_in_tab`].
    pub async fn track(&mut self, topic: &str, key: &str, meta: Meta) -> Result<(), PresenceError> {
        if !self.is_connected() {
            return Ok(());
        }
        let tab = self.session.tab_id.clone();
        let guard = self.presence.track_in_tab(topic, key, meta, tab.as_deref()).await?;
        self.guards.push(guard);
        Ok(())
    }

    /// Keeps a guard the view obtained itself (an editing session) until the view ends.
    pub fn keep(&mut self, guard: TrackGuard) {
        self.guards.push(guard);
    }

    /// Shows `message` as a flash of `kind` (`info`, `error`) with the next update.
    pub fn put_flash(&mut self, kind: &str, message: impl Into<String>) {
        self.flash.insert(kind.to_owned(), Value::String(message.into()));
    }

    /// Sets the page title; the client is sent it when it changes.
    pub fn set_title(&mut self, title: impl Into<String>) {
        self.title = Some(title.into());
    }

    /// Asks the client for a full page load of `to`.
    pub fn redirect(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Redirect(to.into()));
    }

    /// Asks the client to navigate to `to` (leave this view, join the next).
    pub fn navigate(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Navigate(to.into()));
    }

    /// Ends the socket's subscriptions and presences: at once for a leave, after the grace period for a disconnect
    /// (so a reloading tab can reclaim its place).
    pub(crate) fn close(&mut self, reason: Termination) {
        self.forwarders.clear();
        for guard in self.guards.drain(..) {
            match reason {
                Termination::Closed => drop(guard),
                Termination::Left | Termination::Shutdown | Termination::Replaced => guard.leave(),
            }
        }
    }
}

impl std::fmt::Debug for LiveSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSocket").field("session", &self.session).field("topics", &self.topics).finish()
    }
}
