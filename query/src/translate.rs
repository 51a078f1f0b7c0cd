//! Translates a query plan into a tantivy query over the version index.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, FuzzyTermQuery, Occur, PhraseQuery, Query as TQuery,
    RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use crate::convert::Num;
use crate::error::{Error, Result};
use crate::forward::Forward;
use crate::plan::{KwRange, KwValue, Node, StrOp, SysNum, SysStr};
use crate::schema::Fields;

type Boxed = Box<dyn TQuery>;

pub(crate) fn translate(node: &Node, f: &Fields) -> Result<Boxed> {
    Ok(match node {
        Node::All => Box::new(AllQuery),
        Node::Nothing => Box::new(EmptyQuery),
        Node::SysStr(field, op) => {
            let field = match field {
                SysStr::Id => f.id,
                SysStr::Kind => f.kind,
            };
            match op {
                StrOp::Eq(v) => term(Term::from_field_text(field, v)),
                StrOp::Prefix(p) => regex(&format!("{}.*", escape(p)), field)?,
                StrOp::Wildcard(p) => regex(&glob(p), field)?,
                StrOp::Range(lo, hi) => {
                    if matches!((lo, hi), (Bound::Unbounded, Bound::Unbounded)) {
                        return Ok(Box::new(AllQuery));
                    }
                    let t = |s: &String| Term::from_field_text(field, s);
                    Box::new(RangeQuery::new(lo.as_ref().map(t), hi.as_ref().map(t)))
                }
            }
        }
        Node::SysNum(field, lo, hi) => {
            let field = match field {
                SysNum::Seq => f.seq,
                SysNum::Version => f.version,
                SysNum::Updated => f.updated,
            };
            if lo == hi {
                term(Term::from_field_u64(field, *lo))
            } else {
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_u64(field, *lo)),
                    Bound::Included(Term::from_field_u64(field, *hi)),
                ))
            }
        }
        Node::KwEq(path, value) => {
            let field = match value {
                KwValue::Date(_) => f.dates,
                _ => f.kw,
            };
            term(kw_term(field, path, value))
        }
        Node::KwEqCi(path, lower) => {
            let v = KwValue::Str(lower.clone());
            Box::new(BooleanQuery::new(vec![
                (Occur::Should, term(kw_term(f.kw, path, &v))),
                (Occur::Should, term(kw_term(f.ci, path, &v))),
            ]))
        }
        Node::KwPrefix(path, prefix) => regex(
            &format!(
                "{}{}.*",
                escape(&json_str_prefix(f.kw, path)),
                escape(prefix)
            ),
            f.kw,
        )?,
        Node::KwWildcard(path, pattern) => regex(
            &format!("{}{}", escape(&json_str_prefix(f.kw, path)), glob(pattern)),
            f.kw,
        )?,
        Node::KwRange(path, range) => {
            let (lo, hi) = match range {
                KwRange::Num(lo, hi) => {
                    // tantivy reads both bounds as the type of the first: give them one type.
                    let any = |p: fn(&Num) -> bool| {
                        [lo, hi].iter().any(|b| match b {
                            Bound::Included(n) | Bound::Excluded(n) => p(n),
                            Bound::Unbounded => false,
                        })
                    };
                    let (lo, hi) = if any(|n| matches!(n, Num::F(_))) {
                        let as_f = |n: &Num| Num::F(n.as_f64());
                        (lo.as_ref().map(as_f), hi.as_ref().map(as_f))
                    } else if any(|n| matches!(n, Num::U(_))) {
                        // Mixed with a u64 bound: a negative lower bound is no bound; a
                        // negative upper bound admits nothing.
                        let lo = match lo {
                            Bound::Included(Num::I(i)) | Bound::Excluded(Num::I(i)) if *i < 0 => {
                                Bound::Unbounded
                            }
                            other => other.as_ref().map(|n| match n {
                                Num::I(i) => Num::U(*i as u64),
                                n => *n,
                            }),
                        };
                        if matches!(hi, Bound::Included(Num::I(i)) | Bound::Excluded(Num::I(i)) if *i < 0)
                        {
                            return Ok(Box::new(EmptyQuery));
                        }
                        let hi = hi.as_ref().map(|n| match n {
                            Num::I(i) => Num::U(*i as u64),
                            n => *n,
                        });
                        (lo, hi)
                    } else {
                        (*lo, *hi)
                    };
                    if matches!((&lo, &hi), (Bound::Unbounded, Bound::Unbounded)) {
                        return Ok(term(Term::from_field_text(f.paths, path)));
                    }
                    let t = |n: &Num| kw_term(f.kw, path, &KwValue::Num(*n));
                    (lo.as_ref().map(t), hi.as_ref().map(t))
                }
                KwRange::Date(lo, hi) => {
                    let t = |d: &i64| kw_term(f.dates, path, &KwValue::Date(*d));
                    (lo.as_ref().map(t), hi.as_ref().map(t))
                }
                KwRange::Str(lo, hi) => {
                    let t = |s: &String| kw_term(f.kw, path, &KwValue::Str(s.clone()));
                    (lo.as_ref().map(t), hi.as_ref().map(t))
                }
            };
            Box::new(RangeQuery::new(lo, hi))
        }
        Node::Word(path, word) => term(kw_term(f.words, path, &KwValue::Str(word.clone()))),
        Node::Exists(path) => term(Term::from_field_text(f.paths, path)),
        Node::Text {
            path,
            tokens,
            phrase,
        } => {
            let t = |tok: &str| match path {
                Some(p) => {
                    let mut t = Term::from_field_json_path(f.text, p, true);
                    t.append_type_and_str(tok);
                    t
                }
                None => Term::from_field_text(f.all, tok),
            };
            match tokens.as_slice() {
                [] => Box::new(EmptyQuery),
                [(_, one)] => Box::new(TermQuery::new(t(one), IndexRecordOption::WithFreqs)),
                many if *phrase => Box::new(PhraseQuery::new_with_offset(
                    many.iter().map(|(pos, tok)| (*pos, t(tok))).collect(),
                )),
                many => Box::new(BooleanQuery::new(
                    many.iter()
                        .map(|(_, tok)| {
                            let q: Boxed =
                                Box::new(TermQuery::new(t(tok), IndexRecordOption::WithFreqs));
                            (Occur::Must, q)
                        })
                        .collect(),
                )),
            }
        }
        Node::Fuzzy {
            path,
            word,
            distance,
        } => {
            let t = match path {
                Some(p) => {
                    let mut t = Term::from_field_json_path(f.text, p, true);
                    t.append_type_and_str(word);
                    t
                }
                None => Term::from_field_text(f.all, word),
            };
            Box::new(FuzzyTermQuery::new(t, *distance, true))
        }
        Node::Bool {
            must,
            should,
            must_not,
        } => {
            let mut clauses: Vec<(Occur, Boxed)> = Vec::new();
            for n in must {
                clauses.push((Occur::Must, translate(n, f)?));
            }
            for n in should {
                clauses.push((Occur::Should, translate(n, f)?));
            }
            for n in must_not {
                // tantivy probes an exclusion backward (see `Forward`).
                clauses.push((Occur::MustNot, Box::new(Forward(translate(n, f)?))));
            }
            if must.is_empty() && should.is_empty() {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        }
    })
}

fn term(t: Term) -> Boxed {
    Box::new(TermQuery::new(t, IndexRecordOption::Basic))
}

fn kw_term(field: tantivy::schema::Field, path: &str, value: &KwValue) -> Term {
    let mut t = Term::from_field_json_path(field, path, true);
    match value {
        KwValue::Bool(b) => t.append_type_and_fast_value(*b),
        KwValue::Num(Num::I(i)) => t.append_type_and_fast_value(*i),
        KwValue::Num(Num::U(u)) => t.append_type_and_fast_value(*u),
        KwValue::Num(Num::F(x)) => t.append_type_and_fast_value(*x),
        // A term of the `dates` field (schema.rs): seconds as an i64, which orders as time does.
        KwValue::Date(secs) => t.append_type_and_fast_value(*secs),
        KwValue::Str(s) => t.append_type_and_str(s),
    }
    t
}

/// The bytes a JSON string term of `path` starts with (path, end-of-path, type code).
fn json_str_prefix(field: tantivy::schema::Field, path: &str) -> String {
    let mut t = Term::from_field_json_path(field, path, true);
    t.append_type_and_str("");
    String::from_utf8_lossy(t.serialized_value_bytes()).into_owned()
}

fn regex(pattern: &str, field: tantivy::schema::Field) -> Result<Boxed> {
    let q = RegexQuery::from_pattern(&format!("(?s){pattern}"), field).map_err(|e| {
        Error::InvalidQuery {
            reason: format!("pattern too complex: {e}"),
        }
    })?;
    Ok(Box::new(q))
}

/// Escapes `s` as a regex literal.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:x}}}", c as u32));
        }
    }
    out
}

/// A `?`/`*` glob as a regex.
fn glob(pattern: &str) -> String {
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '?' => out.push('.'),
            '*' => out.push_str(".*"),
            c => out.push_str(&escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}
