//! Drives one WebSocket from the connection's task without ever waiting on it: frames move from the outbound queue
//! into the socket as fast as it takes them, and a socket that is not writable does not stop the task from reading,
//! running its channels, or draining their subscriptions into the (bounded) outbound queue.
//!
//! Awaiting each write instead would stall everything behind a slow socket: subscriptions would fall behind their
//! topic's ring and resynchronise (a presence channel then resends its whole list), which made a 1,000-client join
//! storm several times more expensive.

use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::outbound::Outbound;
use crate::websocket::{Incoming, WRITE_BATCH, WebSocket, WsError, advance};

/// What the socket has for the connection.
pub(super) enum SocketEvent {
    /// A message from the client, the end of its stream (`None`), or a read error.
    Incoming(Option<Result<Incoming, WsError>>),
    /// Writing failed: the connection is gone.
    WriteFailed(std::io::Error),
    /// Nothing to read, and the endpoint's sweep found the client silent for the idle timeout.
    Silent,
}

/// Frames taken from the outbound queue and not yet fully written.
#[derive(Default)]
pub(super) struct Writer {
    /// Not yet fully written, in order (written frames are removed). Empty (no allocation) between bursts.
    batch: Vec<Bytes>,
    /// Bytes of `batch[0]` (header included) already written.
    offset: usize,
    /// The socket was full at the last write: the next write that goes through means the client read.
    full: bool,
}

impl Writer {
    /// Writes as much as the socket takes, then polls it for the client's next message; only when there is none, tells
    /// whether the client was found silent (so a frame that already arrived is handled, and counts, first).
    pub(super) fn poll<IO: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ws: &mut WebSocket<IO>,
        outbound: &Outbound,
        cx: &mut Context<'_>,
    ) -> Poll<SocketEvent> {
        if let Poll::Ready(event) = self.poll_write(ws, outbound, cx) {
            return Poll::Ready(event);
        }
        match ws.poll_next(cx) {
            Poll::Ready(incoming) => Poll::Ready(SocketEvent::Incoming(incoming)),
            Poll::Pending if outbound.is_silent() => Poll::Ready(SocketEvent::Silent),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `Ready` only for a failure; `Pending` once the queue is empty and written, or the socket is full.
    fn poll_write<IO: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ws: &mut WebSocket<IO>,
        outbound: &Outbound,
        cx: &mut Context<'_>,
    ) -> Poll<SocketEvent> {
        if outbound.take_ping_due() {
            ws.queue_ping();
        }
        loop {
            if self.offset == 0 {
                // Between frames: a pong or a ping goes out here, never inside a message.
                match ws.poll_write_control(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(error)) => return Poll::Ready(SocketEvent::WriteFailed(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.batch.is_empty() {
                // Released: an idle connection keeps no slots.
                self.batch = Vec::new();
                match outbound.poll_frames(cx, &mut self.batch, 2 * WRITE_BATCH) {
                    Poll::Ready(()) => continue,
                    Poll::Pending => return Poll::Pending,
                }
            }
            let written = match ws.poll_write_texts(cx, &self.batch, self.offset) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(SocketEvent::WriteFailed(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(error)) => return Poll::Ready(SocketEvent::WriteFailed(error)),
                Poll::Pending => {
                    self.full = true;
                    return Poll::Pending;
                }
            };
            if std::mem::take(&mut self.full) {
                outbound.drained();
            }
            let (done, offset) = advance(&self.batch, self.offset, written);
            metrics::counter!("livebaton_frames_out_total").increment(done as u64);
            // Release each frame once written: a broadcast's bytes are shared, the last holder frees them. (Usually
            // every frame is written at once, and this empties the batch without moving anything.)
            self.batch.drain(..done);
            self.offset = offset;
        }
    }

    /// Finishes the frame being written, if one is half-written, and returns the frames taken from the queue but not
    /// started, for the last writes before closing.
    pub(super) async fn finish<IO: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ws: &mut WebSocket<IO>,
    ) -> std::io::Result<Vec<Bytes>> {
        while self.offset > 0 {
            let pending = &self.batch[..1];
            let written = std::future::poll_fn(|cx| ws.poll_write_texts(cx, pending, self.offset)).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            let (done, offset) = advance(pending, self.offset, written);
            self.batch.drain(..done);
            self.offset = offset;
        }
        Ok(std::mem::take(&mut self.batch))
    }
}
