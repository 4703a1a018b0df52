//! `GET /metrics` reports what happens on the live transport. Its own test binary: the metrics recorder is global to
//! the process, so no other test's sockets are counted here.

#[path = "support/live.rs"]
#[allow(dead_code)] // This suite uses a few of the shared helpers.
mod live_support;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use live_support::start;
use livebaton_admin::accounts::Role;
use serde_json::json;

/// The value of the sample line starting with `name` (labels included), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next().and_then(|value| value.parse().ok()))
}

/// Open sockets, joined channels by kind, presences, frames and refused events, and an owner hand-over are all
/// visible in the Prometheus text, and the gauges go back down when the sockets leave.
#[tokio::test]
async fn metrics_follow_sockets_channels_presences_and_handoffs() {
    let server = start(Duration::from_millis(100), Vec::new()).await;
    let alice = server.user("alice@example.com", "Alice", Role::Editor).await;
    let bob = server.user("bob@example.com", "Bob", Role::Editor).await;
    livebaton_admin::seed::bootstrap(&server.state.content, None, true).await.unwrap();
    let article = server.state.store.find_entity_by_name("article").await.unwrap().unwrap();
    let record = &server.state.store.list_records(article.id).await.unwrap()[0];
    let scrape = || async {
        let reply = server.http(Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, 200);
        reply.text.clone()
    };

    let mut a = server.connect(&server.token(&alice).await).await;
    let mut b = server.connect(&server.token(&bob).await).await;
    a.join_ok("room:m", json!({})).await;
    let topic = format!("edit:data:{}", record.id);
    a.join_ok(&topic, json!({"tab_id": "a"})).await;
    b.join_ok(&topic, json!({"tab_id": "b"})).await;
    let text = scrape().await;
    assert_eq!(sample(&text, "livebaton_sockets_open"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "livebaton_channels_joined{kind=\"room\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "livebaton_channels_joined{kind=\"edit\"}"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "livebaton_presences"), Some(3.0), "{text}");
    assert!(sample(&text, "livebaton_frames_in_total").unwrap() >= 3.0, "{text}");

    // Bob's forged draft is refused; Alice leaves the edit channel, Bob is promoted: one hand-over is timed.
    b.push(&topic, "draft", json!({"params": {"title": "x"}})).await;
    a.push(&topic, "phx_leave", json!({})).await;
    b.event(&topic, "role").await;
    let text = scrape().await;
    assert_eq!(
        sample(&text, "livebaton_owner_handoff_seconds_count"),
        Some(1.0),
        "only the hand-over, not the first owner: {text}"
    );
    assert_eq!(sample(&text, "livebaton_events_refused_total{reason=\"not_owner\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "livebaton_channels_joined{kind=\"edit\"}"), Some(1.0), "{text}");

    drop(a);
    drop(b);
    for _ in 0..100 {
        let text = scrape().await;
        if sample(&text, "livebaton_sockets_open") == Some(0.0) && sample(&text, "livebaton_presences") == Some(0.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sockets and presences did not go back to zero: {}", scrape().await);
}

/// With a metrics token, a scrape without it (or with a wrong one) gets 401 and nothing of the metrics; with it, the
/// text. With a separate metrics listener, the main address answers 404 and the metrics router serves them.
#[tokio::test]
async fn metrics_can_require_a_token_or_their_own_address() {
    use livebaton_admin::metrics::MetricsAccess;
    let server = start(Duration::from_millis(100), Vec::new()).await;
    let access = MetricsAccess { separate_listener: false, token: Some("s3cret-metrics".into()) };
    let state = server.state.clone().with_metrics(access);
    let app = livebaton_admin::app::router(state.clone());
    let scrape = |app: axum::Router, token: Option<&'static str>| async move {
        let mut request = Request::get("/metrics");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = tower::ServiceExt::oneshot(app, request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    for wrong in [None, Some("guess"), Some("s3cret-metric")] {
        let (status, body) = scrape(app.clone(), wrong).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert!(!body.contains("livebaton_"), "{body}");
    }
    let (status, body) = scrape(app.clone(), Some("s3cret-metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("livebaton_sockets_open"), "{body}");

    let own = state.with_metrics(MetricsAccess { separate_listener: true, token: None });
    assert_eq!(scrape(livebaton_admin::app::router(own.clone()), None).await.0, 404, "not on the main address");
    let (status, body) = scrape(livebaton_admin::metrics::router(own), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("livebaton_sockets_open"), "{body}");
}
