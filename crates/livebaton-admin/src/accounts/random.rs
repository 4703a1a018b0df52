//! Random tokens from the operating system's generator.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// `bytes` random bytes, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random generator is available");
    URL_SAFE_NO_PAD.encode(buffer)
}

/// SHA-256 of `text`, hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A random password people can type: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut buffer = [0u8; 20];
    getrandom::fill(&mut buffer).expect("the operating system's random generator is available");
    buffer.iter().map(|byte| ALPHABET[*byte as usize % ALPHABET.len()] as char).collect()
}
