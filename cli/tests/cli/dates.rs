//! Dates through the command line: body dates of every year in queries, and times given to
//! `--at`, `import`'s `ts` and `_updated` bounds read by one RFC 3339 rule.

use crate::{strata, tempdir};

const DATES: [&str; 5] = [
    "0001-01-01T00:00:00Z",
    "1600-06-01T00:00:00Z",
    "2020-01-01T00:00:00Z",
    "2300-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
];

/// Regression (issue 11 B): dates before 1677-09-21 or after 2262-04-11 overflowed tantivy's
/// nanosecond dates: `d:>=2000-…` counted 1600 and missed 2300 and 9999, sorts came out of
/// order, a term on 2300 found nothing (in debug builds the indexer panicked instead).
#[test]
fn dates_of_every_year_count_sort_and_match_after_a_rebuilt_index() {
    let dir = tempdir();
    for d in DATES {
        let run = strata(
            dir.path(),
            &[
                "put",
                &format!("/d/{d}"),
                "dated",
                &format!(r#"{{"d":"{d}"}}"#),
            ],
            None,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    // The committed index answers, not the tail: rebuild it, then ask.
    let run = strata(dir.path(), &["rebuild-index"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let query = |args: &[&str]| {
        let mut all = vec!["--format", "json", "query"];
        all.extend_from_slice(args);
        let run = strata(dir.path(), &all, None);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run.json()
    };
    assert_eq!(query(&["d:>=2000-01-01T00:00:00Z", "--count"])["count"], 3);
    assert_eq!(query(&["d:2300-01-01T00:00:00Z", "--count"])["count"], 1);
    let sorted = query(&["_kind:dated", "--sort", "d"]);
    let bodies: Vec<&str> = sorted["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["body"]["d"].as_str().expect("a date"))
        .collect();
    assert_eq!(bodies, DATES);
}

/// Regression (issue 11 G): `--at 2026-02-30T00:00:00Z` was accepted and read as March 2;
/// every time the CLI reads is now an error naming it if the date does not exist.
#[test]
fn impossible_times_are_usage_errors_naming_the_value() {
    let dir = tempdir();
    let run = strata(dir.path(), &["put", "/a", "doc", r#"{"n":1}"#], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let backup = tempdir();
    let backup_dir = backup.path().join("b");
    let run = strata(dir.path(), &["backup", backup_dir.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let restore_to = backup.path().join("r");
    for bad in [
        "2026-02-30T00:00:00Z",
        "2026-04-31T12:00:00+02:00",
        "2025-02-29T00:00:00Z",
        "2026-01-01T12:00:60Z",
        "2026-01-01T24:00:00Z",
    ] {
        for args in [
            vec!["get", "/a", "--at", bad],
            vec!["query", "*", "--at", bad],
            vec![
                "restore",
                backup_dir.to_str().unwrap(),
                restore_to.to_str().unwrap(),
                "--at",
                bad,
            ],
        ] {
            let run = strata(dir.path(), &args, None);
            assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
            assert!(run.stderr.contains(bad), "{args:?}: {}", run.stderr);
        }
        let line = format!(r#"{{"id":"/b","kind":"doc","ts":"{bad}","doc":{{}}}}"#);
        let run = strata(dir.path(), &["import", "-"], Some(line.as_bytes()));
        assert!(
            run.stderr.contains(bad) && run.stderr.contains("line 1"),
            "import: {}",
            run.stderr
        );
        let run = strata(dir.path(), &["query", &format!("_updated:>={bad}")], None);
        assert_eq!(run.code, 2, "{}", run.stderr);
    }
    assert!(!restore_to.exists(), "a refused restore wrote nothing");
    let run = strata(
        dir.path(),
        &["get", "/a", "--at", "2026-02-30T00:00:00Z"],
        None,
    );
    assert!(
        run.stderr.contains("february 2026 has 28 days"),
        "{}",
        run.stderr
    );
    // A leap second is a time (the end of 23:59:59), in lower case too.
    let run = strata(
        dir.path(),
        &["get", "/a", "--at", "2016-12-31t23:59:60z"],
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
}
