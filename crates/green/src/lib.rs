//! Runs a Python WSGI application (PEP 3333) in greenlets: one gevent hub thread per
//! serving process, behind ironhorse's non-blocking application seam
//! ([`ironhorse_app::AppExchange`]), hosted by the `event` and `async` drivers as ASGI is.
//!
//! * The hub thread monkey-patches (`gevent.monkey.patch_all()`) and then imports the
//!   application itself, so sockets and locks made at import belong to its hub; a master
//!   that imports before forking (`--preload`) patches first on its own thread.
//! * Requests cross to the hub in batches ([`bridge`], the ASGI loop's hand-off); each gets a
//!   greenlet (at most `--worker-connections` at once) whose body and response pieces move
//!   through bounded queues ([`channel`]) with backpressure both ways.
//! * The environ and the checks of `start_response` are `ironhorse-wsgi`'s
//!   ([`ironhorse_wsgi::green`]), so the application sees what the thread models give it.

mod bridge;
mod channel;
mod pulse;
mod session_end;
mod watchdog;

use std::ffi::CString;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ironhorse_app::{AppExchange, ConnInfo, Request, RequestHead, Response, Service, Wake};
use ironhorse_wsgi::embed;
use ironhorse_wsgi::green::GreenEnviron;
use ironhorse_wsgi::WsgiConfig;
use pyo3::prelude::*;

use bridge::{Bridge, HubReport, Inbox};
use channel::Shared;
use session_end::SessionEnd;
use watchdog::HubThread;

pub use pulse::Pulse;

/// The Python half of the bridge.
const GLUE: &str = include_str!("glue.py");

/// How the hub serves.
#[derive(Debug, Clone)]
pub struct GreenConfig {
    /// Greenlets at once (`--worker-connections`); more requests wait for one to end.
    pub worker_connections: usize,
    /// Bodies up to this size are read whole, in memory, before the greenlet starts
    /// (`--buffer-request-body`, at most `--buffer-request-body-memory`).
    pub buffer_body: u64,
    /// Start the hub (and import there) right away; otherwise patch and import on the
    /// calling thread and start the hub in each child after a fork (`--preload`).
    pub start_now: bool,
}

fn glue(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Ok(module) = py.import("_ironhorse_green") {
        return Ok(module);
    }
    let code = CString::new(GLUE).expect("glue.py has no NUL byte");
    let module = PyModule::from_code(py, &code, c"ironhorse/green/glue.py", c"_ironhorse_green")?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("_ironhorse_green", &module)?;
    Ok(module)
}

/// Monkey-patches, then imports the application: on the calling thread.
fn patch_and_import(wsgi: &WsgiConfig) -> Result<(Py<PyAny>, Arc<GreenEnviron>), String> {
    ironhorse_wsgi::init_python(wsgi).map_err(|e| e.to_string())?;
    embed::attach(|py| {
        glue(py)
            .and_then(|glue| glue.getattr("patch")?.call0().map(drop))
            .map_err(|e| e.value(py).to_string())
    })?;
    let app = ironhorse_wsgi::import_app(wsgi).map_err(|e| e.to_string())?;
    let environ = embed::attach(|py| GreenEnviron::new(py, wsgi))
        .map_err(|e| format!("WSGI environ: {e}"))?;
    Ok((app, Arc::new(environ)))
}

/// The running hub of this process.
struct Running {
    bridge: Arc<Bridge>,
    reports: Receiver<HubReport>,
    thread: JoinHandle<()>,
    environ: Arc<GreenEnviron>,
    hub: HubThread,
}

/// A WSGI application served by greenlets.
pub struct GeventApp {
    wsgi: WsgiConfig,
    config: GreenConfig,
    /// Imported before a fork (`--preload`): the children's hubs serve it.
    preloaded: Option<(Py<PyAny>, Arc<GreenEnviron>)>,
    running: Mutex<Option<Running>>,
    pulse: Pulse,
}

impl GeventApp {
    /// Patches and imports the application (on the hub thread, started here, when
    /// `config.start_now`); `Err`: one line (gevent missing, the import failed).
    pub fn load(wsgi: WsgiConfig, config: GreenConfig) -> Result<GeventApp, String> {
        let preloaded = match config.start_now {
            true => None,
            false => Some(patch_and_import(&wsgi)?),
        };
        let green = GeventApp {
            wsgi,
            config,
            preloaded,
            running: Mutex::new(None),
            pulse: Pulse::new(),
        };
        if green.config.start_now {
            green.start_hub()?;
        }
        Ok(green)
    }

    /// The hub's liveness: the worker's heartbeat should beat only while it says so.
    pub fn pulse(&self) -> Pulse {
        self.pulse.clone()
    }

    fn start_hub(&self) -> Result<(), String> {
        // A hub started long after the master made the app (`--preload`) counts from now.
        self.pulse.tick();
        let (bridge, ear) = Bridge::new().map_err(|e| format!("gevent hub: {e}"))?;
        let (reports_tx, reports) = mpsc::channel();
        let hub = HubThread::default();
        let inbox = Inbox {
            bridge: bridge.clone(),
            ear,
            reports: Mutex::new(reports_tx.clone()),
            hub: hub.clone(),
            pulse: self.pulse.clone(),
        };
        let preloaded = self
            .preloaded
            .as_ref()
            .map(|(app, env)| (embed::attach(|py| app.clone_ref(py)), env.clone()));
        let (wsgi, connections) = (self.wsgi.clone(), self.config.worker_connections);
        let (environ_tx, environ_rx) = mpsc::channel();
        let pulse = self.pulse.clone();
        let thread = std::thread::Builder::new()
            .name("ih-gevent-hub".into())
            .spawn(move || {
                let loaded = match preloaded {
                    Some(loaded) => Ok(loaded),
                    None => patch_and_import(&wsgi),
                };
                let app = match loaded {
                    Ok((app, environ)) => {
                        // The import may have taken long: the hub counts as turning from here.
                        pulse.tick();
                        let _ = environ_tx.send(environ);
                        let _ = reports_tx.send(HubReport::Started(Ok(())));
                        app
                    }
                    Err(message) => {
                        let _ = reports_tx.send(HubReport::Started(Err(message)));
                        return;
                    }
                };
                let served = embed::attach(|py| -> PyResult<()> {
                    let inbox = Bound::new(py, inbox)?;
                    glue(py)?
                        .getattr("serve")?
                        .call1((app, inbox, connections))?;
                    Ok(())
                });
                if let Err(e) = served {
                    embed::attach(|py| embed::log_exception(py, &e, "the gevent hub failed"));
                    let _ = reports_tx.send(HubReport::Stopped);
                }
            })
            .map_err(|e| format!("gevent hub thread: {e}"))?;
        match reports.recv() {
            Ok(HubReport::Started(Ok(()))) => {}
            Ok(HubReport::Started(Err(message))) => {
                let _ = thread.join();
                return Err(message);
            }
            Ok(HubReport::Stopped) | Err(_) => {
                return Err("the gevent hub ended during startup".into())
            }
        }
        let environ = environ_rx
            .recv()
            .map_err(|_| "the gevent hub ended during startup".to_string())?;
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
            bridge,
            reports,
            thread,
            environ,
            hub,
        });
        Ok(())
    }
}

impl Service for GeventApp {
    /// Never called while the hub runs (requests go to `start_exchange`).
    fn call(&self, _req: Request<'_>) -> Response {
        Response::text(500, "Internal Server Error")
    }

    fn start_exchange(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        wake: Wake,
    ) -> Option<Box<dyn AppExchange>> {
        let (bridge, environ, hub) = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let running = running.as_ref()?;
            let (bridge, environ) = (running.bridge.clone(), running.environ.clone());
            (bridge, environ, running.hub.clone())
        };
        let shared = Shared::new(wake, head.clone(), conn.clone(), environ);
        let end = SessionEnd::new(shared, bridge, self.config.buffer_body, hub);
        Some(Box::new(end))
    }

    /// Lets every greenlet finish, then ends the hub.
    fn shutdown(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(running) = running else {
            return;
        };
        running.bridge.send(None);
        while let Ok(report) = running.reports.recv() {
            if matches!(report, HubReport::Stopped) {
                break;
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

    /// A worker forked from a master that imported the application starts its own hub
    /// (threads do not survive `fork()`).
    fn after_fork_child(&self) {
        embed::after_fork_child();
        if !self.config.start_now {
            if let Err(message) = self.start_hub() {
                eprintln!("[ironhorse] [{}] [ERROR] {message}", std::process::id());
                std::process::exit(4);
            }
        }
    }
}
