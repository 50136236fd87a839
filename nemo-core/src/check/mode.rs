//! Whether runtime checks run, per thread, with scoped guards.

use std::cell::Cell;

#[derive(Clone, Copy)]
struct Mode {
    enabled: bool,
    semantic: bool,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode { enabled: true, semantic: true }) };
}

/// Whether runtime type checks run on this thread.
#[inline]
pub fn checks_enabled() -> bool {
    MODE.with(|m| m.get().enabled)
}

/// Whether the semantic part of the checks (element types and their parameters) runs on this
/// thread; shape, dtype and device checks do not depend on it.
#[inline]
pub fn semantic_checks_enabled() -> bool {
    MODE.with(|m| {
        let m = m.get();
        m.enabled && m.semantic
    })
}

/// Restores the check mode that was in force when it was made.
#[must_use = "checks are restored when the guard drops; bind it to a variable"]
pub struct CheckGuard {
    previous: Mode,
    // A guard restores thread-local state, so it must stay on its thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for CheckGuard {
    fn drop(&mut self) {
        let previous = self.previous;
        MODE.with(|m| m.set(previous));
    }
}

fn set(f: impl FnOnce(&mut Mode)) -> CheckGuard {
    MODE.with(|m| {
        let previous = m.get();
        let mut next = previous;
        f(&mut next);
        m.set(next);
        CheckGuard {
            previous,
            _not_send: std::marker::PhantomData,
        }
    })
}

/// Disables all runtime checks on this thread until the guard drops.
///
/// ```
/// use nemo_core::check::{checks_enabled, disable_checks};
/// {
///     let _off = disable_checks();
///     assert!(!checks_enabled());
/// }
/// assert!(checks_enabled());
/// ```
pub fn disable_checks() -> CheckGuard {
    set(|m| m.enabled = false)
}

/// Disables the semantic checks (element types and parameters) on this thread until the guard
/// drops; shapes, dtypes and devices are still checked.
pub fn disable_semantic_checks() -> CheckGuard {
    set(|m| m.semantic = false)
}
