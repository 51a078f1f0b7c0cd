//! Prints the criterion results of `benches/storage.rs` (or, with `query`, of
//! `benches/query.rs`) as the markdown tables of `benches/RESULTS.md`: per workload and engine,
//! the median time per operation with its 95% confidence interval, the throughput at the median,
//! and the time relative to Strata's.
//!
//! `cargo run -p strata-benches --bin report [-- [query] [CRITERION_DIR]]` (default
//! `target/criterion`).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Workloads in the order of the table (criterion group names).
const GROUPS: [&str; 8] = [
    "commit_1_thread",
    "commit_8_threads",
    "ingest_batch_1000",
    "get_current",
    "get_current_raw",
    "get_as_of_time",
    "history_100_versions",
    "open_1m_versions",
];

/// Workloads of the query benchmarks, in the order of their table.
const QUERY_GROUPS: [&str; 14] = [
    "indexed_ingest",
    "current_term_count",
    "current_term_top10_by_size",
    "current_text_top10",
    "current_range_count",
    "current_bool_count",
    "as_of_term_count",
    "as_of_term_top10_by_size",
    "as_of_text_top10",
    "as_of_range_count",
    "as_of_bool_count",
    "page_1",
    "page_100",
    "write_then_query",
];

/// Engines; other rows are references (not engines).
const ENGINES: [&str; 3] = ["strata", "tantivy", "sqlite"];

/// Rows in the order of the table; reference rows (not engines) last.
const ROWS: [&str; 6] = [
    "strata",
    "tantivy",
    "sqlite",
    "append_fdatasync_only",
    "json_parse_only",
    "engine",
];

struct Row {
    name: String,
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
    elements: Option<f64>,
}

fn read_json(path: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

fn row(dir: &Path) -> Result<Row, Box<dyn std::error::Error>> {
    let estimates = read_json(&dir.join("new/estimates.json"))?;
    let benchmark = read_json(&dir.join("new/benchmark.json"))?;
    let median = &estimates["median"];
    let number = |v: &Value| v.as_f64().ok_or("a number in estimates.json");
    Ok(Row {
        name: benchmark["value_str"].as_str().unwrap_or("?").to_owned(),
        median_ns: number(&median["point_estimate"])?,
        low_ns: number(&median["confidence_interval"]["lower_bound"])?,
        high_ns: number(&median["confidence_interval"]["upper_bound"])?,
        elements: benchmark["throughput"]["Elements"].as_f64(),
    })
}

fn duration(ns: f64) -> String {
    match ns {
        ns if ns < 1e3 => format!("{ns:.0} ns"),
        ns if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        ns if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        ns => format!("{:.2} s", ns / 1e9),
    }
}

fn rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k/s", r / 1e3),
        r => format!("{r:.0} /s"),
    }
}

/// Three significant digits, so a ratio far below 1 still shows.
fn ratio(r: f64) -> String {
    let decimals = (2 - r.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{r:.decimals$}×")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let groups: &[&str] = if args.first().is_some_and(|a| a == "query") {
        args.remove(0);
        &QUERY_GROUPS
    } else {
        &GROUPS
    };
    let root = args
        .first()
        .map_or_else(|| PathBuf::from("target/criterion"), PathBuf::from);
    println!("| workload | engine | median per operation | 95% CI of the median | throughput at the median | time ÷ strata's |");
    println!("|---|---|---|---|---|---|");
    for &group in groups {
        let mut rows: Vec<Row> = std::fs::read_dir(root.join(group))
            .into_iter()
            .flatten()
            .filter_map(|entry| row(&entry.ok()?.path()).ok())
            .collect();
        rows.sort_by_key(|r| ROWS.iter().position(|&n| n == r.name).unwrap_or(ROWS.len()));
        let strata = rows
            .iter()
            .find(|r| r.name == "strata")
            .map(|r| r.median_ns);
        for r in &rows {
            let throughput = r
                .elements
                .map_or_else(|| "—".to_owned(), |n| rate(n / (r.median_ns / 1e9)));
            let ratio = strata.map_or_else(|| "—".to_owned(), |s| ratio(r.median_ns / s));
            let name = if ENGINES.contains(&r.name.as_str()) {
                r.name.clone()
            } else {
                format!("*{} (reference)*", r.name)
            };
            println!(
                "| {group} | {name} | {} | {} – {} | {throughput} | {ratio} |",
                duration(r.median_ns),
                duration(r.low_ns),
                duration(r.high_ns),
            );
        }
    }
    Ok(())
}
