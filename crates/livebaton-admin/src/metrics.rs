//! `GET /metrics`: Prometheus text format.
//!
//! Counters and histograms are recorded where things happen (the socket loop, channels); gauges that are cheap to
//! compute (open sockets, presences) are set when the metrics are scraped. One recorder per process, installed on
//! first use.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
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

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("livebaton_sockets_open").set(state.live.open_sockets() as f64);
    metrics::gauge!("livebaton_presences").set(state.engine.presence.entry_count() as f64);
    let body = match handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# metrics are recorded by the embedding application's recorder\n".to_owned(),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
