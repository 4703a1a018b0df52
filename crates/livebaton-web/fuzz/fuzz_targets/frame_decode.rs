//! Feeds arbitrary bytes to the frame decoder: it must never panic, and every refusal must carry a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livebaton_web::protocol::Frame;

fuzz_target!(|bytes: &[u8]| {
    if let Err(error) = Frame::decode(bytes) {
        assert!(!error.to_string().is_empty());
    }
});
