//! What a query asks for besides its filter: the snapshot, counting, sorting, paging,
//! projection and grouping.

use serde::{Deserialize, Serialize};

use crate::ast::{Field, Query};
use crate::error::{Error, Result};

/// Which versions a query looks at (docs/DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshot {
    /// The current state, including every write acknowledged before the query began.
    #[default]
    Current,
    /// The versions visible at this time (microseconds since the epoch).
    AsOf(u64),
    /// The versions visible at this seq.
    AtSeq(u64),
    /// Every retained version.
    AllVersions,
}

impl Snapshot {
    /// [`Snapshot::AsOf`] a time given as microseconds, a [`std::time::SystemTime`] or a
    /// [`crate::Timestamp`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use strata_query::Snapshot;
    /// let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    /// assert_eq!(Snapshot::as_of(t), Snapshot::AsOf(1_767_225_600_000_000));
    /// ```
    pub fn as_of(time: impl Into<crate::Timestamp>) -> Snapshot {
        Snapshot::AsOf(time.into().as_micros())
    }
}

/// One sort criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    /// A body path, a system field, or `_score` (full-text relevance).
    pub field: String,
    /// Largest first.
    #[serde(default)]
    pub descending: bool,
}

impl SortKey {
    /// Ascending by `field`.
    pub fn asc(field: &str) -> SortKey {
        SortKey {
            field: field.to_owned(),
            descending: false,
        }
    }

    /// Descending by `field`.
    pub fn desc(field: &str) -> SortKey {
        SortKey {
            field: field.to_owned(),
            descending: true,
        }
    }

    /// Parses `field`, `field:asc` or `field:desc` (`_score` alone means descending).
    pub fn parse(text: &str) -> Result<SortKey> {
        let (field, descending) = match text.rsplit_once(':') {
            Some((f, "desc")) => (f, true),
            Some((f, "asc")) => (f, false),
            Some((_, other)) => {
                return Err(Error::InvalidSpec {
                    reason: format!("sort order {other:?} is neither asc nor desc"),
                })
            }
            None => (text, text == SCORE),
        };
        let key = SortKey {
            field: field.to_owned(),
            descending,
        };
        key.target()?;
        Ok(key)
    }

    pub(crate) fn target(&self) -> Result<SortTarget> {
        if self.field == SCORE {
            return Ok(SortTarget::Score);
        }
        Ok(SortTarget::Field(Field::parse(&self.field).map_err(
            |e| Error::InvalidSpec {
                reason: format!("sort field: {e}"),
            },
        )?))
    }
}

/// The pseudo-field of full-text relevance.
pub const SCORE: &str = "_score";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortTarget {
    Score,
    Field(Field),
}

/// Group matches by the values of a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupBy {
    /// A body path or system field; a document with several values counts in each group.
    pub field: String,
    /// Documents returned per group, in the query's sort order.
    #[serde(default = "default_group_top")]
    pub top: usize,
    /// Most groups returned, largest first.
    #[serde(default = "default_group_limit")]
    pub limit: usize,
}

fn default_group_top() -> usize {
    3
}
fn default_group_limit() -> usize {
    100
}

impl GroupBy {
    /// Groups by `field` with the defaults (3 documents per group, at most 100 groups).
    pub fn new(field: &str) -> GroupBy {
        GroupBy {
            field: field.to_owned(),
            top: default_group_top(),
            limit: default_group_limit(),
        }
    }
}

/// Default number of documents a query returns.
pub const DEFAULT_LIMIT: usize = 100;
/// Most documents a page may hold.
pub const MAX_LIMIT: usize = 10_000;
/// Largest offset; page with `next_page` beyond it.
pub const MAX_OFFSET: usize = 100_000;
/// Most ids of unknown documents an answer lists ([`QuerySpec::unknown_ids`]).
pub const MAX_UNKNOWN_IDS: usize = 10_000;

/// A query and its options.
///
/// ```
/// use strata_query::{Query, QuerySpec, Snapshot, SortKey};
/// let spec = QuerySpec::new(Query::kind("package"))
///     .snapshot(Snapshot::AsOf(1_767_225_600_000_000))
///     .sort(SortKey::desc("installed_size"))
///     .limit(10)
///     .count(true);
/// assert_eq!(spec.limit, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct QuerySpec {
    /// The filter.
    pub query: Query,
    /// Which versions it looks at.
    pub snapshot: Snapshot,
    /// Also return tombstones (and expired versions) where they are current.
    pub include_deleted: bool,
    /// Compute the exact number of matches.
    pub count: bool,
    /// Most documents returned (0: none, for counts and groups).
    pub limit: usize,
    /// Documents skipped before the first returned.
    pub offset: usize,
    /// Sort criteria; `_seq` ascending always breaks ties (and is the default order).
    pub sort: Vec<SortKey>,
    /// Continue after a previous page: the `next_page` token of its result. The page reads the
    /// same snapshot as the first page.
    pub page: Option<String>,
    /// Return only these body paths (with their nesting).
    pub select: Option<Vec<String>>,
    /// Return metadata only, no bodies.
    pub ids_only: bool,
    /// Group the matches by a field.
    pub group_by: Option<GroupBy>,
    /// A snapshot before the retention horizon answers with the documents whose state then is
    /// known, and says how many are unknown ([`crate::Trimmed`]), instead of failing with
    /// `HistoryTrimmed`.
    pub allow_trimmed: bool,
    /// With `allow_trimmed`, list up to this many ids of the unknown documents (at most
    /// [`MAX_UNKNOWN_IDS`]).
    pub unknown_ids: usize,
}

impl Default for QuerySpec {
    fn default() -> Self {
        QuerySpec {
            query: Query::All,
            snapshot: Snapshot::Current,
            include_deleted: false,
            count: false,
            limit: DEFAULT_LIMIT,
            offset: 0,
            sort: Vec::new(),
            page: None,
            select: None,
            ids_only: false,
            group_by: None,
            allow_trimmed: false,
            unknown_ids: 0,
        }
    }
}

impl QuerySpec {
    /// A spec for `query` with the defaults: current snapshot, first 100 documents by seq.
    pub fn new(query: Query) -> QuerySpec {
        QuerySpec {
            query,
            ..QuerySpec::default()
        }
    }

    /// Sets the snapshot.
    #[must_use]
    pub fn snapshot(mut self, snapshot: Snapshot) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// Also returns deleted documents.
    #[must_use]
    pub fn include_deleted(mut self, yes: bool) -> Self {
        self.include_deleted = yes;
        self
    }

    /// Computes the exact count.
    #[must_use]
    pub fn count(mut self, yes: bool) -> Self {
        self.count = yes;
        self
    }

    /// Sets the page size.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Skips documents.
    #[must_use]
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Adds a sort criterion.
    #[must_use]
    pub fn sort(mut self, key: SortKey) -> Self {
        self.sort.push(key);
        self
    }

    /// Continues after a page.
    #[must_use]
    pub fn page(mut self, token: impl Into<String>) -> Self {
        self.page = Some(token.into());
        self
    }

    /// Projects the bodies to these paths.
    #[must_use]
    pub fn select<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.select = Some(paths.into_iter().map(Into::into).collect());
        self
    }

    /// Returns metadata only.
    #[must_use]
    pub fn ids_only(mut self, yes: bool) -> Self {
        self.ids_only = yes;
        self
    }

    /// Groups by a field.
    #[must_use]
    pub fn group_by(mut self, group: GroupBy) -> Self {
        self.group_by = Some(group);
        self
    }

    /// Answers a snapshot before the retention horizon with what is known (see
    /// [`QuerySpec::allow_trimmed`]).
    #[must_use]
    pub fn allow_trimmed(mut self, yes: bool) -> Self {
        self.allow_trimmed = yes;
        self
    }

    /// Lists up to `n` ids of the documents whose state is unknown (with `allow_trimmed`).
    #[must_use]
    pub fn unknown_ids(mut self, n: usize) -> Self {
        self.unknown_ids = n;
        self
    }

    /// Checks the options and their combinations.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidSpec {
                reason: reason.to_owned(),
            })
        };
        self.query.validate()?;
        if self.limit > MAX_LIMIT {
            return bad("limit is at most 10000; page with next_page for more");
        }
        if self.offset > MAX_OFFSET {
            return bad("offset is at most 100000; page with next_page instead");
        }
        if self.ids_only && self.select.is_some() {
            return bad("ids_only and select do not go together");
        }
        if self.offset > 0 && self.page.is_some() {
            return bad(
                "offset applies to the first page; a page token continues after the last document",
            );
        }
        if self.group_by.is_some() && self.page.is_some() {
            return bad("group_by is computed on the first page only; drop it when paging");
        }
        if self.unknown_ids > MAX_UNKNOWN_IDS {
            return bad("unknown_ids lists at most 10000 ids");
        }
        if self.unknown_ids > 0 && !self.allow_trimmed {
            return bad("unknown_ids needs allow_trimmed");
        }
        if self.sort.len() > 8 {
            return bad("at most 8 sort keys");
        }
        for key in &self.sort {
            key.target()?;
        }
        if let Some(paths) = &self.select {
            for p in paths {
                crate::ast::check_path(p)?;
            }
        }
        if let Some(g) = &self.group_by {
            Field::parse(&g.field)?;
            if g.top > 1000 || g.limit > 10_000 {
                return bad("group_by returns at most 1000 documents per group and 10000 groups");
            }
        }
        Ok(())
    }
}
