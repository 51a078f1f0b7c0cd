//! A query wrapper whose scorer is only ever moved forward, for the clauses of `must_not`.
//!
//! tantivy 0.27's `Exclude` (a `must_not` clause) probes its exclusion set with
//! `seek_danger(doc)` from the first candidate on, which can be before the document the
//! exclusion's scorer already stands on when it was built. The scorers that implement
//! `seek_danger` themselves answer such a probe correctly in a release build, but assert
//! `target >= doc()` (the phrase scorer) or subtract the two (the fast-field range scorer) in a
//! debug build: an embedding service's debug build (tantivy with debug assertions and overflow
//! checks, cargo's default) panicked on queries such as `a AND NOT "b c"` or
//! `a AND NOT n:[1 TO 5]` (quickwit-oss/tantivy#2811, fixed after 0.27). [`Forward`] answers a
//! probe at or before its current document itself and moves the inner scorer only with `seek`
//! to a later target, so no such check can fire and the answers are the same.

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SeekDangerResult, SegmentReader, Term, TERMINATED};

/// Wraps a query so that its scorers are only sought forward (see the module doc).
#[derive(Debug)]
pub(crate) struct Forward(pub(crate) Box<dyn Query>);

impl Clone for Forward {
    fn clone(&self) -> Self {
        Forward(self.0.box_clone())
    }
}

impl Query for Forward {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ForwardWeight(self.0.weight(enable_scoring)?)))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.0.query_terms(visitor);
    }
}

struct ForwardWeight(Box<dyn Weight>);

impl Weight for ForwardWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(ForwardScorer(self.0.scorer(reader, boost)?)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }
}

struct ForwardScorer(Box<dyn Scorer>);

impl DocSet for ForwardScorer {
    fn advance(&mut self) -> DocId {
        self.0.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let doc = self.0.doc();
        if target <= doc {
            doc
        } else {
            self.0.seek(target)
        }
    }

    /// tantivy's default `seek_danger`: never leaves the scorer in an invalid state, and never
    /// seeks backward.
    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        if target >= TERMINATED {
            return SeekDangerResult::SeekLowerBound(target);
        }
        let doc = self.seek(target);
        if doc == target {
            SeekDangerResult::Found
        } else {
            SeekDangerResult::SeekLowerBound(doc)
        }
    }

    fn doc(&self) -> DocId {
        self.0.doc()
    }

    fn size_hint(&self) -> u32 {
        self.0.size_hint()
    }

    fn cost(&self) -> u64 {
        self.0.cost()
    }
}

impl Scorer for ForwardScorer {
    fn score(&mut self) -> Score {
        self.0.score()
    }
}
