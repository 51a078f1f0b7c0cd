//! What a document may be: [`Limits`].

/// Limits on what a document may be (docs/DESIGN.md §2). Input over a limit is a typed error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest encoded body, in bytes. Default 16 MiB.
    pub max_document_bytes: usize,
    /// Deepest nesting of objects and arrays (the body itself is level 1). Default 64, at most
    /// [`Limits::MAX_DEPTH`].
    pub max_depth: usize,
    /// Longest field name, in bytes. Default 1024.
    pub max_field_name_bytes: usize,
    /// Longest document id, in bytes (at most 1024). Default 1024.
    pub max_id_bytes: usize,
    /// Longest kind, in bytes (at most 256). Default 256.
    pub max_kind_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 16 << 20,
            max_depth: 64,
            max_field_name_bytes: 1024,
            max_id_bytes: storage::MAX_ID_LEN,
            max_kind_bytes: storage::MAX_KIND_LEN,
        }
    }
}

impl Limits {
    /// The largest accepted [`Limits::max_depth`]: the deepest body serde_json reads back.
    pub const MAX_DEPTH: usize = 127;

    /// Sets the largest encoded body.
    pub fn with_max_document_bytes(mut self, bytes: usize) -> Self {
        self.max_document_bytes = bytes;
        self
    }

    /// Sets the deepest nesting.
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Sets the longest field name.
    pub fn with_max_field_name_bytes(mut self, bytes: usize) -> Self {
        self.max_field_name_bytes = bytes;
        self
    }

    /// Sets the longest id.
    pub fn with_max_id_bytes(mut self, bytes: usize) -> Self {
        self.max_id_bytes = bytes;
        self
    }

    /// Sets the longest kind.
    pub fn with_max_kind_bytes(mut self, bytes: usize) -> Self {
        self.max_kind_bytes = bytes;
        self
    }
}
