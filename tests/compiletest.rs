//! The compile-time promises of the neural type system, as trybuild UI tests: each file in
//! `tests/ui/fail` is one miswiring or macro misuse that must not compile, with the message a
//! user sees snapshotted beside it; each file in `tests/ui/pass` must compile and run.
//!
//! The snapshots belong to the compiler pinned in `rust-toolchain.toml`. After a deliberate
//! change, regenerate with `TRYBUILD=overwrite cargo test --test compiletest` and read each
//! `.stderr` as a user would before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
