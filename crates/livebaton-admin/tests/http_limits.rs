//! The HTTP server's own limits (mirrors `src/http.rs`): a request head must arrive within the header-read timeout,
//! and no more than `max_connections` connections are served at once. Raw TCP clients, since no HTTP library sends
//! half a header on purpose.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use livebaton_admin::http::{HttpLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n";

fn limits(max_connections: usize, max_per_peer: usize, header_read_timeout: Duration) -> HttpLimits {
    HttpLimits { max_connections, max_per_peer, exempt: Default::default(), header_read_timeout }
}

async fn start(limits: HttpLimits) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/hello", get(|| async { "hello" }));
    tokio::spawn(serve(listener, app, limits, std::future::pending(), std::future::ready(())));
    address
}

/// Reads until the peer closes or `within` passes; returns what arrived and whether the peer closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// A client that sends half a request head and then nothing is disconnected once the header-read timeout passes; a
/// whole request on another connection is answered meanwhile.
#[tokio::test]
async fn half_a_header_is_cut_off_after_the_header_read_timeout() {
    let limits = limits(16, 0, Duration::from_millis(300));
    let address = start(limits).await;
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: te").await.unwrap();
    let mut fine = TcpStream::connect(address).await.unwrap();
    fine.write_all(REQUEST).await.unwrap();
    let mut answer = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), fine.read(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "a whole request is served");
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "the half-sent head kept its connection open");
}

/// With one connection allowed, a second client is not served while the first holds its connection, and is served
/// as soon as the first goes.
#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_place() {
    let limits = limits(1, 0, Duration::from_secs(30));
    let address = start(limits).await;
    let first = TcpStream::connect(address).await.unwrap();
    // The first connection is admitted before the second is accepted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = TcpStream::connect(address).await.unwrap();
    second.write_all(REQUEST).await.unwrap();
    let mut answer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut answer)).await;
    assert!(early.is_err(), "the second connection was served while the first held the only place");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "served once the place is free");
}

/// One peer may hold at most `max_per_peer` connections: one more is closed at once, and a closed one makes room.
/// A WebSocket upgrade gives its HTTP place back (tested in the live suite through the socket limits).
#[tokio::test]
async fn one_peer_may_hold_at_most_its_share_of_connections() {
    let address = start(limits(16, 2, Duration::from_secs(30))).await;
    let first = TcpStream::connect(address).await.unwrap();
    let _second = TcpStream::connect(address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(address).await.unwrap();
    let _ = third.write_all(REQUEST).await;
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(closed && answer.is_empty(), "a third connection from one peer was served: {answer:?}");
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(address).await.unwrap();
    fourth.write_all(REQUEST).await.unwrap();
    let mut answer = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), fourth.read(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "a closed connection makes room");
}
