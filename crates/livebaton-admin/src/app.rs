//! The application state and the router, built in one place so tests use exactly what the binary serves.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use livebaton::Engine;
use livebaton_web::config::SocketConfig;
use livebaton_web::endpoint::{LiveEndpoint, ShutdownHandle};
use livebaton_web::live::LiveViewRoute;

use crate::accounts::{PasswordHasher, People, SignInThrottle, ThrottleConfig, TokenSigner};
use crate::content::ContentService;
use crate::proxy::TrustedProxies;
use crate::storage::Store;
use crate::views::ViewContext;

/// Largest request body accepted (JSON API and forms).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a request body may take to arrive.
pub const REQUEST_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// PubSub, presence, editing, events, statistics.
    pub engine: Engine,
    /// Content writes (validation, fencing, events after commit).
    pub content: ContentService,
    /// Signs and checks API tokens.
    pub signer: TokenSigner,
    /// Failed sign-in bookkeeping, shared by the sign-in page and `POST /api/tokens` (and by the nodes of a cluster:
    /// [`AppState::with_throttle`]).
    pub throttle: Arc<SignInThrottle>,
    /// Bounds the Argon2id computations running at once (default: the process's shared hasher, a permit per core).
    pub hasher: Arc<PasswordHasher>,
    /// Peers believed about the client's address and scheme (`--trusted-proxies`).
    pub trusted_proxies: TrustedProxies,
    /// Every cookie carries `Secure`, whatever the request says (`--secure-cookies`); otherwise only when a trusted
    /// proxy forwarded an HTTPS request.
    pub secure_cookies: bool,
    /// Where `/metrics` is served and who may read it (`--metrics-bind`, `--metrics-token`).
    pub metrics: crate::metrics::MetricsAccess,
    /// The WebSocket endpoint with its channels.
    pub live: LiveEndpoint,
    /// Closes every socket (1001) and releases their presences at once.
    pub live_shutdown: ShutdownHandle,
    /// Origins allowed to open WebSockets (`host[:port]` or full origins); empty means the same origin only.
    pub allowed_origins: Arc<[String]>,
    /// The live pages, for their first (HTTP) render.
    pub views: LiveViewRoute,
    /// Signs visitor tokens of the public pages.
    pub secret_key_base: Arc<str>,
    /// Accounts: invitations, links, role and state changes, own password and tokens (also in the views' context).
    pub people: People,
}

impl AppState {
    /// State over `store` and `engine`, signing with `secret_key_base`.
    pub fn new(store: Store, engine: Engine, secret_key_base: &str, throttle: ThrottleConfig) -> Self {
        Self::with_live(store, engine, secret_key_base, throttle, SocketConfig::default(), Vec::new())
    }

    /// State with explicit socket limits and allowed WebSocket origins.
    pub fn with_live(
        store: Store,
        engine: Engine,
        secret_key_base: &str,
        throttle: ThrottleConfig,
        sockets: SocketConfig,
        allowed_origins: Vec<String>,
    ) -> Self {
        let content = ContentService::new(store.clone(), engine.editing.clone(), engine.pubsub.clone());
        // Install the metrics recorder before anything records.
        let _ = crate::metrics::handle();
        let signer = TokenSigner::new(secret_key_base);
        let hasher = PasswordHasher::shared();
        let people = People::new(store.clone(), engine.pubsub.clone(), hasher.clone(), signer.clone());
        let context = ViewContext {
            store: store.clone(),
            content: content.clone(),
            engine: engine.clone(),
            people: people.clone(),
        };
        let views = crate::views::route(&context, secret_key_base);
        let channels = crate::live::channel_router(&engine, &store, &content, views.clone());
        let (live, live_shutdown) = LiveEndpoint::new(channels, sockets);
        // A password or role change on any node closes that user's sockets here too.
        crate::live::close_sockets_on_revocation(&engine.pubsub, &live);
        AppState {
            store,
            engine,
            content,
            signer,
            throttle: Arc::new(SignInThrottle::local(throttle)),
            hasher,
            trusted_proxies: TrustedProxies::default(),
            secure_cookies: false,
            metrics: crate::metrics::MetricsAccess::default(),
            live,
            live_shutdown,
            allowed_origins: allowed_origins.into(),
            views,
            secret_key_base: secret_key_base.into(),
            people,
        }
    }

    /// The same state behind `proxies`, with `Secure` on every cookie if `secure_cookies`.
    pub fn with_proxies(mut self, proxies: TrustedProxies, secure_cookies: bool) -> Self {
        self.trusted_proxies = proxies;
        self.secure_cookies = secure_cookies;
        self
    }

    /// The same state counting failed sign-ins with `throttle` (a cluster's nodes share one in Redis:
    /// [`SignInThrottle::shared`]).
    pub fn with_throttle(mut self, throttle: SignInThrottle) -> Self {
        self.throttle = Arc::new(throttle);
        self
    }

    /// The same state serving `/metrics` as `access` says.
    pub fn with_metrics(mut self, access: crate::metrics::MetricsAccess) -> Self {
        self.metrics = access;
        self
    }

    /// The same state hashing passwords through `hasher`.
    /// The views keep the hasher they were built with: set it before serving (the binary does not change it; tests
    /// that bound hashing test the sign-in and API paths, which use this one).
    pub fn with_hasher(mut self, hasher: Arc<PasswordHasher>) -> Self {
        self.people = People::new(self.store.clone(), self.engine.pubsub.clone(), hasher.clone(), self.signer.clone());
        self.hasher = hasher;
        self
    }
}

impl axum::extract::FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.trusted_proxies.clone()
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::render_main))
        .route("/live/websocket", get(crate::live::websocket))
        .route("/live/longpoll", axum::routing::any(crate::live::longpoll))
        .merge(crate::api::routes())
        .merge(crate::pages::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A body trickled in a byte at a time must not hold its connection (and one of the server's places) for ever.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(REQUEST_BODY_TIMEOUT));
    livebaton_web::headers::with_security_headers(routes).with_state(state)
}

/// `GET /healthz`: 200 when the database answers.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match sqlx::query("SELECT 1").execute(state.store.pool()).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}
