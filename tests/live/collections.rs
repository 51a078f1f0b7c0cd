//! Collections: named, persisted queries whose definitions are versioned system documents.

use std::time::Duration;

use serde_json::json;
use strata::{
    Batch, CollectionOptions, Error, EventKind, GroupBy, Options, Query, QueryError, QuerySpec,
    Retention, Snapshot, SortKey, Store, SubscribeOptions, COLLECTION_KIND, SYSTEM_ID_PREFIX,
};

use crate::*;

fn rust() -> QuerySpec {
    QuerySpec::new(Query::term("lang", "rust"))
}

fn ids(docs: &[strata::Document]) -> Vec<String> {
    docs.iter().map(|d| d.meta.id.clone()).collect()
}

#[track_caller]
fn assert_unknown<T: std::fmt::Debug>(r: Result<T, Error>, name: &str) {
    match r {
        Err(Error::UnknownCollection { name: n }) => assert_eq!(n, name),
        other => panic!("expected UnknownCollection {name:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_spec<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(Error::Query(QueryError::InvalidSpec { .. })) => {}
        other => panic!("{what}: expected InvalidSpec, got {other:?}"),
    }
}

#[test]
fn define_list_in_pages_and_count() {
    let store = mem();
    for i in 0..8 {
        store
            .put(
                &format!("/pkg/r{i}"),
                "package",
                json!({"lang": "rust", "rank": 8 - i}),
            )
            .unwrap();
    }
    store
        .put("/pkg/p", "package", json!({"lang": "python", "rank": 0}))
        .unwrap();
    let spec = rust().sort(SortKey::asc("rank")).limit(3);
    let meta = store
        .define_collection("rust", &spec, CollectionOptions::default())
        .unwrap();
    assert_eq!(meta.kind, COLLECTION_KIND);
    assert!(meta.id.starts_with(SYSTEM_ID_PREFIX));
    assert_eq!(meta.version, 0);

    let c = store.collection("rust").unwrap();
    assert_eq!(c.name(), "rust");
    assert_eq!(c.spec(), &spec);
    assert_eq!(c.options(), &CollectionOptions::default());
    assert_eq!(c.definition(), &meta);
    assert_eq!(c.at(), None);
    assert_eq!(c.count().unwrap(), 8);

    // Pages of the spec's limit, in its order, from the first page's snapshot: a member added
    // while paging is not seen.
    let first = c.list(None).unwrap();
    assert_eq!(ids(&first.documents), ["/pkg/r7", "/pkg/r6", "/pkg/r5"]);
    store
        .put("/pkg/late", "package", json!({"lang": "rust", "rank": 100}))
        .unwrap();
    let mut all = first.documents.clone();
    let mut page = first.next_page;
    while let Some(token) = page {
        let r = c.list(Some(&token)).unwrap();
        assert!(r.documents.len() <= 3);
        all.extend(r.documents);
        page = r.next_page;
    }
    let want: Vec<String> = (0..8).rev().map(|i| format!("/pkg/r{i}")).collect();
    assert_eq!(ids(&all), want);
    // The same as the store's query of the spec, bodies included.
    let direct = store.query(&spec.clone().limit(100)).unwrap();
    assert_eq!(direct.documents[..8], all[..]);

    // A fresh read sees the new member.
    assert_eq!(c.count().unwrap(), 9);
    assert_eq!(store.collection("rust").unwrap().count().unwrap(), 9);
}

#[test]
fn definitions_and_options_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention::default()
        .with_min_versions(2)
        .with_max_versions(10)
        .with_max_age(Duration::from_secs(86_400));
    let options = CollectionOptions::default().with_retention(retention.clone());
    let spec = rust().sort(SortKey::desc("rank")).limit(7).select(["lang"]);
    let (before, members) = {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store
            .put("/pkg/a", "package", json!({"lang": "rust", "rank": 1}))
            .unwrap();
        store
            .define_collection("kept", &spec, options.clone())
            .unwrap();
        store
            .define_collection(
                "plain",
                &QuerySpec::new(Query::All),
                CollectionOptions::default(),
            )
            .unwrap();
        let c = store.collection("kept").unwrap();
        (
            (
                c.spec().clone(),
                c.options().clone(),
                c.definition().clone(),
            ),
            c.list(None).unwrap().documents,
        )
    };
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let names: Vec<String> = store
        .collections()
        .unwrap()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(names, ["kept", "plain"]);
    let c = store.collection("kept").unwrap();
    assert_eq!(
        (
            c.spec().clone(),
            c.options().clone(),
            c.definition().clone()
        ),
        before
    );
    assert_eq!(c.spec(), &spec);
    assert_eq!(c.options().retention.as_ref(), Some(&retention));
    assert_eq!(retention.max_age_secs, Some(86_400));
    assert_eq!(c.list(None).unwrap().documents, members);
    assert_eq!(c.history().unwrap().len(), 1);
    assert_eq!(store.collection("plain").unwrap().count().unwrap(), 1);
}

/// A redefinition keeps the old one in the history; a view as of a time between them uses the
/// old definition and reads the members as they were then.
#[test]
fn redefine_keeps_history_and_as_of_reads_the_old_definition_at_that_time() {
    let store = mem();
    store
        .put("/pkg/a", "package", json!({"lang": "rust"}))
        .unwrap();
    store
        .put("/pkg/b", "package", json!({"lang": "python"}))
        .unwrap();
    let before_definition = store
        .put("/pkg/x", "package", json!({"lang": "go"}))
        .unwrap();
    let python = QuerySpec::new(Query::term("lang", "python"));

    let d1 = store
        .define_collection("c", &rust(), CollectionOptions::default())
        .unwrap();
    let c_meta = store
        .put("/pkg/c", "package", json!({"lang": "rust"}))
        .unwrap();
    let t = c_meta.update_time_micros;
    let retention = Retention::default().with_max_versions(3);
    let d2 = store
        .define_collection(
            "c",
            &python,
            CollectionOptions::default().with_retention(retention.clone()),
        )
        .unwrap();
    assert_eq!(d2.version, 1);
    // After the redefinition the members change too.
    store
        .put("/pkg/d", "package", json!({"lang": "python"}))
        .unwrap();
    store.patch("/pkg/c", json!({"lang": "python"})).unwrap();
    store
        .put("/pkg/e", "package", json!({"lang": "rust"}))
        .unwrap();
    store.delete("/pkg/a").unwrap();

    let c = store.collection("c").unwrap();
    assert_eq!(c.spec(), &python);
    assert_eq!(c.definition(), &d2);
    assert_eq!(
        ids(&c.list(None).unwrap().documents),
        ["/pkg/b", "/pkg/d", "/pkg/c"]
    );

    let history = c.history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].meta, d1);
    assert_eq!(history[0].spec.as_ref(), Some(&rust()));
    assert_eq!(history[0].options, CollectionOptions::default());
    assert_eq!(history[1].meta, d2);
    assert_eq!(history[1].spec.as_ref(), Some(&python));
    assert_eq!(history[1].options.retention.as_ref(), Some(&retention));

    for at in [t, d2.update_time_micros - 1, d1.update_time_micros] {
        let then = c.as_of(at).unwrap();
        assert_eq!(then.at(), Some(at));
        assert_eq!(then.spec(), &rust(), "the old definition at {at}");
        assert_eq!(then.definition(), &d1);
        assert_eq!(then.options(), &CollectionOptions::default());
        let direct = store.query(&rust().snapshot(Snapshot::AsOf(at))).unwrap();
        let listed = then.list(None).unwrap();
        assert_eq!(listed.documents, direct.documents);
        assert_eq!(then.count().unwrap(), direct.documents.len() as u64);
    }
    // Members as of then: /pkg/c was rust then (python now), /pkg/a existed, /pkg/e did not.
    let then = c.as_of(t).unwrap();
    assert_eq!(
        ids(&then.list(None).unwrap().documents),
        ["/pkg/a", "/pkg/c"]
    );
    assert_eq!(then.list(None).unwrap().documents[1].meta, c_meta);
    assert_eq!(c.as_of(d1.update_time_micros).unwrap().count().unwrap(), 1);

    // As of the redefinition and later: the new definition, members then.
    let later = c.as_of(d2.update_time_micros).unwrap();
    assert_eq!(later.spec(), &python);
    assert_eq!(ids(&later.list(None).unwrap().documents), ["/pkg/b"]);
    // Before the first definition there was no collection.
    assert_unknown(c.as_of(before_definition.update_time_micros), "c");
    assert_unknown(c.as_of(d1.update_time_micros - 1), "c");
}

#[test]
fn drop_collection_keeps_history_and_the_past() {
    let store = mem();
    store
        .put("/pkg/a", "package", json!({"lang": "rust"}))
        .unwrap();
    let d1 = store
        .define_collection("gone", &rust(), CollectionOptions::default())
        .unwrap();
    store
        .define_collection("stays", &rust(), CollectionOptions::default())
        .unwrap();
    let c = store.collection("gone").unwrap();
    let dropped = store.drop_collection("gone").unwrap();
    assert!(dropped.deleted);
    assert_eq!(dropped.version, 1);

    assert_unknown(store.collection("gone"), "gone");
    assert_unknown(store.drop_collection("gone"), "gone");
    let names: Vec<String> = store
        .collections()
        .unwrap()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(names, ["stays"]);
    // The members are not touched.
    assert!(store.get("/pkg/a").unwrap().is_some());

    let history = c.history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].meta, d1);
    assert_eq!(history[0].spec.as_ref(), Some(&rust()));
    assert_eq!(history[1].meta, dropped);
    assert_eq!(history[1].spec, None);
    assert!(history[1].meta.deleted);

    // Before the drop it still can be read; from the drop on it is unknown.
    let then = c.as_of(dropped.update_time_micros - 1).unwrap();
    assert_eq!(then.spec(), &rust());
    assert_eq!(ids(&then.list(None).unwrap().documents), ["/pkg/a"]);
    assert_unknown(c.as_of(dropped.update_time_micros), "gone");
    // The store reads a dropped collection's past by name, with no `Collection` at hand.
    assert_eq!(store.collection_history("gone").unwrap(), history);
    let by_name = store
        .collection_as_of("gone", dropped.update_time_micros - 1)
        .unwrap();
    assert_eq!(ids(&by_name.list(None).unwrap().documents), ["/pkg/a"]);
    assert_unknown(store.collection_history("never"), "never");

    // A name can be defined again after a drop; the history goes on.
    let again = store
        .define_collection(
            "gone",
            &QuerySpec::new(Query::All),
            CollectionOptions::default(),
        )
        .unwrap();
    assert_eq!(again.version, 2);
    let history = store.collection("gone").unwrap().history().unwrap();
    assert_eq!(
        history.iter().map(|v| v.spec.is_some()).collect::<Vec<_>>(),
        [true, false, true]
    );
}

#[test]
fn unknown_and_invalid_names() {
    let store = mem();
    assert_unknown(store.collection("nope"), "nope");
    assert_unknown(store.drop_collection("nope"), "nope");

    let long = "x".repeat(129);
    for bad in ["", "-x", ".x", "_x", "a b", "a/b", "é", "a\0b", &long] {
        let invalid = |r: Result<(), Error>, op: &str| match r {
            Err(Error::InvalidCollectionName { .. }) => {}
            other => panic!("{op} {bad:?}: {other:?}"),
        };
        invalid(
            store
                .define_collection(bad, &rust(), CollectionOptions::default())
                .map(drop),
            "define",
        );
        invalid(store.collection(bad).map(drop), "collection");
        invalid(store.drop_collection(bad).map(drop), "drop");
    }
    assert!(store.collections().unwrap().is_empty());
    // The edges that are allowed.
    for good in ["a", "0", "rust-crates_v1.2", &"y".repeat(128)] {
        store
            .define_collection(good, &rust(), CollectionOptions::default())
            .unwrap();
        assert_eq!(store.collection(good).unwrap().name(), good);
    }
}

#[test]
fn collections_lists_every_definition_by_name() {
    let store = mem();
    assert!(store.collections().unwrap().is_empty());
    // More than one internal page of names.
    let mut names: Vec<String> = (0..300).map(|i| format!("c{:03}", (i * 7) % 300)).collect();
    for (i, name) in names.iter().enumerate() {
        store
            .define_collection(
                name,
                &QuerySpec::new(Query::term("i", i as i64)),
                CollectionOptions::default(),
            )
            .unwrap();
    }
    store.drop_collection("c150").unwrap();
    names.retain(|n| n != "c150");
    names.sort();
    let listed = store.collections().unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| c.name().to_owned())
            .collect::<Vec<_>>(),
        names
    );
    for c in &listed {
        assert_eq!(
            c.definition(),
            store.collection(c.name()).unwrap().definition()
        );
    }
}

#[test]
fn definitions_are_invisible_to_user_reads() {
    let store = mem();
    let mut all_events = store
        .subscribe(&QuerySpec::new(Query::All), SubscribeOptions::default())
        .unwrap();
    store
        .define_collection(
            "a",
            &QuerySpec::new(Query::All),
            CollectionOptions::default(),
        )
        .unwrap();
    store
        .define_collection("b", &rust(), CollectionOptions::default())
        .unwrap();
    store
        .put("/pkg/1", "package", json!({"lang": "rust"}))
        .unwrap();
    store
        .put("/pkg/2", "package", json!({"lang": "go"}))
        .unwrap();
    store.put("/other", "thing", json!({"name": "a"})).unwrap();
    store
        .define_collection("a", &rust(), CollectionOptions::default())
        .unwrap();
    let dropped = store.drop_collection("b").unwrap();

    let count = |spec: QuerySpec| store.query(&spec.count(true)).unwrap().count.unwrap();
    assert_eq!(count(QuerySpec::new(Query::All)), 3);
    assert_eq!(
        count(QuerySpec::new(Query::All).snapshot(Snapshot::AllVersions)),
        3
    );
    assert_eq!(
        count(
            QuerySpec::new(Query::All)
                .snapshot(Snapshot::AllVersions)
                .include_deleted(true)
        ),
        3
    );
    assert_eq!(
        count(QuerySpec::new(Query::All).snapshot(Snapshot::AsOf(dropped.update_time_micros))),
        3
    );
    assert_eq!(count(QuerySpec::new(Query::kind(COLLECTION_KIND))), 0);
    assert_eq!(count(QuerySpec::new(Query::id_prefix(SYSTEM_ID_PREFIX))), 0);
    assert_eq!(count(QuerySpec::new(Query::id_prefix("/"))), 3);
    assert_eq!(count(QuerySpec::new(Query::exists("spec"))), 0);
    assert_eq!(
        count(QuerySpec::new(
            strata::parse_query("_kind:_strata.collection").unwrap()
        )),
        0
    );
    let grouped = store
        .query(
            &QuerySpec::new(Query::All)
                .group_by(GroupBy::new("_kind"))
                .limit(0),
        )
        .unwrap();
    let mut kinds: Vec<String> = grouped.groups.iter().map(|g| g.key.to_string()).collect();
    kinds.sort();
    assert_eq!(kinds, ["\"package\"", "\"thing\""]);

    let listed: Vec<String> = store.list("/").map(|d| d.unwrap().meta.id).collect();
    assert_eq!(listed, ["/other", "/pkg/1", "/pkg/2"]);
    assert_eq!(store.list(SYSTEM_ID_PREFIX).count(), 0);
    assert_eq!(store.list("").count(), 3);

    // A subscription to everything sees only the user documents.
    let got = take(&mut all_events, 3);
    assert_eq!(ids_of(&got), ["/pkg/1", "/pkg/2", "/other"]);
    assert_quiet(&mut all_events);
}

fn ids_of(events: &[strata::Event]) -> Vec<String> {
    events.iter().map(|e| e.document.meta.id.clone()).collect()
}

#[test]
fn user_writes_to_the_system_namespace_are_rejected() {
    let store = mem();
    store
        .define_collection("a", &rust(), CollectionOptions::default())
        .unwrap();
    let last = store.last_seq();
    let invalid_id =
        |r: Result<Vec<strata::Meta>, Error>, what: &str| match r.map_err(Error::into_reason) {
            Err(Error::InvalidId { .. }) => {}
            other => panic!("{what}: {other:?}"),
        };
    let put = |id: &str, kind: &str| store.write(Batch::new().put(id, kind, json!({})));
    invalid_id(put("/_strata/x", "thing"), "put /_strata/x");
    invalid_id(
        put("/_strata/collections/a", "thing"),
        "put over a definition",
    );
    invalid_id(
        put("/_strata/collections/forged", COLLECTION_KIND),
        "forge a definition",
    );
    invalid_id(
        store.write(Batch::new().patch("/_strata/collections/a", json!({"name": "b"}))),
        "patch a definition",
    );
    invalid_id(
        store.write(Batch::new().delete("/_strata/collections/a")),
        "delete a definition",
    );
    for kind in ["_strata.x", COLLECTION_KIND] {
        match store.put("/ok", kind, json!({})) {
            Err(Error::InvalidKind { .. }) => {}
            other => panic!("kind {kind}: {other:?}"),
        }
    }
    // The single-write helpers too.
    assert!(matches!(
        store.put("/_strata/y", "t", json!({})),
        Err(Error::InvalidId { .. })
    ));
    assert!(matches!(
        store.patch("/_strata/collections/a", json!({})),
        Err(Error::InvalidId { .. })
    ));
    assert!(matches!(
        store.delete("/_strata/collections/a"),
        Err(Error::InvalidId { .. })
    ));
    // A batch with one system op writes nothing.
    invalid_id(
        store.write(Batch::new().put("/fine", "thing", json!({})).put(
            "/_strata/z",
            "thing",
            json!({}),
        )),
        "mixed batch",
    );
    assert_eq!(store.last_seq(), last, "nothing was written");
    assert!(store.get("/fine").unwrap().is_none());
    assert_eq!(store.collection("a").unwrap().spec(), &rust());
    assert_unknown(store.collection("forged"), "forged");
    // Only the prefixes are reserved.
    store.put("/_strata", "_strata", json!({})).unwrap();
    store.put("/_stratax/y", "strata.x", json!({})).unwrap();
}

#[test]
fn collection_specs_that_do_not_read_the_current_state_are_rejected() {
    let store = mem();
    let bad = [
        ("as of", rust().snapshot(Snapshot::AsOf(1))),
        ("at seq", rust().snapshot(Snapshot::AtSeq(0))),
        ("all versions", rust().snapshot(Snapshot::AllVersions)),
        ("include deleted", rust().include_deleted(true)),
        ("page", rust().page("token")),
        ("offset", rust().offset(2)),
        ("group by", rust().group_by(GroupBy::new("lang"))),
    ];
    for (what, spec) in bad {
        assert_invalid_spec(
            store.define_collection("c", &spec, CollectionOptions::default()),
            what,
        );
    }
    for retention in [
        Retention::default().with_max_versions(0),
        Retention::default()
            .with_min_versions(5)
            .with_max_versions(2),
    ] {
        match store.define_collection(
            "c",
            &rust(),
            CollectionOptions::default().with_retention(retention),
        ) {
            Err(Error::InvalidOption(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_unknown(store.collection("c"), "c");
    assert_eq!(store.last_seq(), 0, "nothing was written");
    // A redefinition with a bad spec leaves the good one.
    store
        .define_collection("c", &rust(), CollectionOptions::default())
        .unwrap();
    assert_invalid_spec(
        store.define_collection("c", &rust().offset(1), CollectionOptions::default()),
        "redefine",
    );
    assert_eq!(store.collection("c").unwrap().history().unwrap().len(), 1);
}

#[test]
fn collection_subscribe_follows_members_and_a_past_view_cannot() {
    let store = mem();
    store
        .put("/pkg/a", "package", json!({"lang": "rust", "x": 1}))
        .unwrap();
    store
        .put("/pkg/b", "package", json!({"lang": "go"}))
        .unwrap();
    store
        .define_collection(
            "rust",
            &rust().select(["lang"]).count(true),
            CollectionOptions::default(),
        )
        .unwrap();
    let c = store.collection("rust").unwrap();
    let mut sub = c
        .subscribe(
            SubscribeOptions::default()
                .with_replay(true)
                .with_live_count(true)
                .with_stopped_matching(true),
        )
        .unwrap();
    let added = store
        .put("/pkg/c", "package", json!({"lang": "rust", "x": 2}))
        .unwrap();
    let left = store.patch("/pkg/a", json!({"lang": "python"})).unwrap();
    store
        .put("/pkg/b", "package", json!({"lang": "go", "y": 1}))
        .unwrap();
    let deleted = store.delete("/pkg/c").unwrap();

    let got = take(&mut sub, 4);
    assert_eq!(
        got.iter()
            .map(|e| (e.kind, e.document.meta.id.as_str(), e.count))
            .collect::<Vec<_>>(),
        [
            (EventKind::Existing, "/pkg/a", Some(1)),
            (EventKind::Added, "/pkg/c", Some(2)),
            (EventKind::StoppedMatching, "/pkg/a", Some(1)),
            (EventKind::Deleted, "/pkg/c", Some(0)),
        ]
    );
    assert_eq!(got[1].document.meta, added);
    assert_eq!(
        got[1].document.body,
        json!({"lang": "rust"}),
        "the spec's select applies"
    );
    assert_eq!(got[2].document.meta, left);
    assert_eq!(got[3].document.meta, deleted);
    assert_quiet(&mut sub);

    // A subscription follows the definition its Collection value holds.
    store
        .define_collection(
            "rust",
            &QuerySpec::new(Query::All),
            CollectionOptions::default(),
        )
        .unwrap();
    let m = store
        .put("/pkg/z", "package", json!({"lang": "zig"}))
        .unwrap();
    let mut all = store
        .collection("rust")
        .unwrap()
        .subscribe(SubscribeOptions::default().with_from_seq(m.seq - 1))
        .unwrap();
    assert_eq!(next(&mut all).document.meta, m);
    assert_quiet(&mut sub);

    let past = c.as_of(added.update_time_micros).unwrap();
    assert_invalid_spec(past.subscribe(SubscribeOptions::default()), "a past view");
}
