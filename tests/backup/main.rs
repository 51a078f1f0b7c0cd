//! backup tests (being written).
