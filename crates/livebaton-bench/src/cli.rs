//! The command line: one subcommand per scenario, and the server options they share.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load tools for the livebaton server: each scenario starts `target/release/livebaton` on a loopback port and a
/// fresh data directory, runs bounded in clients and time, and prints one JSON line and a short summary.
#[derive(Debug, Parser)]
#[command(name = "livebaton-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Server RSS per idle WebSocket connection joined to a presence room.
    Idle(IdleArgs),
    /// N clients join one `room:` presence topic at once: server CPU, presence messages, time until every client's
    /// list is complete.
    JoinStorm(JoinStormArgs),
    /// N subscribers on one `room:` topic, one publisher at R `shout`s per second: deliveries/s, latency, server CPU
    /// per delivery.
    Fanout(FanoutArgs),
    /// M editors on one record's `edit:data:<id>`: the owner leaves, time until the next in line is told it owns.
    Handoff(HandoffArgs),
    /// An owner and M spectators on one record: the owner sends `draft`, time until each spectator has it.
    FormSync(FormSyncArgs),
    /// Two nodes sharing Redis and PostgreSQL: hand-over, draft and broadcast latency from one node to the other.
    CrossNode(CrossNodeArgs),
    /// Clients stay in a room while many more connect, join and leave or close: afterwards every roster lists exactly
    /// the clients that stayed (no ghost after the leave grace) and the server's RSS is back near its plateau.
    Churn(ChurnArgs),
    /// Turns criterion's estimates (`target/criterion`) of the engine benchmarks into a Markdown table.
    Criterion(CriterionArgs),
    /// Draws the results of `bench/run` (JSON lines) as SVG bar charts: medians per server, with every run.
    Plot(PlotArgs),
}

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerKind {
    /// The `livebaton` binary (Phoenix Channels V2).
    Livebaton,
    /// soketi 1.6 (Pusher protocol 7), from `bench/peers/soketi`.
    Soketi,
    /// sockudo 5.2 (Pusher protocol 7), from `bench/peers/sockudo`.
    Sockudo,
    /// The Socket.IO 4.8 room + presence server in `bench/peers/socketio`.
    Socketio,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Livebaton => "livebaton",
            ServerKind::Soketi => "soketi",
            ServerKind::Sockudo => "sockudo",
            ServerKind::Socketio => "socketio",
        }
    }
}

/// How the server is started; every scenario takes these.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server under test: livebaton, or a peer installed by `bench/peers/setup` (idle, join-storm and fanout
    /// only).
    #[arg(long, value_enum, default_value_t = ServerKind::Livebaton)]
    pub server: ServerKind,
    /// Where `bench/peers/setup` installed the peers.
    #[arg(long, default_value = "bench/peers")]
    pub peers_dir: PathBuf,
    /// The server binary (default: `livebaton` next to this binary, i.e. `target/release/livebaton`).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Pin the server to these CPUs with `taskset -c` (ignored, with a warning, when taskset is missing). Run this
    /// tool itself under `taskset -c` on other CPUs.
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// The server's `--idle-timeout-secs`: long enough that clients need not heartbeat during a run.
    #[arg(long, default_value_t = 1800)]
    pub idle_timeout_secs: u64,
    /// Bound on each phase of a run (start-up, connecting and joining, settling, measuring).
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// JSON-lines result files (`bench/results/*.jsonl`); every line with a `scenario` and a `server` counts.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Directory the SVG charts are written to.
    #[arg(long, default_value = "docs/bench")]
    pub out: PathBuf,
}

impl ServerArgs {
    pub fn server_bin(&self) -> PathBuf {
        self.server_bin.clone().unwrap_or_else(crate::server::default_server_bin)
    }

    pub fn bound(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Number of WebSocket clients.
    #[arg(long)]
    pub clients: usize,
    /// Seconds between the first and the second RSS reading once the room is settled.
    #[arg(long, default_value_t = 5)]
    pub hold_secs: u64,
    /// The room is settled when no client has received a frame for this many seconds.
    #[arg(long, default_value_t = 2)]
    pub settle_secs: u64,
    /// Topic every client joins.
    #[arg(long, default_value = "room:bench")]
    pub topic: String,
    /// Each client joins its own room, `<topic>-<i>`, instead of all joining one.
    #[arg(long, conflicts_with = "no_join")]
    pub room_per_client: bool,
    /// Only connect; join no channel.
    #[arg(long)]
    pub no_join: bool,
    /// Clients connecting or joining at the same time.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Heartbeat every this many seconds; 0: never (the server's idle timeout is `--idle-timeout-secs`).
    #[arg(long, default_value_t = 0)]
    pub heartbeat_secs: u64,
    /// Before the first reading, this many clients connect and join `<topic>-warmup` all at once, and stay connected
    /// to the end, so what a server allocates once on its first traffic (code paged in, database connections,
    /// allocator arenas) is in the baseline and not divided among the connections. 0 (the default): none, the
    /// baseline is read from cold, as every figure in BENCHMARKS.md was.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct JoinStormArgs {
    /// Clients that join the room.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Distinct users the clients sign in as, round robin (each created with `livebaton user add`); the room's
    /// presence key is the user id, so a complete list has this many keys. Default: one per client.
    #[arg(long)]
    pub users: Option<usize>,
    /// The server's `--presence-coalesce-ms` (default: the server's, 15 ms adaptive; 0: every join is its own diff).
    #[arg(long)]
    pub coalesce_ms: Option<u64>,
    /// The room.
    #[arg(long, default_value = "room:storm")]
    pub topic: String,
    /// The server's `--outbound-queue`: frames queued per client before it is closed as a slow consumer.
    #[arg(long, default_value_t = 4096)]
    pub outbound_queue: usize,
    /// Clients connecting at the same time (before the storm; connecting is not measured).
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// After the last list is complete, wait until no frame arrives for this many ms before reading the server's CPU
    /// (late duplicates are part of the cost).
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Subscribers joined to the room.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// `shout`s per second from the publisher.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Extra bytes of padding in each message (the payload is about 40 bytes without).
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// The server's `--presence-coalesce-ms`, to keep the subscribers' join phase (not measured) cheap.
    #[arg(long, default_value_t = 20)]
    pub coalesce_ms: u64,
    /// The server's `--outbound-queue` (default: the server's, 256).
    #[arg(long)]
    pub outbound_queue: Option<usize>,
    /// The room.
    #[arg(long, default_value = "room:fanout")]
    pub topic: String,
    /// Subscribers connecting or joining at the same time.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// After the last message is sent, wait at most this long for its deliveries.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Diagnostic: the subscribers acknowledge every frame at once (`TCP_QUICKACK`) instead of with the kernel's
    /// delayed ACK; latency that goes away with it is the server's Nagle algorithm waiting for an ACK.
    #[arg(long)]
    pub client_quickack: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// Editors in the session (each its own user with role `editor`).
    #[arg(long, default_value_t = 5)]
    pub editors: usize,
    /// Hand-overs measured.
    #[arg(long, default_value_t = 50)]
    pub rounds: usize,
    /// Pause between rounds, in ms.
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
    /// Diagnostic: the editors acknowledge every frame at once (`TCP_QUICKACK`) instead of with the kernel's
    /// delayed ACK; a delay that goes away with it is the server's Nagle algorithm waiting for an ACK.
    #[arg(long)]
    pub client_quickack: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct FormSyncArgs {
    /// Spectators watching the owner's draft (each its own user with role `editor`, later in line).
    #[arg(long, default_value_t = 5)]
    pub spectators: usize,
    /// Drafts sent.
    #[arg(long, default_value_t = 100)]
    pub rounds: usize,
    /// Pause between rounds, in ms (a browser debounces typing; 0 sends the next draft as soon as every spectator
    /// has the last).
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
    /// Diagnostic: the editors acknowledge every frame at once (`TCP_QUICKACK`) instead of with the kernel's
    /// delayed ACK; a delay that goes away with it is the server's Nagle algorithm waiting for an ACK.
    #[arg(long)]
    pub client_quickack: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct CrossNodeArgs {
    /// Editors in the editing session, alternating between the nodes (even, so that the owner and the next in
    /// line are always on different nodes).
    #[arg(long, default_value_t = 4)]
    pub editors: usize,
    /// Hand-overs measured.
    #[arg(long, default_value_t = 100)]
    pub rounds: usize,
    /// Drafts measured after the hand-overs.
    #[arg(long, default_value_t = 100)]
    pub drafts: usize,
    /// Broadcasts measured, one at a time.
    #[arg(long, default_value_t = 500)]
    pub messages: usize,
    /// Clients on node `b` that receive the broadcasts.
    #[arg(long, default_value_t = 5)]
    pub subscribers: usize,
    /// Pause between hand-overs and between drafts, in ms.
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
    /// The PostgreSQL server: a fresh database is created on it for the run and dropped afterwards.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Clients that join the room first and stay connected to the end.
    #[arg(long, default_value_t = 1000)]
    pub stay: usize,
    /// Connect → join → leave-or-close cycles, the warm-up included.
    #[arg(long, default_value_t = 10_000)]
    pub cycles: usize,
    /// Cycles run before the plateau is read; the rest run after it.
    #[arg(long, default_value_t = 1000)]
    pub warmup_cycles: usize,
    /// Cycles (and staying clients connecting) at the same time.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// How long a cycling client stays joined after its join reply, in ms.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// The server's `--leave-grace-ms` (default: the server's, 1 s); the checks wait for it.
    #[arg(long)]
    pub leave_grace_ms: Option<u64>,
    /// Waited on top of the grace before the rosters are checked, in ms.
    #[arg(long, default_value_t = 1000)]
    pub margin_ms: u64,
    /// Before a reading, wait until no staying client has received a frame for this many ms.
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// The server's `--presence-coalesce-ms` (default: the server's, 15 ms adaptive).
    #[arg(long)]
    pub coalesce_ms: Option<u64>,
    /// The server's `--outbound-queue` (default: the server's, 256).
    #[arg(long)]
    pub outbound_queue: Option<usize>,
    /// The largest end RSS accepted, as a share above the plateau (0.10: within 10 %).
    #[arg(long, default_value_t = 0.10)]
    pub rss_tolerance: f64,
    /// The room.
    #[arg(long, default_value = "room:churn")]
    pub topic: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct CriterionArgs {
    /// criterion's output directory (`<target>/criterion`).
    #[arg(long, default_value = "target/criterion")]
    pub dir: PathBuf,
}
