//! The compile-time promises of the neural type system, as trybuild UI tests: each file in
//! `tests/ui/wiring` miswires the collections' real modules through `nemo::…` as a user's crate
//! would (eager `forward` and lazy `call`), each file in `tests/ui/fail` is one misuse of the
//! macros or the typed axis operations; all must fail to compile, with the message a user sees
//! snapshotted beside them. Each file in `tests/ui/pass` must compile and run.
//!
//! The snapshots belong to the compiler pinned in `rust-toolchain.toml`. After a deliberate
//! change, regenerate with `TRYBUILD=overwrite cargo test --test compiletest` and read each
//! `.stderr` as a user would before committing it.

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
