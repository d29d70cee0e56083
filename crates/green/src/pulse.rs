//! The hub's liveness, for the worker's heartbeat. The server's driver thread beats the
//! master every loop turn, but the requests run on the hub: a greenlet stuck in a C call
//! that holds the GIL (a runaway regular expression, `sum(range(10**12))`) blocks the hub
//! while the driver beats on, and no asynchronous exception reaches it. gunicorn's gevent
//! worker beats from its hub; here the hub ticks a [`Pulse`] every [`TICK`] and the worker
//! beats only while the last tick is recent ([`Pulse::alive`]), so the master's `--timeout`
//! aborts and replaces a worker whose hub stopped turning.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the hub ticks (a timer on its loop, so an idle hub ticks too).
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// A hub silent this long counts as blocked: the worker stops beating until it ticks again.
const STALL: Duration = Duration::from_secs(1);

/// When the hub last turned. Cloned handles share it (in one process: a fork copies it).
#[derive(Clone)]
pub struct Pulse {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last tick.
    last: Arc<AtomicU64>,
}

impl Pulse {
    pub(crate) fn new() -> Pulse {
        Pulse {
            epoch: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The hub turned.
    pub(crate) fn tick(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Whether the hub turned within the last [`STALL`].
    pub fn alive(&self) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        self.now().saturating_sub(last) <= STALL.as_millis() as u64
    }
}
