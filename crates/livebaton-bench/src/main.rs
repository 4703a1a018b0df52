//! `livebaton-bench`: load tools that measure the real `livebaton` server binary from the outside.
//!
//! ```sh
//! cargo build --release -p livebaton-admin -p livebaton-bench
//! taskset -c 1 target/release/livebaton-bench idle --clients 1000 --server-cpus 0
//! taskset -c 1 target/release/livebaton-bench join-storm --clients 1000 [--coalesce-ms 15] --server-cpus 0
//! taskset -c 1 target/release/livebaton-bench fanout --subscribers 1000 --rate 50 --seconds 10 --server-cpus 0
//! taskset -c 1 target/release/livebaton-bench handoff --editors 5 --rounds 50 --server-cpus 0
//! taskset -c 1 target/release/livebaton-bench form-sync --spectators 5 --rounds 100 --server-cpus 0
//! taskset -c 1 target/release/livebaton-bench cross-node --server-cpus 0   # two nodes, Redis and PostgreSQL
//! taskset -c 1 target/release/livebaton-bench churn --stay 1000 --cycles 10000 --server-cpus 0
//! # the same idle, join-storm and fanout against a peer installed by bench/peers/setup
//! taskset -c 1 target/release/livebaton-bench fanout --server soketi --server-cpus 0   # or sockudo, socketio
//! target/release/livebaton-bench plot bench/results/fanout-*.jsonl --out docs/bench
//! target/release/livebaton-bench criterion --dir target/criterion   # after cargo bench -p livebaton
//! ```
//!
//! `bench/run <scenario|all>` runs a scenario against livebaton and every peer in turn and draws the charts.
//!
//! Every scenario starts the server itself ([`server`]: `target/release/livebaton` on `127.0.0.1:0`, a fresh data
//! directory in the system temp dir, `taskset -c <--server-cpus>`; or, with `--server soketi|sockudo|socketio`, a
//! peer from `bench/peers` on a free loopback port, [`peer`]), is bounded in clients and in time
//! (`--timeout-secs` per phase), prints one JSON line and a short human summary on stdout, stops the server and
//! removes its data directory (kept, with `server.log`, when the run failed). A run whose clients failed or were
//! closed, or whose messages went missing, exits with status 1 after printing. What each scenario does and
//! measures is in the `//!` header of its module under `scenarios/`.
//!
//! The pieces:
//! - [`cli`]: the command line;
//! - [`server`]: the server process, its users (`livebaton user add`);
//! - [`peer`]: a peer's process (soketi, sockudo, the Socket.IO server); [`target`]: either, with its protocol;
//! - [`http`]: tokens (`POST /api/tokens`), a record id, `/metrics`;
//! - [`protocol`]: the wire protocols behind a small trait (Phoenix Channels V2; Pusher protocol 7; Socket.IO v4);
//! - [`client`]: one WebSocket connection speaking a protocol, stamping what it reads;
//! - [`presence`]: a client's presence list with Phoenix semantics;
//! - [`stats`]: HDR latency histograms, CPU over a phase, output;
//! - [`procfs`]: RSS and CPU time from `/proc`, the open-files limit;
//! - [`scenarios`]: one module per scenario;
//! - [`backends`]: the private Redis and the throwaway PostgreSQL database of `cross-node`;
//! - [`plot`]: SVG bar charts of the results of `bench/run`; [`criterion`]: the engine benchmarks' table.
//!
//! Every client is one socket in this process, and the server holds one per client too: the tool raises its own
//! soft `RLIMIT_NOFILE` to the hard limit (the server inherits it) and refuses client counts above that limit
//! minus 100.

mod backends;
mod cli;
mod client;
mod criterion;
mod http;
mod peer;
mod plot;
mod presence;
mod procfs;
mod protocol;
mod scenarios;
mod server;
mod stats;
mod target;

use clap::Parser;

use cli::{Cli, Scenario};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Idle(args) => scenarios::idle::run(args).await,
        Scenario::JoinStorm(args) => scenarios::join_storm::run(args).await,
        Scenario::Fanout(args) => scenarios::fanout::run(args).await,
        Scenario::Handoff(args) => scenarios::handoff::run(args).await,
        Scenario::FormSync(args) => scenarios::form_sync::run(args).await,
        Scenario::CrossNode(args) => scenarios::cross_node::run(args).await,
        Scenario::Churn(args) => scenarios::churn::run(args).await,
        Scenario::Criterion(args) => criterion::run(&args),
        Scenario::Plot(args) => plot::run(&args),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
