//! Process strategies: how many processes serve, and who supervises them.
//!
//! Listeners are bound by the caller before any strategy runs, so every process shares the
//! same sockets and a port in use is reported once, up front.

mod fork;
mod prefork;
mod single;

use std::sync::Arc;
use std::time::Duration;

use crate::drivers::Driver;
use crate::listener::Listener;
use crate::session::Protocol;

/// The process strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processes {
    /// This process serves.
    Single,
    /// A child process per connection.
    ForkPerConnection,
    /// A master supervising N long-lived workers.
    Prefork,
}

/// Builds the protocol in a process that will serve.
pub type ProtocolFactory = Arc<dyn Fn() -> Result<Arc<dyn Protocol>, String> + Send + Sync>;

/// Where the application comes from in each serving process.
#[derive(Clone)]
pub enum AppSource {
    /// Built once before any fork; children inherit it (copy-on-write).
    Preloaded(Arc<dyn Protocol>),
    /// Built anew in each serving process, after the fork.
    PerProcess(ProtocolFactory),
}

impl AppSource {
    fn build(&self) -> Result<Arc<dyn Protocol>, String> {
        match self {
            AppSource::Preloaded(p) => Ok(p.clone()),
            AppSource::PerProcess(factory) => factory(),
        }
    }

    fn preloaded(&self) -> Option<&Arc<dyn Protocol>> {
        match self {
            AppSource::Preloaded(p) => Some(p),
            AppSource::PerProcess(_) => None,
        }
    }
}

/// Everything a strategy needs.
pub struct ServerPlan {
    pub listeners: Vec<Listener>,
    pub app: AppSource,
    pub driver: Driver,
    pub workers: usize,
    pub threads: usize,
    pub max_connections: usize,
    pub graceful_timeout: Duration,
}

/// Exit code of a worker that could not load the application: the master stops instead of
/// respawning it forever.
pub const EXIT_APP_LOAD_ERROR: i32 = 4;
/// Exit code of a worker that failed for another reason while booting.
pub const EXIT_BOOT_ERROR: i32 = 3;

/// Runs the plan to completion; returns the process exit code. `on_ready` runs once signal
/// handling is in place (announce the server then: a stop sent after it is never lost).
pub fn run(strategy: Processes, plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    match strategy {
        Processes::Single => single::run(plan, on_ready),
        Processes::ForkPerConnection => fork::run(plan, on_ready),
        Processes::Prefork => prefork::run(plan, on_ready),
    }
}

/// Logs one line to the error log.
pub(crate) fn log(message: std::fmt::Arguments<'_>) {
    eprintln!(
        "[ironhorse] [{}] {}",
        ironhorse_sys::process::pid(),
        message
    );
}
