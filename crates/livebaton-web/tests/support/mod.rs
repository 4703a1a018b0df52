//! A server on a free port and raw clients for it: HTTP/1.1 GETs over a plain TCP stream and Phoenix V2 frames over
//! tokio-tungstenite.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket client.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves `app` on a free loopback port until the test's runtime ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// An HTTP answer: status, headers (lower-case names) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The value of `attribute="…"` in the body (the first one).
    pub fn attribute(&self, attribute: &str) -> Option<String> {
        let start = self.body.find(&format!("{attribute}=\""))? + attribute.len() + 2;
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }
}

/// `GET path` with extra request headers (`Name: value` lines).
pub async fn get(address: SocketAddr, path: &str, headers: &[&str]) -> Answer {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let extra: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer { status, headers, body: body.to_owned() }
}

/// Opens the socket with the query `query` and extra request headers; `Err(status)` when the upgrade is refused.
pub async fn connect(address: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let mut request = format!("ws://{address}/live/websocket?{query}").into_client_request().unwrap();
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((client, _)) => Ok(client),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("the upgrade failed: {error}"),
    }
}

/// Sends one frame.
pub async fn send(client: &mut Client, frame: Value) {
    client.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next text frame as JSON, within 5 s.
pub async fn next(client: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("a frame").unwrap();
        match message.unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Joins `topic` with `payload` as join ref `join_ref`; the reply's `[status, response]`.
pub async fn join(client: &mut Client, join_ref: &str, topic: &str, payload: Value) -> (String, Value) {
    send(client, json!([join_ref, join_ref, topic, "phx_join", payload])).await;
    loop {
        let frame = next(client).await;
        if frame[3] == "phx_reply" && frame[1] == join_ref {
            return (frame[4]["status"].as_str().unwrap().to_owned(), frame[4]["response"].clone());
        }
    }
}
