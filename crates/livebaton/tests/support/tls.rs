//! Services reached as a managed one is: over TLS, with a password. [`Certificates`] makes a private CA and a server
//! certificate for `127.0.0.1` and `localhost` (rcgen) in a directory of its own; [`TlsRedisServer`] is a private
//! `redis-server` that speaks only TLS on a free port and wants a password (`requirepass`), and optionally knows an
//! ACL user.
//!
//! Shared by livebaton's TLS suite and livebaton-admin's (which includes this file by path), so it uses no Redis
//! client: readiness is read from the server's log. Tests fail, never skip, when `redis-server` is missing.
// Shared by several test crates; each uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// How long a private server may take to start on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A directory of its own under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "livebaton-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA, a server certificate it signed for `127.0.0.1` and `localhost`, and an unrelated second CA (to be
/// refused), as PEM files in `dir`.
pub struct Certificates {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server shows.
    pub other_ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8), mode 0600.
    pub key: PathBuf,
}

impl Certificates {
    /// Makes them in `dir`.
    pub fn generate(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca = CertifiedIssuer::self_signed(ca_params("livebaton test CA"), ca_key).expect("the CA certificate");
        let other_key = KeyPair::generate().expect("a second CA key");
        let other_ca = CertifiedIssuer::self_signed(ca_params("livebaton other CA"), other_key).expect("a second CA");

        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server names");
        server.distinguished_name.push(DnType::CommonName, "livebaton test server");
        let server_key = KeyPair::generate().expect("a server key");
        let cert = server.signed_by(&server_key, &ca).expect("the server certificate");

        let certificates = Certificates {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&certificates.ca, ca.pem()).expect("write the CA");
        std::fs::write(&certificates.other_ca, other_ca.pem()).expect("write the second CA");
        std::fs::write(&certificates.cert, cert.pem()).expect("write the server certificate");
        write_private(&certificates.key, server_key.serialize_pem().as_bytes());
        certificates
    }

    /// The CA's PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).expect("the CA file")
    }

    /// The other CA's PEM.
    pub fn other_ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.other_ca).expect("the second CA file")
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

/// Writes `contents` to a new file readable by its owner only (servers refuse a private key others can read).
fn write_private(path: &Path, contents: &[u8]) {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).and_then(|mut file| file.write_all(contents)).expect("write the private key");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// An ACL user a [`TlsRedisServer`] knows besides the default user, with the rights docs/deploy.md recommends:
/// livebaton's keys and channels (every test prefix starts with `livebaton:`), no dangerous commands but `INFO`.
pub const ACL_USER: (&str, &str) = ("app", "app-pass");
const ACL_RULES: [&str; 5] = ["~livebaton:*", "&livebaton:*", "+@all", "-@dangerous", "+info"];

/// A private `redis-server` that listens only with TLS (no plain port), on a certificate from [`Certificates`], and
/// wants `password` from the default user; the ACL user [`ACL_USER`] may log in too. Killed when dropped (also when the
/// test panics), with its directory.
pub struct TlsRedisServer {
    pub port: u16,
    pub password: String,
    pub certificates: Certificates,
    child: Child,
    dir: TempDir,
}

impl TlsRedisServer {
    /// Starts it and waits (bounded) until it accepts TLS connections.
    pub fn start(password: &str) -> Self {
        let dir = TempDir::new("redis-tls");
        let certificates = Certificates::generate(dir.path());
        let port = free_port();
        let log = dir.path().join("redis.log");
        let user = format!(">{}", ACL_USER.1);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "-::1", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&certificates.cert)
            .arg("--tls-key-file")
            .arg(&certificates.key)
            .arg("--tls-ca-cert-file")
            .arg(&certificates.ca)
            .args(["--tls-auth-clients", "no", "--requirepass", password])
            .args(["--user", ACL_USER.0, "on", &user])
            .args(ACL_RULES)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir"])
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("could not start redis-server ({error}); these tests need it on PATH"));
        let mut server = TlsRedisServer { port, password: password.to_owned(), certificates, child, dir };
        server.wait_ready(&log);
        server
    }

    fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("Ready to accept connections") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "redis-server with TLS on port {} exited ({status}); it needs TLS support. Its log:\n{text}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server with TLS on port {} did not start within {START_TIMEOUT:?}:\n{text}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `rediss://:<password>@127.0.0.1:<port>`: the default user with `password`.
    pub fn url_with_password(&self, password: &str) -> String {
        format!("rediss://:{password}@127.0.0.1:{}", self.port)
    }

    /// The URL with the right password.
    pub fn url(&self) -> String {
        self.url_with_password(&self.password)
    }

    /// `rediss://<user>:<password>@localhost:<port>`: an ACL user, and the host by name.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@localhost:{}", self.port)
    }

    /// The server's directory (its log is `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TlsRedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
