//! `strata import`: JSON Lines in batches, bad lines reported by line number, exit codes.

use std::path::Path;

use serde_json::{json, Value};

use super::{fixture, strata, tempdir, Run};

/// `strata import` of a fixture under `tests/fixtures/import/`.
fn import(data: &Path, name: &str, extra: &[&str]) -> Run {
    let path = fixture(&format!("import/{name}"));
    let path = path.to_str().expect("a UTF-8 path");
    let mut args = vec!["import", path];
    args.extend_from_slice(extra);
    strata(data, &args, None)
}

/// `history ID` as (version, updated, deleted, body) tuples.
fn history(data: &Path, id: &str) -> Vec<(u64, String, bool, Value)> {
    let run = strata(data, &["--format", "json", "history", id], None);
    assert_eq!(run.code, 0, "history {id}: {}", run.stderr);
    run.json()["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| {
            (
                d["meta"]["version"].as_u64().expect("version"),
                d["meta"]["updated"].as_str().expect("updated").to_owned(),
                d["meta"]["deleted"].as_bool().expect("deleted"),
                d["body"].clone(),
            )
        })
        .collect()
}

/// The line numbers of the `line N: ...` reports on stderr, in order.
fn bad_lines(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.split_once(':')?.0.parse().ok())
        .collect()
}

/// The message reported for line `n`.
fn message(stderr: &str, n: u64) -> &str {
    let prefix = format!("line {n}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no report for line {n} in {stderr:?}"))
}

#[test]
fn mixed_puts_patches_deletes_with_times() {
    let dir = tempdir();
    let run = import(dir.path(), "mixed.jsonl", &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        run.stderr, "",
        "no progress or reports when stderr is not a terminal"
    );
    assert!(
        run.stdout
            .starts_with("8 lines read, 8 versions written, 0 bad lines"),
        "{}",
        run.stdout
    );

    assert_eq!(
        history(dir.path(), "/users/ada"),
        [
            (
                0,
                "2025-01-01T00:00:00.000000Z".to_owned(),
                false,
                json!({"name": "Ada", "langs": ["en"]})
            ),
            (
                1,
                "2025-01-02T00:00:00.000000Z".to_owned(),
                false,
                json!({"name": "Ada", "langs": ["en", "fr"], "age": 36})
            ),
            (
                2,
                "2025-01-04T00:00:00.250000Z".to_owned(),
                false,
                json!({"name": "Ada", "langs": ["en", "fr"]})
            ),
        ]
    );
    // Integer microseconds; a tombstone.
    assert_eq!(
        history(dir.path(), "/users/bob"),
        [
            (
                0,
                "2025-01-01T00:00:00.000000Z".to_owned(),
                false,
                json!({"name": "Bob"})
            ),
            (
                1,
                "2025-01-03T00:00:00.000000Z".to_owned(),
                true,
                Value::Null
            ),
        ]
    );
    // An offset is converted to UTC.
    assert_eq!(
        history(dir.path(), "/users/cy")[0].1,
        "2025-01-03T10:00:00.000000Z"
    );
    // Lines without ts get the clock's time; a put and a patch of one batch share it.
    let core = history(dir.path(), "/teams/core");
    assert_eq!(core.len(), 2);
    assert_eq!(core[0].1, core[1].1);
    assert!(core[0].1.as_str() > "2026-01-01", "{}", core[0].1);
    assert_eq!(
        core[1].3,
        json!({"members": ["/users/ada", "/users/cy"], "size": 2})
    );

    // Reads of the past see the imported times.
    let at = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "get",
            "/users/ada",
            "--at",
            "2025-01-02T12:00:00Z",
        ],
        None,
    );
    assert_eq!(at.code, 0, "{}", at.stderr);
    assert_eq!(at.json()["documents"][0]["meta"]["version"], 1);
    let bob = strata(dir.path(), &["get", "/users/bob"], None);
    assert_eq!(bob.code, 3, "deleted: not found");
    let bob_then = strata(
        dir.path(),
        &["get", "/users/bob", "--at", "2025-01-02T00:00:00Z"],
        None,
    );
    assert_eq!(bob_then.code, 0, "{}", bob_then.stderr);

    // The same file again: every line with a ts is now in the store's past.
    let again = import(dir.path(), "mixed.jsonl", &[]);
    assert_eq!(again.code, 2);
    assert_eq!(bad_lines(&again.stderr), [1, 2, 3, 5, 6, 7]);
    assert!(
        message(&again.stderr, 1).contains("is not later than the store's last update time"),
        "{}",
        again.stderr
    );
    assert_eq!(history(dir.path(), "/teams/core").len(), 4);
}

/// `bad.jsonl` followed by an invalid UTF-8 line, a line over the limit and a good line.
fn bad_input() -> Vec<u8> {
    let mut input = std::fs::read(fixture("import/bad.jsonl")).expect("the fixture");
    input.extend_from_slice(b"{\"id\":\"/b/16\",\"kind\":\"item\",\"doc\":{\"s\":\"\xff\xfe\"}}\n");
    // Over the default 16 MiB document limit plus the line slack (64 KiB).
    let big = "x".repeat((16 << 20) + (64 << 10));
    input.extend_from_slice(
        format!("{{\"id\":\"/b/17\",\"kind\":\"item\",\"doc\":{{\"s\":\"{big}\"}}}}\n").as_bytes(),
    );
    input.extend_from_slice(b"{\"id\":\"/b/18\",\"kind\":\"item\",\"doc\":{\"n\":18}}");
    input
}

const BAD: [u64; 13] = [2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 16, 17];

#[test]
fn bad_lines_are_reported_by_number_and_the_rest_imported() {
    let dir = tempdir();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, bad_input()).expect("input written");
    let data = dir.path().join("data");
    // Small batches, so bad lines fall in several batches, with good lines around them.
    let run = strata(
        &data,
        &["import", file.to_str().expect("UTF-8"), "--batch", "3"],
        None,
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(bad_lines(&run.stderr), BAD, "stderr: {}", run.stderr);
    let expected = [
        (2, "malformed JSON"),
        (3, "missing \"id\""),
        (4, "invalid kind \"\""),
        (5, "ts 2025-01-01T00:00:00.000000Z is not later than"),
        (7, "document /b/7 not found"),
        (8, "a merge patch must be a JSON object"),
        (9, "unknown op \"upsert\""),
        (10, "a line must be a JSON object"),
        (11, "unknown field \"body\""),
        (12, "bad time \"yesterday\""),
        (14, "a delete takes no \"doc\""),
        (16, "invalid UTF-8"),
        (17, "over the limit"),
    ];
    for (line, text) in expected {
        assert!(
            message(&run.stderr, line).contains(text),
            "line {line}: {:?} lacks {text:?}",
            message(&run.stderr, line)
        );
    }
    assert!(
        run.stderr
            .contains("strata: 13 of 18 lines were bad and not imported"),
        "{}",
        run.stderr
    );
    assert!(run
        .stdout
        .starts_with("18 lines read, 5 versions written, 13 bad lines"));

    let list = strata(&data, &["--format", "json", "list", "/b/"], None);
    let ids: Vec<String> = list.json()["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["meta"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["/b/1", "/b/13", "/b/18", "/b/6"]);
    assert_eq!(
        history(&data, "/b/6")
            .into_iter()
            .map(|h| h.3)
            .collect::<Vec<_>>(),
        [json!({"n": 6}), json!({"n": 6, "m": 1})]
    );
}

#[test]
fn json_summary_counts_and_lists_bad_lines() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let run = strata(
        &data,
        &["--format", "json", "import", "-"],
        Some(&bad_input()),
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    let summary = run.json();
    assert_eq!(summary["lines"], 18);
    assert_eq!(summary["written"], 5);
    assert_eq!(summary["bad"], 13);
    assert!(summary["seconds"].as_f64().is_some_and(|s| s >= 0.0));
    let errors = summary["errors"].as_array().expect("errors");
    let lines: Vec<u64> = errors
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, BAD);
    assert!(errors[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("malformed JSON")));
    // Stderr has the same reports.
    assert_eq!(bad_lines(&run.stderr), BAD);
}

#[test]
fn json_summary_lists_at_most_100_errors() {
    let dir = tempdir();
    let mut input = String::new();
    for i in 0..250 {
        input.push_str(&format!(
            "{{\"id\":\"/p/{i}\",\"op\":\"patch\",\"doc\":{{}}}}\n"
        ));
        input.push_str(&format!(
            "{{\"id\":\"/q/{i}\",\"kind\":\"k\",\"doc\":{{}}}}\n"
        ));
    }
    let run = strata(
        dir.path(),
        &["--format", "json", "import", "-", "--batch", "64"],
        Some(input.as_bytes()),
    );
    assert_eq!(run.code, 2);
    let summary = run.json();
    assert_eq!(summary["lines"], 500);
    assert_eq!(summary["written"], 250);
    assert_eq!(summary["bad"], 250);
    let errors = summary["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 100);
    assert_eq!(errors[99]["line"], 199);
    // Stderr lists the first 20 and sums up the others in one line.
    let listed = bad_lines(&run.stderr);
    assert_eq!(listed, (1..=20).map(|i| 2 * i - 1).collect::<Vec<u64>>());
    assert!(
        run.stderr
            .contains("... and 230 more bad lines (only the first 20 are listed)"),
        "{}",
        run.stderr
    );
}

#[test]
fn id_field_mode_reads_bare_documents() {
    let dir = tempdir();
    let run = import(
        dir.path(),
        "bare.jsonl",
        &["--id-field", "sku", "--kind", "product"],
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(bad_lines(&run.stderr), [3, 4]);
    assert!(message(&run.stderr, 3).contains("missing id field \"sku\""));
    assert!(message(&run.stderr, 4).contains("not a string"));
    // Two versions of A-1 in one batch.
    let a1 = history(dir.path(), "A-1");
    assert_eq!(a1.len(), 2);
    assert_eq!(a1[1].3, json!({"sku": "A-1", "name": "anvil", "price": 12}));
    assert_eq!(a1[0].1, a1[1].1);
    let a2 = strata(dir.path(), &["--format", "json", "get", "A-2"], None);
    assert_eq!(a2.json()["documents"][0]["meta"]["kind"], "product");

    let usage = import(dir.path(), "bare.jsonl", &["--id-field", "sku"]);
    assert_eq!(usage.code, 2, "--id-field needs --kind");
    assert!(usage.stderr.contains("--kind"), "{}", usage.stderr);
}

#[test]
fn stdin_input() {
    let dir = tempdir();
    let input = std::fs::read(fixture("import/bare.jsonl")).expect("the fixture");
    let run = strata(
        dir.path(),
        &["import", "-", "--id-field", "sku", "--kind", "product"],
        Some(&input),
    );
    assert_eq!(run.code, 2);
    assert!(run
        .stdout
        .starts_with("5 lines read, 3 versions written, 2 bad lines"));

    let good = b"{\"id\":\"/s/1\",\"kind\":\"k\",\"doc\":{\"a\":1}}\r\n\n{\"id\":\"/s/1\",\"op\":\"patch\",\"doc\":{\"b\":2}}";
    let run = strata(dir.path(), &["import", "-"], Some(good));
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(history(dir.path(), "/s/1")[1].3, json!({"a": 1, "b": 2}));
}

#[test]
fn a_bad_line_does_not_split_the_others_of_its_batch() {
    let dir = tempdir();
    let run = import(dir.path(), "same-id.jsonl", &[]);
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(bad_lines(&run.stderr), [2]);
    let a = history(dir.path(), "/d/a");
    let bodies: Vec<(u64, bool, Value)> = a.iter().map(|h| (h.0, h.2, h.3.clone())).collect();
    assert_eq!(
        bodies,
        [
            (0, false, json!({"n": 1})),
            (1, false, json!({"n": 1, "m": 2})),
            (2, true, Value::Null),
            (3, false, json!({"n": 3})),
            (4, false, json!({"n": 3, "o": 4})),
        ]
    );
    // One batch: one update time.
    assert!(a.iter().all(|h| h.1 == a[0].1), "{a:?}");
}

#[test]
fn lines_sharing_a_ts_share_a_batch_whatever_the_batch_size() {
    let dir = tempdir();
    let mut input = String::new();
    for line in std::fs::read_to_string(fixture("import/same-id.jsonl"))
        .expect("the fixture")
        .lines()
    {
        let mut v: Value = serde_json::from_str(line).expect("fixture JSON");
        v["ts"] = json!("2025-06-01T00:00:00Z");
        input.push_str(&format!("{v}\n"));
    }
    let run = strata(
        dir.path(),
        &["import", "-", "--batch", "2"],
        Some(input.as_bytes()),
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(bad_lines(&run.stderr), [2]);
    let a = history(dir.path(), "/d/a");
    assert_eq!(a.len(), 5);
    assert!(
        a.iter().all(|h| h.1 == "2025-06-01T00:00:00.000000Z"),
        "{a:?}"
    );
}

/// The number of batches in the log of `data`: records with `BATCH_END` (FORMAT.md §2-4).
fn batches_in_log(data: &Path) -> usize {
    let mut batches = 0;
    let mut names: Vec<_> = std::fs::read_dir(data.join("log"))
        .expect("the log directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    for path in names {
        let bytes = std::fs::read(&path).expect("a segment");
        let mut at = 40;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let flags = u16::from_le_bytes([bytes[at + 8 + 40], bytes[at + 8 + 41]]);
            batches += usize::from(flags & 0b10 != 0);
            at += 8 + len;
        }
    }
    batches
}

/// Lines `{"id": "/h/{i % 3}", "ts": ...}`, one second apart from 2025-01-01, one time each.
fn history_lines(n: u64) -> String {
    let base = 1_735_689_600_000_000u64;
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"/h/{}\",\"kind\":\"h\",\"ts\":{},\"doc\":{{\"i\":{i}}}}}\n",
                i % 3,
                base + i * 1_000_000
            )
        })
        .collect()
}

// Regression: a batch had one update time, so every line with its own ts was a batch of its
// own (one fsync per version: history imported 7.6x slower than the same lines without ts).
#[test]
fn history_with_a_ts_per_line_commits_one_batch_per_batch_size() {
    let dir = tempdir();
    let run = strata(
        dir.path(),
        &["import", "-", "--batch", "4"],
        Some(history_lines(10).as_bytes()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(batches_in_log(dir.path()), 3, "10 lines in batches of 4");
    let times: Vec<String> = history(dir.path(), "/h/1")
        .into_iter()
        .map(|h| h.1)
        .collect();
    assert_eq!(
        times,
        [
            "2025-01-01T00:00:01.000000Z",
            "2025-01-01T00:00:04.000000Z",
            "2025-01-01T00:00:07.000000Z"
        ]
    );
    // As of a time inside a batch, the versions of the lines before it.
    let at = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "get",
            "/h/1",
            "--at",
            "2025-01-01T00:00:05Z",
        ],
        None,
    );
    assert_eq!(at.code, 0, "{}", at.stderr);
    assert_eq!(at.json()["documents"][0]["body"], json!({"i": 4}));
}

// Regression: a bad line in a batch was found with probe writes; now the batch's error names
// the line, which is reported, and the others commit together.
#[test]
fn a_ts_going_backwards_is_reported_on_its_line_and_the_rest_imported() {
    let dir = tempdir();
    let mut lines: Vec<String> = history_lines(4).lines().map(str::to_owned).collect();
    // Line 3 goes back to line 1's time; line 4 comes after line 2's again.
    lines[2] = lines[0]
        .replace("\"i\":0", "\"i\":2")
        .replace("/h/0", "/h/2");
    let input = lines.join("\n");
    let run = strata(dir.path(), &["import", "-"], Some(input.as_bytes()));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(bad_lines(&run.stderr), [3]);
    assert!(
        message(&run.stderr, 3).contains(
            "ts 2025-01-01T00:00:00.000000Z is not later than the previous line's ts \
             2025-01-01T00:00:01.000000Z"
        ),
        "{}",
        run.stderr
    );
    assert!(run
        .stdout
        .starts_with("4 lines read, 3 versions written, 1 bad lines"));
    assert_eq!(
        batches_in_log(dir.path()),
        1,
        "the good lines share one batch"
    );
    assert_eq!(history(dir.path(), "/h/0").len(), 2);
}

// Regression: an import went on whatever the number of bad lines, one stderr line each.
#[test]
fn max_errors_stops_at_the_nth_bad_line() {
    let dir = tempdir();
    // Even lines patch documents that do not exist.
    let input: String = (1..=12)
        .map(|i| {
            if i % 2 == 0 {
                format!("{{\"id\":\"/m/missing{i}\",\"op\":\"patch\",\"doc\":{{}}}}\n")
            } else {
                format!("{{\"id\":\"/m/{i}\",\"kind\":\"m\",\"doc\":{{}}}}\n")
            }
        })
        .collect();
    let run = strata(
        dir.path(),
        &["import", "-", "--batch", "5", "--max-errors", "3"],
        Some(input.as_bytes()),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(bad_lines(&run.stderr), [2, 4, 6], "{}", run.stderr);
    assert!(
        run.stderr
            .contains("stopped at line 6, the bad line number 3 (--max-errors 3)"),
        "{}",
        run.stderr
    );
    let list = strata(dir.path(), &["--format", "json", "list", "/m/"], None);
    let ids: Vec<String> = list.json()["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["meta"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        ids,
        ["/m/1", "/m/3", "/m/5"],
        "only the lines before the 3rd bad one"
    );
    // Without the option every good line is imported.
    let all = strata(
        &dir.path().join("all"),
        &["import", "-"],
        Some(input.as_bytes()),
    );
    assert_eq!(all.code, 2);
    assert_eq!(bad_lines(&all.stderr), [2, 4, 6, 8, 10, 12]);
}

#[test]
fn exit_codes() {
    let dir = tempdir();
    // Everything imported: 0.
    let ok = strata(
        dir.path(),
        &["import", "-"],
        Some(b"{\"id\":\"/x\",\"kind\":\"k\",\"doc\":{}}\n"),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    // An empty input: nothing to do.
    let empty = strata(dir.path(), &["--format", "json", "import", "-"], Some(b""));
    assert_eq!(empty.code, 0);
    assert_eq!(empty.json()["lines"], 0);
    // Some lines bad: 2.
    let bad = strata(dir.path(), &["import", "-"], Some(b"{\n"));
    assert_eq!(bad.code, 2);
    // A missing input file: 2, nothing opened.
    let missing = strata(
        &dir.path().join("never"),
        &["import", "/nonexistent/input.jsonl"],
        None,
    );
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("cannot open"), "{}", missing.stderr);
    assert!(!dir.path().join("never").exists());
    // Bad usage: 2.
    assert_eq!(
        strata(dir.path(), &["import", "-", "--batch", "0"], None).code,
        2
    );
    // The store is held by another process: 5, like every command.
    let store = strata::Store::open(dir.path(), strata::Options::default()).expect("open");
    let locked = strata(dir.path(), &["import", "-"], Some(b"{}\n"));
    assert_eq!(locked.code, 5, "{}", locked.stderr);
    drop(store);
}

/// Regression: `strata import` exited as soon as its writes were acknowledged, with the index
/// far behind (75,656 of 170k versions), so the next process began by indexing the rest. It
/// now returns when the index's last commit covers every version it wrote.
#[test]
fn import_returns_with_every_version_in_the_index() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let lines: String = (0..3000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("/p/{}", i % 700), "kind": "package",
                       "doc": {"n": i, "text": "some words to index ".repeat(8)}})
            )
        })
        .collect();
    let run = strata(
        &data,
        &["--format", "json", "import", "-", "--batch", "500"],
        Some(lines.as_bytes()),
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let summary = run.json();
    assert_eq!(summary["written"], 3000);
    let (seconds, queryable) = (
        summary["seconds"].as_f64().expect("seconds"),
        summary["queryable_seconds"]
            .as_f64()
            .expect("queryable_seconds"),
    );
    assert!(queryable >= seconds, "{summary}");
    // What the files say, without opening the store for writing (which would index the rest).
    let store = strata::Store::open_read_only(&data, strata::Options::default()).unwrap();
    let progress = store.index_progress();
    assert_eq!(progress.log_seq, 3000);
    assert_eq!(progress.committed_seq, progress.log_seq, "{progress:?}");
}
