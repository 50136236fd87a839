//! The compile-time promises of the neural type system, as trybuild UI tests: each file in
//! `tests/ui/wiring` miswires the collections' real modules through `nemo::…` as a user's crate
//! would (eager `forward` and lazy `call`), each file in `tests/ui/fail` is one misuse of the
//! macros or the typed axis operations; all must fail to compile, with the message a user sees
//! snapshotted beside them. Each file in `tests/ui/pass` must compile and run.
//!
//! The snapshots belong to the compiler pinned in `rust-toolchain.toml`. After a deliberate
//! change, regenerate with `TRYBUILD=overwrite cargo test --test compiletest` and read each
//! `.stderr` as a user would before committing it.

use nemo_core::testing::TestResult;

#[test]
fn ui() {
    // The pass cases run in trybuild's own project directory; they find the repository's
    // fixtures through this variable.
    // SAFETY: set before trybuild starts any thread or child process, and read only by them.
    unsafe { std::env::set_var("NEMO_REPO_ROOT", env!("CARGO_MANIFEST_DIR")) };
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/wiring/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

/// The README's wiring example and its error are `tests/ui/wiring/readme.rs` and its snapshot,
/// so the README shows what the compiler really says.
#[test]
fn readme_example_is_a_ui_case() -> TestResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let case = std::fs::read_to_string(root.join("tests/ui/wiring/readme.rs"))?;
    let stderr = std::fs::read_to_string(root.join("tests/ui/wiring/readme.stderr"))?;
    let program = case
        .find("use std::sync::Arc;")
        .and_then(|i| case.get(i..))
        .ok_or("readme.rs has no `use std::sync::Arc;`")?;
    assert!(
        readme.contains(&format!("```rust\n{program}```")),
        "README.md's example differs from tests/ui/wiring/readme.rs"
    );
    let error = stderr.replace("tests/ui/wiring/readme.rs", "src/main.rs");
    assert!(
        readme.contains(&format!("```text\n{error}```")),
        "README.md's error differs from tests/ui/wiring/readme.stderr"
    );
    Ok(())
}

/// Every block of docs/neural-types.md marked `<!-- snapshot: PATH -->` is that snapshot.
#[test]
fn docs_show_the_snapshots_they_name() -> TestResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/neural-types.md"))?;
    let mut shown = 0;
    for part in doc.split("<!-- snapshot: ").skip(1) {
        let (path, rest) = part
            .split_once(" -->\n")
            .ok_or("unterminated snapshot marker")?;
        let snapshot = std::fs::read_to_string(root.join(path))?;
        assert!(
            rest.starts_with(&format!("```text\n{snapshot}```")),
            "docs/neural-types.md: the block after `{path}` differs from the snapshot"
        );
        shown += 1;
    }
    assert!(
        shown >= 3,
        "expected the docs to show snapshots, found {shown}"
    );
    Ok(())
}
