//! tantivy alone as a query engine: one index of the current state, updates as
//! `delete_term(id)` + `add_document`, a commit (durable: tantivy syncs the segment files and
//! `meta.json`) per batch.

use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{
    DateTime, DocAddress, Index, IndexReader, IndexWriter, Order as TOrder, ReloadPolicy, Searcher,
    TantivyDocument, Term,
};

use crate::corpus::Version;
use crate::engine::Result;
use crate::query_engine::{At, Cursor, Filter, Order, QueryEngine};

/// Indexing memory, as Strata's default `IndexOptions::writer_memory`.
const WRITER_MEMORY: usize = 128 << 20;
/// One indexing thread: each thread writes its own segment per commit, and with a commit per
/// 1000 documents one thread ingested faster here than two (2.6-10.5 s against 9.4-10.2 s
/// for 50 000 versions, on the loaded 2-core machine).
const WRITER_THREADS: usize = 1;

/// The settings, for the report.
pub const TANTIVY_SETTINGS: &str = "tantivy 0.27.0, MmapDirectory, explicit schema (keywords \
    raw STRING|FAST, numbers INDEXED|FAST, `released` date, `description` TEXT with the default \
    tokenizer, the body STORED), 128 MiB writer with one indexing thread, commit per batch, \
    reader reloaded after each commit";

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    name: Field,
    section: Field,
    priority: Field,
    maintainer: Field,
    tags: Field,
    installed_size: Field,
    version_major: Field,
    released: Field,
    description: Field,
    source: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let keyword = STRING | FAST;
        let number = NumericOptions::from(INDEXED | FAST);
        let fields = Fields {
            id: b.add_text_field("id", keyword.clone()),
            name: b.add_text_field("name", STRING),
            section: b.add_text_field("section", keyword.clone()),
            priority: b.add_text_field("priority", keyword.clone()),
            maintainer: b.add_text_field("maintainer", keyword.clone()),
            tags: b.add_text_field("tags", keyword),
            installed_size: b.add_u64_field("installed_size", number.clone()),
            version_major: b.add_u64_field("version_major", number),
            released: b.add_date_field("released", INDEXED | FAST),
            description: b.add_text_field("description", TEXT),
            source: b.add_text_field("_source", STORED),
        };
        (b.build(), fields)
    }

    fn keyword(&self, name: &str) -> Result<Field> {
        Ok(match name {
            "id" => self.id,
            "name" => self.name,
            "section" => self.section,
            "priority" => self.priority,
            "maintainer" => self.maintainer,
            "tags" => self.tags,
            "description" => self.description,
            other => return Err(format!("no keyword or text field {other:?}").into()),
        })
    }

    fn number(&self, name: &str) -> Result<Field> {
        Ok(match name {
            "installed_size" => self.installed_size,
            "version_major" => self.version_major,
            other => return Err(format!("no number field {other:?}").into()),
        })
    }

    fn document(&self, v: &Version) -> Result<TantivyDocument> {
        let body = &v.body;
        let text = |key: &str| body[key].as_str().unwrap_or_default();
        let number = |key: &str| body[key].as_u64().unwrap_or_default();
        let mut doc = TantivyDocument::default();
        doc.add_text(self.id, &v.id);
        doc.add_text(self.name, text("name"));
        doc.add_text(self.section, text("section"));
        doc.add_text(self.priority, text("priority"));
        doc.add_text(self.maintainer, text("maintainer"));
        for tag in body["tags"].as_array().into_iter().flatten() {
            doc.add_text(self.tags, tag.as_str().unwrap_or_default());
        }
        doc.add_u64(self.installed_size, number("installed_size"));
        doc.add_u64(self.version_major, number("version_major"));
        let released = tantivy::time::OffsetDateTime::parse(
            text("released"),
            &tantivy::time::format_description::well_known::Rfc3339,
        )?;
        doc.add_date(self.released, DateTime::from_utc(released));
        doc.add_text(self.description, text("description"));
        doc.add_text(self.source, serde_json::to_string(body)?);
        Ok(doc)
    }

    fn query(&self, filter: &Filter) -> Result<Box<dyn Query>> {
        Ok(match filter {
            Filter::Term { field, value } => Box::new(TermQuery::new(
                Term::from_field_text(self.keyword(field)?, value),
                IndexRecordOption::Basic,
            )),
            Filter::Range { field, lo, hi } => {
                let f = self.number(field)?;
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_u64(f, *lo)),
                    Bound::Excluded(Term::from_field_u64(f, *hi)),
                ))
            }
            Filter::Text { field, word } => Box::new(TermQuery::new(
                Term::from_field_text(self.keyword(field)?, &word.to_lowercase()),
                IndexRecordOption::WithFreqs,
            )),
            Filter::Bool { must, must_not } => {
                let mut clauses = Vec::new();
                for f in must {
                    clauses.push((Occur::Must, self.query(f)?));
                }
                for f in must_not {
                    clauses.push((Occur::MustNot, self.query(f)?));
                }
                Box::new(BooleanQuery::new(clauses))
            }
        })
    }
}

/// tantivy alone: the current state of every document, no history.
pub struct TantivyEngine {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
}

impl std::fmt::Debug for TantivyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyEngine").finish_non_exhaustive()
    }
}

impl TantivyEngine {
    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, writer: &IndexWriter, v: &Version) -> Result<()> {
        writer.delete_term(Term::from_field_text(self.fields.id, &v.id));
        writer.add_document(self.fields.document(v)?)?;
        Ok(())
    }

    /// Commits (durably) and makes the commit visible to the next searcher.
    fn commit(&self, writer: &mut IndexWriter) -> Result<()> {
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    fn ids(&self, searcher: &Searcher, docs: &[DocAddress]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(docs.len());
        for addr in docs {
            let column = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .str("id")?
                .ok_or("no id column")?;
            let ord = column
                .term_ords(addr.doc_id)
                .next()
                .ok_or("a document without id")?;
            let mut id = String::new();
            column.ord_to_str(ord, &mut id)?;
            out.push(id);
        }
        Ok(out)
    }

    fn sorted(
        &self,
        filter: &Filter,
        field: &'static str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let query = self.fields.query(filter)?;
        let collector = TopDocs::with_limit(limit)
            .and_offset(offset)
            .order_by_fast_field::<u64>(field, TOrder::Desc);
        let docs: Vec<DocAddress> = searcher
            .search(&query, &collector)?
            .into_iter()
            .map(|(_, addr)| addr)
            .collect();
        self.ids(&searcher, &docs)
    }
}

fn current_only(at: At) -> Result<()> {
    match at {
        At::Current => Ok(()),
        At::Time(_) => Err("tantivy alone keeps no history".into()),
    }
}

impl QueryEngine for TantivyEngine {
    fn name(&self) -> &'static str {
        "tantivy"
    }

    fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = Fields::schema();
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        let writer = index.writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(TantivyEngine {
            fields,
            writer: Mutex::new(writer),
            reader,
        })
    }

    fn ingest(&self, batch: Vec<Version>, _time: u64) -> Result<()> {
        let mut writer = self.writer();
        for v in &batch {
            self.add(&writer, v)?;
        }
        self.commit(&mut writer)
    }

    fn put(&self, version: Version) -> Result<()> {
        let mut writer = self.writer();
        self.add(&writer, &version)?;
        self.commit(&mut writer)
    }

    fn supports_as_of(&self) -> bool {
        false
    }

    fn count(&self, filter: &Filter, at: At) -> Result<u64> {
        current_only(at)?;
        let searcher = self.reader.searcher();
        Ok(searcher.search(&self.fields.query(filter)?, &Count)? as u64)
    }

    fn top(&self, filter: &Filter, order: Order, limit: usize, at: At) -> Result<Vec<String>> {
        current_only(at)?;
        match order {
            Order::Desc(field) => self.sorted(filter, field, limit, 0),
            Order::Relevance => {
                let searcher = self.reader.searcher();
                let docs: Vec<DocAddress> = searcher
                    .search(
                        &self.fields.query(filter)?,
                        &TopDocs::with_limit(limit).order_by_score(),
                    )?
                    .into_iter()
                    .map(|(_, addr)| addr)
                    .collect();
                self.ids(&searcher, &docs)
            }
        }
    }

    fn page(
        &self,
        filter: &Filter,
        field: &'static str,
        limit: usize,
        cursor: &Cursor,
    ) -> Result<(Vec<String>, Cursor)> {
        let offset = match cursor {
            Cursor::Start => 0,
            Cursor::Offset(n) => *n,
            other => return Err(format!("tantivy pages by offset, not {other:?}").into()),
        };
        let ids = self.sorted(filter, field, limit, offset)?;
        let next = if ids.len() < limit {
            Cursor::End
        } else {
            Cursor::Offset(offset + limit)
        };
        Ok((ids, next))
    }
}
