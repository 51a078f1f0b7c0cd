//! Torn writes: the end of a real log cut at every byte offset of its last batch, and a segment
//! header cut while it was being created.

use serde_json::json;
use strata::backend::SimBackend;

use crate::support::{self, copy_fs, open, segment_header, segment_path, Model, Op};

/// Writes a workload ending in a batch of `last_len` operations, then cuts the active segment at
/// every offset from the start of that batch to its end: the store opens with exactly the
/// batches before, reports the cut bytes and the whole frames of the unfinished batch it
/// dropped, and goes on working.
fn cut_the_last_batch_everywhere(seed: u64, last_len: usize) {
    let options = support::small_segments();
    let sim = SimBackend::new();
    let mut model = Model::default();
    {
        let store = open(&sim, &options, "workload");
        for ops in support::workload(seed, 25, 250) {
            model.commit(&store, &ops).unwrap();
        }
        let last: Vec<Op> = (0..last_len)
            .map(|i| Op::Put {
                id: format!("/last/{i}"),
                kind: "last".into(),
                body: json!({"i": i, "pad": "z".repeat(40 * i)}),
            })
            .collect();
        model.commit(&store, &last).unwrap();
    }
    let before = model.len() - 1;
    let paths = support::segment_paths(&sim);
    assert!(paths.len() >= 3, "the workload should roll segments");
    let active = paths.last().unwrap().clone();
    let bytes = sim.file_bytes(&active).unwrap();
    let first_new_seq = model.seq_after(before) + 1;
    let last_frames: Vec<_> = support::frames(&bytes)
        .into_iter()
        .filter(|f| f.seq >= first_new_seq)
        .collect();
    assert_eq!(
        last_frames.len(),
        last_len,
        "the last batch's frames are at the end of {active:?}"
    );
    let start = last_frames[0].offset;
    assert_eq!(
        last_frames.last().map(|f| f.offset + f.len),
        Some(bytes.len())
    );

    for cut in start..=bytes.len() {
        let ctx = format!(
            "{active:?} cut at {cut} (last batch at {start}..{})",
            bytes.len()
        );
        let damaged = copy_fs(&sim);
        damaged.set_file_bytes(&active, bytes[..cut].to_vec());
        support::check_verify_agrees_with_open(&damaged, &options, &ctx);
        let store = open(&damaged, &options, &ctx);
        let whole = cut == bytes.len();
        let expected = if whole { model.len() } else { before };
        model.check(&store, expected, &ctx);
        let stats = store.open_stats();
        let dropped_frames = last_frames
            .iter()
            .filter(|f| f.offset + f.len <= cut)
            .count() as u64;
        let (cut_bytes, cut_records) = if whole {
            (0, 0)
        } else {
            ((cut - start) as u64, dropped_frames)
        };
        assert_eq!(stats.truncated_bytes, cut_bytes, "{ctx}: truncated bytes");
        assert_eq!(
            stats.truncated_records, cut_records,
            "{ctx}: truncated records"
        );
        assert_eq!(stats.segments, paths.len() as u64, "{ctx}: segments read");

        let mut after = model.prefix(expected);
        let probe = [Op::Put {
            id: "/after-cut".into(),
            kind: "probe".into(),
            body: json!({"cut": cut}),
        }];
        after
            .commit(&store, &probe)
            .unwrap_or_else(|e| panic!("{ctx}: write after repair: {e}"));
        drop(store);
        let reopened = open(&damaged, &options, &ctx);
        after.check(&reopened, expected + 1, &format!("{ctx}, reopened"));
        assert_eq!(
            reopened.open_stats().truncated_bytes,
            0,
            "{ctx}: repaired twice"
        );
    }
}

#[test]
fn a_torn_single_record_batch_is_cut_at_every_offset() {
    cut_the_last_batch_everywhere(0x7042_0001, 1);
}

#[test]
fn a_torn_multi_record_batch_is_cut_at_every_offset() {
    cut_the_last_batch_everywhere(0x7042_0002, 3);
}

/// A crash while a segment was being created can leave its header short (its name durable,
/// its bytes not): the segment is started again, after the sealed ones, with the right first
/// seq.
#[test]
fn a_torn_segment_header_is_started_again() {
    let options = support::small_segments();
    let sim = SimBackend::new();
    let mut model = Model::default();
    {
        let store = open(&sim, &options, "workload");
        for ops in support::workload(0x7042_0003, 30, 250) {
            model.commit(&store, &ops).unwrap();
        }
    }
    let segments = support::segment_paths(&sim).len() as u64;
    assert!(segments >= 2);
    let next = segment_path(segments + 1);
    let header = segment_header(1, segments + 1, model.seq_after(model.len()) + 1);
    for cut in 0..=header.len() {
        let ctx = format!("new segment {next:?} with {cut} header bytes");
        let damaged = copy_fs(&sim);
        damaged.set_file_bytes(&next, header[..cut].to_vec());
        support::check_verify_agrees_with_open(&damaged, &options, &ctx);
        let store = open(&damaged, &options, &ctx);
        model.check(&store, model.len(), &ctx);
        let expected_cut = if cut == header.len() { 0 } else { cut as u64 };
        assert_eq!(
            store.open_stats().truncated_bytes,
            expected_cut,
            "{ctx}: truncated bytes"
        );
        let mut after = model.clone();
        let probe = [Op::Put {
            id: "/after-cut".into(),
            kind: "probe".into(),
            body: json!({"cut": cut}),
        }];
        after
            .commit(&store, &probe)
            .unwrap_or_else(|e| panic!("{ctx}: write after repair: {e}"));
        drop(store);
        let reopened = open(&damaged, &options, &ctx);
        after.check(&reopened, model.len() + 1, &format!("{ctx}, reopened"));
        let restarted = damaged.file_bytes(&next).unwrap();
        assert_eq!(
            &restarted[..header.len()],
            &header[..],
            "{ctx}: the segment was started again"
        );
    }
}

/// The same for the first segment of a store that has nothing yet.
#[test]
fn a_torn_first_header_leaves_an_empty_working_store() {
    let options = support::small_segments();
    let sim = SimBackend::new();
    drop(open(&sim, &options, "create"));
    let first = segment_path(1);
    let header = sim.file_bytes(&first).unwrap();
    assert_eq!(
        header,
        segment_header(1, 1, 1),
        "the test's reading of FORMAT.md §2"
    );
    for cut in 0..header.len() {
        let ctx = format!("first segment with {cut} header bytes");
        let damaged = copy_fs(&sim);
        damaged.set_file_bytes(&first, header[..cut].to_vec());
        support::check_verify_agrees_with_open(&damaged, &options, &ctx);
        let store = open(&damaged, &options, &ctx);
        assert_eq!(store.last_seq(), 0, "{ctx}");
        assert_eq!(store.open_stats().truncated_bytes, cut as u64, "{ctx}");
        let mut model = Model::default();
        let ops = [Op::Put {
            id: "/first".into(),
            kind: "probe".into(),
            body: json!({"cut": cut}),
        }];
        model.commit(&store, &ops).unwrap();
        drop(store);
        model.check(&open(&damaged, &options, &ctx), 1, &ctx);
    }
}
