//! ASGI `http` messages: the ones `receive` gives, and the ones `send` takes, checked.

use std::borrow::Cow;

use ironhorse_app::{HeaderList, WsMessage};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

/// A message the application sent, checked.
pub(crate) enum Outgoing {
    Start {
        status: u16,
        headers: HeaderList,
        len: Option<u64>,
        /// `http.response.trailers` messages follow the last body message.
        trailers: bool,
    },
    Body {
        data: Vec<u8>,
        more: bool,
    },
    Trailers {
        headers: HeaderList,
        more: bool,
    },
    /// `http.response.pathsend`: the body is the file at this path.
    PathSend(String),
    /// A type this server does not take in `http` (trailers are not announced).
    Other(String),
}

impl Outgoing {
    pub(crate) fn kind(&self) -> String {
        match self {
            Outgoing::Start { .. } => "http.response.start".into(),
            Outgoing::Body { .. } => "http.response.body".into(),
            Outgoing::PathSend(_) => "http.response.pathsend".into(),
            Outgoing::Trailers { .. } => "http.response.trailers".into(),
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
        "http.response.start" => start(message),
        "http.response.body" => body(message),
        "http.response.pathsend" => {
            let path = message
                .get_item(intern!(py, "path"))?
                .ok_or_else(|| PyTypeError::new_err("http.response.pathsend without a 'path'"))?
                .extract::<String>()
                .map_err(|_| PyTypeError::new_err("'path' must be a str"))?;
            Ok(Outgoing::PathSend(path))
        }
        "http.response.trailers" => {
            let headers = match message.get_item(intern!(py, "headers"))? {
                Some(headers) => read_headers(&headers)?,
                None => Vec::new(),
            };
            let more = match message.get_item(intern!(py, "more_trailers"))? {
                Some(more) => more.is_truthy()?,
                None => false,
            };
            Ok(Outgoing::Trailers { headers, more })
        }
        _ => Ok(Outgoing::Other(kind)),
    }
}

/// An `http.response.start` (or `websocket.http.response.start`), checked.
fn start(message: &Bound<'_, PyDict>) -> PyResult<Outgoing> {
    let py = message.py();
    let status: u16 = message
        .get_item(intern!(py, "status"))?
        .ok_or_else(|| PyTypeError::new_err("a response start without a 'status'"))?
        .extract()?;
    // 1xx are interim answers, never the response itself (RFC 9110 §15.2); codes past 599
    // are invalid (§15), as the WSGI bridge holds too.
    if !(200..=599).contains(&status) {
        return Err(PyRuntimeError::new_err(format!(
            "invalid status {status} (a response's status is 200 to 599)"
        )));
    }
    let headers = match message.get_item(intern!(py, "headers"))? {
        Some(headers) => read_headers(&headers)?,
        None => Vec::new(),
    };
    let (headers, len) = split_framing(headers)?;
    let trailers = match message.get_item(intern!(py, "trailers"))? {
        Some(trailers) => trailers.is_truthy()?,
        None => false,
    };
    Ok(Outgoing::Start {
        status,
        headers,
        len,
        trailers,
    })
}

/// An `http.response.body` (or `websocket.http.response.body`), checked.
fn body(message: &Bound<'_, PyDict>) -> PyResult<Outgoing> {
    let py = message.py();
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

/// `[[name, value], ...]`, both bytes; names must be tokens and values field content
/// (RFC 9110 §5.5: visible bytes, obs-text, SP and HTAB; no other control byte, DEL neither).
fn read_headers(headers: &Bound<'_, PyAny>) -> PyResult<HeaderList> {
    let mut list = Vec::new();
    for pair in headers.try_iter()? {
        let (name, value) = header_pair(&pair?)?;
        let (name, value) = (
            to_bytes(&name, "a header name")?,
            to_bytes(&value, "a header value")?,
        );
        let name = String::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty() && n.bytes().all(is_token))
            .ok_or_else(|| PyRuntimeError::new_err("invalid header name"))?;
        if !value
            .iter()
            .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
        {
            return Err(PyRuntimeError::new_err(format!(
                "invalid value for header {name:?}"
            )));
        }
        list.push((Cow::Owned(name), value));
    }
    Ok(list)
}

/// A header as the spec writes it, `[name, value]`, or as a tuple (what most frameworks send).
fn header_pair<'py>(pair: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let invalid = || PyTypeError::new_err("a header must be a pair of bytes");
    if let Ok(list) = pair.cast::<pyo3::types::PyList>() {
        if list.len() != 2 {
            return Err(invalid());
        }
        return Ok((list.get_item(0)?, list.get_item(1)?));
    }
    pair.extract().map_err(|_| invalid())
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

/// `headers` with the framing headers the engine owns taken out; `Content-Length` becomes
/// the declared length.
pub(crate) fn split_framing(headers: HeaderList) -> PyResult<(HeaderList, Option<u64>)> {
    let mut len = None;
    let mut kept = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| PyRuntimeError::new_err("invalid content-length header"))?;
            // Repeated, the same value is one field (RFC 9110 §8.6); two values are no
            // length at all, and picking one would cut or stall the body.
            if len.is_some_and(|n| n != parsed) {
                return Err(PyRuntimeError::new_err(
                    "content-length given twice with different values",
                ));
            }
            len = Some(parsed);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        } else {
            kept.push((name, value));
        }
    }
    Ok((kept, len))
}

/// A WebSocket action the application sent, checked.
pub(crate) enum WsOutgoing {
    Accept {
        subprotocol: Option<String>,
        headers: HeaderList,
    },
    Send(WsMessage),
    Close {
        code: u16,
        reason: String,
    },
    /// The denial response (`websocket.http.response.start` / `.body`): an
    /// [`Outgoing::Start`] or [`Outgoing::Body`].
    Deny(Outgoing),
    Other(String),
}

impl WsOutgoing {
    pub(crate) fn kind(&self) -> String {
        match self {
            WsOutgoing::Accept { .. } => "websocket.accept".into(),
            WsOutgoing::Send(_) => "websocket.send".into(),
            WsOutgoing::Close { .. } => "websocket.close".into(),
            WsOutgoing::Deny(Outgoing::Start { .. }) => "websocket.http.response.start".into(),
            WsOutgoing::Deny(_) => "websocket.http.response.body".into(),
            WsOutgoing::Other(kind) => kind.clone(),
        }
    }
}

fn typed<'py>(py: Python<'py>, kind: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyDict>> {
    let message = PyDict::new(py);
    message.set_item(intern!(py, "type"), kind)?;
    Ok(message)
}

/// `{"type": "websocket.connect"}`.
pub(crate) fn ws_connect(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    typed(py, intern!(py, "websocket.connect"))
}

/// `{"type": "websocket.receive", "text" or "bytes": ...}`.
pub(crate) fn ws_receive(py: Python<'_>, incoming: WsMessage) -> PyResult<Bound<'_, PyDict>> {
    let message = typed(py, intern!(py, "websocket.receive"))?;
    match incoming {
        WsMessage::Text(text) => message.set_item(intern!(py, "text"), text)?,
        WsMessage::Binary(data) => {
            message.set_item(intern!(py, "bytes"), PyBytes::new(py, &data))?
        }
    }
    Ok(message)
}

/// `{"type": "websocket.disconnect", "code": ..., "reason": ...}`.
pub(crate) fn ws_disconnect<'py>(
    py: Python<'py>,
    code: u16,
    reason: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let message = typed(py, intern!(py, "websocket.disconnect"))?;
    message.set_item(intern!(py, "code"), code)?;
    message.set_item(intern!(py, "reason"), reason)?;
    Ok(message)
}

/// Reads a sent WebSocket message.
pub(crate) fn ws_outgoing(message: &Bound<'_, PyDict>) -> PyResult<WsOutgoing> {
    let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(message.get_item(key)?.filter(|v| !v.is_none()))
    };
    let kind: String = get("type")?
        .ok_or_else(|| PyTypeError::new_err("ASGI message without a 'type'"))?
        .extract()?;
    match kind.as_str() {
        "websocket.accept" => {
            let subprotocol = get("subprotocol")?
                .map(|s| s.extract::<String>())
                .transpose()?;
            let headers = match get("headers")? {
                Some(headers) => read_headers(&headers)?,
                None => Vec::new(),
            };
            Ok(WsOutgoing::Accept {
                subprotocol,
                headers,
            })
        }
        "websocket.send" => match (get("text")?, get("bytes")?) {
            (Some(text), None) => Ok(WsOutgoing::Send(WsMessage::Text(text.extract()?))),
            (None, Some(data)) => Ok(WsOutgoing::Send(WsMessage::Binary(to_bytes(
                &data, "'bytes'",
            )?))),
            _ => Err(PyTypeError::new_err(
                "websocket.send needs exactly one of 'text' and 'bytes'",
            )),
        },
        "websocket.close" => {
            let code = match get("code")? {
                Some(code) => code.extract::<u16>()?,
                None => 1000,
            };
            let reason = match get("reason")? {
                Some(reason) => reason.extract::<String>()?,
                None => String::new(),
            };
            Ok(WsOutgoing::Close { code, reason })
        }
        "websocket.http.response.start" => start(message).map(WsOutgoing::Deny),
        "websocket.http.response.body" => body(message).map(WsOutgoing::Deny),
        _ => Ok(WsOutgoing::Other(kind)),
    }
}
