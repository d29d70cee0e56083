//! `start_response` and its `write` callable: validates what the app declares and keeps it
//! for the conversion to a [`Response`](ironhorse_app::Response).
//!
//! Invalid statuses or headers raise inside the app (so it fails with a 500 and nothing
//! invalid ever reaches the wire).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard};

use ironhorse_app::HeaderList;
use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString, PyTuple};

use crate::client_error::ClientFault;
use crate::loan::lock;
use crate::sink::SinkSlot;
use crate::spare::{no_weak_references, references, sole_reference};

/// What `start_response` declared.
#[derive(Clone)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// The app's reason phrase, when it gave one that differs from the standard phrase.
    pub(crate) reason: Option<String>,
    /// Without `Content-Length` (see `content_length`) and the engine-owned `Date`/`Server`.
    pub(crate) headers: HeaderList,
    pub(crate) content_length: Option<u64>,
}

impl Head {
    /// Status, headers for the engine (the app's reason phrase as the engine's pseudo-field)
    /// and the declared length.
    pub(crate) fn into_parts(self) -> (u16, HeaderList, Option<u64>) {
        let mut headers = self.headers;
        if let Some(reason) = self.reason {
            // The engine sends it instead of the standard phrase (see `ironhorse_h1::HeaderList`).
            headers.push((ironhorse_h1::REASON_FIELD.into(), reason.into_bytes()));
        }
        (self.status, headers, self.content_length)
    }
}

/// What `start_response` declared and `write()` did, shared by the two callables.
#[derive(Default)]
pub(crate) struct Declared {
    pub(crate) head: Option<Head>,
    /// `start_response` succeeded at least once (the head may since have been taken).
    started: bool,
    /// Set once the first non-empty body chunk exists; `exc_info` then re-raises.
    pub(crate) headers_sent: bool,
    /// Data from `write()` not yet handed on, in order (only while no sink is on loan).
    pub(crate) written: Vec<Vec<u8>>,
    /// A `write()` is sending (without the GIL) on some thread.
    sending: bool,
}

/// The state behind one request's `start_response` and `write`: plain Rust, so the two
/// Python objects share it without referring to each other (no reference cycle).
pub(crate) struct Shared {
    declared: Mutex<Declared>,
    /// Where `write()` sends at once while the application call runs.
    pub(crate) sink: SinkSlot,
}

impl Shared {
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            declared: Mutex::new(Declared::default()),
            sink: SinkSlot::new(),
        })
    }

    /// The declared state; never held while Python code runs or the GIL is released.
    pub(crate) fn declared(&self) -> MutexGuard<'_, Declared> {
        lock(&self.declared)
    }

    /// The legacy `write(data)` (PEP 3333): while the application call runs, the data
    /// (after the head, the first time) is sent or queued in the server's bounded room
    /// before this returns, blocking while that room is full; a client that went away
    /// raises `ironhorse.ClientDisconnected`. Called from a response iterator, the data goes
    /// out before what the iterator yields next.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.declared().started {
            return Err(PyAssertionError::new_err("write() before start_response()"));
        }
        let data = body_bytes(data)?;
        if data.is_empty() {
            return Ok(());
        }
        let head = {
            let mut declared = self.declared();
            if declared.sending {
                return Err(PyRuntimeError::new_err(
                    "write() called while another write() of this response is sending",
                ));
            }
            declared.headers_sent = true;
            if !self.sink.is_lent() {
                declared.written.push(data);
                return Ok(());
            }
            declared.sending = true;
            match self.sink.started() {
                true => None,
                false => declared.head.take().map(Head::into_parts),
            }
        };
        let sent = py.detach(|| self.sink.send(head, data));
        self.declared().sending = false;
        sent.map_err(|e| match ClientFault::from_io(&e) {
            Some(ClientFault::Gone { .. }) => ClientFault::Gone {
                why: "while the response was sent".into(),
            }
            .exception(py),
            _ => PyErr::from(e),
        })
    }

    /// Back to the state of a request that has not started (for the next request).
    fn reset(&self) {
        *self.declared() = Declared::default();
        self.sink.reset();
    }
}

/// The `start_response` callable.
///
/// Its state is in [`Shared`], and its `write` callable is made with it: a request whose
/// application kept neither hands both to the same thread's next request (see
/// [`StartResponse::recycle`]).
#[pyclass(module = "ironhorse", name = "StartResponse", frozen)]
pub(crate) struct StartResponse {
    /// The state of the request it serves; replaced when the object is kept for another
    /// request while a response stream still holds the last one's.
    shared: Mutex<Arc<Shared>>,
    /// The `write` callable `start_response` returns.
    write: Py<Write>,
    /// The application's last parsed head (shared by its requests).
    heads: Arc<HeadCache>,
}

impl StartResponse {
    pub(crate) fn new<'py>(
        py: Python<'py>,
        shared: Arc<Shared>,
        heads: Arc<HeadCache>,
    ) -> PyResult<Bound<'py, StartResponse>> {
        let write = Py::new(
            py,
            Write {
                shared: Mutex::new(shared.clone()),
            },
        )?;
        Bound::new(
            py,
            StartResponse {
                shared: Mutex::new(shared),
                write,
                heads,
            },
        )
    }

    /// The state of the request it serves now.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        lock(&self.shared).clone()
    }

    /// The head cache of the application this `start_response` belongs to.
    pub(crate) fn heads(&self) -> &Arc<HeadCache> {
        &self.heads
    }

    /// What the application is given as `start_response`: the bound `start_response`
    /// method (called with `METH_FASTCALL`). Under the stable ABI, where whether a bound
    /// method has weak references cannot be read (see [`StartResponse::recycle`]), the
    /// object itself.
    pub(crate) fn callable(start: &Bound<'_, StartResponse>) -> PyResult<Py<PyAny>> {
        if cfg!(Py_LIMITED_API) {
            return Ok(start.clone().into_any().unbind());
        }
        Ok(start
            .getattr(pyo3::intern!(start.py(), "start_response"))?
            .unbind())
    }

    /// Whether `start`, the `callable` made for it and its `write` can serve this thread's
    /// next request: true when the caller's references are the only ones (neither the
    /// application nor another thread kept one; the bound method has no weak references),
    /// after which they have a new request's state (the old one reset, or a new one when a
    /// response stream still reads it). Call with the request's loans still held; nothing
    /// can reach the objects after this returns true.
    pub(crate) fn recycle(start: &Bound<'_, StartResponse>, callable: &Bound<'_, PyAny>) -> bool {
        let this = start.get();
        // The caller's reference and the callable's (the bound method's `__self__`, or the
        // caller's second one when the callable is the object itself).
        let write = this.write.bind(start.py());
        let ours = references(start.as_any()) == 2
            && (callable.is(start) || (sole_reference(callable) && no_weak_references(callable)))
            && sole_reference(write.as_any());
        if !ours {
            return false;
        }
        let mut shared = lock(&this.shared);
        // The two objects' and the caller's: then nobody else uses the state. Otherwise a
        // response stream still does (an iterable result), and the objects get a new one.
        if Arc::strong_count(&shared) == 3 {
            shared.reset();
        } else {
            let fresh = Shared::new();
            *lock(&write.get().shared) = fresh.clone();
            *shared = fresh;
        }
        true
    }
}

/// The `write` callable `start_response` returns.
#[pyclass(module = "ironhorse", name = "Write", frozen)]
pub(crate) struct Write {
    /// Its `start_response`'s state (replaced with it).
    shared: Mutex<Arc<Shared>>,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let shared = lock(&self.shared).clone();
        shared.write(py, data)
    }
}

/// The last head an application's `start_response` parsed, kept with the very objects it
/// was parsed from: most applications pass the same status string and the same header
/// tuples (module constants, or a framework's cached ones) on every request, and then the
/// checks and conversions need not run again (they were ≈ 10 % of a hello-world request's
/// user-space CPU).
///
/// A hit is decided by identity only: the status `str` and every `(name, value)` tuple must
/// be the objects kept here, in the same order, in a `list` or `tuple` of the same length.
/// `str` and `tuple` are immutable and exact types are required, so the same objects always
/// parse to the same head; the cache holds strong references, so no other object can take
/// their addresses while they are kept. The list itself may be a different one, or the same
/// one mutated: only its items are compared.
///
/// An application that builds fresh objects per response (most frameworks) never hits: after
/// a run of kept heads that were never reused, only one miss in [`RETRY_EVERY`] is kept, so
/// such an application pays little more than the parse.
#[derive(Default)]
pub(crate) struct HeadCache(Mutex<HeadCacheState>);

#[derive(Default)]
struct HeadCacheState {
    last: Option<CachedHead>,
    /// Heads kept in a row that were replaced without ever being reused.
    unused: u32,
}

struct CachedHead {
    status: Py<PyAny>,
    items: Vec<Py<PyAny>>,
    head: Head,
    reused: bool,
}

/// Kept heads in a row never reused before [`HeadCache`] keeps only one miss in
/// [`RETRY_EVERY`].
const GIVE_UP_AFTER: u32 = 8;
const RETRY_EVERY: u32 = 64;

impl HeadCache {
    /// [`parse_head`], answered from the cache when `status` and `headers`' items are the
    /// objects of the last head parsed. Never waits: a cache in use by another thread is
    /// skipped (all its users hold the GIL, so it hardly ever is).
    pub(crate) fn parse(
        &self,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
    ) -> PyResult<Head> {
        let keep = match self.0.try_lock() {
            Ok(mut state) => {
                if let Some(c) = state.last.as_mut() {
                    if c.status.is(status) && c.same_items(headers) {
                        c.reused = true;
                        return Ok(c.head.clone());
                    }
                }
                if state.last.as_ref().is_some_and(|c| !c.reused) {
                    state.unused = state.unused.saturating_add(1);
                } else {
                    state.unused = 0;
                }
                state.unused < GIVE_UP_AFTER || state.unused % RETRY_EVERY == 0
            }
            Err(_) => false,
        };
        let head = parse_head(status, headers)?;
        if !keep {
            return Ok(head);
        }
        let Some(items) = exact_items(status, headers) else {
            return Ok(head);
        };
        let fresh = CachedHead {
            status: status.clone().unbind(),
            items,
            head: head.clone(),
            reused: false,
        };
        let old = match self.0.try_lock() {
            Ok(mut state) => state.last.replace(fresh),
            Err(_) => Some(fresh),
        };
        // Released after the lock (a decref never runs with it held).
        drop(old);
        Ok(head)
    }
}

impl CachedHead {
    /// `headers` is a `list` or `tuple` of exactly the kept items, in order.
    fn same_items(&self, headers: &Bound<'_, PyAny>) -> bool {
        let kept = &self.items;
        if let Ok(list) = headers.cast_exact::<PyList>() {
            list.len() == kept.len()
                && kept
                    .iter()
                    .enumerate()
                    .all(|(i, k)| list.get_item(i).is_ok_and(|item| k.is(&item)))
        } else if let Ok(tuple) = headers.cast_exact::<PyTuple>() {
            tuple.len() == kept.len()
                && kept
                    .iter()
                    .enumerate()
                    .all(|(i, k)| tuple.get_borrowed_item(i).is_ok_and(|item| k.is(&*item)))
        } else {
            false
        }
    }
}

/// The items of `headers` (a head just parsed from them) when it may be cached: `status`
/// an exact `str`, `headers` a `list` or `tuple` of exact `tuple`s, not too many to compare
/// cheaply.
fn exact_items(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> Option<Vec<Py<PyAny>>> {
    const MAX_CACHED_HEADERS: usize = 16;
    if !status.is_exact_instance_of::<PyString>() {
        return None;
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = headers.cast_exact::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = headers.cast_exact::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return None;
    };
    (items.len() <= MAX_CACHED_HEADERS && items.iter().all(|i| i.is_exact_instance_of::<PyTuple>()))
        .then(|| items.into_iter().map(Bound::unbind).collect())
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<Write>> {
        self.start(py, status, headers, exc_info)
    }

    /// The same as a call, as a method: its bound method is what applications get, called
    /// with `METH_FASTCALL` (no argument tuple built and taken apart per call, as a call of
    /// the object itself needs).
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn start_response<'py>(
        &self,
        py: Python<'py>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<Write>> {
        self.start(py, status, headers, exc_info)
    }
}

impl StartResponse {
    /// `start_response(status, headers, exc_info=None)`: checks and keeps the head, returns
    /// `write`.
    fn start<'py>(
        &self,
        py: Python<'py>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<Write>> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        let shared = self.shared();
        {
            let declared = shared.declared();
            match exc_info {
                Some(exc) if declared.headers_sent => {
                    drop(declared);
                    return Err(reraise(exc));
                }
                None if declared.started => {
                    return Err(PyAssertionError::new_err(
                        "start_response called a second time without exc_info",
                    ))
                }
                _ => {}
            }
        }
        let head = self.heads.parse(status, headers)?;
        let mut declared = shared.declared();
        declared.head = Some(head);
        declared.started = true;
        drop(declared);
        Ok(self.write.clone_ref(py))
    }
}

/// A body chunk from the app: `bytes` (or `bytearray`); anything else, `str` included, is
/// an error.
pub(crate) fn body_bytes(data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "WSGI body chunks must be bytes, not {}",
        type_name(data)
    )))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `exc_info[1]` with `exc_info[2]` as its traceback, to raise.
fn reraise(exc_info: &Bound<'_, PyAny>) -> PyErr {
    let value = (|| -> PyResult<Bound<'_, PyAny>> {
        let value = exc_info.get_item(1)?;
        let tb = exc_info.get_item(2)?;
        if tb.is_none() {
            Ok(value)
        } else {
            value.call_method1("with_traceback", (tb,))
        }
    })();
    match value {
        Ok(v) => PyErr::from_value(v),
        Err(e) => e,
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1; `wsgiref.util.is_hop_by_hop`): an app may not set them.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

pub(crate) fn parse_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<Head> {
    let (status, reason) = parse_status(status)?;
    if let Ok(list) = headers.cast::<PyList>() {
        parse_headers(status, reason, list.len(), list.iter())
    } else if let Ok(tuple) = headers.cast::<PyTuple>() {
        parse_headers(status, reason, tuple.len(), tuple.iter())
    } else {
        Err(PyTypeError::new_err(format!(
            "response headers must be a list of (name, value) tuples, not {}",
            type_name(headers)
        )))
    }
}

fn parse_headers<'py>(
    status: u16,
    reason: Option<String>,
    count: usize,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Head> {
    let mut out = HeaderList::with_capacity(count);
    let mut content_length = None;
    for item in items {
        let (name, value) = parse_header(&item)?;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| PyValueError::new_err("invalid Content-Length header value"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(PyValueError::new_err("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if !(name.eq_ignore_ascii_case("date") || name.eq_ignore_ascii_case("server")) {
            out.push((name, value));
        }
    }
    Ok(Head {
        status,
        reason,
        headers: out,
        content_length,
    })
}

/// `"200 OK"`: three digits, a space, a reason of visible ASCII, spaces and tabs (sent as
/// given; an empty one means the standard phrase). Returns the code and the reason when it
/// differs from the standard one.
fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(u16, Option<String>)> {
    let s = status
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!("status must be a str, not {}", type_name(status)))
        })?
        .to_cow()?;
    let b = s.as_bytes();
    let valid = b.len() >= 4
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3] == b' '
        && ironhorse_h1::is_valid_reason(&b[4..]);
    let code = if valid {
        s[..3].parse::<u16>().ok()
    } else {
        None
    };
    match code {
        Some(code @ 200..=599) => {
            let reason = &s[4..];
            let custom = !reason.is_empty() && reason != ironhorse_h1::reason_phrase(code);
            Ok((code, custom.then(|| reason.to_string())))
        }
        _ => Err(PyValueError::new_err(format!(
            "invalid status {s:?} (expected e.g. \"200 OK\")"
        ))),
    }
}

/// One `(name, value)` pair: a token name, a latin-1 value without control characters.
fn parse_header(item: &Bound<'_, PyAny>) -> PyResult<(Cow<'static, str>, Vec<u8>)> {
    let pair = item
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "each response header must be a (name, value) tuple, not {}",
                type_name(item)
            ))
        })?;
    let (name, value) = (pair.get_borrowed_item(0)?, pair.get_borrowed_item(1)?);
    let (Ok(name), Ok(value)) = (name.cast::<PyString>(), value.cast::<PyString>()) else {
        return Err(PyTypeError::new_err(
            "response header names and values must be str",
        ));
    };
    let name = name.to_cow()?;
    if name.is_empty() || !name.bytes().all(ironhorse_h1::is_tchar) {
        return Err(PyValueError::new_err(format!(
            "invalid response header name {name:?}"
        )));
    }
    if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return Err(PyValueError::new_err(format!(
            "hop-by-hop header {name:?} is not allowed in a WSGI response"
        )));
    }
    let value = value.to_cow()?;
    let bytes = if value
        .bytes()
        .all(|b| b == b'\t' || (b' '..b'\x7f').contains(&b))
    {
        // The usual case: ASCII, one copy.
        value.as_bytes().to_vec()
    } else {
        let mut bytes = Vec::with_capacity(value.len());
        for c in value.chars() {
            if !is_field_char(c) {
                return Err(PyValueError::new_err(format!(
                    "invalid character {c:?} in the value of response header {name:?}"
                )));
            }
            bytes.push(c as u8);
        }
        bytes
    };
    Ok((common_name(name), bytes))
}

/// Frequent response header names as they are usually spelled, without an allocation.
const COMMON_NAMES: &[&str] = &[
    "Content-Type",
    "Cache-Control",
    "Set-Cookie",
    "Location",
    "Vary",
    "ETag",
    "Last-Modified",
    "Expires",
    "Content-Encoding",
    "Content-Disposition",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Access-Control-Allow-Origin",
];

fn common_name(name: Cow<'_, str>) -> Cow<'static, str> {
    match COMMON_NAMES.iter().find(|c| **c == name) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(name.into_owned()),
    }
}

/// A latin-1 character allowed in a field value or reason: no CR, LF or other controls.
fn is_field_char(c: char) -> bool {
    c == '\t' || (c >= ' ' && c != '\x7f' && (c as u32) < 0x100)
}
