//! Sort values of hits: what each document was sorted by, alike from the tail and the index.

use serde_json::json;
use strata::{GroupBy, Query, QuerySpec, Scalar, SortKey};

use crate::{in_all_modes, Db};

/// Writes three packages with a number, a string, a date (the one of `/c` with an offset) and a
/// missing value, and a description for relevance.
fn fill(db: &Db) {
    let s = &db.store;
    s.put(
        "/a",
        "package",
        json!({"size": 300, "name": "serde", "released": "2021-03-04T05:06:07Z", "d": "fast fast"}),
    )
    .unwrap();
    s.put(
        "/b",
        "package",
        json!({"size": 9000, "name": "flask", "released": "2019-01-01T00:00:00Z", "d": "fast", "tags": ["x", "b"]}),
    )
    .unwrap();
    s.put(
        "/c",
        "package",
        json!({"name": "django", "released": "2020-06-10T14:00:00.750+02:00", "d": "slow"}),
    )
    .unwrap();
    db.step();
}

// Query results carried no sort values: a caller had to parse each body (and redo the
// missing-value, smallest-of-many and date rules) to learn what a hit was sorted by.
#[test]
fn hits_carry_the_values_they_were_sorted_by() {
    in_all_modes(|db| {
        fill(db);
        let spec = QuerySpec::new(Query::kind("package"))
            .sort(SortKey::desc("size"))
            .sort(SortKey::asc("name"))
            .sort(SortKey::asc("released"))
            .sort(SortKey::asc("tags"))
            .sort(SortKey::asc("_updated"));
        let r = db.query(&spec);
        let ids: Vec<&str> = r.documents.iter().map(|d| d.meta.id.as_str()).collect();
        assert_eq!(ids, ["/b", "/a", "/c"], "[{:?}]", db.mode);
        assert_eq!(r.sort_values.len(), r.documents.len());
        for (doc, values) in r.documents.iter().zip(&r.sort_values) {
            let body = &doc.body;
            let expected = vec![
                body.get("size").and_then(|v| v.as_i64()).map(Scalar::Int),
                Some(Scalar::Str(body["name"].as_str().unwrap().to_owned())),
                Some(Scalar::Str(match doc.meta.id.as_str() {
                    // A date is its instant to the second, in UTC.
                    "/c" => "2020-06-10T12:00:00Z".to_owned(),
                    _ => body["released"].as_str().unwrap().to_owned(),
                })),
                // Several values: the smallest.
                (doc.meta.id == "/b").then(|| Scalar::Str("b".to_owned())),
                Some(Scalar::from(doc.meta.update_time_micros)),
            ];
            assert_eq!(values, &expected, "[{:?}] {}", db.mode, doc.meta.id);
        }

        // Groups carry them too; no sort key gives no values.
        let grouped = db.query(
            &QuerySpec::new(Query::kind("package"))
                .sort(SortKey::asc("size"))
                .group_by(GroupBy::new("_kind")),
        );
        let group = &grouped.groups[0];
        assert_eq!(
            group.sort_values,
            [
                vec![Some(Scalar::Int(300))],
                vec![Some(Scalar::Int(9000))],
                vec![None]
            ],
            "[{:?}]",
            db.mode
        );
        let unsorted = db.query(&QuerySpec::new(Query::kind("package")));
        assert!(unsorted.sort_values.iter().all(Vec::is_empty));
        assert_eq!(unsorted.sort_values.len(), 3);
    });
}

#[test]
fn score_sorts_give_the_relevance() {
    in_all_modes(|db| {
        fill(db);
        let spec = QuerySpec::new(strata::parse_query(r#"d:"fast""#).unwrap())
            .sort(SortKey::desc(strata::SCORE));
        let r = db.query(&spec);
        assert_eq!(r.documents.len(), 2, "[{:?}]", db.mode);
        let scores: Vec<f64> = r
            .sort_values
            .iter()
            .map(|v| match v.as_slice() {
                [Some(Scalar::Float(f))] => *f,
                other => panic!("[{:?}] not one score: {other:?}", db.mode),
            })
            .collect();
        assert!(scores[0] > 0.0 && scores[0] >= scores[1], "{scores:?}");
    });
}
