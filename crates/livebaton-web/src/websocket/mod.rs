//! The server side of RFC 6455, written for many idle connections: an idle socket holds no buffer at all.
//!
//! Why not tungstenite (through axum's `ws`): it gives every connection a read buffer and a write buffer, and the write
//! buffer keeps the capacity of the largest frame ever sent (snapview/tungstenite-rs#500), so a connection that once
//! received a 1.5 KiB `presence_state` frame holds 1.5 KiB for as long as it lives, and every broadcast is copied into
//! it. Here:
//! - reads go into a buffer on the stack of the poll, and only the bytes of a frame that has not fully arrived (or of
//!   frames after the one just returned) are kept on the heap, until they are decoded;
//! - writes are vectored: each frame's header is built on the stack and the shared payload (`Bytes`, encoded once per
//!   broadcast) goes to the kernel as it is, up to `WRITE_BATCH` frames in one system call, with no copy;
//! - the handshake is [`Upgrade`], an axum extractor, and the upgraded connection is hyper's.
//!
//! The frame rules are in `frame` and message reassembly in `decoder`, both pure; this file is the I/O shell.

mod decoder;
mod frame;
mod handshake;
pub(crate) mod tcp;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

pub use self::decoder::{Decoder, Incoming};
pub use self::frame::ProtocolError;
use self::frame::{MAX_HEADER, Opcode, close_payload, encode_frame, encode_header};
pub use self::handshake::{Upgrade, UpgradeRejection, UpgradedIo};

/// Bytes read from the socket per `read` call, into a buffer on the stack (not kept between reads).
const READ_CHUNK: usize = 4096;

/// Most text frames handed to the kernel in one vectored write (two slices each: header and payload).
pub(crate) const WRITE_BATCH: usize = 16;

/// Why reading or writing the WebSocket failed.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The client broke the protocol; the connection is closed with the error's close code.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The connection failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// One server-side WebSocket over `IO` (hyper's upgraded connection in the server, an in-memory pipe in tests).
pub struct WebSocket<IO> {
    io: IO,
    decoder: Decoder,
    /// Bytes read but not yet decoded: the start of a frame still arriving, or frames after the one just returned.
    /// Empty, with no allocation, whenever every read held whole frames (the usual case).
    unread: Vec<u8>,
    /// A whole control frame (the pong to the latest ping, or our ping to a quiet client) to write at the next frame boundary; how much of it is
    /// written. `None` almost always, so boxed: every idle connection's task holds this field (8 bytes, not 32).
    control: Option<Box<(Vec<u8>, usize)>>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> WebSocket<IO> {
    /// A WebSocket over an upgraded connection, refusing messages larger than `max_message` bytes.
    pub fn new(io: IO, max_message: usize) -> Self {
        WebSocket { io, decoder: Decoder::new(max_message), unread: Vec::new(), control: None }
    }

    /// The connection the WebSocket runs over.
    pub(crate) fn io(&self) -> &IO {
        &self.io
    }

    /// The client's next message: `None` when the connection ended.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, WsError>>> {
        loop {
            if !self.unread.is_empty() {
                let (consumed, incoming) = match self.decoder.decode(&mut self.unread) {
                    Ok(decoded) => decoded,
                    Err(error) => return Poll::Ready(Some(Err(error.into()))),
                };
                self.unread.drain(..consumed);
                if self.unread.is_empty() {
                    self.unread = Vec::new();
                }
                if let Some(incoming) = incoming {
                    return Poll::Ready(Some(Ok(incoming)));
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buffer = ReadBuf::new(&mut chunk);
            if let Err(error) = ready!(Pin::new(&mut self.io).poll_read(cx, &mut buffer)) {
                return Poll::Ready(Some(Err(error.into())));
            }
            let filled = buffer.filled().len();
            if filled == 0 {
                return Poll::Ready(None);
            }
            if !self.unread.is_empty() {
                self.unread.extend_from_slice(&chunk[..filled]);
                continue;
            }
            // Decode where the bytes are; keep only what follows.
            let read = &mut chunk[..filled];
            let (consumed, incoming) = match self.decoder.decode(read) {
                Ok(decoded) => decoded,
                Err(error) => return Poll::Ready(Some(Err(error.into()))),
            };
            self.unread.extend_from_slice(&read[consumed..]);
            if let Some(incoming) = incoming {
                return Poll::Ready(Some(Ok(incoming)));
            }
        }
    }

    /// Answers a ping at the next frame boundary. Only the latest ping needs an answer (RFC 6455 §5.5.3), so a client
    /// sending pings faster than it reads replaces its pong and cannot grow this. A pong already half-written is
    /// finished first: the new one follows it.
    pub fn queue_pong(&mut self, payload: &[u8]) {
        let pong = encode_frame(Opcode::Pong, payload);
        match self.control.as_deref_mut() {
            Some((frames, written)) if *written > 0 => {
                frames.truncate(control_frame_len(frames));
                frames.extend_from_slice(&pong);
            }
            _ => self.control = Some(Box::new((pong, 0))),
        }
    }

    /// Sends a ping (empty payload) at the next frame boundary, to learn whether a quiet client is still there: its
    /// pong counts as life. Skipped while a pong is waiting to go out: the client just pinged us, so it is there.
    pub fn queue_ping(&mut self) {
        if self.control.is_none() {
            self.control = Some(Box::new((encode_frame(Opcode::Ping, &[]), 0)));
        }
    }

    /// Writes the queued control frames, if any. Call it only between frames (the writer does).
    pub fn poll_write_control(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((frames, written)) = self.control.as_deref_mut() {
            if *written == frames.len() {
                self.control = None;
                break;
            }
            match ready!(Pin::new(&mut self.io).poll_write(cx, &frames[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
            // Keep the frame being written at the front, so a new pong knows what must be finished.
            let first = control_frame_len(frames);
            if *written >= first && *written < frames.len() {
                frames.drain(..first);
                *written -= first;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes text frames with `payloads` (the first `offset` bytes of the first frame, header included, are already
    /// written) in one vectored write; returns how many bytes the kernel took. See [`advance`].
    pub fn poll_write_texts(
        &mut self,
        cx: &mut Context<'_>,
        payloads: &[Bytes],
        offset: usize,
    ) -> Poll<io::Result<usize>> {
        let payloads = &payloads[..payloads.len().min(WRITE_BATCH)];
        let mut headers = [([0u8; MAX_HEADER], 0usize); WRITE_BATCH];
        for (header, payload) in headers.iter_mut().zip(payloads) {
            *header = encode_header(Opcode::Text, payload.len());
        }
        let mut slices = [IoSlice::new(&[]); 2 * WRITE_BATCH];
        let mut count = 0;
        let mut skip = offset;
        for ((header, used), payload) in headers.iter().zip(payloads) {
            for part in [&header[..*used], &payload[..]] {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[count] = IoSlice::new(&part[skip..]);
                skip = 0;
                count += 1;
            }
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
    }

    /// Writes whole text frames and waits until the kernel has taken them (for the last frames before closing). Call
    /// it only between frames: a queued pong goes first.
    pub async fn write_texts(&mut self, payloads: &[Bytes]) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_control(cx)).await?;
        let (mut sent, mut offset) = (0, 0);
        while sent < payloads.len() {
            let written = std::future::poll_fn(|cx| self.poll_write_texts(cx, &payloads[sent..], offset)).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let (done, rest) = advance(&payloads[sent..], offset, written);
            (sent, offset) = (sent + done, rest);
        }
        Ok(())
    }

    /// Sends a close frame and the end of the stream (a TCP FIN), then reads and drops what the client still sends
    /// until it closes too: closing with unread bytes would reset the connection and could lose the close frame.
    /// Callers bound the time this takes.
    pub async fn close(&mut self, code: Option<u16>, reason: &str) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_control(cx)).await?;
        let payload = code.map(|code| close_payload(code, reason)).unwrap_or_default();
        self.io.write_all(&encode_frame(Opcode::Close, &payload)).await?;
        self.io.shutdown().await?;
        self.unread = Vec::new();
        let mut sink = [0u8; 512];
        while self.io.read(&mut sink).await? > 0 {}
        Ok(())
    }
}

/// The length of the first of `frames`, whole server control frames (unmasked, at most 125 bytes of payload).
fn control_frame_len(frames: &[u8]) -> usize {
    2 + usize::from(frames[1] & 0x7F)
}

/// Where a writer stands after the kernel took `written` more bytes of `payloads`' frames, starting `offset` bytes
/// into the first: how many frames are now fully written, and how far into the next one.
pub fn advance(payloads: &[Bytes], offset: usize, written: usize) -> (usize, usize) {
    let mut position = offset + written;
    for (index, payload) in payloads.iter().enumerate() {
        let length = encode_header(Opcode::Text, payload.len()).1 + payload.len();
        if position < length {
            return (index, position);
        }
        position -= length;
    }
    (payloads.len(), 0)
}

#[cfg(test)]
mod tests;
