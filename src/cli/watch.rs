//! `strata watch 'QUERY'`: a continuous query ([`Store::subscribe`]) from the command line,
//! one line per event.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use strata::{Event, EventKind, Query, QuerySpec, Snapshot, SortKey, Store, SubscribeOptions};

use super::time::format_micros;
use super::{Failure, Format};

/// How long `--until-caught-up` waits for a next event before it checks whether any matching
/// version is still to come.
const QUIET: Duration = Duration::from_millis(100);

/// How long `--until-caught-up` waits without an event for deletions the counts say are due
/// (a document that expired has no event, but leaves the count).
const GIVE_UP: Duration = Duration::from_secs(10);

/// Arguments of `strata watch`.
#[derive(Args)]
#[command(after_help = "\
Each event is one line, flushed at once: `ADDED /id v3 seq 17 at TIME {body}` (EXISTING, \
ADDED, UPDATED, DELETED, STOPPED_MATCHING; `count N` before the body with --count), or with \
--format json one object per line: {\"kind\", \"id\", \"doc_kind\", \"version\", \"seq\", \
\"time\", \"time_micros\", \"count\", \"body\"}.

watch opens the store, and an open store is locked: watch sees the changes after --from-seq \
and any made while it runs, which can only be its own (none), not those of another process. \
So from the command line it dumps a changes feed: --from-seq N --until-caught-up, then resume \
with --from-seq SEQ_OF_THE_LAST_EVENT. To follow live writes, use Store::subscribe in the \
process that owns the store. Without --limit or --until-caught-up, watch waits for events \
until interrupted (Ctrl-C).

--until-caught-up exits once no event came for 100 ms and no version up to the last seq is \
still to match; a deletion (or, with --stopped, an unmatching) that the feed reaches later \
than that, after a long run of other versions, is not waited for.")]
pub(crate) struct WatchArgs {
    /// The query in the text syntax (as for `strata query`); `*` matches everything.
    query: String,
    /// First print the documents that match now (EXISTING events), in --sort order.
    #[arg(long)]
    replay: bool,
    /// Also print STOPPED_MATCHING when an update makes a matching document leave the result.
    #[arg(long)]
    stopped: bool,
    /// Print the number of matches after each event (a live count).
    #[arg(long)]
    count: bool,
    /// Print the changes after this seq: every version since then that matches, or that
    /// deletes (or, with --stopped, unmatches) a matching document. Resume a feed with the seq
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
    let mut spec = QuerySpec::new(query.clone());
    for s in &args.sort {
        spec = spec.sort(SortKey::parse(s).map_err(strata::Error::from)?);
    }
    if let Some(select) = args.select {
        spec = spec.select(select);
    }
    // --until-caught-up follows every change of the count, unmatchings included (printed only
    // with --stopped): see `due`.
    let mut options = SubscribeOptions::default()
        .replay(args.replay)
        .stopped_matching(args.stopped || args.until_caught_up)
        .live_count(args.count);
    if let Some(seq) = args.from_seq {
        options = options.from_seq(seq);
    }
    // This process holds the store: no version after `target` comes but its own (none).
    let target = store.last_seq();
    let mut sub = store.subscribe(&spec, options)?;
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    // The replay comes first and at once; then live events, in seq order.
    let mut replay_done = !args.replay;
    let mut last_live = sub.start_seq();
    let mut last_event = Instant::now();
    while printed < limit {
        if args.until_caught_up && replay_done && last_live >= target {
            break;
        }
        let event = if args.until_caught_up {
            match sub.recv_timeout(QUIET)? {
                Some(event) => event,
                None => {
                    replay_done = true;
                    match due(store, &query, last_live, target)? {
                        Due::Nothing => break,
                        Due::Matches => continue,
                        Due::Unmatches(_) if last_event.elapsed() < GIVE_UP => continue,
                        Due::Unmatches(n) => {
                            eprintln!(
                                "strata: warning: stopped waiting after {} s without an event: \
                                 {n} matching document(s) at seq {last_live} no longer match at \
                                 seq {target}, by a change the feed has not reached yet or by \
                                 their expiry (which has no event)",
                                GIVE_UP.as_secs()
                            );
                            break;
                        }
                    }
                }
            }
        } else {
            sub.recv()?
        };
        last_event = Instant::now();
        if event.kind != EventKind::Existing {
            replay_done = true;
            last_live = event.seq();
        }
        if event.kind == EventKind::StoppedMatching && !args.stopped {
            continue;
        }
        print_event(format, &event);
        printed += 1;
    }
    Ok(())
}

/// What the feed still has to deliver up to seq `upto`, when it has delivered every event up
/// to seq `after`.
enum Due {
    /// Nothing.
    Nothing,
    /// At least one ADDED or UPDATED: a later version matches.
    Matches,
    /// No later version matches, but this many documents that matched at `after` do not at
    /// `upto`: each has a DELETED or STOPPED_MATCHING event due, unless it expired instead.
    Unmatches(u64),
}

/// Asks the index what the subscription has still to deliver. The feed tests each version with
/// the matcher the index agrees with, so a matching version after `after` is an event to come.
/// If there is none, the documents matching at `upto` are a subset of those matching at
/// `after` (none joined), and each that left has an event to come: the counts tell.
fn due(store: &Store, query: &Query, after: u64, upto: u64) -> Result<Due, Failure> {
    if after >= upto {
        return Ok(Due::Nothing);
    }
    let count = |spec: QuerySpec| -> Result<u64, Failure> {
        Ok(store.query(&spec.count(true).limit(0))?.count.unwrap_or(0))
    };
    let later = QuerySpec::new(query.clone().and(Query::range("_seq", (after + 1)..=upto)))
        .snapshot(Snapshot::AllVersions);
    if count(later)? > 0 {
        return Ok(Due::Matches);
    }
    let then = count(QuerySpec::new(query.clone()).snapshot(Snapshot::AtSeq(after)))?;
    let now = count(QuerySpec::new(query.clone()).snapshot(Snapshot::AtSeq(upto)))?;
    Ok(match then.saturating_sub(now) {
        0 => Due::Nothing,
        n => Due::Unmatches(n),
    })
}

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
                "time": format_micros(m.update_time_micros),
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
            format_micros(m.update_time_micros),
            e.count.map_or_else(String::new, |c| format!(" count {c}")),
            if m.deleted {
                String::new()
            } else {
                format!(" {}", e.document.body)
            }
        ),
    }
    super::flush();
}
