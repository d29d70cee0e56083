//! One request's state, shared by the HTTP session (through
//! [`SessionEnd`](crate::session_end::SessionEnd), the `AppExchange` it holds) and the request's greenlet (through [`GreenChannel`], what
//! `glue.py`'s `wsgi.input`, `start_response`, `write()` and body iteration call).
//!
//! Both queues are bounded, as on the ASGI path: the session stops reading the body while
//! the greenlet has not taken what it was given, and the greenlet waits (its `gevent.event.
//! Event` parked here, set by the hub's drainer) while the client has not taken the
//! response. Each side wakes the other only when it waits. Bodies up to
//! `--buffer-request-body` are read whole before the greenlet is even spawned.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ironhorse_app::{AppEvent, ConnInfo, RequestHead, Wake};
use ironhorse_wsgi::green::{body_bytes, parse_head, GreenEnviron, Refusal};
use pyo3::exceptions::{PyAssertionError, PyOSError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::bridge::{Bridge, Command};

/// Body chunks queued for the greenlet before the session stops reading.
pub(crate) const BODY_QUEUE: usize = 4;
/// Response bytes queued for the client before the greenlet waits.
const EVENT_BYTES: usize = 256 * 1024;
/// Response pieces queued for the client before the greenlet waits.
const EVENT_QUEUE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No `start_response` yet.
    Before,
    /// Started; the head may still be held (nothing sent).
    Started,
    Done,
}

pub(crate) struct State {
    pub(crate) body: VecDeque<Vec<u8>>,
    /// The session passed the last body chunk.
    pub(crate) body_closed: bool,
    pub(crate) body_wanted: bool,
    /// The length of a body read whole before the start (its `CONTENT_LENGTH`).
    pub(crate) body_length: Option<u64>,
    /// The client is gone (or the session dropped its end).
    pub(crate) gone: bool,
    /// `--request-timeout`: the greenlet is to be killed.
    pub(crate) cancel: bool,
    pub(crate) events: VecDeque<AppEvent>,
    pub(crate) event_bytes: usize,
    pub(crate) phase: Phase,
    /// `start_response`'s head, held until the first body bytes so both leave together.
    pub(crate) held_head: Option<(u16, ironhorse_app::HeaderList, Option<u64>)>,
    /// The waiting greenlet's event.
    pub(crate) waiter: Option<Py<PyAny>>,
    /// The request's greenlet (to kill on a timeout).
    pub(crate) task: Option<Py<PyAny>>,
    /// A wake-up for the hub is queued already.
    pub(crate) wake_queued: bool,
    /// The greenlet ended.
    pub(crate) ended: bool,
}

/// What both ends share.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Wake,
    pub(crate) head: RequestHead,
    conn: ConnInfo,
    environ: Arc<GreenEnviron>,
}

impl Shared {
    pub(crate) fn new(
        wake: Wake,
        head: RequestHead,
        conn: ConnInfo,
        environ: Arc<GreenEnviron>,
    ) -> Arc<Shared> {
        let state = State {
            body: VecDeque::new(),
            body_closed: false,
            body_wanted: false,
            body_length: None,
            gone: false,
            cancel: false,
            events: VecDeque::new(),
            event_bytes: 0,
            phase: Phase::Before,
            held_head: None,
            waiter: None,
            task: None,
            wake_queued: false,
            ended: false,
        };
        Arc::new(Shared {
            state: Mutex::new(state),
            wake,
            head,
            conn,
            environ,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a response piece; wakes the driver if the queue was empty.
    fn push_event(&self, state: &mut State, event: AppEvent) {
        if let AppEvent::Body { data, .. } = &event {
            state.event_bytes += data.len();
        }
        let was_empty = state.events.is_empty();
        state.events.push_back(event);
        if was_empty {
            (self.wake)();
        }
    }

    /// Wakes the greenlet through the hub if it waits (or must be killed).
    pub(crate) fn notify(self: &Arc<Self>, bridge: &Bridge, state: &mut State) {
        let waits = state.waiter.is_some() || (state.cancel && state.task.is_some());
        if waits && !state.wake_queued && !state.ended {
            state.wake_queued = true;
            bridge.send(Some(Command::Wake(self.clone())));
        }
    }

    fn full(state: &State) -> bool {
        state.events.len() >= EVENT_QUEUE || state.event_bytes >= EVENT_BYTES
    }

    /// On the hub: sets the parked greenlet going, or kills it (`TimeoutError`).
    pub(crate) fn wake_up(&self, py: Python<'_>) -> PyResult<()> {
        let (waiter, kill) = {
            let mut state = self.lock();
            state.wake_queued = false;
            let kill = if state.cancel {
                state.task.take()
            } else {
                None
            };
            (state.waiter.take(), kill)
        };
        if let Some(waiter) = waiter {
            waiter.bind(py).call_method0("set")?;
        }
        if let Some(task) = kill {
            let timeout = py.get_type::<pyo3::exceptions::PyTimeoutError>();
            let kwargs = PyDict::new(py);
            kwargs.set_item("block", false)?;
            task.bind(py)
                .call_method("kill", (timeout,), Some(&kwargs))?;
        }
        Ok(())
    }

    /// A timeout's kill is still waiting for the hub (which has not drained since).
    pub(crate) fn timeout_pending(&self) -> bool {
        let state = self.lock();
        state.cancel && state.wake_queued && !state.ended
    }

    /// The held head (if any) goes out, with `len` when the body is known whole.
    fn release_head(&self, state: &mut State, whole: Option<u64>) {
        if let Some((status, headers, declared)) = state.held_head.take() {
            let len = declared.or(whole);
            self.push_event(
                state,
                AppEvent::Head {
                    status,
                    headers,
                    len,
                },
            );
        }
    }
}

/// The greenlet's end.
#[pyclass(module = "ironhorse", frozen)]
pub(crate) struct GreenChannel {
    shared: Arc<Shared>,
}

impl GreenChannel {
    pub(crate) fn new(shared: Arc<Shared>) -> GreenChannel {
        GreenChannel { shared }
    }

    /// An answer of the server's own, instead of the application's.
    fn answer(&self, status: u16, text: &str) {
        let mut state = self.shared.lock();
        state.phase = Phase::Done;
        let event = AppEvent::Head {
            status,
            headers: vec![("Content-Type".into(), b"text/plain; charset=utf-8".to_vec())],
            len: Some(text.len() as u64),
        };
        self.shared.push_event(&mut state, event);
        let body = AppEvent::Body {
            data: text.as_bytes().to_vec(),
            more: false,
        };
        self.shared.push_event(&mut state, body);
    }

    fn gone_error() -> PyErr {
        PyOSError::new_err("the client disconnected")
    }
}

#[pymethods]
impl GreenChannel {
    /// The environ with `input` as `wsgi.input`; `None` when the server answered itself
    /// (`OPTIONS *`, forwarding headers that disagree).
    fn environ<'py>(
        &self,
        py: Python<'py>,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let shared = &self.shared;
        let length = shared.lock().body_length;
        match shared
            .environ
            .build(py, &shared.head, length, &shared.conn, input)?
        {
            Ok(environ) => Ok(Some(environ)),
            Err(Refusal::ServerOptions) => {
                self.answer(200, "");
                Ok(None)
            }
            Err(Refusal::Forwarding(why)) => {
                self.answer(400, &format!("Bad Request: {why}\n"));
                Ok(None)
            }
        }
    }

    /// The next body chunk (`b""` at the end); `None` when `waiter` was parked.
    fn chunk<'py>(
        &self,
        py: Python<'py>,
        waiter: Py<PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut state = self.shared.lock();
        if let Some(chunk) = state.body.pop_front() {
            if state.body.len() + 1 == BODY_QUEUE {
                // Room again: the session may read on.
                (self.shared.wake)();
            }
            return Ok(Some(PyBytes::new(py, &chunk)));
        }
        if state.body_closed {
            return Ok(Some(PyBytes::new(py, b"")));
        }
        if state.gone {
            return Err(Self::gone_error());
        }
        if !state.body_wanted {
            state.body_wanted = true;
            // `100 Continue` may be due.
            (self.shared.wake)();
        }
        state.waiter = Some(waiter);
        Ok(None)
    }

    /// Whether `start_response` was called; whether bytes of the response left.
    fn progress(&self) -> (bool, bool) {
        let state = self.shared.lock();
        let sent = state.phase != Phase::Before && state.held_head.is_none();
        (state.phase != Phase::Before, sent)
    }

    /// `start_response`'s head, checked; replaces one not sent yet.
    fn start(&self, status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let head = parse_head(status, headers)?;
        let mut state = self.shared.lock();
        if state.phase == Phase::Before {
            state.phase = Phase::Started;
        }
        state.held_head = Some(head);
        Ok(())
    }

    /// Queues body bytes (`write()` or the iterator's); `False` when the queue is full and
    /// `waiter` was parked (the caller waits, then sends again).
    fn send(&self, data: &Bound<'_, PyAny>, waiter: Py<PyAny>) -> PyResult<bool> {
        let data = body_bytes(data)?;
        let mut state = self.shared.lock();
        match state.phase {
            Phase::Before => {
                return Err(PyAssertionError::new_err(
                    "response body before start_response()",
                ))
            }
            Phase::Done => return Err(PyOSError::new_err("the response is complete")),
            Phase::Started => {}
        }
        if state.gone {
            return Err(Self::gone_error());
        }
        if data.is_empty() {
            return Ok(true);
        }
        if Shared::full(&state) {
            state.waiter = Some(waiter);
            return Ok(false);
        }
        self.shared.release_head(&mut state, None);
        self.shared
            .push_event(&mut state, AppEvent::Body { data, more: true });
        Ok(true)
    }

    /// Ends the response; `whole`: the body of a list the application returned, when
    /// nothing was sent before it (its length is then known).
    #[pyo3(signature = (whole=None))]
    fn finish(&self, whole: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut body = Vec::new();
        if let Some(chunks) = whole {
            for chunk in chunks.try_iter()? {
                body.extend_from_slice(&body_bytes(&chunk?)?);
            }
        }
        let mut state = self.shared.lock();
        match state.phase {
            Phase::Before => {
                return Err(PyAssertionError::new_err(
                    "the application returned without calling start_response()",
                ))
            }
            Phase::Done => return Ok(()),
            Phase::Started => {}
        }
        state.phase = Phase::Done;
        if state.gone {
            // The session waits for an end: a client that left gets the cut-off one.
            state.held_head = None;
            self.shared.push_event(&mut state, AppEvent::Failed);
            return Ok(());
        }
        // A HEAD answer's length is the one the application declared, else unknown.
        let known =
            (self.shared.head.method() != "HEAD" || !body.is_empty()).then_some(body.len() as u64);
        self.shared.release_head(&mut state, known);
        let event = AppEvent::Body {
            data: body,
            more: false,
        };
        self.shared.push_event(&mut state, event);
        Ok(())
    }

    /// Ends the response with `result`'s file when it is a `wsgi.file_wrapper` over a
    /// regular file and nothing was sent yet: the session sends the region with `sendfile`,
    /// so the hub never reads it. As on the threaded path, a declared `Content-Length`
    /// cuts the file, and the head says the region's length. `False`: not such a result
    /// (the caller iterates it).
    fn file(&self, py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<bool> {
        let limit = {
            let state = self.shared.lock();
            match (&state.held_head, state.phase) {
                (Some((_, _, declared)), Phase::Started) => *declared,
                _ => return Ok(false),
            }
        };
        let Some(region) = ironhorse_wsgi::green::wrapped_region(py, result, limit) else {
            return Ok(false);
        };
        let mut state = self.shared.lock();
        state.phase = Phase::Done;
        if state.gone {
            state.held_head = None;
            self.shared.push_event(&mut state, AppEvent::Failed);
            return Ok(true);
        }
        if let Some((_, _, declared)) = &mut state.held_head {
            *declared = Some(region.len);
        }
        self.shared.release_head(&mut state, None);
        self.shared.push_event(&mut state, AppEvent::File(region));
        Ok(true)
    }

    /// The greenlet to kill at the request's deadline.
    fn set_task(&self, task: Py<PyAny>) {
        self.shared.lock().task = Some(task);
    }

    /// The application raised: logged (unless it is the `OSError` of a client that left);
    /// a `500` if nothing was sent, else the response is cut short.
    fn failed(&self, py: Python<'_>, error: Bound<'_, PyAny>) {
        let err = PyErr::from_value(error);
        let gone = self.shared.lock().gone;
        if !(gone && err.is_instance_of::<PyOSError>(py)) {
            ironhorse_wsgi::embed::log_exception(py, &err, "exception in WSGI application");
        }
        let mut state = self.shared.lock();
        if state.phase != Phase::Done {
            state.phase = Phase::Done;
            state.held_head = None;
            self.shared.push_event(&mut state, AppEvent::Failed);
        }
    }

    /// The greenlet is over; a response it left unfinished (a greenlet killed outside the
    /// application) is cut off, so the session never waits for it.
    fn ended(&self) {
        let mut state = self.shared.lock();
        state.ended = true;
        state.task = None;
        state.waiter = None;
        if state.phase != Phase::Done {
            state.phase = Phase::Done;
            state.held_head = None;
            self.shared.push_event(&mut state, AppEvent::Failed);
        }
    }
}
