//! The README's example, kept compiling and running: `cargo run -p strata --example quickstart`.

use serde_json::json;
use strata::{Batch, Error, Expect, Options, Store};

#[derive(serde::Serialize, serde::Deserialize)]
struct User {
    name: String,
}

fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path(), Options::default())?; // Sync durability by default

    let v0 = store.put(
        "/users/ada",
        "user",
        json!({"name": "Ada", "langs": ["en"]}),
    )?;
    store.patch("/users/ada", json!({"langs": ["en", "fr"]}))?; // RFC 7386 merge patch

    // Optimistic concurrency: a stale expected version is a typed conflict, nothing is written.
    match store.patch_if("/users/ada", json!({"name": "A."}), Expect::Version(0)) {
        Err(Error::Conflict { actual, .. }) => assert_eq!(actual, Some(1)),
        other => panic!("{other:?}"),
    }

    // An atomic batch: after a crash, all of it or none of it.
    store.write(
        Batch::new()
            .put("/users/bob", "user", json!({"name": "Bob"}))
            .delete_if("/users/ada", Expect::Version(1)),
    )?;

    assert!(store.get("/users/ada")?.is_none()); // deleted now…
    let then = store.get_at("/users/ada", v0.update_time_micros)?; // …but not then
    assert_eq!(then.expect("present then").body["langs"], json!(["en"]));
    assert_eq!(store.history("/users/ada")?.len(), 3); // versions 0, 1, 2 (tombstone)
    for doc in store.list("/users/") {
        println!("{}", doc?.meta.id);
    }

    store.put_as("/users/cy", "user", &User { name: "Cy".into() })?;
    let cy: Option<User> = store.get_as("/users/cy")?;
    assert_eq!(cy.map(|u| u.name).as_deref(), Some("Cy"));

    // JSON text as you have it: checked, stored as given, read back byte for byte (past ones too).
    let d0 = store.put_raw("/users/dee", "user", r#"{"name": "Dee", "age": 40}"#)?;
    store.patch("/users/dee", json!({"age": 41}))?; // keys keep their order
    assert_eq!(
        store.get_raw("/users/dee")?.expect("present").body,
        br#"{"name":"Dee","age":41}"#
    );
    assert_eq!(
        store
            .get_raw_at("/users/dee", d0.update_time_micros)?
            .expect("present then")
            .body,
        br#"{"name": "Dee", "age": 40}"#
    );
    Ok(())
}
