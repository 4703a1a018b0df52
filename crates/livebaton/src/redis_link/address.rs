//! Where Redis is and how to reach it safely: the URL and, for a server whose certificate a private CA signed, that CA.
//! Every Redis connection of the engine (the PubSub backend, the presence roster, kept drafts) is opened from one
//! [`RedisAddress`], so they all authenticate and verify the server alike.
//!
//! # URLs
//!
//! `redis://[[user]:password@]host[:port][/db]` for plain TCP, `rediss://…` for TLS. `:password@` authenticates with
//! `AUTH password` (a server with `requirepass`), `user:password@` as an ACL user; reserved characters in either are
//! percent-encoded. A password the server refuses fails the connect at once with an error that says so
//! ([`crate::pubsub::RedisBackendError::Authentication`], [`crate::presence::RedisRosterError::Authentication`]):
//! connecting is never retried at start, only an established node reconnects.
//!
//! # TLS
//!
//! `rediss://` goes through rustls and verifies the server's certificate chain and host name, against the system's
//! roots by default (the files `rustls-native-certs` finds: `/etc/ssl/certs` on Debian, or `SSL_CERT_FILE`), or
//! against the CA certificates given with [`RedisAddress::with_ca_cert`] instead. Verification cannot be turned off
//! (a URL ending in `#insecure` is refused when connecting).
//!
//! # Secrets
//!
//! The password is in the URL, so the URL is never logged or shown: `Debug` and [`RedisAddress::redacted`] leave the
//! credentials out, and errors name only host and port.

use std::fmt;
use std::sync::Arc;

use ::redis::{Client, ErrorKind, RedisError, TlsCertificates};

/// A Redis server to connect to: its URL (with credentials and `redis://` or `rediss://`) and optionally the CA
/// certificates that sign its TLS certificate. Built from a URL (`"redis://…".into()`) and, for a server with a
/// private CA, [`RedisAddress::with_ca_cert`]. See the module documentation for the URL forms. Cheap to clone.
#[derive(Clone)]
pub struct RedisAddress {
    url: Arc<str>,
    /// PEM certificates; `None`: the system's roots.
    ca_cert: Option<Arc<[u8]>>,
}

impl RedisAddress {
    /// The server at `url`, its TLS certificate (with `rediss://`) checked against the system's roots.
    pub fn new(url: impl Into<String>) -> Self {
        RedisAddress { url: Arc::from(url.into()), ca_cert: None }
    }

    /// Trusts only the CA certificates in `pem` (one or more PEM `CERTIFICATE` blocks, e.g. the contents of a
    /// managed Redis's CA file, or of the file given to `redis-server --tls-ca-cert-file`) for this server, instead of
    /// the system's roots. Only for a `rediss://` URL: connecting fails otherwise, as it does when `pem` holds no
    /// certificate.
    #[must_use]
    pub fn with_ca_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert = Some(Arc::from(pem.into()));
        self
    }

    /// Whether connections use TLS (the URL is `rediss://`).
    pub fn is_tls(&self) -> bool {
        self.url.trim_start().to_ascii_lowercase().starts_with("rediss:")
    }

    /// The URL without its user and password (`rediss://…@host:6380/0`), for logs and messages.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    /// A client for this server: TLS with the given CA when there is one. For an application's own Redis commands
    /// beside the engine's (the admin app's sign-in throttle), with the same credentials and certificate checks.
    ///
    /// # Errors
    /// If the URL is malformed, or a CA was given for a `redis://` URL or holds no PEM certificate.
    pub fn client(&self) -> Result<Client, RedisError> {
        match &self.ca_cert {
            None => Client::open(&*self.url),
            Some(pem) => {
                if !self.is_tls() {
                    return Err(RedisError::from((
                        ErrorKind::InvalidClientConfig,
                        "a CA certificate was given for a redis:// URL; use rediss:// for TLS",
                    )));
                }
                if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(RedisError::from((
                        ErrorKind::InvalidClientConfig,
                        "the CA certificate holds no PEM CERTIFICATE block",
                    )));
                }
                Client::build_with_tls(&*self.url, TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) })
            }
        }
    }
}

impl From<&str> for RedisAddress {
    fn from(url: &str) -> Self {
        RedisAddress::new(url)
    }
}

impl From<String> for RedisAddress {
    fn from(url: String) -> Self {
        RedisAddress::new(url)
    }
}

impl From<&String> for RedisAddress {
    fn from(url: &String) -> Self {
        RedisAddress::new(url.as_str())
    }
}

impl From<&RedisAddress> for RedisAddress {
    fn from(address: &RedisAddress) -> Self {
        address.clone()
    }
}

impl fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAddress")
            .field("url", &self.redacted())
            .field("ca_cert", &self.ca_cert.as_ref().map(|pem| format!("{} bytes of PEM", pem.len())))
            .finish()
    }
}

/// `url` without what lies between the scheme and the last `@` (user and password).
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let address = RedisAddress::new("rediss://app:s3cr%40t@redis.internal:6380/2").with_ca_cert("x");
        assert_eq!(address.redacted(), "rediss://…@redis.internal:6380/2");
        let debug = format!("{address:?}");
        assert!(!debug.contains("s3cr") && !debug.contains("app"), "{debug}");
        assert_eq!(RedisAddress::from("redis://127.0.0.1:6379").redacted(), "redis://127.0.0.1:6379");
    }

    #[test]
    fn tls_is_rediss_only() {
        assert!(RedisAddress::from("rediss://h").is_tls());
        assert!(RedisAddress::from("REDISS://h").is_tls());
        assert!(!RedisAddress::from("redis://h").is_tls());
    }

    #[test]
    fn a_ca_needs_rediss_and_a_certificate() {
        let plain = RedisAddress::new("redis://127.0.0.1").with_ca_cert("-----BEGIN CERTIFICATE-----");
        let error = plain.client().expect_err("refused");
        assert!(error.to_string().contains("rediss://"), "{error}");
        let empty = RedisAddress::new("rediss://127.0.0.1").with_ca_cert("not a certificate");
        let error = empty.client().expect_err("refused");
        assert!(error.to_string().contains("PEM"), "{error}");
    }

    #[test]
    fn rediss_builds_a_client_with_the_system_roots() {
        RedisAddress::new("rediss://:pw@127.0.0.1:6380").client().expect("TLS is built in");
    }
}
