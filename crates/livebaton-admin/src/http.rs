//! Serving the app over HTTP/1.1 with a bounded number of connections and a deadline for each request head.
//!
//! `axum::serve` takes no settings: a client that sends half a request header and then nothing kept its connection
//! (and a file descriptor) for ever, and nothing limited how many connections were open. Here hyper's own HTTP/1
//! server runs each connection with `header_read_timeout` (the request line and headers must arrive within it, or
//! the connection closes), and a semaphore admits at most `max_connections` connections at once; more wait in the
//! kernel's accept queue, as mini-redis limits its connections; one peer may hold at most `max_per_peer` of them (the
//! trusted proxies excepted), so one host cannot take every place. A WebSocket upgrade ends its HTTP connection (and
//! returns its permit): open sockets are limited by the live endpoint instead (`--max-sockets`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::proxy::{TrustedProxies, client_key};

/// How the server treats HTTP connections.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Connections served at once (at least one).
    pub max_connections: usize,
    /// Connections served at once for one peer (IPv6: one /64); a connection beyond it is closed at once. 0: none.
    /// Peers in `exempt` (the reverse proxies every client comes through) are not counted.
    pub max_per_peer: usize,
    /// Peers not limited by `max_per_peer`.
    pub exempt: TrustedProxies,
    /// How long a request's head (line and headers) may take to arrive.
    pub header_read_timeout: Duration,
}

/// Open connections per peer, for [`HttpLimits::max_per_peer`]. A std mutex: one map update per connection opened
/// and closed, never held across an `.await`.
#[derive(Default)]
struct PeerCounts(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; dropping it gives its place back.
struct PeerPlace {
    counts: Arc<PeerCounts>,
    peer: IpAddr,
}

impl PeerCounts {
    fn admit(self: &Arc<Self>, peer: IpAddr, max: usize) -> Option<PeerPlace> {
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(peer).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PeerPlace { counts: self.clone(), peer })
    }
}

impl Drop for PeerPlace {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

/// How long a shutdown waits for requests in progress to finish.
const DRAIN: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` until `shutdown` completes; then closes the listener, and runs `closing` (closing the
/// WebSockets) while requests in progress finish (for at most three seconds), and returns when both are done.
/// Handlers see the peer as `ConnectInfo<SocketAddr>`.
///
/// The listener is closed before `closing` starts: a client whose socket `closing` closes, and that reconnects at
/// once (phoenix.js retries after 10 ms), is refused by the kernel instead of being accepted by a server that is
/// going away and closed again.
///
/// # Errors
/// Never for a failed `accept` (logged, retried after a short pause, as when the process is out of file
/// descriptors); the `Result` leaves room for start-up errors.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    closing: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(false);
    let peers = Arc::new(PeerCounts::default());
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let place = match limits.max_per_peer {
            0 => None,
            _ if limits.exempt.trusts(peer.ip()) => None,
            max => match peers.admit(client_key(peer.ip()), max) {
                Some(place) => Some(place),
                None => {
                    // Closed at once: one host must not take every place and leave the others waiting.
                    metrics::counter!("livebaton_http_connections_refused_total").increment(1);
                    continue;
                }
            },
        };
        // Small frames (a role push, a diff) must leave at once: with Nagle's algorithm a frame written right after a
        // burst waits for the client's delayed ACK, about 40 ms (measured by livebaton-bench handoff).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let app = app.clone();
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let response = app.clone().oneshot(request.map(Body::new));
            async move { Ok::<_, Infallible>(response.await.unwrap_or_else(|never| match never {})) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let stop = async move {
                // The guard the wait returns is not `Send`: drop it here, not across the next await.
                let _ = stopping.wait_for(|stop| *stop).await.map(drop);
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "HTTP connection ended with an error");
                    }
                }
                () = stop => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop((permit, place));
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let drained = async {
        let _ = tokio::time::timeout(DRAIN, permits.acquire_many(all)).await;
    };
    tokio::join!(drained, closing);
    Ok(())
}
