//! Random operation sequences checked against a plain in-memory model (STYLE "Tests" 2): puts,
//! merge patches, deletes, multi-op batches, conditional writes, explicit batch times and
//! reopens, with every read compared to the model after every step.

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use strata::{Batch, Document, Durability, Error, Expect, Meta, Options, Store};

use crate::patch::merge_patch;
use crate::{fast_options, open, stress};

/// The ids the model writes; they share prefixes so that listing has something to cut.
const IDS: &[&str] = &[
    "/a/1", "/a/2", "/a/x", "/a/xy", "/b/1", "/b/2/c", "/c", "/é/ü",
];
/// Prefixes listed after every step, including ones that match nothing.
const PREFIXES: &[&str] = &["", "/", "/a/", "/a/x", "/b/", "/é", "/zz", "/a/1/"];
const KINDS: &[&str] = &["user", "team", "ünï"];
const KEYS: &[&str] = &["a", "b", "c", "n", "deep", "ключ"];

/// One version as the model knows it.
#[derive(Debug, Clone, PartialEq)]
struct ModelVersion {
    version: u64,
    seq: u64,
    time: u64,
    deleted: bool,
    kind: String,
    body: Value,
}

/// What a batch will write for one operation, before seq and time are known.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    id: String,
    kind: String,
    version: u64,
    deleted: bool,
    body: Value,
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        id: String,
        kind: String,
        body: Value,
        expect: Expect,
    },
    Patch {
        id: String,
        patch: Value,
        expect: Expect,
    },
    Delete {
        id: String,
        expect: Expect,
    },
}

impl Op {
    fn id(&self) -> &str {
        match self {
            Op::Put { id, .. } | Op::Patch { id, .. } | Op::Delete { id, .. } => id,
        }
    }

    fn expect(&self) -> Expect {
        match self {
            Op::Put { expect, .. } | Op::Patch { expect, .. } | Op::Delete { expect, .. } => {
                *expect
            }
        }
    }
}

/// The domain errors a valid batch can meet, comparable with `==`.
#[derive(Debug, Clone, PartialEq)]
enum Rejection {
    Conflict {
        id: String,
        expected: Option<u64>,
        actual: Option<u64>,
    },
    NotFound {
        id: String,
    },
    TimeNotLater {
        requested: u64,
        last: u64,
    },
}

fn rejection(e: Error) -> Rejection {
    match e.into_reason() {
        Error::Conflict {
            id,
            expected,
            actual,
        } => Rejection::Conflict {
            id,
            expected,
            actual,
        },
        Error::NotFound { id } => Rejection::NotFound { id },
        Error::TimeNotLater { requested, last } => Rejection::TimeNotLater { requested, last },
        other => panic!("a valid batch failed with an error the model does not know: {other}"),
    }
}

#[derive(Debug, Default)]
struct Model {
    docs: BTreeMap<String, Vec<ModelVersion>>,
    last_seq: u64,
    last_time: u64,
}

impl Model {
    fn versions(&self, id: &str) -> &[ModelVersion] {
        self.docs.get(id).map_or(&[], Vec::as_slice)
    }

    /// The newest version of `id` as a [`Planned`], tombstones included.
    fn newest(&self, id: &str) -> Option<Planned> {
        self.versions(id).last().map(|v| Planned {
            id: id.to_owned(),
            kind: v.kind.clone(),
            version: v.version,
            deleted: v.deleted,
            body: v.body.clone(),
        })
    }

    /// What `ops` would write, or the error that rejects the whole batch.
    fn plan(&self, ops: &[Op], time: Option<u64>) -> Result<Vec<Planned>, Rejection> {
        if let Some(t) = time {
            if t <= self.last_time {
                return Err(Rejection::TimeNotLater {
                    requested: t,
                    last: self.last_time,
                });
            }
        }
        let mut local: BTreeMap<String, Planned> = BTreeMap::new();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let id = op.id().to_owned();
            let newest = local.get(&id).cloned().or_else(|| self.newest(&id));
            let live = newest.clone().filter(|n| !n.deleted);
            let matches = match op.expect() {
                Expect::Any => true,
                Expect::Version(v) => live.as_ref().is_some_and(|l| l.version == v),
                Expect::Absent => live.is_none(),
            };
            if !matches {
                return Err(Rejection::Conflict {
                    id,
                    expected: match op.expect() {
                        Expect::Version(v) => Some(v),
                        _ => None,
                    },
                    actual: live.map(|l| l.version),
                });
            }
            let version = newest.map_or(0, |n| n.version + 1);
            let planned = match op {
                Op::Put { kind, body, .. } => Planned {
                    id: id.clone(),
                    kind: kind.clone(),
                    version,
                    deleted: false,
                    body: body.clone(),
                },
                Op::Patch { patch, .. } => {
                    let Some(live) = live else {
                        return Err(Rejection::NotFound { id });
                    };
                    let mut body = live.body;
                    merge_patch(&mut body, patch);
                    Planned {
                        id: id.clone(),
                        kind: live.kind,
                        version,
                        deleted: false,
                        body,
                    }
                }
                Op::Delete { .. } => {
                    let Some(live) = live else {
                        return Err(Rejection::NotFound { id });
                    };
                    Planned {
                        id: id.clone(),
                        kind: live.kind,
                        version,
                        deleted: true,
                        body: Value::Null,
                    }
                }
            };
            local.insert(id, planned.clone());
            out.push(planned);
        }
        Ok(out)
    }

    /// Checks the metas a commit returned against the plan and records the new versions.
    fn commit(&mut self, planned: Vec<Planned>, metas: &[Meta], time: Option<u64>, ctx: &str) {
        assert_eq!(metas.len(), planned.len(), "{ctx}: one meta per operation");
        let batch_time = metas[0].update_time_micros;
        match time {
            Some(t) => assert_eq!(batch_time, t, "{ctx}: the explicit batch time is used"),
            None => assert!(
                batch_time >= self.last_time,
                "{ctx}: time went backwards from {} to {batch_time}",
                self.last_time
            ),
        }
        for (i, (p, meta)) in planned.into_iter().zip(metas).enumerate() {
            let expected = expected_meta(
                &p.id,
                &p.kind,
                p.version,
                self.last_seq + 1 + i as u64,
                batch_time,
                p.deleted,
            );
            assert_eq!(meta, &expected, "{ctx}: meta of operation {i}");
            self.docs.entry(p.id).or_default().push(ModelVersion {
                version: p.version,
                seq: expected.seq,
                time: batch_time,
                deleted: p.deleted,
                kind: p.kind,
                body: p.body,
            });
        }
        self.last_seq += metas.len() as u64;
        self.last_time = batch_time;
    }

    /// The current (newest, not deleted) version.
    fn current(&self, id: &str) -> Option<Document> {
        self.versions(id)
            .last()
            .filter(|v| !v.deleted)
            .map(|v| document(id, v))
    }

    /// docs/DESIGN.md §2 read literally: `v` is current at `t` iff `t(v) <= t` and `v` is the newest or
    /// its successor's time is `> t`; it is visible iff it is also not a tombstone.
    fn at_time(&self, id: &str, t: u64) -> Option<Document> {
        let versions = self.versions(id);
        let current: Vec<&ModelVersion> = versions
            .iter()
            .enumerate()
            .filter(|(i, v)| v.time <= t && versions.get(i + 1).is_none_or(|next| next.time > t))
            .map(|(_, v)| v)
            .collect();
        assert!(
            current.len() <= 1,
            "the model has two versions of {id} current at {t}"
        );
        current
            .first()
            .filter(|v| !v.deleted)
            .map(|v| document(id, v))
    }

    fn list(&self, prefix: &str) -> Vec<Document> {
        self.docs
            .keys()
            .filter(|id| id.starts_with(prefix))
            .filter_map(|id| self.current(id))
            .collect()
    }
}

fn document(id: &str, v: &ModelVersion) -> Document {
    Document {
        meta: expected_meta(id, &v.kind, v.version, v.seq, v.time, v.deleted),
        body: v.body.clone(),
    }
}

/// The `Meta` the store should give a version that does not expire (`Meta` is
/// `#[non_exhaustive]`: built from its serde form).
fn expected_meta(id: &str, kind: &str, version: u64, seq: u64, time: u64, deleted: bool) -> Meta {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "kind": kind,
        "version": version,
        "seq": seq,
        "update_time_micros": time,
        "deleted": deleted,
        "expires_at": null,
    }))
    .expect("the fields of a Meta")
}

fn random_string(rng: &mut SmallRng) -> String {
    const PIECES: &[&str] = &["x", "é", "\"", "\\", "\n", "\u{0}", "😀", " ", "abc", "{}"];
    if rng.random_ratio(1, 60) {
        // Now and then a body larger than a segment, so a batch gets a segment of its own.
        return "big".repeat(rng.random_range(1000..2500));
    }
    (0..rng.random_range(0..6))
        .map(|_| *PIECES.choose(rng).unwrap_or(&"x"))
        .collect()
}

fn random_scalar(rng: &mut SmallRng) -> Value {
    match rng.random_range(0..6) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => Value::from(rng.random_range(-1000i64..1000)),
        3 => Value::from(rng.random::<u64>()),
        4 => Value::from(f64::from(rng.random_range(-100i32..100)) / 8.0),
        _ => Value::from(random_string(rng)),
    }
}

fn random_value(rng: &mut SmallRng, depth: usize) -> Value {
    match rng.random_range(0..10) {
        0..=1 if depth < 4 => random_object(rng, depth + 1),
        2 if depth < 4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => random_scalar(rng),
    }
}

fn random_object(rng: &mut SmallRng, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.random_range(0..5) {
        let key = (*KEYS.choose(rng).unwrap_or(&"a")).to_owned();
        map.insert(key, random_value(rng, depth));
    }
    Value::Object(map)
}

/// A merge patch: nulls that remove fields, nested patches that merge, and plain values.
fn random_patch(rng: &mut SmallRng, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.random_range(1..4) {
        let key = (*KEYS.choose(rng).unwrap_or(&"a")).to_owned();
        let value = match rng.random_range(0..10) {
            0..=2 => Value::Null,
            3..=5 if depth < 3 => random_patch(rng, depth + 1),
            _ => random_value(rng, depth),
        };
        map.insert(key, value);
    }
    Value::Object(map)
}

/// An expectation that matches the newest state `live` most of the time.
fn random_expect(rng: &mut SmallRng, live: Option<u64>) -> Expect {
    if rng.random_bool(0.6) {
        return Expect::Any;
    }
    let matching = rng.random_bool(0.6);
    match (live, matching) {
        (Some(v), true) => Expect::Version(v),
        (None, true) => Expect::Absent,
        (Some(v), false) => match rng.random_range(0..3) {
            0 => Expect::Absent,
            1 => Expect::Version(v + 1),
            _ => Expect::Version(v.checked_sub(1).unwrap_or(v + 5)),
        },
        (None, false) => Expect::Version(rng.random_range(0..4)),
    }
}

fn random_batch(rng: &mut SmallRng, model: &Model) -> (Vec<Op>, Option<u64>) {
    let len = if rng.random_bool(0.5) {
        1
    } else {
        rng.random_range(2..=5)
    };
    let mut ops: Vec<Op> = Vec::with_capacity(len);
    for _ in 0..len {
        // The newest state of every id if the ops so far succeed.
        let planned = model.plan(&ops, None).unwrap_or_default();
        let newest = |id: &str| {
            planned
                .iter()
                .rev()
                .find(|p| p.id == id)
                .cloned()
                .or_else(|| model.newest(id))
        };
        let live_ids: Vec<&str> = IDS
            .iter()
            .copied()
            .filter(|id| newest(id).is_some_and(|n| !n.deleted))
            .collect();
        let kind = rng.random_range(0..20);
        let id = if !ops.is_empty() && rng.random_bool(0.4) {
            ops[rng.random_range(0..ops.len())].id().to_owned()
        } else if kind >= 8 && !live_ids.is_empty() && rng.random_bool(0.85) {
            (*live_ids.choose(rng).unwrap_or(&IDS[0])).to_owned()
        } else {
            (*IDS.choose(rng).unwrap_or(&IDS[0])).to_owned()
        };
        let live = newest(&id).filter(|n| !n.deleted).map(|n| n.version);
        let expect = random_expect(rng, live);
        ops.push(match kind {
            0..=7 => Op::Put {
                id,
                kind: (*KINDS.choose(rng).unwrap_or(&"user")).to_owned(),
                body: random_object(rng, 1),
                expect,
            },
            8..=14 => Op::Patch {
                id,
                patch: random_patch(rng, 1),
                expect,
            },
            _ => Op::Delete { id, expect },
        });
    }
    let time = if rng.random_ratio(3, 20) {
        if rng.random_bool(0.7) {
            // Just ahead of the clock, or far enough ahead that automatic times must follow.
            let ahead = if rng.random_bool(0.6) {
                1..=3000
            } else {
                1_000_000..=5_000_000
            };
            Some(model.last_time + rng.random_range(ahead))
        } else {
            Some(model.last_time.saturating_sub(rng.random_range(0..=2)))
        }
    } else {
        None
    };
    (ops, time)
}

/// Runs the batch either through [`Store::write`] or, for a single operation, through the
/// matching one-document call.
fn execute(
    store: &Store,
    rng: &mut SmallRng,
    ops: &[Op],
    time: Option<u64>,
) -> Result<Vec<Meta>, Error> {
    if let ([op], None) = (ops, time) {
        if rng.random_bool(0.5) {
            let meta = match (op.clone(), op.expect()) {
                (Op::Put { id, kind, body, .. }, Expect::Any) => store.put(&id, &kind, body),
                (
                    Op::Put {
                        id,
                        kind,
                        body,
                        expect,
                    },
                    _,
                ) => store.put_if(&id, &kind, body, expect),
                (Op::Patch { id, patch, .. }, Expect::Any) => store.patch(&id, patch),
                (Op::Patch { id, patch, expect }, _) => store.patch_if(&id, patch, expect),
                (Op::Delete { id, .. }, Expect::Any) => store.delete(&id),
                (Op::Delete { id, expect }, _) => store.delete_if(&id, expect),
            };
            return meta.map(|m| vec![m]);
        }
    }
    let mut batch = Batch::new();
    for op in ops.iter().cloned() {
        batch = match op {
            Op::Put {
                id,
                kind,
                body,
                expect,
            } => batch.put_if(id, kind, body, expect),
            Op::Patch { id, patch, expect } => batch.patch_if(id, patch, expect),
            Op::Delete { id, expect } => batch.delete_if(id, expect),
        };
    }
    if let Some(t) = time {
        batch = batch.at_time(t);
    }
    store.write(batch)
}

/// The times at which `get_at` is compared for one document: before creation, at, just before
/// and just after version times (sampled unless `all`), between versions, and the far future.
fn probe_times(rng: &mut SmallRng, versions: &[ModelVersion], all: bool) -> Vec<u64> {
    let mut times = vec![0, 1, u64::MAX];
    let sampled: Vec<&ModelVersion> = if all || versions.len() <= 6 {
        versions.iter().collect()
    } else {
        let mut some: Vec<&ModelVersion> = versions.choose_multiple(rng, 4).collect();
        some.extend(versions.iter().rev().take(2));
        some
    };
    for v in sampled {
        times.extend([v.time.saturating_sub(1), v.time, v.time + 1]);
    }
    if let (Some(first), Some(last)) = (versions.first(), versions.last()) {
        times.push(rng.random_range(first.time.saturating_sub(10)..=last.time + 10));
    }
    times
}

/// Compares every read of the store with the model.
fn check(store: &Store, model: &Model, rng: &mut SmallRng, all_times: bool, ctx: &str) {
    assert_eq!(store.last_seq(), model.last_seq, "{ctx}: last_seq");
    let mut stored: Vec<Document> = Vec::new();
    for &id in IDS {
        let versions = model.versions(id);
        let got = store
            .get(id)
            .unwrap_or_else(|e| panic!("{ctx}: get {id}: {e}"));
        assert_eq!(got, model.current(id), "{ctx}: get {id}");
        let history = store
            .history(id)
            .unwrap_or_else(|e| panic!("{ctx}: history {id}: {e}"));
        let expected: Vec<Document> = versions.iter().map(|v| document(id, v)).collect();
        assert_eq!(history, expected, "{ctx}: history {id}");
        for v in versions {
            let got = store
                .get_version(id, v.version)
                .unwrap_or_else(|e| panic!("{ctx}: get_version {id} {}: {e}", v.version));
            assert_eq!(
                got,
                Some(document(id, v)),
                "{ctx}: get_version {id} {}",
                v.version
            );
        }
        for missing in [versions.len() as u64, versions.len() as u64 + 7, u64::MAX] {
            let got = store
                .get_version(id, missing)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(
                got, None,
                "{ctx}: get_version {id} {missing} does not exist"
            );
        }
        for t in probe_times(rng, versions, all_times) {
            let got = store
                .get_at(id, t)
                .unwrap_or_else(|e| panic!("{ctx}: get_at {id} {t}: {e}"));
            assert_eq!(got, model.at_time(id, t), "{ctx}: get_at {id} {t}");
        }
        stored.extend(history);
    }
    for prefix in PREFIXES {
        let listed = store
            .list(prefix)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{ctx}: list {prefix:?}: {e}"));
        assert_eq!(listed, model.list(prefix), "{ctx}: list {prefix:?}");
    }
    // Independent of the model: seqs are dense from 1 and times never decrease in seq order.
    stored.sort_by_key(|d| d.meta.seq);
    let seqs: Vec<u64> = stored.iter().map(|d| d.meta.seq).collect();
    assert_eq!(
        seqs,
        (1..=store.last_seq()).collect::<Vec<_>>(),
        "{ctx}: seqs are dense"
    );
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].meta.update_time_micros <= w[1].meta.update_time_micros),
        "{ctx}: times never decrease in seq order"
    );
}

/// One seeded run: `steps` random batches with reopens, every read checked after every step.
fn run(seed: u64, steps: usize, options: &Options, dir: &Path) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut store = open(dir, options.clone());
    let (mut accepted, mut rejected, mut reopened) = (0, 0, 0);
    for step in 0..steps {
        let (ops, time) = random_batch(&mut rng, &model);
        let ctx = format!("seed {seed} step {step} ops {ops:?} time {time:?}");
        let predicted = model.plan(&ops, time);
        let result = execute(&store, &mut rng, &ops, time);
        match (predicted, result) {
            (Ok(planned), Ok(metas)) => {
                model.commit(planned, &metas, time, &ctx);
                accepted += 1;
            }
            (Err(expected), Err(e)) => {
                assert_eq!(rejection(e), expected, "{ctx}");
                rejected += 1;
            }
            (Ok(planned), Err(e)) => panic!("{ctx}: expected {planned:?}, got error {e}"),
            (Err(expected), Ok(metas)) => panic!("{ctx}: expected {expected:?}, got {metas:?}"),
        }
        check(&store, &model, &mut rng, false, &ctx);
        if rng.random_ratio(1, 25) || step + 1 == steps {
            drop(store);
            store = open(dir, options.clone());
            assert_eq!(
                store.open_stats().truncated_bytes,
                0,
                "{ctx}: a clean close leaves no torn tail"
            );
            check(
                &store,
                &model,
                &mut rng,
                true,
                &format!("{ctx} after reopen"),
            );
            reopened += 1;
        }
    }
    // The run must have exercised both outcomes and reopens, or it proves little.
    assert!(
        accepted > steps / 4 && rejected > steps / 20 && reopened > 1,
        "seed {seed}: {accepted} accepted, {rejected} rejected, {reopened} reopens"
    );
}

#[test]
fn random_operations_match_the_model() {
    let (seeds, steps) = if stress() {
        (0..64u64, 400)
    } else {
        (0..6u64, 300)
    };
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        // One seed in four pays for fsync, so the synced write path is modelled too.
        let options = if seed % 4 == 3 {
            fast_options().with_durability(Durability::Sync)
        } else {
            fast_options()
        };
        run(seed, steps, &options, dir.path());
    }
}
