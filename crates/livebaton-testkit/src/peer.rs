//! [`Peer`]: a Phoenix Channels V2 client on one socket (frames are `[join_ref, ref, topic, event, payload]`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

/// The raw WebSocket.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket handshake request for `url` with extra `headers` (`("cookie", "a=b")`, `("origin", …)`).
pub fn ws_request(url: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = url.into_client_request().expect("a valid WebSocket URL");
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    request
}

/// An upgrade the server answered with something other than 101.
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, as text.
    pub body: String,
}

/// Opens `request`: the client and the handshake response, or how the upgrade was refused.
///
/// # Errors
/// [`Refusal`] when the server answered the upgrade with another status.
pub async fn connect(request: Request) -> Result<(Peer, Response), Refusal> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("a handshake answer") {
        Ok((ws, response)) => Ok((Peer::new(ws), response)),
        Err(WsError::Http(response)) => Err(Refusal {
            status: response.status(),
            body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        }),
        Err(other) => panic!("the handshake failed without an HTTP status: {other}"),
    }
}

/// A Phoenix V2 client on one socket. Frames read while looking for something else are kept for later.
pub struct Peer {
    ws: Ws,
    /// Frames read but not taken yet, oldest first.
    inbox: VecDeque<Value>,
    next_ref: u64,
    /// The join_ref of each topic this client joined.
    joins: HashMap<String, String>,
}

impl Peer {
    /// A client on an open socket.
    pub fn new(ws: Ws) -> Self {
        Peer { ws, inbox: VecDeque::new(), next_ref: 0, joins: HashMap::new() }
    }

    fn reference(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// The join_ref this client used for `topic`.
    pub fn join_ref(&self, topic: &str) -> String {
        self.joins.get(topic).cloned().unwrap_or_else(|| panic!("{topic} was not joined"))
    }

    /// Sends one frame as it is.
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.expect("the frame is sent");
    }

    /// Sends a raw message (a malformed frame, a binary frame, a ping).
    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("the message is sent");
    }

    /// Reads the next text frame from the socket, or `None` if nothing arrives by `deadline`.
    async fn read_until(&mut self, deadline: tokio::time::Instant) -> Option<Value> {
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(message))) => message,
                Ok(other) => panic!("the socket ended while a frame was expected: {other:?}"),
            };
            match message {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("frames are JSON")),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The first frame (kept or new) that `wanted` accepts, within [`WAIT`]; `what` names it in the failure.
    pub async fn take(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.inbox.iter().position(&wanted) {
            return self.inbox.remove(index).expect("the index is valid");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.read_until(deadline).await {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) => self.inbox.push_back(frame),
                None => panic!("no {what} within {WAIT:?}; frames seen but not taken: {:?}", self.inbox),
            }
        }
    }

    /// The first `event` pushed on `topic`.
    pub async fn event(&mut self, topic: &str, event: &str) -> Value {
        self.take(&format!("{event} on {topic}"), |frame| frame[2] == topic && frame[3] == event).await
    }

    /// Fails if a frame `unwanted` accepts is kept or arrives within `quiet`.
    pub async fn assert_none(&mut self, what: &str, quiet: Duration, unwanted: impl Fn(&Value) -> bool) {
        if let Some(frame) = self.inbox.iter().find(|frame| unwanted(frame)) {
            panic!("unexpected {what}: {frame}");
        }
        let deadline = tokio::time::Instant::now() + quiet;
        while let Some(frame) = self.read_until(deadline).await {
            assert!(!unwanted(&frame), "unexpected {what}: {frame}");
            self.inbox.push_back(frame);
        }
    }

    /// Joins `topic` with `payload`; returns the reply frame.
    pub async fn join(&mut self, topic: &str, payload: Value) -> Value {
        let reference = self.reference();
        self.joins.insert(topic.to_owned(), reference.clone());
        self.send(json!([reference, reference, topic, "phx_join", payload])).await;
        self.reply(topic, &reference).await
    }

    /// Joins `topic` and returns the reply's `response`, failing unless the join succeeded.
    pub async fn join_ok(&mut self, topic: &str, payload: Value) -> Value {
        let reply = self.join(topic, payload).await;
        assert_eq!(reply[4]["status"], "ok", "joining {topic} failed: {reply}");
        reply[4]["response"].clone()
    }

    /// Pushes `event` to the joined `topic`; returns the reply frame.
    pub async fn push(&mut self, topic: &str, event: &str, payload: Value) -> Value {
        let reference = self.reference();
        let join_ref = self.join_ref(topic);
        self.send(json!([join_ref, reference, topic, event, payload])).await;
        self.reply(topic, &reference).await
    }

    /// The reply with `reference` on `topic`.
    pub async fn reply(&mut self, topic: &str, reference: &str) -> Value {
        let what = format!("phx_reply {reference} on {topic}");
        self.take(&what, |frame| frame[1] == reference && frame[2] == topic && frame[3] == "phx_reply").await
    }

    /// Waits for the server's close frame (other frames are skipped) and returns its code.
    pub async fn close_code(&mut self) -> CloseCode {
        self.close_frame().await.0
    }

    /// Waits for the server's close frame (other frames are skipped) and returns its code and reason.
    pub async fn close_frame(&mut self) -> (CloseCode, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("the socket closes in time") {
                Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// The `reason` of an error reply frame; fails unless the reply is an error.
pub fn error_reason(reply: &Value) -> &str {
    assert_eq!(reply[4]["status"], "error", "expected an error reply: {reply}");
    reply[4]["response"]["reason"].as_str().unwrap_or_else(|| panic!("an error reply without a reason: {reply}"))
}
