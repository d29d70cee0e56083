//! Errors the *client* causes while the application reads `wsgi.input`: a malformed chunked
//! body, a body that stops arriving (`--body-timeout`), a client that goes away mid-body.
//!
//! They reach the application as `ironhorse.ClientError` (an `OSError`), with a subclass per
//! kind, and the bridge remembers what happened ([`ClientFault`]). When the error escapes
//! the application — or the application turned it into a 5xx of its own, as Flask does with
//! every uncaught exception — the client gets the status it earned (400, 408, 413; the
//! connection closes either way, the body's framing being lost), the log gets one info line
//! and no traceback: the server is fine, the client was not.
//!
//! Python classes (module `ironhorse`, also importable as `ironhorse` from the app):
//! `ClientError(OSError)`, `BadRequestBody(ClientError)`,
//! `RequestBodyTimeout(ClientError, TimeoutError)`,
//! `ClientDisconnected(ClientError, ConnectionError)`.

use std::borrow::Cow;
use std::io;

use ironhorse_app::Response;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// What the client did wrong while sending its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientFault {
    /// The body is malformed (bad chunk framing) or too large: the status to answer.
    Malformed { status: u16, why: String },
    /// No body bytes arrived for the body timeout.
    TimedOut,
    /// The client closed or reset the connection before its body was complete or while
    /// its response was sent; `why` says when ("mid-body (…)").
    Gone { why: String },
}

impl ClientFault {
    /// The fault behind a body read error, if the client caused it.
    pub(crate) fn from_io(e: &io::Error) -> Option<ClientFault> {
        let parsed = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ironhorse_h1::Error>());
        if let Some(err) = parsed {
            return Some(match err {
                ironhorse_h1::Error::Incomplete => ClientFault::Gone {
                    why: "mid-body (connection closed)".into(),
                },
                other => ClientFault::Malformed {
                    status: other.status(),
                    why: other.message().into(),
                },
            });
        }
        match e.kind() {
            io::ErrorKind::InvalidData => Some(ClientFault::Malformed {
                status: 400,
                why: e.to_string(),
            }),
            io::ErrorKind::TimedOut => Some(ClientFault::TimedOut),
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Some(ClientFault::Gone {
                why: format!("mid-body ({e})"),
            }),
            _ => None,
        }
    }

    /// The status the client gets (a client that is gone gets nothing; 400 if it only
    /// half-closed and still reads).
    pub(crate) fn status(&self) -> u16 {
        match self {
            ClientFault::Malformed { status, .. } => *status,
            ClientFault::TimedOut => 408,
            ClientFault::Gone { .. } => 400,
        }
    }

    fn describe(&self) -> Cow<'_, str> {
        match self {
            ClientFault::Malformed { why, .. } => format!("malformed request body ({why})").into(),
            ClientFault::TimedOut => "request body timed out".into(),
            ClientFault::Gone { why } => format!("client went away {why}").into(),
        }
    }

    /// The same failure again, for reads after the first one failed (the body is lost).
    pub(crate) fn to_io(&self) -> io::Error {
        let kind = match self {
            ClientFault::Malformed { .. } => io::ErrorKind::InvalidData,
            ClientFault::TimedOut => io::ErrorKind::TimedOut,
            ClientFault::Gone { .. } => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, self.describe().into_owned())
    }

    /// The Python exception raised into the application.
    pub(crate) fn exception(&self, py: Python<'_>) -> PyErr {
        let classes = match classes(py) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let class = match self {
            ClientFault::Malformed { .. } => &classes.bad_body,
            ClientFault::TimedOut => &classes.timeout,
            ClientFault::Gone { .. } => &classes.gone,
        };
        PyErr::from_type(class.bind(py).clone(), self.describe().into_owned())
    }

    /// The answer: a short text with the status, closing the connection.
    pub(crate) fn response(&self) -> Response {
        let status = self.status();
        let reason = ironhorse_h1::reason_phrase(status);
        Response::text(status, format!("{reason}: {}\n", self.describe()))
            .with_header("Connection", "close")
    }

    /// The one log line (info level: the client's doing, nothing for an operator to fix).
    pub(crate) fn log_line(&self, peer: &str, method: &str, path: &str) -> String {
        let outcome = match self {
            // Whatever is sent goes nowhere (or to a client that only half-closed).
            ClientFault::Gone { .. } => "closed".to_string(),
            _ => format!("answered {} and closed", self.status()),
        };
        format!(
            "client error from {peer} on {method} {path}: {}; {outcome}",
            self.describe()
        )
    }

    /// A fault for a `ClientError` the application raised itself (no read failed).
    pub(crate) fn from_exception(py: Python<'_>, err: &PyErr) -> Option<ClientFault> {
        let classes = classes(py).ok()?;
        let is = |class: &Py<PyType>| err.is_instance(py, class.bind(py));
        if !is(&classes.base) {
            return None;
        }
        let why = err.value(py).to_string();
        Some(if is(&classes.timeout) {
            ClientFault::TimedOut
        } else if is(&classes.gone) {
            let why = match why.strip_prefix("client went away ") {
                Some(rest) => rest.to_string(),
                None => format!("({why})"),
            };
            ClientFault::Gone { why }
        } else {
            ClientFault::Malformed { status: 400, why }
        })
    }
}

struct Classes {
    base: Py<PyType>,
    bad_body: Py<PyType>,
    timeout: Py<PyType>,
    gone: Py<PyType>,
}

const SOURCE: &std::ffi::CStr = c"
class ClientError(OSError):
    '''The client broke its request while the application read wsgi.input.'''

class BadRequestBody(ClientError):
    '''The request body is malformed (e.g. chunked framing) or too large.'''

class RequestBodyTimeout(ClientError, TimeoutError):
    '''The client stopped sending its request body.'''

class ClientDisconnected(ClientError, ConnectionError):
    '''The client closed the connection before its request body was complete.'''
";

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// The exception classes, made once per interpreter and registered as module `ironhorse`
/// (unless the application has a module of that name).
fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let module = PyModule::from_code(py, SOURCE, c"<ironhorse>", c"ironhorse")?;
        let modules = py.import("sys")?.getattr("modules")?;
        if !modules.contains("ironhorse")? {
            modules.set_item("ironhorse", &module)?;
        }
        let get = |name: &str| -> PyResult<Py<PyType>> {
            Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Classes {
            base: get("ClientError")?,
            bad_body: get("BadRequestBody")?,
            timeout: get("RequestBodyTimeout")?,
            gone: get("ClientDisconnected")?,
        })
    })
}

/// Makes the classes available (`import ironhorse`) before the application is imported.
pub(crate) fn register(py: Python<'_>) -> PyResult<()> {
    classes(py).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_body_read_errors() {
        let h1 = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            ClientFault::from_io(&h1(ironhorse_h1::Error::BadChunkSize)).map(|f| f.status()),
            Some(400)
        );
        assert_eq!(
            ClientFault::from_io(&h1(ironhorse_h1::Error::BodyTooLarge)).map(|f| f.status()),
            Some(413)
        );
        assert!(matches!(
            ClientFault::from_io(&h1(ironhorse_h1::Error::Incomplete)),
            Some(ClientFault::Gone { .. })
        ));
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "request body timed out");
        assert_eq!(
            ClientFault::from_io(&timed_out),
            Some(ClientFault::TimedOut)
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            ClientFault::from_io(&reset),
            Some(ClientFault::Gone { .. })
        ));
        assert_eq!(ClientFault::from_io(&io::Error::other("disk")), None);
    }

    #[test]
    fn answers_with_the_status_and_closes() {
        let r = ClientFault::TimedOut.response();
        assert_eq!(r.status, 408);
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| n == "Connection" && v == b"close"));
        assert_eq!(
            ClientFault::TimedOut.to_io().kind(),
            io::ErrorKind::TimedOut
        );
    }
}
