//! One request's state, shared by the HTTP session (through [`SessionEnd`], the
//! [`AppExchange`] it holds) and the application's task (through [`Channel`], the Python
//! object behind `receive` and `send`).
//!
//! Both queues are bounded: the session stops reading the body while the application has
//! not taken what it was given, and the application's `send` awaits room while the client
//! has not taken the response. Each side wakes the other only when it waits: the session's
//! driver through its `Wake` when the event queue goes from empty to non-empty, the loop
//! through the [`Bridge`] when a parked future may now complete.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ironhorse_app::{AppEvent, AppExchange, Wake, WsAppEvent, WsMessage};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::awaitable::{Ready, Waiting};
use crate::bridge::Bridge;
use crate::message;

/// Body chunks queued for the application before the session stops reading.
const BODY_QUEUE: usize = 4;
/// Response bytes queued for the client before the application's `send` waits.
const EVENT_BYTES: usize = 256 * 1024;
/// Response messages queued for the client before the application's `send` waits.
const EVENT_QUEUE: usize = 16;
/// WebSocket messages queued for the application before the session stops reading.
pub(crate) const WS_QUEUE: usize = 16;

/// The bytes a WebSocket action carries, for the outgoing byte bound.
pub(crate) fn ws_len(event: &WsAppEvent) -> usize {
    match event {
        WsAppEvent::Send(WsMessage::Text(text)) => text.len(),
        WsAppEvent::Send(WsMessage::Binary(data)) => data.len(),
        WsAppEvent::DenyBody { data, .. } => data.len(),
        _ => 0,
    }
}

/// Where the response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Before,
    Started,
    Done,
}

pub(crate) struct State {
    body: VecDeque<(Vec<u8>, bool)>,
    /// WebSocket: client messages for the application.
    pub(crate) ws_in: VecDeque<WsMessage>,
    /// WebSocket: listed with the bridge as behind (its receive queue filled once).
    pub(crate) listed_behind: bool,
    /// WebSocket: `websocket.connect` was delivered.
    pub(crate) connect_delivered: bool,
    /// WebSocket: how the client closed (`websocket.disconnect`'s code and reason).
    pub(crate) close: Option<(u16, String)>,
    /// WebSocket: the application answers the handshake with its own HTTP response.
    pub(crate) denying: bool,
    pub(crate) ws_events: VecDeque<WsAppEvent>,
    /// The session passed the last body chunk.
    body_closed: bool,
    body_wanted: bool,
    /// The client is gone (or the session dropped its end).
    pub(crate) gone: bool,
    /// The client's input ended after the request (a half-close, or it left): `receive`
    /// answers `http.disconnect` once the body is delivered, and from then on `send` raises;
    /// until then what the application sends is written, so a client that half-closed
    /// after its request still gets the answer (as from a WSGI application).
    input_closed: bool,
    /// A `send` raised `OSError` because the client was gone: that error, escaping the
    /// application, is the client's doing and not logged.
    send_refused: bool,
    events: VecDeque<AppEvent>,
    pub(crate) event_bytes: usize,
    pub(crate) phase: Phase,
    /// A response head held until its first body message, so both leave in one write.
    pub(crate) held_head: Option<AppEvent>,
    /// The response announced trailers (`trailers: True`): the fields gathered so far.
    pub(crate) trailers: Option<ironhorse_app::HeaderList>,
    /// The last body message came (trailers may follow).
    pub(crate) body_ended: bool,
    /// The `content-length` the application declared for a body it must send (not for a
    /// `HEAD` request, a 204 or a 304), and the body bytes it sent so far.
    pub(crate) declared_len: Option<u64>,
    pub(crate) body_sent: u64,
    recv_waiter: Option<Py<PyAny>>,
    send_waiter: Option<Py<PyAny>>,
    pub(crate) task: Option<Py<PyAny>>,
    pub(crate) cancel: bool,
    /// The client left before the response was complete: the task is cancelled after a
    /// grace period unless it ends by itself (a task that ignores the disconnect leaks
    /// nothing). Not once the response is complete: what the application does then is its
    /// own work (Starlette's background tasks), as under uvicorn.
    pub(crate) abandoned: bool,
    /// A wake-up for the loop is queued already.
    pub(crate) wake_queued: bool,
    /// The application's task ended.
    ended: bool,
}

/// What both ends share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) wake: Wake,
    /// A WebSocket rather than an HTTP request.
    pub(crate) websocket: bool,
    /// The client takes trailer fields (`TE: trailers`).
    pub(crate) accepts_trailers: bool,
    /// How long the task may run on after its client left (`--asgi-disconnect-grace-period`).
    pub(crate) grace: Duration,
    /// A `HEAD` request: its response's `content-length` describes a body never sent.
    pub(crate) head_request: bool,
}

impl Shared {
    pub(crate) fn new(
        wake: Wake,
        websocket: bool,
        accepts_trailers: bool,
        grace: Duration,
        head_request: bool,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                body: VecDeque::new(),
                ws_in: VecDeque::new(),
                listed_behind: false,
                connect_delivered: false,
                close: None,
                denying: false,
                ws_events: VecDeque::new(),
                body_closed: false,
                body_wanted: false,
                gone: false,
                input_closed: false,
                send_refused: false,
                events: VecDeque::new(),
                event_bytes: 0,
                phase: Phase::Before,
                held_head: None,
                trailers: None,
                body_ended: false,
                declared_len: None,
                body_sent: 0,
                recv_waiter: None,
                send_waiter: None,
                task: None,
                cancel: false,
                abandoned: false,
                wake_queued: false,
                ended: false,
            }),
            wake,
            websocket,
            accepts_trailers,
            grace,
            head_request,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a response piece; wakes the driver if the queue was empty.
    pub(crate) fn push_event(&self, state: &mut State, event: AppEvent) {
        if let AppEvent::Body { data, .. } = &event {
            state.event_bytes += data.len();
        }
        let was_empty = state.events.is_empty();
        state.events.push_back(event);
        if was_empty {
            (self.wake)();
        }
    }

    /// Queues a WebSocket action; wakes the driver if the queue was empty.
    pub(crate) fn push_ws(&self, state: &mut State, event: WsAppEvent) {
        state.event_bytes += ws_len(&event);
        let was_empty = state.ws_events.is_empty();
        state.ws_events.push_back(event);
        if was_empty {
            (self.wake)();
        }
    }

    /// Wakes the application's task through the loop if it waits (or must be cancelled).
    pub(crate) fn notify(self: &Arc<Self>, bridge: &Bridge, state: &mut State) {
        let waits = state.recv_waiter.is_some()
            || state.send_waiter.is_some()
            || state.cancel
            || state.abandoned;
        if waits && !state.wake_queued && !state.ended {
            state.wake_queued = true;
            bridge.wake(self.clone());
        }
    }

    /// Whether the outgoing queue is full (the application's `send` waits).
    fn full(state: &State) -> bool {
        state.events.len() + state.ws_events.len() >= EVENT_QUEUE
            || state.event_bytes >= EVENT_BYTES
    }

    /// Takes the parked futures (on the loop thread, when a wake-up for this request is
    /// drained), so the caller completes them.
    pub(crate) fn take_waiters(state: &mut State) -> [Option<Py<PyAny>>; 2] {
        state.wake_queued = false;
        [state.recv_waiter.take(), state.send_waiter.take()]
    }
}

/// The session's end.
pub(crate) struct SessionEnd {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bridge: Arc<Bridge>,
}

impl SessionEnd {
    fn notify(&self, state: &mut State) {
        self.shared.notify(&self.bridge, state);
    }
}

impl AppExchange for SessionEnd {
    fn body_requested(&self) -> bool {
        self.shared.lock().body_wanted
    }

    fn wants_body(&self) -> bool {
        let state = self.shared.lock();
        !state.body_closed && !state.gone && state.body.len() < BODY_QUEUE
    }

    fn body(&mut self, data: Vec<u8>, more: bool) {
        let mut state = self.shared.lock();
        state.body_closed = !more;
        state.body.push_back((data, more));
        self.notify(&mut state);
    }

    fn next_event(&mut self) -> Option<AppEvent> {
        let mut state = self.shared.lock();
        let event = state.events.pop_front()?;
        if let AppEvent::Body { data, .. } = &event {
            state.event_bytes -= data.len();
        }
        self.notify(&mut state);
        Some(event)
    }

    fn disconnect(&mut self) {
        let mut state = self.shared.lock();
        if !state.gone {
            state.gone = true;
            state.abandoned = state.phase != Phase::Done;
            self.notify(&mut state);
        }
    }

    fn input_closed(&mut self) {
        let mut state = self.shared.lock();
        if !state.gone && !state.input_closed {
            state.input_closed = true;
            // A task that never ends is cancelled after the grace period, as on a disconnect.
            state.abandoned = state.phase != Phase::Done;
            self.notify(&mut state);
        }
    }

    fn cancel(&mut self) {
        let mut state = self.shared.lock();
        state.gone = true;
        state.cancel = true;
        self.notify(&mut state);
    }
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// The application's end: what `receive` and `send` (in `glue.py`) call.
#[pyclass(module = "ironhorse", frozen)]
pub(crate) struct Channel {
    pub(crate) shared: Arc<Shared>,
    pub(crate) waiting: Arc<Waiting>,
}

impl Channel {
    /// The next message for `receive`, if one is ready.
    fn message<'py>(
        &self,
        py: Python<'py>,
        state: &mut State,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.shared.websocket {
            return self.ws_message(py, state);
        }
        if let Some((body, more)) = state.body.pop_front() {
            if state.body.len() + 1 == BODY_QUEUE {
                // Room again: the session may read on.
                (self.shared.wake)();
            }
            return message::request(py, &body, more).map(Some);
        }
        if state.input_closed && state.body_closed {
            // Told now: what it sends from here on fails, as for a client that left.
            state.gone = true;
        }
        if state.gone || state.phase == Phase::Done {
            return message::disconnect(py).map(Some);
        }
        if !state.body_wanted {
            state.body_wanted = true;
            // `100 Continue` may be due.
            (self.shared.wake)();
        }
        Ok(None)
    }

    /// The application broke the protocol or failed: the session answers 500 or cuts the
    /// response (a WebSocket: 500 before accepting, close 1011 after); later sends fail.
    pub(crate) fn break_off(&self, state: &mut State) {
        if state.phase != Phase::Done {
            state.phase = Phase::Done;
            state.held_head = None;
            if self.shared.websocket {
                self.shared.push_ws(state, WsAppEvent::Failed);
            } else {
                self.shared.push_event(state, AppEvent::Failed);
            }
        }
    }

    /// The one way a message is queued, HTTP or WebSocket: refused once `closed`, a malformed
    /// message breaks the exchange off, `False` while the queue is full.
    fn queue<T>(
        &self,
        outgoing: PyResult<T>,
        closed: impl Fn(&State) -> bool,
        closed_message: &'static str,
        accept: impl FnOnce(&Self, &mut State, T) -> PyResult<()>,
    ) -> PyResult<bool> {
        let mut state = self.shared.lock();
        if closed(&state) {
            state.send_refused = true;
            return Err(PyOSError::new_err(closed_message));
        }
        let outgoing = match outgoing {
            Ok(outgoing) => outgoing,
            Err(e) => {
                self.break_off(&mut state);
                return Err(e);
            }
        };
        if Shared::full(&state) {
            return Ok(false);
        }
        accept(self, &mut state, outgoing)?;
        Ok(true)
    }
}

#[pymethods]
impl Channel {
    /// The next message, or `None` when the application must wait.
    fn receive<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut state = self.shared.lock();
        self.message(py, &mut state)
    }

    /// The application's `receive()`: a completed awaitable when a message is ready, else
    /// the coroutine that waits for one.
    fn receive_message<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let ready = {
            let mut state = this.shared.lock();
            this.message(py, &mut state)?
        };
        match ready {
            Some(message) => {
                Ok(Bound::new(py, Ready::new(message.into_any().unbind()))?.into_any())
            }
            None => this.waiting.receive_later.bind(py).call1((slf,)),
        }
    }

    /// The application's `send(message)`: a completed awaitable once the message is queued,
    /// else the coroutine that waits for room.
    fn send_message<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if this.send(message)? {
            return Ok(this.waiting.done.bind(py).clone());
        }
        this.waiting.send_later.bind(py).call1((slf, message))
    }

    /// As `receive`, but parks `waiter` (completed on the next news) when nothing is ready.
    fn receive_or_park<'py>(
        &self,
        py: Python<'py>,
        waiter: Py<PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut state = self.shared.lock();
        let message = self.message(py, &mut state)?;
        if message.is_none() {
            state.recv_waiter = Some(waiter);
        }
        Ok(message)
    }

    /// Queues `message`; `False` when the queue is full (the caller parks and retries).
    fn send(&self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        if self.shared.websocket {
            let outgoing = message::ws_outgoing(message);
            let closed = |state: &State| state.gone || state.close.is_some();
            return self.queue(outgoing, closed, "the WebSocket is closed", Self::accept_ws);
        }
        let outgoing = message::outgoing(message);
        let gone = |state: &State| state.gone;
        self.queue(outgoing, gone, "the client disconnected", Self::accept)
    }

    /// Parks `waiter` until the queue has room; `False` if it has room already.
    fn park_sender(&self, waiter: Py<PyAny>) -> bool {
        let mut state = self.shared.lock();
        if state.gone || !Shared::full(&state) {
            return false;
        }
        state.send_waiter = Some(waiter);
        true
    }

    fn set_task(&self, py: Python<'_>, task: Py<PyAny>) -> PyResult<()> {
        let abandoned = {
            let mut state = self.shared.lock();
            state.task = Some(task.clone_ref(py));
            std::mem::take(&mut state.abandoned)
        };
        if abandoned {
            // The client left before the task was made (both in one drain).
            crate::bridge::cancel_later(py, &task, self.shared.grace)?;
        }
        Ok(())
    }

    /// The application raised: logged, unless it is an `OSError` after a send raised one
    /// because the client left (the client's doing, not the application's).
    fn failed(&self, py: Python<'_>, error: Bound<'_, PyAny>) {
        let err = PyErr::from_value(error);
        let refused = {
            let mut state = self.shared.lock();
            state.ended = true;
            state.task = None;
            state.send_refused
        };
        if !(refused && err.is_instance_of::<PyOSError>(py)) {
            ironhorse_wsgi::embed::log_exception(py, &err, "exception in ASGI application");
        }
        let mut state = self.shared.lock();
        self.break_off(&mut state);
    }

    /// The application returned (`how`: "returned") or was cancelled ("cancelled").
    fn ended(&self, how: &str) {
        let mut state = self.shared.lock();
        state.ended = true;
        state.task = None;
        if state.phase != Phase::Done {
            if how == "returned" && !state.gone && !self.shared.websocket {
                eprintln!(
                    "[ironhorse] [{}] [ERROR] ASGI callable returned without completing the response",
                    std::process::id()
                );
            }
            let accepted = state.phase == Phase::Started;
            state.phase = Phase::Done;
            state.held_head = None;
            if !self.shared.websocket {
                self.shared.push_event(&mut state, AppEvent::Returned);
            } else if state.denying {
                // Returned in the middle of its denial response: cut.
                self.shared.push_ws(&mut state, WsAppEvent::Failed);
            } else if accepted {
                // Returned while open: closed normally (before accepting: refused, 403).
                let close = WsAppEvent::Close {
                    code: 1000,
                    reason: String::new(),
                };
                self.shared.push_ws(&mut state, close);
            } else {
                self.shared.push_ws(&mut state, WsAppEvent::Deny);
            }
        }
    }
}
