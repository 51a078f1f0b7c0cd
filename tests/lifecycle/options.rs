//! Invalid retention and maintenance options are refused when the store opens.

use std::time::Duration;

use strata::{Error, MaintenanceOptions, Options, Retention, Store};

#[track_caller]
fn assert_invalid(what: &str, options: Options) {
    match Store::open_in_memory(options.clone()) {
        Err(Error::InvalidOption(msg)) => assert!(!msg.is_empty(), "{what}"),
        other => panic!("{what}: expected InvalidOption, got {other:?}"),
    }
    // On disk too, and nothing is left locked: the directory opens with valid options.
    let dir = tempfile::tempdir().unwrap();
    match Store::open(dir.path(), options) {
        Err(Error::InvalidOption(_)) => {}
        other => panic!("{what} (on disk): expected InvalidOption, got {other:?}"),
    }
    Store::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn invalid_retention_is_refused_at_open() {
    let base = crate::options;
    assert_invalid(
        "max_versions 0",
        base().with_retention("k", Retention::default().with_max_versions(0)),
    );
    assert_invalid(
        "min over max",
        base().with_retention(
            "k",
            Retention::default()
                .with_min_versions(3)
                .with_max_versions(2),
        ),
    );
    assert_invalid(
        "empty kind",
        base().with_retention("", Retention::default().with_max_versions(2)),
    );
    // One bad rule among good ones is enough.
    assert_invalid(
        "one bad rule",
        base()
            .with_retention("a", Retention::default().with_max_versions(2))
            .with_retention("b", Retention::default().with_max_versions(0)),
    );
}

#[test]
fn invalid_maintenance_is_refused_at_open() {
    let with = |m: MaintenanceOptions| crate::options().with_maintenance(m);
    assert_invalid(
        "io rate 0",
        with(MaintenanceOptions::default().with_compaction_io_rate(Some(0))),
    );
    assert_invalid(
        "interval 0",
        with(MaintenanceOptions::default().with_compaction_interval(Some(Duration::ZERO))),
    );
    let mut batch0 = MaintenanceOptions::default();
    batch0.expiry_batch = 0;
    assert_invalid("expiry batch 0", with(batch0));
}

#[test]
fn valid_edge_options_open() {
    let mut one = MaintenanceOptions::default()
        .with_compaction_interval(Some(Duration::from_millis(1)))
        .with_compaction_io_rate(None)
        .with_expire(false);
    one.expiry_batch = 1;
    for options in [
        crate::options().with_retention("k", Retention::default().with_max_versions(1)),
        crate::options().with_retention(
            "k",
            Retention::default()
                .with_min_versions(2)
                .with_max_versions(2),
        ),
        // A rule with no limit keeps everything; a floor alone is no limit.
        crate::options().with_retention("k", Retention::default()),
        crate::options().with_retention("k", Retention::default().with_min_versions(5)),
        crate::options().with_retention("k", Retention::default().with_max_age(Duration::ZERO)),
        Options::default().with_maintenance(one),
        Options::default().with_maintenance(
            MaintenanceOptions::default()
                .with_compaction_interval(None)
                .with_compaction_io_rate(Some(1)),
        ),
    ] {
        if let Err(e) = Store::open_in_memory(options.clone()) {
            panic!("{options:?}: {e}");
        }
    }
}
