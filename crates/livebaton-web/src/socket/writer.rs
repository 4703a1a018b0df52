//! Drives one WebSocket from the connection's task without ever waiting on it: frames move from the outbound queue
//! into the socket as fast as it takes them, and a socket that is not writable does not stop the task from reading,
//! running its channels, or draining their subscriptions into the (bounded) outbound queue.
//!
//! Awaiting each write instead would stall everything behind a slow socket: subscriptions would fall behind their
//! topic's ring and resynchronise (a presence channel then resends its whole list), which made a 1,000-client join
//! storm several times more expensive.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, Stream};

use crate::outbound::{Outbound, Ready};

/// Most frames taken from the queue at a time.
const WRITE_BATCH: usize = 32;

/// What the socket has for the connection.
pub(super) enum SocketEvent {
    /// A message from the client, the end of its stream (`None`), or a read error.
    Incoming(Option<Result<Message, axum::Error>>),
    /// Writing failed: the connection is gone.
    WriteFailed(axum::Error),
    /// A producer found the outbound queue full: the client does not read fast enough.
    Overflowed,
}

/// Frames taken from the outbound queue and not yet handed to the socket.
#[derive(Default)]
pub(super) struct Writer {
    /// Empty (no allocation) between bursts.
    batch: Vec<Bytes>,
    /// How many of `batch` the socket has taken.
    sent: usize,
    /// Frames were handed to the socket since its last flush.
    unflushed: bool,
}

impl Writer {
    /// Writes as much as the socket takes, then polls it for the client's next message.
    pub(super) fn poll(&mut self, ws: &mut WebSocket, outbound: &Outbound, cx: &mut Context<'_>) -> Poll<SocketEvent> {
        if let Poll::Ready(event) = self.poll_write(ws, outbound, cx) {
            return Poll::Ready(event);
        }
        Pin::new(ws).poll_next(cx).map(SocketEvent::Incoming)
    }

    /// `Ready` only for a failure; `Pending` once the queue is empty and flushed, or the socket is full.
    fn poll_write(&mut self, ws: &mut WebSocket, outbound: &Outbound, cx: &mut Context<'_>) -> Poll<SocketEvent> {
        loop {
            if self.sent == self.batch.len() {
                self.batch = Vec::new();
                self.sent = 0;
                match outbound.poll_frames(cx, &mut self.batch, WRITE_BATCH) {
                    Poll::Ready(Ready::Overflowed) => return Poll::Ready(SocketEvent::Overflowed),
                    Poll::Ready(Ready::Frames) => continue,
                    Poll::Pending if self.unflushed => match Pin::new(&mut *ws).poll_flush(cx) {
                        Poll::Ready(Ok(())) => {
                            self.unflushed = false;
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(error)) => return Poll::Ready(SocketEvent::WriteFailed(error)),
                        Poll::Pending => return Poll::Pending,
                    },
                    Poll::Pending => return Poll::Pending,
                }
            }
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(SocketEvent::WriteFailed(error)),
                Poll::Pending => return Poll::Pending,
            }
            let frame = std::mem::take(&mut self.batch[self.sent]);
            self.sent += 1;
            let Ok(text) = Utf8Bytes::try_from(frame) else { continue };
            metrics::counter!("livebaton_frames_out_total").increment(1);
            if let Err(error) = Pin::new(&mut *ws).start_send(Message::Text(text)) {
                return Poll::Ready(SocketEvent::WriteFailed(error));
            }
            self.unflushed = true;
        }
    }

    /// The frames taken from the queue but not sent, for the last flush before closing.
    pub(super) fn unsent(&mut self) -> Vec<Bytes> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.drain(..self.sent);
        self.sent = 0;
        batch
    }
}
