//! Differential test of queries (STYLE "Tests" 5): random documents, updates and deletes; random
//! queries of every node type, sorts and snapshots; every answer of the store (index and tail)
//! must equal a brute-force evaluation over the version history kept by the test.
//!
//! Dates come from [`DATES`]: every year RFC 3339 can write, in every spelling, with seconds
//! known by construction, so the model's date order is the test's own.
//!
//! The brute force filters with the in-memory matcher, so this checks that the index agrees
//! with it, and checks visibility, counting, sorting and paging against the test's own model.

use std::cmp::Ordering;
use std::sync::LazyLock;
use std::time::Duration;

use query::{Matcher, VersionInfo};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use strata::{Field, IndexOptions, Query, QuerySpec, Range, Scalar, Snapshot, SortKey, Store};

use crate::civil::civil_from_days;
use crate::{fast_options, open, stress};

const IDS: &[&str] = &["/a/1", "/a/2", "/a/3", "/b/1", "/b/2", "/c/1", "/c/2", "/d"];
const KINDS: &[&str] = &["user", "team"];
const STRS: &[&str] = &[
    "x",
    "X",
    "foo",
    "Foo",
    "foo bar",
    "bar",
    "é",
    "2026-01-02T00:00:00Z",
];
const WORDS: &[&str] = &[
    "quick", "brown", "fox", "jumps", "lazy", "dog", "Quick", "quack", "42", "true",
];
const TAGS: &[&str] = &["red", "green", "blue", "Red"];
/// Values of terms on paths that hold long strings: words of [`WORDS`] in other casings or
/// with punctuation (one word all the same), several words, no word, and words never written.
const WORD_TERMS: &[&str] = &[
    "quick",
    "Quick",
    "QUICK",
    "fox",
    "dog!",
    "(lazy)",
    "brown fox",
    "quick-brown",
    "",
    "!!",
    "cat",
    "jumps",
];
/// Body dates and query bounds: fixed ones at the edges of what RFC 3339 writes (years 0000 and
/// 9999, offsets that leave those years in UTC, leap seconds, lower-case `t`/`z`, spaces,
/// fractions), strings that look like dates but are not, and random dates of every year in every
/// spelling. Each with its seconds since the epoch, computed here by construction (`None`: not a
/// date, a string).
static DATES: LazyLock<Vec<(String, Option<i64>)>> = LazyLock::new(|| {
    let day = |y, m, d| days_from_civil(y, m, d) * 86_400;
    let mut dates: Vec<(String, Option<i64>)> = vec![
        ("2026-01-01T00:00:00Z".into(), Some(day(2026, 1, 1))),
        ("2026-01-02T00:00:00Z".into(), Some(day(2026, 1, 2))),
        (
            "2026-01-02T12:30:00+02:00".into(),
            Some(day(2026, 1, 2) + 10 * 3600 + 1800),
        ),
        ("2026-03-01T00:00:00.5Z".into(), Some(day(2026, 3, 1))),
        ("0000-01-01T00:00:00Z".into(), Some(day(0, 1, 1))),
        (
            "0000-01-01t00:00:00+01:00".into(),
            Some(day(0, 1, 1) - 3600),
        ),
        (
            "9999-12-31T23:59:59Z".into(),
            Some(day(9999, 12, 31) + 86_399),
        ),
        (
            "9999-12-31T23:59:59-23:59".into(),
            Some(day(9999, 12, 31) + 86_399 + 86_340),
        ),
        ("1600-06-01T00:00:00.25Z".into(), Some(day(1600, 6, 1))),
        ("2300-01-01 00:00:00z".into(), Some(day(2300, 1, 1))),
        ("2016-12-31T23:59:59Z".into(), Some(day(2017, 1, 1) - 1)),
        ("2016-12-31T23:59:60Z".into(), Some(day(2017, 1, 1) - 1)),
        (
            "2017-01-01T08:59:60.5+09:00".into(),
            Some(day(2017, 1, 1) - 1),
        ),
        ("2026-02-30T00:00:00Z".into(), None),
        ("2026-01-01T12:00:60Z".into(), None),
        ("10000-01-01T00:00:00Z".into(), None),
    ];
    let mut rng = SmallRng::seed_from_u64(0xda7e);
    let first = day(0, 1, 2);
    let last = day(9999, 12, 30);
    for i in 0..24 {
        let secs = match i % 3 {
            0 => rng.random_range(first..last),
            // Around tantivy's nanosecond limits (1677 and 2262) and the present.
            1 => rng.random_range(day(1650, 1, 1)..day(1700, 1, 1)),
            _ => rng.random_range(day(2240, 1, 1)..day(2290, 1, 1)),
        };
        let offset = if rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(-1439..=1439) * 60
        };
        let leap = i % 8 == 7;
        let secs = if leap {
            // The last second of a month in UTC, written as :60.
            let (y, m, _) = civil_from_days(secs.div_euclid(86_400));
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            day(ny, nm, 1) - 1
        } else {
            secs
        };
        let local = secs + offset;
        let (y, m, d) = civil_from_days(local.div_euclid(86_400));
        let t = local.rem_euclid(86_400);
        let second = if leap { 60 } else { t % 60 };
        let sep = ["T", "t", " "][rng.random_range(0..3)];
        let frac = match rng.random_range(0..4) {
            0 => String::new(),
            n => format!(".{}", rng.random_range(0..10u64.pow(n * 3 - 1))),
        };
        let zone = match offset {
            0 if rng.random_bool(0.5) => "Z".to_owned(),
            0 => "z".to_owned(),
            o => format!(
                "{}{:02}:{:02}",
                if o < 0 { '-' } else { '+' },
                o.abs() / 3600,
                o.abs() / 60 % 60
            ),
        };
        dates.push((
            format!(
                "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{second:02}{frac}{zone}",
                t / 3600,
                t / 60 % 60
            ),
            Some(secs),
        ));
    }
    dates
});

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithms).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn any_date(rng: &mut SmallRng) -> &'static str {
    &DATES.choose(rng).unwrap().0
}

/// A bound of a date range: only real dates (a string bound beside a date one is an error).
fn date_bound(rng: &mut SmallRng) -> Scalar {
    loop {
        let (s, secs) = DATES.choose(rng).unwrap();
        if secs.is_some() {
            return Scalar::Str(s.clone());
        }
    }
}

fn date_range(rng: &mut SmallRng) -> Query {
    let mut r = Range {
        field: Field::Body("d".into()),
        gt: None,
        gte: None,
        lt: None,
        lte: None,
    };
    match rng.random_range(0..3) {
        0 => r.gt = Some(date_bound(rng)),
        1 => r.gte = Some(date_bound(rng)),
        _ => {}
    }
    match rng.random_range(0..3) {
        0 => r.lt = Some(date_bound(rng)),
        1 => r.lte = Some(date_bound(rng)),
        _ if r.gt.is_none() && r.gte.is_none() => r.lte = Some(date_bound(rng)),
        _ => {}
    }
    Query::Range(r)
}
const SORT_FIELDS: &[&str] = &[
    "a", "b", "s", "d", "n.x", "tags", "_id", "_version", "_kind", "_updated",
];

#[derive(Debug, Clone)]
struct V {
    info: VersionInfo,
    body: Value,
}

impl V {
    /// The version a write returned, with the body it wrote (`Null` for a delete).
    fn new(meta: strata::Meta, body: Value) -> V {
        V {
            info: VersionInfo {
                seq: meta.seq,
                id: meta.id,
                kind: meta.kind,
                version: meta.version,
                time: meta.update_time_micros,
                tombstone: meta.deleted,
                expires_at: None,
            },
            body,
        }
    }
}

fn sentence(rng: &mut SmallRng) -> String {
    let n = rng.random_range(1..6);
    (0..n)
        .map(|_| *WORDS.choose(rng).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words of [`WORDS`] up to a length drawn around the keyword limit (240 to 300 bytes), so
/// that some are keywords (at most 256 bytes) and the others are searched by their words.
fn long_sentence(rng: &mut SmallRng) -> String {
    let target = rng.random_range(240..300);
    let mut s = sentence(rng);
    while s.len() < target {
        s.push_str([" ", ", ", "-"][rng.random_range(0..3)]);
        s.push_str(WORDS.choose(rng).unwrap());
    }
    s
}

fn body(rng: &mut SmallRng) -> Value {
    let mut m = serde_json::Map::new();
    if rng.random_bool(0.8) {
        m.insert("a".into(), json!(rng.random_range(0..5)));
    }
    if rng.random_bool(0.7) {
        let v = match rng.random_range(0..3) {
            0 => json!(rng.random_range(0..4)),
            1 => json!(rng.random_range(0..4) as f64 + 0.5),
            _ => json!(rng.random_range(0..4) as f64),
        };
        m.insert("b".into(), v);
    }
    if rng.random_bool(0.7) {
        m.insert("s".into(), json!(STRS.choose(rng).unwrap()));
    }
    if rng.random_bool(0.7) {
        let t = if rng.random_bool(0.3) {
            long_sentence(rng)
        } else {
            sentence(rng)
        };
        m.insert("t".into(), json!(t));
    }
    if rng.random_bool(0.6) {
        let n = rng.random_range(0..4);
        let mut tags: Vec<String> = (0..n)
            .map(|_| (*TAGS.choose(rng).unwrap()).into())
            .collect();
        if rng.random_bool(0.2) {
            // A long string beside short ones, holding tags as words.
            let words: Vec<&str> = (0..60).map(|_| *TAGS.choose(rng).unwrap()).collect();
            tags.push(words.join(" "));
        }
        m.insert("tags".into(), json!(tags));
    }
    if rng.random_bool(0.5) {
        m.insert(
            "n".into(),
            json!({"x": rng.random_range(0..3), "y": sentence(rng)}),
        );
    }
    if rng.random_bool(0.5) {
        m.insert("d".into(), json!(any_date(rng)));
    } else if rng.random_bool(0.2) {
        m.insert("d".into(), json!([any_date(rng), any_date(rng)]));
    }
    if rng.random_bool(0.1) {
        m.insert("long".into(), json!("foo ".repeat(80)));
    } else if rng.random_bool(0.2) {
        m.insert("long".into(), json!(long_sentence(rng)));
    }
    if rng.random_bool(0.1) {
        m.insert("mixed".into(), json!([1, "x", true, null, {"a": 2}]));
    }
    Value::Object(m)
}

fn leaf_query(rng: &mut SmallRng) -> Query {
    match rng.random_range(0..31) {
        0 => Query::term("a", rng.random_range(0..5)),
        1 => Query::term("b", [0.5, 1.0, 2.0, 1.5][rng.random_range(0..4)]),
        2 => Query::term("s", *STRS.choose(rng).unwrap()),
        3 => Query::term_ci("s", *STRS.choose(rng).unwrap()),
        4 => Query::terms("tags", TAGS.choose_multiple(rng, 2).copied()),
        5 => Query::phrase(
            "t",
            format!(
                "{} {}",
                WORDS.choose(rng).unwrap(),
                WORDS.choose(rng).unwrap()
            ),
        ),
        6 => Query::matches("t", *WORDS.choose(rng).unwrap()),
        7 => Query::text(*WORDS.choose(rng).unwrap()),
        8 => Query::prefix("s", ["f", "F", "", "x", "ba"][rng.random_range(0..5)]),
        9 => Query::wildcard("s", ["?o*", "*a*", "f??", "*"][rng.random_range(0..4)]),
        10 => Query::fuzzy(
            "t",
            ["quik", "dgo", "fox", "lazzy"][rng.random_range(0..4)],
            rng.random_range(0..3),
        ),
        11 => {
            let lo = rng.random_range(0..4);
            Query::range("a", lo..lo + rng.random_range(0..3))
        }
        12 => Query::range("b", 0.5..=2.0),
        13 | 22 | 23 => date_range(rng),
        24 => Query::term("d", any_date(rng)),
        14 => Query::range("s", "bar".."foo bar"),
        15 => Query::exists(["n", "n.x", "tags", "long", "mixed.a"][rng.random_range(0..5)]),
        16 => Query::kind(*KINDS.choose(rng).unwrap()),
        17 => Query::id_prefix(["/a/", "/b", "/", "/zz"][rng.random_range(0..4)]),
        18 => Query::range("_version", 1..),
        19 => match rng.random_range(0..3) {
            0 => Query::term("mixed", 1),
            1 => Query::term("mixed", "x"),
            _ => Query::term("mixed", true),
        },
        20 => Query::phrase("long", "foo foo"),
        // Terms on paths of long strings: a term of one word matches a word of a string over
        // 256 bytes, and only the exact value of a shorter one.
        25 => Query::term("t", *WORD_TERMS.choose(rng).unwrap()),
        26 => Query::term_ci("t", *WORD_TERMS.choose(rng).unwrap()),
        27 => Query::terms("tags", WORD_TERMS.choose_multiple(rng, 2).copied()),
        28 => Query::term(
            ["long", "tags"][rng.random_range(0..2)],
            ["foo", "Foo", "red", "quick", "foo foo"][rng.random_range(0..5)],
        ),
        29 => match rng.random_range(0..4) {
            // Whole numbers and booleans are words too; a fraction is not one word.
            0 => Query::term("t", 42),
            1 => Query::term("t", true),
            2 => Query::term("t", 42.0),
            _ => Query::terms("t", [Scalar::Int(42), Scalar::Bool(false)]),
        },
        _ => Query::term("n.x", rng.random_range(0..3)),
    }
}

fn random_query(rng: &mut SmallRng, depth: usize) -> Query {
    if depth == 0 || rng.random_bool(0.4) {
        return leaf_query(rng);
    }
    let mut b = strata::BoolQuery::default();
    for _ in 0..rng.random_range(0..3) {
        b.must.push(random_query(rng, depth - 1));
    }
    for _ in 0..rng.random_range(0..3) {
        b.should.push(random_query(rng, depth - 1));
    }
    for _ in 0..rng.random_range(0..2) {
        b.must_not.push(random_query(rng, depth - 1));
    }
    Query::Bool(b)
}

/// Sort values the way the README defines them, written independently of the crate.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Bool(bool),
    Num(f64),
    Date(i64),
    Str(String),
    Missing,
}

/// Seconds of the RFC 3339 strings the test writes (the others are not dates).
fn date_secs(s: &str) -> Option<i64> {
    DATES
        .iter()
        .find(|(d, _)| d == s)
        .and_then(|(_, secs)| *secs)
}

fn keys_of(v: &Value, out: &mut Vec<Key>) {
    match v {
        Value::Bool(b) => out.push(Key::Bool(*b)),
        Value::Number(n) => out.push(Key::Num(n.as_f64().unwrap())),
        Value::String(s) => match date_secs(s) {
            Some(d) => out.push(Key::Date(d)),
            None if s.len() <= 256 => out.push(Key::Str(s.clone())),
            None => {}
        },
        Value::Array(items) => items.iter().for_each(|i| keys_of(i, out)),
        _ => {}
    }
}

fn rank(k: &Key) -> u8 {
    match k {
        Key::Bool(_) => 0,
        Key::Num(_) => 1,
        Key::Date(_) => 2,
        Key::Str(_) => 3,
        Key::Missing => 4,
    }
}

fn cmp_asc(a: &Key, b: &Key) -> Ordering {
    match (a, b) {
        (Key::Bool(x), Key::Bool(y)) => x.cmp(y),
        (Key::Num(x), Key::Num(y)) => x.total_cmp(y),
        (Key::Date(x), Key::Date(y)) => x.cmp(y),
        (Key::Str(x), Key::Str(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn sort_key(field: &str, v: &V) -> Key {
    let i = &v.info;
    match field {
        "_id" => Key::Str(i.id.clone()),
        "_kind" => Key::Str(i.kind.clone()),
        "_version" => Key::Num(i.version as f64),
        "_updated" => Key::Num(i.time as f64),
        "_seq" => Key::Num(i.seq as f64),
        path => {
            let mut cur = vec![&v.body];
            for seg in path.split('.') {
                cur = cur
                    .into_iter()
                    .flat_map(|c| match c {
                        Value::Array(items) => items.iter().collect::<Vec<_>>(),
                        other => vec![other],
                    })
                    .filter_map(|c| c.get(seg))
                    .collect();
            }
            let mut keys = Vec::new();
            cur.into_iter().for_each(|c| keys_of(c, &mut keys));
            keys.into_iter().min_by(cmp_asc).unwrap_or(Key::Missing)
        }
    }
}

fn cmp_dir(a: &Key, b: &Key, desc: bool) -> Ordering {
    match (a, b) {
        (Key::Missing, Key::Missing) => Ordering::Equal,
        (Key::Missing, _) => Ordering::Greater,
        (_, Key::Missing) => Ordering::Less,
        _ if desc => cmp_asc(b, a),
        _ => cmp_asc(a, b),
    }
}

/// The versions a snapshot sees, brute force over the history.
fn visible<'a>(history: &'a [V], snapshot: Snapshot, include_deleted: bool) -> Vec<&'a V> {
    let last = history.len() as u64;
    let current = |pick: &dyn Fn(&V) -> bool| -> Vec<&'a V> {
        let mut newest: std::collections::BTreeMap<&str, &V> = Default::default();
        for v in history.iter().filter(|v| pick(v)) {
            newest.insert(&v.info.id, v);
        }
        newest.into_values().collect()
    };
    let all: Vec<&V> = match snapshot {
        Snapshot::Current => current(&|_| true),
        Snapshot::AsOf(t) => current(&|v| v.info.time <= t),
        Snapshot::AtSeq(s) => current(&|v| v.info.seq <= s.min(last)),
        Snapshot::AllVersions => history.iter().collect(),
    };
    all.into_iter()
        .filter(|v| include_deleted || !v.info.tombstone)
        .collect()
}

fn expected(history: &[V], spec: &QuerySpec) -> (u64, Vec<u64>) {
    let matcher = Matcher::new(&spec.query).expect("the generated query compiles");
    let mut hits: Vec<&V> = visible(history, spec.snapshot, spec.include_deleted)
        .into_iter()
        .filter(|v| matcher.matches(&v.info, &v.body))
        .collect();
    hits.sort_by(|a, b| {
        for k in &spec.sort {
            match cmp_dir(&sort_key(&k.field, a), &sort_key(&k.field, b), k.descending) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        a.info.seq.cmp(&b.info.seq)
    });
    let count = hits.len() as u64;
    (count, hits.into_iter().map(|v| v.info.seq).collect())
}

fn random_spec(rng: &mut SmallRng, history: &[V]) -> QuerySpec {
    let snapshot = match rng.random_range(0..4) {
        0 => Snapshot::Current,
        1 => Snapshot::AsOf(
            history[rng.random_range(0..history.len())].info.time + rng.random_range(0..2),
        ),
        2 => Snapshot::AtSeq(rng.random_range(0..history.len() as u64 + 2)),
        _ => Snapshot::AllVersions,
    };
    let mut spec = QuerySpec::new(random_query(rng, 3))
        .snapshot(snapshot)
        .include_deleted(rng.random_bool(0.2))
        .count(true)
        .limit(rng.random_range(1..8));
    for _ in 0..rng.random_range(0..3) {
        let f = SORT_FIELDS.choose(rng).unwrap();
        spec = spec.sort(if rng.random_bool(0.5) {
            SortKey::desc(f)
        } else {
            SortKey::asc(f)
        });
    }
    spec
}

/// Runs `spec` page by page and returns the count and every seq in order.
fn run_paged(store: &Store, spec: &QuerySpec) -> (u64, Vec<u64>) {
    let mut seqs = Vec::new();
    let mut page = spec.clone();
    let mut count = None;
    loop {
        let r = store
            .query(&page)
            .unwrap_or_else(|e| panic!("query {spec:?} failed: {e}"));
        count.get_or_insert(r.count.expect("count asked"));
        seqs.extend(r.documents.iter().map(|d| d.meta.seq));
        match r.next_page {
            Some(token) => page = spec.clone().page(token),
            None => return (count.unwrap_or(0), seqs),
        }
        assert!(seqs.len() <= 10_000, "paging does not end");
    }
}

fn write_random(store: &Store, rng: &mut SmallRng, history: &mut Vec<V>, n: usize) {
    for _ in 0..n {
        let id = *IDS.choose(rng).unwrap();
        let live = history
            .iter()
            .rev()
            .find(|v| v.info.id == id)
            .is_some_and(|v| !v.info.tombstone);
        let (meta, body) = if live && rng.random_bool(0.25) {
            (store.delete(id).expect("delete"), Value::Null)
        } else {
            let b = body(rng);
            let kind = *KINDS.choose(rng).unwrap();
            (store.put(id, kind, b.clone()).expect("put"), b)
        };
        history.push(V::new(meta, body));
    }
}

fn check(store: &Store, rng: &mut SmallRng, history: &[V], queries: usize, label: &str) {
    let mut nonempty = 0;
    for _ in 0..queries {
        let spec = random_spec(rng, history);
        let want = expected(history, &spec);
        let got = run_paged(store, &spec);
        assert_eq!(
            got,
            want,
            "{label}: {}\nspec: {spec:?}",
            spec.query.to_json()
        );
        nonempty += usize::from(want.0 > 0);
    }
    // The generator must produce queries that select something, or the test proves little.
    assert!(
        nonempty * 5 >= queries,
        "{label}: only {nonempty} of {queries} queries matched"
    );
}

fn run(seed: u64, tail: bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let index = if tail {
        // Commits so rare that every query runs on the in-memory tail.
        IndexOptions::default()
            .with_commit_interval(Duration::from_secs(3600))
            .with_commit_versions(1 << 40)
            .with_max_lag(1 << 41)
            .with_max_tail(1 << 41)
    } else {
        IndexOptions::default()
    };
    let store = open(dir.path(), fast_options().with_index_options(index));
    let mut history = Vec::new();
    let rounds = if stress() { 10 } else { 3 };
    for round in 0..rounds {
        write_random(&store, &mut rng, &mut history, 40);
        if !tail {
            store.wait_for_index().unwrap();
        }
        check(
            &store,
            &mut rng,
            &history,
            60,
            &format!("seed {seed} round {round} tail {tail}"),
        );
    }
}

#[test]
fn index_answers_equal_brute_force() {
    for seed in 0..if stress() { 40 } else { 4 } {
        run(seed, false);
    }
}

#[test]
fn tail_answers_equal_brute_force() {
    for seed in 100..if stress() { 140 } else { 104 } {
        run(seed, true);
    }
}

#[test]
fn reopened_index_answers_equal_brute_force() {
    let mut rng = SmallRng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    let mut history = Vec::new();
    for round in 0..3 {
        let store = open(dir.path(), fast_options());
        write_random(&store, &mut rng, &mut history, 50);
        check(
            &store,
            &mut rng,
            &history,
            40,
            &format!("reopen round {round}"),
        );
        drop(store);
    }
}

/// Boolean shapes whose scorers seek far ahead (past tantivy's 4096-document union horizon)
/// on one large segment: a selective filter ANDed with a union of ANDs, nested negations.
#[test]
fn large_index_boolean_answers_equal_brute_force() {
    let mut rng = SmallRng::seed_from_u64(11);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast_options());
    let mut history: Vec<V> = Vec::new();
    let n = if stress() { 40_000 } else { 12_000 };
    let mut i = 0;
    while i < n {
        let mut batch = strata::Batch::new();
        let mut bodies = Vec::new();
        for j in i..(i + 1000).min(n) {
            let b = body(&mut rng);
            batch = batch.put(
                format!("/big/{j}"),
                *KINDS.choose(&mut rng).unwrap(),
                b.clone(),
            );
            bodies.push(b);
        }
        let metas = store.write(batch).unwrap();
        for (meta, body) in metas.into_iter().zip(bodies) {
            history.push(V::new(meta, body));
        }
        i += 1000;
    }
    store.wait_for_index().unwrap();
    for _ in 0..80 {
        let pair = |rng: &mut SmallRng| {
            Query::matches("t", *WORDS.choose(rng).unwrap())
                .and(Query::matches("n.y", *WORDS.choose(rng).unwrap()))
        };
        let filter = if rng.random_bool(0.5) {
            Query::term("a", rng.random_range(0..5)).and(Query::term("n.x", rng.random_range(0..3)))
        } else {
            // Very selective: the union is sought thousands of documents ahead.
            let ids: Vec<String> = (0..3)
                .map(|_| format!("/big/{}", rng.random_range(0..n)))
                .collect();
            Query::terms("_id", ids.iter().map(String::as_str))
        };
        let union = pair(&mut rng)
            .or(pair(&mut rng))
            .or(Query::phrase("t", "lazy dog"));
        let q = match rng.random_range(0..3) {
            0 => filter.and(union),
            1 => union
                .and(filter)
                .and_not(Query::term("s", *STRS.choose(&mut rng).unwrap())),
            _ => Query::kind("user").and(union.negate()).and(filter),
        };
        let spec = QuerySpec::new(q)
            .snapshot(Snapshot::Current)
            .count(true)
            .limit(5);
        let (count, seqs) = expected(&history, &spec);
        let got = store.query(&spec).unwrap();
        let got_seqs: Vec<u64> = got.documents.iter().map(|d| d.meta.seq).collect();
        assert_eq!(
            (got.count.unwrap(), got_seqs),
            (count, seqs.into_iter().take(5).collect()),
            "{}",
            spec.query.to_json()
        );
    }
}

/// Odd but valid input gives an answer or a typed error, never a panic: inverted ranges,
/// huge prefixes and patterns, open ranges of every type, on the index and on the tail.
#[test]
#[expect(
    clippy::reversed_empty_ranges,
    reason = "inverted ranges are the input under test"
)]
fn odd_queries_answer_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast_options());
    let mut rng = SmallRng::seed_from_u64(3);
    let mut history = Vec::new();
    write_random(&store, &mut rng, &mut history, 50);
    let long = "é*?".repeat(400);
    let queries = vec![
        Query::range("a", 5..1),
        Query::range("b", 2.5..0.5),
        Query::range("d", "2027-01-01T00:00:00Z".."2026-01-01T00:00:00Z"),
        Query::range("s", "z".."a"),
        Query::range("_version", 9..2),
        Query::range("_updated", "2100-01-01T00:00:00Z"..),
        Query::range("a", i64::MIN..),
        Query::range("a", ..u64::MAX),
        Query::range("b", f64::MIN..f64::MAX),
        Query::prefix("s", long.clone()),
        Query::prefix("_id", "/".repeat(5000)),
        Query::wildcard("s", long.clone()),
        Query::wildcard("s", "*".repeat(200)),
        Query::term("s", "x".repeat(100_000)),
        Query::phrase("t", "!!! ???"),
        Query::fuzzy("t", "quick", 2),
    ];
    for tail in [false, true] {
        if !tail {
            store.wait_for_index().unwrap();
        } else {
            write_random(&store, &mut rng, &mut history, 20);
        }
        for q in &queries {
            let spec = QuerySpec::new(q.clone())
                .count(true)
                .sort(SortKey::desc("a"));
            match store.query(&spec) {
                Ok(r) => {
                    let (count, seqs) = expected(&history, &spec);
                    let got: Vec<u64> = r.documents.iter().map(|d| d.meta.seq).collect();
                    assert_eq!((r.count.unwrap(), got), (count, seqs), "{}", q.to_json());
                }
                Err(strata::Error::Query(e)) => {
                    assert!(!e.to_string().is_empty());
                }
                Err(e) => panic!("{}: not a query error: {e}", q.to_json()),
            }
        }
    }
}
