//! What the application's `receive()` and `send()` return: when the message is ready (a
//! body already queued, room for a response piece, the common case), an awaitable that is
//! complete from the start, so no coroutine, future or wake-up is made; otherwise the
//! waiting coroutine of `glue.py` (`receive_later`, `send_later`), which parks a future.
//!
//! Profiled on ASGI hello world, the per-call coroutine of a Python `async def send` (and
//! the two closures made per request) were a measurable share of the loop thread's time.
//! The awaitables are not coroutines: like Granian's, they suit `await`,
//! `asyncio.ensure_future` and `asyncio.wait_for`, not `asyncio.create_task`.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

/// An awaitable holding its result: `await` gives `value` without suspending.
#[pyclass(module = "ironhorse")]
pub(crate) struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    pub(crate) fn new(value: Py<PyAny>) -> Ready {
        Ready { value: Some(value) }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Ends at once, returning the value (an iterator's `StopIteration` carries it).
    fn __next__(&mut self) -> PyResult<Option<Py<PyAny>>> {
        match self.value.take() {
            Some(value) => Err(PyStopIteration::new_err((value,))),
            None => Ok(None),
        }
    }
}

/// An awaitable that gives `None` without suspending; stateless, so one serves every
/// `send` whose message was queued.
#[pyclass(module = "ironhorse", frozen)]
pub(crate) struct Done;

#[pymethods]
impl Done {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self) -> Option<Py<PyAny>> {
        None
    }
}

/// The loop's pieces a channel needs for its slow paths, made once per loop.
pub(crate) struct Waiting {
    /// `glue.receive_later(channel)`: a coroutine parking until a message comes.
    pub(crate) receive_later: Py<PyAny>,
    /// `glue.send_later(channel, message)`: a coroutine parking until there is room.
    pub(crate) send_later: Py<PyAny>,
    /// The shared [`Done`].
    pub(crate) done: Py<PyAny>,
}
