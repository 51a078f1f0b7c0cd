//! The Lucene-style text syntax.
//!
//! ```text
//! title:"hello world" AND (tags:rust OR tags:go) -draft:true _updated:>=2026-01-01T00:00:00Z
//! ```
//!
//! # Clauses
//!
//! | text | query |
//! | --- | --- |
//! | empty or only whitespace, `*`, `*:*` | [`Query::All`] |
//! | `word` | [`Query::Match`] with no field (every body string) |
//! | `"some words"` | [`Query::Phrase`] with no field |
//! | `word~`, `word~1` | [`Query::Fuzzy`] with no field; the distance is 0, 1 or 2 (default 2) |
//! | `field:value` | [`Query::Term`]: `12` and `-3` are `Int` (`UInt` above `i64::MAX`), `1.5` and `1e3` are `Float`, `true` and `false` are `Bool`, anything else is `Str` |
//! | `field:"some words"` | [`Query::Phrase`] on a body path; a [`Query::Term`] with a `Str` on a system field |
//! | `field:pre*` | [`Query::Prefix`] (one trailing `*` and no other wildcard) |
//! | `field:w?ld*c*rd` | [`Query::Wildcard`] (`?` is one character, `*` any run) |
//! | `field:*` | [`Query::Exists`] |
//! | `field:word~`, `field:word~N` | [`Query::Fuzzy`] (body paths only) |
//! | `field:[a TO b]`, `field:{a TO b}`, `[a TO b}`, `{a TO b]` | [`Query::Range`]: `[`/`]` include the bound, `{`/`}` exclude it, `*` is an open end; `[* TO *]` is [`Query::Exists`] |
//! | `field:>=a`, `field:>a`, `field:<a`, `field:<=a` | [`Query::Range`] with one bound |
//! | `field:(a OR b)` | a group in which every clause is a value of `field`; a disjunction of exact values becomes [`Query::Terms`] |
//!
//! Field names are made of letters, digits, `_`, `-`, `.` and `@`, and are read with
//! [`Field::parse`]: `_seq`, `_id`, `_kind`, `_version` and `_updated` are the system fields,
//! anything else is a dotted body path. The value follows the colon (whitespace between them is
//! allowed, unless the next word is an operator). Within a value, further colons are part of it,
//! so `_updated:>=2026-01-01T00:00:00Z` and `_id:/users/ada` need no quotes.
//!
//! Values and bare words end at whitespace, `)` or the end of the input. A backslash makes the
//! next character literal (`a\:b`, `a\ b`, `\*`, `\(`, `\"`, `\\`); an unescaped `(` or `"`
//! inside a word, and an unescaped `:` in a word without a field, are syntax errors. A value that
//! holds an escape is always a string (`n:\5` is the string `"5"`, where `n:5` is the number).
//! Values of `_id` and `_kind` are always strings. Range bounds are numbers or strings (quoted
//! or bare); an RFC 3339 string such as `2026-01-01T00:00:00Z` stays a string and is compared as
//! a date. Quoted strings take the same backslash escapes.
//!
//! Bare words cannot hold wildcards (a prefix or wildcard query needs a field), and an escaped
//! `*` or `?` cannot appear in a wildcard pattern (the pattern has no escapes).
//!
//! # Operators and precedence
//!
//! - `NOT x`, `!x`, `-x`: not `x`. `+x` is `x` (it must match, as every clause of a conjunction
//!   must). `NOT x` on its own matches everything else; `NOT NOT x` is `x`.
//! - `a AND b`, `a && b`, and plain juxtaposition `a b`: both.
//! - `a OR b`, `a || b`: either.
//! - `( ... )`: grouping, nested up to [`MAX_QUERY_DEPTH`] levels (deeper is
//!   [`Error::QueryTooDeep`]).
//!
//! `NOT` binds tightest, then `AND`, then `OR`: `a b OR NOT c d` is `(a AND b) OR ((NOT c) AND d)`.
//!
//! **Juxtaposition means AND**, unlike Lucene's default of OR: `status:open owner:ada` finds the
//! open documents of `ada`, which is what a filter over a database is expected to do. The same
//! holds inside a field group: `tags:(rust go)` needs both tags, `tags:(rust OR go)` either.
//!
//! The keywords `AND`, `OR` and `NOT` are uppercase only (`and` is a word) and must be followed
//! by whitespace, a parenthesis, a quote or the end; `&&` and `||` likewise (`a&&b` is one word).
//! `!`, `+` and `-` apply to the clause right after them. Inside a field group, `-` followed by a
//! digit starts a negative number, not a negation (`n:(-5 OR 6)`).
//!
//! Conjunctions and disjunctions are flattened: `a AND b AND c` is one [`Query::Bool`] with three
//! `must` clauses, `a AND NOT b` is `must: [a], must_not: [b]`, `a OR b OR c` is one `should`
//! list, and `a OR NOT b` is `should: [a, Bool { must_not: [b] }]`. A `Bool` never mixes `must`
//! and `should` clauses.
//!
//! # Errors
//!
//! A malformed query is [`Error::Syntax`] with the byte offset of the problem, what was expected
//! there and what was found (an excerpt of at most 20 characters, or "end of input"). A text
//! longer than 64 KiB is [`Error::InvalidQuery`]. The parsed query is then checked with
//! [`Query::validate`], whose errors are returned as they are.

use crate::ast::{BoolQuery, Field, Query, Range, Scalar, SystemField};
use crate::error::{Error, Result};
use crate::MAX_QUERY_DEPTH;

#[cfg(test)]
mod tests;

/// Longest accepted query text, in bytes.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Longest excerpt of the input quoted in a syntax error, in characters.
const MAX_FOUND_CHARS: usize = 20;

/// Parses the text syntax into a [`Query`] (see the module documentation for the syntax).
///
/// ```
/// use strata_query::{parse, Query};
/// assert_eq!(
///     parse("tags:rust AND NOT draft:true")?,
///     Query::term("tags", "rust").and_not(Query::term("draft", true)),
/// );
/// assert_eq!(parse("")?, Query::All);
/// assert!(parse("title:").is_err());
/// # Ok::<_, strata_query::Error>(())
/// ```
pub fn parse(text: &str) -> Result<Query> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::InvalidQuery {
            reason: format!(
                "the query text is {} bytes; the limit is {MAX_TEXT_BYTES}",
                text.len()
            ),
        });
    }
    let mut parser = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Ok(Query::All);
    }
    let query = parser.parse_or(None)?;
    parser.skip_ws();
    if !parser.at_end() {
        // `parse_or` stops only at the end or at a `)`.
        return Err(parser.syntax(
            parser.pos,
            "the end of input (this `)` has no `(` to close)",
        ));
    }
    query.validate()?;
    Ok(query)
}

/// A keyword operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
}

/// The keyword operator at the start of `rest`, and its spelling.
fn keyword_at(rest: &str) -> Option<(Keyword, &'static str)> {
    const KEYWORDS: [(&str, Keyword); 5] = [
        ("AND", Keyword::And),
        ("&&", Keyword::And),
        ("OR", Keyword::Or),
        ("||", Keyword::Or),
        ("NOT", Keyword::Not),
    ];
    KEYWORDS.into_iter().find_map(|(spelling, keyword)| {
        let after = rest.strip_prefix(spelling)?;
        after
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | ')' | '"'))
            .then_some((keyword, spelling))
    })
}

/// Whether `c` may appear in a field name.
fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')
}

/// Whether `c` (or the end, `None`) ends a value.
fn ends_value(c: Option<char>) -> bool {
    c.is_none_or(|c| c.is_whitespace() || c == ')')
}

/// What a syntax error found at `position`: an excerpt of the next token, or "end of input".
fn found_at(text: &str, position: usize) -> String {
    let rest = text.get(position..).unwrap_or_default();
    let Some(first) = rest.chars().next() else {
        return "end of input".to_owned();
    };
    if first.is_whitespace() {
        return "whitespace".to_owned();
    }
    if matches!(first, '(' | ')' | '"' | '[' | ']' | '{' | '}') {
        return format!("`{first}`");
    }
    let mut token = String::new();
    for (i, c) in rest
        .chars()
        .take_while(|&c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"'))
        .enumerate()
    {
        if i == MAX_FOUND_CHARS {
            token.push('…');
            break;
        }
        token.push(c);
    }
    format!("`{token}`")
}

/// At most [`MAX_FOUND_CHARS`] characters of `name`, for messages.
fn excerpt(name: &str) -> String {
    let mut out: String = name.chars().take(MAX_FOUND_CHARS).collect();
    if out.len() < name.len() {
        out.push('…');
    }
    out
}

/// Reads a number in JSON's syntax; `None` for anything else (and for numbers too large for an
/// `f64`).
fn number(text: &str) -> Option<Scalar> {
    let bytes = text.as_bytes();
    let digits = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    match bytes.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i),
        _ => return None,
    }
    let mut whole = true;
    if bytes.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
        whole = false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
        whole = false;
    }
    if i != bytes.len() {
        return None;
    }
    if whole {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Scalar::Int(n));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(Scalar::UInt(n));
        }
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then_some(Scalar::Float(f))
}

/// Whether the values of `field` are always strings.
fn string_field(field: &Field) -> bool {
    matches!(field, Field::System(SystemField::Id | SystemField::Kind))
}

/// `q` negated: `NOT NOT x` is `x`.
fn negate(q: Query) -> Query {
    match q {
        Query::Bool(b) if b.must.is_empty() && b.should.is_empty() && b.must_not.len() == 1 => {
            match <[Query; 1]>::try_from(b.must_not) {
                Ok([inner]) => inner,
                Err(must_not) => Query::Bool(BoolQuery {
                    must_not: vec![Query::Bool(BoolQuery {
                        must_not,
                        ..BoolQuery::default()
                    })],
                    ..BoolQuery::default()
                }),
            }
        }
        q => Query::Bool(BoolQuery {
            must_not: vec![q],
            ..BoolQuery::default()
        }),
    }
}

/// The conjunction of `items`, merging conjunctions among them.
fn and_all(items: Vec<Query>) -> Query {
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or(Query::All);
    }
    let mut out = BoolQuery::default();
    for q in items {
        match q {
            Query::Bool(b)
                if b.should.is_empty() && !(b.must.is_empty() && b.must_not.is_empty()) =>
            {
                out.must.extend(b.must);
                out.must_not.extend(b.must_not);
            }
            q => out.must.push(q),
        }
    }
    Query::Bool(out)
}

/// The disjunction of `items`, merging disjunctions among them.
fn or_all(items: Vec<Query>) -> Query {
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or(Query::All);
    }
    let mut out = BoolQuery::default();
    for q in items {
        match q {
            Query::Bool(b)
                if b.must.is_empty() && b.must_not.is_empty() && !b.should.is_empty() =>
            {
                out.should.extend(b.should);
            }
            q => out.should.push(q),
        }
    }
    Query::Bool(out)
}

/// A disjunction of exact values of `field` as one [`Query::Terms`]; anything else as it is.
fn collapse_terms(q: Query, field: &Field) -> Query {
    let exact_value = |q: &Query| match q {
        Query::Term {
            field: f,
            case_insensitive: false,
            ..
        }
        | Query::Terms { field: f, .. } => f == field,
        _ => false,
    };
    match q {
        Query::Bool(b)
            if b.must.is_empty()
                && b.must_not.is_empty()
                && !b.should.is_empty()
                && b.should.iter().all(exact_value) =>
        {
            let mut values = Vec::with_capacity(b.should.len());
            for q in b.should {
                match q {
                    Query::Term { value, .. } => values.push(value),
                    Query::Terms { values: v, .. } => values.extend(v),
                    _ => {}
                }
            }
            Query::Terms {
                field: field.clone(),
                values,
            }
        }
        q => q,
    }
}

/// A bare word or value, unescaped.
struct Word {
    /// Byte offset of its first character.
    start: usize,
    /// The characters, escapes resolved; wildcards are kept as `*` and `?`.
    text: String,
    /// Byte offsets in `text` of the unescaped `*` and `?`.
    wildcards: Vec<usize>,
    /// Whether it held an escape.
    escaped: bool,
    /// Whether it held an escaped `*` or `?`.
    literal_wildcard: bool,
    /// The byte offset of a fuzzy suffix `~N` and its distance.
    fuzzy: Option<(usize, u8)>,
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// Open parentheses.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character after the next one.
    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips whitespace; whether there was any.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        self.pos > start
    }

    fn syntax(&self, position: usize, expected: impl Into<String>) -> Error {
        Error::Syntax {
            position,
            expected: expected.into(),
            found: found_at(self.text, position),
        }
    }

    /// After an operator: fails unless a clause follows.
    fn expect_operand(&mut self, operator: &str) -> Result<()> {
        self.skip_ws();
        let missing = match self.peek() {
            None | Some(')') => true,
            Some(_) => matches!(
                keyword_at(self.rest()),
                Some((Keyword::And | Keyword::Or, _))
            ),
        };
        if missing {
            return Err(self.syntax(self.pos, format!("a query after `{operator}`")));
        }
        Ok(())
    }

    /// `and_expr (OR and_expr)*`; stops at the end or at a `)`.
    fn parse_or(&mut self, ctx: Option<&Field>) -> Result<Query> {
        let mut items = vec![self.parse_and(ctx)?];
        loop {
            self.skip_ws();
            let Some((Keyword::Or, spelling)) = keyword_at(self.rest()) else {
                break;
            };
            self.pos += spelling.len();
            self.expect_operand(spelling)?;
            items.push(self.parse_and(ctx)?);
        }
        Ok(or_all(items))
    }

    /// `unary ([AND] unary)*`; stops at the end, a `)` or an `OR`.
    fn parse_and(&mut self, ctx: Option<&Field>) -> Result<Query> {
        let mut items = vec![self.parse_unary(ctx)?];
        loop {
            self.skip_ws();
            if matches!(self.peek(), None | Some(')')) {
                break;
            }
            match keyword_at(self.rest()) {
                Some((Keyword::Or, _)) => break,
                Some((Keyword::And, spelling)) => {
                    self.pos += spelling.len();
                    self.expect_operand(spelling)?;
                }
                _ => {}
            }
            items.push(self.parse_unary(ctx)?);
        }
        Ok(and_all(items))
    }

    /// `(NOT | ! | - | +)* primary`, read in a loop so that long chains do not recurse.
    fn parse_unary(&mut self, ctx: Option<&Field>) -> Result<Query> {
        let mut negated = false;
        loop {
            self.skip_ws();
            let (spelling, negates) = match keyword_at(self.rest()) {
                Some((Keyword::Not, spelling)) => (spelling, true),
                _ => match self.peek() {
                    Some('!') => ("!", true),
                    Some('-')
                        if !(ctx.is_some() && self.peek2().is_some_and(|c| c.is_ascii_digit())) =>
                    {
                        ("-", true)
                    }
                    Some('+') => ("+", false),
                    _ => break,
                },
            };
            self.pos += spelling.len();
            negated ^= negates;
            self.expect_operand(spelling)?;
        }
        let q = self.parse_primary(ctx)?;
        Ok(if negated { negate(q) } else { q })
    }

    /// A group or a clause; in a field group (`ctx`), a value of that field.
    fn parse_primary(&mut self, ctx: Option<&Field>) -> Result<Query> {
        let start = self.pos;
        match self.peek() {
            None | Some(')') => return Err(self.syntax(start, "a query")),
            Some('(') => return self.parse_group(ctx),
            Some(_) => {}
        }
        if let Some((Keyword::And | Keyword::Or, _)) = keyword_at(self.rest()) {
            return Err(self.syntax(start, "a query"));
        }
        if let Some(field) = ctx {
            return self.parse_value(field);
        }
        let rest = self.rest();
        match self.peek() {
            Some('"') => {
                let text = self.quoted()?;
                self.end_of_value()?;
                if text.is_empty() {
                    return Err(self.syntax(start, "a non-empty phrase"));
                }
                return Ok(Query::Phrase { field: None, text });
            }
            Some('*') => {
                for all in ["*", "*:*"] {
                    if rest.starts_with(all) && ends_value(rest[all.len()..].chars().next()) {
                        self.pos += all.len();
                        return Ok(Query::All);
                    }
                }
            }
            Some('[' | '{' | '<' | '>') => {
                return Err(self.syntax(
                    start,
                    "a field before a range (`field:[a TO b]`, `field:>a`)",
                ))
            }
            _ => {}
        }
        let name_len = rest.find(|c| !is_field_char(c)).unwrap_or(rest.len());
        if name_len > 0 && rest[name_len..].starts_with(':') {
            let name = &rest[..name_len];
            let field = Field::parse(name).map_err(|e| match e {
                Error::InvalidField { reason, .. } => {
                    self.syntax(start, format!("a valid field name ({reason})"))
                }
                e => e,
            })?;
            self.pos += name_len + 1;
            return self.parse_field_value(&field, name);
        }
        let word = self.scan_word(false)?;
        if let Some((_, distance)) = word.fuzzy {
            if word.text.is_empty() {
                return Err(self.syntax(start, "a word before `~`"));
            }
            if !word.wildcards.is_empty() {
                return Err(self.syntax(start, "a word without wildcards before `~`"));
            }
            return Ok(Query::Fuzzy {
                field: None,
                word: word.text,
                distance,
            });
        }
        if !word.wildcards.is_empty() {
            return Err(self.syntax(
                start,
                "a field before a wildcard (`field:pre*`), or `\\*` and `\\?` for literal ones",
            ));
        }
        Ok(Query::Match {
            field: None,
            text: word.text,
        })
    }

    /// `( or_expr )`; in a field group, every clause is a value of the field.
    fn parse_group(&mut self, ctx: Option<&Field>) -> Result<Query> {
        let open = self.pos;
        if self.depth >= MAX_QUERY_DEPTH {
            return Err(Error::QueryTooDeep {
                limit: MAX_QUERY_DEPTH,
            });
        }
        self.depth += 1;
        self.pos += 1; // `(`
        self.skip_ws();
        let q = self.parse_or(ctx)?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(self.syntax(self.pos, format!("`)` to close the `(` at byte {open}")));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(match ctx {
            Some(field) => collapse_terms(q, field),
            None => q,
        })
    }

    /// What follows `field:`.
    fn parse_field_value(&mut self, field: &Field, name: &str) -> Result<Query> {
        let spaced = self.skip_ws();
        let missing = match self.peek() {
            None | Some(')') => true,
            Some(_) => spaced && keyword_at(self.rest()).is_some(),
        };
        if missing {
            return Err(self.syntax(self.pos, format!("a value after `{}:`", excerpt(name))));
        }
        if self.peek() == Some('(') {
            return self.parse_group(Some(field));
        }
        self.parse_value(field)
    }

    /// One value of `field`: a quoted string, a range, a comparison, `*` or a bare value.
    fn parse_value(&mut self, field: &Field) -> Result<Query> {
        let start = self.pos;
        match self.peek() {
            Some('"') => {
                let text = self.quoted()?;
                self.end_of_value()?;
                return match field {
                    Field::Body(_) if text.is_empty() => {
                        Err(self.syntax(start, "a non-empty phrase"))
                    }
                    Field::Body(path) => Ok(Query::Phrase {
                        field: Some(path.clone()),
                        text,
                    }),
                    Field::System(_) => Ok(Query::Term {
                        field: field.clone(),
                        value: Scalar::Str(text),
                        case_insensitive: false,
                    }),
                };
            }
            Some('[' | '{') => return self.parse_range(field),
            Some('<' | '>') => return self.parse_comparison(field),
            Some('*') if ends_value(self.peek2()) => {
                self.pos += 1;
                return Ok(Query::Exists {
                    field: field.clone(),
                });
            }
            _ => {}
        }
        let word = self.scan_word(true)?;
        if let Some((tilde, distance)) = word.fuzzy {
            let Field::Body(path) = field else {
                return Err(self.syntax(
                    tilde,
                    format!(
                        "a body field before a fuzzy match (`{}` is a system field)",
                        field.name()
                    ),
                ));
            };
            if word.text.is_empty() {
                return Err(self.syntax(start, "a word before `~`"));
            }
            if !word.wildcards.is_empty() {
                return Err(self.syntax(start, "a word without wildcards before `~`"));
            }
            return Ok(Query::Fuzzy {
                field: Some(path.clone()),
                word: word.text,
                distance,
            });
        }
        let mut text = word.text;
        match word.wildcards.as_slice() {
            [] => {}
            [last] if *last + 1 == text.len() && text.ends_with('*') && text.len() > 1 => {
                text.pop();
                return Ok(Query::Prefix {
                    field: field.clone(),
                    prefix: text,
                });
            }
            _ => {
                if word.literal_wildcard {
                    return Err(self.syntax(
                        start,
                        "a wildcard pattern without an escaped `*` or `?` (patterns have no escapes)",
                    ));
                }
                return Ok(Query::Wildcard {
                    field: field.clone(),
                    pattern: text,
                });
            }
        }
        let value = if word.escaped || string_field(field) {
            Scalar::Str(text)
        } else {
            match text.as_str() {
                "true" => Scalar::Bool(true),
                "false" => Scalar::Bool(false),
                _ => number(&text).unwrap_or(Scalar::Str(text)),
            }
        };
        Ok(Query::Term {
            field: field.clone(),
            value,
            case_insensitive: false,
        })
    }

    /// `[a TO b]`, `{a TO b}` or a mix; `*` is an open end.
    fn parse_range(&mut self, field: &Field) -> Result<Query> {
        let lower_included = self.bump() == Some('[');
        self.skip_ws();
        let is_to = |rest: &str| {
            rest.strip_prefix("TO").is_some_and(|after| {
                after
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_whitespace() || matches!(c, ']' | '}'))
            })
        };
        if is_to(self.rest()) {
            return Err(self.syntax(self.pos, "a lower bound or `*`"));
        }
        let lower = self.parse_bound(field, true, "a lower bound or `*`")?;
        let spaced = self.skip_ws();
        if !spaced || !is_to(self.rest()) {
            return Err(self.syntax(self.pos, "`TO`"));
        }
        self.pos += 2;
        self.skip_ws();
        let upper = self.parse_bound(field, true, "an upper bound or `*`")?;
        self.skip_ws();
        let upper_included = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(self.syntax(self.pos, "`]` or `}`")),
        };
        self.pos += 1;
        self.end_of_value()?;
        if lower.is_none() && upper.is_none() {
            return Ok(Query::Exists {
                field: field.clone(),
            });
        }
        let mut range = Range {
            field: field.clone(),
            gt: None,
            gte: None,
            lt: None,
            lte: None,
        };
        if lower_included {
            range.gte = lower;
        } else {
            range.gt = lower;
        }
        if upper_included {
            range.lte = upper;
        } else {
            range.lt = upper;
        }
        Ok(Query::Range(range))
    }

    /// `>=a`, `>a`, `<=a`, `<a`.
    fn parse_comparison(&mut self, field: &Field) -> Result<Query> {
        let operator = ["<=", ">=", "<", ">"]
            .into_iter()
            .find(|op| self.rest().starts_with(op))
            .unwrap_or(">");
        self.pos += operator.len();
        let spaced = self.skip_ws();
        let missing = match self.peek() {
            None | Some(')') => true,
            Some('*') => ends_value(self.peek2()),
            Some(_) => spaced && keyword_at(self.rest()).is_some(),
        };
        if missing {
            return Err(self.syntax(self.pos, format!("a value after `{operator}`")));
        }
        let value = self.parse_bound(field, false, "a value")?;
        self.end_of_value()?;
        let mut range = Range {
            field: field.clone(),
            gt: None,
            gte: None,
            lt: None,
            lte: None,
        };
        let slot = match operator {
            "<=" => &mut range.lte,
            ">=" => &mut range.gte,
            "<" => &mut range.lt,
            _ => &mut range.gt,
        };
        *slot = value;
        Ok(Query::Range(range))
    }

    /// A range bound: a quoted string, a bare number or string, or (in brackets) `*` for none.
    fn parse_bound(
        &mut self,
        field: &Field,
        in_brackets: bool,
        expected: &str,
    ) -> Result<Option<Scalar>> {
        let start = self.pos;
        let ends = |c: Option<char>| ends_value(c) || (in_brackets && matches!(c, Some(']' | '}')));
        match self.peek() {
            c if ends(c) => return Err(self.syntax(start, expected)),
            Some('"') => {
                let text = self.quoted()?;
                if !ends(self.peek()) {
                    return Err(self.syntax(self.pos, "whitespace after a quoted bound"));
                }
                return Ok(Some(Scalar::Str(text)));
            }
            Some('*') if in_brackets && ends(self.peek2()) => {
                self.pos += 1;
                return Ok(None);
            }
            _ => {}
        }
        let mut text = String::new();
        let mut escaped = false;
        while !ends(self.peek()) {
            let at = self.pos;
            match self.bump() {
                Some('\\') => {
                    escaped = true;
                    match self.bump() {
                        Some(c) => text.push(c),
                        None => return Err(self.syntax(at, "a character after `\\`")),
                    }
                }
                Some(c @ ('(' | '"')) => {
                    return Err(self.syntax(
                        at,
                        format!("whitespace before `{c}`, or `\\{c}` for a literal one"),
                    ))
                }
                Some(c) => text.push(c),
                None => break,
            }
        }
        if escaped || string_field(field) {
            return Ok(Some(Scalar::Str(text)));
        }
        Ok(Some(number(&text).unwrap_or(Scalar::Str(text))))
    }

    /// A bare word or value, up to whitespace, `)` or the end. `value`: after a field, where a
    /// `:` is part of the value.
    fn scan_word(&mut self, value: bool) -> Result<Word> {
        let mut word = Word {
            start: self.pos,
            text: String::new(),
            wildcards: Vec::new(),
            escaped: false,
            literal_wildcard: false,
            fuzzy: None,
        };
        while !ends_value(self.peek()) {
            let at = self.pos;
            let Some(c) = self.bump() else { break };
            match c {
                '\\' => {
                    let Some(c) = self.bump() else {
                        return Err(self.syntax(at, "a character after `\\`"));
                    };
                    word.escaped = true;
                    word.literal_wildcard |= matches!(c, '*' | '?');
                    word.text.push(c);
                }
                '*' | '?' => {
                    word.wildcards.push(word.text.len());
                    word.text.push(c);
                }
                '~' => {
                    let digits_start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    if !ends_value(self.peek()) {
                        return Err(self.syntax(
                            self.pos,
                            "a fuzzy distance (0, 1 or 2) and then whitespace after `~`, or `\\~` for a literal one",
                        ));
                    }
                    let distance = match &self.text[digits_start..self.pos] {
                        "" => 2,
                        "0" => 0,
                        "1" => 1,
                        "2" => 2,
                        _ => {
                            return Err(
                                self.syntax(digits_start, "a fuzzy distance of 0, 1 or 2")
                            )
                        }
                    };
                    word.fuzzy = Some((at, distance));
                    break;
                }
                '(' | '"' => {
                    return Err(self.syntax(
                        at,
                        format!("whitespace before `{c}`, or `\\{c}` for a literal one"),
                    ))
                }
                ':' if !value => {
                    return Err(self.syntax(
                        at,
                        "a field name (letters, digits, `_`, `-`, `.`, `@`) before `:`, or `\\:` for a literal one",
                    ))
                }
                c => word.text.push(c),
            }
        }
        debug_assert!(word.start < self.pos);
        Ok(word)
    }

    /// A quoted string, its escapes resolved.
    fn quoted(&mut self) -> Result<String> {
        let open = self.pos;
        self.pos += 1; // `"`
        let mut text = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(text),
                Some('\\') => match self.bump() {
                    Some(c) => text.push(c),
                    None => break,
                },
                Some(c) => text.push(c),
                None => break,
            }
        }
        Err(self.syntax(
            self.text.len(),
            format!("`\"` to close the string opened at byte {open}"),
        ))
    }

    /// After a quoted string or a range: whitespace, `)` or the end must follow.
    fn end_of_value(&self) -> Result<()> {
        match self.peek() {
            c if ends_value(c) => Ok(()),
            Some('~') => Err(self.syntax(
                self.pos,
                "whitespace, `)` or the end of input (phrase slop `~N` is not supported)",
            )),
            _ => Err(self.syntax(self.pos, "whitespace, `)` or the end of input")),
        }
    }
}
