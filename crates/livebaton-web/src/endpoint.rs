//! The `/live/websocket` endpoint's building blocks: protocol version, origin check, the auth token phoenix.js sends
//! as a subprotocol, and the upgrade itself (onto livebaton's own WebSocket, see [`crate::websocket`]).
//!
//! Authentication is the application's: it reads the token or the session cookie, and calls
//! [`LiveEndpoint::accept`] with the user, or refuses with 403.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::channel::{Router, SocketInfo, UserInfo};
use crate::config::SocketConfig;
use crate::connections::{Connections, Full, Limits, start_idle_sweep};
use crate::outbound::Outbound;
use crate::socket::serve;
use crate::websocket::{Upgrade, WebSocket};

/// The close reason for a user who signed out ([`LiveEndpoint::disconnect_user`]).
pub const SIGNED_OUT: &str = "signed out";

/// The close reason for a user whose sessions and tokens were revoked (password or role changed, account deleted):
/// the client must sign in again before it can reconnect.
pub const CREDENTIALS_REVOKED: &str = "credentials revoked: sign in again";

/// The most bytes of reason a WebSocket close frame carries (RFC 6455 §5.5: 125 bytes of payload, 2 for the code).
const MAX_CLOSE_REASON: usize = 123;

/// `reason`, cut at a character boundary to what a close frame carries.
fn close_reason(reason: &'static str) -> &'static str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The subprotocol prefix phoenix.js 1.8 uses for its `authToken` option.
pub const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// Whether the client's `vsn` is one this server speaks. Phoenix treats a missing `vsn` as 1.0.0 (the V1 serializer);
/// this server only speaks V2 (`~> 2.0.0`), so anything else is refused with 403, as Phoenix refuses an unmatched vsn.
pub fn vsn_supported(vsn: Option<&str>) -> bool {
    let Some(vsn) = vsn else { return false };
    let mut parts = vsn.split('.');
    matches!((parts.next(), parts.next(), parts.next(), parts.next()), (Some("2"), Some("0"), Some(patch), None)
        if !patch.is_empty() && patch.bytes().all(|byte| byte.is_ascii_digit()))
}

/// The token phoenix.js sent as `Sec-WebSocket-Protocol: phoenix, base64url.bearer.phx.<token>` (standard base64
/// without padding, despite the name), if any.
pub fn auth_token_from_protocols(upgrade: &Upgrade) -> Option<String> {
    upgrade.requested_protocols().find_map(|protocol| {
        let encoded = protocol.trim().strip_prefix(AUTH_TOKEN_PREFIX)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
            .ok()?;
        String::from_utf8(bytes).ok()
    })
}

/// Phoenix's `check_origin`: no `Origin` header is allowed (not a browser); otherwise its host (and port, when the
/// allowed entry names one) must match one of `allowed` (`host`, `host:port`, or a full `http(s)://host[:port]`).
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    let (host, port) = split_authority(authority.trim_end_matches('/'));
    allowed.iter().any(|entry| {
        let entry = entry.trim();
        let entry = entry.strip_prefix("http://").or_else(|| entry.strip_prefix("https://")).unwrap_or(entry);
        let (allowed_host, allowed_port) = split_authority(entry.trim_end_matches('/'));
        allowed_host.eq_ignore_ascii_case(host) && (allowed_port.is_none() || allowed_port == port)
    })
}

fn split_authority(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()) => (host, Some(port)),
        _ => (authority, None),
    }
}

/// Accepts authenticated WebSocket upgrades and serves them with the router.
#[derive(Clone)]
pub struct LiveEndpoint {
    router: Arc<Router>,
    config: Arc<SocketConfig>,
    next_connection: Arc<AtomicU64>,
    /// Makes connection ids unique across processes: on several nodes they are presence keys in shared rosters, so
    /// two nodes' first sockets must not both be `…-1`.
    connection_prefix: Arc<str>,
    /// The sockets being served right now: counted for metrics and for waiting at shutdown, and told to close by a
    /// shutdown or a kick (Phoenix's `"disconnect"` broadcast on a socket id).
    connections: Arc<Connections>,
    /// The idle sweep's task: started by the first connection (an endpoint may be made outside a runtime), and again
    /// by the next one if it ended (its runtime shut down). A std mutex, taken once per accepted connection.
    idle_sweep: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Tells every socket of an endpoint to close (1001) and release its presences at once.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Connections>);

impl ShutdownHandle {
    /// Starts the shutdown: every open socket closes, and sockets that open from now on close at once.
    pub fn shutdown(&self) {
        self.0.stop_all();
    }
}

impl LiveEndpoint {
    /// An endpoint serving `router` with `config`, and the handle that shuts its sockets down.
    pub fn new(router: Router, config: SocketConfig) -> (Self, ShutdownHandle) {
        let connections = Arc::new(Connections::default());
        let endpoint = LiveEndpoint {
            router: Arc::new(router),
            config: Arc::new(config),
            next_connection: Arc::new(AtomicU64::new(1)),
            connection_prefix: process_unique_prefix().into(),
            connections: connections.clone(),
            idle_sweep: Arc::default(),
        };
        (endpoint, ShutdownHandle(connections))
    }

    /// Closes every socket of user `user_id` with 1001 and `reason` (for example [`SIGNED_OUT`] or
    /// [`CREDENTIALS_REVOKED`]); their presences leave at once and their clients reconnect (and must authenticate
    /// again). The reason is what a client shows the user ("you were signed out"), so it names the cause, not the
    /// mechanism; a close frame carries at most 123 bytes of it (a longer one is cut at a character boundary).
    pub fn disconnect_user(&self, user_id: &str, reason: &'static str) {
        self.connections.kick(user_id, close_reason(reason));
    }

    /// Closes the sockets of user `user_id` that `which` picks, by what the application attached to the user when the
    /// socket connected ([`UserInfo::with_data`]): the sockets of one browser session, or of one API token, when only
    /// that credential ended. Same close as [`LiveEndpoint::disconnect_user`].
    pub fn disconnect_user_where(&self, user_id: &str, reason: &'static str, which: impl Fn(&UserInfo) -> bool) {
        self.connections.kick_where(user_id, close_reason(reason), &which);
    }

    /// Number of sockets being served.
    pub fn open_sockets(&self) -> usize {
        self.connections.len()
    }

    /// The socket settings.
    pub fn config(&self) -> &SocketConfig {
        &self.config
    }

    /// Upgrades to a WebSocket for `user`, selecting the `phoenix` subprotocol when the client offered it. Counts
    /// toward [`SocketConfig::max_sockets`] only; [`LiveEndpoint::accept_from`] also limits sockets per address.
    pub fn accept(&self, upgrade: Upgrade, user: UserInfo) -> Response {
        self.accept_from(upgrade, user, None)
    }

    /// Upgrades to a WebSocket for `user` connecting from `address` (the client's, as the application determined it,
    /// behind a trusted proxy too). Beyond [`SocketConfig::max_sockets`] in all the upgrade is answered 503, beyond
    /// [`SocketConfig::max_sockets_per_address`] for `address` 429, both with `Retry-After`: phoenix.js and the
    /// bundled client then retry with their backoff.
    pub fn accept_from(&self, upgrade: Upgrade, user: UserInfo, address: Option<IpAddr>) -> Response {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let connection_id = format!("{}-{id:x}", self.connection_prefix);
        let info = SocketInfo { connection_id: Arc::from(connection_id), user: Arc::new(user) };
        let (router, config) = (self.router.clone(), self.config.clone());
        {
            let mut sweep = self.idle_sweep.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if sweep.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                *sweep = Some(start_idle_sweep(&self.connections, config.idle_timeout));
            }
        }
        // Registered now, before the upgrade completes, so that a kick or a shutdown meanwhile reaches this socket too
        // (its task finds the stop on its first poll).
        let outbound = Outbound::new(config.outbound_queue);
        let limits = Limits { total: config.max_sockets, per_address: config.max_sockets_per_address };
        let registration = match self.connections.register(info.user.clone(), outbound.clone(), address, limits) {
            Ok(registration) => registration,
            Err(full) => {
                let (status, reason, label) = match full {
                    Full::Endpoint => {
                        (StatusCode::SERVICE_UNAVAILABLE, "the server is at its connection limit", "total")
                    }
                    Full::Address => {
                        (StatusCode::TOO_MANY_REQUESTS, "too many connections from your address", "address")
                    }
                };
                metrics::counter!("livebaton_sockets_refused_total", "limit" => label).increment(1);
                return (status, [(header::RETRY_AFTER, "5")], reason).into_response();
            }
        };
        upgrade.accept("phoenix", move |io| {
            let socket = WebSocket::new(io, config.max_frame_bytes);
            serve(socket, router, info, config, outbound, registration)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_close_reason_is_cut_to_what_a_close_frame_carries_at_a_character_boundary() {
        assert_eq!(super::close_reason(super::SIGNED_OUT), "signed out");
        let long: &'static str = "é".repeat(100).leak();
        let cut = super::close_reason(long);
        assert_eq!(cut.len(), 122, "61 two-byte characters fit in 123 bytes");
        assert!(long.starts_with(cut));
    }

    use super::*;

    #[test]
    fn only_v2_is_spoken() {
        assert!(vsn_supported(Some("2.0.0")));
        assert!(vsn_supported(Some("2.0.12")));
        for vsn in [None, Some("1.0.0"), Some("2.1.0"), Some("3.0.0"), Some("2.0"), Some("2.0.x"), Some("")] {
            assert!(!vsn_supported(vsn), "{vsn:?}");
        }
    }

    #[test]
    fn origins_match_by_host_and_optional_port() {
        let allowed = vec!["127.0.0.1:4000".to_owned(), "https://admin.example.com".to_owned()];
        assert!(origin_allowed(None, &allowed));
        assert!(origin_allowed(Some("http://127.0.0.1:4000"), &allowed));
        assert!(origin_allowed(Some("https://admin.example.com:8443"), &allowed));
        assert!(!origin_allowed(Some("http://127.0.0.1:5000"), &allowed));
        assert!(!origin_allowed(Some("https://evil.example"), &allowed));
        assert!(!origin_allowed(Some("null"), &allowed));
    }
}

/// `c<12 hex digits>`: a hash of this process's id, the start time and an address, different for every process (and
/// every endpoint in one process) with overwhelming probability, without a random-number dependency.
fn process_unique_prefix() -> String {
    use sha2::{Digest, Sha256};
    static ENDPOINTS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |at| at.as_nanos());
    let local = 0u8;
    let seed = format!("{}:{nanos}:{:p}:{}", std::process::id(), &local, ENDPOINTS.fetch_add(1, Ordering::Relaxed));
    let digest = Sha256::digest(seed.as_bytes());
    let hex: String = digest.iter().take(6).map(|byte| format!("{byte:02x}")).collect();
    format!("c{hex}")
}

#[cfg(test)]
mod connection_id_tests {
    use super::process_unique_prefix;

    #[test]
    fn every_endpoint_gets_its_own_connection_id_prefix() {
        let (first, second) = (process_unique_prefix(), process_unique_prefix());
        assert_ne!(first, second, "two endpoints (or nodes) must never hand out the same connection ids");
        for prefix in [first, second] {
            assert_eq!(prefix.len(), 13, "{prefix}");
            assert!(prefix.starts_with('c') && prefix[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{prefix}");
        }
    }
}
