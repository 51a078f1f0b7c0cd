//! The interface every engine of the query benchmarks implements, and the engine-neutral
//! queries they translate.

use std::path::Path;

use crate::corpus::Version;
use crate::engine::Result;

/// A filter over the package documents of [`crate::corpus`]. Each adapter translates it into
/// its own query form.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// A keyword field (`section`, `priority`, `tags`, `name`, ...) holds exactly `value`; for
    /// the array `tags`, any element.
    Term {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A number field lies in `lo..hi` (`lo` included, `hi` excluded).
    Range {
        /// The field.
        field: &'static str,
        /// Lower bound, included.
        lo: u64,
        /// Upper bound, excluded.
        hi: u64,
    },
    /// The text field contains the word (after the usual lowercasing).
    Text {
        /// The field.
        field: &'static str,
        /// One word.
        word: String,
    },
    /// Every `must` and none of `must_not`.
    Bool {
        /// Required clauses.
        must: Vec<Filter>,
        /// Excluded clauses.
        must_not: Vec<Filter>,
    },
}

impl Filter {
    /// `field` holds `value`.
    pub fn term(field: &'static str, value: &str) -> Filter {
        Filter::Term {
            field,
            value: value.to_owned(),
        }
    }
}

/// The order of a top-k query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Full-text relevance (each engine's BM25), best first. The filter is a [`Filter::Text`].
    Relevance,
    /// By a number field, largest first.
    Desc(&'static str),
}

/// Which state a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The current state: every write acknowledged before the query.
    Current,
    /// The state as of this update time (microseconds), the newest version of each document
    /// committed at or before it.
    Time(u64),
}

/// Where a page starts. Each engine pages its own way and hands back the cursor of the next
/// page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The first page.
    Start,
    /// Strata's `next_page` token.
    Token(String),
    /// Skip this many matches (tantivy's `TopDocs` offset).
    Offset(usize),
    /// Keyset: after this sort value and row (SQLite).
    After(i64, i64),
    /// There is no next page.
    End,
}

/// A document store with search, under benchmark. Every write is acknowledged only when durable
/// and, from then on, visible to queries.
pub trait QueryEngine: Send + Sync {
    /// The name used as the criterion `BenchmarkId`.
    fn name(&self) -> &'static str;

    /// Opens (creating if needed) the engine in directory `dir`.
    fn open(dir: &Path) -> Result<Self>
    where
        Self: Sized;

    /// Commits these versions as one durable transaction at update time `time` (later than
    /// every earlier commit). Each version replaces its document's current one.
    fn ingest(&self, batch: Vec<Version>, time: u64) -> Result<()>;

    /// Waits until whatever the engine does in the background after [`QueryEngine::ingest`] is
    /// done (Strata: the index has committed everything). The ingest benchmark counts it.
    fn settle(&self) -> Result<()> {
        Ok(())
    }

    /// Commits one version as its own durable transaction, at the current time.
    fn put(&self, version: Version) -> Result<()>;

    /// Whether the engine answers queries [`At::Time`].
    fn supports_as_of(&self) -> bool;

    /// The exact number of documents matching `filter`.
    fn count(&self, filter: &Filter, at: At) -> Result<u64>;

    /// The ids of the first `limit` matches in `order`.
    fn top(&self, filter: &Filter, order: Order, limit: usize, at: At) -> Result<Vec<String>>;

    /// One page of the current matches of `filter`, largest `field` first, from `cursor`: the
    /// ids and the cursor of the next page.
    fn page(
        &self,
        filter: &Filter,
        field: &'static str,
        limit: usize,
        cursor: &Cursor,
    ) -> Result<(Vec<String>, Cursor)>;
}
