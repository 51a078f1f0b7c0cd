//! What the crash tests share: a scripted workload, a model of what it committed, checks of a
//! reopened store against a prefix of that model, and readers of the raw segment bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use strata::backend::{CrashMode, SimBackend};
use strata::{Batch, Document, Meta, Options, Store};

use crate::patch::merge_patch;

/// The data directory every simulated store lives in.
pub const DATA_DIR: &str = "/db";
/// The smallest segment size the engine accepts: segments roll every few writes.
pub const SMALL_SEGMENT: u64 = 4096;
/// Bytes of a segment header (FORMAT.md §2).
pub const SEGMENT_HEADER_LEN: usize = 40;
/// Bytes before a frame's payload: `len: u32`, `crc: u32` (FORMAT.md §3).
pub const FRAME_HEADER_LEN: usize = 8;

/// `normal`, or `stressed` when the environment sets `STRESS=1` (the kill tests' rounds).
pub fn stress_or(normal: usize, stressed: usize) -> usize {
    if std::env::var_os("STRESS").is_some_and(|v| v == "1") {
        stressed
    } else {
        normal
    }
}

/// The seed of a randomised test: `SEED` from the environment (to replay a failure the test
/// printed), else one from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// The log directory of the simulated store.
pub fn log_dir() -> PathBuf {
    Path::new(DATA_DIR).join("log")
}

/// The file of segment `number`.
pub fn segment_path(number: u64) -> PathBuf {
    log_dir().join(format!("{number:020}.log"))
}

/// Segment files of a simulated file system, oldest first.
pub fn segment_paths(sim: &SimBackend) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = sim
        .paths()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths
}

/// Sync durability (the default) and small segments.
pub fn small_segments() -> Options {
    Options::default().with_segment_size(SMALL_SEGMENT)
}

/// Opens the store of [`DATA_DIR`] on `sim`.
pub fn try_open(sim: &SimBackend, options: &Options) -> strata::Result<Store> {
    Store::open_with_backend(Arc::new(sim.clone()), Path::new(DATA_DIR), options.clone())
}

/// Opens the store of [`DATA_DIR`] on `sim`, failing the test with `ctx` if it does not open.
pub fn open(sim: &SimBackend, options: &Options, ctx: &str) -> Store {
    try_open(sim, options).unwrap_or_else(|e| panic!("{ctx}: open failed: {e} ({e:?})"))
}

/// A copy of everything written so far (synced or not), as a separate file system.
pub fn copy_fs(sim: &SimBackend) -> SimBackend {
    sim.image().materialize(CrashMode::KeepAll)
}

/// One operation of a scripted batch.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        id: String,
        kind: String,
        body: Value,
    },
    Patch {
        id: String,
        patch: Value,
    },
    Delete {
        id: String,
    },
}

impl Op {
    pub fn id(&self) -> &str {
        match self {
            Op::Put { id, .. } | Op::Patch { id, .. } | Op::Delete { id } => id,
        }
    }
}

/// The facade batch of scripted operations.
pub fn to_batch(ops: &[Op]) -> Batch {
    ops.iter().fold(Batch::new(), |batch, op| match op {
        Op::Put { id, kind, body } => batch.put(id.as_str(), kind.as_str(), body.clone()),
        Op::Patch { id, patch } => batch.patch(id.as_str(), patch.clone()),
        Op::Delete { id } => batch.delete(id.as_str()),
    })
}

/// The facade batch of scripted operations, operation `i` at time `base + 1000 i`.
pub fn timed_batch(ops: &[Op], base: u64) -> Batch {
    ops.iter().zip(0u64..).fold(Batch::new(), |batch, (op, i)| {
        let batch = match op {
            Op::Put { id, kind, body } => batch.put(id.as_str(), kind.as_str(), body.clone()),
            Op::Patch { id, patch } => batch.patch(id.as_str(), patch.clone()),
            Op::Delete { id } => batch.delete(id.as_str()),
        };
        batch.timed(base + 1000 * i)
    })
}

/// A random workload of puts, patches and deletes in batches of one to four operations, only
/// ever patching or deleting live documents (so every batch commits). Bodies carry padding of
/// up to `max_pad` bytes so that small segments roll.
pub fn workload(seed: u64, batches: usize, max_pad: usize) -> Vec<Vec<Op>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    // Whether each document is live, as the script has left it so far.
    let mut live: BTreeMap<String, bool> = BTreeMap::new();
    let mut script = Vec::with_capacity(batches);
    let mut n = 0u64;
    for _ in 0..batches {
        let len = if rng.random_bool(0.6) {
            1
        } else {
            rng.random_range(2..=4)
        };
        let mut ops = Vec::with_capacity(len);
        for _ in 0..len {
            n += 1;
            let id = format!("/docs/{}", rng.random_range(0..12));
            let pad = "x".repeat(rng.random_range(0..=max_pad));
            let is_live = live.get(&id).copied().unwrap_or(false);
            let roll = rng.random_range(0..100);
            let op = if !is_live || roll < 35 {
                Op::Put {
                    kind: if rng.random_bool(0.5) {
                        "alpha"
                    } else {
                        "beta"
                    }
                    .to_owned(),
                    body: json!({"n": n, "pad": pad, "nested": {"a": n % 7, "list": [n, n + 1]}}),
                    id: id.clone(),
                }
            } else if roll < 80 {
                let pad = if rng.random_bool(0.3) {
                    Value::Null
                } else {
                    Value::String(pad)
                };
                Op::Patch {
                    patch: json!({"n": n, "patched": true, "pad": pad, "nested": {"b": n, "a": null}}),
                    id: id.clone(),
                }
            } else {
                Op::Delete { id: id.clone() }
            };
            live.insert(id, !matches!(op, Op::Delete { .. }));
            ops.push(op);
        }
        script.push(ops);
    }
    script
}

/// One version, as a read should return it.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub id: String,
    pub kind: String,
    pub version: u64,
    pub seq: u64,
    pub time: u64,
    pub deleted: bool,
    pub body: Value,
}

impl Expected {
    fn of(doc: &Document) -> Expected {
        Expected {
            id: doc.meta.id.clone(),
            kind: doc.meta.kind.clone(),
            version: doc.meta.version,
            seq: doc.meta.seq,
            time: doc.meta.update_time_micros,
            deleted: doc.meta.deleted,
            body: doc.body.clone(),
        }
    }
}

/// The committed batches, in commit order, with the versions each one made.
#[derive(Debug, Clone, Default)]
pub struct Model {
    batches: Vec<Vec<Expected>>,
    /// Every id any batch touched, so checks also look at documents a prefix lacks.
    ids: BTreeSet<String>,
    /// The newest update time acknowledged.
    last_time: u64,
}

impl Model {
    /// Number of committed batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// The model of the first `n` batches (the ids stay known, so later ones must be absent).
    pub fn prefix(&self, n: usize) -> Model {
        Model {
            batches: self.batches[..n].to_vec(),
            ids: self.ids.clone(),
            last_time: self.batches[..n]
                .iter()
                .flatten()
                .map(|v| v.time)
                .max()
                .unwrap_or(0),
        }
    }

    /// The last seq after the first `n` batches.
    pub fn seq_after(&self, n: usize) -> u64 {
        self.batches[..n].iter().map(|b| b.len() as u64).sum()
    }

    /// The newest version of each document after the first `n` batches.
    fn newest(&self, n: usize) -> BTreeMap<&str, &Expected> {
        let mut newest = BTreeMap::new();
        for version in self.batches[..n].iter().flatten() {
            newest.insert(version.id.as_str(), version);
        }
        newest
    }

    /// Records a batch the store acknowledged with `metas`, checking the metas against what the
    /// model predicts (versions consecutive, seqs dense, kinds and tombstones right).
    pub fn apply(&mut self, ops: &[Op], metas: &[Meta]) {
        assert_eq!(metas.len(), ops.len(), "one meta per operation");
        let mut newest: BTreeMap<String, Expected> = self
            .newest(self.len())
            .into_iter()
            .map(|(id, v)| (id.to_owned(), v.clone()))
            .collect();
        let first_seq = self.seq_after(self.len()) + 1;
        let mut batch = Vec::with_capacity(ops.len());
        for (seq, (op, meta)) in (first_seq..).zip(ops.iter().zip(metas)) {
            let prev = newest.get(op.id());
            let live = prev.filter(|p| !p.deleted);
            let (kind, deleted, body) = match op {
                Op::Put { kind, body, .. } => (kind.clone(), false, body.clone()),
                Op::Patch { patch, .. } => {
                    let live = live.unwrap_or_else(|| panic!("script patches absent {}", op.id()));
                    let mut body = live.body.clone();
                    merge_patch(&mut body, patch);
                    (live.kind.clone(), false, body)
                }
                Op::Delete { .. } => {
                    let live = live.unwrap_or_else(|| panic!("script deletes absent {}", op.id()));
                    (live.kind.clone(), true, Value::Null)
                }
            };
            let expected = Expected {
                id: op.id().to_owned(),
                kind,
                version: prev.map_or(0, |p| p.version + 1),
                seq,
                time: meta.update_time_micros,
                deleted,
                body,
            };
            assert_eq!(
                (
                    meta.id.as_str(),
                    meta.kind.as_str(),
                    meta.version,
                    meta.seq,
                    meta.deleted
                ),
                (
                    expected.id.as_str(),
                    expected.kind.as_str(),
                    expected.version,
                    expected.seq,
                    expected.deleted
                ),
                "acknowledged meta disagrees with the model"
            );
            self.ids.insert(expected.id.clone());
            self.last_time = self.last_time.max(expected.time);
            newest.insert(expected.id.clone(), expected.clone());
            batch.push(expected);
        }
        self.batches.push(batch);
    }

    /// Runs `ops` as one batch on `store` and records the acknowledged result. Every other
    /// batch of several operations gives each operation its own increasing time (an import of
    /// history), so crashes and recovery meet batches whose versions have different times.
    pub fn commit(&mut self, store: &Store, ops: &[Op]) -> strata::Result<Vec<Meta>> {
        let mut batch = to_batch(ops);
        if ops.len() > 1 && self.len() % 2 == 1 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            let base = now.max(self.last_time) + 1;
            batch = timed_batch(ops, base);
        }
        let metas = store.write(batch)?;
        self.apply(ops, &metas);
        Ok(metas)
    }

    /// How many whole batches `store` holds: its last seq must end a batch of the model, or
    /// some batch is partial.
    pub fn recovered_batches(&self, store: &Store, ctx: &str) -> usize {
        let last_seq = store.last_seq();
        (0..=self.len())
            .find(|&n| self.seq_after(n) == last_seq)
            .unwrap_or_else(|| {
                panic!("{ctx}: last seq {last_seq} ends no batch of the model: a batch is partial")
            })
    }

    /// Checks that `store` holds exactly the first `n` batches: every version of every document
    /// with its body, kind, seq and time; nothing of a later batch; seqs dense from 1 and
    /// versions consecutive; current reads and listing agree.
    pub fn check(&self, store: &Store, n: usize, ctx: &str) {
        let last_seq = self.seq_after(n);
        assert_eq!(store.last_seq(), last_seq, "{ctx}: last seq");
        let mut expected: BTreeMap<&str, Vec<&Expected>> = self
            .ids
            .iter()
            .map(|id| (id.as_str(), Vec::new()))
            .collect();
        for version in self.batches[..n].iter().flatten() {
            expected
                .entry(version.id.as_str())
                .or_default()
                .push(version);
        }
        let mut seqs = Vec::new();
        let mut live = BTreeSet::new();
        for (id, versions) in &expected {
            let history: Vec<Expected> = store
                .history(id)
                .unwrap_or_else(|e| panic!("{ctx}: history of {id}: {e}"))
                .iter()
                .map(Expected::of)
                .collect();
            for (i, version) in history.iter().enumerate() {
                assert_eq!(
                    version.version, i as u64,
                    "{ctx}: versions of {id} are not consecutive"
                );
                seqs.push(version.seq);
            }
            let want: Vec<Expected> = versions.iter().map(|v| (*v).clone()).collect();
            assert_eq!(history, want, "{ctx}: history of {id}");
            let current = store
                .get(id)
                .unwrap_or_else(|e| panic!("{ctx}: get {id}: {e}"))
                .map(|d| Expected::of(&d));
            // As of each version's time, the newest version at or before it (the last of
            // several sharing one time), unless that is a tombstone: per-operation times inside
            // a batch must read back after recovery exactly as separate batches would.
            for v in &want {
                let at = store
                    .get_at(id, v.time)
                    .unwrap_or_else(|e| panic!("{ctx}: get_at {id} {}: {e}", v.time))
                    .map(|d| Expected::of(&d));
                let then = want
                    .iter()
                    .rev()
                    .find(|w| w.time <= v.time)
                    .filter(|w| !w.deleted)
                    .cloned();
                assert_eq!(at, then, "{ctx}: {id} as of {}", v.time);
            }
            let want = want.last().filter(|v| !v.deleted).cloned();
            assert_eq!(current, want, "{ctx}: current version of {id}");
            if want.is_some() {
                live.insert(id.to_string());
            }
        }
        seqs.sort_unstable();
        let dense: Vec<u64> = (1..=last_seq).collect();
        assert_eq!(seqs, dense, "{ctx}: seqs are not dense from 1");
        let listed = store
            .list("")
            .map(|d| d.map(|d| d.meta.id))
            .collect::<Result<BTreeSet<String>, _>>()
            .unwrap_or_else(|e| panic!("{ctx}: list: {e}"));
        assert_eq!(listed, live, "{ctx}: listed documents");
    }
}

/// A frame found by walking a segment's bytes (FORMAT.md §3-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Offset of the frame in its file.
    pub offset: usize,
    /// Total length, header included.
    pub len: usize,
    pub seq: u64,
    pub group: u64,
    pub version: u64,
    pub batch_end: bool,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The frames of a well-formed segment, in order.
pub fn frames(segment: &[u8]) -> Vec<FrameInfo> {
    let mut out = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while offset + FRAME_HEADER_LEN <= segment.len() {
        let payload_len = u32_at(segment, offset) as usize;
        let len = FRAME_HEADER_LEN + payload_len;
        assert!(
            offset + len <= segment.len(),
            "frame at {offset} runs past the segment"
        );
        let payload = &segment[offset + FRAME_HEADER_LEN..offset + len];
        assert_eq!(
            crc32(&segment[offset..offset + 4], payload),
            u32_at(segment, offset + 4),
            "frame at {offset}: the test's reading of FORMAT.md disagrees with the store"
        );
        let flags = u16::from_le_bytes([payload[40], payload[41]]);
        out.push(FrameInfo {
            offset,
            len,
            seq: u64_at(payload, 0),
            group: u64_at(payload, 8),
            version: u64_at(payload, 16),
            batch_end: flags & 0b10 != 0,
        });
        offset += len;
    }
    assert_eq!(offset, segment.len(), "segment ends inside a frame header");
    out
}

/// CRC-32 (IEEE) over `parts` in order, bitwise, independent of the store's crc32fast.
pub fn crc32(first: &[u8], second: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in first.iter().chain(second) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes the CRC of the frame at `offset` after a test edited its payload on purpose.
pub fn reseal_frame(segment: &mut [u8], offset: usize) {
    let len = u32_at(segment, offset) as usize;
    let crc = crc32(
        &segment[offset..offset + 4],
        &segment[offset + FRAME_HEADER_LEN..offset + FRAME_HEADER_LEN + len],
    );
    segment[offset + 4..offset + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes the CRC of a segment header after a test edited it on purpose.
pub fn reseal_header(segment: &mut [u8]) {
    let crc = crc32(&segment[0..36], &[]);
    segment[36..40].copy_from_slice(&crc.to_le_bytes());
}

/// A segment header as FORMAT.md §2 lays it out, for tests that build a file the store would
/// have made.
pub fn segment_header(format_version: u32, number: u64, first_seq: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
    header.extend_from_slice(b"STRATSEG");
    header.extend_from_slice(&format_version.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&number.to_le_bytes());
    header.extend_from_slice(&first_seq.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    reseal_header(&mut header);
    header
}

/// `verify` of the store on `sim` agrees with opening it: no problem wherever open succeeds, a
/// problem wherever open refuses (each on its own copy of the files, since both repair). What
/// open repairs (a torn tail, an interrupted segment creation) may only be a note. Returns
/// whether the store opens.
pub fn check_verify_agrees_with_open(sim: &SimBackend, options: &Options, ctx: &str) -> bool {
    if !sim.paths().iter().any(|p| p.starts_with(log_dir())) {
        // Nothing was created yet: open makes a new store, and there is nothing to verify.
        return try_open(&copy_fs(sim), options).is_ok();
    }
    let report = Store::verify_with_backend(
        Arc::new(copy_fs(sim)),
        Path::new(DATA_DIR),
        options.clone(),
        &mut |_, _| {},
    );
    let opened = try_open(&copy_fs(sim), options);
    match (&opened, report) {
        (Ok(_), Ok(report)) => assert!(
            report.is_ok(),
            "{ctx}: open succeeds, yet verify reports problems: {:?}",
            report.problems
        ),
        (Err(e), Ok(report)) => assert!(
            !report.is_ok(),
            "{ctx}: open refuses ({e}), yet verify reports no problem (notes {:?})",
            report.notes
        ),
        (Ok(_), Err(e)) => panic!("{ctx}: open succeeds, yet verify fails: {e}"),
        (Err(open), Err(e)) => {
            panic!("{ctx}: open refuses ({open}) and verify fails ({e}) instead of reporting it")
        }
    }
    opened.is_ok()
}
