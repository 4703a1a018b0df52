//! [`LiveViewRoute`]: the `lv:<view-id>` channel, and the first HTTP render that hands out the token to join it.
//!
//! Join payload: `{token, params?, tab_id?}`. The token must be ours, unexpired, and name this topic's view;
//! otherwise the join is refused with `{"reason": "expired"}` (the client says "this page expired, reload") or
//! `{"reason": "invalid"}`. Signed params win over client params of the same name: the client may add (a query it
//! changed since), never override what the server authorised.

use std::sync::Arc;
use std::time::SystemTime;

use livebaton::presence::{InvalidTabId, Presence, validate_tab_id};
use serde_json::{Map, Value, json};

use super::html::Html;
use super::registry::Registry;
use super::socket::{LiveSocket, Session};
use super::task::{LiveChannel, ViewState};
use super::token::ViewToken;
use super::view::MountError;
use crate::channel::{BoxFuture, ChannelRoute, JoinRequest, Joined, UserInfo};

/// The topic prefix of live views.
pub const TOPIC_PREFIX: &str = "lv:";

/// Serves the registry's views on `lv:*`. Cheap to clone: keep one for the HTTP handlers' first renders.
#[derive(Clone)]
pub struct LiveViewRoute {
    registry: Arc<Registry>,
    presence: Presence,
    secret: Arc<[u8]>,
}

/// The first, server-side render of a page.
#[derive(Clone, Debug)]
pub struct StaticPage {
    /// The view's HTML, to put in the layout.
    pub html: Html,
    /// The title the view set, if any.
    pub title: Option<String>,
    /// The signed token the client joins `lv:<view-id>` with.
    pub token: String,
    /// Flash messages put while mounting.
    pub flash: Map<String, Value>,
}

/// Why a first render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No view has this id.
    #[error("no live view {0:?}")]
    UnknownView(String),
    /// A hook or the view refused (a redirect, not found).
    #[error(transparent)]
    Mount(#[from] MountError),
}

impl LiveViewRoute {
    /// Views of `registry`, with presence (and its PubSub) for their sockets, and tokens signed with `secret`.
    pub fn new(registry: Registry, presence: Presence, secret: impl Into<Vec<u8>>) -> Self {
        LiveViewRoute { registry: Arc::new(registry), presence, secret: secret.into().into() }
    }

    /// A token for `view` with `params`, valid from now.
    pub fn token(&self, view: &str, params: &Map<String, Value>) -> String {
        ViewToken::sign(&self.secret, view, params, SystemTime::now())
    }

    /// Mounts `view` without a socket and renders it (readable without JavaScript), with the token to go live.
    ///
    /// # Errors
    /// [`RenderError::UnknownView`], or the hook's or view's [`MountError`] (send a redirect for `Redirect`).
    pub async fn render_static(
        &self,
        view: &str,
        params: Map<String, Value>,
        user: Arc<UserInfo>,
    ) -> Result<StaticPage, RenderError> {
        let entry = self.registry.get(view).ok_or_else(|| RenderError::UnknownView(view.to_owned()))?;
        let session = Session { user, connection_id: Arc::from("static"), tab_id: None };
        let mut socket = LiveSocket::disconnected(session, self.presence.clone());
        let mounted = entry.mount(&params, &mut socket).await?;
        Ok(StaticPage {
            html: mounted.render(),
            title: socket.title.clone(),
            token: self.token(view, &params),
            flash: std::mem::take(&mut socket.flash),
        })
    }

    async fn join_view(&self, request: JoinRequest<'_>) -> Result<Joined, Value> {
        let invalid = || json!({"reason": "invalid"});
        let view = request.topic.strip_prefix(TOPIC_PREFIX).ok_or_else(invalid)?;
        let token = request.payload.get("token").and_then(Value::as_str).ok_or_else(invalid)?;
        let claims = ViewToken::verify(&self.secret, token, SystemTime::now())
            .map_err(|error| json!({"reason": error.reason()}))?;
        if claims.view != view {
            return Err(invalid());
        }
        let entry = self.registry.get(view).ok_or_else(|| json!({"reason": "unknown view"}))?;
        let mut params = match request.payload.get("params") {
            Some(Value::Object(params)) => params.clone(),
            _ => Map::new(),
        };
        params.extend(claims.params);
        // The tab id goes into presence metas that every member of a session receives: refuse anything but a short
        // plain id, and say why in the reply (phoenix.js retries refused joins, so closing would loop).
        let tab_id = match request.payload.get("tab_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(tab)) if tab.is_empty() => None,
            Some(Value::String(tab)) if validate_tab_id(tab).is_ok() => Some(Arc::from(tab.as_str())),
            Some(_) => return Err(json!({"reason": InvalidTabId.to_string()})),
        };
        let session =
            Session { user: request.socket.user.clone(), connection_id: request.socket.connection_id.clone(), tab_id };
        let (mut socket, inbox) = LiveSocket::connected(session, self.presence.clone());
        let mounted = match entry.mount(&params, &mut socket).await {
            Ok(mounted) => mounted,
            Err(error) => return Err(refusal(error, &mut socket)),
        };
        let mut state = ViewState::new(mounted, socket);
        let reply = state.join_reply();
        Ok(Joined { reply, channel: Box::new(LiveChannel::new(state, inbox)), subscriptions: vec![] })
    }
}

/// The join error reply for a refused mount.
fn refusal(error: MountError, socket: &mut LiveSocket) -> Value {
    let mut reply = match error {
        MountError::Redirect { to } => json!({"reason": "redirect", "redirect": {"to": to}}),
        MountError::NotFound => json!({"reason": "not_found"}),
        MountError::Failed(reason) => json!({"reason": reason}),
    };
    if !socket.flash.is_empty() {
        reply["flash"] = Value::Object(std::mem::take(&mut socket.flash));
    }
    reply
}

impl ChannelRoute for LiveViewRoute {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        Box::pin(self.join_view(request))
    }
}
