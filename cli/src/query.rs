//! `strata query` and `strata rebuild-index`.

use clap::Args;
use serde_json::{json, Value};
use strata::{GroupBy, QueryResult, QuerySpec, Snapshot, SortKey, Store};

use super::{meta_json, print_documents, time, usage, Body, Failure, Format};

/// Arguments of `strata query`.
#[derive(Args)]
pub(crate) struct QueryArgs {
    /// The query in the text syntax, e.g. `_kind:package AND section:python AND NOT
    /// priority:optional` (see the README); `*` matches everything.
    query: String,
    /// Query the past: RFC 3339, a UTC date (2023-06-10) or minute (2023-06-10T12:00),
    /// microseconds since the epoch, or relative (-30s, -10m, -2h, -7d).
    #[arg(long, conflicts_with = "all_versions", allow_hyphen_values = true)]
    at: Option<String>,
    /// Query every version, not only the current ones.
    #[arg(long)]
    all_versions: bool,
    /// Also return deleted documents.
    #[arg(long)]
    include_deleted: bool,
    /// Sort by a field, `F` or `F:desc` (repeatable; `_score` for relevance).
    #[arg(long, value_name = "F[:desc]")]
    sort: Vec<String>,
    /// Most documents to print.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Documents to skip.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Continue after a previous answer's `next_page` token.
    #[arg(long, value_name = "TOKEN")]
    page: Option<String>,
    /// Print the exact number of matches.
    #[arg(long)]
    count: bool,
    /// Print only these body fields (comma-separated dotted paths).
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    select: Option<Vec<String>>,
    /// Group the matches by a field: a count and the first documents per value (with
    /// `--limit 0`, the counts only).
    #[arg(long, value_name = "F")]
    group_by: Option<String>,
    /// With `--at` before the retention horizon: answer with the documents whose state then is
    /// known and say how many are unknown, instead of failing (exit 8).
    #[arg(long)]
    allow_trimmed: bool,
    /// With `--allow-trimmed`: also list up to N ids of the unknown documents.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        requires = "allow_trimmed"
    )]
    unknown_ids: usize,
}

pub(crate) fn run(store: &Store, args: QueryArgs, format: Format) -> Result<(), Failure> {
    let query = strata::parse_query(&args.query)?;
    let snapshot = match (&args.at, args.all_versions) {
        (Some(at), _) => Snapshot::AsOf(time::parse_time(at).map_err(usage)?),
        (None, true) => Snapshot::AllVersions,
        (None, false) => Snapshot::Current,
    };
    let mut spec = QuerySpec::new(query)
        .snapshot(snapshot)
        .include_deleted(args.include_deleted)
        .count(args.count)
        .limit(args.limit)
        .offset(args.offset)
        .allow_trimmed(args.allow_trimmed)
        .unknown_ids(args.unknown_ids);
    for s in &args.sort {
        spec = spec.sort(SortKey::parse(s).map_err(strata::Error::from)?);
    }
    if let Some(select) = args.select {
        spec = spec.select(select);
    }
    if let Some(field) = &args.group_by {
        let mut group = GroupBy::new(field);
        if args.limit == 0 {
            // No documents asked for: none per group either, only the counts.
            group.top = 0;
        }
        spec = spec.group_by(group);
    }
    if let Some(page) = args.page {
        spec = spec.page(page);
    }
    let result = store.query(&spec)?;
    print_result(format, &result);
    Ok(())
}

pub(crate) fn print_result(format: Format, r: &QueryResult) {
    match format {
        Format::Json => {
            // A sorted query's documents carry what they were sorted by, one value per key.
            let docs = |docs: &[strata::Document], sort: &[Vec<Option<strata::Scalar>>]| {
                docs.iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let mut doc = json!({ "meta": meta_json(&d.meta), "body": d.body });
                        if let Some(values) = sort.get(i).filter(|v| !v.is_empty()) {
                            doc["sort"] = json!(values);
                        }
                        doc
                    })
                    .collect::<Vec<Value>>()
            };
            let mut out = json!({
                "documents": docs(&r.documents, &r.sort_values),
                "next_page": r.next_page,
                "snapshot_seq": r.snapshot_seq,
            });
            if let Some(count) = r.count {
                out["count"] = json!(count);
            }
            if let Some(t) = &r.trimmed {
                out["trimmed"] = json!({
                    "unknown": t.unknown,
                    "unknown_ids": t.unknown_ids,
                    "oldest_complete": t.oldest_complete,
                });
            }
            if !r.groups.is_empty() {
                out["groups"] = r
                    .groups
                    .iter()
                    .map(|g| json!({"key": g.key, "count": g.count, "documents": docs(&g.documents, &g.sort_values)}))
                    .collect();
            }
            out!("{out}");
        }
        Format::Table => {
            if let Some(count) = r.count {
                out!("{count} matching");
            }
            for g in &r.groups {
                out!("group {} ({} matching)", g.key, g.count);
                for d in &g.documents {
                    out!("    {}  version {}", d.meta.id, d.meta.version);
                }
            }
            if !r.documents.is_empty() || r.groups.is_empty() {
                print_documents(Format::Table, &r.documents, Body::Line);
            }
            if let Some(token) = &r.next_page {
                out!("more: --page {token}");
            }
            if let Some(t) = &r.trimmed {
                out!(
                    "{} documents left out: their state then is unknown (history before {} was dropped by retention)",
                    t.unknown,
                    super::fmt::time(t.oldest_complete)
                );
                for id in &t.unknown_ids {
                    out!("    unknown: {id}");
                }
            }
        }
    }
}

pub(crate) fn rebuild(store: &Store, format: Format) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    super::ops::with_polled_bar(
        "rebuild-index",
        "versions",
        || {
            let p = store.index_progress();
            (p.indexed_seq, p.log_seq)
        },
        || store.rebuild_index(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let versions = store.index_progress().committed_seq;
    match format {
        Format::Json => out!("{}", json!({"versions": versions, "seconds": seconds})),
        Format::Table => out!(
            "index rebuilt: {versions} versions in {}",
            super::fmt::seconds(seconds)
        ),
    }
    Ok(())
}
