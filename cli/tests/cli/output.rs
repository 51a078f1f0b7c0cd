//! What people read and write: table output (times, sizes, durations, bodies), `--at` forms,
//! `--group-by F --limit 0`, and `strata stats` from the files.

use crate::{strata, tempdir};

fn ok(data: &std::path::Path, args: &[&str]) -> String {
    let run = strata(data, args, None);
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// An RFC 3339 UTC time with microseconds, as tables print them.
fn is_rfc3339(s: &str) -> bool {
    s.len() == 27 && strata::parse_rfc3339(s).is_ok() && s.ends_with('Z')
}

/// Regression: a table printed the whole body on one line (a 2 KB body was a 2 KB line), and
/// `get` printed it the same way.
#[test]
fn tables_print_rfc3339_times_and_cut_or_pretty_bodies() {
    let dir = tempdir();
    let long = "word ".repeat(400);
    let body = format!(r#"{{"name":"ada","notes":"{long}"}}"#);
    ok(dir.path(), &["put", "/u/ada", "user", &body]);
    ok(dir.path(), &["patch", "/u/ada", r#"{"age":36}"#]);

    let history = ok(dir.path(), &["history", "/u/ada"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{history}");
    for row in &rows {
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert!(is_rfc3339(fields[3]), "{row}");
        assert!(row.ends_with('…'), "{row}");
        assert!(row.chars().count() < 160, "{} characters: {row}", row.len());
    }
    let list = ok(dir.path(), &["list", "/u/"]);
    assert!(list.lines().nth(1).unwrap().ends_with('…'), "{list}");
    let query = ok(dir.path(), &["query", "name:ada"]);
    assert!(query.lines().nth(1).unwrap().ends_with('…'), "{query}");

    // One document: the body pretty-printed under its row, whole.
    let get = ok(dir.path(), &["get", "/u/ada"]);
    // Keys in the order written (the patch's new key last).
    assert!(get.contains("\n  {\n    \"name\": \"ada\",\n"), "{get}");
    assert!(get.contains("\n    \"age\": 36\n  }"), "{get}");
    assert!(get.contains(long.trim_end()), "the whole body");
    // JSON keeps raw numbers and whole bodies.
    let json = strata(dir.path(), &["--format", "json", "get", "/u/ada"], None).json();
    let micros = json["documents"][0]["meta"]["update_time_micros"]
        .as_u64()
        .unwrap();
    assert_eq!(json["documents"][0]["body"]["notes"], long);
    // The printed time is the exact microsecond: pasted into --at it finds the version.
    let printed = strata::format_rfc3339(micros);
    assert!(get.contains(&printed), "{get}");
    let at = ok(
        dir.path(),
        &["--format", "json", "get", "/u/ada", "--at", &printed],
    );
    assert!(at.contains(r#""version":1"#), "{at}");
}

/// Regression: `--at` took only full RFC 3339 or microseconds; dates, minutes and relative
/// times (`-2h`) were refused.
#[test]
fn at_takes_dates_minutes_micros_and_relative_times() {
    let dir = tempdir();
    let import = [
        r#"{"id":"/a","kind":"k","ts":"2023-06-09T10:00:00Z","doc":{"v":1}}"#,
        r#"{"id":"/a","op":"patch","ts":"2023-06-10T11:30:00Z","doc":{"v":2}}"#,
    ]
    .join("\n");
    let run = strata(dir.path(), &["import", "-"], Some(import.as_bytes()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let version_at = |at: &str| -> Option<u64> {
        let run = strata(
            dir.path(),
            &["--format", "json", "get", "/a", "--at", at],
            None,
        );
        match run.code {
            0 => run.json()["documents"][0]["meta"]["version"].as_u64(),
            3 => None,
            code => panic!("--at {at}: exit {code}: {}", run.stderr),
        }
    };
    assert_eq!(version_at("2023-06-09"), None);
    assert_eq!(version_at("2023-06-10"), Some(0));
    assert_eq!(version_at("2023-06-10T11:29"), Some(0));
    assert_eq!(version_at("2023-06-10T11:30"), Some(1));
    assert_eq!(version_at("2023-06-10T12:30:00+01:00"), Some(1));
    assert_eq!(version_at("1686396600000000"), Some(1));
    assert_eq!(version_at("-1s"), Some(1));
    assert_eq!(version_at("-7d"), Some(1));
    // 2023-06-09T10:00Z is far more than 24 hours ago, so a day ago the patch is there too;
    // 100000 days ago is before 1970.
    assert_eq!(version_at("-24h"), Some(1));
    let before = strata(dir.path(), &["get", "/a", "--at", "-100000d"], None);
    assert_eq!(before.code, 2, "{}", before.stderr);
    assert!(before.stderr.contains("before 1970"), "{}", before.stderr);
    // Query and restore read the same forms.
    let q = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "query",
            "*",
            "--at",
            "2023-06-10",
            "--count",
        ],
        None,
    );
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert_eq!(q.json()["count"], 1);
    for bad in ["yesterday", "2023-06-31", "-2w", "2023-06-10T12"] {
        for command in [&["get", "/a"][..], &["query", "*"]] {
            let mut args = command.to_vec();
            args.extend(["--at", bad]);
            let run = strata(dir.path(), &args, None);
            assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("{bad:?}")) && run.stderr.contains("-7d"),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
}

/// Regression: `--group-by F --limit 0` printed the first documents of every group.
#[test]
fn group_by_with_limit_zero_prints_counts_only() {
    let dir = tempdir();
    for (id, section) in [("/p/1", "python"), ("/p/2", "python"), ("/p/3", "rust")] {
        ok(
            dir.path(),
            &["put", id, "pkg", &format!(r#"{{"section":"{section}"}}"#)],
        );
    }
    let table = ok(
        dir.path(),
        &["query", "*", "--group-by", "section", "--limit", "0"],
    );
    assert_eq!(
        table.lines().collect::<Vec<_>>(),
        [
            "group \"python\" (2 matching)",
            "group \"rust\" (1 matching)"
        ],
        "{table}"
    );
    let json = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "query",
            "*",
            "--group-by",
            "section",
            "--limit",
            "0",
        ],
        None,
    )
    .json();
    assert_eq!(json["groups"][0]["count"], 2);
    assert_eq!(json["groups"][0]["documents"], serde_json::json!([]));
    assert_eq!(json["documents"], serde_json::json!([]));
    // With a limit, the groups keep their first documents.
    let with_docs = ok(dir.path(), &["query", "*", "--group-by", "section"]);
    assert!(with_docs.contains("/p/1"), "{with_docs}");
}

/// Regression: `strata stats` printed the per-process write and query latencies and
/// maintenance counters, always zero in the fresh process that prints them, and sizes in bytes.
#[test]
fn stats_prints_what_the_files_say() {
    let dir = tempdir();
    let pad = "x".repeat(3000);
    for i in 0..5 {
        ok(
            dir.path(),
            &[
                "put",
                &format!("/d/{i}"),
                "doc",
                &format!(r#"{{"pad":"{pad}"}}"#),
            ],
        );
    }
    ok(dir.path(), &["delete", "/d/4"]);
    let table = ok(dir.path(), &["stats"]);
    assert!(table.contains("4 current, 5 ever (1 deleted)"), "{table}");
    assert!(table.contains("versions           6"), "{table}");
    assert!(table.contains("history            complete"), "{table}");
    assert!(table.contains("index lag"), "{table}");
    let disk = table
        .lines()
        .find(|l| l.starts_with("disk"))
        .unwrap_or_else(|| panic!("a disk line: {table}"));
    assert!(disk.contains(" kB") && disk.contains("segments"), "{disk}");
    for per_process in ["p50", "p99", "writes", "queries", "compactions"] {
        assert!(!table.contains(per_process), "{per_process}: {table}");
    }
    assert!(!table.contains("background failure"), "{table}");
    let json = strata(dir.path(), &["--format", "json", "stats"], None).json();
    assert_eq!(json["versions"], 6);
    assert!(
        json["log_bytes"].as_u64().is_some_and(|b| b > 15_000),
        "{json}"
    );
    assert!(
        json.get("writes").is_none() && json.get("queries").is_none(),
        "{json}"
    );
    assert_eq!(json["background_failures"], serde_json::json!([]));
}
