//! Continuous queries and collections.
