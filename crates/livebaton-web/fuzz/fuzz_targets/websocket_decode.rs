//! Feeds arbitrary bytes, in arbitrary reads, to the WebSocket decoder: it must never panic, never report more bytes
//! consumed than it was given, and never hold a message over its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livebaton_web::websocket::{Decoder, Incoming};

const LIMIT: usize = 1024;

fuzz_target!(|input: (u8, &[u8])| {
    let (read, bytes) = input;
    let mut decoder = Decoder::new(LIMIT);
    let mut buffer = Vec::new();
    for chunk in bytes.chunks(usize::from(read.max(1))) {
        buffer.extend_from_slice(chunk);
        loop {
            let Ok((consumed, incoming)) = decoder.decode(&mut buffer) else { return };
            assert!(consumed <= buffer.len());
            buffer.drain(..consumed);
            match incoming {
                Some(Incoming::Text(text)) => assert!(text.len() <= LIMIT),
                Some(Incoming::Binary(bytes)) => assert!(bytes.len() <= LIMIT),
                Some(_) => {}
                None => break,
            }
        }
    }
});
