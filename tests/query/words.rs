//! `field:word` on a string longer than the keyword limit (256 bytes): such a string has no
//! keyword, so a term on it once matched nothing by construction. A term whose value is one
//! word also matches a word of such a string, alike in the uncommitted tail, the committed
//! index, a reopened index and an index written before the rule (rebuilt on open). Strings of
//! at most 256 bytes keep exact, case-sensitive terms.

use std::path::Path;

use serde_json::json;
use strata::{Options, Query, QuerySpec, Store};

use crate::{in_all_modes, tail_index_options, Db};

/// A description of more than 256 bytes holding `library` and `python` (as `Python`).
fn requests_description() -> String {
    "Requests is an elegant and simple HTTP library for Python, built for human beings. ".repeat(4)
}

/// A description of more than 256 bytes holding `library` but not `python`.
fn gsl_description() -> String {
    "A portable library of numerical routines written in C with bindings for many languages; "
        .repeat(4)
}

/// The four packages of the fixture `index-words-v1` (written by the same lines).
fn put_packages(store: &Store, step: impl Fn()) {
    let long = requests_description();
    assert!(long.len() > strata::MAX_KEYWORD_BYTES);
    store
        .put(
            "/p/requests",
            "package",
            json!({"description": long, "section": "python"}),
        )
        .unwrap();
    store
        .put(
            "/p/gsl",
            "package",
            json!({"description": gsl_description(), "section": "c"}),
        )
        .unwrap();
    step();
    store
        .put(
            "/p/short",
            "package",
            json!({"description": "python library", "section": "python web"}),
        )
        .unwrap();
    store
        .put(
            "/p/exact",
            "package",
            json!({"description": "python", "section": "python"}),
        )
        .unwrap();
}

fn sorted_ids(r: strata::Result<strata::QueryResult>, what: &str) -> Vec<String> {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut ids: Vec<String> = r.documents.iter().map(|d| d.meta.id.clone()).collect();
    ids.sort();
    ids
}

/// Every query of the rule with its answer, on `query`.
fn check(query: impl Fn(&QuerySpec) -> strata::Result<strata::QueryResult>, label: &str) {
    let text = |t: &str| {
        let spec = QuerySpec::new(strata::parse_query(t).unwrap());
        sorted_ids(query(&spec), &format!("[{label}] {t}"))
    };
    let built = |q: Query| {
        let spec = QuerySpec::new(q);
        sorted_ids(query(&spec), &format!("[{label}] {spec:?}"))
    };
    // The query: both words are in the long description of requests only.
    assert_eq!(
        text("description:library AND description:python"),
        ["/p/requests"],
        "[{label}]"
    );
    assert_eq!(
        text("description:library"),
        ["/p/gsl", "/p/requests"],
        "[{label}]"
    );
    // A short value stays an exact, case-sensitive keyword: "python library" is not matched
    // by `python`, and `Python` matches no short "python"; the word of a long value is
    // matched as full text matches it (lowercased).
    assert_eq!(
        text("description:python"),
        ["/p/exact", "/p/requests"],
        "[{label}]"
    );
    assert_eq!(text("description:Python"), ["/p/requests"], "[{label}]");
    assert_eq!(
        text("section:python"),
        ["/p/exact", "/p/requests"],
        "[{label}]"
    );
    assert_eq!(
        text("description:\"python library\""),
        ["/p/short"],
        "[{label}]"
    );
    assert_eq!(
        text("description:(numerical OR beings)"),
        ["/p/gsl", "/p/requests"],
        "[{label}]"
    );
    assert_eq!(
        text("description:library -description:python"),
        ["/p/gsl"],
        "[{label}]"
    );
    // A term of several words is never a word: it matches only an exact short value.
    assert!(
        built(Query::term("description", "library for")).is_empty(),
        "[{label}]"
    );
    assert_eq!(
        built(Query::term("description", "python library")),
        ["/p/short"],
        "[{label}]"
    );
    // A case-insensitive term: the short value by its lowercase form, the long by its words.
    assert_eq!(
        built(Query::term_ci("description", "PYTHON")),
        ["/p/exact", "/p/requests"],
        "[{label}]"
    );
    assert_eq!(
        built(Query::terms("description", ["routines", "python"])),
        ["/p/exact", "/p/gsl", "/p/requests"],
        "[{label}]"
    );
    // The word belongs to its own path only.
    assert!(
        built(Query::term("section", "library")).is_empty(),
        "[{label}]"
    );
}

/// Regression: `description:library AND description:python` answered 0 where a description
/// over 256 bytes held both words (a term was an exact keyword only, and such a string has
/// none): in the tail, the committed index and the mix of both.
#[test]
fn a_term_of_one_word_matches_a_word_of_a_long_string() {
    in_all_modes(|db: &Db| {
        put_packages(&db.store, || db.step());
        check(|spec| db.try_query(spec), &format!("{:?}", db.mode));
    });
}

/// Regression: the same after the index committed and the store was reopened on it.
#[test]
fn a_reopened_index_matches_words_of_long_strings() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::default().with_index_options(tail_index_options());
    {
        let store = Store::open(dir.path(), options()).unwrap();
        put_packages(&store, || {});
        store.wait_for_index().unwrap();
    }
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_eq!(store.index_progress().committed_seq, store.last_seq());
    check(|spec| store.query(spec), "reopened");
}

fn copy_fixture(name: &str, to: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    for sub in ["log", "index"] {
        let dest = to.join(sub);
        std::fs::create_dir_all(&dest).unwrap();
        for entry in std::fs::read_dir(fixture.join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
        }
    }
}

/// Regression: an index written before words of long strings were indexed (fixture
/// `index-words-v1`, the packages of [`put_packages`]) would answer a word term with nothing;
/// it is rebuilt on open, and a read-only open does not use it.
#[test]
fn an_index_without_words_of_long_strings_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture("index-words-v1", dir.path());
    {
        let store = Store::open_read_only(dir.path(), Options::default()).unwrap();
        check(|spec| store.query(spec), "read-only on the old index");
    }
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let rebuilt = store.index_open_report().rebuilt.clone();
    assert!(
        rebuilt.as_deref().is_some_and(|r| r.contains("schema")),
        "{rebuilt:?}"
    );
    store.wait_for_index().unwrap();
    check(|spec| store.query(spec), "rebuilt");
}

/// A whole number or a boolean is a word too, as the text syntax types it (`notes:2024` is a
/// number to the parser); a number with a fraction is several words.
#[test]
fn numbers_and_booleans_are_words_of_a_long_string() {
    in_all_modes(|db: &Db| {
        let notes = "released in 2024, stable: true; see the changelog for details. ".repeat(5);
        db.store
            .put("/n/long", "note", json!({"notes": notes, "n": 2024}))
            .unwrap();
        db.step();
        db.store
            .put("/n/short", "note", json!({"notes": "2024", "n": 2024.5}))
            .unwrap();
        let q = |t: &str| {
            sorted_ids(
                db.try_query(&QuerySpec::new(strata::parse_query(t).unwrap())),
                t,
            )
        };
        assert_eq!(q("notes:2024"), ["/n/long"]);
        assert_eq!(q("notes:\"2024\""), ["/n/long", "/n/short"]);
        assert_eq!(q("notes:true AND notes:changelog"), ["/n/long"]);
        assert!(q("notes:2025").is_empty());
        assert!(q("notes:false").is_empty());
        assert!(q("notes:2024.5").is_empty());
        assert_eq!(q("n:2024"), ["/n/long"]);
    });
}
