//! The worker hooks of a real serving process: what its drivers and sessions report reaches
//! the master (heartbeat, request count), the error log, and exit.

use std::fmt;
use std::sync::Arc;

use ironhorse_protocol::hooks::{Hooks, Level, WorkerHooks};

use crate::{lifecycle, ProcessLogs, EXIT_STUCK};

/// The real worker: heartbeats and request counting for the master, the error log, exit,
/// and its slot of metrics.
pub struct ProcessHooks {
    logs: ProcessLogs,
    meter: Option<ironhorse_metrics::Meter>,
}

impl WorkerHooks for ProcessHooks {
    fn beat(&self) {
        lifecycle::beat();
    }
    fn request_done(&self) {
        lifecycle::request_done(&self.logs);
    }
    fn retiring(&self) -> bool {
        lifecycle::retiring()
    }
    fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        self.logs.log(level, message);
    }
    fn stuck(&self) {
        self.logs.exit(EXIT_STUCK);
    }
    fn meter(&self) -> Option<&ironhorse_metrics::Meter> {
        self.meter.as_ref()
    }
}

/// The hooks of this process, logging to `logs` and recording into `meter` if metrics are on.
pub fn process_hooks(logs: &ProcessLogs, meter: Option<ironhorse_metrics::Meter>) -> Hooks {
    Arc::new(ProcessHooks {
        logs: logs.clone(),
        meter,
    })
}
