//! Scheduling inside one process: how it turns accepted connections into running sessions.
//!
//! The listeners and the one socket type over TCP and Unix ([`listener`]), the connection
//! core every driver calls (expiry, linger-close, accept errors, drain), and the drivers.
//! Every driver shares the same [`Session`](ironhorse_protocol::session::Session) contract,
//! so each one is only its scheduling policy: one connection at a time, one request at a
//! time over many connections read ahead, a thread each, a pool of threads, one epoll loop,
//! or a tokio runtime.
#![forbid(unsafe_code)]

pub mod listener;

mod accept;
mod blocking;
mod connection;
mod event;
mod held;
mod keepalive;
mod pool;
mod read_ahead;
mod serial;
mod thread;
mod tokio_rt;

use std::sync::Arc;
use std::time::Duration;

use crate::listener::Listener;
use ironhorse_protocol::hooks::Hooks;
use ironhorse_protocol::session::Protocol;

pub use accept::{accept_loop, accept_loop_ticking};
pub use blocking::serve_connection;
pub(crate) use connection::tcp_info;

/// The in-process drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Accept, serve to the end, repeat.
    Serial,
    /// One request at a time on one thread, over up to `max_connections` connections
    /// watched with epoll until a whole request is there (no slow client holds the thread).
    ReadAhead,
    /// A new thread per connection, capped.
    ThreadPerConnection,
    /// A fixed pool of threads fed by an acceptor.
    ThreadPool,
    /// One thread multiplexing every connection with epoll (mio).
    Event,
    /// A tokio runtime.
    Async,
}

/// What a driver runs with inside one process.
pub struct DriverConfig {
    pub listeners: Vec<Listener>,
    pub protocol: Arc<dyn Protocol>,
    /// Threads of the pool, or of the tokio runtime.
    pub threads: usize,
    /// Most connections served at once (threads per connection, pools, event loop, runtime).
    pub max_connections: usize,
    /// How long in-flight work may take to finish once a stop is requested.
    pub graceful_timeout: Duration,
    /// The worker around the driver (`ironhorse_process::hooks::process_hooks` in a
    /// real server).
    pub hooks: Hooks,
}

impl Driver {
    /// Runs until a stop is requested and in-flight work is done (or the graceful timeout
    /// passed).
    /// Then the protocol hears that serving is over ([`Protocol::shutdown`]).
    pub fn run(self, config: DriverConfig) -> std::io::Result<()> {
        let protocol = config.protocol.clone();
        let result = match self {
            Driver::Serial => serial::run(config),
            Driver::ReadAhead => read_ahead::run(config),
            Driver::ThreadPerConnection => thread::run(config),
            Driver::ThreadPool => pool::run(config),
            Driver::Event => event::run(config),
            Driver::Async => tokio_rt::run(config),
        };
        protocol.shutdown();
        result
    }
}

/// Called on a thread that hands work to application threads (a pool's watcher, a tokio
/// runtime thread): the first time, the thread stops preempting them when it wakes
/// (`SCHED_BATCH`, see `ironhorse_sys::no_wakeup_preemption`), as the event loop does. It
/// still runs as soon as they wait, or at the next tick.
pub(crate) fn yield_to_app_threads(hooks: &dyn ironhorse_protocol::hooks::WorkerHooks) {
    thread_local! {
        static YIELDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if YIELDS.with(|yields| yields.replace(true)) {
        return;
    }
    if let Err(e) = ironhorse_sys::no_wakeup_preemption() {
        hooks.log(
            ironhorse_protocol::hooks::Level::Warning,
            format_args!("cannot set SCHED_BATCH ({e}); app threads may be preempted"),
        );
    }
}

/// How often blocked waits wake to check for a stop request.
pub const STOP_CHECK: Duration = Duration::from_millis(250);

/// Whether this process was asked to stop.
pub fn stopping() -> bool {
    ironhorse_sys::signals::stop_requested().is_some()
}
