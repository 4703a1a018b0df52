//! One WebSocket connection speaking Phoenix Channels V2: heartbeats, joins, leaves, events, limits, and closing.
//!
//! One task per connection. It reads frames and routes them, runs the joined channels as state of its own (see
//! `channels`), and writes what the client receives from one small bounded queue (`Outbound`) that channels and
//! live-view tasks fill: a client that does not read is disconnected when the queue is full, never buffered without
//! bound. An idle joined connection is then the socket, its buffers, this task and a few small maps.

mod channels;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use self::channels::Channels;
use self::writer::{SocketEvent, Writer};
use crate::channel::{Router, SocketInfo, Termination};
use crate::config::SocketConfig;
use crate::connections::Registration;
use crate::outbound::{Outbound, Stop};
use crate::protocol::{Frame, PHOENIX_TOPIC, ReplyStatus, encode_push, encode_reply, events};
use crate::rate::{EventRate, RateDecision};
use crate::websocket::tcp::TcpSocket;
use crate::websocket::{Incoming, ProtocolError, UpgradedIo, WebSocket, WsError};

/// What a WebSocket runs over: hyper's upgraded connection in the server, an in-memory pipe in tests.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Close codes the server uses. Never 1000: older phoenix.js clients do not reconnect after a normal close.
pub mod close_codes {
    /// Server stopping, kicked, or idle.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy: too many refused events, or a slow consumer.
    pub const POLICY: u16 = 1008;
    /// A frame larger than the limit.
    pub const TOO_BIG: u16 = 1009;
    /// A frame that breaks the WebSocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
}

/// How long the connection spends flushing and sending its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The same for a client found silent: it answered nothing for the idle timeout, so waiting for it to close its side
/// would only hold its presences (they leave when the channels stop, after the goodbye) a second longer.
const SILENT_CLOSE_WAIT: Duration = Duration::from_millis(50);

/// Why the connection ends, and how the socket is closed.
struct Close {
    code: u16,
    reason: &'static str,
    termination: Termination,
}

impl Close {
    const IDLE: &str = "idle timeout: no frame or pong received";

    fn new(code: u16, reason: &'static str, termination: Termination) -> Self {
        Close { code, reason, termination }
    }

    /// The close for a frame that broke the WebSocket protocol.
    fn protocol(error: &ProtocolError) -> Self {
        let reason = match error.close_code() {
            close_codes::TOO_BIG => "frame too large",
            close_codes::INVALID_DATA => "text frame is not valid UTF-8",
            _ => "WebSocket protocol error",
        };
        Close::new(error.close_code(), reason, Termination::Closed)
    }
}

/// Serves one upgraded WebSocket until it closes, the server shuts down, or a limit is hit. `outbound` is the queue the
/// socket's `registration` in its endpoint stops it through (a shutdown or a kick); both were made before the upgrade.
///
/// A plain function returning one `async move` block, and no `async fn` layers: rustc keeps an `async fn`'s arguments
/// twice in its state (as captured and as moved into the body), and every connection's task holds that state for the
/// connection's whole life. Nesting three such layers around the 368-byte WebSocket cost about 1.7 KiB per connection.
pub(crate) fn serve<IO: Io>(
    ws: WebSocket<IO>,
    router: Arc<Router>,
    info: SocketInfo,
    config: Arc<SocketConfig>,
    outbound: Arc<Outbound>,
    registration: Registration,
) -> impl Future<Output = ()> + Send + 'static {
    let rate = EventRate::new(
        config.events_per_second,
        config.event_burst,
        config.max_refused_events,
        std::time::Instant::now(),
    );
    let channels = Channels::new(info, router, outbound.clone(), config.max_channels);
    registration.watch(tcp_socket(&ws));
    let connection = Connection { outbound, channels, rate, registration };
    connection.run(ws)
}

/// The TCP socket under `ws`, if it runs on hyper's connection over tokio's `TcpStream` (see [`UpgradedIo`]). Asked
/// by type rather than through a bound on `IO`: `serve` also runs over in-memory pipes, which have no socket.
fn tcp_socket<IO: Io>(ws: &WebSocket<IO>) -> Option<TcpSocket> {
    (ws.io() as &dyn std::any::Any).downcast_ref::<UpgradedIo>().and_then(UpgradedIo::tcp)
}

/// The connection's own state; who it belongs to is in its channels ([`Channels::info`]), not kept twice.
struct Connection {
    outbound: Arc<Outbound>,
    channels: Channels,
    rate: EventRate,
    /// Keeps the connection in its endpoint's registry (shutdowns, kicks, the idle sweep), and tells the time on the
    /// endpoint's clock.
    registration: Registration,
}

impl Connection {
    /// Not an `async fn`, for the reason given on [`serve`].
    #[allow(clippy::manual_async_fn)]
    fn run<IO: Io>(mut self, mut ws: WebSocket<IO>) -> impl Future<Output = ()> + Send + 'static {
        async move {
            // The code of the client's close frame, once it sent one (answered in `finish`).
            let mut client_close: Option<Option<u16>> = None;
            let mut writer = Writer::default();
            let close: Option<Close> = loop {
                // Biased, in this order: a stop (shutdown or kick) first; then the socket (writes, then the client's next
                // message) ahead of the channels, so a burst of broadcasts cannot starve the writes and fill the
                // outbound queue; a client's own frames are rate-limited.
                tokio::select! {
                    biased;
                    stop = std::future::poll_fn(|cx| self.outbound.poll_stop(cx)) => break Some(match stop {
                        Stop::Shutdown => Close::new(close_codes::GOING_AWAY, "server shutting down", Termination::Shutdown),
                        Stop::Kicked(reason) => Close::new(close_codes::GOING_AWAY, reason, Termination::Shutdown),
                        Stop::Overflowed => Close::new(close_codes::POLICY, "slow consumer: too many unsent messages", Termination::Closed),
                    }),
                    event = std::future::poll_fn(|cx| writer.poll(&mut ws, &self.outbound, cx)) => {
                        let incoming = match event {
                            SocketEvent::Incoming(incoming) => incoming,
                            // No timer here: the endpoint's sweep finds silent clients (`crate::connections`). A client
                            // that answered neither frames nor our ping for the idle timeout is gone: its presences
                            // leave at once, without the grace that lets a reloading page keep its place.
                            SocketEvent::Silent => {
                                break Some(Close::new(close_codes::GOING_AWAY, Close::IDLE, Termination::Shutdown));
                            }
                            SocketEvent::WriteFailed(error) => {
                                tracing::info!(user = %self.channels.info().user.id(), %error, "socket write failed; closing");
                                break None;
                            }
                        };
                        self.outbound.heard(self.registration.now_ms());
                        metrics::counter!("livebaton_frames_in_total").increment(1);
                        match incoming {
                            Some(Ok(Incoming::Text(text))) => {
                                if let Some(close) = self.handle_text(text.as_bytes()) {
                                    break Some(close);
                                }
                            }
                            Some(Ok(Incoming::Binary(_))) => {
                                tracing::debug!("binary frame ignored: this server speaks JSON text frames only");
                            }
                            Some(Ok(Incoming::Ping(payload))) => ws.queue_pong(&payload),
                            Some(Ok(Incoming::Pong)) => {}
                            Some(Ok(Incoming::Close(code))) => {
                                // Answered in `finish`, not here: an await inside this loop would be part of every
                                // connection's task, idle or not (this one was 720 bytes).
                                client_close = Some(code);
                                break None;
                            }
                            None => break None,
                            Some(Err(WsError::Protocol(error))) => {
                                tracing::debug!(%error, "WebSocket protocol error");
                                break Some(Close::protocol(&error));
                            }
                            Some(Err(WsError::Io(error))) => {
                                tracing::debug!(%error, "socket read failed");
                                break None;
                            }
                        }
                    }
                    activity = std::future::poll_fn(|cx| self.channels.poll_activity(cx)) => self.channels.handle(activity),
                }
            };
            self.log_close(close.as_ref());
            let termination = close.as_ref().map_or(Termination::Closed, |close| close.termination);
            // Boxed: this runs once per connection, and inline it would make every connection's task bigger while idle.
            Box::pin(self.finish(ws, writer, close, client_close, termination)).await;
        }
    }

    /// Ends the channels, flushes what is queued, sends the close frame (or answers the client's, with its code: RFC
    /// 6455 §5.5.1), and waits briefly for busy channels.
    async fn finish<IO: Io>(
        mut self,
        mut ws: WebSocket<IO>,
        mut writer: Writer,
        close: Option<Close>,
        client_close: Option<Option<u16>>,
        termination: Termination,
    ) {
        if let Some(code) = client_close {
            let answer = async {
                // A half-written frame is finished first: the close frame must not land inside it.
                if writer.finish(&mut ws).await.is_ok() {
                    let _ = ws.close(code, "").await;
                }
            };
            let _ = tokio::time::timeout(CLOSE_WAIT, answer).await;
        }
        if let Some(close) = close {
            let goodbye = async {
                // A half-written frame is always finished: the close frame must not land inside it.
                let Ok(mut frames) = writer.finish(&mut ws).await else { return };
                // Write what is already queued (replies, the last diffs) unless the client is the one not reading.
                if close.code != close_codes::POLICY {
                    frames.extend(self.outbound.take_all());
                    metrics::counter!("livebaton_frames_out_total").increment(frames.len() as u64);
                    if ws.write_texts(&frames).await.is_err() {
                        return;
                    }
                }
                let _ = ws.close(Some(close.code), close.reason).await;
            };
            // A client that stopped reading must not hold the connection open.
            let wait = if close.reason == Close::IDLE { SILENT_CLOSE_WAIT } else { CLOSE_WAIT };
            let _ = tokio::time::timeout(wait, goodbye).await;
        }
        // The idle sweep must not read the socket's descriptor once it is closed (another socket may get its number).
        self.registration.watch(None);
        drop(ws);
        // Nothing more reaches the client; producers still running (live views) stop queueing.
        self.outbound.close();
        self.channels.stop_all(termination).await;
    }

    fn log_close(&self, close: Option<&Close>) {
        let info = self.channels.info();
        let (user, connection) = (info.user.id(), &info.connection_id);
        match close {
            Some(close) if close.reason != Close::IDLE => {
                tracing::info!(%user, %connection, code = close.code, reason = close.reason, "socket closed by the server");
            }
            _ => tracing::debug!(%user, %connection, "socket closed"),
        }
    }

    fn reply(
        &self,
        join_ref: Option<&str>,
        reference: Option<&str>,
        topic: &str,
        status: ReplyStatus,
        body: serde_json::Value,
    ) {
        let _ = self.outbound.push(encode_reply(join_ref, reference, topic, status, &body));
    }

    fn handle_text(&mut self, bytes: &[u8]) -> Option<Close> {
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(error) => {
                // Without a decodable ref there is nothing to reply to; tell the client on the socket topic.
                tracing::debug!(%error, "undecodable frame");
                let payload = json!({"reason": error.to_string()});
                let _ = self.outbound.push(encode_push(None, PHOENIX_TOPIC, events::ERROR, &payload));
                return None;
            }
        };
        if frame.topic == PHOENIX_TOPIC && frame.event == events::HEARTBEAT {
            self.reply(None, frame.reference.as_deref(), PHOENIX_TOPIC, ReplyStatus::Ok, json!({}));
            return None;
        }
        match self.rate.take(std::time::Instant::now()) {
            RateDecision::Allow => {}
            RateDecision::Refuse => {
                metrics::counter!("livebaton_events_refused_total", "reason" => "rate").increment(1);
                let (join_ref, reference) = (frame.join_ref.as_deref(), frame.reference.as_deref());
                let reason = json!({"reason": "rate limited: too many events"});
                self.reply(join_ref, reference, &frame.topic, ReplyStatus::Error, reason);
                return None;
            }
            RateDecision::Disconnect => {
                return Some(Close::new(close_codes::POLICY, "too many events", Termination::Closed));
            }
        }
        match frame.event.as_str() {
            events::JOIN => self.channels.join(frame),
            events::LEAVE => self.channels.leave(frame),
            _ => self.channels.event(frame),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task holds this future for as long as the connection lives, so its size is a per-connection
    /// cost: a once-per-connection `.await` written inline in the loop (rather than boxed, as `finish` is) adds its
    /// whole state to every idle connection (the close handshake's was 720 bytes), and so did the idle timer (a 112-byte
    /// `Sleep`, replaced by the endpoint's sweep). tokio 1.54 allocates a task as its future plus 104 bytes (header,
    /// scheduler, stage, trailer) rounded up to 128, which was measured by spawning futures of known sizes: up to 408
    /// bytes the task is 512 bytes, up to 536 it is 640. This test keeps the server's future in the 512-byte class.
    #[test]
    fn the_connection_task_stays_small() {
        fn output_size<A, B, C, D, E, G, R>(_: fn(A, B, C, D, E, G) -> R) -> usize {
            std::mem::size_of::<R>()
        }
        let size = output_size(serve::<crate::websocket::UpgradedIo>);
        assert!(size <= 408, "the server's connection future is {size} bytes: its task is no longer 512 bytes");
    }
}
