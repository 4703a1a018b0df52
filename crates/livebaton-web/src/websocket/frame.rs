//! RFC 6455 frames, the pure part: parsing a client frame's header, unmasking, and encoding the server's headers and
//! close payloads. No I/O here, so every rule is tested on plain bytes.

/// The opcodes of RFC 6455 §5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub(crate) fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A client frame that breaks the protocol; each maps to the close code the connection is closed with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// RSV1–3 set, though no extension was negotiated.
    #[error("reserved bits set: no extension was negotiated")]
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A client frame without a mask.
    #[error("client frames must be masked")]
    Unmasked,
    /// A fragmented control frame, or one over 125 bytes.
    #[error("control frames must be whole and at most 125 bytes")]
    BadControlFrame,
    /// A continuation frame with no message started.
    #[error("a continuation frame without a message to continue")]
    StrayContinuation,
    /// A data frame while a fragmented message is still open.
    #[error("a new message started before the previous one ended")]
    UnfinishedMessage,
    /// A payload length encoded in more bytes than it needs.
    #[error("the payload length is not in its shortest form")]
    LongLength,
    /// A message over the size limit (closed with 1009).
    #[error("message larger than {limit} bytes")]
    TooBig {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A text message that is not UTF-8 (closed with 1007).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame with a one-byte payload, an invalid code or a reason that is not UTF-8.
    #[error("invalid close frame")]
    BadClose,
}

impl ProtocolError {
    /// The close code to send for this error (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::TooBig { .. } => 1009,
            ProtocolError::InvalidUtf8 => 1007,
            _ => 1002,
        }
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    pub(crate) opcode: Opcode,
    pub(crate) mask: [u8; 4],
    /// Bytes of the header itself (2 to 14).
    pub(crate) header_len: usize,
    pub(crate) payload_len: usize,
}

/// Parses a client frame's header from the start of `bytes`: `Ok(None)` when more bytes are needed. A payload longer
/// than `max_payload` is refused here, before any of it is read, so a client cannot make the server buffer it.
pub(crate) fn parse_header(bytes: &[u8], max_payload: usize) -> Result<Option<Header>, ProtocolError> {
    let [first, second, ..] = *bytes else { return Ok(None) };
    if first & 0x70 != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let opcode = Opcode::from_bits(first & 0x0F).ok_or(ProtocolError::UnknownOpcode(first & 0x0F))?;
    let fin = first & 0x80 != 0;
    if second & 0x80 == 0 {
        return Err(ProtocolError::Unmasked);
    }
    let (length_bytes, short) = match second & 0x7F {
        126 => (2, None),
        127 => (8, None),
        short => (0, Some(short as usize)),
    };
    if opcode.is_control() && (!fin || short.is_none_or(|len| len > 125)) {
        return Err(ProtocolError::BadControlFrame);
    }
    let header_len = 2 + length_bytes + 4;
    if bytes.len() < header_len {
        // Refuse an oversized length as soon as it is readable, not only once the mask has arrived.
        if length_bytes > 0 && bytes.len() >= 2 + length_bytes {
            extended_length(&bytes[2..2 + length_bytes], max_payload)?;
        }
        return Ok(None);
    }
    let payload_len = match short {
        Some(len) => len,
        None => extended_length(&bytes[2..2 + length_bytes], max_payload)?,
    };
    if payload_len > max_payload {
        return Err(ProtocolError::TooBig { limit: max_payload });
    }
    let mut mask = [0; 4];
    mask.copy_from_slice(&bytes[2 + length_bytes..header_len]);
    Ok(Some(Header { fin, opcode, mask, header_len, payload_len }))
}

fn extended_length(bytes: &[u8], max_payload: usize) -> Result<usize, ProtocolError> {
    let length = bytes.iter().fold(0u64, |length, &byte| (length << 8) | u64::from(byte));
    let shortest = if bytes.len() == 2 { 126 } else { 1 << 16 };
    if length < shortest || length >> 63 != 0 {
        return Err(ProtocolError::LongLength);
    }
    usize::try_from(length)
        .ok()
        .filter(|&length| length <= max_payload)
        .ok_or(ProtocolError::TooBig { limit: max_payload })
}

/// Unmasks (or masks: the operation is its own inverse) a payload in place.
pub(crate) fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    let mut chunks = payload.chunks_exact_mut(8);
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("chunks of 8")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// The largest server frame header: 2 bytes and a 64-bit length (server frames are not masked).
pub(crate) const MAX_HEADER: usize = 10;

/// The header of a final, unmasked server frame of `payload_len` bytes, and how many of its bytes are used.
pub(crate) fn encode_header(opcode: Opcode, payload_len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0; MAX_HEADER];
    header[0] = 0x80 | opcode.bits();
    let used = if payload_len < 126 {
        header[1] = payload_len as u8;
        2
    } else if let Ok(short) = u16::try_from(payload_len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// A whole server frame: header and payload in one buffer (for the rare control frames).
pub(crate) fn encode_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let (header, used) = encode_header(opcode, payload.len());
    let mut frame = Vec::with_capacity(used + payload.len());
    frame.extend_from_slice(&header[..used]);
    frame.extend_from_slice(payload);
    frame
}

/// A close frame's payload: the code and a reason cut to fit the 125-byte control frame limit on a character boundary.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// The code of a client's close frame (`None` for an empty payload), checked as RFC 6455 §7.4 requires.
pub(crate) fn parse_close(payload: &[u8]) -> Result<Option<u16>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::BadClose),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            // The codes RFC 6455 §7.4.1 defines for the wire and IANA registered since (1012–1014), and the private ranges.
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid || std::str::from_utf8(reason).is_err() {
                return Err(ProtocolError::BadClose);
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A masked client frame, as a browser sends it.
    pub(crate) fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![first];
        match payload.len() {
            len if len < 126 => frame.push(0x80 | len as u8),
            len if len <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        let mut masked = payload.to_vec();
        apply_mask(&mut masked, mask);
        frame.extend_from_slice(&masked);
        frame
    }

    #[test]
    fn a_masked_text_frame_parses_and_unmasks() {
        let frame = client_frame(0x81, b"hello", [1, 2, 3, 4]);
        let header = parse_header(&frame, 1024).unwrap().unwrap();
        assert_eq!((header.fin, header.opcode, header.header_len, header.payload_len), (true, Opcode::Text, 6, 5));
        let mut payload = frame[6..].to_vec();
        apply_mask(&mut payload, header.mask);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        for len in [5, 200, 70_000] {
            let frame = client_frame(0x82, &vec![7; len], [9, 8, 7, 6]);
            let header_len = parse_header(&frame, 1 << 20).unwrap().unwrap().header_len;
            for cut in 0..header_len {
                assert_eq!(parse_header(&frame[..cut], 1 << 20), Ok(None), "len {len}, cut {cut}");
            }
            assert_eq!(parse_header(&frame, 1 << 20).unwrap().unwrap().payload_len, len);
        }
    }

    #[test]
    fn broken_headers_get_the_error_that_names_them() {
        assert_eq!(parse_header(&[0xC1, 0x80, 0, 0, 0, 0], 10), Err(ProtocolError::ReservedBits));
        assert_eq!(parse_header(&[0x83, 0x80, 0, 0, 0, 0], 10), Err(ProtocolError::UnknownOpcode(3)));
        assert_eq!(parse_header(&[0x81, 0x00], 10), Err(ProtocolError::Unmasked));
        assert_eq!(parse_header(&[0x09, 0x80, 0, 0, 0, 0], 10), Err(ProtocolError::BadControlFrame));
        assert_eq!(parse_header(&[0x89, 0xFE, 0, 126], 1000), Err(ProtocolError::BadControlFrame));
        assert_eq!(parse_header(&[0x81, 0xFE, 0, 5], 1000), Err(ProtocolError::LongLength));
        assert_eq!(parse_header(&[0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], 1 << 20), Err(ProtocolError::LongLength));
        assert_eq!(parse_header(&[0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], usize::MAX), Err(ProtocolError::LongLength));
    }

    #[test]
    fn an_oversized_length_is_refused_before_the_mask_arrives() {
        assert_eq!(parse_header(&[0x81, 0xFE, 0x10, 0x00], 1024), Err(ProtocolError::TooBig { limit: 1024 }));
        assert_eq!(parse_header(&[0x81, 0xFD], 124), Ok(None));
        assert_eq!(parse_header(&[0x81, 0xFD, 0, 0, 0, 0], 124), Err(ProtocolError::TooBig { limit: 124 }));
        assert_eq!(ProtocolError::TooBig { limit: 1 }.close_code(), 1009);
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(encode_header(Opcode::Text, 125).0[..2], [0x81, 125]);
        assert_eq!(encode_header(Opcode::Text, 126).0[..4], [0x81, 126, 0, 126]);
        assert_eq!(encode_header(Opcode::Text, 65_535).1, 4);
        assert_eq!(encode_header(Opcode::Text, 65_536).0[..10], [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(encode_frame(Opcode::Pong, b"ab"), vec![0x8A, 2, b'a', b'b']);
    }

    #[test]
    fn close_payloads_fit_a_control_frame_and_are_checked() {
        let long = "é".repeat(100);
        let payload = close_payload(1001, &long);
        assert!(payload.len() <= 125);
        assert_eq!(&payload[..2], &1001u16.to_be_bytes());
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert_eq!(parse_close(&payload), Ok(Some(1001)));
        assert_eq!(parse_close(&[]), Ok(None));
        assert_eq!(parse_close(&[3]), Err(ProtocolError::BadClose));
        assert_eq!(parse_close(&1005u16.to_be_bytes()), Err(ProtocolError::BadClose));
        assert_eq!(parse_close(&1013u16.to_be_bytes()), Ok(Some(1013)));
        assert_eq!(parse_close(&1015u16.to_be_bytes()), Err(ProtocolError::BadClose));
        assert_eq!(parse_close(&[0x03, 0xE8, 0xFF]), Err(ProtocolError::BadClose));
    }

    proptest::proptest! {
        #[test]
        fn masking_twice_is_the_identity(payload: Vec<u8>, mask: [u8; 4]) {
            let mut masked = payload.clone();
            apply_mask(&mut masked, mask);
            apply_mask(&mut masked, mask);
            proptest::prop_assert_eq!(masked, payload);
        }

        #[test]
        fn masking_matches_the_definition(payload: Vec<u8>, mask: [u8; 4]) {
            let mut masked = payload.clone();
            apply_mask(&mut masked, mask);
            for (index, byte) in masked.iter().enumerate() {
                proptest::prop_assert_eq!(*byte, payload[index] ^ mask[index % 4]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_header_parser(bytes: Vec<u8>, max in 0usize..100_000) {
            if let Ok(Some(header)) = parse_header(&bytes, max) {
                proptest::prop_assert!(header.payload_len <= max);
                proptest::prop_assert!((6..=14).contains(&header.header_len));
            }
        }
    }
}
