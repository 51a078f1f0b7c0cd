//! What queries return: Xenon's behaviours, the text syntax, sorting, projection, typed errors
//! and expiry, each checked against the tail, the committed index and a mix of both.

use serde_json::{json, Value};
use strata::{
    parse_query, Batch, BoolQuery, Error, GroupBy, Query, QueryError, QuerySpec, Snapshot, SortKey,
    WriteOptions,
};

use crate::{id_set, ids, in_all_modes, rfc3339, strs, versions, Db, Mode};

fn all_versions(q: Query) -> QuerySpec {
    QuerySpec::new(q)
        .snapshot(Snapshot::AllVersions)
        .include_deleted(true)
        .count(true)
}

#[test]
fn create_update_delete_gives_versions_0_1_2_with_a_tombstone() {
    in_all_modes(|db| {
        let s = &db.store;
        s.put("/users/ada", "user", json!({"name": "Ada"})).unwrap();
        s.put("/users/bob", "user", json!({"name": "Bob"})).unwrap();
        db.step();
        s.patch("/users/ada", json!({"name": "Ada L."})).unwrap();
        s.delete("/users/ada").unwrap();

        let r = db.query(&all_versions(Query::term("_id", "/users/ada")));
        assert_eq!(r.count, Some(3));
        let got: Vec<(u64, bool, Value)> = r
            .documents
            .iter()
            .map(|d| (d.meta.version, d.meta.deleted, d.body.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, false, json!({"name": "Ada"})),
                (1, false, json!({"name": "Ada L."})),
                (2, true, Value::Null),
            ]
        );

        // Without include_deleted the tombstone is left out of the history...
        let spec = QuerySpec::new(Query::term("_id", "/users/ada"))
            .snapshot(Snapshot::AllVersions)
            .count(true);
        assert_eq!(
            db.versions(&spec),
            vec![("/users/ada".into(), 0), ("/users/ada".into(), 1)]
        );
        // ...and the current state has no Ada, unless deleted documents are asked for.
        let current = QuerySpec::new(Query::term("_id", "/users/ada")).count(true);
        let r = db.query(&current);
        assert_eq!((r.count, r.documents.len()), (Some(0), 0));
        let r = db.query(&current.include_deleted(true));
        assert_eq!(versions(&r), vec![("/users/ada".into(), 2)]);
        assert!(r.documents[0].meta.deleted);
        assert_eq!(db.ids(&QuerySpec::new(Query::kind("user"))), ["/users/bob"]);
    });
}

#[test]
fn a_query_by_id_after_three_updates_finds_one_current_and_four_versions() {
    in_all_modes(|db| {
        let s = &db.store;
        s.put("/d/1", "doc", json!({"n": 0})).unwrap();
        s.put("/d/2", "doc", json!({"n": 0})).unwrap();
        for n in 1..=3 {
            s.patch("/d/1", json!({"n": n})).unwrap();
            if n == 2 {
                db.step();
            }
        }
        let r = db.query(&QuerySpec::new(Query::term("_id", "/d/1")).count(true));
        assert_eq!(r.count, Some(1));
        assert_eq!(versions(&r), vec![("/d/1".into(), 3)]);
        assert_eq!(r.documents[0].body, json!({"n": 3}));

        let r = db.query(&all_versions(Query::term("_id", "/d/1")));
        assert_eq!(r.count, Some(4));
        let got: Vec<(u64, Value)> = r
            .documents
            .iter()
            .map(|d| (d.meta.version, d.body["n"].clone()))
            .collect();
        assert_eq!(
            got,
            vec![(0, json!(0)), (1, json!(1)), (2, json!(2)), (3, json!(3))]
        );
        // A body term sees only the current value in the present, every value in history.
        assert!(db
            .ids(&QuerySpec::new(Query::term("n", 2)).count(true))
            .is_empty());
        assert_eq!(
            db.versions(&QuerySpec::new(Query::term("n", 2)).snapshot(Snapshot::AllVersions)),
            vec![("/d/1".into(), 2)]
        );
    });
}

#[test]
fn as_of_between_two_versions_returns_the_earlier() {
    in_all_modes(|db| {
        let s = &db.store;
        let v0 = s.put("/a", "item", json!({"colour": "red"})).unwrap();
        s.put("/b", "item", json!({"colour": "blue"})).unwrap();
        db.step();
        let v1 = s.patch("/a", json!({"colour": "green"})).unwrap();
        let deleted = s.delete("/b").unwrap();
        let t0 = v0.update_time_micros;
        let t1 = v1.update_time_micros;
        assert!(t1 > t0);

        let at = |t: u64| QuerySpec::new(Query::kind("item")).snapshot(Snapshot::AsOf(t));
        assert_eq!(db.versions(&at(t0 - 1)), vec![]);
        assert_eq!(db.versions(&at(t0)), vec![("/a".into(), 0)]);
        let between = db.query(&at(t1 - 1));
        assert_eq!(versions(&between), vec![("/a".into(), 0), ("/b".into(), 0)]);
        assert_eq!(between.documents[0].body, json!({"colour": "red"}));
        assert_eq!(
            db.versions(&at(t1)),
            vec![("/b".into(), 0), ("/a".into(), 1)],
            "in seq order"
        );
        assert_eq!(
            db.versions(&at(deleted.update_time_micros)),
            vec![("/a".into(), 1)]
        );
        // A body term as of the past matches the value of then.
        let red = QuerySpec::new(Query::term("colour", "red"));
        assert_eq!(
            db.versions(&red.clone().snapshot(Snapshot::AsOf(t1 - 1))),
            vec![("/a".into(), 0)]
        );
        assert_eq!(db.versions(&red), vec![]);
        // AtSeq follows the same rule on seqs.
        assert_eq!(
            db.versions(&QuerySpec::new(Query::kind("item")).snapshot(Snapshot::AtSeq(v1.seq - 1))),
            vec![("/a".into(), 0), ("/b".into(), 0)]
        );
    });
}

#[test]
fn an_offset_past_the_end_is_empty() {
    in_all_modes(|db| {
        for i in 0..5 {
            db.store
                .put(&format!("/o/{i}"), "o", json!({"i": i}))
                .unwrap();
        }
        db.step();
        for offset in [5, 6, 100, 100_000] {
            let r = db.query(
                &QuerySpec::new(Query::kind("o"))
                    .offset(offset)
                    .limit(10)
                    .count(true),
            );
            assert_eq!(r.count, Some(5), "offset {offset}");
            assert!(r.documents.is_empty(), "offset {offset}");
            assert_eq!(r.next_page, None, "offset {offset}");
        }
        let r = db.query(&QuerySpec::new(Query::kind("o")).offset(3).limit(10));
        assert_eq!(ids(&r), ["/o/3", "/o/4"]);
        assert_eq!(r.next_page, None);
        let r = db.query(&QuerySpec::new(Query::kind("o")).limit(0).count(true));
        assert_eq!((r.count, r.documents.len()), (Some(5), 0));
    });
}

/// Items with a colour and a size; the colour is missing on every 7th.
fn put_items(db: &Db, n: u64) -> Vec<(String, Value)> {
    let colours = ["red", "green", "blue"];
    let mut out = Vec::new();
    for i in 0..n {
        let mut body = json!({"size": i % 10, "n": i});
        if i % 7 != 6 {
            body["colour"] = json!(colours[(i % 3) as usize]);
        }
        let id = format!("/items/{i:03}");
        db.store.put(&id, "item", body.clone()).unwrap();
        if i == n / 2 {
            db.step();
        }
        out.push((id, body));
    }
    out
}

#[test]
fn a_nested_must_not_removes_exactly_its_matches() {
    in_all_modes(|db| {
        let items = put_items(db, 40);
        // Items that are not (red and size >= 5), and not green.
        let inner = Query::Bool(BoolQuery {
            must: vec![Query::term("colour", "red"), Query::range("size", 5..)],
            ..BoolQuery::default()
        });
        let q = Query::Bool(BoolQuery {
            must: vec![Query::kind("item")],
            must_not: vec![inner, Query::term("colour", "green")],
            ..BoolQuery::default()
        });
        let expected: Vec<String> = items
            .iter()
            .filter(|(_, b)| {
                let red_big = b["colour"] == "red" && b["size"].as_u64().unwrap() >= 5;
                !red_big && b["colour"] != "green"
            })
            .map(|(id, _)| id.clone())
            .collect();
        let r = db.query(&QuerySpec::new(q).count(true));
        assert_eq!(ids(&r), expected);
        assert_eq!(r.count, Some(expected.len() as u64));

        // A must-not of a should: neither red nor blue (so green or no colour).
        let q = Query::kind("item").and_not(Query::Bool(BoolQuery {
            should: vec![Query::term("colour", "red"), Query::term("colour", "blue")],
            ..BoolQuery::default()
        }));
        let expected: Vec<String> = items
            .iter()
            .filter(|(_, b)| b["colour"] != "red" && b["colour"] != "blue")
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(db.ids(&QuerySpec::new(q)), expected);

        // A query of only must-not matches every other document.
        let q = Query::term("colour", "red").negate();
        let expected: Vec<String> = items
            .iter()
            .filter(|(_, b)| b["colour"] != "red")
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(db.ids(&QuerySpec::new(q)), expected);
    });
}

#[test]
fn a_half_open_range_includes_the_lower_bound_and_excludes_the_upper() {
    in_all_modes(|db| {
        for n in 1..=10 {
            db.store
                .put(
                    &format!("/r/{n:02}"),
                    "r",
                    json!({"n": n, "s": format!("k{n:02}")}),
                )
                .unwrap();
            if n == 5 {
                db.step();
            }
        }
        let n_of = |spec: QuerySpec| -> Vec<i64> {
            db.query(&spec)
                .documents
                .iter()
                .map(|d| d.body["n"].as_i64().unwrap())
                .collect()
        };
        let text = |t: &str| QuerySpec::new(parse_query(t).unwrap());
        assert_eq!(n_of(text("n:[3 TO 7}")), [3, 4, 5, 6]);
        assert_eq!(n_of(text("n:{3 TO 7]")), [4, 5, 6, 7]);
        assert_eq!(n_of(text("n:[3 TO 7]")), [3, 4, 5, 6, 7]);
        assert_eq!(n_of(text("n:{3 TO 7}")), [4, 5, 6]);
        assert_eq!(n_of(text("n:[8 TO *]")), [8, 9, 10]);
        assert_eq!(n_of(text("n:{* TO 2]")), [1, 2]);
        assert_eq!(n_of(QuerySpec::new(Query::range("n", 3..7))), [3, 4, 5, 6]);
        assert_eq!(
            n_of(QuerySpec::new(Query::range("n", 3..=7))),
            [3, 4, 5, 6, 7]
        );
        // Strings compare as strings, with the same bound rules.
        assert_eq!(n_of(text("s:[k03 TO k07}")), [3, 4, 5, 6]);
        assert_eq!(n_of(QuerySpec::new(Query::range("s", "k09"..))), [9, 10]);
        // System fields too.
        assert_eq!(n_of(text("_seq:[2 TO 4}")), [2, 3]);
        // Dates (RFC 3339 strings) too.
        for n in 1..=10 {
            db.store
                .patch(
                    &format!("/r/{n:02}"),
                    json!({"at": format!("2026-01-{n:02}T12:00:00Z")}),
                )
                .unwrap();
        }
        assert_eq!(
            n_of(text("at:[2026-01-03T12:00:00Z TO 2026-01-07T12:00:00Z}")),
            [3, 4, 5, 6]
        );
        assert_eq!(
            n_of(QuerySpec::new(Query::range(
                "at",
                "2026-01-03T00:00:00Z".."2026-01-05T00:00:00Z"
            ))),
            [3, 4]
        );
        assert_eq!(n_of(text("at:>=2026-01-09T12:00:00Z")), [9, 10]);
        assert_eq!(n_of(text("at:\"2026-01-02T12:00:00Z\"")), [2]);
    });
}

#[test]
fn ranges_over_mixed_integers_and_fractions_agree_in_index_and_tail() {
    in_all_modes(|db| {
        let values = [
            json!(1),
            json!(2.5),
            json!(3),
            json!(4.5),
            json!(7.0),
            json!(-1.5),
        ];
        for (i, v) in values.iter().enumerate() {
            db.store
                .put(&format!("/f/{i}"), "f", json!({"x": v}))
                .unwrap();
            if i == 2 {
                db.step();
            }
        }
        let xs = |q: Query| -> Vec<f64> {
            let mut out: Vec<f64> = db
                .query(&QuerySpec::new(q))
                .documents
                .iter()
                .map(|d| d.body["x"].as_f64().unwrap())
                .collect();
            out.sort_by(f64::total_cmp);
            out
        };
        assert_eq!(xs(Query::range("x", 2..5)), [2.5, 3.0, 4.5]);
        assert_eq!(xs(Query::range("x", 2.5..4.5)), [2.5, 3.0]);
        assert_eq!(xs(Query::range("x", ..3)), [-1.5, 1.0, 2.5]);
        assert_eq!(xs(Query::range("x", 3.0..=7.0)), [3.0, 4.5, 7.0]);
        assert_eq!(xs(Query::term("x", 7)), [7.0]);
        assert_eq!(xs(Query::term("x", 2.5)), [2.5]);
    });
}

fn put_texts(db: &Db) {
    let s = &db.store;
    s.put(
        "/p/actix",
        "package",
        json!({"name": "actix", "description": "A fast web framework for Rust", "tags": ["web", "framework"]}),
    )
    .unwrap();
    s.put(
        "/p/hyper",
        "package",
        json!({"name": "hyper", "description": "A web server framework", "tags": ["http"]}),
    )
    .unwrap();
    db.step();
    s.put(
        "/p/flask",
        "package",
        json!({"name": "flask", "description": "framework for the web", "tags": ["python", "web"]}),
    )
    .unwrap();
    s.put(
        "/p/pytest",
        "package",
        json!({"name": "pytest", "description": "simple powerful testing with Python"}),
    )
    .unwrap();
    s.put(
        "/p/pyyaml",
        "package",
        json!({"name": "pyyaml", "description": "YAML parser and emitter for Python"}),
    )
    .unwrap();
    s.put(
        "/p/python",
        "package",
        json!({"name": "Python", "description": "the Python interpreter"}),
    )
    .unwrap();
    s.put(
        "/p/numpy",
        "package",
        json!({"name": "numpy", "description": "array computing"}),
    )
    .unwrap();
}

#[test]
fn phrase_term_prefix_and_wildcard_on_text_fields() {
    in_all_modes(|db| {
        put_texts(db);
        let q = |q: Query| {
            let mut ids = db.ids(&QuerySpec::new(q));
            ids.sort();
            ids
        };
        assert_eq!(
            q(Query::phrase("description", "web framework")),
            ["/p/actix"]
        );
        assert_eq!(
            q(Query::phrase("description", "Web Framework")),
            ["/p/actix"],
            "phrases are matched on lowercased words"
        );
        assert_eq!(
            q(Query::matches("description", "web framework")),
            ["/p/actix", "/p/flask", "/p/hyper"]
        );
        // A phrase does not run across two values of an array.
        assert_eq!(
            q(Query::phrase("tags", "web framework")),
            Vec::<String>::new()
        );
        assert_eq!(q(Query::phrase("tags", "framework")), ["/p/actix"]);
        // Terms are exact keywords: the whole string, case and all.
        assert_eq!(q(Query::term("name", "pytest")), ["/p/pytest"]);
        assert_eq!(
            q(Query::term("description", "A web server framework")),
            ["/p/hyper"]
        );
        assert_eq!(q(Query::term("description", "web")), Vec::<String>::new());
        assert_eq!(q(Query::term("name", "python")), Vec::<String>::new());
        assert_eq!(
            q(Query::terms("name", ["actix", "numpy", "nope"])),
            ["/p/actix", "/p/numpy"]
        );
        // Prefix and wildcard look at the keyword, case-sensitively.
        assert_eq!(q(Query::prefix("name", "py")), ["/p/pytest", "/p/pyyaml"]);
        assert_eq!(q(Query::prefix("name", "Py")), ["/p/python"]);
        assert_eq!(q(Query::wildcard("name", "py?a*")), ["/p/pyyaml"]);
        assert_eq!(
            q(Query::wildcard("name", "?y*")),
            ["/p/hyper", "/p/pytest", "/p/python", "/p/pyyaml"]
        );
        assert_eq!(q(Query::wildcard("name", "*py")), ["/p/numpy"]);
        // Regex characters in patterns are literal.
        db.store
            .put("/p/dots", "package", json!({"name": "a.b+c"}))
            .unwrap();
        db.store
            .put("/p/nodots", "package", json!({"name": "axbbc"}))
            .unwrap();
        assert_eq!(q(Query::wildcard("name", "a.b+*")), ["/p/dots"]);
        assert_eq!(q(Query::prefix("name", "a.")), ["/p/dots"]);
        assert_eq!(q(Query::wildcard("name", "a?b*")), ["/p/dots", "/p/nodots"]);
        assert_eq!(q(Query::wildcard("name", "*")).len(), 9);
        // Words without a field search every string.
        assert_eq!(
            q(Query::text("python")),
            ["/p/flask", "/p/pytest", "/p/python", "/p/pyyaml"]
        );
        assert_eq!(q(Query::fuzzy("description", "framwork", 1)).len(), 3);
        assert_eq!(
            q(Query::exists("tags")),
            ["/p/actix", "/p/flask", "/p/hyper"]
        );
    });
}

#[test]
fn a_case_insensitive_term_returns_the_original_casing() {
    in_all_modes(|db| {
        let s = &db.store;
        for (i, name) in ["Ada", "ADA", "ada", "Bob", "adam", "ÉCOLE"]
            .iter()
            .enumerate()
        {
            s.put(&format!("/u/{i}"), "user", json!({"name": name}))
                .unwrap();
            if i == 2 {
                db.step();
            }
        }
        let names = |q: Query| -> Vec<Value> {
            db.query(&QuerySpec::new(q))
                .documents
                .iter()
                .map(|d| d.body["name"].clone())
                .collect()
        };
        assert_eq!(
            names(Query::term_ci("name", "aDa")),
            [json!("Ada"), json!("ADA"), json!("ada")]
        );
        assert_eq!(names(Query::term_ci("name", "école")), [json!("ÉCOLE")]);
        assert_eq!(names(Query::term("name", "ada")), [json!("ada")]);
        // A case-insensitive term after an update sees only the new value.
        s.put("/u/0", "user", json!({"name": "Grace"})).unwrap();
        assert_eq!(
            names(Query::term_ci("name", "ADA")),
            [json!("ADA"), json!("ada")]
        );
    });
}

#[test]
fn group_by_returns_one_group_per_value_with_its_count() {
    in_all_modes(|db| {
        let s = &db.store;
        let docs = [
            json!({"colour": "red", "n": 1}),
            json!({"colour": "blue", "n": 2}),
            json!({"colour": "red", "n": 3}),
            json!({"n": 4}),
            json!({"colour": ["red", "blue"], "n": 5}),
            json!({"colour": "green", "n": 6}),
            json!({"colour": "red", "n": 7}),
        ];
        for (i, d) in docs.iter().enumerate() {
            s.put(&format!("/g/{i}"), "g", d.clone()).unwrap();
            if i == 3 {
                db.step();
            }
        }
        // Superseded and deleted versions do not count in the present.
        s.patch("/g/5", json!({"colour": "blue"})).unwrap();
        s.put("/g/other", "other", json!({"colour": "red"}))
            .unwrap();

        let spec = QuerySpec::new(Query::kind("g"))
            .group_by(GroupBy::new("colour"))
            .count(true);
        let r = db.query(&spec);
        assert_eq!(r.count, Some(7));
        let groups: Vec<(Value, u64, Vec<String>)> = r
            .groups
            .iter()
            .map(|g| {
                (
                    g.key.clone(),
                    g.count,
                    g.documents.iter().map(|d| d.meta.id.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            vec![
                (json!("red"), 4, strs(["/g/0", "/g/2", "/g/4"])),
                (json!("blue"), 3, strs(["/g/1", "/g/4", "/g/5"])),
                (Value::Null, 1, strs(["/g/3"])),
            ],
            "groups, largest first; then by key with the missing value last"
        );

        // Over all versions, each version counts.
        let spec = QuerySpec::new(Query::id_prefix("/g/5"))
            .snapshot(Snapshot::AllVersions)
            .group_by(GroupBy::new("colour"));
        let r = db.query(&spec);
        let groups: Vec<(Value, u64)> = r.groups.iter().map(|g| (g.key.clone(), g.count)).collect();
        assert_eq!(groups, vec![(json!("blue"), 1), (json!("green"), 1)]);

        let mut by_parity = GroupBy::new("_kind");
        by_parity.top = 1;
        let r = db.query(&QuerySpec::new(Query::All).limit(0).group_by(by_parity));
        let groups: Vec<(Value, u64, usize)> = r
            .groups
            .iter()
            .map(|g| (g.key.clone(), g.count, g.documents.len()))
            .collect();
        assert_eq!(groups, vec![(json!("g"), 7, 1), (json!("other"), 1, 1)]);
        assert!(r.documents.is_empty());
    });
}

#[test]
fn a_write_is_seen_by_the_next_query() {
    in_all_modes(|db| {
        let s = &db.store;
        for i in 0..30u64 {
            let id = format!("/ryw/{i}");
            s.put(&id, "ryw", json!({"i": i, "state": "new"})).unwrap();
            let r = db.query(&QuerySpec::new(Query::kind("ryw")).count(true).limit(0));
            assert_eq!(r.count, Some(i + 1), "after put {i}");
            s.patch(&id, json!({"state": "done"})).unwrap();
            let r = db.query(&QuerySpec::new(Query::term("state", "done")).count(true));
            assert_eq!(r.count, Some(i + 1), "after patch {i}");
            assert_eq!(r.documents.last().unwrap().meta.id, id);
            assert_eq!(r.documents.last().unwrap().meta.version, 1);
            let r = db.query(&QuerySpec::new(Query::term("state", "new")).count(true));
            assert_eq!(r.count, Some(0), "after patch {i}");
            if i % 3 == 2 {
                s.delete(&id).unwrap();
                let r = db.query(&QuerySpec::new(Query::term("_id", id.as_str())).count(true));
                assert_eq!(r.count, Some(0), "after delete {i}");
                s.put(&id, "ryw", json!({"i": i, "state": "done"})).unwrap();
            }
            if i % 10 == 9 {
                db.step();
            }
        }
    });
}

#[test]
fn a_write_is_seen_by_the_next_query_while_the_index_commits_often() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = strata::IndexOptions::default();
    index.commit_interval = std::time::Duration::from_millis(2);
    index.commit_versions = 7;
    let store = strata::Store::open(
        dir.path(),
        strata::Options::default()
            .with_durability(strata::Durability::None)
            .with_index_options(index),
    )
    .unwrap();
    for i in 0..200u64 {
        let id = format!("/ryw/{}", i % 20);
        let meta = store.put(&id, "ryw", json!({"i": i})).unwrap();
        let r = store
            .query(&QuerySpec::new(Query::term("i", i)).count(true))
            .unwrap();
        assert_eq!(r.count, Some(1), "write {i}");
        assert_eq!(r.documents[0].meta.seq, meta.seq);
        let r = store
            .query(&QuerySpec::new(Query::kind("ryw")).count(true).limit(0))
            .unwrap();
        assert_eq!(r.count, Some((i + 1).min(20)), "write {i}");
    }
}

/// Users and packages for the text syntax.
fn put_catalogue(db: &Db) -> u64 {
    let s = &db.store;
    s.put(
        "/users/ada",
        "user",
        json!({"name": "Ada", "bio": "notes on the analytical engine"}),
    )
    .unwrap();
    s.put(
        "/users/bob",
        "user",
        json!({"name": "Bob", "bio": "builds web services in python"}),
    )
    .unwrap();
    for n in 1..=4 {
        s.patch("/users/ada", json!({"edits": n})).unwrap();
    }
    db.step();
    let later = s
        .put(
            "/pkgs/pytest",
            "package",
            json!({"name": "pytest", "description": "simple powerful testing with Python"}),
        )
        .unwrap();
    s.put(
        "/pkgs/pyyaml",
        "package",
        json!({"name": "pyyaml", "description": "YAML parser and emitter for Python"}),
    )
    .unwrap();
    s.put(
        "/pkgs/flask",
        "package",
        json!({"name": "flask", "description": "a simple web framework", "size": 900}),
    )
    .unwrap();
    s.put("/teams/users", "team", json!({"name": "users"}))
        .unwrap();
    later.update_time_micros
}

#[test]
fn the_text_syntax_finds_what_its_builder_form_finds() {
    in_all_modes(|db| {
        let later = put_catalogue(db);
        let q = |text: &str| -> Vec<String> {
            let query = parse_query(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let mut ids = db.ids(&QuerySpec::new(query));
            ids.sort();
            ids
        };
        assert_eq!(q("_kind:user"), ["/users/ada", "/users/bob"]);
        assert_eq!(q("_id:/users/*"), ["/users/ada", "/users/bob"]);
        assert_eq!(q("_id:/users/ada"), ["/users/ada"]);
        assert_eq!(q("_version:>3"), ["/users/ada"]);
        assert_eq!(q("_version:>=4"), ["/users/ada"]);
        assert_eq!(q("_version:<1").len(), 5);
        let since = rfc3339(later);
        assert_eq!(
            q(&format!("_updated:[{since} TO *]")),
            [
                "/pkgs/flask",
                "/pkgs/pytest",
                "/pkgs/pyyaml",
                "/teams/users"
            ]
        );
        assert_eq!(
            q(&format!("_updated:{{{since} TO *]")),
            ["/pkgs/flask", "/pkgs/pyyaml", "/teams/users"]
        );
        assert_eq!(q(&format!("_updated:\"{since}\"")), ["/pkgs/pytest"]);
        assert_eq!(
            q(&format!("_updated:<{since}")),
            ["/users/ada", "/users/bob"]
        );
        assert_eq!(q("description:\"web framework\""), ["/pkgs/flask"]);
        assert_eq!(q("name:py*"), ["/pkgs/pytest", "/pkgs/pyyaml"]);
        assert_eq!(q("name:p?y*"), ["/pkgs/pyyaml"]);
        assert_eq!(q("python"), ["/pkgs/pytest", "/pkgs/pyyaml", "/users/bob"]);
        assert_eq!(q("python testing"), ["/pkgs/pytest"]);
        assert_eq!(q("\"analytical engine\""), ["/users/ada"]);
        assert_eq!(
            q("_kind:package AND NOT name:flask"),
            ["/pkgs/pytest", "/pkgs/pyyaml"]
        );
        assert_eq!(
            q("_kind:package -name:flask"),
            ["/pkgs/pytest", "/pkgs/pyyaml"]
        );
        assert_eq!(
            q("name:flask OR name:pytest"),
            ["/pkgs/flask", "/pkgs/pytest"]
        );
        assert_eq!(
            q("(_kind:user OR name:flask) AND NOT name:Bob"),
            ["/pkgs/flask", "/users/ada"]
        );
        assert_eq!(
            q("NOT _kind:package"),
            ["/teams/users", "/users/ada", "/users/bob"]
        );
        assert_eq!(q("size:[100 TO 1000}"), ["/pkgs/flask"]);
        assert_eq!(q("edits:4"), ["/users/ada"]);
        assert_eq!(q("edits:3"), Vec::<String>::new());
        assert_eq!(q("name:(flask OR pyyaml)"), ["/pkgs/flask", "/pkgs/pyyaml"]);
        assert_eq!(q("size:*"), ["/pkgs/flask"]);
        assert_eq!(q("*").len(), 6);
    });
}

#[test]
fn the_text_syntax_reports_errors_with_their_position() {
    for text in ["size:[1 TO", "name:", "(a OR b", "a AND", "\"open"] {
        match parse_query(text) {
            Err(Error::Query(QueryError::Syntax { position, .. })) => {
                assert!(position <= text.len(), "{text}: position {position}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn multi_field_sorts_put_missing_values_last_and_break_ties_by_seq() {
    in_all_modes(|db| {
        let docs = [
            json!({"a": 2, "b": "x"}),
            json!({"a": 1, "b": "y"}),
            json!({"b": "z"}),
            json!({"a": 1, "b": "x"}),
            json!({"a": 2}),
            json!({"a": 1, "b": "y"}),
            json!({}),
            json!({"a": [5, 0]}),
        ];
        for (i, d) in docs.iter().enumerate() {
            db.store
                .put(&format!("/s/{}", i + 1), "s", d.clone())
                .unwrap();
            if i == 3 {
                db.step();
            }
        }
        let order = |keys: &[SortKey]| -> Vec<String> {
            let mut spec = QuerySpec::new(Query::kind("s"));
            for k in keys {
                spec = spec.sort(k.clone());
            }
            db.ids(&spec)
                .iter()
                .map(|id| id.trim_start_matches("/s/").to_owned())
                .collect()
        };
        assert_eq!(
            order(&[SortKey::asc("a"), SortKey::desc("b")]),
            strs(["8", "2", "6", "4", "1", "5", "3", "7"])
        );
        assert_eq!(
            order(&[SortKey::desc("a"), SortKey::asc("b")]),
            strs(["1", "5", "4", "2", "6", "8", "3", "7"])
        );
        assert_eq!(
            order(&[SortKey::desc("b")]),
            strs(["3", "2", "6", "1", "4", "5", "7", "8"])
        );
        assert_eq!(
            order(&[SortKey::asc("b")]),
            strs(["1", "4", "2", "6", "3", "5", "7", "8"])
        );
        assert_eq!(order(&[]), strs(["1", "2", "3", "4", "5", "6", "7", "8"]));
        assert_eq!(
            order(&[SortKey::desc("_seq")]),
            strs(["8", "7", "6", "5", "4", "3", "2", "1"])
        );
        assert_eq!(
            order(&[SortKey::parse("_id:desc").unwrap()]),
            strs(["8", "7", "6", "5", "4", "3", "2", "1"])
        );
        // An update moves a document in the order and bumps its version.
        db.store.patch("/s/7", json!({"a": -1})).unwrap();
        assert_eq!(
            order(&[SortKey::asc("a"), SortKey::desc("_version")]),
            strs(["7", "8", "2", "4", "6", "1", "5", "3"])
        );
    });
}

/// Writes texts with "rust" once in a long text, once in a short one, three and four times, and
/// checks that `query` sorted by `_score` ranks them by BM25 (term frequency and text length).
fn check_score_order(db: &Db, query: impl Fn() -> Query) {
    let s = &db.store;
    s.put(
        "/t/long",
        "t",
        json!({"text": "rust and many other words in a long text here"}),
    )
    .unwrap();
    s.put("/t/none", "t", json!({"text": "nothing to see"}))
        .unwrap();
    db.step();
    s.put("/t/three", "t", json!({"text": "rust rust rust"}))
        .unwrap();
    s.put("/t/short", "t", json!({"text": "rust go"})).unwrap();
    let spec = QuerySpec::new(query()).sort(SortKey::parse("_score").unwrap());
    assert!(spec.sort[0].descending);
    assert_eq!(db.ids(&spec), ["/t/three", "/t/short", "/t/long"]);
    // Read-your-writes holds for score sorts too.
    s.put("/t/four", "t", json!({"text": "rust rust rust rust"}))
        .unwrap();
    assert_eq!(
        db.ids(&spec.clone().count(true)),
        ["/t/four", "/t/three", "/t/short", "/t/long"]
    );
    let asc = QuerySpec::new(query()).sort(SortKey::asc("_score"));
    assert_eq!(db.ids(&asc), ["/t/long", "/t/short", "/t/three", "/t/four"]);
    // Score first, then a field: equal scores fall back to the next key, then to seq.
    s.put("/t/short2", "t", json!({"text": "rust go", "rank": 1}))
        .unwrap();
    s.put("/t/short3", "t", json!({"text": "go rust", "rank": 0}))
        .unwrap();
    let spec = QuerySpec::new(query())
        .sort(SortKey::desc("_score"))
        .sort(SortKey::asc("rank"));
    let ids = db.ids(&spec);
    assert_eq!(ids[2..5], ["/t/short3", "/t/short2", "/t/short"]);
}

#[test]
fn a_full_text_query_sorts_by_score() {
    in_all_modes(|db| check_score_order(db, || Query::text("rust")));
}

#[test]
#[ignore = "LIMITATION (README): scores of full-text queries on a body path ignore the text's length (no fieldnorms in tantivy JSON fields)"]
fn a_full_text_query_on_a_field_sorts_by_score() {
    in_all_modes(|db| check_score_order(db, || Query::matches("text", "rust")));
}

#[test]
fn select_projects_bodies_and_ids_only_drops_them() {
    in_all_modes(|db| {
        let body = json!({
            "name": "Ada",
            "address": {"city": "London", "zip": "N1"},
            "langs": [{"code": "en", "level": 5}, {"code": "fr", "level": 3}],
            "secret": "x"
        });
        db.store.put("/users/ada", "user", body).unwrap();
        db.step();
        db.store
            .patch("/users/ada", json!({"secret": "y"}))
            .unwrap();
        let r = db.query(&QuerySpec::new(Query::kind("user")).select([
            "name",
            "address.city",
            "langs.code",
            "missing",
        ]));
        assert_eq!(r.documents.len(), 1);
        assert_eq!(r.documents[0].meta.version, 1);
        assert_eq!(
            r.documents[0].body,
            json!({"name": "Ada", "address": {"city": "London"}, "langs": [{"code": "en"}, {"code": "fr"}]})
        );
        let r = db.query(&QuerySpec::new(Query::kind("user")).ids_only(true));
        assert_eq!(versions(&r), vec![("/users/ada".into(), 1)]);
        assert_eq!(r.documents[0].body, Value::Null);
        assert_eq!(r.documents[0].meta.kind, "user");
    });
}

fn query_error(db: &Db, spec: &QuerySpec) -> QueryError {
    match db.try_query(spec) {
        Err(Error::Query(e)) => e,
        other => panic!(
            "[{:?}] {spec:?}: expected a query error, got {other:?}",
            db.mode
        ),
    }
}

#[test]
fn invalid_option_combinations_and_tokens_are_typed_errors() {
    in_all_modes(|db| {
        for i in 0..3 {
            db.store
                .put(&format!("/e/{i}"), "e", json!({"i": i}))
                .unwrap();
        }
        let base = QuerySpec::new(Query::kind("e"));
        let e = query_error(db, &base.clone().ids_only(true).select(["i"]));
        assert!(matches!(e, QueryError::InvalidSpec { .. }), "{e:?}");
        let e = query_error(db, &base.clone().limit(10_001));
        assert!(matches!(e, QueryError::InvalidSpec { .. }), "{e:?}");
        assert_eq!(db.query(&base.clone().limit(10_000)).documents.len(), 3);
        let e = query_error(db, &base.clone().offset(100_001));
        assert!(matches!(e, QueryError::InvalidSpec { .. }), "{e:?}");
        for token in [
            "",
            "zz",
            "not a token",
            "abcd",
            "7b7d",
            "0".repeat(64).as_str(),
        ] {
            let e = query_error(db, &base.clone().page(token));
            assert!(
                matches!(e, QueryError::InvalidPageToken { .. }),
                "{token:?}: {e:?}"
            );
        }
        // A token is only good for the query, sort and snapshot that issued it.
        let first = db.query(&base.clone().limit(1));
        let token = first.next_page.clone().expect("a next page");
        for other in [
            QuerySpec::new(Query::kind("f")).limit(1),
            base.clone().limit(1).sort(SortKey::desc("i")),
            base.clone().limit(1).snapshot(Snapshot::AllVersions),
            base.clone().limit(1).include_deleted(true),
        ] {
            let e = query_error(db, &other.page(token.clone()));
            assert!(matches!(e, QueryError::InvalidPageToken { .. }), "{e:?}");
        }
        assert_eq!(db.ids(&base.clone().limit(1).page(token.clone())), ["/e/1"]);
        let e = query_error(
            db,
            &base.clone().page(token.clone()).group_by(GroupBy::new("i")),
        );
        assert!(matches!(e, QueryError::InvalidSpec { .. }), "{e:?}");
        let e = query_error(db, &base.clone().sort(SortKey::asc("a..b")));
        assert!(matches!(e, QueryError::InvalidSpec { .. }), "{e:?}");
        let e = query_error(db, &QuerySpec::new(Query::term("a..b", 1)));
        assert!(matches!(e, QueryError::InvalidField { .. }), "{e:?}");
        let e = query_error(db, &QuerySpec::new(Query::prefix("_version", "1")));
        assert!(matches!(e, QueryError::InvalidQuery { .. }), "{e:?}");
    });
}

#[test]
fn an_expired_document_is_absent_from_current_queries() {
    in_all_modes(|db| {
        let s = &db.store;
        let anchor = s.put("/x/anchor", "x", json!({"v": 0})).unwrap();
        let t = anchor.update_time_micros + 1_000;
        let expiring = s
            .write(
                Batch::new()
                    .put_with(
                        "/x/short",
                        "x",
                        json!({"v": 1}),
                        WriteOptions::default().with_expires_at(t + 500),
                    )
                    .put_with(
                        "/x/patched",
                        "x",
                        json!({"v": 5}),
                        WriteOptions::default().with_expires_at(t + 1_500),
                    )
                    .at_time(t),
            )
            .unwrap()
            .remove(0);
        // A patch keeps the expiry.
        s.write(
            Batch::new()
                .patch("/x/patched", json!({"v": 6}))
                .at_time(t + 100),
        )
        .unwrap();
        s.put_with(
            "/x/long",
            "x",
            json!({"v": 2}),
            WriteOptions::default().with_expires_at(t + 3_600_000_000),
        )
        .unwrap();
        db.step();
        // A later write moves the store's clock past the first expiry.
        s.write(
            Batch::new()
                .put("/x/later", "x", json!({"v": 3}))
                .at_time(t + 2_000_000),
        )
        .unwrap();
        assert!(s.get("/x/short").unwrap().is_none());

        let current = QuerySpec::new(Query::kind("x")).count(true);
        let r = db.query(&current);
        assert_eq!(ids(&r), ["/x/anchor", "/x/long", "/x/later"]);
        assert_eq!(r.count, Some(3));
        let r = db.query(&QuerySpec::new(Query::term("v", 1)).count(true));
        assert_eq!(r.count, Some(0));
        // As of the time it was written it was there.
        let then =
            QuerySpec::new(Query::kind("x")).snapshot(Snapshot::AsOf(expiring.update_time_micros));
        assert_eq!(db.ids(&then), ["/x/anchor", "/x/short", "/x/patched"]);
        // It is gone from the exact time of its expiry on.
        let by_id = |id: &str, at: u64| {
            db.versions(&QuerySpec::new(Query::term("_id", id)).snapshot(Snapshot::AsOf(at)))
        };
        assert_eq!(by_id("/x/short", t + 499), vec![("/x/short".into(), 0)]);
        assert_eq!(by_id("/x/short", t + 500), vec![]);
        assert_eq!(
            by_id("/x/patched", t + 1_499),
            vec![("/x/patched".into(), 1)]
        );
        assert_eq!(by_id("/x/patched", t + 1_500), vec![]);
        assert!(s.get_at("/x/patched", t + 1_499).unwrap().is_some());
        assert!(s.get_at("/x/patched", t + 1_500).unwrap().is_none());
        // Deleted documents include expired ones.
        let r = db.query(&current.clone().include_deleted(true));
        assert_eq!(id_set(&r).len(), 5);
        assert!(id_set(&r).contains("/x/short"));
        assert!(id_set(&r).contains("/x/patched"));
        // A put creates it again.
        s.put("/x/short", "x", json!({"v": 4})).unwrap();
        assert_eq!(
            db.versions(&QuerySpec::new(Query::term("_id", "/x/short"))),
            vec![("/x/short".into(), 1)]
        );
        if db.mode == Mode::Tail {
            assert_eq!(s.index_progress().committed_seq, 0);
        }
    });
}

#[test]
fn a_projected_tombstone_keeps_a_null_body() {
    in_all_modes(|db| {
        db.store
            .put("/users/ada", "user", json!({"name": "Ada", "age": 36}))
            .unwrap();
        db.store.delete("/users/ada").unwrap();
        let r = db.query(
            &QuerySpec::new(Query::term("_id", "/users/ada"))
                .snapshot(Snapshot::AllVersions)
                .include_deleted(true)
                .select(["name"]),
        );
        let got: Vec<(u64, bool, Value)> = r
            .documents
            .iter()
            .map(|d| (d.meta.version, d.meta.deleted, d.body.clone()))
            .collect();
        assert_eq!(
            got,
            vec![(0, false, json!({"name": "Ada"})), (1, true, Value::Null)]
        );
    });
}

/// Integers next to 2^53 and 2^63, where f64 loses precision, in a field that also holds a
/// fraction and a negative number (so no integer column type can hold them all).
fn put_big_integers(db: &Db) -> Vec<(String, Value)> {
    let values = [
        json!(9_007_199_254_740_993u64), // 2^53 + 1
        json!(9_007_199_254_740_992u64), // 2^53
        json!(0.5),
        json!(-3),
        json!(9_223_372_036_854_775_807u64),  // i64::MAX
        json!(9_223_372_036_854_775_808u64),  // 2^63, only a u64
        json!(18_446_744_073_709_551_615u64), // u64::MAX
    ];
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let id = format!("/big/{i}");
        db.store.put(&id, "big", json!({"x": v})).unwrap();
        out.push((id, v.clone()));
    }
    db.step();
    out
}

#[test]
#[ignore = "LIMITATION (README): the index compares and groups big integers through f64 fast columns when a field mixes number types; the tail compares them exactly"]
fn big_integers_compare_exactly_in_index_and_tail() {
    in_all_modes(|db| {
        put_big_integers(db);
        let ids_of = |spec: QuerySpec| -> Vec<String> { db.ids(&spec) };
        let q = |q: Query| QuerySpec::new(q);
        // Terms are exact in both.
        assert_eq!(
            ids_of(q(Query::term("x", 9_007_199_254_740_993u64))),
            ["/big/0"]
        );
        assert_eq!(ids_of(q(Query::term("x", u64::MAX))), ["/big/6"]);
        // Ranges.
        assert_eq!(
            ids_of(q(Query::range("x", 9_007_199_254_740_993u64..))),
            ["/big/0", "/big/4", "/big/5", "/big/6"]
        );
        assert_eq!(
            ids_of(q(Query::range("x", ..9_007_199_254_740_993u64))),
            ["/big/1", "/big/2", "/big/3"]
        );
        assert_eq!(
            ids_of(q(Query::range("x", 9_223_372_036_854_775_808u64..))),
            ["/big/5", "/big/6"]
        );
        // Sorts.
        assert_eq!(
            ids_of(q(Query::kind("big")).sort(SortKey::asc("x"))),
            ["/big/3", "/big/2", "/big/1", "/big/0", "/big/4", "/big/5", "/big/6"]
        );
        assert_eq!(
            ids_of(q(Query::kind("big")).sort(SortKey::desc("x"))),
            ["/big/6", "/big/5", "/big/4", "/big/0", "/big/1", "/big/2", "/big/3"]
        );
        // Groups: one per distinct value.
        let r = db.query(&q(Query::kind("big")).limit(0).group_by(GroupBy::new("x")));
        assert_eq!(r.groups.len(), 7, "{:?}", r.groups);
        assert!(r.groups.iter().all(|g| g.count == 1), "{:?}", r.groups);
    });
}

#[test]
fn big_integers_in_a_field_of_integers_compare_exactly() {
    in_all_modes(|db| {
        for (i, v) in [
            9_007_199_254_740_993i64,
            9_007_199_254_740_992,
            -3,
            i64::MAX,
            i64::MAX - 1,
        ]
        .iter()
        .enumerate()
        {
            db.store
                .put(&format!("/big/{i}"), "big", json!({"x": v}))
                .unwrap();
        }
        db.step();
        let spec = QuerySpec::new(Query::kind("big")).sort(SortKey::asc("x"));
        assert_eq!(
            db.ids(&spec),
            ["/big/2", "/big/1", "/big/0", "/big/4", "/big/3"]
        );
        let spec = QuerySpec::new(Query::range("x", 9_007_199_254_740_993i64..i64::MAX));
        assert_eq!(db.ids(&spec), ["/big/0", "/big/4"]);
        let r = db.query(
            &QuerySpec::new(Query::kind("big"))
                .limit(0)
                .group_by(GroupBy::new("x")),
        );
        assert_eq!(r.groups.len(), 5);
    });
}

/// Regression: a phrase under `NOT` panicked in a debug build of tantivy 0.27 ("target (0)
/// should be greater than or equal to doc (1)", its own backward seek into the phrase scorer,
/// quickwit-oss/tantivy#2811) when an earlier document was a candidate; the workspace turned
/// tantivy's debug assertions off, so only an embedder's debug build met it. The tests now run
/// with them on.
#[test]
fn a_phrase_under_not_answers_when_an_earlier_document_is_a_candidate() {
    in_all_modes(|db| {
        db.store
            .put("/0", "note", json!({"w": "yes", "s": "nothing here"}))
            .unwrap();
        db.store
            .put("/1", "note", json!({"w": "yes", "s": "b c"}))
            .unwrap();
        db.store
            .put("/2", "note", json!({"w": "yes", "s": "c b"}))
            .unwrap();
        db.step();
        for text in [
            r#"w:yes AND NOT s:"b c""#,
            r#"w:yes -s:"b c""#,
            r#"NOT s:"b c""#,
        ] {
            let spec = QuerySpec::new(parse_query(text).unwrap()).count(true);
            let r = db.query(&spec);
            assert_eq!(ids(&r), ["/0", "/2"], "{text}");
            assert_eq!(r.count, Some(2), "{text}");
        }
    });
}

/// Ranges under `NOT`, nested in intersections and other negations, on one segment of 400
/// documents. A debug build of tantivy 0.27 overflowed ("attempt to subtract with overflow" in
/// its fast-field range scorer, probed backward by an exclusion) on a random query of
/// tests/store/query_model.rs of such a shape; these shapes answer as the brute force does.
#[test]
fn a_range_under_not_answers_when_an_earlier_document_is_a_candidate() {
    in_all_modes(|db| {
        let mut batch = Batch::new();
        for i in 0..400u64 {
            let w = if i % 3 == 0 { "no" } else { "yes" };
            let k = if i % 2 == 0 { "a" } else { "b" };
            let body = json!({"w": w, "k": k, "n": i % 10});
            batch = batch.put(format!("/{i:03}"), "note", body);
        }
        db.store.write(batch).unwrap();
        db.step();
        for text in [
            "w:yes AND NOT n:[1 TO 5]",
            "w:yes AND (k:a AND NOT n:[1 TO 5])",
            "(w:yes OR k:b) AND (k:a OR n:>2) AND NOT (n:[1 TO 5] OR w:no)",
            "w:yes AND NOT n:<3 AND NOT n:>8",
            "w:yes AND NOT (n:[2 TO 6] AND NOT n:[3 TO 4])",
            "(k:a OR w:no) AND NOT (n:[2 TO 6] AND NOT n:[3 TO 4] AND NOT w:no)",
        ] {
            let q = parse_query(text).unwrap();
            let spec = QuerySpec::new(q).count(true).limit(1000);
            let want = db
                .store
                .query(&QuerySpec::new(Query::All).limit(1000))
                .unwrap()
                .documents
                .into_iter()
                .filter(|d| {
                    let (w, k, n) = (&d.body["w"], &d.body["k"], d.body["n"].as_u64().unwrap());
                    match text {
                        "w:yes AND NOT n:[1 TO 5]" => w == "yes" && !(1..=5).contains(&n),
                        "w:yes AND (k:a AND NOT n:[1 TO 5])" => {
                            w == "yes" && k == "a" && !(1..=5).contains(&n)
                        }
                        "w:yes AND NOT n:<3 AND NOT n:>8" => w == "yes" && (3..=8).contains(&n),
                        "w:yes AND NOT (n:[2 TO 6] AND NOT n:[3 TO 4])" => {
                            w == "yes" && (!(2..=6).contains(&n) || (3..=4).contains(&n))
                        }
                        "(k:a OR w:no) AND NOT (n:[2 TO 6] AND NOT n:[3 TO 4] AND NOT w:no)" => {
                            (k == "a" || w == "no")
                                && !((2..=6).contains(&n) && !(3..=4).contains(&n) && w != "no")
                        }
                        _ => {
                            (w == "yes" || k == "b")
                                && (k == "a" || n > 2)
                                && !((1..=5).contains(&n) || w == "no")
                        }
                    }
                })
                .count();
            let r = db.query(&spec);
            assert_eq!(r.count, Some(want as u64), "{text}");
            assert_eq!(r.documents.len(), want, "{text}");
        }
    });
}
