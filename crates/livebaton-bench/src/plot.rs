//! `plot`: the results of `bench/run` (JSON lines) as SVG bar charts, written by hand (no plotting library): one
//! chart per scenario and metric, one bar per server at the median of its runs, every run as a dot on its bar.
//!
//! ```sh
//! target/release/livebaton-bench plot bench/results/idle-*.jsonl --out docs/bench
//! ```
//!
//! Lines are grouped by scenario and by *series*: the server, plus the livebaton option that changes what is
//! measured (`coalesce 15 ms` in the join storm). It also prints, per chart, a Markdown table of the medians and of
//! each series' ratio to livebaton's (for a metric where lower is better, `peer ÷ livebaton`: how many times more
//! the peer needs), which is what BENCHMARKS.md quotes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use serde_json::Value;

use crate::cli::PlotArgs;
use crate::stats::emit;

/// One chart: a metric of a scenario.
struct Metric {
    scenario: &'static str,
    /// Path into the JSON line (`latency_ms.p99_ms`).
    field: &'static str,
    /// File name part and title.
    slug: &'static str,
    title: &'static str,
    unit: &'static str,
    /// The field's value times this is charted, in `unit`.
    scale: f64,
}

const METRICS: &[Metric] = &[
    Metric {
        scenario: "idle",
        field: "kib_per_connection",
        slug: "rss",
        title: "Server RSS per idle connection in one presence room",
        unit: "KiB",
        scale: 1.0,
    },
    Metric {
        scenario: "idle",
        field: "rss_after_kib",
        slug: "rss-total",
        title: "Server RSS with the idle clients connected (whole process)",
        unit: "MiB",
        scale: 1.0 / 1024.0,
    },
    Metric {
        scenario: "join-storm",
        field: "server_cpu_secs",
        slug: "cpu",
        title: "Server CPU for a join storm (every client gets every member)",
        unit: "CPU s",
        scale: 1.0,
    },
    Metric {
        scenario: "join-storm",
        field: "all_complete_ms",
        slug: "complete",
        title: "Join storm: until every client's presence list is complete",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "fanout",
        field: "server_cpu_us_per_delivery",
        slug: "cpu",
        title: "Fan-out: server CPU per delivered message",
        unit: "µs",
        scale: 1.0,
    },
    Metric {
        scenario: "fanout",
        field: "latency_ms.p50_ms",
        slug: "p50",
        title: "Fan-out latency, p50",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "fanout",
        field: "latency_ms.p99_ms",
        slug: "p99",
        title: "Fan-out latency, p99",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "handoff",
        field: "handoff_ms.p99_ms",
        slug: "p99",
        title: "Owner leaves → next in line promoted, p99",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "form-sync",
        field: "draft_ms.p99_ms",
        slug: "p99",
        title: "Owner's draft → a spectator has it, p99",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "cross-node",
        field: "promotion_ms.p99_ms",
        slug: "promotion-p99",
        title: "Two nodes: owner leaves on one → next in line promoted on the other, p99",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "cross-node",
        field: "draft_other_node_ms.p99_ms",
        slug: "draft-p99",
        title: "Two nodes: owner's draft → a spectator on the other node, p99",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "cross-node",
        field: "broadcast_ms.p99_ms",
        slug: "broadcast-p99",
        title: "Two nodes: a broadcast on one → a subscriber on the other, p99",
        unit: "ms",
        scale: 1.0,
    },
    Metric {
        scenario: "reconnect-storm",
        field: "all_back_secs",
        slug: "back",
        title: "Reconnect storm: SIGTERM → every phoenix.js client back and rejoined",
        unit: "s",
        scale: 1.0,
    },
    Metric {
        scenario: "reconnect-storm",
        field: "closes_per_client",
        slug: "closes",
        title: "Reconnect storm: closes of open connections per client (1 is the SIGTERM's)",
        unit: "closes",
        scale: 1.0,
    },
    Metric {
        scenario: "churn",
        field: "server_cpu_ms_per_cycle",
        slug: "cpu",
        title: "Churn: server CPU per connect → join → leave or close cycle",
        unit: "ms",
        scale: 1.0,
    },
];

/// The rows of each scenario's details table: a label and a path into the JSON line.
const DETAILS: &[(&str, &[(&str, &str)])] = &[
    (
        "idle",
        &[
            ("KiB per connection", "kib_per_connection"),
            ("RSS before the clients (KiB)", "rss_before_kib"),
            ("RSS with the clients (KiB)", "rss_after_kib"),
            ("joined in (s)", "joined_secs"),
            ("failed", "failed"),
            ("closed early", "closed_early"),
        ],
    ),
    (
        "join-storm",
        &[
            ("server CPU (s)", "server_cpu_secs"),
            ("of it kernel (s)", "server_system_cpu_secs"),
            ("every list complete (ms)", "all_complete_ms"),
            ("a client complete, p50 (ms)", "complete_ms.p50_ms"),
            ("join reply, p50 (ms)", "join_reply_ms.p50_ms"),
            ("presence metas delivered", "presence_metas_delivered"),
            ("frames per client", "frames_per_client"),
            ("bytes received", "bytes_received"),
            ("the tool's CPU (s)", "client_cpu_secs"),
            ("failed", "failed"),
        ],
    ),
    (
        "fanout",
        &[
            ("server CPU per delivery (µs)", "server_cpu_us_per_delivery"),
            ("server CPU (s)", "server_cpu_secs"),
            ("of it kernel (s)", "server_system_cpu_secs"),
            ("deliveries/s", "deliveries_per_sec"),
            ("missing", "missing"),
            ("lag resyncs", "lag_resyncs"),
            ("p50 (ms)", "latency_ms.p50_ms"),
            ("p90 (ms)", "latency_ms.p90_ms"),
            ("p99 (ms)", "latency_ms.p99_ms"),
            ("max (ms)", "latency_ms.max_ms"),
            ("the tool's CPU (s)", "client_cpu_secs"),
            ("joining, not measured (s)", "joined_secs"),
        ],
    ),
    (
        "handoff",
        &[
            ("hand-over p50 (ms)", "handoff_ms.p50_ms"),
            ("hand-over p99 (ms)", "handoff_ms.p99_ms"),
            ("hand-over max (ms)", "handoff_ms.max_ms"),
            ("every member told, p99 (ms)", "all_notified_ms.p99_ms"),
            ("owner_changed to the others, p50 (ms)", "owner_changed_ms.p50_ms"),
            ("owner_changed to the last rejoiner, p50 (ms)", "owner_changed_to_last_rejoiner_ms.p50_ms"),
            ("rejoin reply, p50 (ms)", "rejoin_reply_ms.p50_ms"),
            ("the server's own hand-over metric, mean (ms)", "server_handoff_metric.mean_ms"),
        ],
    ),
    (
        "form-sync",
        &[
            ("draft to a spectator, p50 (ms)", "draft_ms.p50_ms"),
            ("p90 (ms)", "draft_ms.p90_ms"),
            ("p99 (ms)", "draft_ms.p99_ms"),
            ("max (ms)", "draft_ms.max_ms"),
            ("last spectator of a round, p99 (ms)", "last_spectator_ms.p99_ms"),
            ("the owner's reply, p50 (ms)", "owner_reply_ms.p50_ms"),
        ],
    ),
    (
        "cross-node",
        &[
            ("promotion on the other node, p50 (ms)", "promotion_ms.p50_ms"),
            ("p99 (ms)", "promotion_ms.p99_ms"),
            ("max (ms)", "promotion_ms.max_ms"),
            ("every member told, p99 (ms)", "all_notified_ms.p99_ms"),
            ("draft to the other node, p50 (ms)", "draft_other_node_ms.p50_ms"),
            ("draft to the other node, p99 (ms)", "draft_other_node_ms.p99_ms"),
            ("draft on the owner's node, p50 (ms)", "draft_same_node_ms.p50_ms"),
            ("draft on the owner's node, p99 (ms)", "draft_same_node_ms.p99_ms"),
            ("broadcast to the other node, p50 (ms)", "broadcast_ms.p50_ms"),
            ("broadcast to the other node, p99 (ms)", "broadcast_ms.p99_ms"),
            ("broadcast to the other node, max (ms)", "broadcast_ms.max_ms"),
        ],
    ),
    (
        "reconnect-storm",
        &[
            ("server stopped (s)", "stop_secs"),
            ("listening again (s after SIGTERM)", "listening_after_secs"),
            ("every client back and rejoined (s after SIGTERM)", "all_back_secs"),
            ("a client back, p50 (s)", "rejoined_secs.p50"),
            ("a client back, p90 (s)", "rejoined_secs.p90"),
            ("last close, open or rejoin (s)", "settled_secs"),
            ("closes of open connections", "closes"),
            ("closes per client", "closes_per_client"),
            ("of them 1001", "closes_by_code.1001"),
            ("of them 1008", "closes_by_code.1008"),
            ("of them 1000 (phoenix.js heartbeat timeout)", "closes_by_code.1000"),
            ("clients closed more than once", "clients_closed_more_than_once"),
            ("failed attempts while down", "failed_attempts"),
            ("slow consumers logged", "slow_consumers_logged"),
            ("most owners of a session at once, after all were back", "most_owners_after_back"),
            ("sessions whose owner a fresh observer disagrees with", "sessions_wrong"),
            ("clients not back", "not_back"),
            ("the tool's CPU (s)", "tool_cpu_secs"),
            ("the new server's CPU (s)", "server_cpu_secs_since_restart"),
        ],
    ),
    (
        "churn",
        &[
            ("cycles per second", "cycles_per_sec"),
            ("server CPU per cycle (ms)", "server_cpu_ms_per_cycle"),
            ("join reply, p50 (ms)", "join_reply_ms.p50_ms"),
            ("join reply, p99 (ms)", "join_reply_ms.p99_ms"),
            ("VmRSS with the stayers (KiB)", "rss_after_stayers_kib"),
            ("VmRSS at the plateau (KiB)", "rss_plateau_kib"),
            ("VmRSS peak (KiB)", "rss_peak_kib"),
            ("VmRSS at the end (KiB)", "rss_end_kib"),
            ("end ÷ plateau, VmRSS", "rss_end_ratio"),
            ("end ÷ plateau, RssAnon", "rss_anon_end_ratio"),
            ("staying lists wrong at the end", "wrong_lists_at_end"),
            ("observer: ghosts", "observer_ghosts"),
            ("observer: missing", "observer_missing"),
            ("livebaton_presences at the end", "presences_gauge"),
            ("cycles failed", "cycles_failed"),
            ("staying clients closed", "stayers_closed"),
            ("the tool's CPU (s)", "client_cpu_secs"),
        ],
    ),
];

/// The order series are drawn in: livebaton first, then the peers.
const SERVERS: &[&str] = &["livebaton", "soketi", "sockudo", "socketio"];

pub fn run(args: &PlotArgs) -> anyhow::Result<bool> {
    let mut lines = Vec::new();
    for path in &args.results {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        lines.extend(text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()));
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    // Runs of one scenario with different loads (fan-out rates) are charted apart.
    let mut groups: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for line in lines {
        let Some(scenario) = line["scenario"].as_str() else { continue };
        groups.entry((scenario.to_owned(), load_key(&line))).or_default().push(line);
    }
    let mut written = 0;
    for ((scenario, key), lines) in &groups {
        for metric in METRICS.iter().filter(|metric| metric.scenario == scenario) {
            let runs = collect(lines, metric);
            if runs.is_empty() {
                continue;
            }
            let subtitle = subtitle(lines, metric.scenario);
            let name = match key.as_str() {
                "" => format!("{scenario}-{}.svg", metric.slug),
                key => format!("{scenario}-{key}-{}.svg", metric.slug),
            };
            let path = args.out.join(name);
            std::fs::write(&path, chart(metric, &subtitle, &runs))
                .with_context(|| format!("writing {}", path.display()))?;
            emit(&format!("{}", path.display()));
            emit(&table(metric, &runs));
            written += 1;
        }
    }
    for ((scenario, key), lines) in &groups {
        if let Some(table) = details(scenario, key, lines) {
            emit(&table);
        }
    }
    anyhow::ensure!(written > 0, "no results to plot in {:?}", args.results);
    Ok(true)
}

/// What sets a run's load apart within its scenario: `<subscribers>x<rate>` for fan-out, nothing otherwise.
fn load_key(line: &Value) -> String {
    match line["scenario"].as_str() {
        Some("fanout") => format!("{}x{}", line["subscribers"], line["rate"]),
        Some("reconnect-storm") => format!("{}-clients", line["clients"]),
        _ => String::new(),
    }
}

/// The series' name: the server, and the variant of its settings (the reconnect storm's `variant`, livebaton's
/// join-storm coalescing window) when set.
fn series(line: &Value) -> Option<String> {
    let server = line["server"].as_str()?;
    if let Some(variant) = line["variant"].as_str() {
        return Some(format!("{server}, {variant}"));
    }
    match line["coalesce_ms"].as_u64() {
        Some(ms) if line["scenario"] == "join-storm" => Some(format!("{server}, coalesce {ms} ms")),
        _ => Some(server.to_owned()),
    }
}

fn field(line: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(line, |value, key| value.get(key))?.as_f64()
}

/// Each series' values of `metric`, series in drawing order.
fn collect(lines: &[Value], metric: &Metric) -> Vec<(String, Vec<f64>)> {
    let mut by_series: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    for line in lines.iter().filter(|line| line["scenario"] == metric.scenario) {
        let (Some(name), Some(value)) = (series(line), field(line, metric.field)) else { continue };
        let rank = SERVERS.iter().position(|server| name.starts_with(server)).unwrap_or(SERVERS.len());
        by_series.entry((rank, name)).or_default().push(value * metric.scale);
    }
    by_series.into_iter().map(|((_, name), values)| (name, values)).collect()
}

/// What the runs had in common: clients, rate, and when.
fn subtitle(lines: &[Value], scenario: &str) -> String {
    let Some(line) = lines.iter().find(|line| line["scenario"] == scenario) else { return String::new() };
    let text = match scenario {
        "idle" => format!("{} clients joined to one presence room", line["clients"]),
        "join-storm" => format!("{} clients join one presence room at once", line["clients"]),
        "fanout" => format!("{} subscribers, {} msg/s for {} s", line["subscribers"], line["rate"], line["seconds"]),
        "handoff" => format!("{} editors, {} hand-overs", line["editors"], line["rounds"]),
        "form-sync" => format!("owner and {} spectators, {} drafts", line["spectators"], line["rounds"]),
        "cross-node" => format!("two nodes over Redis, {} editors", line["editors"]),
        "reconnect-storm" => format!(
            "{} phoenix.js clients in one room, {} editing sessions; server restarted with SIGTERM",
            line["clients"], line["sessions"]
        ),
        "churn" => {
            format!("{} staying clients, {} cycles, {} at a time", line["stay"], line["cycles"], line["concurrency"])
        }
        _ => String::new(),
    };
    format!("{text}; server and tool on separate cores; bar: median, dots: runs; lower is better")
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A Markdown table: series, median, runs, ratio to livebaton's median.
fn table(metric: &Metric, runs: &[(String, Vec<f64>)]) -> String {
    let base = runs.iter().find(|(name, _)| name.starts_with("livebaton")).map(|(_, values)| median(values));
    let mut out = format!(
        "\n{} ({}):\n\n| server | median | runs | ÷ livebaton |\n|---|---|---|---|\n",
        metric.title, metric.unit
    );
    for (name, values) in runs {
        let m = median(values);
        let each = values.iter().map(|value| number(*value)).collect::<Vec<_>>().join(", ");
        let ratio = base.filter(|base| *base > 0.0).map_or("".to_owned(), |base| format!("{:.2}×", m / base));
        let _ = writeln!(out, "| {name} | {} {} | {each} | {ratio} |", number(m), metric.unit);
    }
    out
}

/// The scenario's details table: one column per series, each cell the median and, when there are several runs,
/// every run in brackets.
fn details(scenario: &str, key: &str, lines: &[Value]) -> Option<String> {
    let (_, rows) = DETAILS.iter().find(|(name, _)| *name == scenario)?;
    let mut by_series: BTreeMap<(usize, String), Vec<&Value>> = BTreeMap::new();
    for line in lines {
        let Some(name) = series(line) else { continue };
        let rank = SERVERS.iter().position(|server| name.starts_with(server)).unwrap_or(SERVERS.len());
        by_series.entry((rank, name)).or_default().push(line);
    }
    let title = if key.is_empty() { scenario.to_owned() } else { format!("{scenario} {key}") };
    let mut out = format!("\n{title}, details (median [runs]):\n\n|");
    for (_, name) in by_series.keys() {
        let _ = write!(out, " | {name}");
    }
    out.push_str(" |\n|---|");
    out.push_str(&"---|".repeat(by_series.len()));
    out.push('\n');
    for (label, path) in rows.iter() {
        let _ = write!(out, "| {label} |");
        for runs in by_series.values() {
            let values: Vec<f64> = runs.iter().filter_map(|line| field(line, path)).collect();
            let cell = match values.len() {
                0 => "–".to_owned(),
                1 => count_or_number(values[0]),
                _ => format!(
                    "{} [{}]",
                    count_or_number(median(&values)),
                    values.iter().map(|value| count_or_number(*value)).collect::<Vec<_>>().join(", ")
                ),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    Some(out)
}

/// A whole number as it is (counts, bytes), anything else with 3 significant digits.
fn count_or_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { number(value) }
}

/// A value with 3 significant digits.
fn number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() {
        return format!("{value}");
    }
    let digits = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    format!("{value:.digits$}")
}

/// Axis ticks: 0 to a round maximum at or above `max`, in steps of 1, 2 or 5 × 10ⁿ.
fn ticks(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let rough = max / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|factor| factor * power).find(|step| *step >= rough).unwrap_or(power);
    ((max / step).ceil() * step, step)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const PALETTE: &[&str] = &["#2a6f97", "#c0504d", "#e3a21a", "#6a8d3a", "#7d5ba6", "#4f4f4f"];

/// The SVG: a horizontal bar per series.
fn chart(metric: &Metric, subtitle: &str, runs: &[(String, Vec<f64>)]) -> String {
    let (width, left, right, top, bar, gap) = (760.0, 210.0, 90.0, 64.0, 22.0, 12.0);
    let plot_width = width - left - right;
    let height = top + runs.len() as f64 * (bar + gap) + 40.0;
    let max = runs.iter().flat_map(|(_, values)| values.iter().copied()).fold(0.0, f64::max);
    let (axis_max, step) = ticks(max);
    let x = |value: f64| left + plot_width * value / axis_max;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="12" y="22" font-size="15" font-weight="bold">{}</text>"#, escape(metric.title));
    let _ = writeln!(svg, r##"<text x="12" y="40" fill="#555">{}</text>"##, escape(subtitle));
    let axis_y = top + runs.len() as f64 * (bar + gap);
    let mut tick = 0.0;
    while tick <= axis_max + step / 2.0 {
        let tx = x(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{axis_y:.1}" stroke="#ddd"/>"##,
            top - 6.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            axis_y + 16.0,
            number(tick)
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
        left + plot_width / 2.0,
        axis_y + 32.0,
        escape(metric.unit)
    );
    for (index, (name, values)) in runs.iter().enumerate() {
        let y = top + index as f64 * (bar + gap);
        let color = PALETTE[index % PALETTE.len()];
        let m = median(values);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + bar / 2.0 + 4.0,
            escape(name)
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{left:.1}" y="{y:.1}" width="{:.1}" height="{bar}" fill="{color}" fill-opacity="0.85"/>"#,
            (x(m) - left).max(0.5)
        );
        for value in values {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="white" stroke="#222"/>"##,
                x(*value),
                y + bar / 2.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{} {}</text>"#,
            x(values.iter().copied().fold(m, f64::max)) + 8.0,
            y + bar / 2.0 + 4.0,
            number(m),
            escape(metric.unit)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// For tests: the chart of `lines` for the first metric of `scenario`.
#[cfg(test)]
fn chart_of(lines: &[Value], scenario: &str) -> Option<String> {
    let metric = METRICS.iter().find(|metric| metric.scenario == scenario)?;
    Some(chart(metric, "", &collect(lines, metric)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn series_are_grouped_ordered_and_summarised() {
        let lines = vec![
            json!({"scenario": "idle", "server": "soketi", "kib_per_connection": 12.0}),
            json!({"scenario": "idle", "server": "livebaton", "kib_per_connection": 4.0}),
            json!({"scenario": "idle", "server": "livebaton", "kib_per_connection": 6.0}),
            json!({"scenario": "idle", "server": "livebaton", "kib_per_connection": 5.0}),
            json!({"scenario": "fanout", "server": "livebaton", "latency_ms": {"p99_ms": 3.5}}),
        ];
        let metric = &METRICS[0];
        let runs = collect(&lines, metric);
        assert_eq!(runs[0], ("livebaton".to_owned(), vec![4.0, 6.0, 5.0]));
        assert_eq!(runs[1].0, "soketi");
        assert_eq!(median(&runs[0].1), 5.0);
        assert!(table(metric, &runs).contains("| soketi | 12.0 KiB | 12.0 | 2.40× |"));
        let svg = chart_of(&lines, "idle").unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(field(&lines[4], "latency_ms.p99_ms"), Some(3.5));
        assert_eq!(load_key(&json!({"scenario": "fanout", "subscribers": 1000, "rate": 50})), "1000x50");
        assert_eq!(load_key(&lines[0]), "");
        let storm = json!({"scenario": "join-storm", "server": "livebaton", "coalesce_ms": 15});
        assert_eq!(series(&storm).as_deref(), Some("livebaton, coalesce 15 ms"));
        let restart = json!({"scenario": "reconnect-storm", "server": "livebaton", "variant": "default", "clients": 5000,
            "closes_by_code": {"1001": 5000}});
        assert_eq!(series(&restart).as_deref(), Some("livebaton, default"));
        assert_eq!(load_key(&restart), "5000-clients");
        assert_eq!(field(&restart, "closes_by_code.1001"), Some(5000.0));
    }

    #[test]
    fn details_have_a_column_per_series_and_the_median_with_every_run() {
        let lines = vec![
            json!({"scenario": "idle", "server": "livebaton", "kib_per_connection": 4.0, "failed": 0}),
            json!({"scenario": "idle", "server": "livebaton", "kib_per_connection": 6.5, "failed": 0}),
            json!({"scenario": "idle", "server": "livebaton", "kib_per_connection": 5.0, "failed": 0}),
            json!({"scenario": "idle", "server": "soketi", "kib_per_connection": 12.0, "failed": 1}),
        ];
        let table = details("idle", "", &lines).unwrap();
        assert!(table.contains("| | livebaton | soketi |"), "{table}");
        assert!(table.contains("| KiB per connection | 5 [4, 6.50, 5] | 12 |"), "{table}");
        assert!(table.contains("| failed | 0 [0, 0, 0] | 1 |"), "{table}");
        assert!(table.contains("| joined in (s) | – | – |"), "{table}");
        assert!(details("plot", "", &lines).is_none());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(13.0), (15.0, 5.0));
        assert_eq!(ticks(0.42), (0.5, 0.1));
        assert_eq!(ticks(190.0), (200.0, 50.0));
        assert_eq!(median(&[1.0, 3.0]), 2.0);
        assert_eq!(number(16.4321), "16.4");
        assert_eq!(number(0.49), "0.490");
        assert_eq!(number(-0.0), "0");
    }
}
