//! Turns a client's bytes into messages: frames are parsed, unmasked in place, and fragmented messages reassembled,
//! with every size checked before anything is buffered. Pure (bytes in, messages out), so the I/O shell in
//! [`super::WebSocket`] stays small and every rule is tested without a socket.

use super::frame::{Opcode, ProtocolError, apply_mask, parse_close, parse_header};

/// What the client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, checked to be UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping: the server answers with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong (nothing to do).
    Pong,
    /// The client closes, with its code if it gave one.
    Close(Option<u16>),
}

/// A message being reassembled from fragments. Absent (no allocation) between messages.
struct Fragments {
    text: bool,
    bytes: Vec<u8>,
}

/// A connection's decoding state: only a fragmented message in progress, usually nothing.
pub struct Decoder {
    max_message: usize,
    fragments: Option<Box<Fragments>>,
}

impl Decoder {
    /// Refuses messages (and frames) larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder { max_message, fragments: None }
    }

    /// Decodes from the start of `bytes` until one message or control frame is complete. Returns how many bytes were
    /// consumed and what they completed: `(n, None)` means the rest is an incomplete frame (keep the bytes from `n`
    /// on and call again with more). Payloads are unmasked in place, so `bytes` must not be decoded twice.
    pub fn decode(&mut self, bytes: &mut [u8]) -> Result<(usize, Option<Incoming>), ProtocolError> {
        let mut consumed = 0;
        loop {
            let Some(header) = parse_header(&bytes[consumed..], self.max_message)? else { return Ok((consumed, None)) };
            // A fragmented message counts whole; control frames between its fragments do not count (RFC 6455 §5.4).
            let so_far = self.fragments.as_ref().map_or(0, |fragments| fragments.bytes.len());
            if !header.opcode.is_control() && so_far + header.payload_len > self.max_message {
                return Err(ProtocolError::TooBig { limit: self.max_message });
            }
            let end = consumed + header.header_len + header.payload_len;
            if bytes.len() < end {
                return Ok((consumed, None));
            }
            let payload = &mut bytes[consumed + header.header_len..end];
            consumed = end;
            apply_mask(payload, header.mask);
            if let Some(incoming) = self.frame(header.fin, header.opcode, payload)? {
                return Ok((consumed, Some(incoming)));
            }
        }
    }

    fn frame(&mut self, fin: bool, opcode: Opcode, payload: &[u8]) -> Result<Option<Incoming>, ProtocolError> {
        let whole = |text: bool, bytes: Vec<u8>| -> Result<Incoming, ProtocolError> {
            if text {
                String::from_utf8(bytes).map(Incoming::Text).map_err(|_| ProtocolError::InvalidUtf8)
            } else {
                Ok(Incoming::Binary(bytes))
            }
        };
        match opcode {
            Opcode::Ping => Ok(Some(Incoming::Ping(payload.to_vec()))),
            Opcode::Pong => Ok(Some(Incoming::Pong)),
            Opcode::Close => parse_close(payload).map(|code| Some(Incoming::Close(code))),
            Opcode::Text | Opcode::Binary if self.fragments.is_some() => Err(ProtocolError::UnfinishedMessage),
            Opcode::Text | Opcode::Binary if fin => whole(opcode == Opcode::Text, payload.to_vec()).map(Some),
            Opcode::Text | Opcode::Binary => {
                let fragments = Fragments { text: opcode == Opcode::Text, bytes: payload.to_vec() };
                self.fragments = Some(Box::new(fragments));
                Ok(None)
            }
            Opcode::Continuation => {
                let fragments = self.fragments.as_mut().ok_or(ProtocolError::StrayContinuation)?;
                fragments.bytes.extend_from_slice(payload);
                if !fin {
                    return Ok(None);
                }
                let Fragments { text, bytes } = *self.fragments.take().expect("checked above");
                whole(text, bytes).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::tests::client_frame;
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

    /// Decodes everything in `bytes`, the way the socket does: one message at a time, keeping the rest.
    fn decode_all(decoder: &mut Decoder, mut bytes: Vec<u8>) -> Result<(Vec<Incoming>, usize), ProtocolError> {
        let mut messages = Vec::new();
        loop {
            let (consumed, incoming) = decoder.decode(&mut bytes)?;
            bytes.drain(..consumed);
            match incoming {
                Some(incoming) => messages.push(incoming),
                None => return Ok((messages, bytes.len())),
            }
        }
    }

    #[test]
    fn several_frames_in_one_read_come_out_one_at_a_time() {
        let mut bytes = client_frame(0x81, b"[null,\"1\",\"phoenix\",\"heartbeat\",{}]", MASK);
        bytes.extend(client_frame(0x89, b"are you there", MASK));
        bytes.extend(client_frame(0x82, &[0, 1, 2], MASK));
        let (messages, left) = decode_all(&mut Decoder::new(1024), bytes).unwrap();
        assert_eq!(left, 0);
        assert_eq!(
            messages,
            vec![
                Incoming::Text("[null,\"1\",\"phoenix\",\"heartbeat\",{}]".into()),
                Incoming::Ping(b"are you there".to_vec()),
                Incoming::Binary(vec![0, 1, 2]),
            ]
        );
    }

    #[test]
    fn an_incomplete_frame_consumes_nothing_until_it_is_whole() {
        let frame = client_frame(0x81, "héllo".as_bytes(), MASK);
        let mut decoder = Decoder::new(1024);
        for cut in 0..frame.len() {
            let mut part = frame[..cut].to_vec();
            assert_eq!(decoder.decode(&mut part).unwrap(), (0, None), "cut {cut}");
        }
        let mut whole = frame.clone();
        assert_eq!(decoder.decode(&mut whole).unwrap(), (frame.len(), Some(Incoming::Text("héllo".into()))));
    }

    #[test]
    fn fragments_are_reassembled_with_control_frames_between_them() {
        let mut bytes = client_frame(0x01, b"[null,", MASK);
        bytes.extend(client_frame(0x89, b"", MASK));
        bytes.extend(client_frame(0x00, b"null,", MASK));
        bytes.extend(client_frame(0x80, b"\"t\",\"e\",{}]", MASK));
        let (messages, _) = decode_all(&mut Decoder::new(1024), bytes).unwrap();
        assert_eq!(messages, vec![Incoming::Ping(vec![]), Incoming::Text("[null,null,\"t\",\"e\",{}]".into())]);
    }

    #[test]
    fn the_size_limit_covers_the_whole_fragmented_message() {
        let mut decoder = Decoder::new(10);
        let mut first = client_frame(0x01, b"123456", MASK);
        assert_eq!(decoder.decode(&mut first).unwrap().1, None);
        let mut second = client_frame(0x80, b"78901", MASK);
        assert_eq!(decoder.decode(&mut second), Err(ProtocolError::TooBig { limit: 10 }));
        // A control frame between the fragments does not count toward the message.
        let mut decoder = Decoder::new(10);
        let mut bytes = client_frame(0x01, b"123456789", MASK);
        bytes.extend(client_frame(0x89, b"ping!", MASK));
        bytes.extend(client_frame(0x80, b"0", MASK));
        let (messages, _) = decode_all(&mut decoder, bytes).unwrap();
        assert_eq!(messages, vec![Incoming::Ping(b"ping!".to_vec()), Incoming::Text("1234567890".into())]);
        let mut single = client_frame(0x81, &[b'a'; 11], MASK);
        assert_eq!(Decoder::new(10).decode(&mut single), Err(ProtocolError::TooBig { limit: 10 }));
        let mut exact = client_frame(0x81, &[b'a'; 10], MASK);
        assert!(matches!(Decoder::new(10).decode(&mut exact), Ok((_, Some(Incoming::Text(_))))));
    }

    #[test]
    fn protocol_violations_are_errors_with_their_close_codes() {
        let cases: [(Vec<u8>, ProtocolError); 4] = [
            (client_frame(0x80, b"x", MASK), ProtocolError::StrayContinuation),
            (
                [client_frame(0x01, b"a", MASK), client_frame(0x81, b"b", MASK)].concat(),
                ProtocolError::UnfinishedMessage,
            ),
            (client_frame(0x81, &[0xC3, 0x28], MASK), ProtocolError::InvalidUtf8),
            (client_frame(0x88, &[0x03], MASK), ProtocolError::BadClose),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode_all(&mut Decoder::new(100), bytes).unwrap_err(), expected);
        }
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
        assert_eq!(ProtocolError::StrayContinuation.close_code(), 1002);
    }

    #[test]
    fn a_close_frame_carries_its_code() {
        let mut payload = 1001u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let (messages, _) = decode_all(&mut Decoder::new(100), client_frame(0x88, &payload, MASK)).unwrap();
        assert_eq!(messages, vec![Incoming::Close(Some(1001))]);
    }

    proptest::proptest! {
        /// Whatever the bytes, the decoder returns messages or an error: no panic, and never more bytes consumed than
        /// it was given.
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes: Vec<u8>) {
            let mut decoder = Decoder::new(256);
            let mut bytes = bytes;
            while let Ok((consumed, incoming)) = decoder.decode(&mut bytes) {
                proptest::prop_assert!(consumed <= bytes.len());
                bytes.drain(..consumed);
                if incoming.is_none() {
                    break;
                }
            }
        }

        /// Any text, cut into any fragments and delivered in any read sizes, comes out whole and unchanged.
        #[test]
        fn fragmented_text_in_any_reads_is_reassembled(text: String, cuts in proptest::collection::vec(1usize..8, 0..6), read in 1usize..40) {
            let mut frames = Vec::new();
            let bytes = text.as_bytes();
            let mut start = 0;
            for (index, cut) in cuts.iter().enumerate() {
                let end = (start + cut).min(bytes.len());
                frames.extend(client_frame(if index == 0 { 0x01 } else { 0x00 }, &bytes[start..end], MASK));
                start = end;
            }
            frames.extend(client_frame(if cuts.is_empty() { 0x81 } else { 0x80 }, &bytes[start..], MASK));
            let mut decoder = Decoder::new(1 << 16);
            let mut buffer = Vec::new();
            let mut messages = Vec::new();
            for chunk in frames.chunks(read) {
                buffer.extend_from_slice(chunk);
                loop {
                    let (consumed, incoming) = decoder.decode(&mut buffer).unwrap();
                    buffer.drain(..consumed);
                    match incoming {
                        Some(incoming) => messages.push(incoming),
                        None => break,
                    }
                }
            }
            proptest::prop_assert_eq!(messages, vec![Incoming::Text(text)]);
        }
    }
}
