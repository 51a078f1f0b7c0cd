//! What an embedder's build of `strata` pulls in, read from cargo's own dependency tree: no
//! command-line parser (the CLI is its own package, `cli/`) and no test support (the crash
//! simulator and fault injection are behind the `test-support` feature).

use std::process::Command;

/// `cargo tree` of the library as a dependency of another crate: normal edges only, features.
fn library_tree() -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "strata",
            "-e",
            "normal,features",
            "--prefix",
            "none",
        ])
        .args(["--offline", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn the_library_depends_on_no_cli_and_no_test_support() {
    // `clap` and the CLI were dependencies of the library, and the crash simulator was public API.
    let tree = library_tree();
    assert!(tree.contains("strata-storage v"), "{tree}");
    for unwanted in ["clap", "test-support", "proptest", "rusqlite", "criterion"] {
        let lines: Vec<&str> = tree.lines().filter(|l| l.contains(unwanted)).collect();
        assert!(
            lines.is_empty(),
            "the library pulls in {unwanted}: {lines:?}"
        );
    }
}
