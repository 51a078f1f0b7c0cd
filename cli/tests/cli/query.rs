//! `strata query` and `strata rebuild-index`: one JSON object per answer, the options of the
//! issue, typed failures with exit code 2 for bad queries.

use crate::{strata, tempdir};

fn load(data: &std::path::Path) {
    let lines = [
        r#"{"id":"/pkg/flask","kind":"package","doc":{"section":"python","size":900,"description":"a micro web framework"}}"#,
        r#"{"id":"/pkg/django","kind":"package","doc":{"section":"python","size":4000,"description":"the web framework for perfectionists"}}"#,
        r#"{"id":"/pkg/serde","kind":"package","doc":{"section":"rust","size":300,"description":"serialization framework"}}"#,
        r#"{"id":"/pkg/flask","op":"patch","doc":{"size":950}}"#,
        r#"{"id":"/pkg/serde","op":"delete"}"#,
    ];
    let input = lines.join("\n");
    let run = strata(data, &["import", "-"], Some(input.as_bytes()));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn query_prints_one_json_object_with_count_documents_and_groups() {
    let dir = tempdir();
    load(dir.path());
    let run = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "query",
            "_kind:package AND section:python",
            "--count",
            "--sort",
            "size:desc",
            "--select",
            "size",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["count"], 2);
    let ids: Vec<&str> = out["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["meta"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["/pkg/django", "/pkg/flask"]);
    assert_eq!(
        out["documents"][1]["body"],
        serde_json::json!({"size": 950})
    );
    assert!(out["next_page"].is_null());

    let run = strata(
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
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let groups = run.json()["groups"].clone();
    assert_eq!(groups[0]["key"], "python");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(
        groups.as_array().unwrap().len(),
        1,
        "the deleted rust package is not current: {groups}"
    );
}

#[test]
fn query_reads_all_versions_deleted_ones_and_pages() {
    let dir = tempdir();
    load(dir.path());
    let run = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "query",
            "_id:/pkg/*",
            "--all-versions",
            "--include-deleted",
            "--count",
            "--limit",
            "2",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["count"], 5);
    let token = out["next_page"].as_str().expect("a next page").to_owned();
    let run = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "query",
            "_id:/pkg/*",
            "--all-versions",
            "--include-deleted",
            "--count",
            "--limit",
            "2",
            "--page",
            &token,
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seqs: Vec<u64> = run.json()["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["meta"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
}

#[test]
fn bad_queries_exit_2_with_the_position() {
    let dir = tempdir();
    load(dir.path());
    let run = strata(dir.path(), &["query", "size:[1 TO"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("byte"), "{}", run.stderr);
    let run = strata(dir.path(), &["query", "*", "--sort", "size:sideways"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = strata(dir.path(), &["query", "*", "--page", "not-a-token"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn rebuild_index_keeps_answers() {
    let dir = tempdir();
    load(dir.path());
    let before = strata(
        dir.path(),
        &["--format", "json", "query", "framework", "--count"],
        None,
    )
    .json();
    let run = strata(dir.path(), &["--format", "json", "rebuild-index"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["versions"], 5);
    let after = strata(
        dir.path(),
        &["--format", "json", "query", "framework", "--count"],
        None,
    )
    .json();
    assert_eq!(before["count"], 2);
    assert_eq!(before["documents"], after["documents"]);
}

/// Regression: `description:library AND description:python` printed 0 documents where a
/// description over 256 bytes held both words (a term matched whole keywords only).
#[test]
fn a_field_word_matches_a_word_of_a_long_description() {
    let dir = tempdir();
    let long = "Requests is an elegant and simple HTTP library for Python. ".repeat(6);
    let lines = [
        serde_json::json!({"id": "/pkg/requests", "kind": "package", "doc": {"description": long}}),
        serde_json::json!({"id": "/pkg/short", "kind": "package", "doc": {"description": "python library"}}),
    ];
    let input: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let run = strata(
        dir.path(),
        &["import", "-"],
        Some(input.join("\n").as_bytes()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "query",
            "description:library AND description:python",
            "--count",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["count"], 1, "{out}");
    assert_eq!(out["documents"][0]["meta"]["id"], "/pkg/requests");
}
