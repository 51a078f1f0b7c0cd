//! Queries over the versions: the present, any past moment, or all versions. `result.rs`
//! holds what a query answers (below the store, for the task pool and the feed), `api.rs` the
//! store's query methods (above it).

mod api;
pub(crate) mod result;

pub use api::parse_query;
pub use result::{
    BoolQuery, Field, Group, GroupBy, IndexOpenReport, IndexProgress, Query, QueryResult,
    QuerySpec, Range, Scalar, Snapshot, SortKey, SystemField, Trimmed,
};
