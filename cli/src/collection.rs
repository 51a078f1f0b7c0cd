//! `strata collection define|list|count|drop|history`: named, persisted queries whose
//! definitions are versioned.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use strata::{Collection, CollectionOptions, QuerySpec, Retention, Snapshot, SortKey, Store};

use super::fmt;
use super::query::print_result;
use super::time::parse_time;
use super::{meta_json, usage, Failure, Format};

/// `strata collection`'s subcommands.
#[derive(Subcommand)]
pub(crate) enum CollectionCommand {
    /// Define a collection (a named query over the current documents), or redefine it: the
    /// earlier definitions stay readable with --at and history.
    Define(DefineArgs),
    /// List the collections (name, member count, definition version, query), or with NAME the
    /// members of one, a page at a time.
    List(ListArgs),
    /// Count the members of a collection, now or at a past time.
    Count {
        /// The collection.
        name: String,
        /// Count the members at a past time under the definition of then: RFC 3339, a UTC
        /// date (2023-06-10) or minute (2023-06-10T12:00), microseconds since the epoch, or
        /// relative (-30s, -10m, -2h, -7d).
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        at: Option<String>,
    },
    /// Drop a collection (its definition; the documents stay).
    Drop {
        /// The collection.
        name: String,
    },
    /// Every version of a collection's definition, oldest first, drops included.
    History {
        /// The collection.
        name: String,
    },
}

/// Arguments of `strata collection define`.
#[derive(Args)]
pub(crate) struct DefineArgs {
    /// The name: 1 to 128 ASCII letters, digits, `_`, `-` and `.`, starting with a letter or
    /// a digit.
    name: String,
    /// The query in the text syntax (as for `strata query`), e.g. `_kind:package AND
    /// section:rust`.
    query: String,
    /// The members' order, `F` or `F:desc` (repeatable).
    #[arg(long, value_name = "F[:desc]")]
    sort: Vec<String>,
    /// Members per page of `collection list` (default 100).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// List only these body fields of the members (comma-separated dotted paths).
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    select: Option<Vec<String>>,
    /// Retention: keep at least N versions of each member, whatever their age (applied by
    /// compaction).
    #[arg(long, value_name = "N")]
    min_versions: Option<u64>,
    /// Retention: keep at most N versions of each member (at least 1).
    #[arg(long, value_name = "N")]
    max_versions: Option<u64>,
    /// Retention: keep the versions younger than this many seconds (beyond --min-versions).
    #[arg(long, value_name = "SECONDS")]
    max_age_secs: Option<u64>,
}

/// Arguments of `strata collection list`.
#[derive(Args)]
pub(crate) struct ListArgs {
    /// List this collection's members (without it: every collection).
    name: Option<String>,
    /// The members at a past time, under the definition of then: RFC 3339, a UTC date
    /// (2023-06-10) or minute (2023-06-10T12:00), microseconds since the epoch, or relative
    /// (-30s, -10m, -2h, -7d).
    #[arg(
        long,
        value_name = "TIME",
        requires = "name",
        allow_hyphen_values = true
    )]
    at: Option<String>,
    /// Members per page (default: the definition's --limit).
    #[arg(long, value_name = "N", requires = "name")]
    limit: Option<usize>,
    /// Continue after a previous answer's `next_page` token (with the same --at and --limit).
    #[arg(long, value_name = "TOKEN", requires = "name")]
    page: Option<String>,
}

pub(crate) fn run(
    store: &Store,
    command: CollectionCommand,
    format: Format,
) -> Result<(), Failure> {
    match command {
        CollectionCommand::Define(args) => define(store, args, format),
        CollectionCommand::List(ListArgs { name: None, .. }) => list_collections(store, format),
        CollectionCommand::List(ListArgs {
            name: Some(name),
            at,
            limit,
            page,
        }) => {
            let c = open(store, &name, at.as_deref())?;
            let mut spec = read_spec(&c);
            if let Some(limit) = limit {
                spec.limit = limit;
            }
            spec.page = page;
            print_result(format, &store.query(&spec)?);
            Ok(())
        }
        CollectionCommand::Count { name, at } => {
            let c = open(store, &name, at.as_deref())?;
            let count = c.count()?;
            match format {
                Format::Json => out!(
                    "{}",
                    json!({"name": name, "count": count, "at": c.at().map(fmt::time)})
                ),
                Format::Table => out!("{count} member{}", if count == 1 { "" } else { "s" }),
            }
            Ok(())
        }
        CollectionCommand::Drop { name } => {
            let meta = store.drop_collection(&name)?;
            match format {
                Format::Json => out!("{}", json!({"name": name, "meta": meta_json(&meta)})),
                Format::Table => out!(
                    "collection {name} dropped (definition version {}, seq {}, at {}); its \
                     documents stay",
                    meta.version,
                    meta.seq,
                    fmt::time(meta.update_time_micros)
                ),
            }
            Ok(())
        }
        CollectionCommand::History { name } => history(store, &name, format),
    }
}

fn define(store: &Store, args: DefineArgs, format: Format) -> Result<(), Failure> {
    let mut spec = QuerySpec::new(strata::parse_query(&args.query)?);
    for s in &args.sort {
        spec = spec.sort(SortKey::parse(s).map_err(strata::Error::from)?);
    }
    if let Some(limit) = args.limit {
        spec = spec.limit(limit);
    }
    if let Some(select) = args.select {
        spec = spec.select(select);
    }
    let mut options = CollectionOptions::default();
    if args.min_versions.is_some() || args.max_versions.is_some() || args.max_age_secs.is_some() {
        let mut r = Retention::default();
        if let Some(n) = args.min_versions {
            r = r.with_min_versions(n);
        }
        if let Some(n) = args.max_versions {
            r = r.with_max_versions(n);
        }
        if let Some(secs) = args.max_age_secs {
            r = r.with_max_age(std::time::Duration::from_secs(secs));
        }
        options = options.with_retention(r);
    }
    let meta = store.define_collection(&args.name, &spec, options)?;
    match format {
        Format::Json => out!("{}", json!({"name": args.name, "meta": meta_json(&meta)})),
        Format::Table => out!(
            "collection {} {} (definition version {}, seq {}, at {})",
            args.name,
            if meta.version == 0 {
                "defined"
            } else {
                "redefined"
            },
            meta.version,
            meta.seq,
            fmt::time(meta.update_time_micros)
        ),
    }
    Ok(())
}

/// The collection `name` now, or as it was at `at` (also one dropped since).
fn open(store: &Store, name: &str, at: Option<&str>) -> Result<Collection, Failure> {
    let at = at.map(parse_time).transpose().map_err(usage)?;
    let Some(at) = at else {
        return Ok(store.collection(name)?);
    };
    store.collection_as_of(name, at).map_err(|e| match e {
        strata::Error::UnknownCollection { .. } => Failure {
            message: format!("no collection named {name:?} at {}", fmt::time(at)),
            code: 3,
        },
        e => e.into(),
    })
}

/// What `Collection::list` runs, with the page size and token left to the caller.
fn read_spec(c: &Collection) -> QuerySpec {
    let spec = c.spec().clone();
    match c.at() {
        Some(t) => spec.snapshot(Snapshot::AsOf(t)),
        None => spec,
    }
}

/// A definition as JSON: the query (in its JSON form), sort, page size, projection, retention.
fn definition_json(spec: &QuerySpec, options: &CollectionOptions) -> Value {
    json!({
        "query": spec.query,
        "sort": spec.sort,
        "limit": spec.limit,
        "select": spec.select,
        "retention": options.retention,
    })
}

/// A definition on one line: the query's JSON form, then its options.
fn describe(spec: &QuerySpec, options: &CollectionOptions) -> String {
    let mut out = spec.query.to_json();
    if !spec.sort.is_empty() {
        let keys: Vec<String> = spec
            .sort
            .iter()
            .map(|k| {
                if k.descending {
                    format!("{}:desc", k.field)
                } else {
                    k.field.clone()
                }
            })
            .collect();
        out += &format!("  sort {}", keys.join(","));
    }
    out += &format!("  limit {}", spec.limit);
    if let Some(select) = &spec.select {
        out += &format!("  select {}", select.join(","));
    }
    if let Some(r) = &options.retention {
        let mut parts = Vec::new();
        if let Some(n) = r.min_versions {
            parts.push(format!("min {n} versions"));
        }
        if let Some(n) = r.max_versions {
            parts.push(format!("max {n} versions"));
        }
        if let Some(s) = r.max_age_secs {
            parts.push(format!("max age {s} s"));
        }
        out += &format!("  retention {}", parts.join(", "));
    }
    out
}

fn list_collections(store: &Store, format: Format) -> Result<(), Failure> {
    let collections = store.collections()?;
    let mut rows = Vec::with_capacity(collections.len());
    for c in &collections {
        rows.push((c, c.count()?));
    }
    match format {
        Format::Json => {
            let list: Vec<Value> = rows
                .iter()
                .map(|(c, count)| {
                    let mut v = definition_json(c.spec(), c.options());
                    v["name"] = json!(c.name());
                    v["count"] = json!(count);
                    v["definition"] = meta_json(c.definition());
                    v
                })
                .collect();
            out!("{}", json!({"collections": list}));
        }
        Format::Table => {
            if rows.is_empty() {
                out!("no collections");
                return Ok(());
            }
            out!("{:<24} {:>8} {:>7} DEFINITION", "NAME", "COUNT", "VERSION");
            for (c, count) in &rows {
                out!(
                    "{:<24} {:>8} {:>7} {}",
                    c.name(),
                    count,
                    c.definition().version,
                    describe(c.spec(), c.options())
                );
            }
        }
    }
    Ok(())
}

fn history(store: &Store, name: &str, format: Format) -> Result<(), Failure> {
    let versions = store.collection_history(name)?;
    match format {
        Format::Json => {
            let list: Vec<Value> = versions
                .iter()
                .map(|v| {
                    json!({
                        "meta": meta_json(&v.meta),
                        "dropped": v.spec.is_none(),
                        "definition": v.spec.as_ref().map(|s| definition_json(s, &v.options)),
                    })
                })
                .collect();
            out!("{}", json!({"name": name, "versions": list}));
        }
        Format::Table => {
            out!("{:>7} {:>8} {:<27} DEFINITION", "VERSION", "SEQ", "UPDATED");
            for v in &versions {
                out!(
                    "{:>7} {:>8} {:<27} {}",
                    v.meta.version,
                    v.meta.seq,
                    fmt::time(v.meta.update_time_micros),
                    v.spec
                        .as_ref()
                        .map_or_else(|| "(dropped)".to_owned(), |s| describe(s, &v.options))
                );
            }
        }
    }
    Ok(())
}
