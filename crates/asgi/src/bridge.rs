//! The crossing between the server's threads and the worker's event-loop thread.
//!
//! Drivers push commands (a new request, a wake-up for a parked task) into one queue; the
//! first command into an empty queue writes a byte to a socket pair whose other end the
//! loop watches (`loop.add_reader`). The loop then takes the whole queue in one call
//! ([`Inbox::drain`]), so a burst of requests costs one wake-up and one crossing.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use ironhorse_wsgi::doorbell::{Doorbell, Pending};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::awaitable::{Done, Waiting};
use crate::channel::{Channel, Shared};
use crate::lag::LagReports;
use crate::scope::{http_scope, RequestParts, ScopeCache, ScopeConfig};

/// Work for the loop.
pub(crate) enum Command {
    /// A new request: its channel's state and what its scope is made of.
    Start(Arc<Shared>, Box<RequestParts>),
    /// A parked future of this request may complete (or its task must be cancelled).
    Wake(Arc<Shared>),
}

/// The server's side of the crossing.
pub(crate) struct Bridge {
    queue: Doorbell<Command>,
    /// WebSockets whose application fell behind (its receive queue filled): their sessions
    /// wait for the application, not for input, so the server's stop reaches them only
    /// through a wake-up from here (see [`Bridge::wake_behind`]).
    behind: Mutex<Vec<Weak<Shared>>>,
}

impl Bridge {
    /// The bridge and the loop's end of its bell.
    pub(crate) fn new() -> std::io::Result<(Arc<Bridge>, UnixStream)> {
        let (queue, ear) = Doorbell::new()?;
        let behind = Mutex::default();
        Ok((Arc::new(Bridge { queue, behind }), ear))
    }

    /// Lists a WebSocket whose application is behind (once per connection).
    pub(crate) fn note_behind(&self, shared: &Arc<Shared>) {
        let mut behind = self.behind.lock().unwrap_or_else(|e| e.into_inner());
        behind.push(Arc::downgrade(shared));
    }

    /// Forgets the connections that ended; once the server stops, wakes the sessions of
    /// the others, which then see the stop and close with 1001 (a session waiting for its
    /// application is not among those the driver tells).
    fn wake_behind(&self) {
        let stopping = ironhorse_sys::signals::stop_requested().is_some();
        let live: Vec<Arc<Shared>> = {
            let mut behind = self.behind.lock().unwrap_or_else(|e| e.into_inner());
            behind.retain(|w| w.strong_count() > 0);
            if !stopping {
                return;
            }
            behind.iter().filter_map(Weak::upgrade).collect()
        };
        for shared in live {
            (shared.wake)();
        }
    }

    fn push(&self, command: Option<Command>) {
        self.queue.push(command);
    }

    pub(crate) fn start(&self, shared: Arc<Shared>, parts: RequestParts) {
        self.push(Some(Command::Start(shared, Box::new(parts))));
    }

    pub(crate) fn wake(&self, shared: Arc<Shared>) {
        self.push(Some(Command::Wake(shared)));
    }

    pub(crate) fn stop(&self) {
        self.push(None);
    }

    fn take(&self) -> Pending<Command> {
        self.queue.take()
    }
}

/// How the loop thread reports its lifespan to the server.
pub(crate) enum LoopReport {
    /// Startup finished: `Err` with the application's message if it failed.
    Started(Result<(), String>),
    /// The lifespan shutdown finished (`Err`: it failed).
    Stopped(Result<(), String>),
}

/// The loop's side of the crossing (the `inbox` of `glue.py`).
#[pyclass(module = "ironhorse", frozen)]
pub(crate) struct Inbox {
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) ear: UnixStream,
    pub(crate) config: ScopeConfig,
    pub(crate) reports: Mutex<Sender<LoopReport>>,
    /// The lifespan state; each request's scope gets a shallow copy.
    pub(crate) state: Mutex<Option<Py<PyDict>>>,
    /// Where the loop-lag probe reports, once the process has a meter.
    pub(crate) lag: Arc<LagReports>,
    /// The glue's waiting coroutines (`set_waiting`), which every channel gets.
    pub(crate) waiting: OnceLock<Arc<Waiting>>,
    /// Scope pieces repeated from one request to the next (only the loop thread builds).
    pub(crate) cache: Mutex<ScopeCache>,
}

#[pymethods]
impl Inbox {
    /// Everything queued: the new requests as `(channel, scope)` pairs (parked futures of
    /// woken requests are completed here); `None` once the server stops.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyTuple>>>> {
        let mut sink = [0u8; 256];
        while matches!((&self.ear).read(&mut sink), Ok(n) if n > 0) {}
        let queue = self.bridge.take();
        let state = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.bind(py).clone());
        let mut starts = Vec::new();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let waiting = self.waiting.get().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("set_waiting was not called")
        })?;
        for command in queue.commands {
            match command {
                Command::Start(shared, parts) => {
                    let scope = http_scope(py, &parts, &self.config, state.as_ref(), &mut cache)?;
                    let waiting = waiting.clone();
                    let channel = Bound::new(py, Channel { shared, waiting })?;
                    starts.push(PyTuple::new(py, [channel.into_any(), scope.into_any()])?);
                }
                Command::Wake(shared) => wake(py, &shared)?,
            }
        }
        if queue.stop && starts.is_empty() {
            return Ok(None);
        }
        if queue.stop {
            // Serve these first; the stop is seen on the next drain.
            self.bridge.stop();
        }
        Ok(Some(starts))
    }

    /// The coroutines `receive()` and `send()` return when they must wait (see
    /// [`crate::awaitable`]).
    fn set_waiting(
        &self,
        py: Python<'_>,
        receive_later: Py<PyAny>,
        send_later: Py<PyAny>,
    ) -> PyResult<()> {
        let done = Py::new(py, Done)?.into_any();
        let _ = self.waiting.set(Arc::new(Waiting {
            receive_later,
            send_later,
            done,
        }));
        Ok(())
    }

    /// The lifespan startup ended: `failure` is `None` or the application's message.
    fn started(&self, failure: Option<String>, state: Py<PyDict>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
        self.report(LoopReport::Started(failure.map_or(Ok(()), Err)));
    }

    /// The lifespan shutdown ended.
    fn stopped(&self, failure: Option<String>) {
        self.report(LoopReport::Stopped(failure.map_or(Ok(()), Err)));
    }

    /// The loop-lag probe ran `lag` seconds late; the next one is due in `next_in`. The
    /// probe's tick also serves WebSockets whose application is behind when the server stops.
    fn loop_lag(&self, lag: f64, next_in: f64) {
        self.bridge.wake_behind();
        let seconds = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default();
        self.lag.probe(seconds(lag), seconds(next_in));
    }

    fn log_info(&self, line: &str) {
        eprintln!("[ironhorse] [{}] [INFO] {line}", std::process::id());
    }

    /// The descriptor the loop watches.
    fn fileno(&self) -> i32 {
        self.ear.as_raw_fd()
    }
}

impl Inbox {
    pub(crate) fn fileno_raw(&self) -> i32 {
        self.ear.as_raw_fd()
    }

    fn report(&self, report: LoopReport) {
        let _ = self
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(report);
    }
}

/// Cancels `task` after `grace` (`--asgi-disconnect-grace-period`: time for a task whose
/// client left to see the disconnect, by `receive` or a `send` raising, and end by itself;
/// a no-op if it ended by then).
pub(crate) fn cancel_later(py: Python<'_>, task: &Py<PyAny>, grace: Duration) -> PyResult<()> {
    let task = task.bind(py);
    let cancel = task.getattr("cancel")?;
    task.call_method0("get_loop")?
        .call_method1("call_later", (grace.as_secs_f64(), cancel))?;
    Ok(())
}

/// Completes a woken request's parked futures, cancels its task, or arms the cancellation
/// of a task whose client left.
fn wake(py: Python<'_>, shared: &Shared) -> PyResult<()> {
    let (waiters, cancel, abandoned) = {
        let mut state = shared.lock();
        let cancel = if state.cancel {
            state.task.take()
        } else {
            None
        };
        // Without a task yet, `set_task` arms it (the flag stays).
        let abandoned = match &state.task {
            Some(task) if state.abandoned => Some(task.clone_ref(py)),
            _ => None,
        };
        if abandoned.is_some() {
            state.abandoned = false;
        }
        (Shared::take_waiters(&mut state), cancel, abandoned)
    };
    if let Some(task) = abandoned {
        cancel_later(py, &task, shared.grace)?;
    }
    for waiter in waiters.into_iter().flatten() {
        let waiter = waiter.bind(py);
        if !waiter.call_method0("done")?.is_truthy()? {
            waiter.call_method1("set_result", (py.None(),))?;
        }
    }
    if let Some(task) = cancel {
        task.bind(py).call_method0("cancel")?;
    }
    Ok(())
}
