//! Cursor paging: every page reads the snapshot of the first, whatever is written in between.

use std::collections::BTreeSet;

use serde_json::json;
use strata::{Query, QueryResult, QuerySpec, Snapshot, SortKey};

use crate::{in_all_modes, versions, Db};

/// Follows `next_page` from `first` to the end, calling `between` before each further page.
/// Returns every page.
fn all_pages(db: &Db, spec: &QuerySpec, mut between: impl FnMut(usize)) -> Vec<QueryResult> {
    let mut pages = vec![db.query(spec)];
    while let Some(token) = pages.last().and_then(|p| p.next_page.clone()) {
        assert!(pages.len() <= 1000, "paging does not end");
        between(pages.len());
        pages.push(db.query(&spec.clone().page(token)));
    }
    pages
}

fn concat(pages: &[QueryResult]) -> Vec<(String, u64)> {
    pages.iter().flat_map(versions).collect()
}

#[test]
fn pages_of_one_return_exactly_the_first_snapshot_while_every_document_changes() {
    in_all_modes(|db| {
        let s = &db.store;
        for i in 0..5 {
            s.put(&format!("/p/{i}"), "p", json!({"i": i, "round": 0}))
                .unwrap();
        }
        s.put("/q/0", "q", json!({})).unwrap();
        let spec = QuerySpec::new(Query::kind("p")).limit(1).count(true);
        let pages = all_pages(db, &spec, |round| {
            for i in 0..5 {
                s.patch(&format!("/p/{i}"), json!({"round": round}))
                    .unwrap();
            }
            s.put(&format!("/p/new{round}"), "p", json!({})).unwrap();
            db.step();
        });
        assert_eq!(pages.len(), 5);
        let expected: Vec<(String, u64)> = (0..5).map(|i| (format!("/p/{i}"), 0)).collect();
        assert_eq!(concat(&pages), expected);
        for (n, page) in pages.iter().enumerate() {
            assert_eq!(page.snapshot_seq, pages[0].snapshot_seq, "page {n}");
            assert_eq!(page.count, Some(5), "page {n}");
            assert_eq!(page.documents[0].body["round"], 0, "page {n}");
        }
        assert_eq!(pages[4].next_page, None);
        // The present has moved on.
        let r = db.query(&QuerySpec::new(Query::kind("p")).count(true));
        assert_eq!(r.count, Some(9));
    });
}

#[test]
fn pages_keep_deleted_documents_of_their_snapshot_and_skip_new_ones() {
    in_all_modes(|db| {
        let s = &db.store;
        for i in 0..10 {
            s.put(&format!("/p/{i:02}"), "p", json!({"rank": 10 - i}))
                .unwrap();
        }
        db.step();
        let spec = QuerySpec::new(Query::kind("p"))
            .sort(SortKey::asc("rank"))
            .limit(3);
        let pages = all_pages(db, &spec, |round| {
            // Delete what the next page would show, and add documents that sort first.
            s.delete(&format!("/p/{:02}", 9 - 3 * round)).unwrap();
            s.put(&format!("/p/new{round}"), "p", json!({"rank": -1}))
                .unwrap();
        });
        let expected: Vec<(String, u64)> =
            (0..10).rev().map(|i| (format!("/p/{i:02}"), 0)).collect();
        assert_eq!(concat(&pages), expected);
        assert_eq!(pages.len(), 4);
    });
}

/// Documents with a few ties and missing values.
fn put_sortable(db: &Db, n: u64) {
    for i in 0..n {
        let mut body = json!({"i": i, "text": "word ".repeat((i % 4 + 1) as usize)});
        if i % 5 != 0 {
            body["a"] = json!(i % 4);
        }
        if i % 3 != 0 {
            body["b"] = json!(format!("b{}", i % 6));
        }
        db.store.put(&format!("/s/{i:02}"), "s", body).unwrap();
        if i == n / 2 {
            db.step();
        }
    }
    // Some updates, so that the index holds superseded versions.
    for i in (0..n).step_by(4) {
        db.store
            .patch(&format!("/s/{i:02}"), json!({"u": true}))
            .unwrap();
    }
}

#[test]
fn paging_through_any_sort_gives_the_one_shot_order() {
    in_all_modes(|db| {
        put_sortable(db, 23);
        let sorts: Vec<Vec<SortKey>> = vec![
            vec![],
            vec![SortKey::asc("a")],
            vec![SortKey::desc("a")],
            vec![SortKey::asc("a"), SortKey::desc("b")],
            vec![SortKey::desc("b"), SortKey::desc("a")],
            vec![SortKey::desc("_id")],
            vec![SortKey::desc("_version"), SortKey::asc("b")],
        ];
        for snapshot in [Snapshot::Current, Snapshot::AllVersions] {
            for keys in &sorts {
                let mut spec = QuerySpec::new(Query::kind("s"))
                    .snapshot(snapshot)
                    .count(true);
                for k in keys {
                    spec = spec.sort(k.clone());
                }
                let one_shot = db.query(&spec.clone().limit(1000));
                assert_eq!(one_shot.next_page, None);
                for limit in [1, 2, 7] {
                    let pages = all_pages(db, &spec.clone().limit(limit), |_| {});
                    assert_eq!(
                        concat(&pages),
                        versions(&one_shot),
                        "{snapshot:?} sort {keys:?} limit {limit}"
                    );
                    assert!(pages.iter().all(|p| p.count == one_shot.count));
                }
            }
        }
    });
}

#[test]
fn paging_by_score_gives_the_one_shot_order() {
    in_all_modes(|db| {
        put_sortable(db, 23);
        let spec = QuerySpec::new(Query::text("word")).sort(SortKey::parse("_score").unwrap());
        let one_shot = db.query(&spec.clone().limit(100));
        assert_eq!(one_shot.documents.len(), 23);
        let pages = all_pages(db, &spec.clone().limit(4), |_| {});
        assert_eq!(concat(&pages), versions(&one_shot));
    });
}

#[test]
fn pages_of_all_versions_and_as_of_ignore_later_writes() {
    in_all_modes(|db| {
        let s = &db.store;
        let mut times = Vec::new();
        for i in 0..4 {
            times.push(
                s.put(&format!("/h/{i}"), "h", json!({"n": 0}))
                    .unwrap()
                    .update_time_micros,
            );
            s.patch(&format!("/h/{i}"), json!({"n": 1})).unwrap();
        }
        let spec = QuerySpec::new(Query::kind("h"))
            .snapshot(Snapshot::AllVersions)
            .include_deleted(true)
            .limit(3);
        let pages = all_pages(db, &spec, |round| {
            s.delete(&format!("/h/{round}")).unwrap();
            db.step();
        });
        let got: BTreeSet<(String, u64)> = concat(&pages).into_iter().collect();
        let expected: BTreeSet<(String, u64)> = (0..4)
            .flat_map(|i| [(format!("/h/{i}"), 0), (format!("/h/{i}"), 1)])
            .collect();
        assert_eq!(got, expected);
        assert_eq!(concat(&pages).len(), 8);

        let as_of = QuerySpec::new(Query::kind("h"))
            .snapshot(Snapshot::AsOf(times[2]))
            .limit(1);
        let pages = all_pages(db, &as_of, |round| {
            s.put(&format!("/h/{round}"), "h", json!({"n": 9})).unwrap();
        });
        assert_eq!(
            concat(&pages),
            vec![("/h/0".into(), 1), ("/h/1".into(), 1), ("/h/2".into(), 0)]
        );
    });
}

#[test]
fn paging_by_fractional_values_neither_repeats_nor_skips() {
    in_all_modes(|db| {
        // Values with 17 significant digits, which only an exact float round trip keeps.
        for i in 0..40u64 {
            let x = (i as f64 + 1.0).sqrt() / 7.0 * if i % 2 == 0 { 1.0 } else { -1e-3 };
            let tie = (i % 5) as f64 / 3.0;
            db.store
                .put(&format!("/x/{i:02}"), "x", json!({"x": x, "tie": tie}))
                .unwrap();
            if i == 20 {
                db.step();
            }
        }
        for keys in [
            vec![SortKey::asc("x")],
            vec![SortKey::desc("x")],
            vec![SortKey::desc("tie"), SortKey::asc("x")],
        ] {
            let mut spec = QuerySpec::new(Query::kind("x"));
            for k in &keys {
                spec = spec.sort(k.clone());
            }
            let one_shot = db.query(&spec.clone().limit(100));
            assert_eq!(one_shot.documents.len(), 40);
            for limit in [1, 3] {
                let pages = all_pages(db, &spec.clone().limit(limit), |_| {});
                assert_eq!(
                    concat(&pages),
                    versions(&one_shot),
                    "{keys:?} limit {limit}"
                );
            }
        }
    });
}

#[test]
fn an_offset_with_next_page_continues_after_the_last_document() {
    in_all_modes(|db| {
        for i in 0..10 {
            db.store
                .put(&format!("/o/{i}"), "o", json!({"i": i}))
                .unwrap();
        }
        let spec = QuerySpec::new(Query::kind("o")).offset(2).limit(3);
        let first = db.query(&spec);
        assert_eq!(crate::ids(&first), ["/o/2", "/o/3", "/o/4"]);
        let token = first.next_page.clone().expect("more pages");
        // Either the next page follows the first, or an offset with a page is refused.
        match db.try_query(&spec.clone().page(token)) {
            Ok(r) => assert_eq!(crate::ids(&r), ["/o/5", "/o/6", "/o/7"]),
            Err(strata::Error::Query(strata::QueryError::InvalidSpec { .. })) => {}
            Err(e) => panic!("{e}"),
        }
    });
}

/// Regression: page tokens were the hex of a JSON object, about 270 characters for a query
/// without a sort; they are now base64url of a binary payload with a CRC-32 check.
#[test]
fn page_tokens_are_compact_checked_and_bound_to_their_query() {
    in_all_modes(|db| {
        let s = &db.store;
        for i in 0..6 {
            s.put(
                &format!("/t/{i}"),
                "t",
                json!({"name": format!("name number {i}"), "n": i * 10}),
            )
            .unwrap();
        }
        let plain = QuerySpec::new(Query::kind("t")).limit(2);
        let sorted = plain.clone().sort(SortKey::desc("name"));
        for spec in [&plain, &sorted] {
            let token = db.query(spec).next_page.expect("a second page");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token}"
            );
            let limit = if spec == &plain { 24 } else { 48 };
            assert!(token.len() <= limit, "{} characters: {token}", token.len());
            // Round trip: the pages joined are the one-shot answer.
            let pages = all_pages(db, spec, |_| {});
            let all = db.query(&spec.clone().limit(100));
            assert_eq!(concat(&pages), versions(&all));
            // Any one character changed is refused.
            for i in 0..token.len() {
                for c in ["A", "f", "_", "9"] {
                    let mut changed = token.clone();
                    changed.replace_range(i..=i, c);
                    if changed == token {
                        continue;
                    }
                    let e = db.try_query(&spec.clone().page(changed.clone()));
                    assert!(
                        matches!(
                            &e,
                            Err(strata::Error::Query(
                                strata::QueryError::InvalidPageToken { .. }
                            ))
                        ),
                        "{changed}: {e:?}"
                    );
                }
            }
        }
        // A token of one query is refused by another, also one of the same shape.
        let token = db.query(&plain).next_page.unwrap();
        for other in [
            QuerySpec::new(Query::kind("u")).limit(2),
            sorted.clone(),
            plain.clone().snapshot(Snapshot::AllVersions),
        ] {
            let e = db.try_query(&other.page(token.clone()));
            assert!(
                matches!(
                    &e,
                    Err(strata::Error::Query(
                        strata::QueryError::InvalidPageToken { .. }
                    ))
                ),
                "{e:?}"
            );
        }
    });
}
