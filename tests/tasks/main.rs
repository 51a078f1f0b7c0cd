//! Query tasks: stages, cancel, deadlines, expiry, busy, pages of a pinned snapshot.
