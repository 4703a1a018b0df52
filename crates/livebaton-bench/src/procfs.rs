//! What the tool reads about processes from `/proc`, and its own open-files limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

/// A process's resident memory, in KiB, and what it is made of (`/proc/<pid>/status`).
#[derive(Debug, Clone, Copy)]
pub struct Resident {
    /// `VmRSS`: all of it.
    pub total: u64,
    /// `RssAnon`: the process's own memory (heaps, stacks); what its connections can cost.
    pub anon: u64,
    /// `RssFile`: pages of the binary and libraries it ran so far, shared with the page cache. They grow once, when a
    /// code path runs for the first time, not with every connection.
    pub file: u64,
}

pub fn resident_kib(pid: u32) -> anyhow::Result<Resident> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {path}"))
    };
    Ok(Resident { total: field("VmRSS:")?, anon: field("RssAnon:")?, file: field("RssFile:")? })
}

/// CPU seconds a process has used so far, `(user, system)` (`utime` and `stime` of `/proc/<pid>/stat`, all
/// threads; the kernel counts in clock ticks, usually 10 ms). `None` reads this process.
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<(f64, f64)> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let (user, system) = stat_cpu_ticks(&stat).with_context(|| format!("no utime/stime in {path}"))?;
    let per_second = clock_ticks_per_second();
    Ok((user as f64 / per_second, system as f64 / per_second))
}

/// `(utime, stime)` from a `/proc/<pid>/stat` line. Fields are counted after the command name, which is in
/// parentheses and may itself hold spaces and parentheses: utime and stime are fields 14 and 15 of the line, the
/// 12th and 13th after the `)`.
fn stat_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Raises this process's soft open-files limit to the hard limit; the soft limit now in force. The server, started
/// by this process, inherits it.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid, initialised rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Fails when `clients` sockets (plus some slack) do not fit under the open-files limit.
pub fn check_fd_limit(clients: usize) -> anyhow::Result<()> {
    let limit = raise_fd_limit();
    anyhow::ensure!(
        (clients as u64).saturating_add(100) <= limit,
        "{clients} clients need more open files than this process may have ({limit}); lower the count"
    );
    Ok(())
}

/// The server's largest RSS, sampled every 250 ms until stopped.
pub struct RssSampler {
    stop: watch::Sender<bool>,
    peak: Arc<Mutex<(u64, u64)>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let (stop, mut stopped) = watch::channel(false);
        let peak = Arc::new(Mutex::new((0, 0)));
        let shared = peak.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = every.tick() => {}
                }
                let Ok(now) = resident_kib(pid) else { return };
                let mut peak = shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                *peak = (peak.0.max(now.total), peak.1.max(now.anon));
            }
        });
        RssSampler { stop, peak }
    }

    /// The peaks: `total` is `VmRSS`, `anon` is `RssAnon` (each its own maximum; `file` unused).
    pub fn stop(self) -> Resident {
        let _ = self.stop.send(true);
        let (total, anon) = *self.peak.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Resident { total, anon, file: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some((250, 75)));
        assert!(cpu_seconds(None).is_ok());
    }
}
