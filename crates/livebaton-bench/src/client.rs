//! One WebSocket client connection speaking a [`Protocol`]: it numbers its requests and stamps every frame it
//! receives with the time it was read, so latencies are measured at the moment the frame left the socket.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::protocol::{Opening, Protocol, Session};

/// What ended a connection from the server's side.
#[derive(Debug)]
pub enum Ended {
    /// A close frame: its code and reason.
    Closed(String),
    /// A transport error, or the stream ended.
    Broken(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Closed(reason) => write!(f, "closed by the server: {reason}"),
            Ended::Broken(reason) => write!(f, "connection broken: {reason}"),
        }
    }
}

/// A text frame and when it was read.
pub struct Received {
    pub text: Utf8Bytes,
    pub at: Instant,
}

/// A connected client.
pub struct Conn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    protocol: Arc<dyn Protocol>,
    session: Session,
    next_ref: u64,
    quickack: bool,
}

impl Conn {
    /// Opens a WebSocket to the server at `addr` as `credential` (a token on livebaton, a user id on the peers), and
    /// runs the protocol's opening handshake, if it has one (bounded: 30 s).
    pub async fn connect(protocol: Arc<dyn Protocol>, addr: &str, credential: &str) -> anyhow::Result<Conn> {
        // A small read buffer: the client's memory is not measured, but 128 KiB each adds up at 10,000 clients.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let url = protocol.url(addr, credential);
        let (ws, _response) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await.context("connecting")?;
        let session = Session { credential: credential.to_owned(), id: None };
        let mut conn = Conn { ws, protocol, session, next_ref: 0, quickack: false };
        if conn.protocol.opens_with_handshake() {
            tokio::time::timeout(std::time::Duration::from_secs(30), conn.handshake())
                .await
                .context("no handshake within 30 s")??;
        }
        Ok(conn)
    }

    async fn handshake(&mut self) -> anyhow::Result<()> {
        loop {
            let text = match self.ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => anyhow::bail!("closed during the handshake: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error).context("handshake"),
                None => anyhow::bail!("the stream ended during the handshake"),
            };
            match self.protocol.open(text.as_str()) {
                Opening::Ready(id) => {
                    self.session.id = id;
                    return Ok(());
                }
                Opening::Send(frame) => self.send(frame).await?,
                Opening::Skip => {}
                Opening::Refused(reason) => anyhow::bail!("refused: {reason}"),
            }
        }
    }

    /// Acknowledge every frame at once (`TCP_QUICKACK` after each read) instead of the kernel's delayed ACK. A
    /// diagnostic: when it removes a delay, the server held a small write back for an ACK (Nagle's algorithm).
    pub fn set_quickack(&mut self, quickack: bool) {
        self.quickack = quickack;
    }

    fn quickack(&self) {
        if let MaybeTlsStream::Plain(stream) = self.ws.get_ref() {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on an open socket with a valid pointer to an int of the given size. The kernel
            // clears the flag by itself, so it is set again after every read.
            unsafe {
                libc::setsockopt(
                    stream.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&raw const one).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    pub fn protocol(&self) -> &dyn Protocol {
        &*self.protocol
    }

    fn next_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    /// Joins `topic`; the join's reference (its replies carry it, and later frames of this membership too).
    pub async fn join(&mut self, topic: &str, payload: &Value) -> anyhow::Result<u64> {
        let reference = self.next_ref();
        let frame = self.protocol.join(&self.session, topic, reference, payload);
        self.send(frame).await?;
        Ok(reference)
    }

    /// Leaves `topic`, joined as `join_ref`; the leave's reference.
    pub async fn leave(&mut self, topic: &str, join_ref: u64) -> anyhow::Result<u64> {
        let reference = self.next_ref();
        let frame = self.protocol.leave(topic, join_ref, reference);
        self.send(frame).await?;
        Ok(reference)
    }

    /// Sends `event` on `topic`, joined as `join_ref`; the event's reference.
    pub async fn push(&mut self, topic: &str, join_ref: u64, event: &str, payload: &Value) -> anyhow::Result<u64> {
        let reference = self.next_ref();
        let frame = self.protocol.push(topic, join_ref, reference, event, payload);
        self.send(frame).await?;
        Ok(reference)
    }

    /// Sends the protocol's keep-alive, if it has one.
    pub async fn heartbeat(&mut self) -> anyhow::Result<()> {
        let reference = self.next_ref();
        match self.protocol.heartbeat(reference) {
            Some(frame) => self.send(frame).await,
            None => Ok(()),
        }
    }

    pub async fn send(&mut self, frame: String) -> anyhow::Result<()> {
        self.ws.send(Message::text(frame)).await.context("sending")
    }

    /// The next text frame. A server keep-alive (Engine.IO `2`, `pusher:ping`) is answered here and not returned.
    /// Cancel-safe as far as frames go (it awaits the stream; an answer cut off mid-send stays queued in the
    /// WebSocket and goes out with the next send), so it can sit in a `select!`.
    pub async fn recv(&mut self) -> Result<Received, Ended> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let at = Instant::now();
                    if self.quickack {
                        self.quickack();
                    }
                    if let Some(answer) = self.protocol.keepalive_reply(text.as_str()) {
                        if let Err(error) = self.ws.send(Message::text(answer)).await {
                            return Err(Ended::Broken(format!("answering a keep-alive: {error}")));
                        }
                        continue;
                    }
                    return Ok(Received { text, at });
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Ended::Closed(match frame {
                        Some(frame) => format!("{} {}", u16::from(frame.code), frame.reason),
                        None => "no code".to_owned(),
                    }));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(Ended::Broken(error.to_string())),
                None => return Err(Ended::Broken("the stream ended".to_owned())),
            }
        }
    }

    /// Closes the connection, waiting at most 5 s for the server's answer.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.ws.close(None)).await;
    }
}
