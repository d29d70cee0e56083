//! `--request-timeout` cuts a stuck request off by raising `TimeoutError` in its thread
//! (`PyThreadState_SetAsyncExc`). Python raises such an exception only when that thread next
//! runs bytecode; a request that ends first (its wait ended in Rust, and its error path ran
//! no more bytecode) leaves it pending in the thread's state, and the thread's next request
//! would die of it at its first line (a 500 for a request that did nothing wrong). So each
//! request, once it holds the GIL, clears what a cancel delivered to its thread before the
//! request began; one delivered while it waited for the GIL is its own, and stays.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::Python;

/// Per thread (CPython's thread identity): cancels delivered to it. Threads register at
/// their first request; process-wide, as the pending exceptions themselves are.
fn delivered_to() -> &'static Mutex<HashMap<u64, Arc<AtomicU64>>> {
    static DELIVERED: OnceLock<Mutex<HashMap<u64, Arc<AtomicU64>>>> = OnceLock::new();
    DELIVERED.get_or_init(Default::default)
}

/// The calling thread's CPython identity (what `threading.get_ident()` gives).
fn own_id() -> u64 {
    // SAFETY: takes no arguments and only reads the calling thread's identity.
    unsafe { pyo3::ffi::PyThread_get_thread_ident() as u64 }
}

thread_local! {
    /// This thread's count in `delivered_to`.
    static MINE: Arc<AtomicU64> = {
        let mine = Arc::new(AtomicU64::new(0));
        (delivered_to().lock().unwrap_or_else(|e| e.into_inner())).insert(own_id(), mine.clone());
        mine
    };
    /// The count when this thread last cleared.
    static CLEARED_AT: Cell<u64> = const { Cell::new(0) };
}

/// Raises `TimeoutError` in the thread whose id (`threading.get_ident()`) is `thread`.
pub(crate) fn deliver(_py: Python<'_>, thread: u64) {
    // SAFETY: the GIL is held (`_py`); the exception is a valid type object owned by the
    // interpreter; an unknown thread id only makes the call return 0.
    let found =
        unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(thread as _, pyo3::ffi::PyExc_TimeoutError) };
    if found > 0 {
        let counts = delivered_to().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get(&thread) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Cancels delivered to this thread so far: taken as a request begins, before it waits for
/// the GIL.
pub(crate) fn delivered_so_far() -> u64 {
    MINE.with(|mine| mine.load(Ordering::Relaxed))
}

/// Clears a `TimeoutError` delivered to this thread before the request began (`before`,
/// from [`delivered_so_far`]). Costs a comparison unless such a cancel was delivered since
/// this thread last looked.
pub(crate) fn clear_stale(_py: Python<'_>, before: u64) {
    if CLEARED_AT.get() == before {
        return;
    }
    CLEARED_AT.set(before);
    // SAFETY: the GIL is held (`_py`); a null exception clears the thread's pending one, if
    // any; the id is the calling thread's own.
    unsafe {
        pyo3::ffi::PyThreadState_SetAsyncExc(own_id() as _, std::ptr::null_mut());
    }
    // One slot per thread: a cancel of this request while it waited for the GIL was just
    // cleared too; it is raised again.
    if delivered_so_far() != before {
        // SAFETY: as above; the exception is a valid type object owned by the interpreter.
        unsafe {
            pyo3::ffi::PyThreadState_SetAsyncExc(own_id() as _, pyo3::ffi::PyExc_TimeoutError);
        }
    }
}
