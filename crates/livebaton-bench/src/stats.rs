//! Measurements and their reporting: latency histograms, CPU used over a phase, and the output lines.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::procfs::cpu_seconds;

/// Prints a line on stdout; a closed stdout (`| head -1`) must not abort the run before the server is stopped.
pub fn emit(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `value` rounded to `digits` decimals, for the JSON line.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits (HDR histogram).
#[derive(Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies { histogram: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds") }
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.record_us(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn record_us(&mut self, micros: u64) {
        self.histogram.saturating_record(micros.max(1));
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The `q` quantile (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }

    /// `{count, p50_ms, p90_ms, p99_ms, max_ms, mean_ms}` (null quantiles when empty).
    pub fn json(&self) -> Value {
        if self.count() == 0 {
            return json!({"count": 0, "p50_ms": null, "p90_ms": null, "p99_ms": null, "max_ms": null, "mean_ms": null});
        }
        json!({
            "count": self.count(),
            "p50_ms": round(self.quantile_ms(0.50), 3),
            "p90_ms": round(self.quantile_ms(0.90), 3),
            "p99_ms": round(self.quantile_ms(0.99), 3),
            "max_ms": round(self.max_ms(), 3),
            "mean_ms": round(self.histogram.mean() / 1000.0, 3),
        })
    }

    /// `p50 1.23 / p90 … / p99 … / max … ms (n samples)`.
    pub fn human(&self) -> String {
        if self.count() == 0 {
            return "no samples".to_owned();
        }
        format!(
            "p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms ({} samples)",
            self.quantile_ms(0.50),
            self.quantile_ms(0.90),
            self.quantile_ms(0.99),
            self.max_ms(),
            self.count()
        )
    }
}

/// CPU used by the server and by this tool, and wall time, over one phase of a run.
pub struct CpuMeter {
    server_pid: u32,
    server_start: (f64, f64),
    client_start: (f64, f64),
    started: Instant,
}

/// What a [`CpuMeter`] measured.
#[derive(Debug, Clone, Copy)]
pub struct CpuUsage {
    pub server_secs: f64,
    /// The part of `server_secs` spent in the kernel (socket writes and reads, wake-ups).
    pub server_system_secs: f64,
    pub client_secs: f64,
    pub wall_secs: f64,
}

impl CpuMeter {
    pub fn start(server_pid: u32) -> anyhow::Result<CpuMeter> {
        Ok(CpuMeter {
            server_pid,
            server_start: cpu_seconds(Some(server_pid))?,
            client_start: cpu_seconds(None)?,
            started: Instant::now(),
        })
    }

    pub fn stop(&self) -> anyhow::Result<CpuUsage> {
        let (server_user, server_system) = cpu_seconds(Some(self.server_pid))?;
        let (client_user, client_system) = cpu_seconds(None)?;
        Ok(CpuUsage {
            server_secs: server_user + server_system - self.server_start.0 - self.server_start.1,
            server_system_secs: server_system - self.server_start.1,
            client_secs: client_user + client_system - self.client_start.0 - self.client_start.1,
            wall_secs: self.started.elapsed().as_secs_f64(),
        })
    }
}

impl CpuUsage {
    pub fn json(&self) -> Value {
        json!({
            "server_cpu_secs": round(self.server_secs, 2),
            "server_system_cpu_secs": round(self.server_system_secs, 2),
            "client_cpu_secs": round(self.client_secs, 2),
            "wall_secs": round(self.wall_secs, 2),
        })
    }

    /// `server 1.23 s CPU (45 % of a core), tool 0.50 s, over 2.7 s`.
    pub fn human(&self) -> String {
        let share = |secs: f64| if self.wall_secs > 0.0 { 100.0 * secs / self.wall_secs } else { 0.0 };
        format!(
            "server {:.2} s CPU ({:.0} % of a core; {:.2} s of it in the kernel), tool {:.2} s ({:.0} %), over {:.1} s",
            self.server_secs,
            share(self.server_secs),
            self.server_system_secs,
            self.client_secs,
            share(self.client_secs),
            self.wall_secs
        )
    }
}

/// Adds `extra`'s fields to the object `base`.
pub fn extend(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
}

/// The system's 1-minute load average, for the JSON line (the machine is shared).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_summarise_in_milliseconds() {
        let mut latencies = Latencies::default();
        for micros in 1..=1000 {
            latencies.record_us(micros);
        }
        latencies.record(Duration::from_millis(50));
        assert_eq!(latencies.count(), 1001);
        assert!((latencies.quantile_ms(0.5) - 0.5).abs() < 0.01);
        assert!((latencies.max_ms() - 50.0).abs() < 0.1);
        assert_eq!(Latencies::default().json()["p99_ms"], Value::Null);
        assert_eq!(round(1.23456, 2), 1.23);
    }
}
