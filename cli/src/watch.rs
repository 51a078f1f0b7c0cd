//! `strata watch 'QUERY'`: a continuous query ([`Store::subscribe`]) from the command line,
//! one line per event.

use std::time::Duration;

use clap::Args;
use serde_json::json;
use strata::{Event, EventKind, QuerySpec, SortKey, Store, SubscribeOptions};

use super::fmt;
use super::{Failure, Format};

/// Arguments of `strata watch`.
#[derive(Args)]
#[command(after_help = "\
Each event is one line, flushed at once: `ADDED /id v3 seq 17 at TIME {body}` (the body cut \
to 60 characters with an ellipsis; --format json has it whole) (EXISTING, \
ADDED, UPDATED, DELETED, STOPPED_MATCHING; `count N` before the body with --count), or with \
--format json one object per line: {\"kind\", \"id\", \"doc_kind\", \"version\", \"seq\", \
\"time\", \"time_micros\", \"count\", \"body\"}.

watch opens the store read-only: it takes no lock and writes nothing, so it never blocks the \
process that writes the store, and it follows that process's writes as they are made (it looks \
for new batches a few times a second). Dump a changes feed with --from-seq N --until-caught-up, \
then resume with --from-seq SEQ_OF_THE_LAST_EVENT. Without --limit or --until-caught-up, watch \
waits for events until interrupted (Ctrl-C).
")]
pub(crate) struct WatchArgs {
    /// The query in the text syntax (as for `strata query`); `*` matches everything.
    query: String,
    /// First print the documents that match now (EXISTING events), in --sort order.
    #[arg(long)]
    replay: bool,
    /// Print STOPPED_MATCHING when an update makes a matching document leave the result (the
    /// default; kept for scripts that ask for it).
    #[arg(long, hide = true, conflicts_with = "no_stopped")]
    stopped: bool,
    /// Do not print STOPPED_MATCHING events: only documents that match, and their deletion.
    #[arg(long)]
    no_stopped: bool,
    /// Print the number of matches after each event (a live count).
    #[arg(long)]
    count: bool,
    /// Print the changes after this seq: every version since then that matches, or that
    /// deletes (or, without --no-stopped, unmatches) a matching document. Resume a feed with the seq
    /// of the last event printed.
    #[arg(long, value_name = "N")]
    from_seq: Option<u64>,
    /// Print only these body fields (comma-separated dotted paths).
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    select: Option<Vec<String>>,
    /// The order of the --replay documents: `F` or `F:desc` (repeatable).
    #[arg(long, value_name = "F[:desc]", requires = "replay")]
    sort: Vec<String>,
    /// Exit after N events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Dump the backlog and exit: the replay, then the changes up to the log's last seq when
    /// watch started.
    #[arg(long)]
    until_caught_up: bool,
}

pub(crate) fn run(store: &Store, args: WatchArgs, format: Format) -> Result<(), Failure> {
    let query = strata::parse_query(&args.query)?;
    let mut spec = QuerySpec::new(query);
    for s in &args.sort {
        spec = spec.sort(SortKey::parse(s).map_err(strata::Error::from)?);
    }
    if let Some(select) = args.select {
        spec = spec.select(select);
    }
    let mut options = SubscribeOptions::default()
        .with_replay(args.replay)
        .with_stopped_matching(args.stopped || !args.no_stopped)
        .with_live_count(args.count);
    if let Some(seq) = args.from_seq {
        options = options.with_from_seq(seq);
    }
    if args.until_caught_up {
        // The log as it was when watch opened it: the subscription ends once the feed has
        // looked at every version up to its last seq.
        options = options.with_until_seq(store.last_seq());
    }
    let mut sub = store.subscribe(&spec, options)?;
    let mut left = args.limit.unwrap_or(u64::MAX);
    while left > 0 {
        match sub.recv_timeout(POLL) {
            Ok(Some(event)) => {
                print_event(format, &event);
                left -= 1;
            }
            // Everything read so far has been delivered: look for the writer's new batches.
            Ok(None) => {
                store.refresh()?;
            }
            Err(strata::Error::Closed | strata::Error::SubscriptionEnded { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// How long watch waits for an event before it looks for the writer's new batches: a timer
/// for following another process, not a synchronisation.
const POLL: Duration = Duration::from_millis(100);

fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Existing => "EXISTING",
        EventKind::Added => "ADDED",
        EventKind::Updated => "UPDATED",
        EventKind::Deleted => "DELETED",
        EventKind::StoppedMatching => "STOPPED_MATCHING",
    }
}

fn print_event(format: Format, e: &Event) {
    let m = &e.document.meta;
    match format {
        Format::Json => out!(
            "{}",
            json!({
                "kind": e.kind,
                "id": m.id,
                "doc_kind": m.kind,
                "version": m.version,
                "seq": m.seq,
                "time": fmt::time(m.update_time_micros),
                "time_micros": m.update_time_micros,
                "count": e.count,
                "body": e.document.body,
            })
        ),
        Format::Table => out!(
            "{} {} v{} seq {} at {}{}{}",
            kind_name(e.kind),
            m.id,
            m.version,
            m.seq,
            fmt::time(m.update_time_micros),
            e.count.map_or_else(String::new, |c| format!(" count {c}")),
            if m.deleted {
                String::new()
            } else {
                format!(" {}", fmt::body_line(&e.document.body, fmt::BODY_WIDTH))
            }
        ),
    }
    super::flush();
}
