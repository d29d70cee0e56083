//! Runs a Python ASGI 3 application (asgiref's `http` and `lifespan` specs) behind
//! ironhorse's non-blocking application seam ([`ironhorse_app::AppExchange`]).
//!
//! * One asyncio loop thread per serving process (uvloop when asked for, or with `auto`
//!   when installed) runs every application task; the server's drivers never call Python.
//! * Requests and wake-ups cross to the loop in batches ([`bridge`]); each request's body
//!   and response pieces move through bounded queues in [`channel`], with backpressure both
//!   ways.
//! * The lifespan protocol runs when the loop starts (a failed startup is an error the
//!   server reports in one line) and when serving ends ([`Service::shutdown`]); an app that
//!   raises on the lifespan scope is served without it (uvicorn's "auto").
//! * The interpreter start-up and the application import are `ironhorse-wsgi`'s.

mod awaitable;
mod bridge;
mod channel;
mod lag;
mod message;
mod response;
mod scope;
mod ws;

use std::ffi::CString;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ironhorse_app::{
    AppExchange, ConnInfo, LagSink, Request, RequestHead, Response, Service, Wake, WsExchange,
};
use ironhorse_wsgi::embed;
use pyo3::prelude::*;

use bridge::{Bridge, Inbox, LoopReport};
use channel::{SessionEnd, Shared};
use lag::LagReports;
use scope::{RequestParts, ScopeConfig};

/// The Python half of the bridge.
const GLUE: &str = include_str!("glue.py");

/// Which asyncio event loop runs the application (`--loop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopKind {
    /// uvloop when it is installed, else asyncio's own.
    Auto,
    Asyncio,
    Uvloop,
}

impl LoopKind {
    fn name(self) -> &'static str {
        match self {
            LoopKind::Auto => "auto",
            LoopKind::Asyncio => "asyncio",
            LoopKind::Uvloop => "uvloop",
        }
    }
}

/// How the application is presented.
#[derive(Debug, Clone)]
pub struct AsgiConfig {
    pub loop_kind: LoopKind,
    /// `--root-path` (the scope's `root_path`).
    pub root_path: String,
    /// The scope's `server` for connections without a local address, when no Unix socket
    /// is known.
    pub server_name: String,
    pub server_port: u16,
    /// The Unix socket listened on (`--bind unix:PATH`): such connections' `server` is
    /// `[path, None]`, as the spec has it.
    pub unix_socket: Option<String>,
    /// How long a task whose client left may run on before it is cancelled
    /// (`--asgi-disconnect-grace-period`).
    pub disconnect_grace: Duration,
    /// Start the loop (and the lifespan) right away; otherwise in the child after a fork
    /// (an application imported by a master before forking workers).
    pub start_now: bool,
}

/// Whether `app` is an ASGI application (`--interface auto`): an `async def` callable, an
/// object whose `__call__` is one, or an ASGI 2 class.
pub fn is_asgi(app: &Py<PyAny>) -> Result<bool, String> {
    embed::attach(|py| {
        let glue = glue(py)?;
        glue.getattr("is_asgi")?.call1((app.bind(py),))?.is_truthy()
    })
    .map_err(|e| e.to_string())
}

fn glue(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Ok(module) = py.import("_ironhorse_asgi") {
        return Ok(module);
    }
    let code = CString::new(GLUE).expect("glue.py has no NUL byte");
    let module = PyModule::from_code(py, &code, c"ironhorse/asgi/glue.py", c"_ironhorse_asgi")?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("_ironhorse_asgi", &module)?;
    Ok(module)
}

/// The running loop of this process.
struct Running {
    bridge: Arc<Bridge>,
    reports: Receiver<LoopReport>,
    thread: JoinHandle<()>,
}

/// A loaded ASGI application.
pub struct AsgiApp {
    app: Py<PyAny>,
    config: AsgiConfig,
    running: Mutex<Option<Running>>,
    /// Where the loop's lag probe reports (set once the process serves with metrics on).
    lag: Arc<LagReports>,
}

impl AsgiApp {
    /// The application around `app` (imported by `ironhorse_wsgi::import_app`); with
    /// `config.start_now`, its loop starts and its lifespan startup runs here (`Err`: the
    /// startup failed, with its message).
    pub fn new(app: Py<PyAny>, config: AsgiConfig) -> Result<AsgiApp, String> {
        let asgi = AsgiApp {
            app,
            running: Mutex::new(None),
            config,
            lag: Arc::default(),
        };
        if asgi.config.start_now {
            asgi.start_loop()?;
        }
        Ok(asgi)
    }

    fn start_loop(&self) -> Result<(), String> {
        let (bridge, ear) = Bridge::new().map_err(|e| format!("ASGI loop: {e}"))?;
        let (reports_tx, reports) = mpsc::channel();
        let inbox = Inbox {
            bridge: bridge.clone(),
            ear,
            config: ScopeConfig {
                root_path: self.config.root_path.clone(),
                server_name: self.config.server_name.clone(),
                server_port: self.config.server_port,
                unix_socket: self.config.unix_socket.clone(),
            },
            reports: Mutex::new(reports_tx.clone()),
            state: Mutex::new(None),
            lag: self.lag.clone(),
            waiting: OnceLock::new(),
            cache: Mutex::default(),
        };
        let app = embed::attach(|py| self.app.clone_ref(py));
        let loop_kind = self.config.loop_kind;
        let thread = std::thread::Builder::new()
            .name("ih-asgi-loop".into())
            .spawn(move || {
                loop_yields_to_driver();
                let result = embed::attach(|py| -> PyResult<()> {
                    let inbox = Bound::new(py, inbox)?;
                    let fd = inbox.borrow().fileno_raw();
                    glue(py)?
                        .getattr("serve")?
                        .call1((app, inbox, fd, loop_kind.name()))?;
                    Ok(())
                });
                if let Err(e) = result {
                    let message = embed::attach(|py| {
                        embed::log_exception(py, &e, "the ASGI event loop failed");
                        e.to_string()
                    });
                    let _ = reports_tx.send(LoopReport::Started(Err(message.clone())));
                    let _ = reports_tx.send(LoopReport::Stopped(Err(message)));
                }
            })
            .map_err(|e| format!("ASGI loop thread: {e}"))?;
        match reports.recv() {
            Ok(LoopReport::Started(Ok(()))) => {}
            Ok(LoopReport::Started(Err(message))) => {
                let _ = thread.join();
                return Err(format!("ASGI lifespan startup failed: {message}"));
            }
            Ok(LoopReport::Stopped(_)) | Err(_) => {
                return Err("the ASGI event loop ended during startup".into())
            }
        }
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
            bridge,
            reports,
            thread,
        });
        Ok(())
    }
}

/// Called on the loop thread as it starts: like the driver that feeds it (the event loop and
/// tokio's runtime thread yield to the threads they hand work to), the loop stops preempting
/// a running thread when it wakes (`SCHED_BATCH`, see
/// `ironhorse_sys::no_wakeup_preemption`). The two hand batches both ways; with the driver
/// alone under `SCHED_BATCH`, the loop woken by a request's bell preempted the driver in the
/// middle of its turn, took the one or few requests queued so far, and the driver then
/// rang again for the next ones: about a third of a context switch per request where the
/// two share a core. Now each runs its turn until it waits, and the other takes the whole
/// batch (docs/BENCHMARKS.md, "ASGI: the loop thread under SCHED_BATCH").
fn loop_yields_to_driver() {
    if let Err(e) = ironhorse_sys::no_wakeup_preemption() {
        eprintln!(
            "[ironhorse] [{}] [WARNING] cannot set SCHED_BATCH on the ASGI loop thread ({e}); \
             it may preempt the driver at each request",
            std::process::id()
        );
    }
}

impl AsgiApp {
    fn bridge(&self) -> Option<Arc<Bridge>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        Some(running.as_ref()?.bridge.clone())
    }

    /// Queues a new connection scope for the loop; `None` when no loop runs.
    fn start(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        subprotocols: Option<Vec<String>>,
        wake: Wake,
    ) -> Option<(Arc<Shared>, Arc<Bridge>)> {
        let bridge = self.bridge()?;
        let websocket = subprotocols.is_some();
        let trailers = !websocket && scope::accepts_trailers(head);
        let grace = self.config.disconnect_grace;
        let shared = Shared::new(wake, websocket, trailers, grace, head.is_head());
        let parts = RequestParts {
            head: head.clone(),
            conn: conn.clone(),
            subprotocols,
        };
        bridge.start(shared.clone(), parts);
        Some((shared, bridge))
    }
}

impl Service for AsgiApp {
    /// Never called while the loop runs (requests go to `start_exchange`); without a loop
    /// (after a failed start) the answer is a 500.
    fn call(&self, _req: Request<'_>) -> Response {
        Response::text(500, "Internal Server Error")
    }

    fn start_exchange(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        wake: Wake,
    ) -> Option<Box<dyn AppExchange>> {
        let (shared, bridge) = self.start(head, conn, None, wake)?;
        Some(Box::new(SessionEnd { shared, bridge }))
    }

    fn hosts_websockets(&self, _head: &RequestHead) -> bool {
        self.bridge().is_some()
    }

    fn start_websocket(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        subprotocols: &[String],
        wake: Wake,
    ) -> Option<Box<dyn WsExchange>> {
        let (shared, bridge) = self.start(head, conn, Some(subprotocols.to_vec()), wake)?;
        Some(Box::new(ws::WsSessionEnd { shared, bridge }))
    }

    fn report_loop_lag(&self, sink: LagSink) {
        self.lag.set_sink(sink);
    }

    /// Runs the lifespan shutdown and ends the loop.
    fn shutdown(&self) {
        let Some(running) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        running.bridge.stop();
        loop {
            match running.reports.recv() {
                Ok(LoopReport::Stopped(Err(message))) => {
                    eprintln!(
                        "[ironhorse] [{}] [ERROR] ASGI lifespan shutdown failed: {message}",
                        std::process::id()
                    );
                    break;
                }
                Ok(LoopReport::Stopped(Ok(()))) | Err(_) => break,
                Ok(LoopReport::Started(_)) => {}
            }
        }
        let _ = running.thread.join();
    }

    fn before_fork(&self) {
        embed::before_fork();
    }

    fn after_fork_parent(&self) {
        embed::after_fork_parent();
    }

    /// A worker forked from a master that imported the application starts its own loop
    /// (threads do not survive `fork()`).
    fn after_fork_child(&self) {
        embed::after_fork_child();
        if !self.config.start_now {
            if let Err(message) = self.start_loop() {
                eprintln!("[ironhorse] [{}] [ERROR] {message}", std::process::id());
                std::process::exit(4);
            }
        }
    }
}
