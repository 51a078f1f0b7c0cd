//! How is a store opened? [`Store::open`] and its siblings (read-only, in memory, on any
//! backend): options checked, an unfinished restore refused, the engine and the index opened,
//! and the feed, the task pool and maintenance started. The top of the facade: it imports the
//! store and the rooms below it, and the backup room for its restore marker.

use std::path::Path;
use std::sync::Arc;

use storage::backend::{Backend, MemoryBackend, OsBackend};
use storage::Engine;

use crate::backup::refuse_unfinished_restore;
use crate::error::{Error, Result};
use crate::lifecycle::maintenance::{Lifecycle, Maintenance};
use crate::options::{Durability, Options};
use crate::stats::counters::Failures;
use crate::store::{Inner, Store};
use crate::subscribe::feed::Feed;
use crate::tasks::pool::Pool;
use crate::util::{INDEX_DIR, LOG_DIR};
use crate::watch::Watch;

/// Which kind of index a store has (and so whether it has a directory of its own).
enum IndexKind {
    Dir,
    Memory,
}

impl Store {
    /// Opens the store in directory `path`, creating it if needed and recovering from any crash.
    ///
    /// The index of versions lives in `path/index`; if it is missing, damaged or behind the log,
    /// it is brought up to date (or rebuilt) in the background while queries stay exact.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref();
        let index = query::IndexLocation::Dir(path.join(INDEX_DIR));
        Self::open_inner(Arc::new(OsBackend), path, options, index, false)
    }

    /// Opens the store in directory `path` read-only, while another process (or several, or
    /// none) has it open: SQLite's and LMDB's readers in other processes.
    ///
    /// It takes no lock and writes nothing: it creates, truncates, repairs and removes nothing
    /// (no index rebuild, no `tasks.json`, no maintenance thread). It sees every batch that was
    /// complete in the log when it opened (every batch synced by then, and possibly later ones
    /// already written), and stops quietly at a batch being written or a torn tail: that is the
    /// writer's business, not damage. [`Store::refresh`] makes it see newer batches and the
    /// index's newest commit. It serves `get`, `get_at`, `history`, `list`, queries (as-of and
    /// all versions included), subscriptions (fed on refresh) and backups; writes, `compact`,
    /// `expire_due` and `rebuild_index` are [`Error::ReadOnly`].
    ///
    /// The writer may compact meanwhile: what this handle read stays readable (it holds the
    /// files it opened), and a refresh after a compaction reads the log again. Queries use the
    /// index's last commit on disk and match the versions after it from the log; a sort by
    /// score needs that commit to cover the snapshot. The limits are in the README
    /// ("Operating a live store").
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{Options, Store};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let owner = Store::open(dir.path(), Options::default())?;
    /// owner.put("/a", "doc", json!({"n": 1}))?;
    /// let reader = Store::open_read_only(dir.path(), Options::default())?;
    /// assert_eq!(reader.get("/a")?.expect("there").body["n"], 1);
    /// owner.put("/a", "doc", json!({"n": 2}))?;
    /// reader.refresh()?;
    /// assert_eq!(reader.get("/a")?.expect("there").body["n"], 2);
    /// assert!(matches!(reader.put("/b", "doc", json!({})), Err(strata::Error::ReadOnly { .. })));
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref();
        if !path.join(LOG_DIR).is_dir() {
            return Err(Error::InvalidOption(format!(
                "{} holds no store to open read-only (a read-only open creates nothing)",
                path.display()
            )));
        }
        let index = query::IndexLocation::Dir(path.join(INDEX_DIR));
        Self::open_inner(Arc::new(OsBackend), path, options, index, true)
    }

    /// A store that lives in memory only ([`storage::backend::MemoryBackend`]); gone when
    /// dropped. The durability option is ignored: there is nothing to sync.
    pub fn open_in_memory(options: Options) -> Result<Store> {
        // The engine validates durability options; check them before they are replaced.
        options.engine_options().validate()?;
        let options = options.with_durability(Durability::None);
        Self::open_with_backend(
            Arc::new(MemoryBackend::new()),
            Path::new("/strata"),
            options,
        )
    }

    /// Opens a store on any [`storage::backend::Backend`], e.g. the simulated one of crash tests
    /// (feature `test-support`).
    /// Its index lives in memory and is rebuilt from the log at every open.
    pub fn open_with_backend(
        backend: Arc<dyn Backend>,
        path: &Path,
        options: Options,
    ) -> Result<Store> {
        Self::open_inner(backend, path, options, query::IndexLocation::Memory, false)
    }

    fn open_inner(
        backend: Arc<dyn Backend>,
        path: &Path,
        options: Options,
        index: query::IndexLocation,
        read_only: bool,
    ) -> Result<Store> {
        let opening = std::time::Instant::now();
        options.validate()?;
        let index_location_kind = match &index {
            query::IndexLocation::Dir(_) => IndexKind::Dir,
            _ => IndexKind::Memory,
        };
        // A restore that did not finish left a directory that must not pass for a store.
        refuse_unfinished_restore(&*backend, path)?;
        let log_dir = path.join(LOG_DIR);
        let opened = if read_only {
            Engine::open_read_only_with(Arc::clone(&backend), &log_dir, options.engine_options())
        } else {
            Engine::open_with(Arc::clone(&backend), &log_dir, options.engine_options())
        };
        let (engine, open_stats) = opened.map_err(|e| match e {
            // The engine locks the log directory; the caller named the data directory.
            storage::Error::Locked { holder, .. } => Error::Locked {
                path: path.to_path_buf(),
                holder,
            },
            e => Error::from(e),
        })?;
        // Asked again under the lock, which a restore holds until its marker is gone: one
        // started (and killed) since the first look must not open as a store either.
        refuse_unfinished_restore(&*backend, path)?;
        let engine = Arc::new(engine);
        let (index, index_report) = match (read_only, index) {
            (true, query::IndexLocation::Dir(dir)) => {
                query::Index::open_read_only(Arc::clone(&engine), dir, options.index.clone())?
            }
            (_, index) => query::Index::open(Arc::clone(&engine), index, options.index.clone())?,
        };
        let watch = Arc::new(Watch::new(engine.last_seq()));
        let failures = Arc::new(Failures::default());
        let feed = Feed::new(
            Arc::clone(&engine),
            Arc::clone(&watch),
            Arc::clone(&failures),
        )?;
        // In-memory and simulated stores have no directory to report their tasks in, and a
        // read-only open writes nothing there.
        let on_disk = matches!(index_location_kind, IndexKind::Dir);
        let report_dir = (on_disk && !read_only).then_some(path);
        let tasks = Pool::new(options.tasks.clone(), report_dir, Arc::clone(&failures))?;
        let index = Arc::new(index);
        let lifecycle = Lifecycle {
            engine: Arc::clone(&engine),
            index: Arc::clone(&index),
            watch: Arc::clone(&watch),
            low_water: feed.low_water_handle(),
            counters: Default::default(),
            options: Arc::new(options.clone()),
            failures: Arc::clone(&failures),
        };
        let maintenance = if read_only {
            Maintenance::none()
        } else {
            Maintenance::start(lifecycle.clone())?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                maintenance,
                lifecycle,
                tasks,
                feed,
                watch,
                index,
                engine,
                options,
                open_stats,
                index_report,
                path: Some(path.to_path_buf()),
                on_disk,
                open_micros: u64::try_from(opening.elapsed().as_micros()).unwrap_or(u64::MAX),
                write_latency: Default::default(),
                query_latency: Default::default(),
                failures,
            }),
        })
    }
}
