//! The tantivy schema of the version index, and how a version becomes an index document.

use serde_json::Value;
use tantivy::schema::{
    IndexRecordOption, JsonObjectOptions, NumericOptions, OwnedValue, Schema, TextFieldIndexing,
    TextOptions, FAST, STRING,
};
use tantivy::TantivyDocument;

use crate::convert::{for_each_leaf, keyword, long_text, lowercase, Kw, Num, TEXT_TOKENIZER};

/// Field handles of the index schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `_seq`: u64, indexed and fast.
    pub seq: tantivy::schema::Field,
    /// `_id`: raw string, indexed and fast.
    pub id: tantivy::schema::Field,
    /// `_kind`: raw string, indexed and fast.
    pub kind: tantivy::schema::Field,
    /// `_version`: u64, indexed and fast.
    pub version: tantivy::schema::Field,
    /// `_updated`: u64 microseconds, indexed and fast.
    pub updated: tantivy::schema::Field,
    /// Keyword values of the body but dates (JSON, raw strings, fast).
    pub kw: tantivy::schema::Field,
    /// Dates of the body as i64 seconds since the epoch (JSON, indexed and fast). Apart from
    /// `kw` so that they never meet its numbers, and as plain integers because tantivy's own
    /// dates are i64 nanoseconds (years 1677 to 2262 only).
    pub dates: tantivy::schema::Field,
    /// Lowercased keyword strings that differ from their original (JSON, raw).
    pub ci: tantivy::schema::Field,
    /// Each string without a keyword value ([`long_text`]) by its words, per path (JSON,
    /// [`TEXT_TOKENIZER`], no frequencies or positions): what a one-word term matches in such a
    /// string.
    pub words: tantivy::schema::Field,
    /// Every string of the body as text (JSON, positions).
    pub text: tantivy::schema::Field,
    /// Every string of the body in one text field, for searches without a field.
    pub all: tantivy::schema::Field,
    /// Every body path holding a value, and each of its ancestors (raw).
    pub paths: tantivy::schema::Field,
}

pub(crate) const KW: &str = "kw";
/// The JSON field of body dates.
pub(crate) const DATES: &str = "dates";
/// The field holding each version's seq.
pub(crate) const SEQ_FIELD: &str = "_seq";

impl Fields {
    pub(crate) fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let num = NumericOptions::default().set_indexed().set_fast();
        let seq = b.add_u64_field(SEQ_FIELD, num.clone());
        let id = b.add_text_field("_id", STRING | FAST);
        let kind = b.add_text_field("_kind", STRING | FAST);
        let version = b.add_u64_field("_version", num.clone());
        let updated = b.add_u64_field("_updated", num);
        let raw = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic);
        let kw = b.add_json_field(
            KW,
            JsonObjectOptions::default()
                .set_indexing_options(raw.clone())
                .set_fast("raw")
                .set_expand_dots_enabled(),
        );
        let dates = b.add_json_field(
            DATES,
            JsonObjectOptions::default()
                .set_indexing_options(raw.clone())
                .set_fast("raw")
                .set_expand_dots_enabled(),
        );
        let ci = b.add_json_field(
            "ci",
            JsonObjectOptions::default()
                .set_indexing_options(raw)
                .set_expand_dots_enabled(),
        );
        // Tokenized by tantivy with the text analyzer, recording only which documents hold a
        // word (no frequencies or positions).
        let words = b.add_json_field(
            "words",
            JsonObjectOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(TEXT_TOKENIZER)
                        .set_index_option(IndexRecordOption::Basic),
                )
                .set_expand_dots_enabled(),
        );
        let positions = TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let text = b.add_json_field(
            "text",
            JsonObjectOptions::default()
                .set_indexing_options(positions.clone())
                .set_expand_dots_enabled(),
        );
        let all = b.add_text_field(
            "_all",
            TextOptions::default().set_indexing_options(positions),
        );
        let paths = b.add_text_field("_paths", STRING);
        let fields = Fields {
            seq,
            id,
            kind,
            version,
            updated,
            kw,
            dates,
            ci,
            words,
            text,
            all,
            paths,
        };
        (b.build(), fields)
    }
}

/// The metadata of a version, as the index and matcher see it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    /// Store-wide sequence number.
    pub seq: u64,
    /// Document id.
    pub id: String,
    /// Document kind.
    pub kind: String,
    /// Per-document version.
    pub version: u64,
    /// Update time, microseconds since the epoch.
    pub time: u64,
    /// Whether the version is a tombstone.
    pub tombstone: bool,
    /// Expiry, microseconds since the epoch.
    pub expires_at: Option<u64>,
}

impl VersionInfo {
    /// The metadata of a version read from the log.
    pub fn from_meta(meta: &storage::VersionMeta) -> VersionInfo {
        VersionInfo {
            seq: meta.seq,
            id: meta.id.clone(),
            kind: meta.kind.clone(),
            version: meta.version,
            time: meta.time,
            tombstone: meta.tombstone,
            expires_at: meta.expires_at,
        }
    }
}

fn num_value(n: Num) -> OwnedValue {
    match n {
        Num::I(i) => OwnedValue::I64(i),
        Num::U(u) => OwnedValue::U64(u),
        Num::F(f) => OwnedValue::F64(f),
    }
}

/// Builds the index document of a version. `body` is `Value::Null` for a tombstone.
pub(crate) fn index_document(fields: &Fields, info: &VersionInfo, body: &Value) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_u64(fields.seq, info.seq);
    doc.add_text(fields.id, &info.id);
    doc.add_text(fields.kind, &info.kind);
    doc.add_u64(fields.version, info.version);
    doc.add_u64(fields.updated, info.time);

    // Flat objects keyed by dotted path (a key repeats for each value of an array); tantivy
    // expands the dots (see convert.rs).
    let mut kw: Vec<(String, OwnedValue)> = Vec::new();
    let mut dates: Vec<(String, OwnedValue)> = Vec::new();
    let mut ci: Vec<(String, OwnedValue)> = Vec::new();
    let mut text: Vec<(String, OwnedValue)> = Vec::new();
    let mut words: Vec<(String, OwnedValue)> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    for_each_leaf(body, &mut |path, leaf| {
        if paths.last().is_none_or(|p| p != path) {
            paths.push(path.to_owned());
        }
        match keyword(leaf) {
            None => {}
            Some(Kw::Date(secs)) => dates.push((path.to_owned(), OwnedValue::I64(secs))),
            Some(Kw::Bool(b)) => kw.push((path.to_owned(), OwnedValue::Bool(b))),
            Some(Kw::Num(n)) => kw.push((path.to_owned(), num_value(n))),
            Some(Kw::Str(s)) => {
                let lower = lowercase(s);
                if lower != s {
                    ci.push((path.to_owned(), OwnedValue::Str(lower)));
                }
                kw.push((path.to_owned(), OwnedValue::Str(s.to_owned())));
            }
        }
        if let Some(s) = long_text(leaf) {
            words.push((path.to_owned(), OwnedValue::Str(s.to_owned())));
        }
        if let Value::String(s) = leaf {
            doc.add_text(fields.all, s);
            text.push((path.to_owned(), OwnedValue::Str(s.clone())));
        }
    });
    let objects = [
        (fields.kw, kw),
        (fields.dates, dates),
        (fields.ci, ci),
        (fields.words, words),
        (fields.text, text),
    ];
    for (field, values) in objects {
        if !values.is_empty() {
            doc.add_field_value(field, &OwnedValue::Object(values));
        }
    }
    // Every path with a value and each of its ancestors, once.
    let mut all_paths: Vec<&str> = Vec::with_capacity(paths.len() * 2);
    for p in &paths {
        let mut p = p.as_str();
        loop {
            all_paths.push(p);
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    all_paths.sort_unstable();
    all_paths.dedup();
    for p in all_paths {
        doc.add_text(fields.paths, p);
    }
    doc
}
