//! Collections are queries (docs/DESIGN.md §6): a named, persisted [`QuerySpec`](crate::QuerySpec)
//! with options, stored as a versioned document of a system kind, so that its definition has
//! history. `definition.rs` is what is stored (below the store: the writer checks system ids
//! and kinds, maintenance reads retention members), `api.rs` the store's collection methods.

mod api;
pub(crate) mod definition;

pub use api::{Collection, CollectionVersion};
pub use definition::{
    CollectionOptions, COLLECTION_KIND, MAX_COLLECTION_NAME, SYSTEM_ID_PREFIX, SYSTEM_KIND_PREFIX,
};
