//! How many versions of a document retention keeps: [`Retention`] and the storage rule it
//! becomes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage::RetentionRule;

use crate::error::{Error, Result};

/// How many versions of a collection's members to keep (applied by compaction).
///
/// ```
/// use std::time::Duration;
/// use strata::Retention;
/// let r = Retention::default()
///     .with_min_versions(2)
///     .with_max_versions(10)
///     .with_max_age(Duration::from_secs(86_400));
/// # let _ = r;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Retention {
    /// Keep at least this many versions of each document, whatever their age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_versions: Option<u64>,
    /// Keep at most this many versions of each document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u64>,
    /// Keep versions younger than this many seconds (beyond `min_versions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
}

impl Retention {
    /// Sets the floor.
    pub fn with_min_versions(mut self, n: u64) -> Self {
        self.min_versions = Some(n);
        self
    }

    /// Sets the limit.
    pub fn with_max_versions(mut self, n: u64) -> Self {
        self.max_versions = Some(n);
        self
    }

    /// Sets the age (whole seconds). Any duration is accepted; an age longer than `u64::MAX`
    /// microseconds (such as `Duration::MAX`) drops nothing by age.
    pub fn with_max_age(mut self, age: std::time::Duration) -> Self {
        self.max_age_secs = Some(age.as_secs());
        self
    }

    /// Renamed [`Retention::with_min_versions`] (setters are `with_*`).
    #[deprecated(note = "use `Retention::with_min_versions`")]
    #[doc(hidden)]
    pub fn min_versions(self, n: u64) -> Self {
        self.with_min_versions(n)
    }

    /// Renamed [`Retention::with_max_versions`] (setters are `with_*`).
    #[deprecated(note = "use `Retention::with_max_versions`")]
    #[doc(hidden)]
    pub fn max_versions(self, n: u64) -> Self {
        self.with_max_versions(n)
    }

    /// Renamed [`Retention::with_max_age`] (setters are `with_*`).
    #[deprecated(note = "use `Retention::with_max_age`")]
    #[doc(hidden)]
    pub fn max_age(self, age: std::time::Duration) -> Self {
        self.with_max_age(age)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| Error::InvalidOption(format!("retention: {reason}"));
        if self.max_versions == Some(0) {
            return Err(bad(
                "max_versions must be at least 1 (the current version)".into()
            ));
        }
        if let (Some(min), Some(max)) = (self.min_versions, self.max_versions) {
            if min > max {
                return Err(bad(format!(
                    "min_versions {min} is over max_versions {max}"
                )));
            }
        }
        Ok(())
    }
}

impl Retention {
    pub(crate) fn rule(&self) -> RetentionRule {
        RetentionRule {
            min_versions: self.min_versions.unwrap_or(0),
            max_versions: self.max_versions,
            max_age: self.max_age_secs.map(Duration::from_secs),
        }
    }
}
