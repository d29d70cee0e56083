//! `--request-timeout` cuts a stuck request off by raising `TimeoutError` in its thread
//! (`PyThreadState_SetAsyncExc`). Python raises such an exception only when that thread next
//! runs bytecode; a request that ends first (its wait ended in Rust, and its error path ran
//! no more bytecode) leaves it pending in the thread's state, and the thread's next request
//! would die of it at its first line (a 500 for a request that did nothing wrong). So each
//! request, once it holds the GIL, clears what an earlier cancel left on its thread: a
//! cancel aims at a request already running, so nothing pending when one starts is its own.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::Python;

/// Cancels delivered so far. Process-wide, as the pending exceptions are: they live in the
/// interpreter's per-thread states, whichever application's request was cut off.
static DELIVERED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// `DELIVERED` when this thread last cleared.
    static CLEARED_AT: Cell<u64> = const { Cell::new(0) };
}

/// Raises `TimeoutError` in the thread whose id (`threading.get_ident()`) is `thread`.
pub(crate) fn deliver(_py: Python<'_>, thread: u64) {
    // SAFETY: the GIL is held (`_py`); the exception is a valid type object owned by the
    // interpreter; an unknown thread id only makes the call return 0.
    let found =
        unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(thread as _, pyo3::ffi::PyExc_TimeoutError) };
    if found > 0 {
        DELIVERED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Clears a `TimeoutError` an earlier request's cancel left pending on this thread. Costs
/// an atomic load unless a cancel was delivered since this thread last looked.
pub(crate) fn clear_stale(_py: Python<'_>) {
    let delivered = DELIVERED.load(Ordering::Relaxed);
    if CLEARED_AT.get() == delivered {
        return;
    }
    CLEARED_AT.set(delivered);
    // SAFETY: the GIL is held (`_py`); a null exception clears the thread's pending one,
    // if any; the id is the calling thread's own (CPython's thread identity).
    unsafe {
        let own = pyo3::ffi::PyThread_get_thread_ident();
        pyo3::ffi::PyThreadState_SetAsyncExc(own as _, std::ptr::null_mut());
    }
}
