//! Command line and environment: `livebaton [serve]` and `livebaton user add|list`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// livebaton: live pages, presence and collaborative editing, with an admin/CMS app.
#[derive(Debug, Parser)]
#[command(name = "livebaton", version, about)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the admin server (the default).
    Serve,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
}

/// `livebaton user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or update the password, role and name of an existing one.
    Add {
        /// Email address (the sign-in name).
        #[arg(long)]
        email: String,
        /// Password (at least 8 characters). Unsafe on a shared machine: other users see it in `ps`. Without it
        /// (and without LIVEBATON_USER_PASSWORD) the password is read from the first line of standard input.
        #[arg(long, env = "LIVEBATON_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from the first line of standard input, even if --password or the variable is set.
        #[arg(long)]
        password_stdin: bool,
        /// admin, editor or viewer.
        #[arg(long)]
        role: String,
        /// Display name (default: the part of the email before '@').
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How presence diffs are coalesced (`livebaton::presence::Coalescing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CoalesceMode {
    /// Only busy topics wait for the window.
    Adaptive,
    /// Every diff waits for the window.
    Fixed,
}

impl From<CoalesceMode> for livebaton::presence::Coalescing {
    fn from(mode: CoalesceMode) -> Self {
        match mode {
            CoalesceMode::Adaptive => livebaton::presence::Coalescing::Adaptive,
            CoalesceMode::Fixed => livebaton::presence::Coalescing::Fixed,
        }
    }
}

/// Settings, each also read from an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LIVEBATON_BIND", default_value = "127.0.0.1:4000", global = true)]
    pub bind: SocketAddr,
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://…` (default: a SQLite file in the data directory);
    /// over untrusted networks `postgres://user:password@host/db?sslmode=verify-full&sslrootcert=/path/ca.pem`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis URL: run as one node of a cluster (PubSub, presence roster and drafts shared through Redis; use a
    /// PostgreSQL `--database-url` shared by every node). `rediss://[user]:password@host:port` for TLS.
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PEM file of the CA certificate(s) that signed the Redis server's TLS certificate (with a `rediss://`
    /// `--redis-url`), trusted instead of the system's roots.
    #[arg(long, env = "LIVEBATON_REDIS_CA_CERT", global = true)]
    pub redis_ca_cert: Option<PathBuf>,
    /// This node's name in the cluster (with `--redis-url`); unique per running node. Default: the bind address
    /// and a random suffix, so a restarted node never reuses a dead one's entries.
    #[arg(long, env = "LIVEBATON_NODE_NAME", global = true)]
    pub node_name: Option<String>,
    /// Secret for signing tokens and sessions (default: generated once and kept in the data directory).
    #[arg(long, env = "LIVEBATON_SECRET_KEY_BASE", global = true, hide_env_values = true)]
    pub secret_key_base: Option<String>,
    /// Create or update this admin account at start (with --admin-password).
    #[arg(long, env = "LIVEBATON_ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,
    /// Password for --admin-email.
    #[arg(long, env = "LIVEBATON_ADMIN_PASSWORD", global = true, hide_env_values = true)]
    pub admin_password: Option<String>,
    /// SMTP server for invitations and password reset links (`smtps://user:password@mail.example.com`, or
    /// `smtp://mail.example.com:587?tls=required`): with it links are mailed and "forgot password" exists; without
    /// it the admin is shown each link to pass on. Needs --public-url and --mail-from.
    #[arg(long, env = "LIVEBATON_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of the mail (`livebaton <cms@example.com>`).
    #[arg(long, env = "LIVEBATON_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
    /// Where people reach the site (`https://cms.example.com`): the origin of mailed links (never taken from a
    /// request, which a visitor controls).
    #[arg(long, env = "LIVEBATON_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Do not seed demo content into an empty database.
    #[arg(long, env = "LIVEBATON_NO_DEMO", global = true)]
    pub no_demo: bool,
    /// Origins allowed to open WebSockets, comma-separated (`host:port` or `https://host`); default: the same
    /// origin as the page (the `Host` the browser connected to).
    #[arg(long, env = "LIVEBATON_ALLOWED_ORIGINS", value_delimiter = ',', global = true)]
    pub allowed_origins: Vec<String>,
    /// Reverse proxies believed about the client, comma-separated networks (`127.0.0.1/32,::1/128`): from a peer
    /// in them the client's address is the rightmost untrusted hop of `X-Forwarded-For` (or `Forwarded`), and
    /// `X-Forwarded-Proto: https` makes cookies `Secure`. Default: none (the TCP peer is the client).
    #[arg(long, env = "LIVEBATON_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<crate::proxy::IpNet>,
    /// Mark every session and CSRF cookie `Secure`, whatever the proxy says (the site is only served over HTTPS).
    #[arg(long, env = "LIVEBATON_SECURE_COOKIES", global = true)]
    pub secure_cookies: bool,
    /// Close a WebSocket that sent nothing, not even a pong to the ping it gets after half of it, for this many seconds.
    #[arg(long, env = "LIVEBATON_IDLE_TIMEOUT_SECS", default_value_t = 10, global = true)]
    pub idle_timeout_secs: u64,
    /// Largest WebSocket frame accepted from a client, in bytes; a larger one closes the socket with 1009.
    #[arg(long, env = "LIVEBATON_MAX_FRAME_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_frame_bytes: usize,
    /// Most channels one socket may join at once; more joins get an error reply.
    #[arg(long, env = "LIVEBATON_MAX_CHANNELS", default_value_t = 100, global = true)]
    pub max_channels: usize,
    /// Client events allowed per second per socket (sustained); excess events get an error reply.
    #[arg(long, env = "LIVEBATON_EVENTS_PER_SECOND", default_value_t = 50, global = true)]
    pub events_per_second: u32,
    /// Client events allowed in a burst above the sustained rate.
    #[arg(long, env = "LIVEBATON_EVENT_BURST", default_value_t = 100, global = true)]
    pub event_burst: u32,
    /// Events refused for rate within a minute before the socket is closed (1008).
    #[arg(long, env = "LIVEBATON_MAX_REFUSED_EVENTS", default_value_t = 200, global = true)]
    pub max_refused_events: u32,
    /// Most WebSockets served at once; an upgrade beyond it gets 503 with Retry-After. 0: nine tenths of the
    /// process's open-files limit (raised to its hard limit at start), less `--max-http-connections`.
    #[arg(long, env = "LIVEBATON_MAX_SOCKETS", default_value_t = 0, global = true)]
    pub max_sockets: usize,
    /// Most WebSockets served at once for one client address (behind `--trusted-proxies`, the forwarded one); an
    /// upgrade beyond it gets 429 with Retry-After. 0: no limit (load tests from one address).
    #[arg(long, env = "LIVEBATON_MAX_SOCKETS_PER_ADDRESS", default_value_t = 1_000, global = true)]
    pub max_sockets_per_address: usize,
    /// Most HTTP connections served at once (before a WebSocket upgrade, which then counts as a socket); more wait in
    /// the kernel's accept queue.
    #[arg(long, env = "LIVEBATON_MAX_HTTP_CONNECTIONS", default_value_t = 1_024, global = true)]
    pub max_http_connections: usize,
    /// Most HTTP connections served at once for one client address (IPv6: one /64; `--trusted-proxies` not counted);
    /// one beyond it is closed at once. 0: no limit.
    #[arg(long, env = "LIVEBATON_MAX_HTTP_CONNECTIONS_PER_ADDRESS", default_value_t = 128, global = true)]
    pub max_http_connections_per_address: usize,
    /// Close an HTTP connection whose request head (line and headers) has not fully arrived this many seconds after
    /// it started (a client sending half a header holds nothing for long).
    #[arg(long, env = "LIVEBATON_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, global = true)]
    pub header_read_timeout_secs: u64,
    /// Serve `/metrics` on this address only (for example `127.0.0.1:9100`, reached by the monitoring system alone);
    /// the main address then answers 404 there.
    #[arg(long, env = "LIVEBATON_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` to read `/metrics`.
    #[arg(long, env = "LIVEBATON_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Frames queued for a client that reads too slowly; when full the socket is closed (1008).
    #[arg(long, env = "LIVEBATON_OUTBOUND_QUEUE", default_value_t = 256, global = true)]
    pub outbound_queue: usize,
    /// How long a deleted record stays in the trash, where it can be restored, before it is removed for good (days;
    /// 0: until an admin empties it).
    #[arg(long, env = "LIVEBATON_TRASH_RETENTION_DAYS", default_value_t = 30, global = true)]
    pub trash_retention_days: u64,
    /// How long the unsaved changes of a form that everyone left are kept for their author, who is offered them when
    /// they open the form again (hours). In the database on one node (they survive a restart), in Redis in a cluster.
    #[arg(long, env = "LIVEBATON_DRAFT_RETENTION_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=24 * 365), global = true)]
    pub draft_retention_hours: u64,
    /// The most unsaved drafts kept in all (the oldest go first); each user keeps at most 100.
    #[arg(long, env = "LIVEBATON_MAX_KEPT_DRAFTS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000), global = true)]
    pub max_kept_drafts: u64,
    /// How long a page that closed without leaving keeps its place (ms), so a reload can reclaim it.
    #[arg(long, env = "LIVEBATON_LEAVE_GRACE_MS", default_value_t = 1000, global = true)]
    pub leave_grace_ms: u64,
    /// The window over which a presence topic's diffs are merged (0: send each at once). A join storm of N members
    /// then costs a few diffs per window instead of N² frames; editing topics are never delayed.
    #[arg(long, env = "LIVEBATON_PRESENCE_COALESCE_MS", default_value_t = 15, global = true)]
    pub presence_coalesce_ms: u64,
    /// `adaptive`: a quiet topic sends each diff at once and only a busy one (a change within a window of the last)
    /// waits for the window; `fixed`: every diff waits for the window.
    #[arg(long, env = "LIVEBATON_PRESENCE_COALESCE", value_enum, default_value_t = CoalesceMode::Adaptive, global = true)]
    pub presence_coalesce: CoalesceMode,
    /// Every this many seconds, give the free pages inside the heap back to the system if 256 KiB or more were freed
    /// since the last time (glibc's `malloc_trim`: after 5,000 clients joined one room the process held 33 instead
    /// of 51 MiB). 0: never.
    #[arg(long, env = "LIVEBATON_MALLOC_TRIM_SECS", default_value_t = 2, global = true)]
    pub malloc_trim_secs: u64,
    /// Log lines as `text` (for people) or `json` (one object per line, for log collectors). Filter with RUST_LOG.
    #[arg(long, env = "LIVEBATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Directory for the default SQLite database and the generated secret.
    #[arg(long, env = "LIVEBATON_DATA_DIR", default_value = "livebaton-data", global = true)]
    pub data_dir: PathBuf,
}

/// The process's open-files limit (the soft one, which is what `accept` runs into).
fn open_files_limit() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok { usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX) } else { 1_024 }
}

/// Raises the soft open-files limit to the hard one (systemd starts services at 1,024 soft, often with a far higher
/// hard limit), so the socket budget is computed from what the process may really open. Returns the soft limit now.
pub fn raise_open_files_limit() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write only the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                tracing::debug!("the open-files limit could not be raised");
            }
        }
    }
    open_files_limit()
}

impl Settings {
    /// The node's name in the cluster: `--node-name`, or the bind address with a random suffix.
    pub fn node_name(&self) -> String {
        match &self.node_name {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => format!("{}-{}", self.bind, crate::accounts::random_token(6)),
        }
    }

    /// How long and how many unsaved drafts of ended sessions are kept.
    pub fn kept_draft_limits(&self) -> livebaton::editing::KeptDraftLimits {
        livebaton::editing::KeptDraftLimits {
            retention: std::time::Duration::from_secs(self.draft_retention_hours.saturating_mul(3600)),
            max_drafts: usize::try_from(self.max_kept_drafts).unwrap_or(usize::MAX),
            ..livebaton::editing::KeptDraftLimits::default()
        }
    }

    /// The socket limits these settings give.
    pub fn socket_config(&self) -> livebaton_web::config::SocketConfig {
        livebaton_web::config::SocketConfig {
            max_frame_bytes: self.max_frame_bytes.max(1024),
            max_channels: self.max_channels.max(1),
            events_per_second: self.events_per_second.max(1),
            event_burst: self.event_burst.max(1),
            max_refused_events: self.max_refused_events.max(1),
            outbound_queue: self.outbound_queue.max(8),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_sockets: match self.max_sockets {
                // Nine tenths of the descriptors, less the HTTP connections: the rest is for the database pool, Redis,
                // the log and the listeners. Never more than the process can open.
                0 => (open_files_limit() / 10 * 9).saturating_sub(self.max_http_connections).max(16),
                limit => limit,
            },
            max_sockets_per_address: self.max_sockets_per_address,
        }
    }

    /// The Redis to join (`--redis-url`, with the CA of `--redis-ca-cert`), or `None` to run alone.
    ///
    /// # Errors
    /// If the CA file cannot be read, or is given without a Redis URL.
    pub fn redis(&self) -> anyhow::Result<Option<livebaton::RedisAddress>> {
        let url = self.redis_url.as_deref().map(str::trim).filter(|url| !url.is_empty());
        match (url, &self.redis_ca_cert) {
            (None, None) => Ok(None),
            (None, Some(_)) => anyhow::bail!("--redis-ca-cert needs a rediss:// --redis-url"),
            (Some(url), None) => Ok(Some(livebaton::RedisAddress::new(url))),
            (Some(url), Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|error| anyhow::anyhow!("reading the Redis CA certificate {}: {error}", path.display()))?;
                Ok(Some(livebaton::RedisAddress::new(url).with_ca_cert(pem)))
            }
        }
    }

    /// The database URL to use: the one given, or a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => format!("sqlite://{}?mode=rwc", self.data_dir.join("livebaton.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::Cli;

    #[test]
    fn trusted_proxies_are_networks_and_anything_else_is_refused_at_start() {
        let settings =
            Cli::try_parse_from(["livebaton", "--trusted-proxies", "127.0.0.1/32, ::1/128"]).unwrap().settings;
        let networks: Vec<String> = settings.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(networks, ["127.0.0.1/32", "::1/128"]);
        assert!(!settings.secure_cookies);
        assert!(Cli::try_parse_from(["livebaton"]).unwrap().settings.trusted_proxies.is_empty(), "none by default");
        assert!(Cli::try_parse_from(["livebaton", "--trusted-proxies", "localhost"]).is_err());
        assert!(Cli::try_parse_from(["livebaton", "--secure-cookies"]).unwrap().settings.secure_cookies);
    }

    #[test]
    fn socket_limits_come_from_flags_with_the_documented_defaults() {
        let defaults = Cli::try_parse_from(["livebaton"]).unwrap().settings.socket_config();
        let library = livebaton_web::config::SocketConfig::default();
        assert_eq!(
            (defaults.max_frame_bytes, defaults.max_channels, defaults.events_per_second, defaults.outbound_queue),
            (library.max_frame_bytes, library.max_channels, library.events_per_second, library.outbound_queue)
        );
        let flags = [
            "livebaton",
            "--max-frame-bytes=2048",
            "--max-channels=3",
            "--events-per-second=7",
            "--event-burst=9",
            "--max-refused-events=11",
            "--outbound-queue=32",
            "--idle-timeout-secs=4",
        ];
        let config = Cli::try_parse_from(flags).unwrap().settings.socket_config();
        assert_eq!(config.max_frame_bytes, 2048);
        assert_eq!(config.max_channels, 3);
        assert_eq!((config.events_per_second, config.event_burst, config.max_refused_events), (7, 9, 11));
        assert_eq!(config.outbound_queue, 32);
        assert_eq!(config.idle_timeout, Duration::from_secs(4));
    }

    /// `--redis-ca-cert` is read into the Redis address, needs a Redis URL, and a missing file is an error at start.
    /// (`--redis-url ""` stands for no URL: the test runner's `REDIS_URL` would fill it in otherwise.)
    #[test]
    fn the_redis_ca_certificate_comes_with_a_redis_url() {
        let settings = |args: &[&str]| Cli::try_parse_from([&["livebaton"], args].concat()).unwrap().settings;
        assert!(settings(&["--redis-url", ""]).redis().unwrap().is_none(), "no URL: a single node");
        let plain = settings(&["--redis-url", "rediss://:pw@r:6380"]).redis().unwrap().unwrap();
        assert_eq!(plain.redacted(), "rediss://…@r:6380");

        let dir = std::env::temp_dir().join(format!("livebaton-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let ca = ca.to_str().unwrap();
        let with_ca = settings(&["--redis-url", "rediss://:pw@r:6380", "--redis-ca-cert", ca]).redis().unwrap();
        assert!(format!("{:?}", with_ca.unwrap()).contains("28 bytes of PEM"));
        let error = settings(&["--redis-url", "", "--redis-ca-cert", ca]).redis().unwrap_err();
        assert!(error.to_string().contains("needs a rediss:// --redis-url"), "{error}");
        let missing = dir.join("missing.pem");
        let error = settings(&["--redis-url", "rediss://r", "--redis-ca-cert", missing.to_str().unwrap()]).redis();
        assert!(error.unwrap_err().to_string().contains("missing.pem"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
