//! Pages of a task read the snapshot it pinned, whatever other threads write meanwhile.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use serde_json::json;
use strata::{Batch, Query, QueryResult, QuerySpec, SortKey, Store, TaskOptions};

use crate::{all_pages, fill, ids, memory_store};

/// One round of changes to the `p` documents: new ones, updates, deletes.
fn change_round(store: &Store, round: usize) {
    let mut batch = Batch::new();
    for k in 0..3 {
        batch = batch.put(
            format!("/p/new-{round}-{k}"),
            "p",
            json!({"n": 1000 + round * 3 + k, "round": round}),
        );
    }
    for k in 0..5 {
        let i = (round * 7 + k * 13) % 100;
        batch = batch.put(format!("/p/{i:04}"), "p", json!({"n": i, "round": round}));
    }
    store.write(batch).unwrap();
    // Two deletes a round, of documents no later round touches again.
    for i in [round * 2, round * 2 + 1] {
        let id = format!("/p/{:04}", 99 - i);
        if store.get(&id).unwrap().is_some() {
            store.delete(&id).unwrap();
        }
    }
}

#[test]
fn pages_union_is_exactly_the_snapshot_while_documents_change() {
    let store = memory_store();
    fill(&store, "p", 100);
    fill(&store, "other", 5);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("p"))
        .sort(SortKey::asc("n"))
        .limit(10)
        .count(true);
    let expected: Vec<String> = (0..100).map(|i| format!("/p/{i:04}")).collect();

    // Once the task has its snapshot, one writer changes the documents on request between
    // pages (so every page is fetched after some change), another all the time.
    let (go_tx, go_rx) = crossbeam_channel::unbounded::<usize>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let stepper = {
        let store = store.clone();
        std::thread::spawn(move || {
            for round in go_rx {
                change_round(&store, round + 1);
                done_tx.send(()).unwrap();
            }
        })
    };
    let snapshot = store.last_seq();
    let first = tasks.run(&spec, TaskOptions::default()).unwrap();
    assert_eq!(first.snapshot_seq, snapshot);
    let churner = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let i = n % 50;
                store
                    .put(&format!("/p/{i:04}"), "p", json!({"n": i, "churn": n}))
                    .unwrap();
                store
                    .put(&format!("/p/churn-{n}"), "p", json!({"n": -(n as i64)}))
                    .unwrap();
                n += 1;
            }
            n
        })
    };

    let mut pages: Vec<QueryResult> = vec![first];
    let mut round = 0;
    while let Some(token) = pages.last().unwrap().next_page.clone() {
        assert!(pages.len() < 50, "paging does not end");
        go_tx.send(round).unwrap();
        done_rx.recv().unwrap();
        round += 1;
        let page = tasks.page(&token).unwrap();
        // The same token again, after more changes: the same page.
        go_tx.send(round).unwrap();
        done_rx.recv().unwrap();
        round += 1;
        assert_eq!(tasks.page(&token).unwrap(), page, "token fetched twice");
        pages.push(page);
    }
    drop(go_tx);
    stop.store(true, Ordering::Relaxed);
    stepper.join().unwrap();
    let churned = churner.join().unwrap();

    let first_seq = pages[0].snapshot_seq;
    for (n, page) in pages.iter().enumerate() {
        assert_eq!(
            page.snapshot_seq, first_seq,
            "page {n} read another snapshot"
        );
        assert_eq!(page.count, Some(100), "page {n}");
        assert!(page.documents.len() <= 10, "page {n}");
        for d in &page.documents {
            assert!(!d.meta.deleted, "page {n}: {} deleted", d.meta.id);
            assert_eq!(d.meta.version, 0, "page {n}: {} updated", d.meta.id);
            assert_eq!(d.body["round"], 0, "page {n}: {}", d.meta.id);
            assert!(
                d.meta.seq <= first_seq,
                "page {n}: {} newer than the snapshot",
                d.meta.id
            );
        }
    }
    let got: Vec<String> = pages.iter().flat_map(ids).collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a document on two pages");
    assert_eq!(got, expected);
    assert_eq!(pages.len(), 10);
    assert_eq!(pages.last().unwrap().next_page, None);
    // The present has moved on meanwhile, so the test did compare two different states.
    let now = store.query(&spec.clone().limit(0)).unwrap();
    assert!(now.snapshot_seq > first_seq);
    assert_ne!(
        now.count,
        Some(100),
        "{churned} churn writes and {round} rounds"
    );
}

#[test]
fn many_threads_fetching_one_token_get_the_same_page() {
    let store = memory_store();
    fill(&store, "m", 30);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("m")).limit(7).count(true);
    let first = tasks.run(&spec, TaskOptions::default()).unwrap();
    let token = first.next_page.clone().unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (tasks, token, barrier, store) = (
                tasks.clone(),
                token.clone(),
                Arc::clone(&barrier),
                store.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .put(&format!("/m/thread-{t}"), "m", json!({}))
                    .unwrap();
                tasks.page(&token).unwrap()
            })
        })
        .collect();
    let pages: Vec<QueryResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for p in &pages {
        assert_eq!(*p, pages[0]);
    }
    let expected: Vec<String> = (7..14).map(|i| format!("/m/{i:04}")).collect();
    assert_eq!(ids(&pages[0]), expected);
    assert_eq!(pages[0].snapshot_seq, first.snapshot_seq);
    assert_eq!(pages[0].count, Some(30));
    // Every page after that, one by one, to the end: 30 documents in 5 pages.
    let all = all_pages(&tasks, first);
    assert_eq!(all.len(), 5);
    assert_eq!(all[1], pages[0]);
    let got: Vec<String> = all.iter().flat_map(ids).collect();
    let want: Vec<String> = (0..30).map(|i| format!("/m/{i:04}")).collect();
    assert_eq!(got, want);
    // Fetches are counted.
    let id_of_task = tasks
        .list()
        .iter()
        .find(|i| i.pages_fetched > 0)
        .map(|i| i.pages_fetched);
    assert_eq!(id_of_task, Some(4 + 4));
}
