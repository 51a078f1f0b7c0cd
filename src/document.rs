//! Documents and their metadata.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::Version;

use crate::error::{Error, Result};

/// What the store knows of one version of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Meta {
    /// The document id.
    pub id: String,
    /// The document kind.
    pub kind: String,
    /// Per-document version: 0 on create, +1 on every update or delete.
    pub version: u64,
    /// Store-wide commit sequence number.
    pub seq: u64,
    /// Commit time, microseconds since the Unix epoch.
    pub update_time_micros: u64,
    /// Whether this version is a tombstone (written by a delete).
    pub deleted: bool,
    /// When this version expires, microseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

impl Meta {
    /// [`Meta::update_time_micros`] as a [`crate::Timestamp`] (convert it to a
    /// [`std::time::SystemTime`] with `.into()` or `to_system_time`).
    pub fn update_time(&self) -> crate::Timestamp {
        crate::Timestamp::from(self.update_time_micros)
    }

    /// [`Meta::expires_at`] as a [`crate::Timestamp`].
    pub fn expiry(&self) -> Option<crate::Timestamp> {
        self.expires_at.map(crate::Timestamp::from)
    }
}

impl From<storage::VersionMeta> for Meta {
    fn from(m: storage::VersionMeta) -> Self {
        Meta {
            id: m.id,
            kind: m.kind,
            version: m.version,
            seq: m.seq,
            update_time_micros: m.time,
            deleted: m.tombstone,
            expires_at: m.expires_at,
        }
    }
}

/// One version of a document: its metadata and its body (`null` for a tombstone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Metadata.
    pub meta: Meta,
    /// The JSON body, always an object except for tombstones (`null`).
    pub body: Value,
}

impl Document {
    /// Converts the body to `T`.
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        T::deserialize(&self.body).map_err(|source| crate::Error::Decode {
            id: self.meta.id.clone(),
            source,
        })
    }
}

/// One version of a document with its body as the stored JSON bytes, not parsed: the fastest
/// read when the caller forwards the JSON or decodes it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDocument {
    /// Metadata.
    pub meta: Meta,
    /// The body as UTF-8 JSON text (empty for a tombstone).
    pub body: Vec<u8>,
}

impl RawDocument {
    /// Parses the body (`null` for a tombstone).
    pub fn parse(&self) -> crate::Result<Document> {
        let body = if self.meta.deleted {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&self.body).map_err(|source| crate::Error::Decode {
                id: self.meta.id.clone(),
                source,
            })?
        };
        Ok(Document {
            meta: self.meta.clone(),
            body,
        })
    }

    /// Converts the body to `T` straight from the bytes, without an intermediate `Value`.
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        serde_json::from_slice(&self.body).map_err(|source| crate::Error::Decode {
            id: self.meta.id.clone(),
            source,
        })
    }
}

/// A version's parsed body (`null` for a tombstone).
pub(crate) fn parse_body(version: &Version) -> Result<Value> {
    if version.meta.tombstone {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&version.body).map_err(|source| Error::Decode {
        id: version.meta.id.clone(),
        source,
    })
}

/// A version with its body as stored (empty for a tombstone).
pub(crate) fn raw_document(version: Version) -> RawDocument {
    RawDocument {
        meta: version.meta.into(),
        body: version.body,
    }
}

/// A version as the API shows it: metadata and the parsed body (`null` for a tombstone).
pub(crate) fn to_document(version: Version) -> Result<Document> {
    let body = parse_body(&version)?;
    Ok(Document {
        meta: version.meta.into(),
        body,
    })
}

/// How Strata's messages name the type of a JSON value: "null", "a boolean", "a number", "a
/// string", "an array" or "an object" (e.g. "a body must be a JSON object, not an array"), for
/// tools whose own messages should read the same.
///
/// ```
/// assert_eq!(strata::json_type_name(&serde_json::json!([1])), "an array");
/// ```
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
