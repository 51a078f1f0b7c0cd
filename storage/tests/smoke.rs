//! Basic engine behaviour on the simulated and the real file system.

use std::path::Path;
use std::sync::Arc;

use strata_storage::backend::{CrashMode, SimBackend};
use strata_storage::{Action, Engine, EngineOptions, Error, Expect, Selector, WriteOp};

fn put(id: &str, body: &str) -> WriteOp {
    WriteOp {
        id: id.into(),
        expect: Expect::Any,
        action: Action::Put {
            kind: "k".into(),
            body: body.as_bytes().to_vec(),
        },
        expires_at: None,
        time: None,
    }
}

#[test]
fn writes_survive_reopen_across_segments() {
    let sim = SimBackend::new();
    let dir = Path::new("/db");
    let opts = EngineOptions::default().with_segment_size(4096);
    {
        let (engine, _) = Engine::open_with(Arc::new(sim.clone()), dir, opts.clone()).unwrap();
        for i in 0..200 {
            engine
                .commit(
                    vec![put(&format!("/d/{}", i % 17), &format!("{{\"i\":{i}}}"))],
                    None,
                )
                .unwrap();
        }
        assert!(engine.counts().segments > 2);
    }
    let (engine, stats) = Engine::open_with(
        Arc::new(sim.image().materialize(CrashMode::DropUnsynced)),
        dir,
        opts,
    )
    .unwrap();
    assert_eq!(stats.records, 200);
    assert_eq!(engine.last_seq(), 200);
    let v = engine.get("/d/3", Selector::Newest).unwrap().unwrap();
    assert_eq!(v.body, b"{\"i\":190}");
    assert_eq!(engine.history("/d/3").unwrap().len(), 12);
    let old = engine.get("/d/3", Selector::Version(0)).unwrap().unwrap();
    assert_eq!(old.body, b"{\"i\":3}");
}

#[test]
fn conflicts_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), EngineOptions::default()).unwrap();
    engine.commit(vec![put("/a", "{}")], None).unwrap();
    let mut op = put("/b", "{}");
    op.expect = Expect::Version(3);
    let err = engine.commit(vec![put("/c", "{}"), op], None).unwrap_err();
    // The error names the operation that failed (its index and id) and why.
    assert!(
        matches!(&err, Error::Op { index: 1, id, .. } if id == "/b"),
        "{err}"
    );
    assert!(
        matches!(
            err.reason(),
            Error::Conflict {
                expected: Some(3),
                actual: None,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(engine.last_seq(), 1);
    assert!(engine.get("/c", Selector::Newest).unwrap().is_none());
    let second = Engine::open(dir.path(), EngineOptions::default()).unwrap_err();
    assert!(matches!(second, Error::Locked { .. }), "{second}");
}

#[test]
fn buffered_writes_are_synced_within_the_interval() {
    use strata_storage::Durability;
    let sim = SimBackend::new();
    let opts = EngineOptions::default()
        .with_durability(Durability::Buffered(std::time::Duration::from_millis(20)));
    let (engine, _) = Engine::open_with(Arc::new(sim.clone()), Path::new("/db"), opts).unwrap();
    let before = sim.syncs();
    engine.commit(vec![put("/a", "{}")], None).unwrap();
    assert_eq!(
        sim.syncs(),
        before,
        "a buffered write is acknowledged before any sync"
    );
    // Wait (bounded) for the flusher thread to sync; nothing else syncs here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sim.syncs() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no sync within 10 s of a buffered write"
        );
        std::thread::yield_now();
    }
    let image = sim.image().materialize(CrashMode::DropUnsynced);
    let (reopened, _) =
        Engine::open_with(Arc::new(image), Path::new("/db"), EngineOptions::default()).unwrap();
    assert!(reopened.get("/a", Selector::Newest).unwrap().is_some());
}

#[test]
fn concurrent_committers_share_syncs() {
    let sim = SimBackend::new();
    let (engine, _) = Engine::open_with(
        Arc::new(sim.clone()),
        Path::new("/db"),
        EngineOptions::default(),
    )
    .unwrap();
    let before = sim.syncs();
    std::thread::scope(|s| {
        for t in 0..8 {
            let engine = engine.clone();
            s.spawn(move || {
                for i in 0..200 {
                    engine
                        .commit(vec![put(&format!("/t{t}/{i}"), "{}")], None)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(engine.last_seq(), 1600);
    // Every acknowledged batch is durable (Sync): a power loss now keeps all of them.
    assert!(sim.syncs() > before);
    let image = sim.image().materialize(CrashMode::DropUnsynced);
    let (reopened, stats) =
        Engine::open_with(Arc::new(image), Path::new("/db"), EngineOptions::default()).unwrap();
    assert_eq!((reopened.last_seq(), stats.truncated_bytes), (1600, 0));
}

/// Regression: under buffered durability several group commits share one sync. A crash that lost
/// a page in the middle of them (while later pages survived) was reported as corruption and the
/// store would not open; every record written since the last sync now shares one `group`, so
/// recovery cuts such a hole as the torn tail it is.
#[test]
fn a_hole_in_unsynced_buffered_writes_is_a_torn_tail() {
    use strata_storage::Durability;
    for durability in [
        Durability::Buffered(std::time::Duration::from_secs(3600)),
        Durability::None,
    ] {
        let sim = SimBackend::new();
        let opts = EngineOptions::default().with_durability(durability);
        let (engine, _) = Engine::open_with(Arc::new(sim.clone()), Path::new("/db"), opts).unwrap();
        let before = sim.syncs();
        for i in 0..3 {
            engine
                .commit(
                    vec![put(&format!("/d/{i}"), "{\"pad\":\"0123456789\"}")],
                    None,
                )
                .unwrap();
        }
        assert_eq!(
            sim.syncs(),
            before,
            "nothing synced: all three groups are unsynced"
        );
        let frame = {
            let v = engine.get("/d/1", Selector::Newest).unwrap().unwrap();
            // id + kind + body + record header (56) + frame header (8)
            v.meta.id.len() + v.meta.kind.len() + v.body.len() + 64
        };
        let image = sim.image().materialize(CrashMode::Hole {
            at: frame + 10,
            len: 8,
        });
        let (reopened, stats) =
            Engine::open_with(Arc::new(image), Path::new("/db"), EngineOptions::default())
                .unwrap_or_else(|e| panic!("{durability:?}: {e}"));
        assert_eq!(
            reopened.last_seq(),
            1,
            "{durability:?}: the records before the hole are kept"
        );
        assert!(stats.truncated_bytes > 0);
    }
}

/// Regression: a panicking update callback poisoned the engine although nothing was written.
#[test]
fn a_panicking_update_rejects_its_batch_only() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), EngineOptions::default()).unwrap();
    engine.commit(vec![put("/a", "{}")], None).unwrap();
    let op = WriteOp {
        id: "/a".into(),
        expect: Expect::Any,
        action: Action::Update(Box::new(|_| panic!("callback bug"))),
        expires_at: None,
        time: None,
    };
    let err = engine.commit(vec![op], None).unwrap_err();
    assert!(matches!(err.reason(), Error::Rejected { .. }), "{err}");
    assert!(!engine.is_poisoned());
    engine.commit(vec![put("/b", "{}")], None).unwrap();
    assert_eq!(engine.last_seq(), 2);
}

// Regression: a batch had one update time, so a replica or an import applying versions with
// their own times needed one commit (and one sync) per version.
#[test]
fn operations_of_one_batch_carry_their_own_increasing_times() {
    let dir = tempfile::tempdir().unwrap();
    let at = |id: &str, body: &str, time: Option<u64>| WriteOp {
        time,
        ..put(id, body)
    };
    {
        let (engine, _) = Engine::open(dir.path(), EngineOptions::default()).unwrap();
        let base = engine.commit(vec![put("/a", "{}")], None).unwrap()[0].time + 100;
        let metas = engine
            .commit(
                vec![
                    at("/a", r#"{"v":1}"#, Some(base)),
                    at("/b", r#"{"v":1}"#, None),
                    at("/a", r#"{"v":2}"#, Some(base + 10)),
                ],
                None,
            )
            .unwrap();
        let times: Vec<u64> = metas.iter().map(|m| m.time).collect();
        assert_eq!(times, [base, base, base + 10], "/b shares /a's time");
        // Not later than the previous operation's: refused, naming it; nothing written.
        let err = engine
            .commit(
                vec![
                    at("/c", "{}", Some(base + 20)),
                    at("/c", "{}", Some(base + 20)),
                ],
                None,
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::Op { index: 1, id, .. } if id == "/c"),
            "{err}"
        );
        assert!(
            matches!(
                err.reason(),
                Error::TimeNotLater { requested, last } if *requested == base + 20 && *last == base + 20
            ),
            "{err}"
        );
        assert_eq!(engine.last_seq(), 4);
    }
    let (engine, _) = Engine::open(dir.path(), EngineOptions::default()).unwrap();
    let body_at = |time: u64| {
        engine
            .get("/a", Selector::AtTime(time))
            .unwrap()
            .map(|v| String::from_utf8(v.body).unwrap())
    };
    let base = engine
        .get("/b", Selector::Newest)
        .unwrap()
        .unwrap()
        .meta
        .time;
    assert_eq!(body_at(base - 1).as_deref(), Some("{}"));
    assert_eq!(body_at(base + 9).as_deref(), Some(r#"{"v":1}"#));
    assert_eq!(body_at(base + 10).as_deref(), Some(r#"{"v":2}"#));
    assert_eq!(engine.last_time(), base + 10, "the last operation's time");
}
