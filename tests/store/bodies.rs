//! Bodies as written: key order kept from write to read, typed and raw puts, raw reads of the
//! past.

use serde_json::{json, Value};
use strata::{Options, RestoreOptions, Store};

use crate::{fast_options, open};

/// The keys of an object, in order.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// A body whose keys, at every level, are out of alphabetical order.
fn unsorted() -> Value {
    json!({"zeta": 1, "alpha": {"y": true, "b": [ {"q": 1, "c": 2} ]}, "mid": "m"})
}

const UNSORTED: &str = r#"{"zeta":1,"alpha":{"y":true,"b":[{"q":1,"c":2}]},"mid":"m"}"#;

/// Asserts that `body` (a document body) is [`unsorted`] with its keys in the order written.
fn assert_written_order(body: &Value, what: &str) {
    assert_eq!(
        serde_json::to_string(body).unwrap(),
        UNSORTED,
        "{what}: key order"
    );
}

// Bodies came back re-encoded with their keys sorted (`{"alpha":…,"mid":…,"zeta":…}`), in every
// read, after a reopen and after a backup and restore.
#[test]
fn key_order_survives_every_read_reopen_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = open(&data, fast_options());
    let v0 = store.put("/d", "thing", unsorted()).unwrap();
    store
        .put("/other", "thing", json!({"b": 1, "a": 2}))
        .unwrap();

    let check = |store: &Store, label: &str| {
        let doc = store.get("/d").unwrap().expect("present");
        assert_written_order(&doc.body, &format!("{label}: get"));
        let raw = store.get_raw("/d").unwrap().expect("present");
        assert_eq!(
            std::str::from_utf8(&raw.body).unwrap(),
            UNSORTED,
            "{label}: get_raw"
        );
        let then = store.get_at("/d", v0.update_time_micros).unwrap().unwrap();
        assert_written_order(&then.body, &format!("{label}: get_at"));
        let v = store.get_version("/d", 0).unwrap().unwrap();
        assert_written_order(&v.body, &format!("{label}: get_version"));
        let history = store.history("/d").unwrap();
        assert_written_order(&history[0].body, &format!("{label}: history"));
        let listed = store.list("/d").next().expect("listed").expect("readable");
        assert_written_order(&listed.body, &format!("{label}: list"));
        let found = store
            .query(&strata::QuerySpec::new(strata::Query::id_prefix("/d")))
            .unwrap();
        assert_written_order(&found.documents[0].body, &format!("{label}: query"));
    };
    check(&store, "open");
    drop(store);
    let store = open(&data, fast_options());
    check(&store, "reopened");

    let backup = dir.path().join("backup");
    store.backup(&backup).unwrap();
    drop(store);
    let restored = dir.path().join("restored");
    Store::restore(&backup, &restored, RestoreOptions::default()).unwrap();
    let store = open(&restored, fast_options());
    check(&store, "restored");
}

// A merge patch rebuilt the body in sorted key order; it must keep the existing keys where they
// were, put new keys after them, and keep the order of the rest when one is removed.
#[test]
fn merge_patches_keep_key_order_and_append_new_keys() {
    let store = Store::open_in_memory(Options::default()).unwrap();
    store
        .put(
            "/p",
            "thing",
            json!({"z": 1, "y": {"k2": 1, "k1": 2}, "x": 3, "w": 4}),
        )
        .unwrap();
    store
        .patch(
            "/p",
            json!({"y": {"k1": 20, "k0": 0}, "x": null, "a": "new", "z": 10}),
        )
        .unwrap();
    let doc = store.get("/p").unwrap().unwrap();
    assert_eq!(keys(&doc.body), ["z", "y", "w", "a"]);
    assert_eq!(keys(&doc.body["y"]), ["k2", "k1", "k0"]);
    assert_eq!(
        doc.body,
        json!({"z": 10, "y": {"k2": 1, "k1": 20, "k0": 0}, "w": 4, "a": "new"})
    );
    // A second patch that removes the first key keeps the rest in order.
    store.patch("/p", json!({"z": null})).unwrap();
    let raw = store.get_raw("/p").unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&raw.body).unwrap(),
        r#"{"y":{"k2":1,"k1":20,"k0":0},"w":4,"a":"new"}"#
    );
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Package {
    name: String,
    version: String,
    downloads: u64,
    authors: Vec<String>,
}

// `put` took only a `serde_json::Value`, and a struct written through a `Value` came back with
// its fields sorted by name; a batch could not take a struct at all.
#[test]
fn serializable_values_keep_their_field_order_in_stores_and_batches() {
    let store = Store::open_in_memory(Options::default()).unwrap();
    let serde = Package {
        name: "serde".into(),
        version: "1.0.200".into(),
        downloads: 7,
        authors: vec!["dtolnay".into()],
    };
    store.put_as("/pkg/serde", "package", &serde).unwrap();
    let raw = store.get_raw("/pkg/serde").unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&raw.body).unwrap(),
        r#"{"name":"serde","version":"1.0.200","downloads":7,"authors":["dtolnay"]}"#
    );
    assert_eq!(store.get_as::<Package>("/pkg/serde").unwrap(), Some(serde));

    let flask = Package {
        name: "flask".into(),
        version: "3.0".into(),
        downloads: 3,
        authors: vec![],
    };
    let metas = store
        .write(
            strata::Batch::new()
                .put_as("/pkg/flask", "package", &flask)
                .put_raw("/pkg/raw", "package", r#"{"z": 1, "a": [1, 2]}"#)
                .put_as_with(
                    "/pkg/serde",
                    "package",
                    &json!({"name": "serde"}),
                    strata::WriteOptions::default().with_expect(strata::Expect::Version(0)),
                ),
        )
        .unwrap();
    assert_eq!(metas.len(), 3);
    assert_eq!(store.get_as::<Package>("/pkg/flask").unwrap(), Some(flask));
    assert_eq!(
        store.get_raw("/pkg/raw").unwrap().unwrap().body,
        br#"{"z": 1, "a": [1, 2]}"#
    );
    assert_eq!(metas[2].version, 1);

    // A value that does not serialize fails the whole batch, naming its document.
    let before = store.last_seq();
    let unkeyable: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let err = store
        .write(
            strata::Batch::new()
                .put("/fine", "thing", json!({}))
                .put_as("/m", "map", &unkeyable),
        )
        .unwrap_err();
    assert!(
        matches!(err.reason(), strata::Error::Decode { id, .. } if id == "/m"),
        "{err}"
    );
    assert_eq!(store.last_seq(), before);
}

// Raw JSON text could not be put without building a `Value`, which re-encoded it.
#[test]
fn raw_json_is_stored_as_given_and_reads_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast_options());
    let text = "{ \"name\" : \"caf\\u00e9\",\n  \"n\": 1.50, \"list\": [3, 1] }";
    store
        .put_raw("/r", "thing", format!("  \n{text}\n"))
        .unwrap();
    store.put_raw("/bytes", "thing", text.as_bytes()).unwrap();
    store
        .put_raw("/vec", "thing", text.as_bytes().to_vec())
        .unwrap();
    for id in ["/r", "/bytes", "/vec"] {
        // As given, only the surrounding whitespace cut.
        let raw = store.get_raw(id).unwrap().unwrap();
        assert_eq!(std::str::from_utf8(&raw.body).unwrap(), text, "{id}");
        let doc = store.get(id).unwrap().unwrap();
        assert_eq!(doc.body, json!({"name": "café", "n": 1.5, "list": [3, 1]}));
        assert_eq!(keys(&doc.body), ["name", "n", "list"]);
    }
    // The index reads it like any body.
    let found = store
        .query(&strata::QuerySpec::new(
            strata::parse_query("name:café AND n:1.5").unwrap(),
        ))
        .unwrap();
    assert_eq!(found.documents.len(), 3);
    drop(store);
    let store = open(dir.path(), fast_options());
    store.wait_for_index().unwrap();
    let raw = store.get_raw("/r").unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&raw.body).unwrap(), text);
    let found = store
        .query(&strata::QuerySpec::new(strata::parse_query("n:1.5").unwrap()).count(true))
        .unwrap();
    assert_eq!(found.count, Some(3));

    // A repeated key is stored as it reads: the last value, in the first one's place.
    store
        .put_raw(
            "/dup",
            "thing",
            r#"{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}"#,
        )
        .unwrap();
    let raw = store.get_raw("/dup").unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&raw.body).unwrap(),
        r#"{"a":3,"b":{"x":2}}"#
    );
    // Colons and brackets inside strings are not members or levels.
    store
        .put_raw("/s", "thing", r#"{"k": "a:b [[{{ \" :"}"#)
        .unwrap();
    assert_eq!(
        store.get_raw("/s").unwrap().unwrap().body,
        br#"{"k": "a:b [[{{ \" :"}"#
    );
}

// Raw text gets the typed errors of any body (and nothing is written, the store stays usable).
#[test]
fn invalid_raw_json_is_a_typed_error_and_writes_nothing() {
    let limits = strata::Limits::default()
        .with_max_document_bytes(100)
        .with_max_depth(4)
        .with_max_field_name_bytes(8);
    let store = Store::open_in_memory(Options::default().with_limits(limits)).unwrap();
    store.put("/ok", "thing", json!({"a": 1})).unwrap();
    let before = store.last_seq();
    let rejected = |text: &[u8]| {
        let err = store.put_raw("/x", "thing", text).unwrap_err();
        assert_eq!(store.last_seq(), before, "{err}");
        err
    };
    for malformed in [
        &b""[..],
        b"{",
        b"{\"a\": }",
        b"{\"a\": 1} {}",
        b"{\"a\": \"\xff\"}",
        b"{\"a\": \"\\ud800\"}",
        b"{'a': 1}",
        b"{\"a\": 1,}",
        b"{\"a\": [1, 2}",
        b"{\"a\": NaN}",
    ] {
        let err = rejected(malformed);
        assert!(
            matches!(&err, strata::Error::InvalidBody { id, reason } if id == "/x" && reason.starts_with("malformed JSON")),
            "{:?}: {err}",
            String::from_utf8_lossy(malformed)
        );
    }
    for not_object in [&b"[1]"[..], b"1", b"\"s\"", b"null", b" true "] {
        let err = rejected(not_object);
        assert!(
            matches!(&err, strata::Error::InvalidBody { reason, .. } if reason.contains("must be a JSON object")),
            "{err}"
        );
    }
    // Depth 5 in brackets, even inside otherwise malformed or huge nesting.
    for too_deep in [
        &br#"{"a": [[[{}]]]}"#[..],
        br#"{"a": [[[[[[[[[[[[[[[[[[[[[["#,
        &[b'['; 90][..],
    ] {
        let err = rejected(too_deep);
        assert!(
            matches!(err, strata::Error::DocumentTooDeep { limit: 4, .. }),
            "{err}"
        );
    }
    // Nesting far deeper than serde_json (or the stack) could parse is refused before parsing.
    let roomy = Store::open_in_memory(Options::default()).unwrap();
    let err = roomy
        .put_raw("/deep", "thing", vec![b'['; 1_000_000])
        .unwrap_err();
    assert!(
        matches!(err, strata::Error::DocumentTooDeep { limit: 64, .. }),
        "{err}"
    );
    let big = format!(r#"{{"a": "{}"}}"#, "x".repeat(100));
    let err = rejected(big.as_bytes());
    assert!(
        matches!(
            err,
            strata::Error::DocumentTooLarge {
                size: 109,
                limit: 100,
                ..
            }
        ),
        "{err}"
    );
    let err = rejected(br#"{"a": {"long_name_": 1}}"#);
    assert!(
        matches!(err, strata::Error::FieldNameTooLong { len: 10, .. }),
        "{err}"
    );
    // In a batch, the invalid text fails the batch.
    let err = store
        .write(
            strata::Batch::new()
                .put("/fine", "thing", json!({}))
                .put_raw("/x", "thing", "{"),
        )
        .unwrap_err();
    assert_eq!(err.batch_op().map(|op| op.0), Some(1), "{err}");
    assert!(
        matches!(err.reason(), strata::Error::InvalidBody { .. }),
        "{err}"
    );
    assert_eq!(store.last_seq(), before);
    // Exactly at the limits is fine, and the store takes writes as before.
    store
        .put_raw("/x", "thing", r#"{"a": [[[1]]], "12345678": 2}"#)
        .unwrap();
    store.put("/ok", "thing", json!({"a": 2})).unwrap();
    assert_eq!(store.get("/ok").unwrap().unwrap().body, json!({"a": 2}));
}

// Only current reads had a raw form: a version of the past had to be parsed into a `Value`.
#[test]
fn raw_reads_of_the_past() {
    let store = Store::open_in_memory(Options::default()).unwrap();
    let v0 = store.put_raw("/d", "doc", r#"{"b": 1, "a": 2}"#).unwrap();
    let v1 = store.patch("/d", json!({"c": 3})).unwrap();
    let v2 = store.delete("/d").unwrap();
    let v3 = store.put_raw("/d", "doc", r#"{"again":true}"#).unwrap();

    let at = |t: u64| store.get_raw_at("/d", t).unwrap();
    assert_eq!(
        at(v0.update_time_micros - 1),
        None,
        "before the first version"
    );
    let first = at(v0.update_time_micros).unwrap();
    assert_eq!(first.body, br#"{"b": 1, "a": 2}"#);
    assert_eq!(first.meta, v0);
    let second = at(v1.update_time_micros).unwrap();
    assert_eq!(second.body, br#"{"b":1,"a":2,"c":3}"#);
    assert_eq!(second.meta, v1);
    assert_eq!(at(v2.update_time_micros), None, "deleted then");
    assert_eq!(
        at(v3.update_time_micros).unwrap().body,
        br#"{"again":true}"#
    );
    assert_eq!(at(u64::MAX).unwrap().meta, v3);

    let version = |n: u64| store.get_raw_version("/d", n).unwrap();
    assert_eq!(version(0).unwrap(), first);
    assert_eq!(version(1).unwrap(), second);
    let tombstone = version(2).unwrap();
    assert!(tombstone.meta.deleted && tombstone.body.is_empty());
    assert_eq!(tombstone.meta, v2);
    assert_eq!(version(3).unwrap().meta, v3);
    assert_eq!(version(4), None);
    assert_eq!(store.get_raw_version("/nothing", 0).unwrap(), None);
    assert_eq!(store.get_raw_at("/nothing", u64::MAX).unwrap(), None);
    // Each raw read parses to what the parsed read returns.
    assert_eq!(
        version(1).unwrap().parse().unwrap(),
        store.get_version("/d", 1).unwrap().unwrap()
    );
    assert_eq!(
        at(v1.update_time_micros).unwrap().parse().unwrap(),
        store.get_at("/d", v1.update_time_micros).unwrap().unwrap()
    );
}

// The query model's limits and names were public only in the query crate, which callers do not
// depend on.
#[test]
fn query_constants_are_exported_and_mean_what_they_say() {
    let store = Store::open_in_memory(Options::default()).unwrap();
    store.put("/a", "t", json!({"d": "word"})).unwrap();
    let all = || strata::QuerySpec::new(strata::Query::All);
    assert!(store.query(&all().limit(strata::MAX_LIMIT)).is_ok());
    assert!(store.query(&all().limit(strata::MAX_LIMIT + 1)).is_err());
    assert!(store.query(&all().offset(strata::MAX_OFFSET)).is_ok());
    assert!(store.query(&all().offset(strata::MAX_OFFSET + 1)).is_err());
    assert_eq!(all().limit, strata::DEFAULT_LIMIT);
    assert_eq!(strata::SCORE, "_score");
    let by_score = strata::QuerySpec::new(strata::parse_query("word").unwrap())
        .sort(strata::SortKey::desc(strata::SCORE));
    assert_eq!(store.query(&by_score).unwrap().documents.len(), 1);
    let long = "k".repeat(strata::MAX_KEYWORD_BYTES + 1);
    store.put("/long", "t", json!({ "s": long })).unwrap();
    let exact = strata::QuerySpec::new(strata::Query::term("s", long.as_str()));
    assert_eq!(store.query(&exact).unwrap().documents.len(), 0);
    assert!(strata::parse_query(&format!("{}:1", "p".repeat(strata::MAX_PATH_BYTES + 1))).is_err());
    let deep = format!(
        "{}a:1{}",
        "(".repeat(strata::MAX_QUERY_DEPTH + 1),
        ")".repeat(strata::MAX_QUERY_DEPTH + 1)
    );
    assert!(strata::parse_query(&deep).is_err());
}
