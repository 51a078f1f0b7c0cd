//! Sort and group values, read the same way from a body (the tail) and from the index's fast
//! columns, so results from both sides merge into one exact order.
//!
//! Order between types: booleans < numbers < dates < strings; a document without a value sorts
//! last in both directions. A field with several values sorts by its smallest.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tantivy::columnar::{DynamicColumn, StrColumn};
use tantivy::{DocId, SegmentReader};

use crate::ast::{Field, Scalar, SystemField};
use crate::convert::{for_each_leaf, format_date, keyword, Kw, Num};
use crate::error::Result;
use crate::schema::{VersionInfo, DATES, KW};

/// One sort or group value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum SortValue {
    Bool(bool),
    I(i64),
    U(u64),
    F(f64),
    /// Seconds since the epoch.
    Date(i64),
    Str(String),
    Missing,
}

impl SortValue {
    fn rank(&self) -> u8 {
        match self {
            SortValue::Bool(_) => 0,
            SortValue::I(_) | SortValue::U(_) | SortValue::F(_) => 1,
            SortValue::Date(_) => 2,
            SortValue::Str(_) => 3,
            SortValue::Missing => 4,
        }
    }

    fn num(&self) -> Option<Num> {
        match self {
            SortValue::I(i) => Some(Num::I(*i)),
            SortValue::U(u) => Some(Num::U(*u)),
            SortValue::F(f) => Some(Num::F(*f)),
            _ => None,
        }
    }

    fn from_num(n: Num) -> SortValue {
        match n {
            Num::I(i) => SortValue::I(i),
            Num::U(u) => SortValue::U(u),
            Num::F(f) => SortValue::F(f),
        }
    }

    fn from_kw(k: Kw<'_>) -> SortValue {
        match k {
            Kw::Bool(b) => SortValue::Bool(b),
            Kw::Num(n) => SortValue::from_num(n),
            Kw::Date(d) => SortValue::Date(d),
            Kw::Str(s) => SortValue::Str(s.to_owned()),
        }
    }

    /// Ascending order of present values; `Missing` is greatest.
    pub(crate) fn cmp_asc(&self, other: &SortValue) -> Ordering {
        match (self, other) {
            (SortValue::Bool(a), SortValue::Bool(b)) => a.cmp(b),
            (SortValue::Date(a), SortValue::Date(b)) => a.cmp(b),
            (SortValue::Str(a), SortValue::Str(b)) => a.cmp(b),
            (a, b) => match (a.num(), b.num()) {
                (Some(x), Some(y)) => x.total_cmp(y),
                _ => a.rank().cmp(&b.rank()),
            },
        }
    }

    /// Order in a direction, with `Missing` last either way.
    pub(crate) fn cmp_dir(&self, other: &SortValue, descending: bool) -> Ordering {
        match (self, other) {
            (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
            (SortValue::Missing, _) => Ordering::Greater,
            (_, SortValue::Missing) => Ordering::Less,
            (a, b) if descending => b.cmp_asc(a),
            (a, b) => a.cmp_asc(b),
        }
    }

    /// The value as JSON, for group keys.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            SortValue::Bool(b) => Value::Bool(*b),
            SortValue::I(i) => Value::from(*i),
            SortValue::U(u) => Value::from(*u),
            SortValue::F(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            SortValue::Date(secs) => format_date(*secs).map_or(Value::Null, Value::String),
            SortValue::Str(s) => Value::String(s.clone()),
            SortValue::Missing => Value::Null,
        }
    }

    /// The value as a caller sees it in a hit: numbers as numbers, a date as RFC 3339 text of
    /// its second (as [`SortValue::to_json`] writes it), `None` for a missing value.
    pub(crate) fn to_scalar(&self) -> Option<Scalar> {
        Some(match self {
            SortValue::Bool(b) => Scalar::Bool(*b),
            SortValue::I(i) => Scalar::Int(*i),
            SortValue::U(u) => Scalar::from(*u),
            SortValue::F(f) => Scalar::Float(*f),
            SortValue::Date(secs) => Scalar::Str(format_date(*secs)?),
            SortValue::Str(s) => Scalar::Str(s.clone()),
            SortValue::Missing => return None,
        })
    }

    /// A hashable identity for grouping (numbers by exact value).
    pub(crate) fn group_id(&self) -> String {
        match self {
            SortValue::Bool(b) => format!("b{b}"),
            SortValue::I(i) => format!("n{i}"),
            SortValue::U(u) => format!("n{u}"),
            SortValue::F(f) => format!("n{f:?}"),
            SortValue::Date(d) => format!("d{d}"),
            SortValue::Str(s) => format!("s{s}"),
            SortValue::Missing => "m".to_owned(),
        }
    }
}

/// The values of `field` in a version, as sort/group values.
pub(crate) fn values_of(field: &Field, info: &VersionInfo, body: &Value) -> Vec<SortValue> {
    match field {
        Field::System(f) => vec![system_value(*f, info)],
        Field::Body(path) => {
            let mut out = Vec::new();
            for_each_leaf(body, &mut |p, leaf| {
                if p == path {
                    if let Some(k) = keyword(leaf) {
                        out.push(SortValue::from_kw(k));
                    }
                }
            });
            out
        }
    }
}

fn system_value(f: SystemField, info: &VersionInfo) -> SortValue {
    match f {
        SystemField::Seq => SortValue::from_num(Num::from_u64(info.seq)),
        SystemField::Version => SortValue::from_num(Num::from_u64(info.version)),
        SystemField::Updated => SortValue::from_num(Num::from_u64(info.time)),
        SystemField::Id => SortValue::Str(info.id.clone()),
        SystemField::Kind => SortValue::Str(info.kind.clone()),
    }
}

/// The smallest of `values`, or `Missing`.
pub(crate) fn min_value(values: Vec<SortValue>) -> SortValue {
    values
        .into_iter()
        .min_by(|a, b| a.cmp_asc(b))
        .unwrap_or(SortValue::Missing)
}

/// Reads one field's values from a segment's fast columns.
pub(crate) enum ColumnReader {
    Num(tantivy::columnar::Column<u64>, fn(u64) -> SortValue),
    Str(StrColumn),
    /// A body path's columns in the `kw` field, then in the `dates` field.
    Body(Vec<DynamicColumn>, Vec<DynamicColumn>),
}

fn u64_value(v: u64) -> SortValue {
    SortValue::from_num(Num::from_u64(v))
}

impl ColumnReader {
    pub(crate) fn open(segment: &SegmentReader, field: &Field) -> Result<ColumnReader> {
        let ff = segment.fast_fields();
        Ok(match field {
            Field::System(f @ (SystemField::Seq | SystemField::Version | SystemField::Updated)) => {
                ColumnReader::Num(ff.u64(f.name())?, u64_value)
            }
            Field::System(f) => match ff.str(f.name())? {
                Some(c) => ColumnReader::Str(c),
                None => ColumnReader::Body(Vec::new(), Vec::new()),
            },
            Field::Body(path) => {
                let open = |field: &str| -> Result<Vec<DynamicColumn>> {
                    let handles = ff.dynamic_column_handles(&format!("{field}.{path}"))?;
                    let mut cols = Vec::with_capacity(handles.len());
                    for h in handles {
                        cols.push(h.open().map_err(|e| crate::Error::Index {
                            message: e.to_string(),
                        })?);
                    }
                    Ok(cols)
                };
                ColumnReader::Body(open(KW)?, open(DATES)?)
            }
        })
    }

    pub(crate) fn values(&self, doc: DocId, out: &mut Vec<SortValue>) {
        out.clear();
        match self {
            ColumnReader::Num(col, f) => out.extend(col.values_for_doc(doc).map(f)),
            ColumnReader::Str(col) => push_strs(col, doc, out),
            ColumnReader::Body(cols, dates) => {
                // Seconds, as i64 (tantivy may store a column of non-negative ones as u64).
                for col in dates {
                    match col {
                        DynamicColumn::I64(c) => {
                            out.extend(c.values_for_doc(doc).map(SortValue::Date))
                        }
                        DynamicColumn::U64(c) => out.extend(
                            c.values_for_doc(doc)
                                .filter_map(|u| i64::try_from(u).ok())
                                .map(SortValue::Date),
                        ),
                        _ => {}
                    }
                }
                for col in cols {
                    match col {
                        DynamicColumn::Bool(c) => {
                            out.extend(c.values_for_doc(doc).map(SortValue::Bool))
                        }
                        DynamicColumn::I64(c) => {
                            out.extend(c.values_for_doc(doc).map(SortValue::I))
                        }
                        DynamicColumn::U64(c) => {
                            out.extend(c.values_for_doc(doc).map(SortValue::U))
                        }
                        DynamicColumn::F64(c) => out.extend(
                            c.values_for_doc(doc)
                                .map(|f| SortValue::from_num(Num::from_f64(f))),
                        ),
                        DynamicColumn::Str(c) => push_strs(c, doc, out),
                        _ => {}
                    }
                }
            }
        }
    }
}

fn push_strs(col: &StrColumn, doc: DocId, out: &mut Vec<SortValue>) {
    let mut s = String::new();
    for ord in col.term_ords(doc) {
        s.clear();
        if col.ord_to_str(ord, &mut s).unwrap_or(false) {
            out.push(SortValue::Str(s.clone()));
        }
    }
}
