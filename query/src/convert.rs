//! How a JSON body becomes indexed values: the one definition that the index documents and the
//! in-memory matcher both use, so they cannot disagree.
//!
//! - A body is flattened into `(path, leaf)` pairs: object keys joined with `.`, arrays
//!   transparent (each element is a value of the same path), `null` ignored.
//! - Keyword values: numbers (canonical: a whole number is an integer whatever its JSON
//!   spelling), booleans, dates (strings in RFC 3339 form, [`parse_rfc3339`], kept to the
//!   second) and other strings
//!   of at most [`MAX_KEYWORD_BYTES`] bytes.
//! - Text: every string, tokenized by [`text_analyzer`].
//! - Words: the tokens of each string that has no keyword value ([`long_text`]: over
//!   [`MAX_KEYWORD_BYTES`] and not a date), per path and without positions, so that a term of
//!   one word (`description:python`) matches a word of such a string.

use std::cmp::Ordering;

use serde_json::{Map, Value};
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

/// An instant read from an RFC 3339 date-time: seconds since the Unix epoch and the
/// nanoseconds within that second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    pub secs: i64,
    /// Nanoseconds within the second, below 10⁹.
    pub nanos: u32,
}

impl UnixTime {
    /// Microseconds since the epoch, rounded down.
    pub fn micros(self) -> i128 {
        i128::from(self.secs) * 1_000_000 + i128::from(self.nanos / 1000)
    }
}

/// Why a string is not an RFC 3339 date-time ([`parse_rfc3339`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time: {reason}")]
pub struct DateError {
    reason: String,
}

impl DateError {
    /// What is wrong with the string, e.g. "february 2026 has 28 days, not 30".
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

fn date_error(reason: impl Into<String>) -> DateError {
    DateError {
        reason: reason.into(),
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap_year(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day since 1970-01-01 (negative before
/// it); the calendar [`parse_rfc3339`] reads.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats microseconds since the Unix epoch as RFC 3339 in UTC with six fraction digits,
/// `2026-01-02T03:04:05.000006Z`: the inverse of [`parse_rfc3339`] for every time from 1970 to
/// 9999 (whole microseconds, so `parse_rfc3339(&format_rfc3339(t))?.micros() == t`). Later
/// times (beyond RFC 3339's four-digit years) print their year in full.
pub fn format_rfc3339(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Reads an RFC 3339 date-time (RFC 3339 §5.6). This is the one definition of which strings are
/// dates, for the index, the matcher, `_updated` bounds and the CLI's times:
///
/// - `YYYY-MM-DD`, then `T`, `t` or a space, then `HH:MM:SS`, an optional fraction (`.` and one
///   or more digits; digits past the ninth are ignored), then `Z`, `z` or an offset `+HH:MM` /
///   `-HH:MM` (hours 00–23, minutes 00–59; `-00:00` is UTC). Nothing before or after.
/// - Years 0000–9999 of the proleptic Gregorian calendar (0000 is a leap year); the day must
///   exist in its month (`2026-02-30` is an error); hours 00–23, minutes 00–59, seconds 00–59.
/// - Second 60 is a leap second: accepted only where one can be, at 23:59:60 UTC on the last day
///   of a month (after applying the offset), and read as the last nanosecond of 23:59:59, so it
///   orders after every other instant of that second and before the next day.
/// - The offset may move the instant outside years 0000–9999 in UTC
///   (`0000-01-01T00:00:00+01:00`); it is still a date.
pub fn parse_rfc3339(s: &str) -> Result<UnixTime, DateError> {
    let b = s.as_bytes();
    let shape = || date_error("expected the form 2026-01-02T03:04:05Z");
    let num = |from: usize, len: usize| -> Result<i64, DateError> {
        let digits = b.get(from..from + len).ok_or_else(shape)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(shape());
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(shape());
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(date_error("a fraction needs digits after the '.'"));
        }
        let mut scale = 100_000_000;
        for &c in &b[at..at + digits.min(9)] {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
        }
        at += digits;
    }
    let offset = match &b[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(date_error(format!(
                    "offset {}:{} is out of range",
                    &s[at..at + 3],
                    &s[at + 4..]
                )));
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(shape()),
    };
    if !(1..=12).contains(&mo) {
        return Err(date_error(format!("there is no month {mo:02}")));
    }
    let month_days = days_in_month(y, mo);
    if !(1..=month_days).contains(&d) {
        return Err(date_error(format!(
            "{} {y:04} has {month_days} days, not {d}",
            MONTHS[(mo - 1) as usize]
        )));
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(date_error(format!(
            "there is no time of day {h:02}:{mi:02}:{sec:02}"
        )));
    }
    let local = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec.min(59);
    let secs = local - offset;
    if sec == 60 {
        let (uy, um, ud) = civil_from_days(secs.div_euclid(86_400));
        if secs.rem_euclid(86_400) != 86_399 || ud != days_in_month(uy, um) {
            return Err(date_error(
                "a leap second is 23:59:60 UTC on the last day of a month",
            ));
        }
        nanos = 999_999_999;
    }
    Ok(UnixTime { secs, nanos })
}

/// Seconds since the epoch of an RFC 3339 string (fractions dropped), if it is one
/// ([`parse_rfc3339`]).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    parse_rfc3339(s).ok().map(|t| t.secs)
}

/// Microseconds since the epoch of an RFC 3339 string, for `_updated`.
pub(crate) fn parse_date_micros(s: &str) -> Result<i128, DateError> {
    parse_rfc3339(s).map(UnixTime::micros)
}

/// Earliest and latest second [`format_date`] writes in UTC (years 0000 to 9999).
const FIRST_UTC_SECOND: i64 = -62_167_219_200;
const LAST_UTC_SECOND: i64 = 253_402_300_799;

/// Writes seconds since the epoch in RFC 3339 form, such that [`parse_date`] reads them back:
/// in UTC (`Z`) for years 0000 to 9999, else with the offset (at most 23:59) that brings the
/// local time into those years. `None` for an instant no RFC 3339 string can name.
pub(crate) fn format_date(secs: i64) -> Option<String> {
    let offset = if secs < FIRST_UTC_SECOND {
        23 * 3600 + 59 * 60
    } else if secs > LAST_UTC_SECOND {
        -(23 * 3600 + 59 * 60)
    } else {
        0
    };
    let local = secs.checked_add(offset)?;
    if !(FIRST_UTC_SECOND..=LAST_UTC_SECOND).contains(&local) {
        return None;
    }
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let t = local.rem_euclid(86_400);
    let zone = match offset {
        0 => "Z".to_owned(),
        o => format!(
            "{}{:02}:{:02}",
            if o < 0 { '-' } else { '+' },
            o.abs() / 3600,
            o.abs() / 60 % 60
        ),
    };
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{zone}",
        t / 3600,
        t / 60 % 60,
        t % 60
    ))
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

/// The string of a leaf that is searchable by its words: a string without a keyword value
/// (longer than [`MAX_KEYWORD_BYTES`] and not a date). A term whose value is one word also
/// matches a word of it.
pub(crate) fn long_text(leaf: &Value) -> Option<&str> {
    match leaf {
        Value::String(s) if keyword(leaf).is_none() => Some(s),
        _ => None,
    }
}

/// The word a term value stands for on a [`long_text`] string: its only token, if
/// [`text_analyzer`] makes exactly one of it (`"Python"` is `python`; `"web framework"` is
/// no word).
pub(crate) fn single_word(analyzer: &mut TextAnalyzer, value: &str) -> Option<String> {
    let mut stream = analyzer.token_stream(value);
    let first = stream.next()?.text.clone();
    match stream.next() {
        Some(_) => None,
        None => Some(first),
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

    #[test]
    fn format_rfc3339_is_the_inverse_of_parse_rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_rfc3339(1_767_225_600_000_006),
            "2026-01-01T00:00:00.000006Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        for micros in [
            0u64,
            1,
            951_782_400_000_000,
            1_764_000_000_123_456,
            253_402_300_799_999_999,
        ] {
            let back = parse_rfc3339(&format_rfc3339(micros)).unwrap().micros();
            assert_eq!(back, i128::from(micros));
        }
        // Past year 9999 the year is printed in full; nothing panics at the end of u64.
        let last = format_rfc3339(u64::MAX);
        assert!(last.find('-') == Some(6) && last.ends_with('Z'), "{last}");
    }
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
    fn rfc3339_dates_of_every_form() {
        let secs = |s: &str| parse_rfc3339(s).map(|t| t.secs);
        // Years 0000 and 9999, the ends tantivy's nanosecond dates cannot hold.
        assert_eq!(secs("0000-01-01T00:00:00Z"), Ok(-62_167_219_200));
        assert_eq!(secs("9999-12-31T23:59:59Z"), Ok(253_402_300_799));
        assert_eq!(secs("1600-06-01T00:00:00Z"), Ok(-11_662_963_200));
        // Offsets, which may leave years 0000-9999 in UTC; lowercase and space separators.
        assert_eq!(
            secs("0000-01-01T00:00:00+01:00"),
            Ok(-62_167_219_200 - 3600)
        );
        assert_eq!(
            secs("9999-12-31T23:59:59-23:59"),
            Ok(253_402_300_799 + 86_340)
        );
        assert_eq!(secs("2026-01-01t01:00:00+01:00"), Ok(1_767_225_600));
        assert_eq!(secs("2026-01-01 00:00:00z"), Ok(1_767_225_600));
        assert_eq!(secs("2026-01-01T00:00:00-00:00"), Ok(1_767_225_600));
        // Fractions: nanoseconds kept, digits past the ninth ignored; seconds round down.
        let t = parse_rfc3339("1969-12-31T23:59:59.9999999999Z").unwrap();
        assert_eq!((t.secs, t.nanos, t.micros()), (-1, 999_999_999, -1));
        // Leap seconds: 23:59:60 UTC on a month's last day, read as the end of 23:59:59.
        let leap = parse_rfc3339("2016-12-31T23:59:60Z").unwrap();
        assert_eq!((leap.secs, leap.nanos), (1_483_228_799, 999_999_999));
        assert_eq!(secs("2017-01-01T08:59:60+09:00"), Ok(1_483_228_799));
        assert_eq!(secs("2026-06-30t23:59:60.5z"), Ok(1_782_863_999));
        for (bad, why) in [
            ("2026-02-30T00:00:00Z", "february 2026 has 28 days, not 30"),
            ("2100-02-29T00:00:00Z", "february 2100 has 28 days, not 29"),
            ("2026-13-01T00:00:00Z", "there is no month 13"),
            ("2026-00-01T00:00:00Z", "there is no month 00"),
            ("2026-04-31T00:00:00Z", "april 2026 has 30 days, not 31"),
            ("2026-01-01T24:00:00Z", "there is no time of day 24:00:00"),
            (
                "2026-01-01T12:00:60Z",
                "a leap second is 23:59:60 UTC on the last day of a month",
            ),
            (
                "2026-01-30T23:59:60Z",
                "a leap second is 23:59:60 UTC on the last day of a month",
            ),
            ("2026-01-01T00:00:00+24:00", "offset +24:00 is out of range"),
            (
                "2026-01-01T00:00:00.Z",
                "a fraction needs digits after the '.'",
            ),
        ] {
            assert_eq!(
                parse_rfc3339(bad).map_err(|e| e.reason().to_owned()),
                Err(why.into())
            );
        }
        for not in [
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-01-01X00:00:00Z",
            "+2026-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-01-01T00:00:00Zx",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00+01:0é",
            "2026-01-01T00:00:0éZ",
            "２026-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(not).is_err(), "{not}");
        }
        assert_eq!(
            parse_rfc3339("2026-02-30T00:00:00Z")
                .unwrap_err()
                .to_string(),
            "not an RFC 3339 date-time: february 2026 has 28 days, not 30"
        );
    }

    #[test]
    fn formatted_dates_read_back() {
        for s in [
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
            "0000-01-01T00:00:00+23:59",
            "1677-09-21T00:12:43Z",
            "1970-01-01T00:00:00Z",
            "2262-04-11T23:47:17Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-23:59",
        ] {
            let secs = parse_date(s).unwrap();
            let written = format_date(secs).unwrap();
            assert_eq!(parse_date(&written), Some(secs), "{s} -> {written}");
        }
        assert_eq!(format_date(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            format_date(253_402_300_799 + 60).as_deref(),
            Some("9999-12-31T00:01:59-23:59")
        );
        assert_eq!(format_date(i64::MIN), None);
        assert_eq!(format_date(i64::MAX), None);
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
        assert_eq!(long_text(&json!(long)), Some(long.as_str()));
        assert_eq!(long_text(&json!("short")), None);
        // A date of any length has a keyword (digits past the ninth of a fraction are read).
        let long_date = format!("2026-01-01T00:00:00.{}Z", "0".repeat(MAX_KEYWORD_BYTES));
        assert_eq!(long_text(&json!(long_date)), None);
        let mut analyzer = text_analyzer();
        assert_eq!(
            single_word(&mut analyzer, "Python!").as_deref(),
            Some("python")
        );
        assert_eq!(single_word(&mut analyzer, "web framework"), None);
        assert_eq!(single_word(&mut analyzer, "!!"), None);
        assert_eq!(single_word(&mut analyzer, &"x".repeat(41)), None);
        assert!(path_at_or_below("a.b", "a") && !path_at_or_below("ab", "a"));
    }
}
