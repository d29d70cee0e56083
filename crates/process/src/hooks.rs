//! The worker hooks of a real serving process: what its drivers and sessions report reaches
//! the master (heartbeat, request count), the error log, and exit.

use std::fmt;
use std::sync::Arc;

use ironhorse_protocol::hooks::{Hooks, Level, WorkerHooks};

/// The real worker: heartbeats and request counting for the master, the error log, exit.
pub struct ProcessHooks;

impl WorkerHooks for ProcessHooks {
    fn beat(&self) {
        crate::beat();
    }
    fn request_done(&self) {
        crate::request_done();
    }
    fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        crate::log_at(level, message);
    }
    fn stuck(&self) {
        crate::exit(crate::EXIT_STUCK);
    }
}

/// The hooks of this process.
pub fn process_hooks() -> Hooks {
    Arc::new(ProcessHooks)
}
