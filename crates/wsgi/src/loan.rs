//! What the two loans of a request (the body reader to `wsgi.input`, the response sink to
//! `write()`) share: a slot holding a pointer for the scope of one call, cleared when that
//! scope ends by return or by unwinding.

use std::sync::{Mutex, MutexGuard};

/// Locks, ignoring poisoning (a panic in an application call must not wedge the slot).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Empties `slot` when dropped; a local of the lending function, so callers cannot leak it.
pub(crate) struct Clear<'a, P>(pub(crate) &'a Mutex<Option<P>>);

impl<P> Drop for Clear<'_, P> {
    fn drop(&mut self) {
        *lock(self.0) = None;
    }
}
