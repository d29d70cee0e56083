//! ASGI `http` messages: the ones `receive` gives, and the ones `send` takes, checked.

use std::borrow::Cow;

use ironhorse_app::HeaderList;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::channel::split_framing;

/// A message the application sent, checked.
pub(crate) enum Outgoing {
    Start {
        status: u16,
        headers: HeaderList,
        len: Option<u64>,
    },
    Body {
        data: Vec<u8>,
        more: bool,
    },
    /// A type this server does not take in `http` (trailers and pathsend are not announced).
    Other(String),
}

impl Outgoing {
    pub(crate) fn kind(&self) -> String {
        match self {
            Outgoing::Start { .. } => "http.response.start".into(),
            Outgoing::Body { .. } => "http.response.body".into(),
            Outgoing::Other(kind) => kind.clone(),
        }
    }
}

/// `{"type": "http.request", "body": ..., "more_body": ...}`.
pub(crate) fn request<'py>(
    py: Python<'py>,
    body: &[u8],
    more: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let message = PyDict::new(py);
    message.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
    message.set_item(intern!(py, "body"), PyBytes::new(py, body))?;
    message.set_item(intern!(py, "more_body"), more)?;
    Ok(message)
}

/// `{"type": "http.disconnect"}`.
pub(crate) fn disconnect(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let message = PyDict::new(py);
    message.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
    Ok(message)
}

/// Reads a sent message.
pub(crate) fn outgoing(message: &Bound<'_, PyDict>) -> PyResult<Outgoing> {
    let py = message.py();
    let kind: String = message
        .get_item(intern!(py, "type"))?
        .ok_or_else(|| PyTypeError::new_err("ASGI message without a 'type'"))?
        .extract()?;
    match kind.as_str() {
        "http.response.start" => {
            let status: u16 = message
                .get_item(intern!(py, "status"))?
                .ok_or_else(|| PyTypeError::new_err("http.response.start without a 'status'"))?
                .extract()?;
            if !(100..=999).contains(&status) {
                return Err(PyRuntimeError::new_err(format!("invalid status {status}")));
            }
            let headers = match message.get_item(intern!(py, "headers"))? {
                Some(headers) => read_headers(&headers)?,
                None => Vec::new(),
            };
            let (headers, len) = split_framing(headers)?;
            Ok(Outgoing::Start {
                status,
                headers,
                len,
            })
        }
        "http.response.body" => {
            let data = match message.get_item(intern!(py, "body"))? {
                Some(body) => to_bytes(&body, "'body'")?,
                None => Vec::new(),
            };
            let more = match message.get_item(intern!(py, "more_body"))? {
                Some(more) => more.is_truthy()?,
                None => false,
            };
            Ok(Outgoing::Body { data, more })
        }
        _ => Ok(Outgoing::Other(kind)),
    }
}

/// `[[name, value], ...]`, both bytes; names must be tokens and values free of CR, LF, NUL.
fn read_headers(headers: &Bound<'_, PyAny>) -> PyResult<HeaderList> {
    let mut list = Vec::new();
    for pair in headers.try_iter()? {
        let pair = pair?;
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair
            .extract()
            .map_err(|_| PyTypeError::new_err("a header must be a pair of bytes"))?;
        let (name, value) = (
            to_bytes(&name, "a header name")?,
            to_bytes(&value, "a header value")?,
        );
        let name = String::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty() && n.bytes().all(is_token))
            .ok_or_else(|| PyRuntimeError::new_err("invalid header name"))?;
        if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(PyRuntimeError::new_err(format!(
                "invalid value for header {name:?}"
            )));
        }
        list.push((Cow::Owned(name), value));
    }
    Ok(list)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `bytes` (or `bytearray`, `memoryview`) as a byte vector.
fn to_bytes(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    if value.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be bytes, not str"
        )));
    }
    value
        .extract::<Vec<u8>>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be bytes")))
}
