//! Restores killed part way (issue 11 A): power loss at every sync point of a restore into the
//! simulated backend, IO failures on its Nth write or sync, and the real `strata restore`
//! killed with SIGKILL at random moments. Whatever the moment, the directory is the complete
//! restored store, one that every open refuses with `Error::RestoreUnfinished`, or (killed
//! before the restore had written anything durable) empty; and restoring again then succeeds.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use strata::backend::{Backend, BackendFile, CrashMode, Fault, FaultOp, LockGuard, SimBackend};
use strata::{Error, Options, RestoreOptions, Store};

use crate::support::{self, seed_from_env, stress_or, Model, DATA_DIR};

/// A store built by a scripted workload on the real file system, and a backup of it.
struct Source {
    _dir: tempfile::TempDir,
    backup: PathBuf,
    model: Model,
    /// The update time of each batch's last version.
    times: Vec<u64>,
}

impl Source {
    fn new(seed: u64, batches: usize, max_pad: usize, segment_size: u64) -> Source {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let options = Options::default()
            .with_segment_size(segment_size)
            .with_durability(strata::Durability::None);
        let store = Store::open(dir.path().join("db"), options).expect("open the source");
        let mut model = Model::default();
        let mut times = Vec::new();
        for ops in support::workload(seed, batches, max_pad) {
            let metas = model.commit(&store, &ops).expect("write the source");
            times.push(metas.last().expect("a version").update_time_micros);
        }
        store.rebuild_index().expect("index the source");
        let backup = dir.path().join("backup");
        store.backup(&backup).expect("back up the source");
        Source {
            _dir: dir,
            backup,
            model,
            times,
        }
    }

    /// The restore options of `case` and the number of batches that restore must give: the
    /// whole backup, or the store as of the middle batch.
    fn case(&self, at_middle: bool) -> (RestoreOptions, usize) {
        if !at_middle {
            return (RestoreOptions::default(), self.model.len());
        }
        let t = self.times[self.times.len() / 2];
        let n = self.times.iter().filter(|&&b| b <= t).count();
        (RestoreOptions::default().at(t), n)
    }
}

/// What a crashed or failed restore left.
#[derive(Debug, Default)]
struct Outcomes {
    complete: usize,
    refused: usize,
    empty: usize,
}

/// Checks what a restore left in [`DATA_DIR`] on `sim`: the complete store of `n` batches, an
/// unfinished restore that open refuses with the typed error, or nothing at all. Then restores
/// again into it, which must succeed (or, over a complete store, be refused as not empty).
fn check_sim_outcome(
    sim: &SimBackend,
    source: &Source,
    options: &RestoreOptions,
    n: usize,
    outcomes: &mut Outcomes,
    ctx: &str,
) {
    let dest = Path::new(DATA_DIR);
    let empty = sim.paths().iter().all(|p| !p.starts_with(dest));
    let complete = if empty {
        outcomes.empty += 1;
        false
    } else {
        match support::try_open(sim, &Options::default()) {
            Ok(store) => {
                source.model.check(&store, n, ctx);
                outcomes.complete += 1;
                true
            }
            Err(Error::RestoreUnfinished { path, backup }) => {
                assert_eq!(path, dest, "{ctx}: the refused directory");
                assert_eq!(
                    backup,
                    source.backup.display().to_string(),
                    "{ctx}: the backup the marker names"
                );
                outcomes.refused += 1;
                false
            }
            Err(e) => panic!("{ctx}: open failed with {e} ({e:?})"),
        }
    };
    let again = Store::restore_with_backend(sim, &source.backup, dest, options.clone());
    if complete {
        assert!(
            matches!(again, Err(Error::DestinationNotEmpty { .. })),
            "{ctx}: a restore over a complete store: {again:?}"
        );
        return;
    }
    if let Err(e) = again {
        panic!("{ctx}: restoring again failed: {e}");
    }
    let store = support::try_open(sim, &Options::default())
        .unwrap_or_else(|e| panic!("{ctx}: open after restoring again: {e}"));
    source.model.check(&store, n, ctx);
}

#[test]
fn restore_crashed_at_every_sync_point_is_complete_or_refused() {
    // Today's restore leaves, crashed part way, a directory that opens with part of the backup
    // (or as an empty store); it must be all or nothing.
    let source = Source::new(71, 60, 300, support::SMALL_SEGMENT);
    for at_middle in [false, true] {
        let (options, n) = source.case(at_middle);
        let sim = SimBackend::new();
        sim.record_images();
        Store::restore_with_backend(&sim, &source.backup, Path::new(DATA_DIR), options.clone())
            .expect("the restore");
        let mut images = sim.images();
        images.push(sim.image());
        let mut outcomes = Outcomes::default();
        for (i, image) in images.iter().enumerate() {
            for mode in [
                CrashMode::DropUnsynced,
                CrashMode::KeepPrefix(100),
                CrashMode::KeepAll,
            ] {
                let ctx = format!("at={at_middle}, image {i} of {}, {mode:?}", images.len());
                let crashed = image.materialize(mode);
                check_sim_outcome(&crashed, &source, &options, n, &mut outcomes, &ctx);
            }
        }
        eprintln!("at={at_middle}: {} images: {outcomes:?}", images.len());
        assert!(
            outcomes.complete > 0 && outcomes.refused > 0 && outcomes.empty > 0,
            "at={at_middle}: the sweep missed an outcome: {outcomes:?}"
        );
    }
}

#[test]
fn restore_failing_at_every_write_and_sync_leaves_nothing_that_opens_partly() {
    // Today's restore that fails part way removes what it wrote, but a failure of that
    // clean-up (or a crash during it) leaves part of the store, which opens.
    let source = Source::new(72, 40, 300, support::SMALL_SEGMENT);
    let (options, n) = source.case(true);
    let probe = SimBackend::new();
    Store::restore_with_backend(&probe, &source.backup, Path::new(DATA_DIR), options.clone())
        .expect("the restore");
    let (writes, syncs) = (probe.writes(), probe.syncs());
    let mut outcomes = Outcomes::default();
    for (op, count) in [(FaultOp::Write, writes), (FaultOp::Sync, syncs)] {
        for nth in 0..count {
            for sticky in [false, true] {
                let ctx = format!("{op:?} {nth} of {count} fails (sticky: {sticky})");
                let sim = SimBackend::new();
                sim.inject(Fault {
                    op,
                    nth,
                    kind: std::io::ErrorKind::StorageFull,
                    sticky,
                });
                let result = Store::restore_with_backend(
                    &sim,
                    &source.backup,
                    Path::new(DATA_DIR),
                    options.clone(),
                );
                assert!(
                    matches!(result, Err(Error::Io { .. })),
                    "{ctx}: the restore: {result:?}"
                );
                sim.clear_fault();
                for mode in [CrashMode::DropUnsynced, CrashMode::KeepAll] {
                    let crashed = sim.image().materialize(mode);
                    check_sim_outcome(&crashed, &source, &options, n, &mut outcomes, &ctx);
                }
            }
        }
    }
    eprintln!("{writes} writes, {syncs} syncs: {outcomes:?}");
    assert_eq!(outcomes.complete, 0, "a failed restore is never complete");
    assert!(
        outcomes.refused > 0 && outcomes.empty > 0,
        "the sweep missed an outcome: {outcomes:?}"
    );
}

#[test]
fn restore_into_a_directory_holding_an_unfinished_restore_starts_over() {
    // An unfinished restore must not block the operator: restoring again into it starts over,
    // while any other non-empty directory stays refused.
    let source = Source::new(73, 20, 100, support::SMALL_SEGMENT);
    let sim = SimBackend::new();
    let dest = Path::new(DATA_DIR);
    sim.inject(Fault {
        op: FaultOp::Sync,
        nth: 4,
        kind: std::io::ErrorKind::StorageFull,
        sticky: true,
    });
    let failed = Store::restore_with_backend(&sim, &source.backup, dest, RestoreOptions::default());
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    sim.clear_fault();
    let refused = support::try_open(&sim, &Options::default());
    let Err(e) = refused else {
        panic!("an unfinished restore opened as a store");
    };
    let message = e.to_string();
    assert!(
        matches!(e, Error::RestoreUnfinished { .. })
            && message.contains("unfinished restore")
            && message.contains("run the restore again"),
        "{message}"
    );
    // A stray file beside the unfinished restore: not only a restore's, so refused.
    let stray = dest.join("notes.txt");
    sim.open(&stray, true).expect("a stray file");
    let refused =
        Store::restore_with_backend(&sim, &source.backup, dest, RestoreOptions::default());
    assert!(
        matches!(refused, Err(Error::DestinationNotEmpty { .. })),
        "{refused:?}"
    );
    sim.remove_file(&stray).expect("remove the stray file");
    Store::restore_with_backend(&sim, &source.backup, dest, RestoreOptions::default())
        .expect("restoring again");
    let store = support::try_open(&sim, &Options::default()).expect("open the restored store");
    source
        .model
        .check(&store, source.model.len(), "restored again");
}

/// A simulated file system whose first listing of [`DATA_DIR`] misses the restore marker: an
/// open that looked before a restore (later killed) had written it.
#[derive(Debug)]
struct LateMarker {
    sim: SimBackend,
    looked: AtomicBool,
}

impl Backend for LateMarker {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.sim.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        let mut names = self.sim.list_dir(path)?;
        if path == Path::new(DATA_DIR) && !self.looked.swap(true, Ordering::SeqCst) {
            names.retain(|n| n != strata::RESTORE_MARKER);
        }
        Ok(names)
    }
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn BackendFile>> {
        self.sim.open(path, create)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.sim.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        self.sim.remove_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.sim.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.sim.sync_dir(path)
    }
    fn try_lock(&self, path: &Path) -> std::io::Result<Option<LockGuard>> {
        self.sim.try_lock(path)
    }
}

#[test]
fn an_open_that_looked_for_the_marker_before_a_restore_began_still_refuses_it() {
    // Open looked for the marker only before taking the lock: a restore that started (and was
    // killed) in between opened as a store.
    let source = Source::new(74, 10, 100, support::SMALL_SEGMENT);
    let sim = SimBackend::new();
    let dest = Path::new(DATA_DIR);
    Store::restore_with_backend(&sim, &source.backup, dest, RestoreOptions::default())
        .expect("the restore");
    sim.open(&dest.join(strata::RESTORE_MARKER), true)
        .expect("the marker of a restore killed part way");
    let late = LateMarker {
        sim: sim.clone(),
        looked: AtomicBool::new(false),
    };
    let opened = Store::open_with_backend(Arc::new(late), dest, Options::default());
    assert!(
        matches!(opened, Err(Error::RestoreUnfinished { .. })),
        "an unfinished restore opened: {:?}",
        opened.err()
    );
}

/// The environment variable that makes [`restore_child`] a restore to be killed: the
/// backup, the destination and the `--at` time (or empty), separated by newlines.
const CHILD_ENV: &str = "STRATA_CRASH_RESTORE_CHILD";

/// Not a test of its own: the process [`kill_restore`] starts (this test binary again, running
/// only this function) does one restore, as `strata restore` does, and is killed part way.
#[test]
fn restore_child() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut args = args.split('\n');
    let (backup, dest) = (args.next().unwrap(), args.next().unwrap());
    let mut options = RestoreOptions::default();
    if let Some(at) = args.next().and_then(|at| at.parse::<u64>().ok()) {
        options = options.at(at);
    }
    Store::restore(Path::new(backup), Path::new(dest), options).expect("the child's restore");
}

/// Runs a restore into `dest` in a child process, kills it with SIGKILL after `delay` once it
/// has started (unless it finished first), and returns whether it was killed.
fn kill_restore(backup: &Path, dest: &Path, at: Option<u64>, delay: Duration) -> bool {
    let at = at.map(|at| at.to_string()).unwrap_or_default();
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "restore::restore_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}\n{}\n{at}", backup.display(), dest.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the restoring child");
    let started = Instant::now();
    let mut finished = None;
    // The process takes a while to start: the delay counts from the marker's appearance.
    while !dest.join(strata::RESTORE_MARKER).exists() {
        if let Some(status) = child.try_wait().expect("poll the child") {
            finished = Some(status);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the restoring child neither started nor ended in a minute"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    if finished.is_none() {
        std::thread::sleep(delay);
        let _ = child.kill();
    }
    let status = match finished {
        Some(status) => status,
        None => child.wait().expect("reap the child"),
    };
    match status.signal() {
        Some(libc::SIGKILL) => true,
        _ => {
            assert!(status.success(), "the restoring child failed: {status:?}");
            false
        }
    }
}

#[test]
fn a_restore_process_killed_at_random_moments_is_complete_or_refused() {
    // A restore SIGKILLed part way (as `strata restore` was) left a directory that opened with part of the
    // backup's versions, and verify said ok.
    let rounds = stress_or(12, 60);
    let seed = seed_from_env();
    eprintln!("restore kill test: {rounds} kills, SEED={seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let source = Source::new(seed, 300, 2_000, 32 << 10);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    // How long a whole restore takes here, from the marker on: kills land anywhere in it.
    let probe = scratch.path().join("probe");
    let started = Instant::now();
    Store::restore(&source.backup, &probe, RestoreOptions::default()).expect("a whole restore");
    let whole = started.elapsed();
    let mut outcomes = Outcomes::default();
    for round in 0..rounds {
        let at_middle = round % 2 == 1;
        let (options, n) = source.case(at_middle);
        let dest = scratch.path().join(format!("r{round}"));
        let delay = whole.mul_f64(rng.random_range(0.0..1.2));
        let ctx = format!("SEED={seed}, round {round} (at={at_middle}, kill after {delay:?})");
        let killed = kill_restore(&source.backup, &dest, options.at, delay);
        let empty = std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none());
        let complete = if empty {
            outcomes.empty += 1;
            false
        } else {
            match Store::open(&dest, Options::default()) {
                Ok(store) => {
                    source.model.check(&store, n, &ctx);
                    outcomes.complete += 1;
                    true
                }
                Err(Error::RestoreUnfinished { .. }) => {
                    assert!(killed, "{ctx}: a restore that ended left its marker");
                    let verified = Store::verify(&dest, Options::default(), &mut |_, _| {});
                    assert!(
                        matches!(verified, Err(Error::RestoreUnfinished { .. })),
                        "{ctx}: verify of an unfinished restore: {verified:?}"
                    );
                    outcomes.refused += 1;
                    false
                }
                Err(e) => panic!("{ctx}: open failed with {e} ({e:?})"),
            }
        };
        if !complete {
            Store::restore(&source.backup, &dest, options)
                .unwrap_or_else(|e| panic!("{ctx}: restoring again: {e}"));
            let store = Store::open(&dest, Options::default())
                .unwrap_or_else(|e| panic!("{ctx}: open after restoring again: {e}"));
            source.model.check(&store, n, &ctx);
        }
    }
    eprintln!("restore kill test: a whole restore takes {whole:?}; {outcomes:?}");
    assert!(
        outcomes.refused > 0,
        "no kill landed inside a restore: {outcomes:?}"
    );
}
