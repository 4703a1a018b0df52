//! The bundled browser client (our own plain JavaScript) and the default stylesheet, embedded in the binary so running
//! needs no Node.js.
//!
//! It is served under a path carrying a hash of its content, so browsers may cache it for ever and a new build is
//! fetched at once (the path changes with the content).

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The client's source.
pub const CLIENT_JS: &str = include_str!("../../assets/livebaton.js");

/// The default stylesheet of live pages and collaborative forms (linked by the default page layout).
pub const STYLESHEET: &str = include_str!("../../assets/livebaton.css");

/// Where the default stylesheet is served: `/assets/livebaton-<16 hex digits of its SHA-256>.css`.
pub fn stylesheet_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| hashed_asset_path("livebaton", "css", STYLESHEET))
}

/// Where the client is served: `/assets/livebaton-<16 hex digits of its SHA-256>.js`.
pub fn client_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| hashed_asset_path("livebaton", "js", CLIENT_JS))
}

/// The path of an asset named after its content, `/assets/<name>-<16 hex digits of its SHA-256>.<extension>`, so it
/// can be cached for ever and a new build is fetched at once (an application's own stylesheet, for example).
pub fn hashed_asset_path(name: &str, extension: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let hex: String = digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect();
    format!("/assets/{name}-{hex}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_the_content() {
        let path = client_path();
        assert!(path.starts_with("/assets/livebaton-") && path.ends_with(".js"), "{path}");
        let digest = Sha256::digest(CLIENT_JS.as_bytes());
        assert_eq!(&path["/assets/livebaton-".len()..][..2], format!("{:02x}", digest[0]));
        assert_eq!(path.len(), "/assets/livebaton-".len() + 16 + 3);
    }
}
