//! `livebaton serve`: open the store, bootstrap, listen, and stop cleanly on SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use livebaton::{Engine, EngineConfig};
use livebaton_web::endpoint::{LiveEndpoint, ShutdownHandle};

use crate::accounts::{RedisThrottle, SignInThrottle, ThrottleConfig, warm_up};
use crate::app::{AppState, router};
use crate::config::Settings;
use crate::http::HttpLimits;
use crate::metrics::MetricsAccess;
use crate::proxy::TrustedProxies;

/// The presence topic of the dashboard's session statistics (the admin app's name for it, kept from PhoenixKit).
pub const SESSIONS_TOPIC: &str = "admin:sessions";
use crate::secret::secret_key_base;
use crate::seed::bootstrap;
use crate::storage::{Dialect, SqlKeptDrafts, Store};

/// Opens the database named by `settings` (creating the data directory for the default SQLite file).
///
/// # Errors
/// If the database cannot be opened or migrated.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    if Dialect::of_url(&url) == Dialect::Sqlite && settings.database_url.is_none() {
        crate::secret::create_data_dir(&settings.data_dir)
            .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
    }
    Store::connect(&url).await.map_err(|error| {
        let hint = database_hint(&error.to_string());
        anyhow::Error::new(error).context(format!("opening the database {}{hint}", redact(&url)))
    })
}

/// What to change when PostgreSQL's TLS is what failed (empty otherwise): sqlx's messages name the symptom only.
fn database_hint(error: &str) -> &'static str {
    if error.contains("invalid peer certificate") {
        " (the server's certificate is not signed by a CA trusted here: add sslrootcert=/path/to/ca.pem to the URL)"
    } else if error.contains("no encryption") {
        " (the server accepts TLS connections only: add sslmode=verify-full&sslrootcert=… or sslmode=require)"
    } else {
        ""
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Runs the server until SIGTERM or Ctrl-C.
///
/// # Errors
/// If start-up fails (database, secret, address in use).
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let needed = livebaton_content::frame_bytes_for_content();
    anyhow::ensure!(
        settings.max_frame_bytes >= needed,
        "--max-frame-bytes {} is too small: the largest form ({} bytes of content, URL-encoded) needs frames of {needed} bytes",
        settings.max_frame_bytes,
        livebaton_content::MAX_CONTENT_BYTES,
    );
    crate::allocator::start_trimmer(Duration::from_secs(settings.malloc_trim_secs))
        .context("starting the malloc-trim thread")?;
    let store = open_store(&settings).await?;
    let secret = secret_key_base(settings.secret_key_base.as_deref(), &settings.data_dir)?;
    let mut engine_config = EngineConfig {
        kept_drafts: settings.kept_draft_limits(),
        sessions_topic: Some(SESSIONS_TOPIC.to_owned()),
        ..EngineConfig::default()
    };
    engine_config.presence.leave_grace = Duration::from_millis(settings.leave_grace_ms);
    engine_config.presence.coalesce_window = Duration::from_millis(settings.presence_coalesce_ms);
    engine_config.presence.coalescing = settings.presence_coalesce.into();
    let redis = settings.redis()?;
    let engine = match &redis {
        None => {
            // One node: unsaved drafts of ended sessions go to the database, so a restart keeps them.
            let kept = SqlKeptDrafts::new(store.clone(), engine_config.kept_drafts);
            engine_config.kept_draft_store = Some(std::sync::Arc::new(kept));
            Engine::new(engine_config)
        }
        Some(redis) => {
            let node = settings.node_name();
            let engine = Engine::with_redis(engine_config, redis, &node)
                .await
                .with_context(|| format!("joining the cluster at {} as node {node}", redis.redacted()))?;
            tracing::info!(node = %node, redis = %redis.redacted(), "joined the cluster");
            engine
        }
    };
    let open_files = crate::config::raise_open_files_limit();
    let sockets = settings.socket_config();
    tracing::info!(open_files, max_sockets = sockets.max_sockets, "connection limits");
    let origins =
        settings.allowed_origins.iter().map(|origin| origin.trim().to_owned()).filter(|o| !o.is_empty()).collect();
    let proxies = TrustedProxies::new(settings.trusted_proxies.iter().copied());
    if !settings.trusted_proxies.is_empty() {
        let networks: Vec<String> = settings.trusted_proxies.iter().map(ToString::to_string).collect();
        tracing::info!(proxies = %networks.join(","), "client addresses and https from X-Forwarded-* of these peers");
    }
    // In a cluster the nodes count failed sign-ins together, in Redis (N nodes must not allow N× the guesses).
    let throttle = match &redis {
        None => SignInThrottle::local(ThrottleConfig::default()),
        Some(redis) => {
            let shared = RedisThrottle::new(redis, RedisThrottle::PREFIX, ThrottleConfig::default())
                .context("the shared sign-in throttle")?;
            SignInThrottle::shared(shared, ThrottleConfig::default())
        }
    };
    let state = AppState::with_live(store, engine, &secret, ThrottleConfig::default(), sockets, origins)
        .with_throttle(throttle)
        .with_proxies(proxies, settings.secure_cookies)
        .with_metrics(MetricsAccess {
            separate_listener: settings.metrics_bind.is_some(),
            token: settings.metrics_token.as_deref().filter(|token| !token.is_empty()).map(Into::into),
        });
    if let Some(smtp_url) = settings.smtp_url.as_deref().filter(|url| !url.is_empty()) {
        let (Some(public_url), Some(from)) = (&settings.public_url, &settings.mail_from) else {
            anyhow::bail!("--smtp-url needs --public-url (the origin of mailed links) and --mail-from");
        };
        anyhow::ensure!(
            public_url.starts_with("https://") || public_url.starts_with("http://"),
            "--public-url must start with https:// (or http://)"
        );
        let mailer = crate::accounts::SmtpMailer::new(smtp_url, from)?;
        state.people.set_mail(std::sync::Arc::new(mailer), public_url);
        tracing::info!(%public_url, "invitations and password resets are mailed");
    }
    warm_up().await;

    let admin = match (&settings.admin_email, &settings.admin_password) {
        (Some(email), Some(password)) => Some((email.as_str(), password.as_str())),
        (None, None) => None,
        _ => anyhow::bail!("--admin-email and --admin-password go together"),
    };
    let done = bootstrap(&state.content, admin, !settings.no_demo).await?;
    if let Some((email, password)) = &done.generated_admin {
        println!("Created the first admin account (shown once):\n  email:    {email}\n  password: {password}");
    }
    if let Some(user_id) = done.revoked_admin {
        // The admin's password or role changed: close their sockets on the other nodes of the cluster.
        crate::live::announce_revocation(&state.engine.pubsub, user_id);
    }
    if done.seeded_demo {
        tracing::info!("seeded demo content (entity \"article\" with three records)");
    }

    let trash_retention = (settings.trash_retention_days > 0)
        .then(|| Duration::from_secs(settings.trash_retention_days.saturating_mul(24 * 3600)));
    spawn_sweeper(state.store.clone(), trash_retention, settings.kept_draft_limits().retention);

    let listener = listen(settings.bind).with_context(|| format!("listening on {}", settings.bind))?;
    let address = listener.local_addr()?;
    println!("livebaton listening on http://{address}/admin");
    if let Some(bind) = settings.metrics_bind {
        let metrics =
            tokio::net::TcpListener::bind(bind).await.with_context(|| format!("listening for metrics on {bind}"))?;
        let app = crate::metrics::router(state.clone());
        let limits = HttpLimits {
            max_connections: 16,
            max_per_peer: 0,
            exempt: TrustedProxies::default(),
            header_read_timeout: Duration::from_secs(10),
        };
        tokio::spawn(crate::http::serve(metrics, app, limits, std::future::pending(), std::future::ready(())));
        tracing::info!(%bind, "metrics served on their own address");
    }
    let live = (state.live.clone(), state.live_shutdown.clone());
    let cluster = state.engine.clone();
    let editing = state.engine.editing.clone();
    let limits = HttpLimits {
        max_connections: settings.max_http_connections,
        max_per_peer: settings.max_http_connections_per_address,
        exempt: TrustedProxies::new(settings.trusted_proxies.iter().cloned()),
        header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs.max(1)),
    };
    // At the signal the listener closes first, then the sockets: a client that reconnects at once is refused, not
    // accepted and closed again.
    crate::http::serve(listener, router(state), limits, shutdown_signal(), async move {
        // The open forms' unsaved drafts are kept for their authors, in one batch, before the sockets close (on one
        // node; a cluster keeps them live in Redis). Then the drafts of the sessions the closing ends (typed since).
        // Within the five seconds a shutdown takes at most: 1.5 s, 2 s for the sockets, 1 s.
        if tokio::time::timeout(Duration::from_millis(1500), editing.keep_open_drafts()).await.is_err() {
            tracing::error!("the open forms' unsaved drafts were still being kept when the shutdown went on");
        }
        close_sockets(&live.0, &live.1).await;
        if tokio::time::timeout(Duration::from_secs(1), editing.keep_open_drafts()).await.is_err() {
            tracing::error!("unsaved drafts were still being kept when the shutdown ended: the latest may be lost");
        }
        // Other nodes drop this node's presences now rather than when its lease runs out.
        if let Err(error) = cluster.retire().await {
            tracing::warn!(%error, "could not leave the cluster in order; other nodes wait for the lease");
        }
    })
    .await?;
    Ok(())
}

/// Closes every WebSocket with 1001 (clients reconnect elsewhere) and releases their presences at once, waiting at
/// most two seconds for them to finish, so the whole shutdown stays well within five.
async fn close_sockets(live: &LiveEndpoint, shutdown: &ShutdownHandle) {
    shutdown.shutdown();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while live.open_sockets() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Removes expired sessions every hour, so the table does not grow with abandoned sign-ins.
/// The queue of connections the kernel completes before the server accepts them. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4). Tokio's `bind` asks for 1024: when thousands of clients
/// reconnect at once after a restart, a full queue drops their SYNs and each waits 1, 2, 4… s to try again
/// (measured with 5,000 phoenix.js clients: 8,000 dropped SYNs, the last clients back after 30–70 s).
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as `bind` sets it, so a restart does not wait
/// for the old connections' TIME_WAIT).
fn listen(address: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Every hour: removes expired sessions, drafts kept longer than `draft_retention` (on one node; a keep also drops
/// them, this sweep takes those of forms nobody opens again), and the records in the trash for longer than
/// `trash_retention` (none when `None`).
fn spawn_sweeper(store: Store, trash_retention: Option<Duration>, draft_retention: Duration) {
    tokio::spawn(async move {
        let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            match store.delete_expired_sessions().await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "expired sessions removed"),
                Err(error) => tracing::warn!(%error, "could not remove expired sessions"),
            }
            let cutoff =
                crate::storage::now_ms().saturating_sub(i64::try_from(draft_retention.as_millis()).unwrap_or(i64::MAX));
            match store.purge_kept_drafts_before(cutoff).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "unsaved drafts removed after the retention"),
                Err(error) => tracing::warn!(%error, "could not remove expired unsaved drafts"),
            }
            let Some(retention) = trash_retention else { continue };
            let cutoff =
                crate::storage::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            match store.purge_trash_before(cutoff).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "records removed from the trash after the retention"),
                Err(error) => tracing::warn!(%error, "could not empty the trash"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
