//! Where a serving process's own messages go, passed down as a value: in
//! [`ServerPlan::logs`](crate::ServerPlan::logs) to every strategy, and through
//! [`ProcessHooks`](crate::hooks::ProcessHooks) to drivers and sessions.

use std::fmt;
use std::sync::Arc;

use ironhorse_log::{ErrorLog, Level};

/// The error log, and how to flush every log before an exit (exits skip destructors).
#[derive(Clone)]
pub struct ProcessLogs {
    /// `None`: standard error, in the error log's shape.
    error: Option<ErrorLog>,
    flush: Arc<dyn Fn() + Send + Sync>,
}

impl ProcessLogs {
    /// Messages to `error`; `flush` empties every log buffer (the access log's too).
    pub fn new(error: ErrorLog, flush: Arc<dyn Fn() + Send + Sync>) -> ProcessLogs {
        ProcessLogs {
            error: Some(error),
            flush,
        }
    }

    /// Messages to standard error, nothing buffered (for tests and tools).
    pub fn stderr() -> ProcessLogs {
        ProcessLogs {
            error: None,
            flush: Arc::new(|| {}),
        }
    }

    /// Logs one line at `level`.
    pub fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        match &self.error {
            Some(error) => error.log(level, message),
            None => eprintln!(
                "[ironhorse] [{}] [{}] {}",
                ironhorse_sys::process::pid(),
                level.as_upper(),
                message
            ),
        }
    }

    /// Logs one line to the error log.
    pub fn info(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Info, message);
    }

    /// Logs a problem worth an operator's attention.
    pub fn warn(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Warning, message);
    }

    /// Logs a failure: something did not work and the server is worse for it (seen under
    /// `--log-level error`).
    pub fn error(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Error, message);
    }

    /// Empties every log buffer (before the process exits).
    pub fn flush(&self) {
        (self.flush)();
    }

    /// Flushes the logs and ends the process at once (see
    /// `ironhorse_sys::process::exit_now`).
    pub(crate) fn exit(&self, code: i32) -> ! {
        self.flush();
        ironhorse_sys::process::exit_now(code)
    }
}
