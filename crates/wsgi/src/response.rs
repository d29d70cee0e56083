//! Turning what the app returned into a [`Response`].
//!
//! Headers go out with the first non-empty chunk, so an app may call `start_response` lazily
//! from inside a generator: [`respond`] pulls chunks until the first non-empty one (or the
//! end) before it knows the status. The rest streams through [`ResponseStream`], which takes
//! the GIL per chunk and guarantees the result's `close()` runs exactly once: at the end, on
//! an exception, or when the driver drops the stream early (client gone).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use ironhorse_app::{Body, Response};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple};

use crate::file_wrapper::FileWrapper;
use crate::interpreter::attach;
use crate::report::log_exception;
use crate::start_response::{body_bytes, Head, Shared};

/// Converts the app's result; `Err` means the app failed before its headers were fixed (the
/// caller answers 500). `close()` has been called on every `Err` path.
pub(crate) fn respond(
    py: Python<'_>,
    result: Bound<'_, PyAny>,
    start: &Arc<Shared>,
) -> PyResult<Response> {
    if head_sent(start) {
        let iter = result.try_iter();
        return match iter.and_then(|iter| continuation(&result, iter, start, VecDeque::new())) {
            Ok(Outcome::Streaming(resp)) => Ok(resp),
            Ok(Outcome::Done(resp)) => Ok(resp),
            Err(e) => {
                close(py, &result);
                Err(e)
            }
        };
    }
    // A plain list or tuple is already all in memory (and has no close()).
    if let Ok(list) = result.cast_exact::<PyList>() {
        return buffered(start, list.iter());
    }
    if let Ok(tuple) = result.cast_exact::<PyTuple>() {
        return buffered(start, tuple.iter());
    }
    let outcome = match file_response(py, &result, start) {
        Some(resp) => Ok(Outcome::Done(resp)),
        None => first_chunks(&result, start),
    };
    match outcome {
        Ok(Outcome::Done(resp)) => {
            close(py, &result);
            Ok(resp)
        }
        Ok(Outcome::Streaming(resp)) => Ok(resp),
        Err(e) => {
            close(py, &result);
            Err(e)
        }
    }
}

/// Whether the result still needs its `close()` from us.
enum Outcome {
    /// Fully converted; the Python result is no longer needed.
    Done(Response),
    /// A stream now owns the result and will close it.
    Streaming(Response),
}

/// A `wsgi.file_wrapper` around a regular file, as a sendfile region.
fn file_response(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    start: &Arc<Shared>,
) -> Option<Response> {
    let wrapper = result.cast::<FileWrapper>().ok()?;
    let limit = start.declared().head.as_ref()?.content_length;
    let region = wrapper.get().region(py, limit)?;
    let head = start.declared().head.take()?;
    Some(response(head, Body::File(region)))
}

/// Pulls chunks until the first non-empty one. The whole response when the iterable ended
/// first; otherwise a streaming response that owns the iterator (and its `close()`).
fn first_chunks(result: &Bound<'_, PyAny>, start: &Arc<Shared>) -> PyResult<Outcome> {
    let mut iter = result.try_iter()?;
    let mut pending: VecDeque<Vec<u8>> = take_written(start).into();
    while pending.is_empty() {
        let Some(item) = iter.next() else {
            if head_sent(start) {
                return continuation(result, iter, start, VecDeque::new());
            }
            let data: Vec<u8> = take_written(start).concat();
            return Ok(Outcome::Done(finish_buffered(require_head(start)?, data)));
        };
        pending.extend(take_written(start));
        let chunk = body_bytes(&item?)?;
        if !chunk.is_empty() {
            pending.push_back(chunk);
        }
        if head_sent(start) {
            // The iterator called `write()`, which sent the head: the rest continues it.
            return continuation(result, iter, start, pending);
        }
    }
    let head = require_head(start)?;
    start.declared().headers_sent = true;
    let length = head.content_length;
    let stream = ResponseStream::new(result, iter, start, pending);
    Ok(Outcome::Streaming(response(
        head,
        Body::Stream {
            chunks: Box::new(stream),
            length,
        },
    )))
}

/// All chunks of an in-memory result (plus earlier `write()` data), as one body.
fn buffered<'py>(
    start: &Arc<Shared>,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Response> {
    let mut data = take_written(start).concat();
    for item in items {
        match item.cast::<PyBytes>() {
            // The usual chunk: copied once, straight into the body.
            Ok(bytes) => data.extend_from_slice(bytes.as_bytes()),
            Err(_) => data.extend_from_slice(&body_bytes(&item)?),
        }
    }
    Ok(finish_buffered(require_head(start)?, data))
}

/// A complete body. A declared Content-Length still rules: a longer body is cut to it; a
/// shorter one is passed on with the declared length, so the engine closes the connection
/// (or, for HEAD, sends the declared length without a body).
fn finish_buffered(head: Head, mut data: Vec<u8>) -> Response {
    let body = match head.content_length {
        Some(n) if n < data.len() as u64 => {
            data.truncate(n as usize);
            Body::Bytes(data)
        }
        Some(n) if n > data.len() as u64 => {
            let chunks: Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send> = if data.is_empty() {
                Box::new(std::iter::empty())
            } else {
                Box::new(std::iter::once(Ok(data)))
            };
            Body::Stream {
                chunks,
                length: Some(n),
            }
        }
        _ if data.is_empty() => Body::Empty,
        _ => Body::Bytes(data),
    };
    response(head, body)
}

fn response(head: Head, body: Body) -> Response {
    let (status, headers, _) = head.into_parts();
    Response {
        status,
        headers,
        body,
    }
}

/// After `write()` sent the head: the rest of the body, streamed from the result (and the
/// chunks already pulled from it). The engine ignores this response's status and headers.
fn continuation<'py>(
    result: &Bound<'py, PyAny>,
    iter: Bound<'py, PyIterator>,
    start: &Arc<Shared>,
    pending: VecDeque<Vec<u8>>,
) -> PyResult<Outcome> {
    let stream = ResponseStream::new(result, iter, start, pending);
    Ok(Outcome::Streaming(Response {
        status: 200,
        headers: Vec::new(),
        body: Body::Stream {
            chunks: Box::new(stream),
            length: None,
        },
    }))
}

fn head_sent(start: &Arc<Shared>) -> bool {
    start.sink.started()
}

fn require_head(start: &Arc<Shared>) -> PyResult<Head> {
    start.declared().head.take().ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err(
            "the WSGI application did not call start_response before its first body chunk",
        )
    })
}

fn take_written(start: &Arc<Shared>) -> Vec<Vec<u8>> {
    std::mem::take(&mut start.declared().written)
}

/// Calls the result's `close()` if it has one; failures are logged.
fn close(py: Python<'_>, result: &Bound<'_, PyAny>) {
    let closed = result.hasattr("close").and_then(|has| {
        if has {
            result.call_method0("close")?;
        }
        Ok(())
    });
    if let Err(e) = closed {
        log_exception(py, &e, "exception in the WSGI response's close()");
    }
}

/// The Python side of a streaming response, present until `close()` ran.
struct Live {
    iter: Py<PyIterator>,
    result: Py<PyAny>,
    start: Arc<Shared>,
}

/// The rest of a streaming body. Each `next()` takes the GIL for one chunk.
pub(crate) struct ResponseStream {
    pending: VecDeque<Vec<u8>>,
    live: Option<Live>,
}

impl ResponseStream {
    /// The stream that owns `result` (and its `close()`), starting with `pending`.
    fn new<'py>(
        result: &Bound<'py, PyAny>,
        iter: Bound<'py, PyIterator>,
        start: &Arc<Shared>,
        pending: VecDeque<Vec<u8>>,
    ) -> ResponseStream {
        ResponseStream {
            pending,
            live: Some(Live {
                iter: iter.unbind(),
                result: result.clone().unbind(),
                start: start.clone(),
            }),
        }
    }

    /// Ends the Python side: `close()` once, references dropped with the GIL held.
    fn finish(&mut self, py: Python<'_>) {
        if let Some(live) = self.live.take() {
            close(py, live.result.bind(py));
            drop(live);
        }
    }
}

impl Iterator for ResponseStream {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        if let Some(chunk) = self.pending.pop_front() {
            return Some(Ok(chunk));
        }
        self.live.as_ref()?;
        attach(|py| {
            while self.pending.is_empty() {
                let live = self.live.as_ref()?;
                let start = &live.start;
                let item = live.iter.bind(py).clone().next();
                self.pending.extend(take_written(start));
                match item.map(|r| r.and_then(|obj| body_bytes(&obj))) {
                    Some(Ok(chunk)) => {
                        if !chunk.is_empty() {
                            self.pending.push_back(chunk);
                        }
                    }
                    None => {
                        self.finish(py);
                        break;
                    }
                    Some(Err(e)) => {
                        log_exception(py, &e, "exception in the WSGI response iterator");
                        self.pending.clear();
                        self.finish(py);
                        return Some(Err(io::Error::other(format!(
                            "the WSGI application failed mid-response: {e}"
                        ))));
                    }
                }
            }
            self.pending.pop_front().map(Ok)
        })
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if self.live.is_some() {
            attach(|py| self.finish(py));
        }
    }
}
