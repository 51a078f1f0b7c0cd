//! The SQLite adapter: one versions table, WAL, `synchronous = FULL`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::engine::{BenchEngine, Doc, Result};
use crate::sqlite;

/// Settings applied on every open (`sqlite.rs`). `synchronous = FULL` in WAL mode syncs the WAL
/// on every commit, which is the durability Strata's `Durability::Sync` gives. The page cache
/// and the map are sized so SQLite's reads are not starved: 64 MiB of cache, the whole file
/// mapped (SQLite caps `mmap_size` at about 2 GiB).
pub const SQLITE_SETTINGS: &str = "journal_mode = WAL, synchronous = FULL, cache_size = 64 MiB, \
    mmap_size = 2 GiB, wal_autocheckpoint = 1000 pages (default), one connection";

/// The database's file in the adapter's directory.
pub const SQLITE_FILE: &str = "versions.sqlite";

/// `seq` is the rowid (the store-wide commit order); `(id, version)` is the key; the
/// `(id, time)` index (with the rowid appended by SQLite) answers "the newest version of `id`
/// at or before `time`" by one backwards index seek.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS versions (
        seq     INTEGER PRIMARY KEY,
        id      TEXT    NOT NULL,
        version INTEGER NOT NULL,
        time    INTEGER NOT NULL,
        kind    TEXT    NOT NULL,
        body    TEXT    NOT NULL,
        UNIQUE (id, version)
    );
    CREATE INDEX IF NOT EXISTS versions_id_time ON versions (id, time);
";

const INSERT: &str = "INSERT INTO versions (id, version, time, kind, body) VALUES \
    (?1, COALESCE((SELECT MAX(version) + 1 FROM versions WHERE id = ?1), 0), ?2, 'item', ?3)";
const GET: &str = "SELECT version, seq, time, body FROM versions WHERE id = ?1 \
    ORDER BY version DESC LIMIT 1";
const GET_AT: &str = "SELECT version, seq, time, body FROM versions WHERE id = ?1 AND time <= ?2 \
    ORDER BY time DESC, seq DESC LIMIT 1";
const HISTORY: &str =
    "SELECT version, seq, time, body FROM versions WHERE id = ?1 ORDER BY version";

/// SQLite through `rusqlite` (bundled), with [`SQLITE_SETTINGS`].
///
/// SQLite admits one writer at a time and has no group commit, so concurrent writers queue on a
/// mutex around one connection. That is its best case: separate connections would queue on the
/// database lock instead and back off with sleeps of up to 100 ms in the busy handler.
#[derive(Debug)]
pub struct SqliteEngine {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// The newest update time committed, so times never go backwards (as in Strata).
    last_time: u64,
}

fn sql_int(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| format!("{n} is over SQLite's integer range").into())
}

/// Builds a [`Doc`] from a `version, seq, time, body` row, parsing the body in place. A body
/// that is not JSON is the inner error.
fn doc(row: &Row<'_>) -> rusqlite::Result<Result<Doc>> {
    // SQLite integers are i64; every stored one is non-negative.
    let (version, seq, time): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
    let body = row.get_ref(3)?.as_str()?;
    Ok(serde_json::from_str(body)
        .map(|body| Doc {
            version: version as u64,
            seq: seq as u64,
            time: time as u64,
            body,
        })
        .map_err(Into::into))
}

impl SqliteEngine {
    fn insert(
        conn: &Connection,
        time: u64,
        docs: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<()> {
        let mut insert = conn.prepare_cached(INSERT)?;
        for (id, body) in docs {
            insert.execute(params![id, sql_int(time)?, serde_json::to_string(&body)?])?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        sqlite::lock(&self.inner)
    }
}

impl BenchEngine for SqliteEngine {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn open(dir: &Path) -> Result<Self> {
        // Times never decrease in seq order, so the newest row has the newest time: one seek
        // at the end of the rowid tree, not a scan.
        let (conn, last_time) = sqlite::open(
            dir,
            SQLITE_FILE,
            SCHEMA,
            "SELECT time FROM versions ORDER BY seq DESC LIMIT 1",
        )?;
        Ok(SqliteEngine {
            inner: Mutex::new(Inner {
                conn,
                last_time: last_time.map_or(0, |t| t as u64),
            }),
        })
    }

    fn put(&self, id: &str, body: Value) -> Result<()> {
        let mut inner = self.lock();
        let time = sqlite::now_micros().max(inner.last_time);
        // One statement outside a transaction is its own durable transaction.
        Self::insert(&inner.conn, time, [(id.to_owned(), body)])?;
        inner.last_time = time;
        Ok(())
    }

    fn put_batch(&self, docs: Vec<(String, Value)>, time: Option<u64>) -> Result<()> {
        let mut inner = self.lock();
        let time = match time {
            Some(t) if t <= inner.last_time => {
                return Err(format!("time {t} is not after {}", inner.last_time).into())
            }
            Some(t) => t,
            None => sqlite::now_micros().max(inner.last_time),
        };
        let tx = inner.conn.unchecked_transaction()?;
        Self::insert(&tx, time, docs)?;
        tx.commit()?;
        inner.last_time = time;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Doc>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(GET)?;
        stmt.query_row(params![id], doc).optional()?.transpose()
    }

    fn get_raw(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(GET)?;
        Ok(stmt
            .query_row(params![id], |row| {
                let version: i64 = row.get(0)?;
                Ok((version as u64, row.get_ref(3)?.as_bytes()?.to_vec()))
            })
            .optional()?)
    }

    fn get_at(&self, id: &str, time: u64) -> Result<Option<Doc>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(GET_AT)?;
        stmt.query_row(params![id, sql_int(time)?], doc)
            .optional()?
            .transpose()
    }

    fn history(&self, id: &str) -> Result<Vec<Doc>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(HISTORY)?;
        let rows = stmt.query_map(params![id], doc)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::params_from_iter;
    use rusqlite::types::Value as SqlValue;

    use super::*;

    /// The read queries must be index seeks, never a table scan or a sort.
    #[test]
    fn reads_use_the_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SqliteEngine::open(dir.path()).unwrap();
        let inner = engine.lock();
        let id = SqlValue::Text("/a".into());
        for (sql, args) in [
            (GET, vec![id.clone()]),
            (GET_AT, vec![id.clone(), SqlValue::Integer(1)]),
            (HISTORY, vec![id]),
        ] {
            let mut stmt = inner
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map(params_from_iter(args), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
                "{sql}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    #[test]
    fn versions_as_of_time_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SqliteEngine::open(dir.path()).unwrap();
        for (t, n) in [(10, 0), (20, 1), (30, 2)] {
            engine
                .put_batch(vec![("/a".into(), serde_json::json!({ "n": n }))], Some(t))
                .unwrap();
        }
        assert_eq!(engine.get("/a").unwrap().unwrap().version, 2);
        assert_eq!(engine.get_at("/a", 25).unwrap().unwrap().body["n"], 1);
        assert!(engine.get_at("/a", 9).unwrap().is_none());
        let versions: Vec<u64> = engine
            .history("/a")
            .unwrap()
            .iter()
            .map(|d| d.version)
            .collect();
        assert_eq!(versions, [0, 1, 2]);
        assert!(engine
            .put_batch(vec![("/b".into(), serde_json::json!({}))], Some(30))
            .is_err());
    }
}
