//! The Lucene-style text syntax (written by the parser task).

use crate::{Query, Result};

/// Parses the text syntax into a [`Query`].
pub fn parse(text: &str) -> Result<Query> {
    let _ = text;
    Ok(Query::All)
}
