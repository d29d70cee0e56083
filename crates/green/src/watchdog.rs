//! `--request-timeout` for a greenlet that never yields. A timed-out request's greenlet is
//! killed by the hub (`Greenlet.kill(TimeoutError)`) when the hub drains the wake-up — but
//! a greenlet spinning in Python code blocks the hub, so the kill never comes. If the hub
//! has not taken that wake-up after [`GRACE`], the hub thread is stuck: `TimeoutError` is
//! raised asynchronously in it (`PyThreadState_SetAsyncExc`, through `ctypes`), which lands
//! in the greenlet running there, the one blocking the hub. A greenlet stuck in a C call
//! sees it only when the call returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ironhorse_wsgi::embed;
use pyo3::prelude::*;

use crate::channel::Shared;

/// How long the hub may take to act on a timeout before it counts as stuck.
const GRACE: Duration = Duration::from_secs(1);

/// The hub thread's Python thread id (0 until the hub runs).
#[derive(Clone, Default)]
pub(crate) struct HubThread(Arc<AtomicU64>);

impl HubThread {
    pub(crate) fn set(&self, id: u64) {
        self.0.store(id, Ordering::SeqCst);
    }

    /// Checks, [`GRACE`] after a timeout, that the hub took it; else interrupts the hub.
    pub(crate) fn watch(&self, shared: Arc<Shared>) {
        let hub = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ih-gevent-watch".into())
            .spawn(move || {
                std::thread::sleep(GRACE);
                if shared.timeout_pending() {
                    hub.interrupt();
                }
            });
        if let Err(e) = spawned {
            eprintln!(
                "[ironhorse] [{}] [ERROR] gevent watchdog: {e}",
                std::process::id()
            );
        }
    }

    fn interrupt(&self) {
        let id = self.0.load(Ordering::SeqCst);
        if id == 0 {
            return;
        }
        eprintln!(
            "[ironhorse] [{}] [WARNING] a greenlet blocked the gevent hub past --request-timeout: TimeoutError raised in it",
            std::process::id()
        );
        let raised = embed::attach(|py| -> PyResult<()> {
            let ctypes = py.import("ctypes")?;
            let id = ctypes.getattr("c_ulong")?.call1((id,))?;
            let error = ctypes
                .getattr("py_object")?
                .call1((py.get_type::<pyo3::exceptions::PyTimeoutError>(),))?;
            ctypes
                .getattr("pythonapi")?
                .getattr("PyThreadState_SetAsyncExc")?
                .call1((id, error))?;
            Ok(())
        });
        if let Err(e) = raised {
            eprintln!(
                "[ironhorse] [{}] [ERROR] gevent watchdog: {e}",
                std::process::id()
            );
        }
    }
}
