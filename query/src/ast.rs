//! The query model: one AST that the builder, the text syntax and the JSON form all produce, and
//! that both the index and the in-memory matcher evaluate.
//!
//! The JSON form is serde's externally tagged form of [`Query`], for example
//! `{"bool":{"must":[{"term":{"field":"section","value":"python"}}],
//! "must_not":[{"term":{"field":"priority","value":"optional"}}]}}`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A query over document versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Query {
    /// Every version.
    All,
    /// The field holds exactly `value` (any element of an array counts). A string longer than
    /// [`MAX_KEYWORD_BYTES`](crate::MAX_KEYWORD_BYTES) has no exact value: a `value` of one
    /// word (as full text splits and lowercases it; a whole number or a boolean as written)
    /// matches a word of it, a `value` of several words matches no such string.
    Term {
        /// A body path or a system field.
        field: Field,
        /// The value to find.
        value: Scalar,
        /// Compare strings after lowercasing both sides.
        #[serde(default, skip_serializing_if = "is_false")]
        case_insensitive: bool,
    },
    /// The field holds any of `values`.
    Terms {
        /// A body path or a system field.
        field: Field,
        /// The values to find.
        values: Vec<Scalar>,
    },
    /// The words of `text`, consecutive and in order, in one string of the field (or of any
    /// body string when `field` is `None`).
    Phrase {
        /// A body path; `None` searches every string of the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// The phrase.
        text: String,
    },
    /// Every word of `text` somewhere in the field's strings (or anywhere in the body).
    Match {
        /// A body path; `None` searches every string of the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// The words.
        text: String,
    },
    /// A string of the field starts with `prefix`.
    Prefix {
        /// A body path or `_id` / `_kind`.
        field: Field,
        /// The prefix.
        prefix: String,
    },
    /// A string of the field matches `pattern`, where `?` is one character and `*` any run.
    Wildcard {
        /// A body path or `_id` / `_kind`.
        field: Field,
        /// The pattern.
        pattern: String,
    },
    /// A word of the field's text (or of any body string) within `distance` edits of `word`.
    Fuzzy {
        /// A body path; `None` searches every string of the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// The word (lowercased before matching, like the text it is compared to).
        word: String,
        /// Levenshtein distance, 0..=2 (a transposition counts as one edit).
        distance: u8,
    },
    /// A value of the field lies in the range; the bounds' type chooses what is compared
    /// (numbers, dates or strings).
    Range(Range),
    /// The field holds any indexed value.
    Exists {
        /// A body path or a system field.
        field: Field,
    },
    /// The document's kind is exactly this.
    Kind(String),
    /// The document's id starts with this.
    IdPrefix(String),
    /// Boolean combination: every `must`, none of `must_not`, and at least one `should` when
    /// there is no `must` (a query of only `must_not` matches everything else; an empty one
    /// matches everything).
    Bool(BoolQuery),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The clauses of [`Query::Bool`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoolQuery {
    /// Every one must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub must: Vec<Query>,
    /// At least one must match when `must` is empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub should: Vec<Query>,
    /// None may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub must_not: Vec<Query>,
}

/// A range of values; absent bounds are open ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// A body path or a system field.
    pub field: Field,
    /// Greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Scalar>,
    /// Greater than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Scalar>,
    /// Less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Scalar>,
    /// Less than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Scalar>,
}

impl Range {
    /// The lower bound: the value and whether it is included.
    pub fn lower(&self) -> Option<(&Scalar, bool)> {
        self.gte
            .as_ref()
            .map(|v| (v, true))
            .or(self.gt.as_ref().map(|v| (v, false)))
    }

    /// The upper bound: the value and whether it is included.
    pub fn upper(&self) -> Option<(&Scalar, bool)> {
        self.lte
            .as_ref()
            .map(|v| (v, true))
            .or(self.lt.as_ref().map(|v| (v, false)))
    }
}

/// A JSON scalar in a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number that fits in i64.
    Int(i64),
    /// A whole number above `i64::MAX`.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string; one in RFC 3339 form is compared as a date.
    Str(String),
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar::Str(s.to_owned())
    }
}
impl From<String> for Scalar {
    fn from(s: String) -> Self {
        Scalar::Str(s)
    }
}
impl From<bool> for Scalar {
    fn from(b: bool) -> Self {
        Scalar::Bool(b)
    }
}
impl From<i64> for Scalar {
    fn from(n: i64) -> Self {
        Scalar::Int(n)
    }
}
impl From<i32> for Scalar {
    fn from(n: i32) -> Self {
        Scalar::Int(n.into())
    }
}
impl From<u64> for Scalar {
    fn from(n: u64) -> Self {
        match i64::try_from(n) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::UInt(n),
        }
    }
}
impl From<f64> for Scalar {
    fn from(n: f64) -> Self {
        Scalar::Float(n)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::UInt(n) => write!(f, "{n}"),
            Scalar::Float(n) => write!(f, "{n}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The system fields every version has, addressed with a leading underscore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemField {
    /// `_seq`: the store-wide sequence number.
    Seq,
    /// `_id`: the document id.
    Id,
    /// `_kind`: the document kind.
    Kind,
    /// `_version`: the per-document version.
    Version,
    /// `_updated`: the update time (a date, or microseconds since the epoch).
    Updated,
}

impl SystemField {
    /// All system fields.
    pub const ALL: [SystemField; 5] = [
        SystemField::Seq,
        SystemField::Id,
        SystemField::Kind,
        SystemField::Version,
        SystemField::Updated,
    ];

    /// The name with its underscore.
    pub fn name(self) -> &'static str {
        match self {
            SystemField::Seq => "_seq",
            SystemField::Id => "_id",
            SystemField::Kind => "_kind",
            SystemField::Version => "_version",
            SystemField::Updated => "_updated",
        }
    }

    /// The system field named `name` (with its underscore).
    pub fn from_name(name: &str) -> Option<SystemField> {
        SystemField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What a query clause looks at: a system field or a dotted path into the body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// A system field (`_id`, `_kind`, ...).
    System(SystemField),
    /// A dotted body path (`owner.name`); an array at any step matches any element.
    Body(String),
}

impl Field {
    /// Parses a field name: the system names are reserved, anything else is a body path.
    ///
    /// ```
    /// use strata_query::{Field, SystemField};
    /// assert_eq!(Field::parse("_kind")?, Field::System(SystemField::Kind));
    /// assert_eq!(Field::parse("owner.name")?, Field::Body("owner.name".into()));
    /// assert!(Field::parse("a..b").is_err());
    /// # Ok::<_, strata_query::Error>(())
    /// ```
    pub fn parse(name: &str) -> Result<Field> {
        if let Some(system) = SystemField::from_name(name) {
            return Ok(Field::System(system));
        }
        check_path(name)?;
        Ok(Field::Body(name.to_owned()))
    }

    /// The name as written in queries.
    pub fn name(&self) -> &str {
        match self {
            Field::System(s) => s.name(),
            Field::Body(path) => path,
        }
    }
}

/// Longest accepted body path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Checks a body path: non-empty segments separated by dots, no backslash or control bytes.
pub fn check_path(path: &str) -> Result<()> {
    let bad = |why: &str| Error::InvalidField {
        field: path.chars().take(64).collect(),
        reason: why.to_owned(),
    };
    if path.is_empty() {
        return Err(bad("a field path cannot be empty"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(bad("a field path is at most 1024 bytes"));
    }
    if path.split('.').any(str::is_empty) {
        return Err(bad("a field path cannot have an empty segment"));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(bad(
            "a field path cannot hold a backslash or control character",
        ));
    }
    Ok(())
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Field::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl From<SystemField> for Field {
    fn from(f: SystemField) -> Self {
        Field::System(f)
    }
}

/// Builder: field names are parsed with [`Field::parse`]; an invalid name makes a query that
/// [`Query::validate`] rejects.
fn field(name: &str) -> Field {
    Field::parse(name).unwrap_or_else(|_| Field::Body(name.to_owned()))
}

impl Query {
    /// `field` holds exactly `value` (or, in a string over
    /// [`MAX_KEYWORD_BYTES`](crate::MAX_KEYWORD_BYTES), a `value` of one word as one of its
    /// words: [`Query::Term`]).
    pub fn term(name: &str, value: impl Into<Scalar>) -> Query {
        Query::Term {
            field: field(name),
            value: value.into(),
            case_insensitive: false,
        }
    }

    /// `field` holds `value`, ignoring case.
    pub fn term_ci(name: &str, value: impl Into<String>) -> Query {
        Query::Term {
            field: field(name),
            value: Scalar::Str(value.into()),
            case_insensitive: true,
        }
    }

    /// `field` holds any of `values`.
    pub fn terms<V: Into<Scalar>>(name: &str, values: impl IntoIterator<Item = V>) -> Query {
        Query::Terms {
            field: field(name),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// The phrase in `field`'s text.
    pub fn phrase(name: &str, text: impl Into<String>) -> Query {
        Query::Phrase {
            field: Some(name.to_owned()),
            text: text.into(),
        }
    }

    /// Every word of `text` somewhere in the body.
    pub fn text(text: impl Into<String>) -> Query {
        Query::Match {
            field: None,
            text: text.into(),
        }
    }

    /// Every word of `text` in `field`'s text.
    pub fn matches(name: &str, text: impl Into<String>) -> Query {
        Query::Match {
            field: Some(name.to_owned()),
            text: text.into(),
        }
    }

    /// A string of `field` starts with `prefix`.
    pub fn prefix(name: &str, prefix: impl Into<String>) -> Query {
        Query::Prefix {
            field: field(name),
            prefix: prefix.into(),
        }
    }

    /// A string of `field` matches the `?`/`*` pattern.
    pub fn wildcard(name: &str, pattern: impl Into<String>) -> Query {
        Query::Wildcard {
            field: field(name),
            pattern: pattern.into(),
        }
    }

    /// A word of `field`'s text within `distance` edits of `word`.
    pub fn fuzzy(name: &str, word: impl Into<String>, distance: u8) -> Query {
        Query::Fuzzy {
            field: Some(name.to_owned()),
            word: word.into(),
            distance,
        }
    }

    /// A value of `field` in `range`: `Query::range("size", 1000..5000)`, `..=5`, `"a".."m"`.
    pub fn range<T: Into<Scalar> + Clone>(
        name: &str,
        range: impl std::ops::RangeBounds<T>,
    ) -> Query {
        use std::ops::Bound::*;
        let mut r = Range {
            field: field(name),
            gt: None,
            gte: None,
            lt: None,
            lte: None,
        };
        match range.start_bound() {
            Included(v) => r.gte = Some(v.clone().into()),
            Excluded(v) => r.gt = Some(v.clone().into()),
            Unbounded => {}
        }
        match range.end_bound() {
            Included(v) => r.lte = Some(v.clone().into()),
            Excluded(v) => r.lt = Some(v.clone().into()),
            Unbounded => {}
        }
        Query::Range(r)
    }

    /// `field` holds some indexed value.
    pub fn exists(name: &str) -> Query {
        Query::Exists { field: field(name) }
    }

    /// The document's kind is `kind`.
    pub fn kind(kind: impl Into<String>) -> Query {
        Query::Kind(kind.into())
    }

    /// The document's id starts with `prefix`.
    pub fn id_prefix(prefix: impl Into<String>) -> Query {
        Query::IdPrefix(prefix.into())
    }

    /// Both this and `other`.
    #[must_use]
    pub fn and(self, other: Query) -> Query {
        match self {
            Query::Bool(mut b) if b.should.is_empty() && !b.must.is_empty() => {
                b.must.push(other);
                Query::Bool(b)
            }
            q => Query::Bool(BoolQuery {
                must: vec![q, other],
                ..BoolQuery::default()
            }),
        }
    }

    /// This or `other`.
    #[must_use]
    pub fn or(self, other: Query) -> Query {
        match self {
            Query::Bool(mut b) if b.must.is_empty() && b.must_not.is_empty() => {
                b.should.push(other);
                Query::Bool(b)
            }
            q => Query::Bool(BoolQuery {
                should: vec![q, other],
                ..BoolQuery::default()
            }),
        }
    }

    /// This but not `other`.
    #[must_use]
    pub fn and_not(self, other: Query) -> Query {
        match self {
            Query::Bool(mut b) if b.should.is_empty() && !b.must.is_empty() => {
                b.must_not.push(other);
                Query::Bool(b)
            }
            q => Query::Bool(BoolQuery {
                must: vec![q],
                must_not: vec![other],
                ..BoolQuery::default()
            }),
        }
    }

    /// Everything but this.
    #[must_use]
    pub fn negate(self) -> Query {
        Query::Bool(BoolQuery {
            must_not: vec![self],
            ..BoolQuery::default()
        })
    }

    /// Parses the JSON form.
    pub fn from_json(json: &str) -> Result<Query> {
        let q: Query = serde_json::from_str(json).map_err(|e| Error::InvalidJsonQuery {
            message: e.to_string(),
        })?;
        q.validate()?;
        Ok(q)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks what serde cannot: field names, bounds, distances, nesting depth.
    pub fn validate(&self) -> Result<()> {
        self.validate_at(0)
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_QUERY_DEPTH {
            return Err(Error::QueryTooDeep {
                limit: MAX_QUERY_DEPTH,
            });
        }
        let invalid = |reason: String| Err(Error::InvalidQuery { reason });
        match self {
            Query::All | Query::Kind(_) | Query::IdPrefix(_) => Ok(()),
            Query::Term { field, value, .. } => {
                check_field(field)?;
                check_scalar(value)
            }
            Query::Terms { field, values } => {
                check_field(field)?;
                values.iter().try_for_each(check_scalar)
            }
            Query::Phrase { field, .. } | Query::Match { field, .. } => {
                field.as_deref().map_or(Ok(()), check_path)
            }
            Query::Fuzzy {
                field, distance, ..
            } => {
                if *distance > 2 {
                    return invalid(format!(
                        "fuzzy distance {distance} is over the maximum of 2"
                    ));
                }
                field.as_deref().map_or(Ok(()), check_path)
            }
            Query::Prefix { field, .. } | Query::Wildcard { field, .. } => match field {
                Field::System(SystemField::Id | SystemField::Kind) => Ok(()),
                Field::System(s) => invalid(format!(
                    "{} is a number; prefix and wildcard apply to strings",
                    s.name()
                )),
                Field::Body(path) => check_path(path),
            },
            Query::Range(r) => {
                check_field(&r.field)?;
                if r.gt.is_some() && r.gte.is_some() {
                    return invalid(format!("range on {} has both gt and gte", r.field));
                }
                if r.lt.is_some() && r.lte.is_some() {
                    return invalid(format!("range on {} has both lt and lte", r.field));
                }
                for v in [&r.gt, &r.gte, &r.lt, &r.lte].into_iter().flatten() {
                    check_scalar(v)?;
                    if matches!(v, Scalar::Bool(_)) {
                        return invalid(format!("range on {} has a boolean bound", r.field));
                    }
                }
                Ok(())
            }
            Query::Exists { field } => check_field(field),
            Query::Bool(b) => b
                .must
                .iter()
                .chain(&b.should)
                .chain(&b.must_not)
                .try_for_each(|q| q.validate_at(depth + 1)),
        }
    }
}

/// Deepest accepted nesting of boolean queries.
pub const MAX_QUERY_DEPTH: usize = 64;

fn check_field(field: &Field) -> Result<()> {
    match field {
        Field::System(_) => Ok(()),
        Field::Body(path) => check_path(path),
    }
}

fn check_scalar(value: &Scalar) -> Result<()> {
    match value {
        Scalar::Float(f) if !f.is_finite() => Err(Error::InvalidQuery {
            reason: "numbers in queries must be finite".to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_round_trips() {
        let q = Query::term("section", "python")
            .and(Query::range("size", 1000..5000))
            .and_not(Query::term("priority", "optional"))
            .and(Query::kind("package"));
        let json = q.to_json();
        assert_eq!(Query::from_json(&json).unwrap(), q);
        assert!(
            json.contains(r#"{"term":{"field":"section","value":"python"}}"#),
            "{json}"
        );
    }

    #[test]
    fn json_form_rejects_bad_fields_and_unknown_keys() {
        assert!(Query::from_json(r#"{"term":{"field":"a..b","value":1}}"#).is_err());
        assert!(Query::from_json(r#"{"term":{"field":"a","value":1,"boost":2}}"#).is_err());
        assert!(Query::from_json(r#"{"range":{"field":"a","gt":1,"gte":2}}"#).is_err());
        assert!(Query::from_json(r#"{"fuzzy":{"word":"a","distance":3}}"#).is_err());
        let ok = Query::from_json(r#"{"range":{"field":"_version","gt":3}}"#).unwrap();
        let Query::Range(r) = ok else {
            panic!("not a range: {ok:?}")
        };
        assert_eq!(r.field, Field::System(SystemField::Version));
        assert_eq!(r.lower(), Some((&Scalar::Int(3), false)));
    }
}
