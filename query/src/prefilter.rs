//! Which versions can no matcher requiring one of some keyword values match, judged from the
//! raw JSON bytes of the body, before it is parsed? Continuous queries test every new version
//! against many matchers ([`crate::Matcher::required`] indexes them by a required term); most
//! versions hold none of the required values, and this scan lets them pass without a parse.

use std::collections::HashSet;

use crate::MAX_KEYWORD_BYTES;

/// The keyword values some matchers require ([`crate::Required::Keyword`]), looked for among
/// the string literals of raw JSON text.
///
/// A literal without a backslash is the string's exact value, so a keyword string equal to a
/// required value shows up as a literal; a literal with escapes makes the body undecided, and
/// so does one over the keyword limit, whose words a required value may be (a one-word term
/// matches a word of such a string: [`crate::Flat::keyword_strings`]). Object keys are
/// literals too, which only makes the answer more careful.
///
/// ```
/// use strata_query::RawPrefilter;
/// let values = ["queued".to_owned()].into_iter().collect();
/// let filter = RawPrefilter::new(values).expect("no value needs escaping");
/// assert!(filter.cannot_match(br#"{"state": "done"}"#));
/// assert!(!filter.cannot_match(br#"{"state": "queued"}"#));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPrefilter {
    values: HashSet<String>,
}

impl RawPrefilter {
    /// A prefilter for `values`, or `None` when one of them holds a character that JSON text
    /// writes escaped (`"`, `\`, a control character): its literal would not be its bytes.
    pub fn new(values: HashSet<String>) -> Option<RawPrefilter> {
        let plain = values
            .iter()
            .all(|v| !v.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
        plain.then_some(RawPrefilter { values })
    }

    /// True if no keyword string of `body` (valid JSON text) is one of the values, nor can one
    /// of them be a word of a string over the keyword limit: no matcher requiring one of them
    /// matches the version. False when that is undecided from the bytes alone.
    pub fn cannot_match(&self, body: &[u8]) -> bool {
        let mut i = 0;
        while let Some(open) = body[i..].iter().position(|&b| b == b'"') {
            let start = i + open + 1;
            let Some(len) = body[start..].iter().position(|&b| b == b'"' || b == b'\\') else {
                return false;
            };
            let end = start + len;
            if body[end] == b'\\' {
                return false;
            }
            if len > MAX_KEYWORD_BYTES && !self.values.is_empty() {
                return false;
            }
            match std::str::from_utf8(&body[start..end]) {
                Ok(literal) if !self.values.contains(literal) => {}
                _ => return false,
            }
            i = end + 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::Flat;

    fn filter(values: &[&str]) -> RawPrefilter {
        RawPrefilter::new(values.iter().map(|v| (*v).to_owned()).collect()).expect("plain values")
    }

    #[test]
    fn values_needing_escapes_have_no_prefilter() {
        for bad in ["a\"b", "a\\b", "tab\there", "\u{1}"] {
            assert_eq!(RawPrefilter::new([bad.to_owned()].into()), None, "{bad:?}");
        }
        assert!(RawPrefilter::new(["plain é".to_owned()].into()).is_some());
    }

    #[test]
    fn a_literal_equal_to_a_value_is_undecided() {
        let f = filter(&["queued", "rust"]);
        assert!(!f.cannot_match(br#"{"state":"queued"}"#));
        assert!(!f.cannot_match(br#"{"tags":["x",{"lang":"rust"}]}"#));
        // A key equal to a value: undecided too (careful, never wrong).
        assert!(!f.cannot_match(br#"{"queued":1}"#));
        assert!(f.cannot_match(br#"{"state":"done","n":1,"ok":true,"x":null}"#));
        assert!(f.cannot_match(br#"{"state":"queued-later"}"#));
        assert!(f.cannot_match(b"{}"));
    }

    #[test]
    fn escapes_and_long_strings_are_undecided() {
        let f = filter(&["queued"]);
        // `\u0071ueued` is "queued".
        assert!(!f.cannot_match(br#"{"state":"\u0071ueued"}"#));
        assert!(!f.cannot_match(br#"{"note":"say \"hi\""}"#));
        let long = format!(r#"{{"text":"{}"}}"#, "Queued ".repeat(60));
        assert!(!f.cannot_match(long.as_bytes()));
        // With no value required (matchers gated by kind only), a long string is no word of one.
        assert!(filter(&[]).cannot_match(long.as_bytes()));
    }

    /// Whenever the scan says "cannot match", the matcher's own keyword strings agree.
    #[test]
    fn agrees_with_the_matchers_keyword_strings() {
        let bodies = [
            r#"{"state":"queued","size":3}"#,
            r#"{"state":"done","tags":["a","queued"]}"#,
            r#"{"a":{"b":{"c":"rust"}},"d":[1,2,"python"]}"#,
            r#"{"when":"2026-01-02T00:00:00Z","who":"ada"}"#,
            r#"{"quoted":"say \"queued\"","n":-1.5e3}"#,
        ];
        let long = format!(r#"{{"text":"{} queued"}}"#, "word ".repeat(60));
        let value_sets: [&[&str]; 4] = [&["queued"], &["rust", "ada"], &["python"], &[]];
        let (mut skipped, mut held_some) = (0, 0);
        for body in bodies.iter().copied().chain([long.as_str()]) {
            let parsed: Value = serde_json::from_str(body).expect("valid JSON");
            let flat = Flat::new(&parsed);
            for values in value_sets {
                let f = filter(values);
                let held = flat.keyword_strings().any(|(_, s)| values.contains(&s));
                if f.cannot_match(body.as_bytes()) {
                    assert!(!held, "{body} holds one of {values:?}");
                    skipped += 1;
                }
                held_some += usize::from(held);
            }
        }
        // Both outcomes were met, so the check above was put to the test.
        assert!(skipped > 0 && held_some > 0, "{skipped} {held_some}");
    }
}
