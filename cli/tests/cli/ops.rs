//! `strata compact`, `backup`, `restore` and `verify`: what they print, their exit codes, and
//! that their effects are the library's.

use std::path::Path;

use serde_json::{json, Value};
use strata::{Options, Store};

use super::{strata, tempdir};

/// A store with one document of kind `reading` updated `versions` times, in small segments so
/// that compaction has sealed segments to rewrite.
fn readings(data: &Path, versions: u64) {
    let store = Store::open(data, Options::default().with_segment_size(4096)).unwrap();
    for n in 0..versions {
        store
            .put(
                "/sensors/a",
                "reading",
                json!({"n": n, "pad": "x".repeat(200)}),
            )
            .unwrap();
    }
    store.wait_for_index().unwrap();
}

#[test]
fn compact_drops_what_retention_no_longer_keeps() {
    let dir = tempdir();
    let data = dir.path().join("db");
    readings(&data, 80);
    // Without a rule nothing goes.
    let run = strata(&data, &["--format", "json", "compact"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["versions_dropped"], 0);
    let run = strata(
        &data,
        &[
            "--format",
            "json",
            "compact",
            "--retention",
            "reading=max=2",
            "--io-rate",
            "unlimited",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    let dropped = out["versions_dropped"].as_u64().unwrap();
    assert!(dropped > 40, "{out}");
    assert!(
        out["log_bytes_after"].as_u64() < out["log_bytes_before"].as_u64(),
        "{out}"
    );
    assert!(out["history_complete_from"].as_u64().is_some(), "{out}");
    // The newest version is there; the oldest is trimmed history: exit status 8.
    let run = strata(&data, &["--format", "json", "get", "/sensors/a"], None);
    assert_eq!(run.json()["documents"][0]["body"]["n"], 79);
    let run = strata(&data, &["get", "/sensors/a", "--version", "0"], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(
        run.stderr.contains("dropped by retention"),
        "{}",
        run.stderr
    );
    let run = strata(&data, &["--format", "json", "stats"], None);
    assert_eq!(run.json()["dropped_versions"].as_u64(), Some(dropped));
    // Bad rules are usage errors.
    for bad in [
        "reading",
        "reading=max=0",
        "reading=often=3",
        "reading=max=x",
    ] {
        let run = strata(&data, &["compact", "--retention", bad], None);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
    }
    let run = strata(&data, &["compact", "--io-rate", "0"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn backup_then_restore_gives_the_store_back() {
    let dir = tempdir();
    let data = dir.path().join("db");
    let backup = dir.path().join("backup");
    for n in 0..5 {
        let run = strata(
            &data,
            &["put", &format!("/d/{n}"), "doc", &format!("{{\"n\":{n}}}")],
            None,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = strata(
        &data,
        &["--format", "json", "backup", backup.to_str().unwrap()],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = run.json();
    assert_eq!(first["last_seq"], 5);
    assert_eq!(first["index_included"], true);
    let at = first["last_time_micros"].as_u64().unwrap();
    strata(&data, &["patch", "/d/0", "{\"n\":100}"], None);
    // A second backup into the same directory copies only what changed.
    let run = strata(
        &data,
        &["--format", "json", "backup", backup.to_str().unwrap()],
        None,
    );
    let second = run.json();
    assert_eq!(second["last_seq"], 6);
    assert!(
        second["bytes_copied"].as_u64() < second["bytes"].as_u64(),
        "{second}"
    );

    let restored = dir.path().join("restored");
    let run = strata(
        &data,
        &[
            "--format",
            "json",
            "restore",
            backup.to_str().unwrap(),
            restored.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["last_seq"], 6);
    let run = strata(&restored, &["--format", "json", "get", "/d/0"], None);
    assert_eq!(run.json()["documents"][0]["body"]["n"], 100);

    // As of the first backup's time.
    let past = dir.path().join("past");
    let run = strata(
        &data,
        &[
            "restore",
            backup.to_str().unwrap(),
            past.to_str().unwrap(),
            "--at",
            &at.to_string(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = strata(&past, &["--format", "json", "get", "/d/0"], None);
    assert_eq!(run.json()["documents"][0]["body"]["n"], 0);
    let run = strata(&past, &["--format", "json", "stats"], None);
    assert_eq!(run.json()["versions"], 5);

    // Not into a store that exists.
    let run = strata(
        &data,
        &[
            "--format",
            "json",
            "restore",
            backup.to_str().unwrap(),
            restored.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 2);
    let error: Value = serde_json::from_str(run.stderr.trim()).expect("a JSON error");
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["error"].as_str().unwrap().contains("not empty"),
        "{error}"
    );

    // A damaged backup is refused, naming the file.
    let segment = std::fs::read_dir(backup.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[60] ^= 0x40;
    std::fs::write(&segment, bytes).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let run = strata(
        &data,
        &[
            "restore",
            backup.to_str().unwrap(),
            elsewhere.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains(&segment.display().to_string()),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_names_every_problem_by_file_and_offset() {
    let dir = tempdir();
    let data = dir.path().join("db");
    for n in 0..4 {
        strata(
            &data,
            &["put", &format!("/d/{n}"), "doc", "{\"n\":1}"],
            None,
        );
    }
    let run = strata(&data, &["--format", "json", "verify"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["records"], 4);
    assert_eq!(report["index_checked"], true);
    assert_eq!(report["index_versions"], 4);

    let segment = data.join("log/00000000000000000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let len = bytes.len();
    // A flip inside the second record's body.
    bytes[len / 2] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let run = strata(&data, &["--format", "json", "verify"], None);
    assert_eq!(run.code, 7, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], false);
    let problem = &report["problems"][0];
    assert_eq!(problem["file"], segment.display().to_string());
    assert!(
        problem["offset"].as_u64().is_some_and(|o| o > 0),
        "{report}"
    );
    let run = strata(&data, &["verify"], None);
    assert_eq!(run.code, 7);
    assert!(
        run.stdout.contains("problem:") && run.stdout.contains("at offset"),
        "{}",
        run.stdout
    );
    // An open store is checked read-only (it was `Locked`, exit status 5): what can be read
    // without its lock, nothing repaired, and a note that says so.
    let dir2 = tempdir();
    let store = Store::open(dir2.path(), Options::default()).unwrap();
    store.put("/a", "doc", serde_json::json!({"n": 1})).unwrap();
    let run = strata(dir2.path(), &["--format", "json", "verify"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["records"], 1, "{report}");
    assert!(
        report["notes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{report}"
    );
    drop(store);
}

/// Three puts, then the active segment loses its last bytes (a torn write).
fn torn_store(data: &Path, cut: u64) -> std::path::PathBuf {
    for n in 0..3 {
        let run = strata(data, &["put", &format!("/d/{n}"), "doc", "{\"n\":1}"], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let segment = data.join("log/00000000000000000001.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - cut)
        .unwrap();
    segment
}

// `verify` said DAMAGED (exit 7, "bad frame: truncated frame") for a torn tail that the next open
// cuts: it must be a note, and the store must stay whole.
#[test]
fn verify_calls_a_torn_tail_a_note_not_damage() {
    let dir = tempdir();
    let data = dir.path().join("db");
    let segment = torn_store(&data, 5);
    let run = strata(&data, &["--format", "json", "verify"], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["problems"], json!([]), "{report}");
    let note = &report["notes"][0];
    assert_eq!(note["file"], segment.display().to_string(), "{report}");
    let message = note["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the next open cuts") && message.contains("bytes"),
        "{report}"
    );
    // Two versions survive; the torn third one is gone, and verify finds nothing more.
    assert_eq!(report["records"], 2, "{report}");
    let run = strata(&data, &["--format", "json", "verify"], None);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["notes"], json!([]), "{}", run.stdout);
    let run = strata(&data, &["get", "/d/1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// `verify` said "bad segment header: truncated frame" at offset 0 of a segment whose creation
// was interrupted, which open writes again: a note too.
#[test]
fn verify_calls_an_interrupted_segment_creation_a_note() {
    let dir = tempdir();
    let data = dir.path().join("db");
    torn_store(&data, 0);
    let next = data.join("log/00000000000000000002.log");
    for len in [0usize, 7, 39] {
        std::fs::write(&next, &b"STRATSEG\x01\0\0\0\x02"[..len.min(13)]).unwrap();
        let run = strata(&data, &["--format", "json", "verify"], None);
        assert_eq!(run.code, 0, "{len} bytes: {}{}", run.stdout, run.stderr);
        let report = run.json();
        assert_eq!(report["problems"], json!([]), "{report}");
        assert!(
            report["notes"]
                .as_array()
                .is_some_and(
                    |notes| notes.iter().any(|n| n["file"] == next.display().to_string()
                        && n["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("the next open")))
                ),
            "{report}"
        );
        assert_eq!(report["records"], 3, "{report}");
    }
}

// A torn frame followed by a frame of a later, synced write is damage open refuses: verify must
// still call it a problem (exit 7).
#[test]
fn verify_calls_damage_before_later_synced_data_a_problem() {
    let dir = tempdir();
    let data = dir.path().join("db");
    let segment = torn_store(&data, 0);
    let mut bytes = std::fs::read(&segment).unwrap();
    // A flip in the first record's payload: two later single-record writes follow it.
    bytes[40 + 8 + 60] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    let run = strata(&data, &["stats"], None);
    assert_eq!(run.code, 6, "open refuses: {}{}", run.stdout, run.stderr);
    let run = strata(&data, &["--format", "json", "verify"], None);
    assert_eq!(run.code, 7, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["problems"][0]["offset"], 40, "{}", run.stdout);
}

// With meta.json gone and `.managed.json` garbage, every command (rebuild-index and verify
// included) exited 1 with "index error: Data corrupted": the index is derived data and is
// rebuilt from the log.
#[test]
fn an_index_without_meta_json_and_a_garbage_managed_json_is_rebuilt() {
    let dir = tempdir();
    let data = dir.path().join("db");
    torn_store(&data, 0);
    let damage = || {
        let _ = std::fs::remove_file(data.join("index/meta.json"));
        std::fs::write(data.join("index/.managed.json"), b"garbage\n").unwrap();
    };
    damage();
    let run = strata(&data, &["get", "/d/2"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = strata(
        &data,
        &["--format", "json", "query", "_kind:doc", "--count"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 3, "{}", run.stdout);
    damage();
    let run = strata(&data, &["rebuild-index"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    damage();
    let run = strata(&data, &["--format", "json", "verify"], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["index_checked"], true, "{report}");
    assert!(
        report["notes"].as_array().is_some_and(|notes| notes
            .iter()
            .any(|n| n["message"].as_str().is_some_and(|m| m.contains("rebuilt")))),
        "{report}"
    );
}

#[test]
fn every_command_refuses_a_directory_holding_an_unfinished_restore() {
    let dir = tempdir();
    let data = dir.path().join("db");
    let run = strata(&data, &["put", "/d/1", "doc", "{\"n\":1}"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // What a restore killed part way leaves: its marker, written before any store file.
    std::fs::write(data.join(strata::RESTORE_MARKER), "backup /somewhere\n").unwrap();
    for args in [
        &["stats"][..],
        &["get", "/d/1"],
        &["verify"],
        &["put", "/d/2", "doc", "{}"],
    ] {
        let run = strata(&data, args, None);
        assert_eq!(run.code, 9, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("unfinished restore"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn the_demo_writes_to_the_default_directory_and_says_where() {
    // The demo wrote to `./strata-data` without saying where, and a clone's `git status` then
    // listed the directory.
    let dir = tempdir();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["demo", "--documents", "100"])
        .current_dir(dir.path())
        .env_remove("STRATA_DATA")
        .output()
        .expect("strata demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let default = std::fs::canonicalize(dir.path().join("strata-data")).unwrap();
    assert!(
        stdout.contains(&format!("the demo store is in {}", default.display())),
        "{stdout}"
    );
    let gitignore = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.gitignore");
    let ignored = std::fs::read_to_string(gitignore).unwrap();
    assert!(
        ignored.lines().any(|l| l.trim() == "/strata-data"),
        "{ignored}"
    );
}

// `query --at` before the retention horizon exited 8 although most documents kept their whole
// history; `--allow-trimmed` answers the known ones and says how many are unknown.
#[test]
fn query_allow_trimmed_answers_what_is_known() {
    let dir = tempdir();
    let data = dir.path().join("db");
    let t = {
        let store = Store::open(&data, Options::default().with_segment_size(4096)).unwrap();
        let b = store.put("/sensors/b", "reading", json!({"n": 0})).unwrap();
        for n in 0..80 {
            store
                .put(
                    "/sensors/a",
                    "reading",
                    json!({"n": n, "pad": "x".repeat(200)}),
                )
                .unwrap();
        }
        store.wait_for_index().unwrap();
        b.update_time_micros + 1
    };
    let run = strata(&data, &["compact", "--retention", "reading=max=2"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let at = t.to_string();
    let run = strata(&data, &["query", "*", "--at", &at], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    let run = strata(
        &data,
        &[
            "--format",
            "json",
            "query",
            "*",
            "--at",
            &at,
            "--allow-trimmed",
            "--unknown-ids",
            "5",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out: Value = run.json();
    assert_eq!(out["documents"][0]["meta"]["id"], "/sensors/b");
    assert_eq!(out["documents"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["trimmed"]["unknown"], 1, "{out}");
    assert_eq!(
        out["trimmed"]["unknown_ids"],
        json!(["/sensors/a"]),
        "{out}"
    );
    let run = strata(&data, &["query", "*", "--at", &at, "--allow-trimmed"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("1 documents left out"),
        "{}",
        run.stdout
    );
    // A query naming only documents whose history is complete needs no option.
    let run = strata(&data, &["query", "_id:/sensors/b", "--at", &at], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("/sensors/b"), "{}", run.stdout);
}
