//! Dates in bodies of every year RFC 3339 can write (0000 to 9999), with offsets, fractions,
//! lower-case `t`/`z` and leap seconds: ranges, terms, sorts and groups give the same answers
//! from the uncommitted tail, the committed index and a reopened one. tantivy's own dates are
//! i64 nanoseconds, which end in 1677 and 2262.

use std::path::Path;

use serde_json::{json, Value};
use strata::{GroupBy, Options, Query, QuerySpec, SortKey, Store};

use crate::{ids, in_all_modes, strs, tail_index_options, Db, MODES};

/// (id, date) in ascending time; `/d/leap` and `/d/2016` are the same second.
const DATES: [(&str, &str); 11] = [
    ("/d/0000", "0000-01-01T00:00:00+01:00"),
    ("/d/0001", "0001-01-01T00:00:00Z"),
    ("/d/1600", "1600-06-01t00:00:00.5z"),
    ("/d/1677", "1677-09-21T00:12:43Z"),
    ("/d/1970", "1969-12-31T23:59:59.999Z"),
    ("/d/2016", "2016-12-31T23:59:59Z"),
    ("/d/leap", "2017-01-01T08:59:60+09:00"),
    ("/d/2020", "2020-01-01 00:00:00Z"),
    ("/d/2300", "2300-01-01T00:00:00Z"),
    ("/d/9999", "9999-12-31T23:59:59Z"),
    ("/d/10000", "9999-12-31T23:59:59-23:59"),
];

fn put_dates(store: &Store) {
    for (i, (id, date)) in DATES.iter().enumerate() {
        // A number and a non-date string share the path: they sort before and after dates.
        store.put(id, "dated", json!({"d": date, "i": i})).unwrap();
    }
    store.put("/d/num", "dated", json!({"d": 5})).unwrap();
    store
        .put("/d/str", "dated", json!({"d": "2026-02-30T00:00:00Z"}))
        .unwrap();
}

fn query_ids(store: &Store, spec: QuerySpec) -> Vec<String> {
    ids(&store
        .query(&spec)
        .unwrap_or_else(|e| panic!("{spec:?}: {e}")))
}

/// Every date query this file checks, with its expected answer, on one store.
fn check(store: &Store, label: &str) {
    let asc: Vec<&str> = DATES.iter().map(|(id, _)| *id).collect();
    let from = |first: &str| {
        let at = asc.iter().position(|id| *id == first).unwrap();
        asc[at..]
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    let q = |text: &str| QuerySpec::new(strata::parse_query(text).unwrap()).count(true);
    // `d:"..."` in the text syntax is a phrase; a quoted term needs the builder.
    let term = |value: &str| QuerySpec::new(Query::term("d", value));

    // The queries: a lower bound in range, a date past 2262 as a term.
    assert_eq!(
        query_ids(store, q("d:>=2000-01-01T00:00:00Z")),
        from("/d/2016"),
        "{label}"
    );
    assert_eq!(
        query_ids(store, q("d:2300-01-01T00:00:00Z")),
        strs(["/d/2300"]),
        "{label}"
    );
    // Equal instants in other spellings; a leap second is the end of its 23:59:59.
    assert_eq!(
        query_ids(store, term("9999-12-31t23:59:59.75z")),
        strs(["/d/9999"]),
        "{label}"
    );
    assert_eq!(
        query_ids(store, term("2016-12-31T23:59:60Z")),
        strs(["/d/2016", "/d/leap"]),
        "{label}"
    );
    assert_eq!(
        query_ids(store, term("-0001-12-31T23:00:00Z")),
        Vec::<String>::new(),
        "{label}: not a date, and no such string"
    );
    assert_eq!(
        query_ids(store, term("2026-02-30T00:00:00Z")),
        strs(["/d/str"]),
        "{label}: an impossible date is a string"
    );
    // Bounds at both ends of what RFC 3339 can write.
    assert_eq!(
        query_ids(store, q("d:<=0000-01-01T00:00:00Z")),
        strs(["/d/0000"]),
        "{label}"
    );
    assert_eq!(
        query_ids(store, q("d:>9999-12-31T23:59:59Z")),
        strs(["/d/10000"]),
        "{label}"
    );
    assert_eq!(
        query_ids(store, q("d:[1600-06-01T00:00:00Z TO 1970-01-01T00:00:00Z}")),
        strs(["/d/1600", "/d/1677", "/d/1970"]),
        "{label}"
    );
    // Sorted: numbers < dates < strings, ties by seq.
    let sorted = |desc: bool| {
        let key = if desc {
            SortKey::desc("d")
        } else {
            SortKey::asc("d")
        };
        query_ids(
            store,
            QuerySpec::new(Query::kind("dated")).sort(key).limit(100),
        )
    };
    let mut want: Vec<String> = std::iter::once("/d/num")
        .chain(asc.iter().copied())
        .chain(["/d/str"])
        .map(str::to_owned)
        .collect();
    assert_eq!(sorted(false), want, "{label}: ascending");
    want.reverse();
    // Descending keeps seq order between the equal leap second and 23:59:59.
    let (a, b) = (
        want.iter().position(|id| id == "/d/leap").unwrap(),
        want.iter().position(|id| id == "/d/2016").unwrap(),
    );
    want.swap(a, b);
    assert_eq!(sorted(true), want, "{label}: descending");
    // Group keys are dates that read back as the same instant.
    let r = store
        .query(
            &QuerySpec::new(
                strata::parse_query("d:<1000-01-01T00:00:00Z OR d:>9000-01-01T00:00:00Z").unwrap(),
            )
            .limit(0)
            .group_by(GroupBy::new("d")),
        )
        .unwrap();
    let mut keys: Vec<Value> = r.groups.iter().map(|g| g.key.clone()).collect();
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(
        keys,
        vec![
            json!("0000-01-01T22:59:00+23:59"),
            json!("0001-01-01T00:00:00Z"),
            json!("9999-12-31T23:59:59-23:59"),
            json!("9999-12-31T23:59:59Z"),
        ],
        "{label}"
    );
}

/// Regression: a date before 1677-09-21 or after 2262-04-11 overflowed tantivy's nanosecond
/// dates: wrong answers after the index committed (a panic in debug builds).
#[test]
fn dates_of_every_year_query_alike_in_tail_index_and_reopened_index() {
    for mode in MODES {
        let db = Db::open(mode);
        put_dates(&db.store);
        db.step();
        let label = format!("{mode:?}");
        if mode != crate::Mode::Tail {
            db.store.wait_for_index().unwrap();
        }
        check(&db.store, &label);
    }

    let dir = tempfile::tempdir().unwrap();
    let options = || Options::default().with_index_options(tail_index_options());
    {
        let store = Store::open(dir.path(), options()).unwrap();
        put_dates(&store);
        store.wait_for_index().unwrap();
    }
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_eq!(store.index_progress().committed_seq, store.last_seq());
    check(&store, "reopened");
}

/// Dates of every form in one range query agree in all modes with the whole set of forms
/// written in one document (an array), and `exists` still sees a path holding only dates.
#[test]
fn a_path_of_dates_only_exists_and_sorts_by_its_smallest() {
    in_all_modes(|db| {
        let s = &db.store;
        s.put(
            "/a",
            "x",
            json!({"when": ["9999-01-01T00:00:00Z", "0100-01-01T00:00:00Z"]}),
        )
        .unwrap();
        s.put("/b", "x", json!({"when": "1000-01-01T00:00:00Z"}))
            .unwrap();
        db.step();
        s.put("/c", "x", json!({"other": 1})).unwrap();
        assert_eq!(
            db.ids(&QuerySpec::new(Query::exists("when"))),
            strs(["/a", "/b"])
        );
        assert_eq!(
            db.ids(&QuerySpec::new(Query::kind("x")).sort(SortKey::asc("when"))),
            strs(["/a", "/b", "/c"])
        );
        assert_eq!(
            db.ids(&QuerySpec::new(Query::kind("x")).sort(SortKey::desc("when"))),
            strs(["/b", "/a", "/c"])
        );
    });
}

/// An index written before dates had their own field (tantivy dates in the keyword field) is
/// rebuilt when opened, not read with the new meaning.
#[test]
fn an_index_of_the_old_date_encoding_is_rebuilt_on_open() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/index-dates-v1");
    let dir = tempfile::tempdir().unwrap();
    for sub in ["log", "index"] {
        let to = dir.path().join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(fixture.join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let rebuilt = store.index_open_report().rebuilt.clone();
    assert!(
        rebuilt.as_deref().is_some_and(|r| r.contains("schema")),
        "{rebuilt:?}"
    );
    store.wait_for_index().unwrap();
    let spec = QuerySpec::new(strata::parse_query("d:>=2021-01-01T00:00:00Z").unwrap())
        .count(true)
        .sort(SortKey::desc("d"));
    let r = store.query(&spec).unwrap();
    assert_eq!(ids(&r), strs(["/d/4", "/d/3"]));
    assert_eq!(r.count, Some(2));
}
