//! The I/O shell over an in-memory pipe: reads split anywhere, writes the kernel takes in pieces, pongs, closing, and
//! the promise that an idle socket keeps no buffer.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::frame::tests::client_frame;
use super::*;

const MASK: [u8; 4] = [0xA1, 0x07, 0x5C, 0xEE];

/// Reads one server frame (unmasked, final) from the client's end: opcode and payload.
async fn server_frame(client: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0] & 0xF0, 0x80, "server frames are final, without reserved bits");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let length = match head[1] {
        126 => client.read_u16().await.unwrap() as usize,
        127 => client.read_u64().await.unwrap() as usize,
        short => short as usize,
    };
    let mut payload = vec![0; length];
    client.read_exact(&mut payload).await.unwrap();
    (head[0] & 0x0F, payload)
}

async fn next(ws: &mut WebSocket<DuplexStream>) -> Option<Result<Incoming, WsError>> {
    std::future::poll_fn(|cx| ws.poll_next(cx)).await
}

#[tokio::test]
async fn messages_split_across_reads_arrive_whole_and_an_idle_socket_keeps_no_buffer() {
    let (server, mut client) = duplex(64 * 1024);
    let mut ws = WebSocket::new(server, 1024);
    let heartbeat = br#"[null,"1","phoenix","heartbeat",{}]"#;
    let big = "x".repeat(900);
    let mut bytes = client_frame(0x81, heartbeat, MASK);
    bytes.extend(client_frame(0x81, big.as_bytes(), MASK));
    bytes.extend(client_frame(0x81, heartbeat, MASK));
    // Three frames in pieces of 7 bytes: every boundary falls somewhere inside a header or a payload.
    let writer = tokio::spawn(async move {
        for piece in bytes.chunks(7) {
            client.write_all(piece).await.unwrap();
            tokio::task::yield_now().await;
        }
        client
    });
    let expected = [std::str::from_utf8(heartbeat).unwrap(), &big, std::str::from_utf8(heartbeat).unwrap()];
    for text in expected {
        assert_eq!(next(&mut ws).await.unwrap().unwrap(), Incoming::Text(text.to_owned()));
    }
    let mut client = writer.await.unwrap();
    assert_eq!(ws.unread.capacity(), 0, "whole frames decoded: nothing kept between reads");

    // One read holding a whole frame: decoded on the stack, nothing allocated for it.
    client.write_all(&client_frame(0x81, heartbeat, MASK)).await.unwrap();
    assert!(matches!(next(&mut ws).await, Some(Ok(Incoming::Text(_)))));
    assert_eq!(ws.unread.capacity(), 0);
    drop(client);
    assert!(next(&mut ws).await.is_none(), "the end of the stream ends the messages");
}

#[tokio::test]
async fn an_oversized_frame_is_refused_from_its_header() {
    let (server, mut client) = duplex(1024);
    let mut ws = WebSocket::new(server, 100);
    // Only the header of a 1 MiB frame: the error comes before any payload, so nothing is buffered for it.
    let header = &client_frame(0x81, &vec![0; 1 << 20], MASK)[..14];
    client.write_all(header).await.unwrap();
    match next(&mut ws).await {
        Some(Err(WsError::Protocol(error))) => {
            assert_eq!((error.close_code(), error), (1009, ProtocolError::TooBig { limit: 100 }))
        }
        other => panic!("expected a 1009 error, got {other:?}"),
    }
}

#[tokio::test]
async fn text_frames_written_in_pieces_arrive_whole_and_in_order() {
    // A pipe of 100 bytes: the kernel (here, the pipe) takes each vectored write only in part.
    let (server, mut client) = duplex(100);
    let mut ws = WebSocket::new(server, 1024);
    let payloads: Vec<Bytes> = (0..40).map(|index| Bytes::from(format!("{index}:{}", "y".repeat(index * 7)))).collect();
    let expected = payloads.clone();
    let reader = tokio::spawn(async move {
        let mut frames = Vec::new();
        for _ in 0..expected.len() {
            frames.push(server_frame(&mut client).await);
        }
        (frames, expected)
    });
    ws.write_texts(&payloads).await.unwrap();
    let (frames, expected) = reader.await.unwrap();
    for ((opcode, payload), sent) in frames.iter().zip(&expected) {
        assert_eq!((*opcode, payload.as_slice()), (0x1, &sent[..]));
    }
}

#[test]
fn advance_counts_whole_frames_and_the_offset_into_the_next() {
    let payloads = [Bytes::from_static(b"abc"), Bytes::from(vec![0; 200]), Bytes::from_static(b"z")];
    // Frame lengths with headers: 2 + 3 = 5, 4 + 200 = 204, 2 + 1 = 3.
    assert_eq!(advance(&payloads, 0, 4), (0, 4));
    assert_eq!(advance(&payloads, 0, 5), (1, 0));
    assert_eq!(advance(&payloads, 4, 1), (1, 0));
    assert_eq!(advance(&payloads, 0, 6), (1, 1));
    assert_eq!(advance(&payloads, 3, 205), (1, 203));
    assert_eq!(advance(&payloads, 0, 212), (3, 0));
}

#[tokio::test]
async fn a_ping_is_answered_between_frames() {
    let (server, mut client) = duplex(4096);
    let mut ws = WebSocket::new(server, 1024);
    client.write_all(&client_frame(0x89, b"still there?", MASK)).await.unwrap();
    let Some(Ok(Incoming::Ping(payload))) = next(&mut ws).await else { panic!("expected the ping") };
    ws.queue_pong(&payload);
    // A second ping before the first pong went out: only the latest is answered.
    ws.queue_pong(b"latest");
    std::future::poll_fn(|cx| ws.poll_write_control(cx)).await.unwrap();
    ws.write_texts(&[Bytes::from_static(b"after")]).await.unwrap();
    assert_eq!(server_frame(&mut client).await, (0xA, b"latest".to_vec()));
    assert_eq!(server_frame(&mut client).await, (0x1, b"after".to_vec()));
}

#[tokio::test]
async fn closing_sends_the_code_and_reason_then_waits_for_the_client_to_close() {
    let (server, mut client) = duplex(4096);
    let mut ws = WebSocket::new(server, 1024);
    let closing = tokio::spawn(async move { ws.close(Some(1001), "server shutting down").await });
    let (opcode, payload) = server_frame(&mut client).await;
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"server shutting down");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the close frame is the last thing sent");
    // The server still reads (and drops) what the client sends until the client closes.
    client.write_all(&client_frame(0x81, b"late", MASK)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!closing.is_finished(), "waits for the client's end of the stream");
    drop(client);
    closing.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_half_written_pong_is_finished_before_the_next_one() {
    // A pipe of 5 bytes: the first pong (10 bytes) goes out in part, then the socket is full.
    let (server, mut client) = duplex(5);
    let mut ws = WebSocket::new(server, 1024);
    ws.queue_pong(b"abcdefgh");
    let waker = std::task::Waker::noop();
    assert!(ws.poll_write_control(&mut Context::from_waker(waker)).is_pending(), "the pipe takes 5 of 10 bytes");
    // Two more pings meanwhile: the half-written pong stays whole, only the latest new one follows it.
    ws.queue_pong(b"XY");
    ws.queue_pong(b"Z");
    let writer = tokio::spawn(async move {
        std::future::poll_fn(|cx| ws.poll_write_control(cx)).await.unwrap();
        ws.write_texts(&[Bytes::from_static(b"text")]).await.unwrap();
    });
    assert_eq!(server_frame(&mut client).await, (0xA, b"abcdefgh".to_vec()));
    assert_eq!(server_frame(&mut client).await, (0xA, b"Z".to_vec()));
    assert_eq!(server_frame(&mut client).await, (0x1, b"text".to_vec()));
    writer.await.unwrap();
}

#[tokio::test]
async fn queued_pongs_go_out_before_the_last_text_frames() {
    let (server, mut client) = duplex(4096);
    let mut ws = WebSocket::new(server, 1024);
    ws.queue_pong(b"p");
    ws.write_texts(&[Bytes::from_static(b"last")]).await.unwrap();
    assert_eq!(server_frame(&mut client).await, (0xA, b"p".to_vec()));
    assert_eq!(server_frame(&mut client).await, (0x1, b"last".to_vec()));
}
