//! Page tokens that a store did not issue are `InvalidPageToken`: damaged, forged, garbage, of
//! another store, of this store before it was reopened. Never a panic, never another page.

use strata::{Query, QuerySpec, Store, TaskOptions, Tasks};

use crate::{fill, ids, is_invalid_token, memory_store, reopen};

fn assert_invalid(tasks: &Tasks, token: &str) {
    let outcome = tasks.page(token);
    assert!(
        matches!(&outcome, Err(e) if is_invalid_token(e)),
        "token {token:?}: {outcome:?}"
    );
}

/// A store with 20 documents of kind `k` and a task over them in pages of 5; returns the
/// store and the task's token for page 1.
fn paged(store: &Store) -> String {
    fill(store, "k", 20);
    let spec = QuerySpec::new(Query::kind("k")).limit(5);
    store
        .tasks()
        .run(&spec, TaskOptions::default())
        .unwrap()
        .next_page
        .expect("a second page")
}

#[test]
fn a_token_with_any_digit_changed_is_refused() {
    let store = memory_store();
    let token = paged(&store);
    let tasks = store.tasks();
    let page = tasks.page(&token).unwrap();
    let page2 = page.next_page.clone().unwrap();
    for valid in [&token, &page2] {
        // Regression: task tokens were 56 hex characters.
        assert!(valid.len() <= 16, "{} characters: {valid}", valid.len());
        assert!(
            valid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{valid}"
        );
        for i in 0..valid.len() {
            for other in [b'0', b'7', b'f', b'A', b'_'] {
                let mut bytes = valid.clone().into_bytes();
                if bytes[i] != other {
                    bytes[i] = other;
                    assert_invalid(&tasks, std::str::from_utf8(&bytes).unwrap());
                }
            }
        }
    }
    // Both still work, and give their own pages.
    assert_eq!(tasks.page(&token).unwrap(), page);
    assert_eq!(ids(&tasks.page(&page2).unwrap()), ids_range(10..15));
}

fn ids_range(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("/k/{i:04}")).collect()
}

#[test]
fn garbage_tokens_are_refused() {
    let store = memory_store();
    let token = paged(&store);
    let tasks = store.tasks();
    let n = token.len();
    let garbage = [
        String::new(),
        " ".into(),
        "garbage".into(),
        "0".into(),
        "0".repeat(n),
        "f".repeat(n),
        "g".repeat(n),
        "0".repeat(n * 2),
        format!("{token}0"),
        format!("0{token}"),
        token[..n - 1].to_string(),
        token[1..].to_string(),
        format!("+{}", &token[1..]),
        format!("-{}", &token[1..]),
        format!(" {}", &token[1..]),
        format!("{}\n", &token[..n - 1]),
        "é".repeat(n / 2),
        format!("{}é", &token[..n - 2]),
        format!("{}\0", &token[..n - 1]),
        token.replace(|c: char| c.is_ascii_digit(), "x") + "x",
        token.replace(|c: char| c.is_ascii_lowercase(), "-") + "-",
        // A token of the query layer, not of a task.
        store
            .query(&QuerySpec::new(Query::kind("k")).limit(5))
            .unwrap()
            .next_page
            .unwrap(),
    ];
    for g in &garbage {
        assert_invalid(&tasks, g);
    }
    // A task token is not a token of the query layer either.
    let direct = store.query(
        &QuerySpec::new(Query::kind("k"))
            .limit(5)
            .page(token.clone()),
    );
    assert!(
        matches!(&direct, Err(e) if is_invalid_token(e)),
        "{direct:?}"
    );
    assert_eq!(ids(&tasks.page(&token).unwrap()), ids_range(5..10));
}

#[test]
fn a_token_of_another_open_store_is_refused() {
    // Two stores with the same documents and the same task ids.
    let (a, b) = (memory_store(), memory_store());
    let token_a = paged(&a);
    let token_b = paged(&b);
    assert_eq!(a.tasks().list()[0].id, b.tasks().list()[0].id);
    assert_ne!(token_a, token_b);
    assert_invalid(&b.tasks(), &token_a);
    assert_invalid(&a.tasks(), &token_b);
    // Each store's own token works.
    assert_eq!(ids(&a.tasks().page(&token_a).unwrap()), ids_range(5..10));
    assert_eq!(ids(&b.tasks().page(&token_b).unwrap()), ids_range(5..10));
}

#[test]
fn a_token_from_before_the_store_was_reopened_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let token = paged(&store);
    drop(store);
    let store = reopen(dir.path());
    let tasks = store.tasks();
    assert_invalid(&tasks, &token);
    // The reopened store's own task gets id 1 again: the old token still does not fit it.
    let spec = QuerySpec::new(Query::kind("k")).limit(5);
    let fresh = tasks.run(&spec, TaskOptions::default()).unwrap();
    assert_eq!(tasks.list()[0].id, 1);
    assert_invalid(&tasks, &token);
    let next = fresh.next_page.unwrap();
    assert_ne!(next, token);
    assert_eq!(ids(&tasks.page(&next).unwrap()), ids_range(5..10));
}

#[test]
fn a_token_past_the_last_page_is_not_issued() {
    let store = memory_store();
    fill(&store, "e", 4);
    let tasks = store.tasks();
    let r = tasks
        .run(
            &QuerySpec::new(Query::kind("e")).limit(4),
            TaskOptions::default(),
        )
        .unwrap();
    assert_eq!(r.documents.len(), 4);
    // Either no token, or one for an empty last page.
    if let Some(t) = r.next_page {
        let last = tasks.page(&t).unwrap();
        assert!(last.documents.is_empty());
        assert_eq!(last.next_page, None);
    }
}
