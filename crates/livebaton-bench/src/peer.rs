//! A peer server under test (soketi, sockudo or the Socket.IO server), as installed by `bench/peers/setup`.
//!
//! [`Peer::start`] picks a free loopback port, starts the peer from `--peers-dir` (default `bench/peers`, relative
//! to the working directory, i.e. the repository root) under `taskset -c <--server-cpus>` when given, with its output
//! in `peer.log` in a fresh temp directory, and waits until the port accepts connections:
//! - soketi: `node soketi/server.mjs` with `PORT` and `METRICS_PORT` (both bound to 127.0.0.1 by `server.mjs`);
//! - sockudo: `sockudo/bin/sockudo --config sockudo/config.json` with `PORT` (the config binds 127.0.0.1);
//! - socketio: `node socketio/server.mjs` with `PORT`.
//!
//! [`Peer::finish`] stops it like the livebaton server (SIGTERM, SIGKILL after 10 s).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::cli::{ServerArgs, ServerKind};
use crate::server::taskset_exists;
use crate::stats::emit;

/// The running peer.
pub struct Peer {
    child: Child,
    pub kind: ServerKind,
    pub pid: u32,
    pub addr: String,
    /// Holds `peer.log`.
    pub dir: PathBuf,
}

/// A port nobody listens on now (the kernel's next ephemeral one; the peer binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl Peer {
    pub async fn start(args: &ServerArgs) -> anyhow::Result<Peer> {
        let kind = args.server;
        let peers = &args.peers_dir;
        let (program, program_args): (PathBuf, Vec<String>) = match kind {
            ServerKind::Soketi => ("node".into(), vec![peers.join("soketi/server.mjs").display().to_string()]),
            ServerKind::Socketio => ("node".into(), vec![peers.join("socketio/server.mjs").display().to_string()]),
            ServerKind::Sockudo => (
                peers.join("sockudo/bin/sockudo"),
                vec!["--config".into(), peers.join("sockudo/config.json").display().to_string()],
            ),
            ServerKind::Livebaton => bail!("livebaton is not a peer"),
        };
        let installed = match kind {
            ServerKind::Soketi => peers.join("soketi/node_modules/@soketi/soketi"),
            ServerKind::Socketio => peers.join("socketio/node_modules/socket.io"),
            _ => program.clone(),
        };
        if !installed.exists() {
            bail!("{} is not installed ({} missing): run bench/peers/setup", kind.name(), installed.display());
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("livebaton-bench-{}-{}-{nanos:x}", kind.name(), std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("peer.log")).context("creating the peer log")?;
        let port = free_port()?;
        let metrics_port = free_port()?;

        let mut command = match &args.server_cpus {
            Some(cpus) if taskset_exists() => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(&program);
                command
            }
            Some(_) => {
                eprintln!("warning: taskset not found; the server is not pinned");
                Command::new(&program)
            }
            None => Command::new(&program),
        };
        command
            .args(&program_args)
            .env("PORT", port.to_string())
            .env("METRICS_PORT", metrics_port.to_string())
            .env("RUST_LOG", "warn")
            .env("NODE_ENV", "production")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id().context("the peer exited at once")?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + args.bound();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{} exited ({status}) before listening; see {}", kind.name(), dir.join("peer.log").display());
            }
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {addr} in time; see {}", kind.name(), dir.join("peer.log").display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Whatever the peer does right after it listens (soketi loads its app manager lazily) is not measured.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Peer { child, kind, pid, addr, dir })
    }

    /// Stops the peer, and removes its log unless the run failed. Returns the run's outcome.
    pub async fn finish(mut self, outcome: anyhow::Result<bool>) -> anyhow::Result<bool> {
        let started = Instant::now();
        let how = if let Ok(Some(status)) = self.child.try_wait() {
            Err(anyhow::anyhow!("{} had already exited: {status}", self.kind.name()))
        } else {
            let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
            // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (checked above).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
                Ok(status) => Ok(format!("{}", status?)),
                Err(_) => {
                    self.child.kill().await.context("killing the peer")?;
                    Ok("did not stop on SIGTERM within 10 s; killed".to_owned())
                }
            }
        };
        match (&outcome, &how) {
            (Ok(true), Ok(_)) => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            _ => eprintln!("{} log kept in {}", self.kind.name(), self.dir.display()),
        }
        let how = how?;
        let outcome = outcome?;
        emit(&format!("{} stopped in {:.1} s ({how})", self.kind.name(), started.elapsed().as_secs_f64()));
        Ok(outcome)
    }
}
