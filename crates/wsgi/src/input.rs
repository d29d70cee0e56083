//! `wsgi.input`: the request body as a Python file-like object, streamed, never slurped.
//!
//! The body reader is a `&mut dyn BodyReader` that lives only for the duration of
//! `Service::call`, while the Python object may live on (an app can keep `environ`, or read
//! from a response generator after `call` returned). So the reader is *lent* to a
//! [`BodySlot`] for exactly the scope of [`BodySlot::lend`]: until the application's first
//! non-empty body chunk. Afterwards reads return `b""` if the body was read to its end (or
//! there was none), and otherwise fail with an `OSError` saying so: a body left unread is
//! never passed off as empty. Every read of the Rust reader runs with the GIL released.
//!
//! A read that fails because of the client (see [`crate::client_error`]) is remembered in
//! the slot: the app gets an `ironhorse.ClientError`, every later read fails the same way
//! (the rest of the body is lost, never a silent early end), and the bridge answers for it.

use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use ironhorse_app::BodyReader;

use crate::client_error::ClientFault;
use crate::loan::{lock, Clear};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Bytes fetched per refill of the line buffer.
const CHUNK: usize = 64 * 1024;
/// Largest single read into a caller's buffer (so `read(1 << 30)` does not zero 1 GiB first).
const MAX_STEP: usize = 1 << 20;

/// A body reader on loan for one `call`.
pub(crate) struct BodySlot {
    reader: Mutex<Option<NonNull<dyn BodyReader>>>,
    /// The first read failure the client caused.
    fault: Mutex<Option<ClientFault>>,
    /// How much of the body the application read while it was lent.
    progress: Mutex<Progress>,
}

/// What the request says of its body, for [`BodySlot::lend`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyExpected {
    /// Its declared (or, buffered, known) length.
    pub declared: Option<u64>,
    /// Whether there may be one at all (a length above 0, or a chunked body).
    pub may_exist: bool,
}

/// How much of the body was read during the loan.
#[derive(Default)]
struct Progress {
    expected: BodyExpected,
    read: u64,
    /// A read found the body's end.
    ended: bool,
}

impl Progress {
    fn read_to_the_end(&self) -> bool {
        self.ended
            || !self.expected.may_exist
            || self.expected.declared.is_some_and(|n| self.read >= n)
    }
}

/// Why a read after the loan fails, when the body was not read to its end.
const UNREADABLE: &str = "the request body can no longer be read: wsgi.input is readable \
until the application's first non-empty body chunk; read the body before yielding one";

// SAFETY: the pointee is a `BodyReader`, which is `Send`; the pointer is only dereferenced
// while holding the mutex, so at most one thread uses it at a time.
unsafe impl Send for BodySlot {}
// SAFETY: as above; all access goes through the mutex.
unsafe impl Sync for BodySlot {}

impl BodySlot {
    pub(crate) fn new() -> Arc<BodySlot> {
        Arc::new(BodySlot {
            reader: Mutex::new(None),
            fault: Mutex::new(None),
            progress: Mutex::new(Progress::default()),
        })
    }

    /// Runs `f` with `reader` (a body as `expected`) readable through this slot; the slot is
    /// empty again afterwards.
    pub(crate) fn lend<'a, R>(
        &self,
        reader: &'a mut dyn BodyReader,
        expected: BodyExpected,
        f: impl FnOnce() -> R,
    ) -> R {
        *lock(&self.progress) = Progress {
            expected,
            ..Progress::default()
        };
        let ptr: NonNull<dyn BodyReader + 'a> = NonNull::from(reader);
        // SAFETY: only the trait object's lifetime bound is erased. The pointer is stored in
        // the slot for the scope of this function and removed by `Clear::drop` before it
        // returns or unwinds, while `reader` (borrowed for 'a, which outlives this call) is
        // still valid and not otherwise used (we hold its unique borrow). Uses happen only
        // under the mutex, which `Clear::drop` also takes, so a read in progress on another
        // thread finishes before the pointer disappears. The guard is a local that cannot be
        // leaked by callers.
        let ptr: NonNull<dyn BodyReader + 'static> = unsafe { std::mem::transmute(ptr) };
        *lock(&self.reader) = Some(ptr);
        let _loan = Clear(&self.reader);
        f()
    }

    /// Forgets a client fault (the slot serves another request).
    fn reset(&self) {
        *lock(&self.fault) = None;
    }

    /// What the client did wrong while its body was read, if anything.
    pub(crate) fn fault(&self) -> Option<ClientFault> {
        lock(&self.fault).clone()
    }

    /// Reads from the lent reader; `Ok(0)` at the end of the body or once the loan is over.
    /// After a client fault, every read fails with it again.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(fault) = &*lock(&self.fault) {
            return Err(fault.to_io());
        }
        let result = self.read_lent(buf);
        if let Err(e) = &result {
            if let Some(fault) = ClientFault::from_io(e) {
                lock(&self.fault).get_or_insert(fault);
            }
        }
        result
    }

    fn read_lent(&self, buf: &mut [u8]) -> io::Result<usize> {
        let guard = lock(&self.reader);
        let Some(mut ptr) = *guard else {
            return if lock(&self.progress).read_to_the_end() {
                Ok(0)
            } else {
                Err(io::Error::other(UNREADABLE))
            };
        };
        loop {
            // SAFETY: the pointer is in the slot, so the loan is live and the reader valid
            // (see `lend`); we hold the mutex, so this is the only reference in use.
            match unsafe { ptr.as_mut() }.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(n) => {
                    let mut progress = lock(&self.progress);
                    progress.read += n as u64;
                    progress.ended |= n == 0 && !buf.is_empty();
                    return Ok(n);
                }
                other => return other,
            }
        }
    }
}

/// Buffered reading state behind `wsgi.input` (pure Rust, used without the GIL).
struct InputState {
    slot: Arc<BodySlot>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl InputState {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    /// Appends up to `CHUNK` bytes from the body to the buffer; false at the end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + CHUNK, 0);
        let n = self.slot.read(&mut self.buf[start..]);
        self.buf.truncate(start + *n.as_ref().unwrap_or(&0));
        if n? == 0 {
            self.eof = true;
        }
        Ok(!self.eof)
    }

    /// Up to `size` bytes (all remaining when `None`); fewer only at the end of the body.
    fn read(&mut self, size: Option<usize>) -> io::Result<Vec<u8>> {
        let want = size.unwrap_or(usize::MAX);
        let mut out = self.take(self.buffered().len().min(want));
        while out.len() < want && !self.eof {
            let start = out.len();
            let step = (want - start).min(MAX_STEP);
            out.resize(start + step, 0);
            let n = self.slot.read(&mut out[start..]);
            out.truncate(start + *n.as_ref().unwrap_or(&0));
            if n? == 0 {
                self.eof = true;
            }
        }
        Ok(out)
    }

    /// One line including its `\n`, at most `limit` bytes.
    fn readline(&mut self, limit: Option<usize>) -> io::Result<Vec<u8>> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut scanned = 0;
        loop {
            let avail = self.buffered();
            let window = avail.len().min(limit);
            if let Some(i) = avail[scanned.min(window)..window]
                .iter()
                .position(|&b| b == b'\n')
            {
                return Ok(self.take(scanned.min(window) + i + 1));
            }
            if window == limit || !self.fill()? {
                let n = self.buffered().len().min(limit);
                return Ok(self.take(n));
            }
            scanned = window;
        }
    }
}

/// The `wsgi.input` object.
#[pyclass(module = "ironhorse", name = "Input", frozen)]
pub(crate) struct WsgiInput {
    state: Mutex<InputState>,
    pub(crate) slot: Arc<BodySlot>,
}

impl WsgiInput {
    pub(crate) fn new(slot: Arc<BodySlot>) -> WsgiInput {
        WsgiInput {
            slot: slot.clone(),
            state: Mutex::new(InputState {
                slot,
                buf: Vec::new(),
                pos: 0,
                eof: false,
            }),
        }
    }

    /// Whether `input` can serve this thread's next request: true when the caller's is
    /// the only reference to it (neither the application nor another thread kept it, nor
    /// an `environ` that holds it), after which it is reset as if new. Call with the
    /// request's body loan still held; nothing can reach it after this returns true.
    pub(crate) fn recycle(input: &Bound<'_, WsgiInput>) -> bool {
        if !crate::spare::sole_reference(input.as_any()) {
            return false;
        }
        let this = input.get();
        let mut state = lock(&this.state);
        // A buffer that grew for a body is given back, as a new object's would be.
        state.buf = Vec::new();
        state.pos = 0;
        state.eof = false;
        drop(state);
        this.slot.reset();
        true
    }

    /// Runs `f` on the state with the GIL released. A failure the client caused raises
    /// its `ironhorse.ClientError`; any other is an ordinary `OSError`.
    fn with_state<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut InputState) -> io::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| f(&mut lock(&self.state)))
            .map_err(|e| match self.slot.fault() {
                Some(fault) => fault.exception(py),
                None => PyErr::from(e),
            })
    }
}

/// `None` or a negative number mean "no limit", as in `io`.
fn limit(size: Option<i64>) -> Option<usize> {
    size.and_then(|n| usize::try_from(n).ok())
}

#[pymethods]
impl WsgiInput {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.with_state(py, |s| s.read(limit(size)))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.with_state(py, |s| s.readline(limit(size)))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<i64>) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint).filter(|&h| h > 0).unwrap_or(usize::MAX);
        let lines = self.with_state(py, |s| {
            let mut lines = Vec::new();
            let mut total = 0;
            while total < hint {
                let line = s.readline(None)?;
                if line.is_empty() {
                    break;
                }
                total += line.len();
                lines.push(line);
            }
            Ok(lines)
        })?;
        PyList::new(py, lines.iter().map(|l| PyBytes::new(py, l)))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}
