//! A query normalised for evaluation: values in canonical form, text tokenized, system fields
//! resolved. The index translation and the in-memory matcher both start from this plan, so a
//! value is interpreted once.

use std::ops::Bound;

use crate::ast::{Field, Query, Range, Scalar, SystemField};
use crate::convert::{self, lowercase, parse_date, parse_date_micros, Num};
use crate::error::{Error, Result};
use crate::MAX_KEYWORD_BYTES;

/// A keyword value in a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KwValue {
    Bool(bool),
    Num(Num),
    /// Seconds since the epoch.
    Date(i64),
    Str(String),
}

/// The typed bounds of a keyword range.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KwRange {
    Num(Bound<Num>, Bound<Num>),
    Date(Bound<i64>, Bound<i64>),
    Str(Bound<String>, Bound<String>),
}

/// String operations on `_id` and `_kind`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrOp {
    Eq(String),
    Prefix(String),
    Wildcard(String),
    Range(Bound<String>, Bound<String>),
}

/// Which string system field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysStr {
    Id,
    Kind,
}

/// Which numeric system field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysNum {
    Seq,
    Version,
    Updated,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    All,
    Nothing,
    SysStr(SysStr, StrOp),
    /// Inclusive u64 range (a term is a range of one value).
    SysNum(SysNum, u64, u64),
    KwEq(String, KwValue),
    KwEqCi(String, String),
    KwPrefix(String, String),
    KwWildcard(String, String),
    KwRange(String, KwRange),
    /// A word (one [`convert::text_analyzer`] token) of a string at the path that has no
    /// keyword value ([`convert::long_text`]): what a term of one word also matches.
    Word(String, String),
    Exists(String),
    /// Tokens with positions; `phrase` wants them consecutive in one string, otherwise each
    /// anywhere. `None` path: any body string.
    Text {
        path: Option<String>,
        tokens: Vec<(usize, String)>,
        phrase: bool,
    },
    Fuzzy {
        path: Option<String>,
        word: String,
        distance: u8,
    },
    Bool {
        must: Vec<Node>,
        should: Vec<Node>,
        must_not: Vec<Node>,
    },
}

fn invalid(reason: String) -> Error {
    Error::InvalidQuery { reason }
}

/// Compiles a validated query.
pub(crate) fn compile(query: &Query) -> Result<Node> {
    query.validate()?;
    let mut analyzer = convert::text_analyzer();
    compile_node(query, &mut analyzer)
}

fn compile_node(query: &Query, analyzer: &mut tantivy::tokenizer::TextAnalyzer) -> Result<Node> {
    Ok(match query {
        Query::All => Node::All,
        Query::Term {
            field,
            value,
            case_insensitive,
        } => term(field, value, *case_insensitive, analyzer)?,
        Query::Terms { field, values } => Node::Bool {
            must: Vec::new(),
            should: values
                .iter()
                .map(|v| term(field, v, false, analyzer))
                .collect::<Result<_>>()?,
            must_not: Vec::new(),
        },
        Query::Phrase { field, text } | Query::Match { field, text } => Node::Text {
            path: field.clone(),
            tokens: convert::tokens(analyzer, text),
            phrase: matches!(query, Query::Phrase { .. }),
        },
        Query::Fuzzy {
            field,
            word,
            distance,
        } => {
            let mut tokens = convert::tokens(analyzer, word);
            if tokens.len() != 1 {
                return Err(invalid(format!(
                    "fuzzy matching takes one word, {word:?} has {}",
                    tokens.len()
                )));
            }
            let (_, word) = tokens.swap_remove(0);
            Node::Fuzzy {
                path: field.clone(),
                word,
                distance: *distance,
            }
        }
        Query::Prefix { field, prefix } => match field {
            Field::System(f) => Node::SysStr(sys_str(*f)?, StrOp::Prefix(prefix.clone())),
            Field::Body(path) => Node::KwPrefix(path.clone(), prefix.clone()),
        },
        Query::Wildcard { field, pattern } => {
            check_pattern(pattern)?;
            match field {
                Field::System(f) => Node::SysStr(sys_str(*f)?, StrOp::Wildcard(pattern.clone())),
                Field::Body(path) => Node::KwWildcard(path.clone(), pattern.clone()),
            }
        }
        Query::Range(r) => range(r)?,
        Query::Exists { field } => match field {
            Field::System(_) => Node::All,
            Field::Body(path) => Node::Exists(path.clone()),
        },
        Query::Kind(kind) => Node::SysStr(SysStr::Kind, StrOp::Eq(kind.clone())),
        Query::IdPrefix(prefix) => Node::SysStr(SysStr::Id, StrOp::Prefix(prefix.clone())),
        Query::Bool(b) => {
            let all = |qs: &[Query], a: &mut tantivy::tokenizer::TextAnalyzer| {
                qs.iter()
                    .map(|q| compile_node(q, a))
                    .collect::<Result<Vec<_>>>()
            };
            let must = all(&b.must, analyzer)?;
            let should = all(&b.should, analyzer)?;
            let must_not = all(&b.must_not, analyzer)?;
            Node::Bool {
                must,
                should,
                must_not,
            }
        }
    })
}

/// Longest accepted wildcard pattern, in characters (the automaton grows with it).
const MAX_PATTERN_CHARS: usize = 256;

fn check_pattern(pattern: &str) -> Result<()> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(invalid(format!(
            "wildcard patterns are at most {MAX_PATTERN_CHARS} characters"
        )));
    }
    Ok(())
}

fn sys_str(f: SystemField) -> Result<SysStr> {
    match f {
        SystemField::Id => Ok(SysStr::Id),
        SystemField::Kind => Ok(SysStr::Kind),
        other => Err(invalid(format!(
            "{} is a number, not a string",
            other.name()
        ))),
    }
}

fn sys_num(f: SystemField) -> Option<SysNum> {
    match f {
        SystemField::Seq => Some(SysNum::Seq),
        SystemField::Version => Some(SysNum::Version),
        SystemField::Updated => Some(SysNum::Updated),
        SystemField::Id | SystemField::Kind => None,
    }
}

fn scalar_num(v: &Scalar) -> Option<Num> {
    match v {
        Scalar::Int(i) => Some(Num::I(*i)),
        Scalar::UInt(u) => Some(Num::from_u64(*u)),
        Scalar::Float(f) => Some(Num::from_f64(*f)),
        Scalar::Bool(_) | Scalar::Str(_) => None,
    }
}

/// The value of a numeric system field bound: a number, or for `_updated` also a date.
fn sys_num_value(field: SysNum, v: &Scalar) -> Result<Num> {
    if let Some(n) = scalar_num(v) {
        return Ok(n);
    }
    if let (SysNum::Updated, Scalar::Str(s)) = (field, v) {
        return match parse_date_micros(s) {
            // Every RFC 3339 date fits i64 microseconds (years 0000 to 9999, ±1 day); one before
            // 1970 is a negative bound that u64_above/u64_below clamp. Saturate all the same.
            Ok(micros) => Ok(match i64::try_from(micros) {
                Ok(m) => Num::I(m),
                Err(_) if micros < 0 => Num::I(i64::MIN),
                Err(_) => Num::U(u64::MAX),
            }),
            Err(e) => Err(invalid(format!(
                "_updated takes microseconds or an RFC 3339 date; {s:?} is neither: {}",
                e.reason()
            ))),
        };
    }
    Err(invalid(format!("expected a number, found {v}")))
}

/// Smallest u64 `>= n` (`> n` when `strict`), if any.
fn u64_above(n: Num, strict: bool) -> Option<u64> {
    use std::cmp::Ordering::*;
    let candidate = match n {
        Num::I(i) if i < 0 => return Some(0),
        Num::I(i) => i as u64,
        Num::U(u) => u,
        Num::F(f) if f < 0.0 => return Some(0),
        Num::F(f) if f >= 18_446_744_073_709_551_616.0 => return None,
        Num::F(f) => f.ceil() as u64,
    };
    match Num::from_u64(candidate).total_cmp(n) {
        Greater => Some(candidate),
        Equal if !strict => Some(candidate),
        _ => candidate.checked_add(1),
    }
}

/// Largest u64 `<= n` (`< n` when `strict`), if any.
fn u64_below(n: Num, strict: bool) -> Option<u64> {
    use std::cmp::Ordering::*;
    let candidate = match n {
        Num::I(i) if i < 0 => return None,
        Num::I(i) => i as u64,
        Num::U(u) => u,
        Num::F(f) if f < 0.0 => return None,
        Num::F(f) if f >= 18_446_744_073_709_551_616.0 => return Some(u64::MAX),
        Num::F(f) => f.floor() as u64,
    };
    match Num::from_u64(candidate).total_cmp(n) {
        Less => Some(candidate),
        Equal if !strict => Some(candidate),
        _ => candidate.checked_sub(1),
    }
}

fn sys_range(
    field: SysNum,
    lo: Option<(&Scalar, bool)>,
    hi: Option<(&Scalar, bool)>,
) -> Result<Node> {
    let lo = match lo {
        None => Some(0),
        Some((v, inclusive)) => u64_above(sys_num_value(field, v)?, !inclusive),
    };
    let hi = match hi {
        None => Some(u64::MAX),
        Some((v, inclusive)) => u64_below(sys_num_value(field, v)?, !inclusive),
    };
    Ok(match (lo, hi) {
        (Some(lo), Some(hi)) if lo <= hi => Node::SysNum(field, lo, hi),
        _ => Node::Nothing,
    })
}

fn kw_value(v: &Scalar) -> Option<KwValue> {
    Some(match v {
        Scalar::Bool(b) => KwValue::Bool(*b),
        Scalar::Str(s) => match parse_date(s) {
            Some(secs) => KwValue::Date(secs),
            None if s.len() <= MAX_KEYWORD_BYTES => KwValue::Str(s.clone()),
            None => return None,
        },
        n => KwValue::Num(scalar_num(n)?),
    })
}

/// A term: on a system field, its value; on a body path, the exact keyword (or its lowercase
/// form), or else, if the value is one word ([`convert::single_word`] of a string, a whole
/// number or a boolean as written), that word of a string without a keyword ([`Node::Word`]).
fn term(
    field: &Field,
    value: &Scalar,
    case_insensitive: bool,
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
) -> Result<Node> {
    match field {
        Field::System(f) => match sys_num(*f) {
            Some(n) => {
                let v = Some((value, true));
                sys_range(n, v, v)
            }
            None => {
                let f = sys_str(*f)?;
                match value {
                    Scalar::Str(_) if case_insensitive => Err(invalid(
                        "case-insensitive matching applies to body fields, not _id or _kind"
                            .to_owned(),
                    )),
                    Scalar::Str(s) => Ok(Node::SysStr(f, StrOp::Eq(s.clone()))),
                    other => Ok(Node::SysStr(f, StrOp::Eq(other.to_string()))),
                }
            }
        },
        Field::Body(path) => {
            let keyword = match value {
                Scalar::Str(s) if case_insensitive && parse_date(s).is_none() => {
                    Node::KwEqCi(path.clone(), lowercase(s))
                }
                _ => match kw_value(value) {
                    Some(v) => Node::KwEq(path.clone(), v),
                    None => Node::Nothing,
                },
            };
            // The value as a user typed it (`description:2024` is a number to the parser).
            let text = match value {
                Scalar::Str(s) if parse_date(s).is_none() => Some(s.clone()),
                Scalar::Str(_) | Scalar::Float(_) => None,
                Scalar::Int(i) => Some(i.to_string()),
                Scalar::UInt(u) => Some(u.to_string()),
                Scalar::Bool(b) => Some(b.to_string()),
            };
            let word = text.and_then(|t| convert::single_word(analyzer, &t));
            Ok(match (keyword, word) {
                (keyword, None) => keyword,
                (Node::Nothing, Some(word)) => Node::Word(path.clone(), word),
                (keyword, Some(word)) => Node::Bool {
                    must: Vec::new(),
                    should: vec![keyword, Node::Word(path.clone(), word)],
                    must_not: Vec::new(),
                },
            })
        }
    }
}

fn range(r: &Range) -> Result<Node> {
    let (lo, hi) = (r.lower(), r.upper());
    let path = match &r.field {
        Field::System(f) => {
            return match sys_num(*f) {
                Some(n) => sys_range(n, lo, hi),
                None => {
                    let f = sys_str(*f)?;
                    let bound = |b: Option<(&Scalar, bool)>| match b {
                        None => Ok(Bound::Unbounded),
                        Some((Scalar::Str(s), true)) => Ok(Bound::Included(s.clone())),
                        Some((Scalar::Str(s), false)) => Ok(Bound::Excluded(s.clone())),
                        Some((v, _)) => Err(invalid(format!("expected a string bound, found {v}"))),
                    };
                    Ok(Node::SysStr(f, StrOp::Range(bound(lo)?, bound(hi)?)))
                }
            };
        }
        Field::Body(path) => path.clone(),
    };
    let lo_v = lo.map(|(v, inc)| (kw_value(v), inc, v));
    let hi_v = hi.map(|(v, inc)| (kw_value(v), inc, v));
    fn bound<T>(b: Option<(T, bool)>) -> Bound<T> {
        match b {
            None => Bound::Unbounded,
            Some((v, true)) => Bound::Included(v),
            Some((v, false)) => Bound::Excluded(v),
        }
    }
    // Over-long string bounds still order correctly: keep them as strings.
    let class = |v: &Option<KwValue>, s: &Scalar| match (v, s) {
        (Some(KwValue::Num(_)), _) => Some(0),
        (Some(KwValue::Date(_)), _) => Some(1),
        (Some(KwValue::Str(_)), _) | (None, Scalar::Str(_)) => Some(2),
        _ => None,
    };
    let lc = lo_v.as_ref().map(|(v, _, s)| class(v, s));
    let hc = hi_v.as_ref().map(|(v, _, s)| class(v, s));
    let c = match (lc, hc) {
        (None, None) => return Ok(Node::Exists(path)),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (Some(a), Some(b)) if a == b => a,
        _ => {
            return Err(invalid(format!(
                "range on {} mixes bound types (numbers, dates and strings do not compare)",
                r.field
            )))
        }
    };
    let kr = match c {
        Some(0) => {
            let f = |b: Option<(Option<KwValue>, bool, &Scalar)>| {
                b.and_then(|(v, inc, _)| match v {
                    Some(KwValue::Num(n)) => Some((n, inc)),
                    _ => None,
                })
            };
            KwRange::Num(bound(f(lo_v)), bound(f(hi_v)))
        }
        Some(1) => {
            let f = |b: Option<(Option<KwValue>, bool, &Scalar)>| {
                b.and_then(|(v, inc, _)| match v {
                    Some(KwValue::Date(d)) => Some((d, inc)),
                    _ => None,
                })
            };
            KwRange::Date(bound(f(lo_v)), bound(f(hi_v)))
        }
        Some(2) => {
            let f = |b: Option<(Option<KwValue>, bool, &Scalar)>| {
                b.and_then(|(_, inc, s)| match s {
                    Scalar::Str(s) => Some((s.clone(), inc)),
                    _ => None,
                })
            };
            KwRange::Str(bound(f(lo_v)), bound(f(hi_v)))
        }
        _ => {
            return Err(invalid(format!(
                "range on {} needs number, date or string bounds",
                r.field
            )))
        }
    };
    Ok(Node::KwRange(path, kr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_number_bounds_are_exact() {
        assert_eq!(u64_above(Num::F(2.5), false), Some(3));
        assert_eq!(u64_above(Num::I(3), true), Some(4));
        assert_eq!(u64_above(Num::I(-3), true), Some(0));
        assert_eq!(u64_below(Num::F(2.5), false), Some(2));
        assert_eq!(u64_below(Num::I(3), true), Some(2));
        assert_eq!(u64_below(Num::I(0), true), None);
        assert_eq!(u64_above(Num::U(u64::MAX), true), None);
    }

    #[test]
    fn ranges_pick_their_type_from_the_bounds() {
        let q = Query::range("size", 1000..5000);
        assert!(matches!(
            compile(&q).unwrap(),
            Node::KwRange(_, KwRange::Num(..))
        ));
        let q = Query::range("at", "2026-01-01T00:00:00Z"..);
        assert!(matches!(
            compile(&q).unwrap(),
            Node::KwRange(_, KwRange::Date(..))
        ));
        let q = Query::range("name", "a".."m");
        assert!(matches!(
            compile(&q).unwrap(),
            Node::KwRange(_, KwRange::Str(..))
        ));
        let mixed = Query::Range(Range {
            field: Field::Body("x".into()),
            gt: Some(Scalar::Int(1)),
            gte: None,
            lt: Some(Scalar::Str("b".into())),
            lte: None,
        });
        assert!(compile(&mixed).is_err());
        assert_eq!(
            compile(&Query::range("_version", 3..3)).unwrap(),
            Node::Nothing
        );
    }
}
