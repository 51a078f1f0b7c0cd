//! `strata collection`: define, list, count, drop and history, the past of a definition with
//! `--at`, and the exit codes of bad names, unknown collections and bad definitions.

use std::path::Path;

use serde_json::{json, Value};

use super::{strata, tempdir};

/// /p/a (rust, n 3), /p/c (python, n 5); /p/b deleted.
fn load(data: &Path) {
    let lines = [
        r#"{"id":"/p/a","kind":"pkg","doc":{"lang":"rust","n":1}}"#,
        r#"{"id":"/p/b","kind":"pkg","doc":{"lang":"python","n":2}}"#,
        r#"{"id":"/p/a","op":"patch","doc":{"n":3}}"#,
        r#"{"id":"/p/b","op":"delete"}"#,
        r#"{"id":"/p/c","kind":"pkg","doc":{"lang":"python","n":5}}"#,
    ];
    let run = strata(data, &["import", "-"], Some(lines.join("\n").as_bytes()));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `strata --format json ARGS...`, which must exit 0.
fn json(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let run = strata(data, &all, None);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run.json()
}

fn ids(result: &Value) -> Vec<String> {
    result["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["meta"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn define_list_count_redefine_history_and_drop() {
    let dir = tempdir();
    let data = dir.path();
    load(data);
    let defined = json(
        data,
        &[
            "collection",
            "define",
            "rust",
            "lang:rust",
            "--sort",
            "n:desc",
            "--select",
            "n",
            "--max-versions",
            "10",
        ],
    );
    assert_eq!(defined["name"], "rust");
    assert_eq!(defined["meta"]["version"], 0);
    let run = strata(
        data,
        &["put", "/p/d", "pkg", r#"{"lang":"rust","n":4}"#],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A time after /p/d was written, before the redefinition.
    let before = json(data, &["get", "/p/d"])["documents"][0]["meta"]["update_time_micros"]
        .as_u64()
        .unwrap()
        .to_string();

    let listed = json(data, &["collection", "list"]);
    let c = &listed["collections"][0];
    assert_eq!(c["name"], "rust");
    assert_eq!(c["count"], 2);
    assert_eq!(c["definition"]["version"], 0);
    assert_eq!(c["sort"], json!([{"field": "n", "descending": true}]));
    assert_eq!(c["select"], json!(["n"]));
    assert_eq!(c["retention"], json!({"max_versions": 10}));
    assert!(c["query"].is_object(), "{c}");

    let members = json(data, &["collection", "list", "rust"]);
    assert_eq!(ids(&members), ["/p/d", "/p/a"]);
    assert_eq!(members["documents"][0]["body"], json!({"n": 4}));
    // Pages.
    let page = json(data, &["collection", "list", "rust", "--limit", "1"]);
    assert_eq!(ids(&page), ["/p/d"]);
    let token = page["next_page"].as_str().expect("a next page").to_owned();
    let page = json(
        data,
        &[
            "collection",
            "list",
            "rust",
            "--limit",
            "1",
            "--page",
            &token,
        ],
    );
    assert_eq!(ids(&page), ["/p/a"]);
    assert_eq!(json(data, &["collection", "count", "rust"])["count"], 2);

    // Redefine: the old definition stays readable with --at.
    let redefined = json(data, &["collection", "define", "rust", "lang:python"]);
    assert_eq!(redefined["meta"]["version"], 1);
    assert_eq!(ids(&json(data, &["collection", "list", "rust"])), ["/p/c"]);
    assert_eq!(json(data, &["collection", "count", "rust"])["count"], 1);
    let then = json(data, &["collection", "list", "rust", "--at", &before]);
    assert_eq!(
        ids(&then),
        ["/p/d", "/p/a"],
        "the rust definition, sorted by n desc"
    );
    let then = json(data, &["collection", "count", "rust", "--at", &before]);
    assert_eq!(then["count"], 2);
    // RFC 3339 works too.
    let rfc = json(data, &["get", "/p/d"])["documents"][0]["meta"]["updated"]
        .as_str()
        .unwrap()
        .to_owned();
    let then = json(data, &["collection", "count", "rust", "--at", &rfc]);
    assert_eq!(then["count"], 2);

    let history = json(data, &["collection", "history", "rust"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["definition"]["sort"][0]["field"], "n");
    assert!(versions[1]["definition"]["sort"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_ne!(
        versions[0]["definition"]["query"],
        versions[1]["definition"]["query"]
    );

    // Human forms.
    let run = strata(data, &["collection", "list"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run.stdout.lines().nth(1).expect("a row");
    assert!(row.starts_with("rust") && row.contains("python"), "{row}");
    let run = strata(data, &["collection", "count", "rust"], None);
    assert_eq!(run.stdout.trim(), "1 member");
    let run = strata(data, &["collection", "history", "rust"], None);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);

    let run = strata(data, &["collection", "drop", "rust"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dropped"), "{}", run.stdout);
    let run = strata(data, &["collection", "list"], None);
    assert_eq!(run.stdout.trim(), "no collections");
    assert_eq!(
        json(data, &["collection", "list"])["collections"],
        json!([])
    );
    // The documents stay.
    assert_eq!(json(data, &["get", "/p/d"])["count"], 1);
    // Defined again, its history shows the drop.
    json(data, &["collection", "define", "rust", "lang:rust"]);
    let history = json(data, &["collection", "history", "rust"]);
    let dropped: Vec<bool> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["dropped"].as_bool().unwrap())
        .collect();
    assert_eq!(dropped, [false, false, true, false]);
}

#[test]
fn unknown_collections_exit_3_and_bad_input_exits_2() {
    let dir = tempdir();
    let data = dir.path();
    load(data);
    for args in [
        &["collection", "count", "nope"][..],
        &["collection", "list", "nope"],
        &["collection", "drop", "nope"],
        &["collection", "history", "nope"],
    ] {
        let run = strata(data, args, None);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(r#"no collection named "nope""#),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    // Defined after the time asked for.
    json(data, &["collection", "define", "late", "*"]);
    let run = strata(data, &["collection", "count", "late", "--at", "1"], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains(" at 1970-"), "{}", run.stderr);

    for args in [
        &["collection", "define", "a b", "*"][..],
        &["collection", "define", "a/b", "*"],
        &["collection", "count", "é"],
        &["collection", "drop", "_x"],
    ] {
        let run = strata(data, args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("invalid collection name"),
            "{args:?}: {}",
            run.stderr
        );
    }
    for args in [
        &["collection", "define", "x", "lang:[a TO"][..],
        &["collection", "define", "x", "*", "--sort", "n:sideways"],
        &[
            "collection",
            "define",
            "x",
            "*",
            "--min-versions",
            "5",
            "--max-versions",
            "2",
        ],
        &["collection", "define", "x", "*", "--max-versions", "0"],
        &["collection", "count", "late", "--at", "yesterday"],
        &["collection", "list", "late", "--page", "not-a-token"],
        // --at, --limit and --page need a collection name.
        &["collection", "list", "--limit", "1"],
    ] {
        let run = strata(data, args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    assert_eq!(
        json(data, &["collection", "list"])["collections"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no bad definition was written"
    );
}
