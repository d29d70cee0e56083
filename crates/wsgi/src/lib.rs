//! Runs a Python WSGI application (PEP 3333) as an ironhorse [`Service`], on CPython embedded
//! with PyO3.
//!
//! * [`init_python`] starts the interpreter once per process (see `interpreter` for why it
//!   is done by hand); [`WsgiApp::load`] imports the app.
//! * [`WsgiApp`]'s `call` builds the environ, runs the app with the GIL held, and converts
//!   the result: in-memory bodies, `sendfile` regions for `wsgi.file_wrapper`, or a stream
//!   that takes the GIL per chunk. The GIL is released for every read of the request body.
//! * Any OS thread may call in; each keeps one persistent Python thread state.
//! * Fork hooks keep the interpreter consistent across `fork()` (GIL held while forking).
//! * Client errors while reading the body (malformed, timed out, gone) are answered 400/408
//!   with one info line, never as a 500 with a traceback (`client_error.rs`).
//! * Trusted proxies' forwarding headers (`WsgiConfig::forwarded`, resolved by
//!   `ironhorse-wire`) set `REMOTE_ADDR`, `wsgi.url_scheme` and the host; contradictory
//!   scheme headers from them are answered 400.
//! * `OPTIONS *` is about the server, not a resource (RFC 9110 §9.3.7): answered here, the
//!   app never sees it.

mod cancel;
mod client_error;
pub mod doorbell;
mod environ;
mod errors;
mod file_wrapper;
pub mod green;
mod input;
mod interpreter;
mod load;
mod loan;
mod report;
mod response;
mod sink;
mod spare;
mod start_response;

use std::path::PathBuf;
use std::sync::Arc;

use ironhorse_app::{Body, BodyReader, ConnInfo, Request, Response, ResponseSink, Service};
use ironhorse_log::ErrorLog;
use ironhorse_wire::forwarded::{Policy, Resolved};
use pyo3::prelude::*;

pub use environ::{RequestParts, RequestView};
pub use errors::WsgiError;
pub use interpreter::init_python;

use client_error::ClientFault;
use environ::EnvironBuilder;
use input::BodySlot;
use spare::Spare;
use start_response::Shared;

/// How to find, start and present the application.
#[derive(Clone)]
pub struct WsgiConfig {
    /// `module:callable`, `module:factory()` or `module:factory(literal args)`, as gunicorn
    /// takes it; a bare `module` means `module:application`.
    pub app: String,
    /// Working directory to switch to before importing (also put on `sys.path`).
    pub chdir: Option<PathBuf>,
    /// Extra `sys.path` entries, searched first.
    pub pythonpath: Vec<PathBuf>,
    /// A virtualenv to run in; `$VIRTUAL_ENV` when `None`.
    pub virtualenv: Option<PathBuf>,
    /// `SCRIPT_NAME`: the mount point, stripped from `PATH_INFO`.
    pub root_path: String,
    pub multithread: bool,
    pub multiprocess: bool,
    /// Tracebacks in 500 responses (never in production).
    pub debug: bool,
    /// `SERVER_NAME` / `SERVER_PORT` when the connection has no local address (Unix sockets).
    pub server_name: String,
    pub server_port: u16,
    /// Where the bridge's own lines go (client errors, at info level); standard error in
    /// the error log's format when `None`.
    pub error_log: Option<ErrorLog>,
    /// Which peers are proxies whose forwarding headers set `REMOTE_ADDR`,
    /// `wsgi.url_scheme` and the host (the default trusts nobody).
    pub forwarded: Policy,
}

impl std::fmt::Debug for WsgiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsgiConfig")
            .field("app", &self.app)
            .field("chdir", &self.chdir)
            .field("pythonpath", &self.pythonpath)
            .field("virtualenv", &self.virtualenv)
            .field("root_path", &self.root_path)
            .field("multithread", &self.multithread)
            .field("multiprocess", &self.multiprocess)
            .field("debug", &self.debug)
            .field("server_name", &self.server_name)
            .field("server_port", &self.server_port)
            .field("error_log", &self.error_log.as_ref().map(|_| "ErrorLog"))
            .field("forwarded", &self.forwarded)
            .finish()
    }
}

impl WsgiConfig {
    /// Defaults for everything but the app spec.
    pub fn new(app: impl Into<String>) -> WsgiConfig {
        WsgiConfig {
            app: app.into(),
            chdir: None,
            pythonpath: Vec::new(),
            virtualenv: None,
            root_path: String::new(),
            multithread: false,
            multiprocess: false,
            debug: false,
            server_name: "localhost".into(),
            server_port: 8000,
            error_log: None,
            forwarded: Policy::default(),
        }
    }
}

/// A loaded WSGI application.
pub struct WsgiApp {
    app: Py<PyAny>,
    environ: EnvironBuilder,
    debug: bool,
    error_log: Option<ErrorLog>,
    forwarded: Policy,
    /// The last head the application's `start_response` parsed.
    heads: Arc<start_response::HeadCache>,
}

impl WsgiApp {
    /// Starts Python if needed ([`init_python`]) and imports the application.
    pub fn load(cfg: WsgiConfig) -> Result<WsgiApp, WsgiError> {
        let app = import_app(&cfg)?;
        WsgiApp::with_callable(cfg, app)
    }

    /// The application around a callable [`import_app`] returned (an `--interface auto`
    /// caller looked at it first).
    pub fn with_callable(cfg: WsgiConfig, app: Py<PyAny>) -> Result<WsgiApp, WsgiError> {
        interpreter::attach(|py| {
            client_error::register(py).map_err(|e| WsgiError::Init(e.to_string()))?;
            let environ =
                EnvironBuilder::new(py, &cfg).map_err(|e| WsgiError::Init(e.to_string()))?;
            Ok(WsgiApp {
                app,
                environ,
                debug: cfg.debug,
                error_log: cfg.error_log.clone(),
                forwarded: cfg.forwarded.clone(),
                heads: Default::default(),
            })
        })
    }

    /// Answers one request described by any [`RequestView`]; [`Service::call`] uses the
    /// parsed head. `body` is readable through `wsgi.input` until this returns; later reads
    /// (from a streaming response's iterator) see the end of the body.
    pub fn handle<R: RequestView + ?Sized>(
        &self,
        req: &R,
        body: &mut dyn BodyReader,
        conn: &ConnInfo,
    ) -> Response {
        self.handle_with_sink(req, body, conn, None)
    }

    /// [`handle`](Self::handle), with a server's [`ResponseSink`] for `write()` to send
    /// through while the application runs (see [`ironhorse_app::Request::sink`]).
    pub fn handle_with_sink<R: RequestView + ?Sized>(
        &self,
        req: &R,
        body: &mut dyn BodyReader,
        conn: &ConnInfo,
        sink: Option<&mut dyn ResponseSink>,
    ) -> Response {
        if req.method() == "OPTIONS" && req.target() == "*" {
            return Response::text(200, "");
        }
        let peer = conn.peer.map(|p| p.ip());
        // Resolved once by the HTTP session when it could; otherwise here.
        let resolved = match &conn.forwarded {
            Some(forwarded) => Ok(forwarded.clone()),
            None => self.forwarded.resolve(peer, req.headers()),
        };
        let forwarded = match resolved {
            Ok(forwarded) => forwarded,
            Err(e) => {
                // A trusted proxy passed on headers that disagree (gunicorn answers the same):
                // which one lies cannot be told, so the request is refused.
                self.info(format_args!(
                    "{}: {} {}: 400, {e}",
                    peer_text(conn),
                    req.method(),
                    req.path()
                ));
                return Response::text(400, format!("Bad Request: {e}\n"));
            }
        };
        // The request's Python objects: this thread's spares when the last request's
        // application kept none of them.
        let mut spare = Spare::take(&self.heads);
        let cancels_before = cancel::delivered_so_far();
        let slot = spare.body_slot();
        let shared = spare.shared();
        let expected = body_expected(req);
        let (response, by_server, started) = slot.lend(body, expected, || {
            shared.sink.lend(sink, || {
                interpreter::attach(|py| {
                    cancel::clear_stale(py, cancels_before);
                    let result = self.run(py, req, conn, &forwarded, &slot, &shared, &mut spare);
                    let (response, by_server) = match (result, slot.fault()) {
                        (Ok(response), None) => (response, false),
                        (Ok(response), Some(fault)) => {
                            let by_server = response.status >= 500;
                            (self.after_fault(req, conn, &fault, response), by_server)
                        }
                        (Err(err), fault) => {
                            match fault.or_else(|| ClientFault::from_exception(py, &err)) {
                                Some(fault) => {
                                    (self.after_fault(req, conn, &fault, fault.response()), true)
                                }
                                None => (self.internal_error(py, &err), true),
                            }
                        }
                    };
                    let started = shared.sink.started();
                    spare.recycle(py);
                    (response, by_server, started)
                })
            })
        });
        spare.put();
        if by_server && started {
            // The app's head is out already: the failure can only cut the response short.
            return aborted();
        }
        unknown_length_for_empty_head(req.method(), response)
    }

    /// The answer once the client broke its body: the app's own answer if it made a
    /// deliberate one (with the connection closed, the body being lost), the client error
    /// if it failed or answered 5xx for it. Logged as one info line.
    fn after_fault<R: RequestView + ?Sized>(
        &self,
        req: &R,
        conn: &ConnInfo,
        fault: &ClientFault,
        response: Response,
    ) -> Response {
        let line = fault.log_line(&peer_text(conn), req.method(), req.path());
        self.info(format_args!("{line}"));
        if response.status >= 500 {
            fault.response()
        } else {
            response.with_header("Connection", "close")
        }
    }

    /// One line at info level in the error log (standard error in its format without one).
    fn info(&self, line: std::fmt::Arguments<'_>) {
        match &self.error_log {
            Some(log) => log.info(line),
            None => eprintln!("[ironhorse] [{}] [INFO] {line}", std::process::id()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run<R: RequestView + ?Sized>(
        &self,
        py: Python<'_>,
        req: &R,
        conn: &ConnInfo,
        forwarded: &Resolved,
        slot: &Arc<BodySlot>,
        shared: &Arc<Shared>,
        spare: &mut Spare,
    ) -> PyResult<Response> {
        let (start_response, input) = spare.objects(py, shared, slot, &self.heads)?;
        let environ = self
            .environ
            .build(py, req, conn, forwarded, input.as_any())?;
        let result = self.app.bind(py).call1((environ, start_response))?;
        response::respond(py, result, shared)
    }

    /// 500 for an app that failed before its headers were fixed; the traceback is logged
    /// (and shown only in debug mode).
    fn internal_error(&self, py: Python<'_>, err: &PyErr) -> Response {
        let tb = report::log_exception(py, err, "exception in WSGI application");
        let body = if self.debug {
            format!("Internal Server Error\n\n{tb}")
        } else {
            "Internal Server Error".to_string()
        };
        Response::text(500, body)
    }
}

/// Starts Python if needed ([`init_python`]) and imports the callable `cfg.app` names.
pub fn import_app(cfg: &WsgiConfig) -> Result<Py<PyAny>, WsgiError> {
    init_python(cfg)?;
    interpreter::attach(|py| load::load_app(py, &cfg.app))
}

/// What the ASGI bridge (`ironhorse-asgi`) shares with this crate: the persistent thread
/// states, the fork hooks and the traceback logging.
pub mod embed {
    pub use crate::interpreter::{after_fork_child, after_fork_parent, attach, before_fork};
    pub use crate::report::log_exception;
}

/// The peer for log lines.
fn peer_text(conn: &ConnInfo) -> String {
    conn.peer
        .map_or_else(|| "unix socket".to_string(), |p| p.to_string())
}

/// A body that fails at once: the engine ends a response whose head already left (the
/// client sees the connection close before the declared end, or without the last chunk).
fn aborted() -> Response {
    Response {
        status: 500,
        headers: Vec::new(),
        body: Body::Stream {
            chunks: Box::new(std::iter::once(Err(std::io::Error::other(
                "the WSGI application failed after write()",
            )))),
            length: None,
        },
    }
}

/// Frameworks answer `HEAD` with an empty body; unless the app declared a length, the length
/// a `GET` would have is unknown, and announcing `Content-Length: 0` would be false
/// (RFC 9110 §9.3.2). An empty stream of unknown length makes the engine send no length.
fn unknown_length_for_empty_head(method: &str, response: Response) -> Response {
    match response.body {
        Body::Empty if method == "HEAD" => Response {
            body: Body::Stream {
                chunks: Box::new(std::iter::empty()),
                length: None,
            },
            ..response
        },
        _ => response,
    }
}

/// What `req` says of its body: a declared length, or a chunked one of unknown length.
fn body_expected<R: RequestView + ?Sized>(req: &R) -> input::BodyExpected {
    let declared = req.content_length();
    input::BodyExpected {
        declared,
        may_exist: declared.map_or_else(|| req.body_of_unknown_length(), |n| n > 0),
    }
}

impl Service for WsgiApp {
    fn call(&self, req: Request<'_>) -> Response {
        match req.body_length {
            Some(length) => {
                let known = environ::KnownLength {
                    request: req.head,
                    length,
                };
                self.handle_with_sink(&known, req.body, req.conn, req.sink)
            }
            None => self.handle_with_sink(req.head, req.body, req.conn, req.sink),
        }
    }

    fn may_block(&self) -> bool {
        true
    }

    fn cancel(&self, thread: u64, still_running: &dyn Fn() -> bool) {
        interpreter::attach(|py| {
            // Checked with the GIL held: a request that ended while this thread waited for
            // the GIL (a loop thread keeps it to its turn's end) is left alone.
            if still_running() {
                cancel::deliver(py, thread);
            }
        });
    }

    fn turn(&self, work: &mut dyn FnMut()) {
        interpreter::turn(work);
    }

    fn before_fork(&self) {
        interpreter::before_fork();
    }

    fn after_fork_parent(&self) {
        interpreter::after_fork_parent();
    }

    fn after_fork_child(&self) {
        interpreter::after_fork_child();
    }
}
