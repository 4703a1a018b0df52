//! [`LiveApp`]: live pages, channels and their socket in an axum application, in a few lines.
//!
//! It builds one axum [`axum::Router`] to merge into the application's own:
//!
//! - `GET <path>` for each live page: mounts the view without a socket, renders it into the layout with a signed
//!   token ([`LivePage`]), so the page reads without JavaScript; the bundled client then joins it over the socket;
//! - `GET /live/websocket`: the Phoenix V2 socket (the bundled client and phoenix.js connect there), after the
//!   protocol version, the `Origin` (same host by default) and the application's [`Authenticate`] checks;
//! - `GET /assets/{file}`: the client at its content-hashed path;
//! - on all of them, the security headers of [`crate::headers`] (a strict Content-Security-Policy, no framing,
//!   `no-store`), unless the application brings its own.
//!
//! Who the user is stays the application's decision: an [`Authenticate`] (any async closure of a [`Caller`]) answers
//! for page requests and socket upgrades alike, with a [`UserInfo`] that may carry the application's own user type
//! ([`UserInfo::with_data`]). Without one every caller is anonymous.
//!
//! ```
//! use livebaton_web::app::LiveApp;
//! use livebaton_web::channel::BoxFuture;
//! use livebaton_web::live::{Html, LiveSocket, LiveView, MountError, Session};
//! use serde_json::{Map, Value};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl LiveView for Hello {
//!     fn mount<'a>(&'a mut self, _: &'a Map<String, Value>, _: &'a Session, _: &'a mut LiveSocket)
//!         -> BoxFuture<'a, Result<(), MountError>> {
//!         Box::pin(async { Ok(()) })
//!     }
//!     fn render(&self) -> Html {
//!         Html::new(r#"<p id="hello" data-lb-region>Hello</p>"#)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let engine = livebaton::Engine::new(Default::default());
//! let (live, _handle) = LiveApp::new(&engine, b"a secret of at least 32 bytes, random".to_vec())
//!     .live("/hello", "hello", Hello::default)
//!     .build();
//! let app: axum::Router = axum::Router::new().merge(live);
//! # }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use livebaton::Engine;
use livebaton::presence::Presence;
use serde_json::{Map, Value};

use crate::channel::{BoxFuture, ChannelRoute, Router as ChannelRouter, UserInfo};
use crate::config::SocketConfig;
use crate::endpoint::{LiveEndpoint, ShutdownHandle, auth_token_from_protocols, origin_allowed, vsn_supported};
use crate::headers::{CONTENT_SECURITY_POLICY, with_security_headers_and_policy};
use crate::live::{
    Html, LivePage, LiveSession, LiveView, LiveViewRoute, MountError, Registry, RenderError, client_asset,
};
use crate::websocket::Upgrade;

/// Where the socket is served (the bundled client connects there).
pub const SOCKET_PATH: &str = "/live/websocket";

/// What a page request or a socket upgrade tells the application's [`Authenticate`].
#[derive(Clone, Debug)]
pub struct Caller {
    /// A page or the socket.
    pub kind: CallerKind,
    /// The request's headers (cookies included).
    pub headers: HeaderMap,
    /// The query parameters: a page's own, or the socket's connect params (the page's
    /// [`LivePage::connect_param`]s, phoenix.js's `params`).
    pub query: HashMap<String, String>,
    /// The bearer token phoenix.js 1.8 sends as its `authToken` subprotocol (sockets only).
    pub auth_token: Option<String>,
    /// The peer's address, when the server was started with
    /// `into_make_service_with_connect_info::<SocketAddr>()` (behind a proxy: the proxy's).
    pub address: Option<SocketAddr>,
}

/// Which request a [`Caller`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerKind {
    /// `GET` of a live page: the first, static render.
    Page,
    /// The WebSocket upgrade.
    Socket,
}

/// The application's answer to "who is this": `Ok(Some(user))`, `Ok(None)` for an anonymous caller, or `Err` with the
/// response to refuse with (a redirect to the sign-in page, a 403; for a socket any non-101 answer refuses it).
pub type Authentication = Result<Option<UserInfo>, Response>;

/// Decides who makes a page request or a socket upgrade. Implemented for every async closure
/// `Fn(Caller) -> impl Future<Output = Authentication>`; a type that needs more implements it itself.
///
/// Both kinds of request must name the same user: the page's view token is not tied to a user, the socket's user is
/// the one the live view sees. Authenticate the socket as strictly as the pages (a session cookie is sent with both;
/// the `Origin` check keeps other sites' pages from using it).
pub trait Authenticate: Send + Sync + 'static {
    /// Who `caller` is.
    fn authenticate(&self, caller: Caller) -> BoxFuture<'static, Authentication>;
}

impl<F, Fut> Authenticate for F
where
    F: Fn(Caller) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Authentication> + Send + 'static,
{
    fn authenticate(&self, caller: Caller) -> BoxFuture<'static, Authentication> {
        Box::pin(self(caller))
    }
}

/// Renders a live page's whole document (the default: [`LivePage::document`] with the default stylesheet).
pub type Layout = Arc<dyn Fn(&LivePage) -> Html + Send + Sync>;

/// Builds the routes of live pages and their socket. See the module documentation.
pub struct LiveApp {
    presence: Presence,
    secret: Vec<u8>,
    registry: Registry,
    pages: Vec<(String, String)>,
    channels: ChannelRouter,
    socket: SocketConfig,
    authenticate: Option<Arc<dyn Authenticate>>,
    allowed_origins: Vec<String>,
    layout: Layout,
    sign_in: Option<String>,
    content_security_policy: Option<&'static str>,
}

/// What the built routes keep: shared by every request.
struct Shared {
    views: LiveViewRoute,
    endpoint: LiveEndpoint,
    authenticate: Option<Arc<dyn Authenticate>>,
    allowed_origins: Vec<String>,
    layout: Layout,
    sign_in: Option<String>,
}

/// The running side of a [`LiveApp`]: close a user's sockets, shut every socket down, render a view yourself.
#[derive(Clone)]
pub struct LiveHandle {
    shared: Arc<Shared>,
    shutdown: ShutdownHandle,
}

impl LiveApp {
    /// Live pages over `engine`'s presence and PubSub, their tokens signed with `secret` (keep it secret and the same
    /// on every node; at least 32 random bytes).
    pub fn new(engine: &Engine, secret: impl Into<Vec<u8>>) -> Self {
        LiveApp {
            presence: engine.presence.clone(),
            secret: secret.into(),
            registry: Registry::new(),
            pages: Vec::new(),
            channels: ChannelRouter::new(),
            socket: SocketConfig::default(),
            authenticate: None,
            allowed_origins: Vec::new(),
            layout: Arc::new(|page: &LivePage| page.document(&[crate::live::stylesheet_path()])),
            sign_in: None,
            content_security_policy: Some(CONTENT_SECURITY_POLICY),
        }
    }

    /// Registers view `id` (built fresh by `factory` for every mount) and serves it at `path` (axum's path syntax:
    /// `/notes/{id}` gives the view the param `id`).
    #[must_use]
    pub fn live<V: LiveView>(self, path: &str, id: &str, factory: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.view(id, factory).page(path, id)
    }

    /// Registers view `id` without a route of its own (see [`LiveApp::page`]).
    #[must_use]
    pub fn view<V: LiveView>(mut self, id: &str, factory: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.registry = self.registry.view(id, factory);
        self
    }

    /// Registers every view of a live session: views sharing `on_mount` hooks (authentication, subscriptions).
    #[must_use]
    pub fn session(mut self, session: LiveSession) -> Self {
        self.registry = self.registry.session(session);
        self
    }

    /// Serves the registered view `id` at `path`. The view's params are the page's query parameters and the path's
    /// parameters (which win), as strings.
    #[must_use]
    pub fn page(mut self, path: &str, id: &str) -> Self {
        self.pages.push((path.to_owned(), id.to_owned()));
        self
    }

    /// Serves channel topics matching `pattern` (`room:*`) on the same socket.
    #[must_use]
    pub fn channel(mut self, pattern: &str, route: impl ChannelRoute) -> Self {
        self.channels = self.channels.channel(pattern, route);
        self
    }

    /// Who the callers are (see [`Authenticate`]); without it, everyone is anonymous: each page render and each socket a
    /// user of its own, `anonymous-<n>`.
    #[must_use]
    pub fn authenticate(mut self, authenticate: impl Authenticate) -> Self {
        self.authenticate = Some(Arc::new(authenticate));
        self
    }

    /// The origins whose pages may open the socket (`host`, `host:port` or `https://host[:port]`); by default only
    /// the host the socket's request names (same origin).
    #[must_use]
    pub fn allowed_origins(mut self, origins: impl IntoIterator<Item = String>) -> Self {
        self.allowed_origins = origins.into_iter().collect();
        self
    }

    /// How a live page's document is rendered around the view: the application's own layout, which puts
    /// [`LivePage::head`] in its `<head>` and [`LivePage::root`] where the view goes.
    #[must_use]
    pub fn layout(mut self, layout: impl Fn(&LivePage) -> Html + Send + Sync + 'static) -> Self {
        self.layout = Arc::new(layout);
        self
    }

    /// Where the client sends a user whose socket is refused as signed out (its `lb-sign-in` meta).
    #[must_use]
    pub fn sign_in(mut self, path: &str) -> Self {
        self.sign_in = Some(path.to_owned());
        self
    }

    /// The socket's limits (frame size, rates, queues, idle timeout, connection counts).
    #[must_use]
    pub fn socket_config(mut self, config: SocketConfig) -> Self {
        self.socket = config;
        self
    }

    /// The Content-Security-Policy of the routes (keep `script-src` and `connect-src` allowing `'self'`), or `None`
    /// to add no security headers here (the application sets them on its whole router).
    #[must_use]
    pub fn content_security_policy(mut self, policy: Option<&'static str>) -> Self {
        self.content_security_policy = policy;
        self
    }

    /// The routes, to merge into the application's router, and the handle of their sockets.
    pub fn build(self) -> (axum::Router, LiveHandle) {
        let views = LiveViewRoute::new(self.registry, self.presence, self.secret);
        let channels = self.channels.channel(&format!("{}*", crate::live::TOPIC_PREFIX), views.clone());
        let (endpoint, shutdown) = LiveEndpoint::new(channels, self.socket);
        let shared = Arc::new(Shared {
            views,
            endpoint,
            authenticate: self.authenticate,
            allowed_origins: self.allowed_origins,
            layout: self.layout,
            sign_in: self.sign_in,
        });
        let mut router =
            axum::Router::new().route(SOCKET_PATH, get(websocket)).route("/assets/{file}", get(client_asset));
        for (path, id) in self.pages {
            let id: Arc<str> = Arc::from(id);
            router = router
                .route(&path, get(move |state: State<Arc<Shared>>, request: Request| page(state, id.clone(), request)));
        }
        let router = match self.content_security_policy {
            Some(policy) => with_security_headers_and_policy(router, policy),
            None => router,
        };
        (router.with_state(shared.clone()), LiveHandle { shared, shutdown })
    }
}

impl LiveHandle {
    /// The socket endpoint: [`LiveEndpoint::disconnect_user`] closes a signed-out user's sockets.
    pub fn endpoint(&self) -> &LiveEndpoint {
        &self.shared.endpoint
    }

    /// The live-view route, to render a view from a handler of the application's own
    /// ([`LiveViewRoute::render_static`]).
    pub fn views(&self) -> &LiveViewRoute {
        &self.shared.views
    }

    /// Closes every socket (1001) and refuses new ones: call it when the server shuts down.
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }
}

/// Asks the application who `caller` is (anonymous without an [`Authenticate`]).
async fn authenticate(shared: &Shared, caller: Caller) -> Authentication {
    match &shared.authenticate {
        Some(authenticate) => authenticate.authenticate(caller).await,
        None => Ok(None),
    }
}

/// A caller the application did not name: a user of their own (`anonymous-<n>`, unique in this process, named
/// "Anonymous", no role), so two anonymous visitors never count as one user (in a presence list, or as "another tab
/// of the same user" of an editing session, which may take the baton).
fn anonymous() -> UserInfo {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    UserInfo::new(&format!("anonymous-{n}"), "Anonymous", "", "")
}

fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    let Some(query) = query else { return HashMap::new() };
    crate::live::decode_form(query)
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_str()?.to_owned())))
        .collect()
}

async fn page(State(shared): State<Arc<Shared>>, view: Arc<str>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let path_params = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params.iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect::<Vec<_>>(),
        Err(rejection) => return rejection.into_response(),
    };
    let query = query_pairs(parts.uri.query());
    let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let caller = Caller {
        kind: CallerKind::Page,
        headers: parts.headers.clone(),
        query: query.clone(),
        auth_token: None,
        address,
    };
    let user = match authenticate(&shared, caller).await {
        Ok(user) => user.unwrap_or_else(anonymous),
        Err(refusal) => return refusal,
    };
    let mut params: Map<String, Value> = query.into_iter().map(|(name, value)| (name, Value::String(value))).collect();
    params.extend(path_params.into_iter().map(|(name, value)| (name, Value::String(value))));
    match shared.views.render_static(&view, params, Arc::new(user)).await {
        Ok(rendered) => {
            let mut page = LivePage::new(&view, rendered);
            if let Some(sign_in) = &shared.sign_in {
                page = page.sign_in(sign_in);
            }
            let document = (shared.layout)(&page);
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], document.into_string()).into_response()
        }
        Err(RenderError::Mount(MountError::Redirect { to })) => Redirect::to(&to).into_response(),
        Err(RenderError::Mount(MountError::NotFound)) => (StatusCode::NOT_FOUND, "Not found").into_response(),
        Err(error) => {
            tracing::error!(%error, view = &*view, "live page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be shown.").into_response()
        }
    }
}

async fn websocket(State(shared): State<Arc<Shared>>, upgrade: Upgrade, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let query = query_pairs(parts.uri.query());
    if !vsn_supported(query.get("vsn").map(String::as_str)) {
        return (StatusCode::FORBIDDEN, "unsupported protocol version: connect with vsn=2.0.0").into_response();
    }
    let origin = parts.headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    let allowed = if shared.allowed_origins.is_empty() {
        let host = parts.headers.get(header::HOST).and_then(|value| value.to_str().ok());
        host.map(|host| vec![host.to_owned()]).unwrap_or_default()
    } else {
        shared.allowed_origins.clone()
    };
    if !origin_allowed(origin, &allowed) {
        tracing::info!(?origin, "cross-site WebSocket upgrade refused");
        return (StatusCode::FORBIDDEN, "cross-site WebSocket connections are not allowed").into_response();
    }
    let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let auth_token = auth_token_from_protocols(&upgrade);
    let caller = Caller { kind: CallerKind::Socket, headers: parts.headers, query, auth_token, address };
    let user = match authenticate(&shared, caller).await {
        Ok(user) => user.unwrap_or_else(anonymous),
        Err(refusal) => return refusal,
    };
    shared.endpoint.accept_from(upgrade, user, address.map(|address| address.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two anonymous callers are two users: neither may act as "the same user in another tab" of the other.
    #[test]
    fn anonymous_callers_are_users_of_their_own() {
        let (first, second) = (anonymous(), anonymous());
        assert_ne!(first.id(), second.id());
        assert!(first.id().starts_with("anonymous-") && first.name() == "Anonymous" && first.role().is_empty());
    }

    #[test]
    fn a_page_query_is_read_as_strings() {
        let pairs = query_pairs(Some("id=7&q=a%20b&tags[]=x"));
        assert_eq!(pairs.get("id").map(String::as_str), Some("7"));
        assert_eq!(pairs.get("q").map(String::as_str), Some("a b"));
        assert_eq!(pairs.get("tags"), None, "a list is not a page param");
        assert!(query_pairs(None).is_empty());
    }
}
