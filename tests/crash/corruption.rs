//! Damage that no crash makes: flipped bytes in sealed segments and in the middle of the active
//! one, lost segments, future format versions. Each must be refused with the exact
//! `Error::Corruption` naming the file and the offset of the bad frame (0 for a header), never
//! repaired by truncation and never a panic.

use std::path::{Path, PathBuf};

use serde_json::json;
use strata::backend::{Backend, SimBackend};
use strata::{CorruptionKind, Error, Options};

use crate::support::{self, copy_fs, open, segment_path, try_open, FrameInfo, Model, Op};

/// A store of several segments made by a scripted workload.
fn several_segments() -> (SimBackend, Model) {
    let options = support::small_segments();
    let sim = SimBackend::new();
    let mut model = Model::default();
    {
        let store = open(&sim, &options, "workload");
        for ops in support::workload(0xc022_0001, 45, 250) {
            model.commit(&store, &ops).unwrap();
        }
    }
    assert!(
        support::segment_paths(&sim).len() >= 4,
        "the workload should roll segments"
    );
    (sim, model)
}

/// Opens `sim` and expects `Error::Corruption` in `file` at `offset`, returning its kind. The
/// failed open must leave every file as it was, and a second open must fail the same way.
fn expect_corruption(
    sim: &SimBackend,
    options: &Options,
    file: &Path,
    offset: u64,
    ctx: &str,
) -> CorruptionKind {
    let before: Vec<(PathBuf, Option<Vec<u8>>)> = sim
        .paths()
        .into_iter()
        .map(|p| (p.clone(), sim.file_bytes(&p)))
        .collect();
    assert!(
        !support::check_verify_agrees_with_open(sim, options, ctx),
        "{ctx}: opens"
    );
    let err = match try_open(sim, options) {
        Ok(store) => panic!(
            "{ctx}: opened a damaged store ({} seqs, stats {:?})",
            store.last_seq(),
            store.open_stats()
        ),
        Err(e) => e,
    };
    let Error::Corruption {
        file: found_file,
        offset: found_offset,
        kind,
    } = &err
    else {
        panic!("{ctx}: expected corruption, got {err} ({err:?})");
    };
    assert_eq!(
        (found_file.as_path(), *found_offset),
        (file, offset),
        "{ctx}: location of {err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&file.display().to_string())
            && message.contains(&format!("offset {offset}")),
        "{ctx}: the message names neither file nor offset: {message}"
    );
    let after: Vec<(PathBuf, Option<Vec<u8>>)> = sim
        .paths()
        .into_iter()
        .map(|p| (p.clone(), sim.file_bytes(&p)))
        .collect();
    assert!(before == after, "{ctx}: a failed open changed the files");
    let again = try_open(sim, options).err().map(|e| e.to_string());
    assert_eq!(again, Some(message), "{ctx}: a second open differs");
    kind.clone()
}

/// A copy of `sim` with `path` replaced by `edit` of its bytes.
fn damaged(sim: &SimBackend, path: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> SimBackend {
    let copy = copy_fs(sim);
    let mut bytes = copy.file_bytes(path).unwrap();
    edit(&mut bytes);
    copy.set_file_bytes(path, bytes);
    copy
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn flipped_bytes_in_a_sealed_segment_are_located_exactly() {
    let (sim, _) = several_segments();
    let options = support::small_segments();
    let path = segment_path(2);
    let bytes = sim.file_bytes(&path).unwrap();
    let frames = support::frames(&bytes);
    assert!(frames.len() >= 4, "segment 2 holds {} frames", frames.len());
    let mid = frames[frames.len() / 2];
    let last = *frames.last().unwrap();
    let crc_of = |f: FrameInfo| u32_at(&bytes, f.offset + 4);

    // The header: its magic, then a field only the header checksum protects.
    let kind = expect_corruption(
        &damaged(&sim, &path, |b| b[0] ^= 0xff),
        &options,
        &path,
        0,
        "magic",
    );
    assert_eq!(kind, CorruptionKind::BadMagic);
    let kind = expect_corruption(
        &damaged(&sim, &path, |b| b[20] ^= 0x01),
        &options,
        &path,
        0,
        "header number",
    );
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
        "header number: {kind:?}"
    );

    // A frame's length: a high bit makes it longer than any frame may be, a low bit moves the
    // checksummed range.
    let kind = expect_corruption(
        &damaged(&sim, &path, |b| b[mid.offset + 3] ^= 0x80),
        &options,
        &path,
        mid.offset as u64,
        "length high bit",
    );
    let huge = u64::from(u32_at(&bytes, mid.offset) ^ 0x8000_0000);
    assert_eq!(kind, CorruptionKind::BadLength(huge));
    let kind = expect_corruption(
        &damaged(&sim, &path, |b| b[mid.offset] ^= 0x01),
        &options,
        &path,
        mid.offset as u64,
        "length low bit",
    );
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { stored, .. } if stored == crc_of(mid)),
        "length low bit: {kind:?}"
    );

    // The checksum itself, and the payload.
    let kind = expect_corruption(
        &damaged(&sim, &path, |b| b[mid.offset + 4] ^= 0x01),
        &options,
        &path,
        mid.offset as u64,
        "crc",
    );
    assert_eq!(
        kind,
        CorruptionKind::ChecksumMismatch {
            stored: crc_of(mid) ^ 0x01,
            computed: crc_of(mid)
        }
    );
    for at in [8, 8 + 20, 8 + 56, mid.len - 1] {
        let ctx = format!("payload byte {at} of the frame at {}", mid.offset);
        let kind = expect_corruption(
            &damaged(&sim, &path, |b| b[mid.offset + at] ^= 0x40),
            &options,
            &path,
            mid.offset as u64,
            &ctx,
        );
        assert!(
            matches!(kind, CorruptionKind::ChecksumMismatch { stored, computed } if stored == crc_of(mid) && computed != stored),
            "{ctx}: {kind:?}"
        );
    }

    // The end of a sealed segment: a flip in its last byte, a cut inside its last frame. A
    // sealed segment has no torn tail to forgive.
    let kind = expect_corruption(
        &damaged(&sim, &path, |b| *b.last_mut().unwrap() ^= 0x01),
        &options,
        &path,
        last.offset as u64,
        "last byte",
    );
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
        "last byte: {kind:?}"
    );
    for cut in [1, last.len / 2, last.len - 1] {
        let ctx = format!("sealed segment short by {cut} bytes");
        let kind = expect_corruption(
            &damaged(&sim, &path, |b| b.truncate(b.len() - cut)),
            &options,
            &path,
            last.offset as u64,
            &ctx,
        );
        assert_eq!(kind, CorruptionKind::Truncated, "{ctx}");
    }
    // Cut exactly before its last frame, a sealed segment either ends inside a batch, or ends
    // cleanly and the next segment's first seq no longer follows.
    let whole_frames = damaged(&sim, &path, |b| b.truncate(last.offset));
    let ctx = "sealed segment short by its last frame";
    if frames[frames.len() - 2].batch_end {
        let next = segment_path(3);
        let kind = expect_corruption(&whole_frames, &options, &next, 0, ctx);
        assert_eq!(
            kind,
            CorruptionKind::SeqGap {
                expected: last.seq,
                found: last.seq + 1
            },
            "{ctx}"
        );
    } else {
        let kind = expect_corruption(&whole_frames, &options, &path, last.offset as u64, ctx);
        assert_eq!(kind, CorruptionKind::IncompleteBatch, "{ctx}");
    }

    // The first frame of the first segment.
    let first = segment_path(1);
    let kind = expect_corruption(
        &damaged(&sim, &first, |b| {
            b[support::SEGMENT_HEADER_LEN + 30] ^= 0x10
        }),
        &options,
        &first,
        support::SEGMENT_HEADER_LEN as u64,
        "first frame",
    );
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
        "first frame: {kind:?}"
    );
}

/// Frames with a valid checksum whose contents break the log's rules.
#[test]
fn well_checksummed_frames_that_break_the_rules_are_corruption() {
    let (sim, _) = several_segments();
    let options = support::small_segments();
    let path = segment_path(2);
    let bytes = sim.file_bytes(&path).unwrap();
    let frames = support::frames(&bytes);
    let updated = *frames
        .iter()
        .skip(1)
        .find(|f| f.version > 0)
        .expect("an update in segment 2");
    let seq_field = updated.offset + support::FRAME_HEADER_LEN;
    let version_field = seq_field + 16;

    let skipped_version = damaged(&sim, &path, |b| {
        b[version_field..version_field + 8].copy_from_slice(&(updated.version + 5).to_le_bytes());
        support::reseal_frame(b, updated.offset);
    });
    let kind = expect_corruption(
        &skipped_version,
        &options,
        &path,
        updated.offset as u64,
        "version gap",
    );
    assert_eq!(
        kind,
        CorruptionKind::VersionGap {
            expected: updated.version,
            found: updated.version + 5
        }
    );

    let skipped_seq = damaged(&sim, &path, |b| {
        b[seq_field..seq_field + 8].copy_from_slice(&(updated.seq + 100).to_le_bytes());
        support::reseal_frame(b, updated.offset);
    });
    let kind = expect_corruption(
        &skipped_seq,
        &options,
        &path,
        updated.offset as u64,
        "seq gap",
    );
    assert_eq!(
        kind,
        CorruptionKind::SeqGap {
            expected: updated.seq,
            found: updated.seq + 100
        }
    );

    // A lost sealed segment: the next one's first seq does not follow.
    let lost = copy_fs(&sim);
    lost.remove_file(&path).unwrap();
    let third = segment_path(3);
    let kind = expect_corruption(&lost, &options, &third, 0, "lost segment 2");
    let first_of_2 = frames[0].seq;
    assert!(
        matches!(kind, CorruptionKind::SeqGap { expected, found } if expected == first_of_2 && found > first_of_2),
        "lost segment 2: {kind:?}"
    );
}

/// The active segment of one store, written as batches of known sizes, each its own group
/// commit: returns the frames of each batch.
fn active_segment_store(batch_sizes: &[usize]) -> (SimBackend, Model, Vec<Vec<FrameInfo>>) {
    let options = Options::default();
    let sim = SimBackend::new();
    let mut model = Model::default();
    {
        let store = open(&sim, &options, "workload");
        for (b, &size) in batch_sizes.iter().enumerate() {
            let ops: Vec<Op> = (0..size)
                .map(|i| Op::Put {
                    id: format!("/batch/{b}/{i}"),
                    kind: "item".into(),
                    body: json!({"b": b, "i": i, "pad": "p".repeat(30)}),
                })
                .collect();
            model.commit(&store, &ops).unwrap();
        }
    }
    let bytes = sim.file_bytes(&segment_path(1)).unwrap();
    let frames = support::frames(&bytes);
    assert_eq!(support::segment_paths(&sim).len(), 1);
    let mut batches = Vec::new();
    let mut rest = frames.as_slice();
    for &size in batch_sizes {
        let (batch, tail) = rest.split_at(size);
        assert!(batch.last().is_some_and(|f| f.batch_end));
        batches.push(batch.to_vec());
        rest = tail;
    }
    (sim, model, batches)
}

/// A bad frame in the active segment followed by valid frames of a later write is damage to
/// acknowledged data, not a torn tail: truncating would silently lose the later writes.
#[test]
fn a_bad_frame_before_later_writes_in_the_active_segment_is_corruption() {
    let sizes = [1, 3, 1, 2, 1, 1, 3];
    let (sim, _, batches) = active_segment_store(&sizes);
    let options = Options::default();
    let path = segment_path(1);
    // (batch, frame inside it) of every frame before the last batch.
    let targets: Vec<(usize, usize)> = batches[..batches.len() - 1]
        .iter()
        .enumerate()
        .flat_map(|(b, frames)| (0..frames.len()).map(move |f| (b, f)))
        .collect();
    for (b, f) in targets {
        let frame = batches[b][f];
        let ctx = format!(
            "flip in frame {f} of batch {b} (of {}) at {}",
            sizes.len(),
            frame.offset
        );
        let kind = expect_corruption(
            &damaged(&sim, &path, |bytes| {
                bytes[frame.offset + frame.len - 3] ^= 0x04
            }),
            &options,
            &path,
            frame.offset as u64,
            &ctx,
        );
        assert!(
            matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
            "{ctx}: {kind:?}"
        );
    }
    let kind = expect_corruption(
        &damaged(&sim, &path, |bytes| bytes[9] ^= 0x01),
        &options,
        &path,
        0,
        "active header",
    );
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
        "active header: {kind:?}"
    );
}

/// A bad frame inside the last write of the active segment is its torn tail: the store opens
/// with the writes before it, whichever frame of that write is bad.
#[test]
fn a_bad_frame_in_the_last_write_is_a_torn_tail() {
    let sizes = [2, 1, 3];
    let (sim, model, batches) = active_segment_store(&sizes);
    let options = Options::default();
    let path = segment_path(1);
    let last = batches.last().unwrap();
    let end = last.last().map(|f| f.offset + f.len).unwrap();
    for (i, frame) in last.iter().enumerate() {
        let ctx = format!("flip in frame {i} of the last batch");
        let copy = damaged(&sim, &path, |bytes| bytes[frame.offset + 12] ^= 0x01);
        assert!(support::check_verify_agrees_with_open(
            &copy, &options, &ctx
        ));
        let store = open(&copy, &options, &ctx);
        model.check(&store, sizes.len() - 1, &ctx);
        assert_eq!(
            store.open_stats().truncated_bytes,
            (end - last[0].offset) as u64,
            "{ctx}"
        );
        assert_eq!(store.open_stats().truncated_records, i as u64, "{ctx}");
    }
}

fn with_format_version(version: u32) -> impl FnOnce(&mut Vec<u8>) {
    move |bytes| {
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        support::reseal_header(bytes);
    }
}

fn assert_unsupported(kind: &CorruptionKind, found: u32, ctx: &str) {
    assert!(
        matches!(kind, CorruptionKind::UnsupportedVersion { found: f, oldest, newest } if *f == found && oldest <= newest && !(oldest..=newest).contains(&&found)),
        "{ctx}: {kind:?}"
    );
}

#[test]
fn a_future_format_version_is_refused_by_name() {
    let (sim, _) = several_segments();
    let options = support::small_segments();
    let sealed = segment_path(1);
    let active = support::segment_paths(&sim).pop().unwrap();
    for (path, version) in [
        (&sealed, 99),
        (&active, 99),
        (&sealed, 0),
        (&active, u32::MAX),
    ] {
        let ctx = format!("{path:?} with format version {version}");
        let kind = expect_corruption(
            &damaged(&sim, path, with_format_version(version)),
            &options,
            path,
            0,
            &ctx,
        );
        assert_unsupported(&kind, version, &ctx);
    }
}

/// Regression: a store whose only segment is a bare header of a future format version was
/// taken for a segment torn while being created and silently rewritten in the old format.
#[test]
fn a_future_format_version_of_an_empty_store_is_refused_not_rewritten() {
    let sim = SimBackend::new();
    let options = Options::default();
    drop(open(&sim, &options, "create"));
    let path = segment_path(1);
    let next = strata::FORMAT_VERSION + 1;
    let future = damaged(&sim, &path, with_format_version(next));
    let kind = expect_corruption(
        &future,
        &options,
        &path,
        0,
        "empty store of a future format",
    );
    assert_unsupported(&kind, next, "empty store of a future format");
}

/// Regression: a flip in the first frame of a two-record batch was taken for a torn tail, because
/// recovery looked only at the first valid frame after it (the batch's own second frame), and
/// silently cut every later, acknowledged batch.
#[test]
fn a_flip_in_the_first_frame_of_a_batch_does_not_hide_later_batches() {
    let (sim, _, batches) = active_segment_store(&[1, 2, 1]);
    let path = segment_path(1);
    let frame = batches[1][0];
    let copy = damaged(&sim, &path, |bytes| {
        bytes[frame.offset + support::FRAME_HEADER_LEN] ^= 0x01
    });
    let kind = expect_corruption(
        &copy,
        &Options::default(),
        &path,
        frame.offset as u64,
        "first frame of batch 1",
    );
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
        "{kind:?}"
    );
}
