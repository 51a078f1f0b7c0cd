//! Retention by collection: a collection's rule applies to its current members only, and
//! combines with other rules (a version is kept if any rule keeps it).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use strata::{Batch, CollectionOptions, Error, Query, QuerySpec, Retention, Store};

use crate::*;

/// The tier of a document in round `n`.
type Tier = fn(u64) -> &'static str;

fn item(id: &str, tier: &str, n: u64, extra: &str) -> Value {
    json!({ "id": id, "tier": tier, "n": n, "extra": extra, "pad": "c".repeat(150) })
}

#[test]
fn collection_retention_trims_only_current_members() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options().with_retention("both", Retention::default().with_max_versions(5)),
    );
    store
        .define_collection(
            "hot",
            &QuerySpec::new(Query::term("tier", "hot")),
            CollectionOptions::default().with_retention(Retention::default().with_max_versions(1)),
        )
        .unwrap();
    store
        .define_collection(
            "marked",
            &QuerySpec::new(Query::term("extra", "marked")),
            CollectionOptions::default().with_retention(Retention::default().with_max_versions(3)),
        )
        .unwrap();
    // A collection without retention keeps everything of its members.
    store
        .define_collection(
            "everything",
            &QuerySpec::new(Query::All),
            CollectionOptions::default(),
        )
        .unwrap();

    // (id, kind, tier in round n: the last one decides membership, extra).
    let docs: Vec<(&str, &str, Tier, &str)> = vec![
        ("/hot/a", "item", |_| "hot", ""),
        ("/hot/b", "item", |_| "hot", ""),
        ("/cold/a", "item", |_| "cold", ""),
        ("/cold/b", "item", |_| "cold", ""),
        // Left the collection: no longer a member, keeps everything.
        (
            "/was-hot",
            "item",
            |n| if n < 10 { "hot" } else { "cold" },
            "",
        ),
        // Joined it: a member now, trimmed to its newest version.
        (
            "/now-hot",
            "item",
            |n| if n < 10 { "cold" } else { "hot" },
            "",
        ),
        // In "hot" (max 1) and of kind "both" (max 5): five kept.
        ("/hot-both", "both", |_| "hot", ""),
        // In "hot" (max 1) and in "marked" (max 3): three kept.
        ("/hot-marked", "item", |_| "hot", "marked"),
        // Only of kind "both": five kept.
        ("/cold-both", "both", |_| "cold", ""),
    ];
    let mut model = Model::default();
    for n in 0..12 {
        let mut batch = Batch::new();
        let mut bodies = Vec::new();
        for (id, kind, tier, extra) in &docs {
            let b = item(id, tier(n), n, extra);
            batch = batch.put(*id, *kind, b.clone());
            bodies.push(b);
        }
        let metas = store.write(batch).unwrap();
        model.record(&metas, &bodies);
    }
    assert_eq!(store.collection("hot").unwrap().count().unwrap(), 5);
    let definition_versions = store.collection_history("hot").unwrap().len();

    settle(&store);
    record_filler(&store, &mut model);
    let report = store.compact().unwrap();

    let expected: BTreeMap<&str, usize> = [
        ("/hot/a", 1),
        ("/hot/b", 1),
        ("/cold/a", 12),
        ("/cold/b", 12),
        ("/was-hot", 12),
        ("/now-hot", 1),
        ("/hot-both", 5),
        ("/hot-marked", 3),
        ("/cold-both", 5),
    ]
    .into_iter()
    .collect();
    let kept: BTreeMap<String, usize> = model
        .docs
        .iter()
        .map(|(id, c)| {
            (
                id.clone(),
                expected.get(id.as_str()).copied().unwrap_or(c.len()),
            )
        })
        .collect();
    let dropped: usize = model.docs.iter().map(|(id, c)| c.len() - kept[id]).sum();
    assert_eq!(report.versions_dropped, dropped as u64, "{report:?}");
    check_kept(&store, &model, &kept);
    assert_eq!(store.stats().dropped_versions, dropped as u64);

    // The collections still answer, and their definitions keep their history.
    assert_eq!(store.collection("hot").unwrap().count().unwrap(), 5);
    assert_eq!(
        store.collection("everything").unwrap().count().unwrap(),
        model.docs.len() as u64
    );
    assert_eq!(
        store.collection_history("hot").unwrap().len(),
        definition_versions
    );

    // Dropping the collection ends its retention: new versions of its former members stay.
    store.drop_collection("hot").unwrap();
    for n in 12..15 {
        let b = item("/hot/a", "hot", n, "");
        let m = store.put("/hot/a", "item", b.clone()).unwrap();
        model.record(&[m], &[b]);
    }
    settle(&store);
    assert_eq!(store.compact().unwrap().versions_dropped, 0);
    assert_eq!(store.history("/hot/a").unwrap().len(), 4);
}

#[test]
fn invalid_collection_retention_is_refused() {
    let store = Store::open_in_memory(options()).unwrap();
    for bad in [
        Retention::default().with_max_versions(0),
        Retention::default()
            .with_min_versions(3)
            .with_max_versions(2),
    ] {
        let got = store.define_collection(
            "c",
            &QuerySpec::new(Query::All),
            CollectionOptions::default().with_retention(bad.clone()),
        );
        assert!(
            matches!(got, Err(Error::InvalidOption(_))),
            "{bad:?}: {got:?}"
        );
    }
    assert!(matches!(
        store.collection("c"),
        Err(Error::UnknownCollection { .. })
    ));
}
