//! A private PostgreSQL that accepts only TLS connections, as a managed database does: a fresh cluster (`initdb`) in a
//! temporary directory, `ssl=on` with a server certificate for `127.0.0.1` and `localhost` signed by a private CA
//! ([`Certificates`]), a free port on 127.0.0.1, and a `pg_hba.conf` with `hostssl` lines only (so a plain connection
//! is refused by the server itself). Anyone may log in as `postgres` without a password: the point is the transport.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI does) the server runs as the `postgres` user
//! (the Debian package's): its directory, certificate and key are handed over to that user. The binaries come from
//! `/usr/lib/postgresql/<newest>/bin` (or `PG_BIN`); without them the tests fail, never skip. Every wait is bounded,
//! and the server is stopped (SIGQUIT, then SIGKILL) and its directory removed when the value is dropped, also when
//! the test panics.
// Shared by the store's TLS suite and the binary suite; each uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::tls::{Certificates, TempDir, free_port};

/// How long `initdb` and the server's start may each take on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The running server. See the module documentation.
pub struct TlsPostgres {
    pub port: u16,
    pub certificates: Certificates,
    child: Child,
    /// The cluster, its certificates and its log; removed after the server stopped (fields drop after `drop`).
    dir: TempDir,
}

/// Who runs the server: `(uid, gid)` of `postgres` when we are root, else ourselves (`None`).
fn server_user() -> Option<(u32, u32)> {
    let id = |flag: &str, user: Option<&str>| -> u32 {
        let output = Command::new("id").arg(flag).args(user).output().expect("id(1) runs");
        String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or_else(|_| {
            panic!("`id {flag} {}` failed: {}", user.unwrap_or(""), String::from_utf8_lossy(&output.stderr))
        })
    };
    (id("-u", None) == 0).then(|| (id("-u", Some("postgres")), id("-g", Some("postgres"))))
}

/// The directory of `initdb` and `postgres`.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok().into_iter().flatten().flatten();
    let mut candidates: Vec<(u32, PathBuf)> = versions
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (install postgresql, or set PG_BIN)")
    })
}

/// A command run as the server's user.
fn as_server_user(program: PathBuf, user: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = user {
        use std::os::unix::process::CommandExt;
        command.uid(uid).gid(gid);
    }
    command.stdin(Stdio::null());
    command
}

fn hand_over(path: &Path, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|error| panic!("chown {} to postgres: {error}", path.display()));
    }
}

/// Waits at most `limit` for `child` to exit.
fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl TlsPostgres {
    /// Makes a cluster and starts the server on it; returns once it accepts connections.
    pub fn start() -> Self {
        let bin = binaries();
        let user = server_user();
        let dir = TempDir::new("postgres-tls");
        let certificates = Certificates::generate(dir.path());
        for path in [dir.path(), &certificates.cert, &certificates.key] {
            hand_over(path, user);
        }
        let data = dir.path().join("data");
        let log_file = dir.path().join("initdb.log");
        let log = std::fs::File::create(&log_file).expect("the initdb log");
        hand_over(&log_file, user);
        let mut initdb = as_server_user(bin.join("initdb"), user)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .stdout(log.try_clone().expect("the log again"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("could not run {}: {error}", bin.join("initdb").display()));
        let status = wait_timeout(&mut initdb, START_TIMEOUT).unwrap_or_else(|| {
            let _ = initdb.kill();
            let _ = initdb.wait();
            panic!("initdb did not finish within {START_TIMEOUT:?}")
        });
        assert!(
            status.success(),
            "initdb failed ({status}):\n{}",
            std::fs::read_to_string(&log_file).unwrap_or_default()
        );
        // TLS only: a plain TCP connection finds no line and is refused. The Unix socket stays for local tools.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .expect("write pg_hba.conf");

        let port = free_port();
        let log_file = dir.path().join("postgres.log");
        let log = std::fs::File::create(&log_file).expect("the server log");
        hand_over(&log_file, user);
        let setting = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            let mut pair = std::ffi::OsString::from(format!("{name}="));
            pair.push(value.as_ref());
            ["-c".into(), pair]
        };
        let child = as_server_user(bin.join("postgres"), user)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(setting("listen_addresses", &"127.0.0.1"))
            .args(setting("unix_socket_directories", &dir.path()))
            .args(setting("ssl", &"on"))
            .args(setting("ssl_cert_file", &certificates.cert))
            .args(setting("ssl_key_file", &certificates.key))
            .args(setting("fsync", &"off"))
            .stdout(log.try_clone().expect("the log again"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("could not run {}: {error}", bin.join("postgres").display()));
        let mut server = TlsPostgres { port, certificates, child, dir };
        server.wait_ready(&log_file);
        server
    }

    fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("database system is ready to accept connections") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("postgres exited ({status}) while starting:\n{text}");
            }
            assert!(Instant::now() < deadline, "postgres did not start within {START_TIMEOUT:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `postgres://postgres@<host>:<port>/postgres?<params>`.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // Immediate shutdown: the postmaster tells its children to quit and exits; nothing is worth keeping.
        let _ = Command::new("kill").args(["-QUIT", &self.child.id().to_string()]).status();
        if wait_timeout(&mut self.child, STOP_TIMEOUT).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
