//! `strata watch`: the replay, a changes feed from a seq (`--from-seq` with `--until-caught-up`
//! or `--limit`), stopped-matching events, live counts, projection, one line per event.

use std::path::Path;

use serde_json::{json, Value};

use super::{strata, tempdir, Run};

/// Seqs 1-6: /p/a (rust) created and patched, /p/b (python) created and deleted, /p/c created
/// as rust and then moved to python.
fn load(data: &Path) {
    let lines = [
        r#"{"id":"/p/a","kind":"pkg","doc":{"lang":"rust","n":1}}"#,
        r#"{"id":"/p/b","kind":"pkg","doc":{"lang":"python","n":2}}"#,
        r#"{"id":"/p/a","op":"patch","doc":{"n":3}}"#,
        r#"{"id":"/p/b","op":"delete"}"#,
        r#"{"id":"/p/c","kind":"pkg","doc":{"lang":"rust","n":5}}"#,
        r#"{"id":"/p/c","op":"patch","doc":{"lang":"python"}}"#,
    ];
    let run = strata(data, &["import", "-"], Some(lines.join("\n").as_bytes()));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `strata --format json watch ARGS...`, which must exit 0.
fn watch(data: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--format", "json", "watch"];
    all.extend_from_slice(args);
    let run = strata(data, &all, None);
    assert_eq!(run.code, 0, "watch {args:?}: {}", run.stderr);
    lines(&run)
}

/// One JSON object per stdout line.
fn lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// The events as (kind, id, seq).
fn events(events: &[Value]) -> Vec<(String, String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn ev(kind: &str, id: &str, seq: u64) -> (String, String, u64) {
    (kind.to_owned(), id.to_owned(), seq)
}

#[test]
fn replay_prints_the_current_matches_and_limit_stops() {
    let dir = tempdir();
    load(dir.path());
    // Without --from-seq nothing comes after the replay: --until-caught-up ends it.
    let out = watch(
        dir.path(),
        &[
            "_kind:pkg",
            "--replay",
            "--sort",
            "n:desc",
            "--until-caught-up",
        ],
    );
    assert_eq!(
        events(&out),
        [ev("existing", "/p/c", 6), ev("existing", "/p/a", 3)]
    );
    let a = &out[1];
    assert_eq!(a["version"], 1);
    assert_eq!(a["doc_kind"], "pkg");
    assert_eq!(a["body"], json!({"lang": "rust", "n": 3}));
    assert!(a["count"].is_null());
    assert!(a["time"].as_str().unwrap().ends_with('Z'));

    let out = watch(
        dir.path(),
        &["_kind:pkg", "--replay", "--sort", "n:desc", "--limit", "1"],
    );
    assert_eq!(events(&out), [ev("existing", "/p/c", 6)]);

    // The human form.
    let run = strata(
        dir.path(),
        &["watch", "lang:rust", "--replay", "--limit", "1"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("EXISTING /p/a v1 seq 3 at "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.trim_end().ends_with(r#"{"lang":"rust","n":3}"#),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 1);
}

#[test]
fn from_seq_dumps_the_changes_feed_and_resumes() {
    let dir = tempdir();
    load(dir.path());
    let all = watch(dir.path(), &["*", "--from-seq", "0", "--until-caught-up"]);
    assert_eq!(
        events(&all),
        [
            ev("added", "/p/a", 1),
            ev("added", "/p/b", 2),
            ev("updated", "/p/a", 3),
            ev("deleted", "/p/b", 4),
            ev("added", "/p/c", 5),
            ev("updated", "/p/c", 6),
        ]
    );
    assert!(all[3]["body"].is_null(), "a deletion has no body");

    // A query's feed: /p/c leaving `lang:rust` is an event (by default; --stopped is still
    // accepted); with --count every event carries the number of matches after it.
    let rust = watch(
        dir.path(),
        &[
            "lang:rust",
            "--from-seq",
            "0",
            "--until-caught-up",
            "--count",
        ],
    );
    assert_eq!(
        events(&rust),
        [
            ev("added", "/p/a", 1),
            ev("updated", "/p/a", 3),
            ev("added", "/p/c", 5),
            ev("stopped_matching", "/p/c", 6),
        ]
    );
    let counts: Vec<u64> = rust.iter().map(|e| e["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 1, 2, 1]);
    let stopped = watch(
        dir.path(),
        &[
            "lang:rust",
            "--from-seq",
            "0",
            "--until-caught-up",
            "--stopped",
        ],
    );
    assert_eq!(events(&stopped), events(&rust));
    // Regression: stopped-matching events were off unless asked for; --no-stopped turns
    // them off.
    let quiet = watch(
        dir.path(),
        &[
            "lang:rust",
            "--from-seq",
            "0",
            "--until-caught-up",
            "--no-stopped",
        ],
    );
    assert_eq!(
        quiet.len(),
        3,
        "no stopped-matching event with --no-stopped"
    );

    // Resuming after the third event gives the rest; --limit stops early.
    let rest = watch(dir.path(), &["*", "--from-seq", "3", "--until-caught-up"]);
    assert_eq!(events(&rest), events(&all[3..]));
    let two = watch(dir.path(), &["*", "--from-seq", "0", "--limit", "2"]);
    assert_eq!(events(&two), events(&all[..2]));
    // At the end: nothing, at once; past the end: an error (exit 2) naming the log's end.
    let none = watch(dir.path(), &["*", "--from-seq", "6", "--until-caught-up"]);
    assert!(none.is_empty());
    let past = strata(
        dir.path(),
        &["watch", "*", "--from-seq", "99", "--until-caught-up"],
        None,
    );
    assert_eq!(past.code, 2, "{}", past.stderr);
    assert!(
        past.stderr.contains("the log ends at seq 6"),
        "{}",
        past.stderr
    );

    // The replay, then the feed.
    let both = watch(
        dir.path(),
        &[
            "lang:rust",
            "--replay",
            "--from-seq",
            "4",
            "--until-caught-up",
            "--no-stopped",
        ],
    );
    assert_eq!(
        events(&both),
        [ev("existing", "/p/a", 3), ev("added", "/p/c", 5)]
    );
}

#[test]
fn select_projects_and_the_feed_skips_collection_definitions() {
    let dir = tempdir();
    load(dir.path());
    let run = strata(
        dir.path(),
        &["collection", "define", "rust", "lang:rust"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = strata(
        dir.path(),
        &["put", "/p/d", "pkg", r#"{"lang":"go","n":7}"#],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = watch(
        dir.path(),
        &["*", "--from-seq", "5", "--until-caught-up", "--select", "n"],
    );
    // Seq 7 is the collection's definition: the store's own, not in the feed.
    assert_eq!(
        events(&out),
        [ev("updated", "/p/c", 6), ev("added", "/p/d", 8)]
    );
    assert_eq!(out[1]["body"], json!({"n": 7}));
}

#[test]
fn bad_watch_arguments_exit_2() {
    let dir = tempdir();
    load(dir.path());
    let run = strata(dir.path(), &["watch", "lang:[a TO", "--limit", "1"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("byte"), "{}", run.stderr);
    let run = strata(
        dir.path(),
        &[
            "watch",
            "*",
            "--replay",
            "--sort",
            "n:sideways",
            "--limit",
            "1",
        ],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    // --sort orders the replay only.
    let run = strata(
        dir.path(),
        &["watch", "*", "--sort", "n", "--limit", "1"],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}
