//! The crossing between the server's threads and the worker's gevent hub thread.
//!
//! The same hand-off as the ASGI loop's: drivers push commands (a new request, a wake-up
//! for a parked greenlet) into one queue; the first command into an empty queue writes a
//! byte to a socket pair whose other end the hub watches. The hub's drainer greenlet then
//! takes the whole queue in one call ([`Inbox::drain`]): a burst costs one wake-up.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use ironhorse_wsgi::doorbell::{Doorbell, Pending};
use pyo3::prelude::*;

use crate::channel::{GreenChannel, Shared};
use crate::pulse::{Pulse, TICK};
use crate::watchdog::HubThread;

/// Work for the hub.
pub(crate) enum Command {
    /// A new request: spawn a greenlet for it.
    Start(Arc<Shared>),
    /// A parked greenlet of this request may go on (or must be killed).
    Wake(Arc<Shared>),
}

/// The server's side of the crossing.
pub(crate) struct Bridge {
    queue: Doorbell<Command>,
}

impl Bridge {
    /// The bridge and the hub's end of its bell.
    pub(crate) fn new() -> std::io::Result<(Arc<Bridge>, UnixStream)> {
        let (queue, ear) = Doorbell::new()?;
        Ok((Arc::new(Bridge { queue }), ear))
    }

    pub(crate) fn send(&self, command: Option<Command>) {
        self.queue.push(command);
    }

    fn take(&self) -> Pending<Command> {
        self.queue.take()
    }
}

/// How the hub thread reports to the server.
pub(crate) enum HubReport {
    /// The application is imported and the hub serves (`Err`: why not, one line).
    Started(Result<(), String>),
    /// Every greenlet finished; the hub returned.
    Stopped,
}

/// The hub's side of the crossing (the `inbox` of `glue.py`).
#[pyclass(module = "ironhorse", frozen)]
pub(crate) struct Inbox {
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) ear: UnixStream,
    pub(crate) reports: Mutex<Sender<HubReport>>,
    pub(crate) hub: HubThread,
    pub(crate) pulse: Pulse,
}

#[pymethods]
impl Inbox {
    /// The new requests' channels (parked greenlets of woken requests are set going, killed
    /// ones killed, here); `None` once serving ends.
    fn drain(&self, py: Python<'_>) -> PyResult<Option<Vec<Py<GreenChannel>>>> {
        let mut sink = [0u8; 256];
        while matches!((&self.ear).read(&mut sink), Ok(n) if n > 0) {}
        let queue = self.bridge.take();
        let mut starts = Vec::new();
        for command in queue.commands {
            match command {
                Command::Start(shared) => starts.push(Py::new(py, GreenChannel::new(shared))?),
                Command::Wake(shared) => {
                    // One request's failure (a kill refused) must not stop the drainer.
                    if let Err(e) = shared.wake_up(py) {
                        ironhorse_wsgi::embed::log_exception(py, &e, "gevent wake-up failed");
                    }
                }
            }
        }
        if queue.stop && starts.is_empty() {
            return Ok(None);
        }
        if queue.stop {
            // Serve these first; the stop is seen on the next drain.
            self.bridge.send(None);
        }
        Ok(Some(starts))
    }

    /// The hub thread's Python id, for the timeout watchdog.
    fn hub_thread(&self, id: u64) {
        self.hub.set(id);
    }

    /// The hub turned (its timer, every `tick_seconds`).
    fn tick(&self) {
        self.pulse.tick();
    }

    /// How often the hub ticks, in seconds.
    #[getter]
    fn tick_seconds(&self) -> f64 {
        TICK.as_secs_f64()
    }

    /// The descriptor the hub watches.
    fn fileno(&self) -> i32 {
        self.ear.as_raw_fd()
    }

    fn log_info(&self, line: &str) {
        eprintln!("[ironhorse] [{}] [INFO] {line}", std::process::id());
    }

    /// Every greenlet finished.
    fn stopped(&self) {
        let reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        let _ = reports.send(HubReport::Stopped);
    }
}
