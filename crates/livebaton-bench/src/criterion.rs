//! `livebaton-bench criterion`: the engine benchmarks' results (`cargo bench -p livebaton --bench engine`) as the
//! Markdown table BENCHMARKS.md shows, read from criterion's `<dir>/<benchmark id>/new/estimates.json` (times in ns).
//!
//! The Phoenix.Presence column is the reference measured once on this kind of machine with the real Phoenix.Presence
//! on Phoenix.Tracker (`/work/shared/reference/`); it is not re-measured here, since it needs an Erlang/Elixir
//! install that the project does not make.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::cli::CriterionArgs;

/// What a benchmark has to meet (the targets of the engine issue).
#[derive(Clone, Copy)]
enum Target {
    /// At least this many times faster than Phoenix.Presence.
    TimesPhoenix(f64),
    /// At most this many ms.
    AtMostMs(f64),
}

/// Phoenix.Presence's time for the same operation, in ms, and the target, if there is one.
const REFERENCE: &[(&str, f64, Option<Target>)] = &[
    ("presence/track_10k", 352.0, Some(Target::TimesPhoenix(20.0))),
    ("presence/list_10k", 19.6, Some(Target::AtMostMs(1.0))),
    ("presence/subscriber_receives_10k_joins", 496.0, None),
    ("presence/untrack_10k", 271.0, Some(Target::TimesPhoenix(20.0))),
];

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

pub fn run(args: &CriterionArgs) -> anyhow::Result<bool> {
    let mut found = Vec::new();
    collect(&args.dir, &args.dir, &mut found)?;
    if found.is_empty() {
        bail!("no criterion results under {}: run `cargo bench -p livebaton --bench engine` first", args.dir.display());
    }
    found.sort();
    println!("| benchmark | mean | median | 95 % interval of the mean | Phoenix.Presence (reference) | ratio |");
    println!("|---|---|---|---|---|---|");
    for (id, path) in found {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let estimates: Estimates =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mean = estimates.mean.point_estimate;
        let interval = &estimates.mean.confidence_interval;
        let (reference, ratio) = match REFERENCE.iter().find(|(name, _, _)| *name == id) {
            Some((_, phoenix_ms, target)) => {
                let ratio = phoenix_ms * 1e6 / mean;
                let verdict = |met: bool| if met { "met" } else { "**not met**" };
                let verdict = match target {
                    Some(Target::TimesPhoenix(times)) => format!(" (target ≥ {times}×: {})", verdict(ratio >= *times)),
                    Some(Target::AtMostMs(ms)) => format!(" (target ≤ {ms} ms: {})", verdict(mean <= ms * 1e6)),
                    None => String::new(),
                };
                (format!("{phoenix_ms} ms"), format!("{ratio:.1}×{verdict}"))
            }
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| `{id}` | {} | {} | [{}, {}] | {reference} | {ratio} |",
            time(mean),
            time(estimates.median.point_estimate),
            time(interval.lower_bound),
            time(interval.upper_bound)
        );
    }
    Ok(true)
}

/// Every `<id>/new/estimates.json` below `root`, with `<id>` relative to `root`.
fn collect(root: &Path, dir: &Path, found: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if !path.is_dir() || path.file_name().is_some_and(|name| name == "report") {
            continue;
        }
        let estimates = path.join("new").join("estimates.json");
        if estimates.is_file() {
            let id = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            found.push((id, estimates));
        } else {
            collect(root, &path, found)?;
        }
    }
    Ok(())
}

/// `11.5 ms`, `436 µs`, `52 ns`: three significant digits.
fn time(nanos: f64) -> String {
    let (value, unit) = if nanos >= 1e6 {
        (nanos / 1e6, "ms")
    } else if nanos >= 1e3 {
        (nanos / 1e3, "µs")
    } else {
        (nanos, "ns")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_three_significant_digits_and_a_unit() {
        assert_eq!(time(11_480_000.0), "11.5 ms");
        assert_eq!(time(436_200.0), "436 µs");
        assert_eq!(time(1_234.0), "1.23 µs");
        assert_eq!(time(52.0), "52.0 ns");
    }

    #[test]
    fn finds_every_benchmark_below_the_directory_but_not_the_reports() {
        let root = std::env::temp_dir().join(format!("livebaton-criterion-test-{}", std::process::id()));
        for id in ["presence/list_10k", "pubsub/broadcast_10k_subscribers"] {
            let new = root.join(id).join("new");
            std::fs::create_dir_all(&new).unwrap();
            std::fs::write(new.join("estimates.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(root.join("report")).unwrap();
        let mut found = Vec::new();
        collect(&root, &root, &mut found).unwrap();
        found.sort();
        let ids: Vec<_> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["presence/list_10k", "pubsub/broadcast_10k_subscribers"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
