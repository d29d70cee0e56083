//! The Python objects a request lends its application — `start_response` (with its
//! `write`) and `wsgi.input` — kept for the same thread's next request when the application
//! kept no reference to them: making and freeing them was ≈ 10 % of a hello-world
//! request's user-space work.
//!
//! An object is kept only when the reference held here is its only one once the request is
//! over (no `environ`, frame, traceback or other thread holds it), so no one can tell it
//! from a new object; it is then reset to a new object's state. The pyclasses take no weak
//! references; the bound `start_response` method does, and is kept only without any. A
//! response stream holds only its request's Rust state, which a kept `start_response` then
//! replaces instead of resetting. One set per OS thread: nothing is shared between threads,
//! and a set never leaves its thread while a loan of its request is live.

use std::cell::Cell;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::input::{BodySlot, WsgiInput};
use crate::start_response::{HeadCache, Shared, StartResponse};

thread_local! {
    static SPARE: Cell<Option<Spare>> = const { Cell::new(None) };
}

/// How many references `obj` has; `isize::MAX` where that cannot be relied upon (a
/// free-threaded build counts them per thread and shared).
pub(crate) fn references(obj: &Bound<'_, PyAny>) -> isize {
    if cfg!(Py_GIL_DISABLED) {
        return isize::MAX;
    }
    // SAFETY: `obj` is a live object (the `Bound` holds a reference) and the GIL is held
    // (`Bound` proves it), so reading its reference count is a plain read nobody races.
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

/// Whether the caller's reference to `obj` is its only one: then nothing else can reach it
/// (a pyclass takes no weak references) until the caller hands it out.
pub(crate) fn sole_reference(obj: &Bound<'_, PyAny>) -> bool {
    references(obj) == 1
}

/// Whether `f`, a bound builtin method, has no weak references (which could reach it
/// without a reference of their own).
#[cfg(all(not(Py_LIMITED_API), not(PyPy), not(GraalPy)))]
pub(crate) fn no_weak_references(f: &Bound<'_, PyAny>) -> bool {
    if !f.is_instance_of::<pyo3::types::PyCFunction>() {
        return false;
    }
    // SAFETY: `f` is a live `builtin_function_or_method` (or its subtype for `METH_METHOD`,
    // which starts with the same struct), checked just above, and the GIL is held.
    unsafe {
        (*f.as_ptr().cast::<pyo3::ffi::PyCFunctionObject>())
            .m_weakreflist
            .is_null()
    }
}

/// Cannot be read under the stable ABI: never assumed.
#[cfg(not(all(not(Py_LIMITED_API), not(PyPy), not(GraalPy))))]
pub(crate) fn no_weak_references(_f: &Bound<'_, PyAny>) -> bool {
    false
}

/// `start_response` as a request lends it: the object, and what the application calls.
struct Start {
    object: Py<StartResponse>,
    callable: Py<PyAny>,
}

/// One request's objects: taken from this thread's spares (or made), and handed back.
#[derive(Default)]
pub(crate) struct Spare {
    start: Option<Start>,
    input: Option<Py<WsgiInput>>,
    /// A `start_response` of another application, to be released with the GIL held.
    stale: Option<Start>,
}

impl Spare {
    /// This thread's spare objects for an application whose head cache is `heads`.
    pub(crate) fn take(heads: &Arc<HeadCache>) -> Spare {
        let mut spare = SPARE.with(Cell::take).unwrap_or_default();
        if let Some(start) = spare
            .start
            .take_if(|s| !Arc::ptr_eq(s.object.get().heads(), heads))
        {
            spare.stale = Some(start);
        }
        spare
    }

    /// Hands the objects still here to this thread's next request. Call once the request's
    /// loans are over.
    pub(crate) fn put(self) {
        if self.start.is_some() || self.input.is_some() {
            SPARE.with(|s| s.set(Some(self)));
        }
    }

    /// The body slot `wsgi.input` reads from: the kept object's, or a new one.
    pub(crate) fn body_slot(&self) -> Arc<BodySlot> {
        self.input
            .as_ref()
            .map_or_else(BodySlot::new, |input| input.get().slot.clone())
    }

    /// The state `start_response` and `write` share: the kept object's, or a new one.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.start
            .as_ref()
            .map_or_else(Shared::new, |start| start.object.get().shared())
    }

    /// The request's `start_response` (the callable the application gets) and
    /// `wsgi.input`, made around `shared` and `slot` unless kept ones are here.
    pub(crate) fn objects<'a, 'py>(
        &'a mut self,
        py: Python<'py>,
        shared: &Arc<Shared>,
        slot: &Arc<BodySlot>,
        heads: &Arc<HeadCache>,
    ) -> PyResult<(&'a Bound<'py, PyAny>, &'a Bound<'py, WsgiInput>)> {
        drop(self.stale.take());
        // Kept ones were checked when their last request ended; the loans of this request
        // are on their slots already. (Server objects fished out of `gc.get_objects()` are
        // out of any guarantee, as the connection's environ template is.)
        let start = match self.start.take() {
            Some(start) => start,
            None => {
                let object = StartResponse::new(py, shared.clone(), heads.clone())?;
                let callable = StartResponse::callable(&object)?;
                Start {
                    object: object.unbind(),
                    callable,
                }
            }
        };
        let input = match self.input.take() {
            Some(input) => input,
            None => Py::new(py, WsgiInput::new(slot.clone()))?,
        };
        let (start, input) = (self.start.insert(start), self.input.insert(input));
        Ok((start.callable.bind(py), input.bind(py)))
    }

    /// Once the request is over (its response converted, its Python values released):
    /// keeps each object nobody else refers to, reset, and lets go of the others.
    pub(crate) fn recycle(&mut self, py: Python<'_>) {
        drop(self.stale.take());
        if self
            .start
            .as_ref()
            .is_some_and(|s| !StartResponse::recycle(s.object.bind(py), s.callable.bind(py)))
        {
            self.start = None;
        }
        if self
            .input
            .as_ref()
            .is_some_and(|i| !WsgiInput::recycle(i.bind(py)))
        {
            self.input = None;
        }
    }
}
