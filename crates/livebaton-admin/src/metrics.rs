//! `GET /metrics`: Prometheus text format.
//!
//! Counters and histograms are recorded where things happen (the socket loop, channels); gauges that are cheap to
//! compute (open sockets, presences) are set when the metrics are scraped. One recorder per process, installed on
//! first use.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;

/// Hand-over latency buckets, in seconds: from the roster change to the promoted page's notice.
const HANDOFF_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The process's Prometheus handle, installing the recorder the first time. `None` if another recorder was
/// installed first (an embedding application's): then that one receives the metrics.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("livebaton_owner_handoff_seconds".into()), HANDOFF_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_gauge!("livebaton_sockets_open", "WebSocket connections being served");
    metrics::describe_gauge!("livebaton_channels_joined", "Joined channels, by kind (topic prefix)");
    metrics::describe_gauge!("livebaton_presences", "Presence entries on this node, all topics");
    metrics::describe_counter!("livebaton_frames_in_total", "WebSocket frames received");
    metrics::describe_counter!("livebaton_frames_out_total", "WebSocket frames sent");
    metrics::describe_counter!("livebaton_joins_refused_total", "Channel joins refused, by kind");
    metrics::describe_counter!("livebaton_events_refused_total", "Client events refused, by reason");
    metrics::describe_counter!("livebaton_malloc_trims_total", "Times freed heap memory was given back (malloc_trim)");
    metrics::describe_counter!(
        "livebaton_malloc_trim_microseconds_total",
        metrics::Unit::Microseconds,
        "Time spent giving freed heap memory back"
    );
    metrics::describe_histogram!(
        "livebaton_owner_handoff_seconds",
        "From an editing roster change to the new owner's page being told it holds the baton"
    );
}

/// Who may read `/metrics`, and where.
///
/// The metrics say how many people are connected and how the server is doing: fine for an operator, not for everyone.
/// Either serve them on another address that only the monitoring system reaches (`separate_listener`: the main
/// address then answers 404), or ask for a bearer token, or both.
#[derive(Clone, Debug, Default)]
pub struct MetricsAccess {
    /// `/metrics` is served by its own listener, not on the main address.
    pub separate_listener: bool,
    /// Scrapes must send `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
}

impl MetricsAccess {
    /// Whether a scrape with `headers` may read the metrics.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        let sent = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let sent = sent.and_then(|value| value.strip_prefix("Bearer ")).unwrap_or("");
        // Compared in constant time: the comparison must not tell how much of a guess was right.
        crate::pages::session::tokens_match(token, sent)
    }
}

/// `GET /metrics` on the main address: 404 when the metrics have their own listener.
pub async fn render_main(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.metrics.separate_listener {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    render(State(state), headers).await
}

/// `GET /metrics`: the Prometheus text, if the scrape may read it (401 otherwise).
pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.metrics.admits(&headers) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "send the metrics token")
            .into_response();
    }
    metrics::gauge!("livebaton_sockets_open").set(state.live.open_sockets() as f64);
    metrics::gauge!("livebaton_presences").set(state.engine.presence.entry_count() as f64);
    let body = match handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# metrics are recorded by the embedding application's recorder\n".to_owned(),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The router of the separate metrics listener (`--metrics-bind`): `/metrics` and nothing else.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(render)).with_state(state)
}
