//! The real `livebaton` binary end to end (mirrors `src/main.rs`, `src/cli.rs`, `src/server.rs`, `src/seed.rs`):
//! first start on an empty data directory, the JSON API over a real socket, graceful shutdown on SIGTERM, the `user`
//! commands, a restart on the same data, and services reached over TLS (a private `redis-server` and PostgreSQL).
//!
//! `DATABASE_URL` (and every other `LIVEBATON_*` setting) is removed from the child's environment: these tests are
//! about the default SQLite file in the data directory, unless they give a URL themselves. Every child is killed when
//! its guard drops, so a failing test leaves no process behind, and every wait has a deadline.

#[path = "support/postgres_tls.rs"]
mod postgres_tls;
#[path = "../../livebaton/tests/support/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long a start may take (migrations, and Argon2 hashing in a debug build on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a graceful shutdown may take after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one HTTP exchange or one CLI command may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings the binary reads from the environment; none may leak in from the test runner's.
const ENVIRONMENT: [&str; 10] = [
    "DATABASE_URL",
    "REDIS_URL",
    "LIVEBATON_REDIS_CA_CERT",
    "LIVEBATON_NODE_NAME",
    "LIVEBATON_BIND",
    "LIVEBATON_DATA_DIR",
    "LIVEBATON_SECRET_KEY_BASE",
    "LIVEBATON_ADMIN_EMAIL",
    "LIVEBATON_ADMIN_PASSWORD",
    "LIVEBATON_NO_DEMO",
];

/// The binary with a clean environment, run in `dir`.
fn livebaton(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livebaton"));
    for name in ENVIRONMENT {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "info,sqlx=warn").current_dir(dir).stdin(Stdio::null());
    command
}

/// Kills and reaps the child when dropped (a no-op once it has exited and been reaped).
struct ChildGuard {
    child: Child,
    reaped: bool,
}

impl ChildGuard {
    /// Waits at most `timeout` for the child to exit.
    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait().expect("try_wait works") {
                Some(status) => {
                    self.reaped = true;
                    return Some(status);
                }
                None if Instant::now() >= deadline => return None,
                None => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running server.
struct Server {
    guard: ChildGuard,
    /// Where it listens.
    address: SocketAddr,
    /// Every stdout line printed before the "listening" line.
    banner: Vec<String>,
    /// Everything it wrote to stderr so far (its log), for failure messages.
    stderr: Arc<Mutex<String>>,
    /// Later stdout lines.
    _stdout: Receiver<String>,
}

impl Server {
    /// Starts `livebaton --data-dir <dir> --bind 127.0.0.1:0` and waits for `livebaton listening on http://ADDR/admin`.
    fn start(dir: &Path) -> Server {
        Self::start_with(dir, |_| {})
    }

    /// [`Server::start`] with more arguments or variables set by `configure`.
    fn start_with(dir: &Path, configure: impl FnOnce(&mut Command)) -> Server {
        let mut command = livebaton(dir);
        command.args(["--data-dir"]).arg(dir).args(["--bind", "127.0.0.1:0"]);
        configure(&mut command);
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the livebaton binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let guard = ChildGuard { child, reaped: false };

        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut stderr = BufReader::new(stderr);
            let mut chunk = [0u8; 4096];
            while let Ok(read) = stderr.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..read]));
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let mut banner = Vec::new();
        let address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("livebaton listening on http://") {
                        let address = rest.strip_suffix("/admin").unwrap_or_else(|| panic!("odd line {line:?}"));
                        break address.parse().unwrap_or_else(|error| panic!("bad address in {line:?}: {error}"));
                    }
                    banner.push(line);
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "livebaton did not print its listening line within {START_TIMEOUT:?}; stdout so far: {banner:?}; \
                     stderr: {}",
                    log.lock().unwrap()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    panic!("livebaton exited before listening; stdout: {banner:?}; stderr: {}", log.lock().unwrap())
                }
            }
        };
        Server { guard, address, banner, stderr: log, _stdout: lines }
    }

    /// The `(email, password)` of the admin the start generated, if it printed one.
    fn generated_admin(&self) -> Option<(String, String)> {
        let value = |label: &str| {
            self.banner.iter().find_map(|line| line.trim().strip_prefix(label).map(|rest| rest.trim().to_owned()))
        };
        match (value("email:"), value("password:")) {
            (Some(email), Some(password)) => Some((email, password)),
            (None, None) => None,
            partial => panic!("half a generated account printed: {partial:?} in {:?}", self.banner),
        }
    }

    /// Sends SIGTERM.
    fn sigterm(&self) {
        let pid = self.guard.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
    }

    /// Sends SIGTERM and asserts the process exits successfully within five seconds.
    fn terminate(self) {
        self.sigterm();
        self.exits_cleanly();
    }

    /// Asserts the process exits successfully within five seconds (of a SIGTERM sent before).
    fn exits_cleanly(mut self) {
        let status = self.guard.wait_timeout(STOP_TIMEOUT).unwrap_or_else(|| {
            panic!("livebaton did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr: {}", self.stderr.lock().unwrap())
        });
        assert!(
            status.success(),
            "livebaton exited with {status} after SIGTERM; stderr: {}",
            self.stderr.lock().unwrap()
        );
    }

    async fn http(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> HttpReply {
        http(self.address, method, path, token, body).await
    }

    /// A bearer token for `(email, password)`, through `POST /api/tokens`.
    async fn token(&self, email: &str, password: &str) -> String {
        let reply = self.http("POST", "/api/tokens", None, Some(&json!({"email": email, "password": password}))).await;
        assert_eq!(reply.status, 200, "sign-in as {email}: {}", reply.body);
        reply.json()["token"].as_str().expect("a token").to_owned()
    }
}

/// A parsed HTTP/1.1 response.
struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpReply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 exchange with `Connection: close`: write the request, read to EOF, parse.
async fn http(address: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> HttpReply {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.expect("connect to livebaton");
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.expect("write the request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read the response");
        raw
    };
    let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} got no complete response within {REQUEST_TIMEOUT:?}"));
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpReply {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n").expect("a header/body separator");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut head_lines = head.split("\r\n");
    let status_line = head_lines.next().expect("a status line");
    let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    let headers: Vec<(String, String)> = head_lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(key, value)| key.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpReply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|window| window == b"\r\n").expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("a hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Runs `livebaton <args> --data-dir <dir>` to completion (at most 30 s); returns its stdout, asserting success.
fn run_cli(dir: &Path, args: &[&str]) -> String {
    let child = livebaton(dir)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the livebaton binary starts");
    let mut guard = ChildGuard { child, reaped: false };
    let status = guard
        .wait_timeout(REQUEST_TIMEOUT)
        .unwrap_or_else(|| panic!("livebaton {args:?} did not finish within {REQUEST_TIMEOUT:?}"));
    let mut stdout = String::new();
    let mut stderr = String::new();
    guard.child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read stdout");
    guard.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(status.success(), "livebaton {args:?} failed with {status}: {stderr}");
    stdout
}

/// The names of the entities and the records of `article`, as `token` sees them.
async fn content(server: &Server, token: &str) -> (Vec<String>, Vec<Value>) {
    let entities = server.http("GET", "/api/entities", Some(token), None).await;
    assert_eq!(entities.status, 200, "{}", entities.body);
    let names: Vec<String> = entities.json()["entities"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|entity| entity["name"].as_str().expect("a name").to_owned())
        .collect();
    let records = server.http("GET", "/api/entities/article/records", Some(token), None).await;
    assert_eq!(records.status, 200, "{}", records.body);
    (names, records.json()["records"].as_array().expect("a list").clone())
}

/// A first start on an empty data directory prints a generated admin, keeps its data in a SQLite file there, seeds
/// the demo "article" with three records, serves the JSON API (create, update, stale update → 409) and /healthz, and
/// exits successfully within five seconds of SIGTERM even with idle connections open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_serves_the_api_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path());
    let (email, password) = server.generated_admin().expect("the first start prints a generated admin account");
    assert_eq!(email, "admin@livebaton.local");
    assert!(password.len() >= 16, "a strong generated password: {password:?}");
    assert!(dir.path().join("livebaton.db").is_file(), "the default SQLite file is in the data directory");
    assert!(dir.path().join("secret_key_base").is_file(), "the generated secret is kept in the data directory");

    let health = server.http("GET", "/healthz", None, None).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    let refused = server.http("GET", "/api/entities", None, None).await;
    assert_eq!(refused.status, 401, "the API needs a token");
    let token = server.token(&email, &password).await;

    let (entities, records) = content(&server, &token).await;
    assert_eq!(entities, ["article"], "the demo entity");
    assert_eq!(records.len(), 3, "three demo records: {records:?}");
    assert!(records.iter().any(|record| record["title"] == "Welcome to livebaton"));

    let created = server
        .http(
            "POST",
            "/api/entities/article/records",
            Some(&token),
            Some(&json!({"title": "From the binary", "data": {"category": "news", "featured": true}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.header("content-type").is_some_and(|value| value.starts_with("application/json")));
    let record = created.json();
    assert_eq!(record["slug"], "from-the-binary");
    assert_eq!(record["lock_version"], 1);
    let path = format!("/api/entities/article/records/{}", record["id"]);

    let update = json!({"title": "From the binary, edited", "data": {"category": "guide"}, "lock_version": 1});
    let updated = server.http("PUT", &path, Some(&token), Some(&update)).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["lock_version"], 2);

    let stale = json!({"title": "Lost edit", "data": {"category": "news"}, "lock_version": 1});
    let conflict = server.http("PUT", &path, Some(&token), Some(&stale)).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_eq!(conflict.json()["current"]["title"], "From the binary, edited");
    assert_eq!(conflict.json()["current"]["lock_version"], 2);

    let shown = server.http("GET", &path, Some(&token), None).await;
    assert_eq!(shown.json()["title"], "From the binary, edited", "the stale update changed nothing");

    // Connections a browser leaves open must not hold up the shutdown: one that has not sent a request yet
    // (a preconnect) and one kept alive after a complete request.
    let _preconnect = TcpStream::connect(server.address).await.expect("connect");
    let mut kept_alive = TcpStream::connect(server.address).await.expect("connect");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.address);
    kept_alive.write_all(request.as_bytes()).await.expect("write");
    let mut response = [0u8; 512];
    let read =
        tokio::time::timeout(REQUEST_TIMEOUT, kept_alive.read(&mut response)).await.expect("a response").unwrap();
    assert!(response[..read].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&response[..read]));

    server.terminate();
}

/// After SIGTERM the server closes its listener before its WebSockets: a client told 1001 that reconnects at once
/// (phoenix.js retries after 10 ms) is refused by the kernel, instead of being upgraded by a server that is going
/// away and closed with 1001 again, round after round of its backoff (measured with 2,000 phoenix.js clients: 1.66
/// closes per client instead of one). A client that does not answer its close frame keeps the stopping server busy
/// for up to a second, the window in which such a reconnect used to be accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_refuses_new_connections_while_it_closes_its_sockets() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path());
    let (email, password) = server.generated_admin().expect("the first start prints a generated admin account");
    let token = server.token(&email, &password).await;
    let url = format!("ws://{}/live/websocket?vsn=2.0.0&token={token}", server.address);
    // Never read: it does not answer the server's close frame.
    let (_silent, _) = tokio_tungstenite::connect_async(&url).await.expect("the upgrade succeeds");
    let (mut watching, _) = tokio_tungstenite::connect_async(&url).await.expect("the upgrade succeeds");

    server.sigterm();
    let closed = tokio::time::timeout(STOP_TIMEOUT, async {
        while let Some(message) = watching.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame.map(|frame| u16::from(frame.code));
            }
        }
        None
    });
    assert_eq!(closed.await.expect("the socket is closed in time"), Some(1001), "closed as going away");
    match tokio_tungstenite::connect_async(&url).await {
        Err(WsError::Io(error)) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused, "{error}"),
        Err(other) => panic!("expected the connection to be refused, got {other}"),
        Ok(_) => panic!("a stopping server upgraded a new WebSocket after it had closed the others"),
    }
    server.exits_cleanly();
}

/// `livebaton user add` creates an editor that `user list` shows; a second start on the same data directory prints
/// no new generated password, keeps the first start's secret (old tokens still work), lets the new editor sign in,
/// and does not seed the demo content again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_and_a_restart_keep_accounts_and_content() {
    let dir = tempfile::tempdir().expect("a temporary directory");

    let first = Server::start(dir.path());
    let (admin_email, admin_password) = first.generated_admin().expect("the first start generates an admin");
    let old_token = first.token(&admin_email, &admin_password).await;
    first.terminate();

    let added =
        run_cli(dir.path(), &["user", "add", "--email", "e@x.io", "--password", "longenough", "--role", "editor"]);
    assert!(added.contains("e@x.io") && added.contains("editor"), "{added:?}");
    let listed = run_cli(dir.path(), &["user", "list"]);
    let rows: Vec<Vec<&str>> = listed.lines().map(|line| line.split('\t').collect()).collect();
    assert!(rows.iter().any(|row| row[..2] == ["e@x.io", "editor"]), "{listed:?}");
    assert!(rows.iter().any(|row| row[..2] == [admin_email.as_str(), "admin"]), "{listed:?}");
    assert_eq!(rows.len(), 2, "{listed:?}");

    let second = Server::start(dir.path());
    assert_eq!(second.generated_admin(), None, "no new password on a restart: {:?}", second.banner);
    assert!(!second.banner.iter().any(|line| line.contains("password")), "{:?}", second.banner);

    let (entities, records) = content(&second, &old_token).await;
    assert_eq!(entities, ["article"], "the demo entity is not duplicated");
    assert_eq!(records.len(), 3, "the demo records are not duplicated");

    let editor = second.token("e@x.io", "longenough").await;
    let created = second
        .http("POST", "/api/entities/article/records", Some(&editor), Some(&json!({"title": "By the CLI editor"})))
        .await;
    assert_eq!(created.status, 201, "the CLI-made editor may write records: {}", created.body);
    let refused = second
        .http(
            "POST",
            "/api/entities",
            Some(&editor),
            Some(&json!({"display_name": "Page", "display_name_plural": "Pages"})),
        )
        .await;
    assert_eq!(refused.status, 403, "but not entities");
    assert!(!second.token(&admin_email, &admin_password).await.is_empty(), "the generated admin still signs in");

    second.terminate();
}

/// Runs the binary as `configure` sets it up, expecting it to fail: its exit status, its standard error, and how long
/// it ran (at most [`REQUEST_TIMEOUT`]).
fn run_failing(dir: &Path, configure: impl FnOnce(&mut Command)) -> (ExitStatus, String, Duration) {
    let mut command = livebaton(dir);
    command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(dir);
    configure(&mut command);
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("the livebaton binary starts");
    let mut guard = ChildGuard { child, reaped: false };
    let status = guard
        .wait_timeout(REQUEST_TIMEOUT)
        .unwrap_or_else(|| panic!("livebaton still runs after {REQUEST_TIMEOUT:?}; it should have stopped"));
    let took = started.elapsed();
    let mut stderr = String::new();
    guard.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    (status, stderr, took)
}

/// A managed Redis (TLS only, a password, a certificate from a private CA): the binary joins it with
/// `--redis-url rediss://:<password>@…` and the CA from `LIVEBATON_REDIS_CA_CERT`, and never logs the password; with a
/// wrong password (and `--redis-ca-cert`) it stops at once, before serving, with an error that says Redis refused to
/// authenticate, without the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_is_joined_with_its_ca_and_a_refused_password_stops_the_start() {
    let redis = tls::TlsRedisServer::start("tls-secret");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = redis.certificates.ca.clone();

    let wrong = redis.url_with_password("wrong-secret");
    let (status, stderr, took) = run_failing(dir.path(), |command| {
        command.args(["--redis-url", &wrong, "--redis-ca-cert"]).arg(&ca);
    });
    println!("stopped after {took:?}: {stderr}");
    assert!(!status.success(), "{stderr}");
    assert!(took < Duration::from_secs(20), "it stopped at once, not after retrying: {took:?}");
    assert!(stderr.contains("refused to authenticate"), "{stderr}");
    assert!(stderr.contains(&format!("rediss://…@127.0.0.1:{}", redis.port)), "the Redis is named: {stderr}");
    assert!(!stderr.contains("wrong-secret"), "the password is not shown: {stderr}");

    let url = redis.url();
    let server = Server::start_with(dir.path(), |command| {
        command.env("LIVEBATON_REDIS_CA_CERT", &ca).args(["--redis-url", &url]);
    });
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !server.stderr.lock().unwrap().contains("joined the cluster") {
        assert!(Instant::now() < deadline, "no 'joined the cluster' log: {}", server.stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let health = server.http("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    assert!(!server.stderr.lock().unwrap().contains("tls-secret"), "the password is never logged");
    server.terminate();
}

/// A PostgreSQL that accepts TLS only: a URL whose CA does not vouch for its certificate, or one without TLS, stops
/// the start with an error that says what to add to the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_postgres_the_url_cannot_reach_stops_the_start_with_a_hint() {
    let postgres = postgres_tls::TlsPostgres::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases = [
        ("sslmode=verify-full", "add sslrootcert=/path/to/ca.pem to the URL"),
        ("sslmode=disable", "the server accepts TLS connections only"),
    ];
    for (params, hint) in cases {
        let url = postgres.url("127.0.0.1", params);
        let (status, stderr, _) = run_failing(dir.path(), |command| {
            command.args(["--database-url", &url]);
        });
        println!("{stderr}");
        assert!(!status.success(), "{params}: {stderr}");
        assert!(stderr.contains(hint), "{params}: {stderr}");
    }
}
