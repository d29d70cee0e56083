//! What drivers and sessions tell the worker process around them, passed down in the
//! runtime's `DriverConfig` and in [`Link`](crate::session::Link) rather than reached
//! through globals, so that drivers and sessions run in unit tests with fakes.

use std::fmt;
use std::sync::Arc;

pub use ironhorse_log::Level;

/// The worker around a driver.
pub trait WorkerHooks: Send + Sync {
    /// The serving loop is alive. Called every loop turn: must be cheap.
    fn beat(&self);
    /// A request was answered (counts toward `--max-requests`).
    fn request_done(&self);
    /// Where this process records its metrics (`--metrics-bind`): requests, connections and
    /// application jobs are counted where the access log line is produced, the same way
    /// under every driver. `None`: not measured.
    fn meter(&self) -> Option<&ironhorse_metrics::Meter> {
        None
    }
    /// Whether the worker is going away: stopping, or about to retire after the request in
    /// progress (`--max-requests`). Responses then close their connection. The default: never.
    fn retiring(&self) -> bool {
        false
    }
    /// A message for the error log.
    fn log(&self, level: Level, message: fmt::Arguments<'_>);
    /// A timed-out request will not unwind and its thread is the worker's only one: the
    /// process must go, to be replaced.
    fn stuck(&self);
}

/// Shared hooks.
pub type Hooks = Arc<dyn WorkerHooks>;

/// Hooks that do nothing but log to standard error: for tests and tools.
pub struct Detached;

impl WorkerHooks for Detached {
    fn beat(&self) {}
    fn request_done(&self) {}
    fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        eprintln!("[{}] {message}", level.as_upper());
    }
    fn stuck(&self) {}
}
