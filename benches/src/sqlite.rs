//! What the two SQLite adapters ([`crate::SqliteEngine`] for storage, [`crate::SqliteFtsEngine`]
//! for queries) share: the settings every connection opens with, the opening of a database with
//! its schema and its newest time, the clock, and the one connection's lock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension};

use crate::engine::Result;

/// Applied on every open. `synchronous = FULL` in WAL mode syncs the WAL on every commit, which
/// is the durability Strata's `Durability::Sync` gives. The page cache and the map are sized so
/// SQLite's reads are not starved: 64 MiB of cache, the whole file mapped (SQLite caps
/// `mmap_size` at about 2 GiB).
const PRAGMAS: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    PRAGMA cache_size = -65536;
    PRAGMA mmap_size = 2147418112;
";

/// Opens the database at `path` with the settings every adapter's connection has (the
/// lifecycle bench opens the storage adapter's file this way to compact and copy it).
pub fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(PRAGMAS)?;
    Ok(conn)
}

/// Opens the database `file` in `dir` (created if missing) with `PRAGMAS`, creates `schema`
/// in it, and returns the connection with the newest update time it holds, read by
/// `newest_time` (a query of one integer row, or none in an empty database).
pub(crate) fn open(
    dir: &Path,
    file: &str,
    schema: &str,
    newest_time: &str,
) -> Result<(Connection, Option<i64>)> {
    std::fs::create_dir_all(dir)?;
    let conn = connect(&dir.join(file))?;
    conn.execute_batch(schema)?;
    let last_time = conn.query_row(newest_time, [], |r| r.get(0)).optional()?;
    Ok((conn, last_time))
}

/// Microseconds since the Unix epoch: the time of a write that names none.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The adapter's one connection (and what goes with it), even after a panic of another
/// thread holding it: a bench that panicked has failed already.
pub(crate) fn lock<T>(inner: &Mutex<T>) -> MutexGuard<'_, T> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}
