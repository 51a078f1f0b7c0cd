//! SQLite with FTS5 as a query engine: every version in a `versions` table, the current state in
//! a `current` table with extracted, indexed columns, its tags in `current_tags` and its
//! descriptions in a contentless FTS5 table, all kept in sync in the writing transaction.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::corpus::Version;
use crate::engine::Result;
use crate::query_engine::{At, Cursor, Filter, Order, QueryEngine};
use crate::sqlite;

/// The settings, for the report.
pub const SQLITE_FTS_SETTINGS: &str =
    "journal_mode = WAL, synchronous = FULL, cache_size = 64 MiB, \
    mmap_size = 2 GiB, one connection; tables versions (all versions, extracted section, \
    priority, installed_size, and `ended`, the time the next version replaced it), current \
    (extracted columns, indexed), current_tags (tag, doc) and current_fts (FTS5, contentless, \
    unicode61 tokenizer; an update deletes the old description with FTS5's delete command)";

/// `versions` answers queries as of a time: the version current at `T` has `updated <= T` and
/// `ended` (the update time of the next version) null or after `T`. `current` holds one row per
/// live document under a stable `doc` number, which is also its rowid in `current_fts` and its
/// key in `current_tags`.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS versions (
        seq            INTEGER PRIMARY KEY,
        id             TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        updated        INTEGER NOT NULL,
        ended          INTEGER,
        deleted        INTEGER NOT NULL DEFAULT 0,
        section        TEXT,
        priority       TEXT,
        installed_size INTEGER,
        body           TEXT    NOT NULL,
        UNIQUE (id, version)
    );
    CREATE INDEX IF NOT EXISTS versions_section ON versions (section, installed_size);
    CREATE INDEX IF NOT EXISTS versions_size ON versions (installed_size);
    CREATE TABLE IF NOT EXISTS current (
        doc            INTEGER PRIMARY KEY,
        id             TEXT    NOT NULL UNIQUE,
        seq            INTEGER NOT NULL,
        version        INTEGER NOT NULL,
        updated        INTEGER NOT NULL,
        name           TEXT    NOT NULL,
        section        TEXT    NOT NULL,
        priority       TEXT    NOT NULL,
        maintainer     TEXT    NOT NULL,
        installed_size INTEGER NOT NULL,
        version_major  INTEGER NOT NULL,
        released       TEXT    NOT NULL
    );
    CREATE INDEX IF NOT EXISTS current_section ON current (section, installed_size);
    CREATE INDEX IF NOT EXISTS current_size ON current (installed_size);
    CREATE INDEX IF NOT EXISTS current_name ON current (name);
    CREATE TABLE IF NOT EXISTS current_tags (
        tag TEXT    NOT NULL,
        doc INTEGER NOT NULL,
        PRIMARY KEY (tag, doc)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS current_tags_doc ON current_tags (doc);
    CREATE VIRTUAL TABLE IF NOT EXISTS current_fts
        USING fts5 (description, content = '');
";

const FIND_CURRENT: &str = "SELECT doc, seq, version FROM current WHERE id = ?1";
const INSERT_VERSION: &str = "INSERT INTO versions \
    (id, version, updated, section, priority, installed_size, body) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const END_VERSION: &str = "UPDATE versions SET ended = ?1 WHERE seq = ?2";
const INSERT_CURRENT: &str = "INSERT INTO current \
    (id, seq, version, updated, name, section, priority, maintainer, installed_size, \
    version_major, released) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const UPDATE_CURRENT: &str = "UPDATE current SET seq = ?2, version = ?3, updated = ?4, \
    name = ?5, section = ?6, priority = ?7, maintainer = ?8, installed_size = ?9, \
    version_major = ?10, released = ?11 WHERE doc = ?1";
/// FTS5's delete command for a contentless table takes the old text: the previous version's.
const DELETE_FTS: &str = "INSERT INTO current_fts (current_fts, rowid, description) \
    SELECT 'delete', ?1, json_extract(body, '$.description') FROM versions WHERE seq = ?2";
const INSERT_FTS: &str = "INSERT INTO current_fts (rowid, description) VALUES (?1, ?2)";
const DELETE_TAGS: &str = "DELETE FROM current_tags WHERE doc = ?1";
const INSERT_TAG: &str = "INSERT OR IGNORE INTO current_tags (tag, doc) VALUES (?1, ?2)";

/// Columns of `current` a filter may name.
const CURRENT_COLUMNS: [&str; 7] = [
    "name",
    "section",
    "priority",
    "maintainer",
    "installed_size",
    "version_major",
    "released",
];
/// Columns extracted into `versions`; other fields are read with `json_extract`.
const VERSION_COLUMNS: [&str; 3] = ["section", "priority", "installed_size"];

/// SQLite with FTS5 through `rusqlite` (bundled).
#[derive(Debug)]
pub struct SqliteFtsEngine {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    last_time: i64,
}

fn fts_word(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\"\""))
}

/// Which table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Current,
    Versions,
}

/// The SQL condition of `filter`, its parameters appended to `args`.
fn condition(filter: &Filter, table: Table, args: &mut Vec<SqlValue>) -> Result<String> {
    Ok(match filter {
        Filter::Term {
            field: "tags",
            value,
        } => {
            args.push(SqlValue::Text(value.clone()));
            match table {
                Table::Current => "doc IN (SELECT doc FROM current_tags WHERE tag = ?)".to_owned(),
                Table::Versions => {
                    "EXISTS (SELECT 1 FROM json_each(v.body, '$.tags') WHERE value = ?)".to_owned()
                }
            }
        }
        Filter::Term { field, value } => {
            args.push(SqlValue::Text(value.clone()));
            format!("{} = ?", column(field, table)?)
        }
        Filter::Range { field, lo, hi } => {
            args.push(SqlValue::Integer(*lo as i64));
            args.push(SqlValue::Integer(*hi as i64));
            let c = column(field, table)?;
            format!("{c} >= ? AND {c} < ?")
        }
        Filter::Text { field, word } => {
            if *field != "description" || table == Table::Versions {
                return Err(format!(
                    "full text is indexed for the current descriptions only, not {field:?} \
                     of {table:?}"
                )
                .into());
            }
            args.push(SqlValue::Text(fts_word(word)));
            "doc IN (SELECT rowid FROM current_fts WHERE current_fts MATCH ?)".to_owned()
        }
        Filter::Bool { must, must_not } => {
            let mut parts = Vec::new();
            for f in must {
                parts.push(format!("({})", condition(f, table, args)?));
            }
            for f in must_not {
                parts.push(format!("NOT ({})", condition(f, table, args)?));
            }
            if parts.is_empty() {
                "1".to_owned()
            } else {
                parts.join(" AND ")
            }
        }
    })
}

fn column(field: &str, table: Table) -> Result<String> {
    match table {
        Table::Current if CURRENT_COLUMNS.contains(&field) => Ok(field.to_owned()),
        Table::Versions if VERSION_COLUMNS.contains(&field) => Ok(format!("v.{field}")),
        Table::Versions if CURRENT_COLUMNS.contains(&field) => {
            Ok(format!("json_extract(v.body, '$.{field}')"))
        }
        _ => Err(format!("no column for field {field:?}").into()),
    }
}

/// `FROM ... WHERE` of a query at `at`, with the visibility condition for past times.
fn source(filter: &Filter, at: At, args: &mut Vec<SqlValue>) -> Result<String> {
    match at {
        At::Current => Ok(format!(
            "FROM current WHERE {}",
            condition(filter, Table::Current, args)?
        )),
        At::Time(t) => {
            let t = t as i64;
            args.push(SqlValue::Integer(t));
            args.push(SqlValue::Integer(t));
            let visible = "v.updated <= ? AND (v.ended IS NULL OR v.ended > ?) AND v.deleted = 0";
            Ok(format!(
                "FROM versions v WHERE {visible} AND ({})",
                condition(filter, Table::Versions, args)?
            ))
        }
    }
}

impl SqliteFtsEngine {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        sqlite::lock(&self.inner)
    }

    fn write(conn: &Connection, v: &Version, time: i64) -> Result<()> {
        let body = &v.body;
        let text = |key: &str| body[key].as_str().unwrap_or_default();
        let number = |key: &str| body[key].as_i64().unwrap_or_default();
        let previous: Option<(i64, i64, i64)> = conn
            .prepare_cached(FIND_CURRENT)?
            .query_row([&v.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let version = previous.map_or(0, |(_, _, version)| version + 1);
        conn.prepare_cached(INSERT_VERSION)?.execute(params![
            v.id,
            version,
            time,
            text("section"),
            text("priority"),
            number("installed_size"),
            serde_json::to_string(body)?,
        ])?;
        let seq = conn.last_insert_rowid();
        let columns = params![
            seq,
            version,
            time,
            text("name"),
            text("section"),
            text("priority"),
            text("maintainer"),
            number("installed_size"),
            number("version_major"),
            text("released"),
        ];
        let doc = match previous {
            Some((doc, previous_seq, _)) => {
                conn.prepare_cached(END_VERSION)?
                    .execute(params![time, previous_seq])?;
                let mut args: Vec<&dyn rusqlite::ToSql> = vec![&doc];
                args.extend_from_slice(columns);
                conn.prepare_cached(UPDATE_CURRENT)?
                    .execute(args.as_slice())?;
                conn.prepare_cached(DELETE_FTS)?
                    .execute(params![doc, previous_seq])?;
                conn.prepare_cached(DELETE_TAGS)?.execute([doc])?;
                doc
            }
            None => {
                let mut args: Vec<&dyn rusqlite::ToSql> = vec![&v.id];
                args.extend_from_slice(columns);
                conn.prepare_cached(INSERT_CURRENT)?
                    .execute(args.as_slice())?;
                conn.last_insert_rowid()
            }
        };
        conn.prepare_cached(INSERT_FTS)?
            .execute(params![doc, text("description")])?;
        let mut insert_tag = conn.prepare_cached(INSERT_TAG)?;
        for tag in body["tags"].as_array().into_iter().flatten() {
            insert_tag.execute(params![tag.as_str().unwrap_or_default(), doc])?;
        }
        Ok(())
    }

    fn ids(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The SQL and parameters of a query, for `EXPLAIN QUERY PLAN` in the tests.
    fn top_sql(
        filter: &Filter,
        order: Order,
        limit: usize,
        at: At,
    ) -> Result<(String, Vec<SqlValue>)> {
        let mut args = Vec::new();
        let sql = match order {
            Order::Relevance => {
                let (Filter::Text { field, word }, At::Current) = (filter, at) else {
                    return Err("SQLite ranks the current descriptions only".into());
                };
                if *field != "description" {
                    return Err(format!("no full-text index on {field:?}").into());
                }
                args.push(SqlValue::Text(fts_word(word)));
                "SELECT c.id FROM current_fts JOIN current c ON c.doc = current_fts.rowid \
                 WHERE current_fts MATCH ? ORDER BY current_fts.rank LIMIT ?"
                    .to_owned()
            }
            Order::Desc(field) => {
                let from = source(filter, at, &mut args)?;
                match at {
                    At::Current => {
                        format!("SELECT id {from} ORDER BY {field} DESC, doc DESC LIMIT ?")
                    }
                    At::Time(_) => format!(
                        "SELECT v.id {from} ORDER BY {} DESC, v.seq DESC LIMIT ?",
                        column(field, Table::Versions)?
                    ),
                }
            }
        };
        args.push(SqlValue::Integer(limit as i64));
        Ok((sql, args))
    }

    fn count_sql(filter: &Filter, at: At) -> Result<(String, Vec<SqlValue>)> {
        let mut args = Vec::new();
        let from = source(filter, at, &mut args)?;
        Ok((format!("SELECT count(*) {from}"), args))
    }

    fn page_sql(
        filter: &Filter,
        field: &'static str,
        limit: usize,
        cursor: &Cursor,
    ) -> Result<(String, Vec<SqlValue>)> {
        let mut args = Vec::new();
        let field = column(field, Table::Current)?;
        let mut sql = format!(
            "SELECT id, {field}, doc FROM current WHERE ({})",
            condition(filter, Table::Current, &mut args)?
        );
        match cursor {
            Cursor::Start => {}
            Cursor::After(value, doc) => {
                sql.push_str(&format!(" AND ({field}, doc) < (?, ?)"));
                args.push(SqlValue::Integer(*value));
                args.push(SqlValue::Integer(*doc));
            }
            other => return Err(format!("SQLite pages by keyset, not {other:?}").into()),
        }
        sql.push_str(&format!(" ORDER BY {field} DESC, doc DESC LIMIT ?"));
        args.push(SqlValue::Integer(limit as i64));
        Ok((sql, args))
    }
}

impl SqliteFtsEngine {
    /// Writes `batch` in one transaction, each version at its own time (history imports):
    /// the times must increase.
    pub fn ingest_timed(&self, batch: Vec<(Version, u64)>) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.unchecked_transaction()?;
        let mut last = inner.last_time;
        for (v, time) in &batch {
            let time = *time as i64;
            if time <= last {
                return Err(format!("time {time} is not after {last}").into());
            }
            Self::write(&tx, v, time)?;
            last = time;
        }
        tx.commit()?;
        inner.last_time = last;
        Ok(())
    }
}

impl QueryEngine for SqliteFtsEngine {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn open(dir: &Path) -> Result<Self> {
        let (conn, last_time) = sqlite::open(
            dir,
            "packages.sqlite",
            SCHEMA,
            "SELECT updated FROM versions ORDER BY seq DESC LIMIT 1",
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteFtsEngine {
            inner: Mutex::new(Inner {
                conn,
                last_time: last_time.unwrap_or(0),
            }),
        })
    }

    fn ingest(&self, batch: Vec<Version>, time: u64) -> Result<()> {
        let mut inner = self.lock();
        let time = time as i64;
        if time <= inner.last_time {
            return Err(format!("time {time} is not after {}", inner.last_time).into());
        }
        let tx = inner.conn.unchecked_transaction()?;
        for v in &batch {
            Self::write(&tx, v, time)?;
        }
        tx.commit()?;
        inner.last_time = time;
        Ok(())
    }

    fn put(&self, version: Version) -> Result<()> {
        let mut inner = self.lock();
        let time = (sqlite::now_micros() as i64).max(inner.last_time + 1);
        let tx = inner.conn.unchecked_transaction()?;
        Self::write(&tx, &version, time)?;
        tx.commit()?;
        inner.last_time = time;
        Ok(())
    }

    fn supports_as_of(&self) -> bool {
        true
    }

    fn count(&self, filter: &Filter, at: At) -> Result<u64> {
        let (sql, args) = Self::count_sql(filter, at)?;
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(&sql)?;
        let n: i64 = stmt.query_row(params_from_iter(args), |r| r.get(0))?;
        Ok(n as u64)
    }

    fn top(&self, filter: &Filter, order: Order, limit: usize, at: At) -> Result<Vec<String>> {
        let (sql, args) = Self::top_sql(filter, order, limit, at)?;
        Self::ids(&self.lock().conn, &sql, args)
    }

    fn page(
        &self,
        filter: &Filter,
        field: &'static str,
        limit: usize,
        cursor: &Cursor,
    ) -> Result<(Vec<String>, Cursor)> {
        let (sql, args) = Self::page_sql(filter, field, limit, cursor)?;
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let rows: Vec<(String, i64, i64)> = rows.collect::<rusqlite::Result<_>>()?;
        let next = match rows.last() {
            Some((_, value, doc)) if rows.len() == limit => Cursor::After(*value, *doc),
            _ => Cursor::End,
        };
        Ok((rows.into_iter().map(|(id, ..)| id).collect(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;
    use crate::query_engine::Filter;

    fn plan(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows: Vec<String> = stmt
            .query_map(params_from_iter(args), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.join("; ")
    }

    /// The current queries use the indexes: no table scan, and the sorted ones no sort.
    #[test]
    fn current_queries_use_the_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SqliteFtsEngine::open(dir.path()).unwrap();
        let inner = engine.lock();
        let python = Filter::term("section", "python");
        let boolean = Filter::Bool {
            must: vec![python.clone(), Filter::term("tags", "cli")],
            must_not: vec![Filter::term("priority", "optional")],
        };
        let range = Filter::Range {
            field: "installed_size",
            lo: 1000,
            hi: 5000,
        };
        for (sql, args) in [
            SqliteFtsEngine::count_sql(&python, At::Current).unwrap(),
            SqliteFtsEngine::count_sql(&range, At::Current).unwrap(),
            SqliteFtsEngine::count_sql(&boolean, At::Current).unwrap(),
            SqliteFtsEngine::top_sql(&python, Order::Desc("installed_size"), 10, At::Current)
                .unwrap(),
            SqliteFtsEngine::page_sql(&python, "installed_size", 10, &Cursor::After(5, 5)).unwrap(),
            SqliteFtsEngine::top_sql(&python, Order::Desc("installed_size"), 10, At::Time(5))
                .unwrap(),
        ] {
            let p = plan(&inner.conn, &sql, args);
            assert!(p.contains("USING"), "{sql}: {p}");
            assert!(!p.contains("SCAN current"), "{sql}: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{sql}: {p}");
        }
    }

    #[test]
    fn current_and_past_states_agree_with_the_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SqliteFtsEngine::open(dir.path()).unwrap();
        let corpus = Corpus {
            docs: 50,
            versions: 150,
            batch: 50,
            seed: 3,
        };
        for k in 0..corpus.batches() {
            engine.ingest(corpus.batch(k), Corpus::time(k)).unwrap();
        }
        let all = Filter::Bool {
            must: vec![],
            must_not: vec![],
        };
        assert_eq!(engine.count(&all, At::Current).unwrap(), 50);
        assert_eq!(engine.count(&all, At::Time(Corpus::time(1))).unwrap(), 50);
        assert_eq!(
            engine.count(&all, At::Time(Corpus::time(0) - 1)).unwrap(),
            0
        );
        // The installed size of each document as of batch 1 is its version 1's.
        let sizes = |at| {
            let top = engine
                .top(&all, Order::Desc("installed_size"), 1, at)
                .unwrap();
            top[0].clone()
        };
        let max_at = |version: u64| {
            (0..50)
                .max_by_key(|&n| {
                    (
                        crate::corpus::package(3, n, version)["installed_size"]
                            .as_u64()
                            .unwrap(),
                        n,
                    )
                })
                .unwrap()
        };
        assert_eq!(
            sizes(At::Time(Corpus::time(1))),
            crate::corpus::doc_id(max_at(1))
        );
        assert_eq!(sizes(At::Current), crate::corpus::doc_id(max_at(2)));
        let word = Filter::Text {
            field: "description",
            word: "The".into(),
        };
        let hits = engine
            .top(&word, Order::Relevance, 10, At::Current)
            .unwrap();
        assert_eq!(hits.len(), 10);
        assert!(engine.count(&word, At::Time(Corpus::time(1))).is_err());
    }
}
