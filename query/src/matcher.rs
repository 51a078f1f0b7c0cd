//! The in-memory matcher: evaluates a query on one version, exactly as the index would.
//!
//! It serves the not-yet-indexed tail of the log (read-your-writes), brute-force checks in the
//! differential tests, and continuous queries.

use std::cmp::Ordering;
use std::ops::Bound;

use serde_json::Value;
use tantivy::tokenizer::TextAnalyzer;

use crate::ast::Query;
use crate::convert::{self, keyword, long_text, lowercase, path_at_or_below, Kw, Num};
use crate::error::Result;
use crate::plan::{self, KwRange, KwValue, Node, StrOp, SysNum, SysStr};
use crate::schema::VersionInfo;

/// A compiled query that tests single versions.
///
/// ```
/// use serde_json::json;
/// use strata_query::{Matcher, Query, VersionInfo};
///
/// let m = Matcher::new(&Query::term("tags", "rust").and(Query::range("stars", 100..)))?;
/// let info = VersionInfo {
///     seq: 1, id: "/p/1".into(), kind: "project".into(), version: 0, time: 0,
///     tombstone: false, expires_at: None,
/// };
/// assert!(m.matches(&info, &json!({"tags": ["db", "rust"], "stars": 250})));
/// assert!(!m.matches(&info, &json!({"tags": ["go"], "stars": 250})));
/// # Ok::<_, strata_query::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Matcher {
    node: Node,
}

impl Matcher {
    /// Compiles `query`.
    pub fn new(query: &Query) -> Result<Matcher> {
        Ok(Matcher {
            node: plan::compile(query)?,
        })
    }

    pub(crate) fn from_node(node: Node) -> Matcher {
        Matcher { node }
    }

    /// Whether the version (its metadata and body; `Null` for a tombstone) matches.
    pub fn matches(&self, info: &VersionInfo, body: &Value) -> bool {
        self.matches_flat(info, &Flat::new(body))
    }

    /// A term every matching version has, if the query requires one at its top (ANDed)
    /// level: a keyword string at a path, or a kind. Many matchers can then be indexed by it,
    /// and a version tested only against those whose term it holds (see
    /// [`Flat::keyword_strings`]).
    ///
    /// ```
    /// use strata_query::{Matcher, Query, Required};
    /// let m = Matcher::new(&Query::term("state", "queued").and(Query::range("size", 10..)))?;
    /// assert_eq!(m.required(), Some(Required::Keyword { path: "state", value: "queued" }));
    /// let m = Matcher::new(&Query::term("state", "queued").or(Query::term("state", "done")))?;
    /// assert_eq!(m.required(), None);
    /// # Ok::<_, strata_query::Error>(())
    /// ```
    pub fn required(&self) -> Option<Required<'_>> {
        fn walk(node: &Node) -> Option<Required<'_>> {
            match node {
                Node::KwEq(path, KwValue::Str(value)) => Some(Required::Keyword { path, value }),
                Node::SysStr(SysStr::Kind, StrOp::Eq(kind)) => Some(Required::Kind(kind)),
                Node::Word(path, word) => Some(Required::Keyword { path, value: word }),
                // A term of one word already in its word form (`state:queued`): the keyword
                // or that word of a long string, both of which `Flat::keyword_strings` yields.
                Node::Bool {
                    must,
                    should,
                    must_not,
                } if must.is_empty() && must_not.is_empty() => match should.as_slice() {
                    [Node::KwEq(path, KwValue::Str(value)), Node::Word(p, word)]
                        if p == path && word == value =>
                    {
                        Some(Required::Keyword { path, value })
                    }
                    _ => None,
                },
                Node::Bool { must, .. } => must.iter().find_map(walk),
                _ => None,
            }
        }
        walk(&self.node)
    }

    /// [`Matcher::matches`] on a body flattened once for many queries (continuous queries
    /// test every new version against each subscription's matcher).
    pub fn matches_flat(&self, info: &VersionInfo, flat: &Flat) -> bool {
        eval(&self.node, &Doc { info, flat })
    }
}

/// A term that every version matching a query has (see [`Matcher::required`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Required<'a> {
    /// The keyword string `value` at body path `path`, or (for a term of one word) `value` as
    /// a word of a string there over the keyword limit: either way a pair that
    /// [`Flat::keyword_strings`] yields.
    Keyword {
        /// The dotted body path.
        path: &'a str,
        /// The exact string, or the word.
        value: &'a str,
    },
    /// The version's kind.
    Kind(&'a str),
}

/// A body's leaves with their dotted paths, and (computed on first use) the tokens of each
/// string: what the matcher reads, computed once per version and shared by many matchers.
#[derive(Debug, Default)]
pub struct Flat {
    leaves: Vec<(String, Value)>,
    tokens: std::sync::OnceLock<Vec<Vec<(usize, String)>>>,
}

impl Flat {
    /// Flattens `body` (`Null` for a tombstone).
    pub fn new(body: &Value) -> Flat {
        let mut leaves = Vec::new();
        convert::for_each_leaf(body, &mut |p, leaf| {
            leaves.push((p.to_owned(), leaf.clone()))
        });
        // By path (stable: an array's values keep their order), so that a term finds its
        // path's values by binary search rather than a scan of every leaf.
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        Flat {
            leaves,
            tokens: std::sync::OnceLock::new(),
        }
    }

    /// The body's keyword strings with their paths, then the words of its strings longer than
    /// the keyword limit (which have no keyword): what [`Required::Keyword`] terms are matched
    /// against (strings that are dates are neither).
    pub fn keyword_strings(&self) -> impl Iterator<Item = (&str, &str)> {
        let keywords = self
            .leaves
            .iter()
            .filter_map(|(p, leaf)| match keyword(leaf) {
                Some(Kw::Str(s)) => Some((p.as_str(), s)),
                _ => None,
            });
        let any_long = self
            .leaves
            .iter()
            .any(|(_, leaf)| long_text(leaf).is_some());
        let words = any_long.then(|| {
            self.leaves
                .iter()
                .zip(self.tokens())
                .filter(|((_, leaf), _)| long_text(leaf).is_some())
                .flat_map(|((p, _), toks)| toks.iter().map(move |(_, t)| (p.as_str(), t.as_str())))
        });
        keywords.chain(words.into_iter().flatten())
    }

    /// Tokens per leaf (empty for non-strings).
    fn tokens(&self) -> &[Vec<(usize, String)>] {
        self.tokens.get_or_init(|| {
            let mut analyzer: TextAnalyzer = convert::text_analyzer();
            self.leaves
                .iter()
                .map(|(_, v)| match v {
                    Value::String(s) => convert::tokens(&mut analyzer, s),
                    _ => Vec::new(),
                })
                .collect()
        })
    }
}

struct Doc<'a> {
    info: &'a VersionInfo,
    flat: &'a Flat,
}

impl Doc<'_> {
    fn any_leaf(&self, path: &str, mut f: impl FnMut(&Value) -> bool) -> bool {
        let leaves = &self.flat.leaves;
        let start = leaves.partition_point(|(p, _)| p.as_str() < path);
        leaves[start..]
            .iter()
            .take_while(|(p, _)| p == path)
            .any(|(_, leaf)| f(leaf))
    }

    /// Whether a string at `path` without a keyword value has the token `word`.
    fn has_long_word(&self, path: &str, word: &str) -> bool {
        let leaves = &self.flat.leaves;
        let start = leaves.partition_point(|(p, _)| p.as_str() < path);
        let end = start
            + leaves[start..]
                .iter()
                .take_while(|(p, _)| p == path)
                .count();
        let long = |i: &usize| long_text(&leaves[*i].1).is_some();
        if !(start..end).any(|i| long(&i)) {
            return false;
        }
        let tokens = self.flat.tokens();
        (start..end)
            .filter(long)
            .any(|i| tokens[i].iter().any(|(_, t)| t == word))
    }

    /// Token lists of the strings a text query looks at: those at `path`, or all of them.
    fn string_tokens(&self, path: Option<&str>) -> Vec<&[(usize, String)]> {
        let wanted = |p: &str| path.is_none_or(|path| path == p);
        if !self
            .flat
            .leaves
            .iter()
            .any(|(p, v)| v.is_string() && wanted(p))
        {
            return Vec::new();
        }
        let tokens = self.flat.tokens();
        self.flat
            .leaves
            .iter()
            .zip(tokens)
            .filter(|((p, v), _)| v.is_string() && wanted(p))
            .map(|(_, t)| t.as_slice())
            .collect()
    }
}

fn in_range<T: ?Sized>(
    v: &T,
    lo: &Bound<impl std::borrow::Borrow<T>>,
    hi: &Bound<impl std::borrow::Borrow<T>>,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> bool {
    let above = match lo {
        Bound::Unbounded => true,
        Bound::Included(b) => cmp(v, b.borrow()) != Ordering::Less,
        Bound::Excluded(b) => cmp(v, b.borrow()) == Ordering::Greater,
    };
    let below = match hi {
        Bound::Unbounded => true,
        Bound::Included(b) => cmp(v, b.borrow()) != Ordering::Greater,
        Bound::Excluded(b) => cmp(v, b.borrow()) == Ordering::Less,
    };
    above && below
}

fn eval(node: &Node, doc: &Doc<'_>) -> bool {
    match node {
        Node::All => true,
        Node::Nothing => false,
        Node::SysStr(field, op) => {
            let s = match field {
                SysStr::Id => doc.info.id.as_str(),
                SysStr::Kind => doc.info.kind.as_str(),
            };
            match op {
                StrOp::Eq(v) => s == v,
                StrOp::Prefix(p) => s.starts_with(p.as_str()),
                StrOp::Wildcard(p) => wildcard_match(p, s),
                StrOp::Range(lo, hi) => in_range::<str>(s, lo, hi, |a, b| a.cmp(b)),
            }
        }
        Node::SysNum(field, lo, hi) => {
            let v = match field {
                SysNum::Seq => doc.info.seq,
                SysNum::Version => doc.info.version,
                SysNum::Updated => doc.info.time,
            };
            (*lo..=*hi).contains(&v)
        }
        Node::KwEq(path, want) => doc.any_leaf(path, |leaf| match (keyword(leaf), want) {
            (Some(Kw::Bool(a)), KwValue::Bool(b)) => a == *b,
            (Some(Kw::Num(a)), KwValue::Num(b)) => a == *b,
            (Some(Kw::Date(a)), KwValue::Date(b)) => a == *b,
            (Some(Kw::Str(a)), KwValue::Str(b)) => a == b,
            _ => false,
        }),
        Node::KwEqCi(path, lower) => doc.any_leaf(
            path,
            |leaf| matches!(keyword(leaf), Some(Kw::Str(s)) if lowercase(s) == *lower),
        ),
        Node::KwPrefix(path, prefix) => doc.any_leaf(
            path,
            |leaf| matches!(keyword(leaf), Some(Kw::Str(s)) if s.starts_with(prefix.as_str())),
        ),
        Node::KwWildcard(path, pattern) => doc.any_leaf(
            path,
            |leaf| matches!(keyword(leaf), Some(Kw::Str(s)) if wildcard_match(pattern, s)),
        ),
        Node::KwRange(path, range) => doc.any_leaf(path, |leaf| match (keyword(leaf), range) {
            (Some(Kw::Num(n)), KwRange::Num(lo, hi)) => {
                in_range::<Num>(&n, lo, hi, |a, b| a.total_cmp(*b))
            }
            (Some(Kw::Date(d)), KwRange::Date(lo, hi)) => {
                in_range::<i64>(&d, lo, hi, |a, b| a.cmp(b))
            }
            (Some(Kw::Str(s)), KwRange::Str(lo, hi)) => in_range::<str>(s, lo, hi, |a, b| a.cmp(b)),
            _ => false,
        }),
        Node::Word(path, word) => doc.has_long_word(path, word),
        Node::Exists(path) => doc
            .flat
            .leaves
            .iter()
            .any(|(p, _)| path_at_or_below(p, path)),
        Node::Text {
            path,
            tokens,
            phrase,
        } => {
            if tokens.is_empty() {
                return false;
            }
            let docs = doc.string_tokens(path.as_deref());
            if *phrase {
                docs.iter().any(|toks| phrase_in(tokens, toks))
            } else {
                tokens
                    .iter()
                    .all(|(_, t)| docs.iter().any(|toks| toks.iter().any(|(_, d)| d == t)))
            }
        }
        Node::Fuzzy {
            path,
            word,
            distance,
        } => {
            let want: Vec<char> = word.chars().collect();
            doc.string_tokens(path.as_deref()).iter().any(|toks| {
                toks.iter()
                    .any(|(_, t)| osa_distance(&want, t, *distance as usize))
            })
        }
        Node::Bool {
            must,
            should,
            must_not,
        } => {
            must.iter().all(|n| eval(n, doc))
                && !must_not.iter().any(|n| eval(n, doc))
                && (!must.is_empty() || should.is_empty() || should.iter().any(|n| eval(n, doc)))
        }
    }
}

/// Whether the query tokens occur at the same relative positions in `doc`.
fn phrase_in(query: &[(usize, String)], doc: &[(usize, String)]) -> bool {
    let Some((first_pos, first)) = query.first() else {
        return false;
    };
    doc.iter().filter(|(_, t)| t == first).any(|(start, _)| {
        query.iter().all(|(pos, tok)| {
            let want = start + pos - first_pos;
            doc.iter().any(|(p, t)| *p == want && t == tok)
        })
    })
}

/// Glob match: `?` is one character, `*` any run of characters.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the optimal-string-alignment distance (Levenshtein with adjacent transpositions
/// costing one, as tantivy's fuzzy automaton counts) between `a` and `b` is at most `max`.
fn osa_distance(a: &[char], b: &str, max: usize) -> bool {
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m] <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("w?ld*", "wildcard"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("é?", "éa"));
    }

    #[test]
    fn fuzzy_distance_counts_transpositions_once() {
        let w: Vec<char> = "search".chars().collect();
        assert!(osa_distance(&w, "serach", 1));
        assert!(osa_distance(&w, "serch", 1));
        assert!(!osa_distance(&w, "sarch", 0));
        assert!(!osa_distance(&w, "srch", 1));
    }
}
