//! How does a page token name a task's page? The task id and page number, sealed under the
//! open pool's secret (`query::token`, kind `TASK`).

use crate::error::{Error, Result};

/// A task's page token (`query::token`, kind `TASK`): task id and page number, checked under
/// the open store's secret (so a token of another store, or of this one before it was
/// reopened, fails the check).
pub(crate) fn encode(secret: &[u8; 8], id: u64, page: u32) -> String {
    let payload = query::token::Writer::new()
        .u64(id)
        .u64(u64::from(page))
        .finish();
    query::token::seal(query::token::TASK, secret, &payload)
}

/// The task id and page number of a token sealed by [`encode`] under `secret`.
pub(crate) fn decode(secret: &[u8; 8], token: &str) -> Result<(u64, u32)> {
    let bad = |reason: &str| {
        Error::Query(query::Error::InvalidPageToken {
            reason: reason.to_owned(),
        })
    };
    let payload = query::token::open(token, query::token::TASK, secret)?;
    let mut r = query::token::Reader::new(&payload);
    let (id, page) = (r.u64()?, r.u64()?);
    r.end()?;
    match u32::try_from(page) {
        Ok(page) if page > 0 => Ok((id, page)),
        _ => Err(bad("malformed payload")),
    }
}
