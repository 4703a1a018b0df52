//! The opening handshake (RFC 6455 §4.2): an axum extractor that checks the upgrade request, and the `101 Switching
//! Protocols` response that hands the connection to a task of the caller's.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tcp::TcpSocket;

/// The upgraded connection a WebSocket runs on: hyper's, or, when hyper served tokio's `TcpStream` directly (as
/// livebaton's server does), that stream taken back from hyper, whose socket the idle sweep can ask how our bytes are
/// acknowledged (`TcpSocket`).
///
/// Under `axum::serve` the stream is wrapped in a type private to hyper-util and cannot be taken back: the sweep then
/// judges by silence alone, as it always did.
pub struct UpgradedIo(Connection);

enum Connection {
    /// Boxed: every connection's task holds this for the connection's life, and hyper's is a box too.
    Tcp(Box<TcpIo>),
    Hyper(TokioIo<hyper::upgrade::Upgraded>),
}

/// tokio's stream, and the bytes hyper read past the upgrade request (the client's first frames, if it sent them
/// without waiting for our answer), which are read first.
struct TcpIo {
    /// A copy of those bytes, never a slice of hyper's read buffer: a slice, even an empty one, keeps hyper's whole
    /// buffer (8 KiB and more) allocated for as long as the connection lives. Emptied (no allocation) once read.
    unread: Bytes,
    stream: tokio::net::TcpStream,
}

impl UpgradedIo {
    /// Takes tokio's `TcpStream` back from hyper when that is what it ran on (hyper cannot give it back wrapped).
    fn new(upgraded: hyper::upgrade::Upgraded) -> Self {
        match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
            Ok(parts) => {
                let unread = Bytes::copy_from_slice(&parts.read_buf);
                UpgradedIo(Connection::Tcp(Box::new(TcpIo { unread, stream: parts.io.into_inner() })))
            }
            Err(upgraded) => UpgradedIo(Connection::Hyper(TokioIo::new(upgraded))),
        }
    }

    /// The TCP socket under the connection, when known.
    pub(crate) fn tcp(&self) -> Option<TcpSocket> {
        match &self.0 {
            Connection::Tcp(tcp) => TcpSocket::of(&tcp.stream),
            Connection::Hyper(_) => None,
        }
    }
}

impl AsyncRead for UpgradedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Connection::Tcp(tcp) if !tcp.unread.is_empty() => {
                let take = tcp.unread.len().min(buf.remaining());
                buf.put_slice(&tcp.unread.split_to(take));
                if tcp.unread.is_empty() {
                    tcp.unread = Bytes::new();
                }
                Poll::Ready(Ok(()))
            }
            Connection::Tcp(tcp) => Pin::new(&mut tcp.stream).poll_read(cx, buf),
            Connection::Hyper(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            Connection::Tcp(tcp) => Pin::new(&mut tcp.stream).poll_write(cx, buf),
            Connection::Hyper(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            Connection::Tcp(tcp) => Pin::new(&mut tcp.stream).poll_write_vectored(cx, bufs),
            Connection::Hyper(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.0 {
            Connection::Tcp(tcp) => tcp.stream.is_write_vectored(),
            Connection::Hyper(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Connection::Tcp(tcp) => Pin::new(&mut tcp.stream).poll_flush(cx),
            Connection::Hyper(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Connection::Tcp(tcp) => Pin::new(&mut tcp.stream).poll_shutdown(cx),
            Connection::Hyper(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// A valid WebSocket upgrade request, not yet answered.
pub struct Upgrade {
    key: HeaderValue,
    protocols: Vec<String>,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

/// Why a request is not a WebSocket upgrade (the same statuses axum's own extractor answers with).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeRejection {
    /// Not a GET (405).
    #[error("WebSocket upgrades use GET")]
    MethodNotGet,
    /// No `upgrade` in `Connection` (400).
    #[error("not a WebSocket upgrade: the `Connection` header must contain `upgrade`")]
    Connection,
    /// `Upgrade` is not `websocket` (400).
    #[error("not a WebSocket upgrade: the `Upgrade` header must be `websocket`")]
    UpgradeHeader,
    /// `Sec-WebSocket-Version` is not 13 (400, with `Sec-WebSocket-Version: 13`).
    #[error("unsupported WebSocket version: `Sec-WebSocket-Version` must be 13")]
    Version,
    /// No `Sec-WebSocket-Key` (400).
    #[error("the `Sec-WebSocket-Key` header is missing")]
    Key,
    /// The HTTP connection cannot be taken over, as over HTTP/2 (426).
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeRejection::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeRejection::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, self.to_string()).into_response();
        if self == UpgradeRejection::Version {
            response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Upgrade::from_parts(parts)
    }
}

impl Upgrade {
    fn from_parts(parts: &mut Parts) -> Result<Self, UpgradeRejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRejection::MethodNotGet);
        }
        if !tokens(&parts.headers, &header::CONNECTION).any(|token| token.eq_ignore_ascii_case("upgrade")) {
            return Err(UpgradeRejection::Connection);
        }
        if !tokens(&parts.headers, &header::UPGRADE).any(|token| token.eq_ignore_ascii_case("websocket")) {
            return Err(UpgradeRejection::UpgradeHeader);
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
            return Err(UpgradeRejection::Version);
        }
        let key = parts.headers.get(header::SEC_WEBSOCKET_KEY).ok_or(UpgradeRejection::Key)?.clone();
        let protocols = tokens(&parts.headers, &header::SEC_WEBSOCKET_PROTOCOL).map(str::to_owned).collect();
        let on_upgrade =
            parts.extensions.remove::<hyper::upgrade::OnUpgrade>().ok_or(UpgradeRejection::NotUpgradable)?;
        Ok(Upgrade { key, protocols, on_upgrade })
    }

    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &str> {
        self.protocols.iter().map(String::as_str)
    }

    /// Answers `101 Switching Protocols`, selecting `protocol` if the client offered it, and runs `serve` on the
    /// upgraded connection in a task of its own. The task that waits for hyper to hand the connection over ends there,
    /// so the long-lived task holds only what `serve` returns.
    pub fn accept<F, Fut>(self, protocol: &str, serve: F) -> Response
    where
        F: FnOnce(UpgradedIo) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { key, protocols, on_upgrade } = self;
        let selected = protocols.iter().any(|offered| offered == protocol).then(|| protocol.to_owned());
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => drop(tokio::spawn(serve(UpgradedIo::new(upgraded)))),
                Err(error) => tracing::debug!(%error, "WebSocket upgrade did not complete"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()));
        if let Some(selected) = selected.and_then(|selected| HeaderValue::from_str(&selected).ok()) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, selected);
        }
        response
    }
}

/// The comma-separated tokens of every `name` header, trimmed.
fn tokens<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// `Sec-WebSocket-Accept`: base64 of the SHA-1 of the client's key and the protocol's GUID.
fn accept_key(key: &[u8]) -> HeaderValue {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let encoded = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(edit: impl FnOnce(&mut Request<()>)) -> Parts {
        let mut request = Request::get("/live/websocket")
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", "phoenix, base64url.bearer.phx.dG9r")
            .body(())
            .unwrap();
        edit(&mut request);
        request.into_parts().0
    }

    #[test]
    fn the_accept_key_is_the_one_rfc_6455_gives() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn requests_that_are_not_upgrades_are_refused_with_the_reason() {
        type Edit = fn(&mut Request<()>);
        let cases: [(Edit, UpgradeRejection); 5] = [
            (|request| *request.method_mut() = Method::POST, UpgradeRejection::MethodNotGet),
            (
                |request| drop(request.headers_mut().insert("connection", "keep-alive".parse().unwrap())),
                UpgradeRejection::Connection,
            ),
            (
                |request| drop(request.headers_mut().insert("upgrade", "h2c".parse().unwrap())),
                UpgradeRejection::UpgradeHeader,
            ),
            (
                |request| drop(request.headers_mut().insert("sec-websocket-version", "8".parse().unwrap())),
                UpgradeRejection::Version,
            ),
            (|request| drop(request.headers_mut().remove("sec-websocket-key")), UpgradeRejection::Key),
        ];
        for (edit, expected) in cases {
            assert_eq!(Upgrade::from_parts(&mut parts(edit)).err(), Some(expected));
        }
        // Valid headers, but no connection hyper can upgrade (as in a unit test).
        assert_eq!(Upgrade::from_parts(&mut parts(|_| {})).err(), Some(UpgradeRejection::NotUpgradable));
        assert_eq!(UpgradeRejection::NotUpgradable.into_response().status(), StatusCode::UPGRADE_REQUIRED);
        let version = UpgradeRejection::Version.into_response();
        assert_eq!(
            (version.status(), version.headers()["sec-websocket-version"].to_str().unwrap()),
            (StatusCode::BAD_REQUEST, "13")
        );
    }

    #[test]
    fn offered_protocols_are_split_and_trimmed() {
        let mut parts = parts(|_| {});
        let protocols: Vec<&str> = tokens(&parts.headers, &header::SEC_WEBSOCKET_PROTOCOL).collect();
        assert_eq!(protocols, ["phoenix", "base64url.bearer.phx.dG9r"]);
        parts.headers.append("sec-websocket-protocol", "other".parse().unwrap());
        assert_eq!(tokens(&parts.headers, &header::SEC_WEBSOCKET_PROTOCOL).count(), 3);
    }
}
