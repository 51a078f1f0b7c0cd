//! lifecycle tests (being written).
