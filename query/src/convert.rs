//! How a JSON body becomes indexed values: the one definition that the index documents and the
//! in-memory matcher both use, so they cannot disagree.
//!
//! - A body is flattened into `(path, leaf)` pairs: object keys joined with `.`, arrays
//!   transparent (each element is a value of the same path), `null` ignored.
//! - Keyword values: numbers (canonical: a whole number is an integer whatever its JSON
//!   spelling), booleans, dates (strings in RFC 3339 form, kept to the second) and other strings
//!   of at most [`MAX_KEYWORD_BYTES`] bytes.
//! - Text: every string, tokenized by [`text_analyzer`].

use std::cmp::Ordering;

use serde_json::{Map, Value};
use tantivy::time::format_description::well_known::Rfc3339;
use tantivy::time::OffsetDateTime;
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};

use crate::MAX_KEYWORD_BYTES;

/// A number in canonical form: `I` if it is whole and fits i64, else `U` if whole and fits u64,
/// else `F`. Equal numbers have equal canonical forms.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    I(i64),
    U(u64),
    F(f64),
}

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

impl Num {
    pub(crate) fn from_f64(f: f64) -> Num {
        if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
            Num::I(f as i64)
        } else if f.fract() == 0.0 && (0.0..TWO_64).contains(&f) {
            Num::U(f as u64)
        } else {
            Num::F(f)
        }
    }

    pub(crate) fn from_u64(u: u64) -> Num {
        match i64::try_from(u) {
            Ok(i) => Num::I(i),
            Err(_) => Num::U(u),
        }
    }

    pub(crate) fn from_json(n: &serde_json::Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::I(i)
        } else if let Some(u) = n.as_u64() {
            Num::U(u)
        } else {
            Num::from_f64(n.as_f64().unwrap_or(0.0))
        }
    }

    fn as_i128(self) -> Option<i128> {
        match self {
            Num::I(i) => Some(i.into()),
            Num::U(u) => Some(u.into()),
            Num::F(_) => None,
        }
    }

    /// Exact numeric order (no rounding through f64 for integers).
    pub(crate) fn total_cmp(self, other: Num) -> Ordering {
        match (self.as_i128(), other.as_i128()) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(a), None) => cmp_int_float(a, other.as_f64()),
            (None, Some(b)) => cmp_int_float(b, self.as_f64()).reverse(),
            (None, None) => self.as_f64().total_cmp(&other.as_f64()),
        }
    }

    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::U(u) => u as f64,
            Num::F(f) => f,
        }
    }
}

/// Compares an integer with a float exactly.
fn cmp_int_float(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Less;
    }
    if f >= 1.7e38 {
        return Ordering::Less;
    }
    if f <= -1.7e38 {
        return Ordering::Greater;
    }
    let floor = f.floor();
    let fi = floor as i128;
    match i.cmp(&fi) {
        Ordering::Equal if f > floor => Ordering::Less,
        o => o,
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        self.total_cmp(*other) == Ordering::Equal
    }
}

/// A keyword value of a body path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kw<'a> {
    Bool(bool),
    Num(Num),
    /// Seconds since the Unix epoch.
    Date(i64),
    Str(&'a str),
}

/// Seconds since the epoch of an RFC 3339 string (fractions dropped), if it is one.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    // Cheap rejection first: every RFC 3339 date-time has `-` at byte 4 and `T`/`t`/` ` at 10.
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(dt.unix_timestamp())
}

/// Microseconds since the epoch of an RFC 3339 string, for `_updated`.
pub(crate) fn parse_date_micros(s: &str) -> Option<i128> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(dt.unix_timestamp_nanos() / 1000)
}

/// The keyword value of a JSON leaf, if it has one.
pub(crate) fn keyword(leaf: &Value) -> Option<Kw<'_>> {
    match leaf {
        Value::Bool(b) => Some(Kw::Bool(*b)),
        Value::Number(n) => Some(Kw::Num(Num::from_json(n))),
        Value::String(s) => {
            if let Some(secs) = parse_date(s) {
                Some(Kw::Date(secs))
            } else if s.len() <= MAX_KEYWORD_BYTES {
                Some(Kw::Str(s))
            } else {
                None
            }
        }
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The lowercase form case-insensitive matching compares.
pub(crate) fn lowercase(s: &str) -> String {
    s.to_lowercase()
}

/// The analyzer of full-text fields: split on non-alphanumeric characters, drop tokens over 40
/// bytes, lowercase. The index registers the same analyzer under [`TEXT_TOKENIZER`].
pub(crate) fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .build()
}

/// Name under which the index registers [`text_analyzer`].
pub(crate) const TEXT_TOKENIZER: &str = "strata_text";

/// The tokens of `text` with their positions.
pub(crate) fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push((token.position, token.text.clone()));
    }
    out
}

/// Deepest level of a body that is flattened (the body itself is level 1): what serde_json
/// parses. The store refuses deeper bodies and never reads one from its log; a deeper value
/// handed to [`crate::Matcher::matches`] or [`crate::Flat::new`] directly has its parts below
/// this level left out, the same way for the index and the matcher, and never overflows the
/// stack.
pub(crate) const MAX_BODY_DEPTH: usize = 128;

/// Calls `f(path, leaf)` for every non-null scalar of `body`, with keys joined by `.`, down to
/// [`MAX_BODY_DEPTH`].
///
/// Keys holding a NUL byte are skipped and byte 0x01 reads as a `.`, as in tantivy's JSON paths.
pub(crate) fn for_each_leaf<'a>(body: &'a Value, f: &mut impl FnMut(&str, &'a Value)) {
    let mut path = String::new();
    if let Value::Object(map) = body {
        walk_object(map, &mut path, 1, f);
    }
}

/// `map` is at level `depth`; the walk checks the depth before it recurses.
fn walk_object<'a>(
    map: &'a Map<String, Value>,
    path: &mut String,
    depth: usize,
    f: &mut impl FnMut(&str, &'a Value),
) {
    for (key, value) in map {
        if key.contains('\0') {
            continue;
        }
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        if key.contains('\u{1}') {
            path.push_str(&key.replace('\u{1}', "."));
        } else {
            path.push_str(key);
        }
        walk_value(value, path, depth + 1, f);
        path.truncate(len);
    }
}

/// `value` is at level `depth` (a container there is left out past [`MAX_BODY_DEPTH`]).
fn walk_value<'a>(
    value: &'a Value,
    path: &mut String,
    depth: usize,
    f: &mut impl FnMut(&str, &'a Value),
) {
    match value {
        Value::Null => {}
        Value::Array(_) | Value::Object(_) if depth > MAX_BODY_DEPTH => {}
        Value::Array(items) => {
            for item in items {
                walk_value(item, path, depth + 1, f);
            }
        }
        Value::Object(map) => walk_object(map, path, depth, f),
        leaf => f(path, leaf),
    }
}

/// Whether `path` is `prefix` or lies below it.
pub(crate) fn path_at_or_below(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_canonical_and_compare_exactly() {
        assert!(matches!(
            Num::from_json(&json!(5.0).as_number().unwrap().clone()),
            Num::I(5)
        ));
        assert!(matches!(Num::from_f64(TWO_63), Num::U(u) if u == 1 << 63));
        assert!(matches!(Num::from_f64(0.5), Num::F(_)));
        assert_eq!(Num::I(5), Num::F(5.0));
        assert_eq!(Num::I(i64::MAX).total_cmp(Num::F(TWO_63)), Ordering::Less);
        assert_eq!(Num::I(3).total_cmp(Num::F(2.5)), Ordering::Greater);
        assert_eq!(Num::I(-3).total_cmp(Num::F(-2.5)), Ordering::Less);
        assert_eq!(Num::U(u64::MAX).total_cmp(Num::I(-1)), Ordering::Greater);
    }

    #[test]
    fn leaves_are_flattened_with_dotted_paths() {
        let body = json!({"a": {"b": [1, {"c": "x"}, null]}, "d.e": true, "n": null});
        let mut seen = Vec::new();
        for_each_leaf(&body, &mut |p, v| seen.push((p.to_owned(), v.clone())));
        assert_eq!(
            seen,
            vec![
                ("a.b".to_owned(), json!(1)),
                ("a.b.c".to_owned(), json!("x")),
                ("d.e".to_owned(), json!(true)),
            ]
        );
    }

    // A value nested 100,000 levels (which `Matcher::matches` and `Flat::new` accept from a
    // caller) overflowed the stack of the recursive walk.
    #[test]
    fn leaves_below_the_depth_limit_are_left_out_without_recursion() {
        let deep = |levels: usize| {
            let mut v = json!({"leaf": 1});
            for _ in 1..levels {
                let mut outer = Map::new();
                outer.insert("x".to_owned(), Value::Array(vec![v]));
                v = Value::Object(outer);
            }
            v
        };
        let count = |body: &Value| {
            let mut n = 0;
            for_each_leaf(body, &mut |_, _| n += 1);
            n
        };
        // An object and an array per level: the leaf of 64 levels is at depth 127.
        let shallow = deep(64);
        assert_eq!(count(&shallow), 1);
        let too_deep = deep(65);
        assert_eq!(count(&too_deep), 0);
        let huge = deep(100_000);
        assert_eq!(count(&huge), 0);
        // Dropping it would recurse as deep: leak it.
        std::mem::forget(huge);
    }

    #[test]
    fn dates_and_long_strings() {
        assert_eq!(
            keyword(&json!("2026-01-01T00:00:00.9Z")),
            Some(Kw::Date(1_767_225_600))
        );
        assert_eq!(keyword(&json!("2026-01-01")), Some(Kw::Str("2026-01-01")));
        let long = "x".repeat(MAX_KEYWORD_BYTES + 1);
        assert_eq!(keyword(&json!(long)), None);
        assert!(path_at_or_below("a.b", "a") && !path_at_or_below("ab", "a"));
    }
}
