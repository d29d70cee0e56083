//! Process strategies: how many processes serve, and who supervises them.
//!
//! Single, fork per connection, and the prefork master with its worker table, control
//! socket, reload pipe and re-exec upgrade; the worker's own life and heartbeat
//! ([`hooks`]: what its drivers and sessions report), pid file, systemd notify; and the
//! `--model` table ([`model`]) composing a strategy with a driver of the runtime.
//!
//! Listeners are bound by the caller before any strategy runs, so every process shares the
//! same sockets and a port in use is reported once, up front.
#![forbid(unsafe_code)]

pub mod hooks;
pub mod model;

mod arbiter;
mod fork;
mod lifecycle;
mod logs;
mod metrics;
mod notify;
mod pidfile;
mod single;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use lifecycle::gate_heartbeat;
pub use logs::ProcessLogs;
pub use pidfile::{check as check_pid_file, PidFileError};

use ironhorse_protocol::session::Protocol;
use ironhorse_runtime::listener::Listener;
use ironhorse_runtime::Driver;

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

/// The start shared by processes that serve themselves (no master): stop-flag signal
/// handling, the pid file, the announcement (only once a stop can no longer be lost), and
/// the application. `Err` carries the exit code.
fn start_serving(
    plan: &ServerPlan,
    on_ready: impl FnOnce(),
) -> Result<(Option<pidfile::PidFile>, Arc<dyn Protocol>), i32> {
    // HUP too: its default action would end the server (a certbot deploy hook sending it to
    // rotate the certificates took the site down). And the master's own signals: USR2's
    // default action ends the process, TTIN's and TTOU's stop (suspend) it.
    let installed = ironhorse_sys::signals::install_stop_flag().and_then(|()| {
        ironhorse_sys::signals::install_pending(&[ironhorse_sys::signals::SIGHUP])
            .and_then(|()| ironhorse_sys::signals::install_pending(MASTER_ONLY))
    });
    if let Err(e) = installed {
        plan.logs
            .error(format_args!("cannot install signal handlers: {e}"));
        return Err(1);
    }
    let pidfile = plan
        .supervision
        .pidfile
        .as_deref()
        .map(pidfile::PidFile::claim)
        .transpose()
        .map_err(|e| {
            plan.logs.error(format_args!("--pid: {e}"));
            1
        })?;
    on_ready();
    notify::send(ironhorse_sys::ServiceState::Ready);
    let protocol = plan.app.build().map_err(|e| {
        plan.logs.info(format_args!("{e}"));
        EXIT_APP_LOAD_ERROR
    })?;
    Ok((pidfile, protocol))
}

/// What `SIGHUP` does in a process serving alone (no master): re-reads what can be replaced
/// in place (the TLS certificates). `Ok` is the line saying what was done, `Err` the line
/// saying why nothing was (the current configuration stays).
pub type HupAloneFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Takes a `SIGHUP` received by a process serving alone, if one came, and acts on it: one
/// log line either way, so that a HUP is never silently without effect.
fn take_hup_alone(hup: Option<&HupAloneFn>, logs: &ProcessLogs) {
    if !ironhorse_sys::signals::take_pending(ironhorse_sys::signals::SIGHUP) {
        return;
    }
    match hup.map(|hup| hup()) {
        Some(Ok(done)) => logs.info(format_args!("{done}")),
        Some(Err(failed)) => logs.error(format_args!("{failed}")),
        None => logs.info(format_args!(
            "SIGHUP: nothing to reload in a process serving alone; restart to change settings"
        )),
    }
}

/// The signals only a master acts on (a binary upgrade, one worker more, one fewer), each
/// with what it would do. A process serving alone takes them, so that they neither end it
/// (`USR2`'s default action) nor suspend it (`TTIN`'s and `TTOU`'s), and says so.
const MASTER_ONLY: &[i32] = &[
    ironhorse_sys::signals::SIGUSR2,
    ironhorse_sys::signals::SIGTTIN,
    ironhorse_sys::signals::SIGTTOU,
];

/// Takes the signals received by a process serving alone (`SIGHUP`, and those only a
/// master acts on), if any came: one log line each, so that none is silently without effect.
fn take_signals_alone(hup: Option<&HupAloneFn>, logs: &ProcessLogs) {
    take_hup_alone(hup, logs);
    for &signal in MASTER_ONLY {
        if !ironhorse_sys::signals::take_pending(signal) {
            continue;
        }
        let (name, what) = match signal {
            ironhorse_sys::signals::SIGUSR2 => ("SIGUSR2", "a binary upgrade"),
            ironhorse_sys::signals::SIGTTIN => ("SIGTTIN", "adding a worker"),
            _ => ("SIGTTOU", "removing a worker"),
        };
        logs.warn(format_args!(
            "{name}: {what} needs a master (--model prefork or hybrid, or -w 2 or more); ignored"
        ));
    }
}

/// Re-reads the configuration (on `SIGHUP`).
pub type ReloadFn = Arc<dyn Fn() -> Result<Reloaded, String> + Send + Sync>;

/// What a configuration reload yields: the settings the next workers start with.
pub struct Reloaded {
    pub app: AppSource,
    pub workers: usize,
    /// `--timeout`, `--max-requests` and friends: the master applies them to new workers
    /// (the timeout and memory limit to every worker from now on).
    pub limits: WorkerLimits,
    /// `--graceful-timeout`, for workers started from now on and the master's own stop.
    pub graceful_timeout: Duration,
    /// `--env`, when the reload applies its change (the app is imported in each worker);
    /// `None` leaves the workers' environment as it was.
    pub env: Option<WorkerEnv>,
    /// The changed settings the reload applies (setting names), for the log line.
    pub applied: Vec<String>,
    /// The changed settings it cannot apply, each with what would.
    pub not_applied: Vec<NotApplied>,
}

/// A changed setting a reload does not apply.
pub struct NotApplied {
    /// The setting's name (`bind`).
    pub name: String,
    /// What applies it: "a restart" (`bind`: `USR2` hands the same sockets over) or "a
    /// restart or USR2".
    pub needs: &'static str,
}

/// `--env` as a reload changed it, for the workers started from now on. The master's own
/// environment stays as it started: it runs other threads by then, and changing the
/// environment while another thread may read it is undefined behaviour (`setenv` is not
/// thread-safe). Each new worker applies it to itself instead, right after its fork and
/// before it imports the app, so the app's `os.environ` has the new values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerEnv {
    /// The variables of the reloaded `--env` (`KEY`, `VALUE`), in the order written.
    pub set: Vec<(String, String)>,
    /// The variables the master's starting `--env` set that the reloaded one no longer
    /// does: removed, as a restart would not set them.
    pub remove: Vec<String>,
}

impl WorkerEnv {
    /// Applies the change to this process. Only in a worker just forked, before anything
    /// else runs in it: after `fork` the child has one thread (the forking one), so no
    /// other thread can read the environment while it changes.
    fn apply_in_forked_child(&self) {
        for key in &self.remove {
            std::env::remove_var(key);
        }
        for (key, value) in &self.set {
            std::env::set_var(key, value);
        }
    }
}

/// The limits a master puts on its workers, replaceable by a reload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkerLimits {
    /// A worker silent this long is aborted and replaced (`--timeout`; zero: never).
    pub timeout: Duration,
    /// A worker retires after this many requests (`--max-requests`; zero: never) …
    pub max_requests: u64,
    /// … plus a random 0..=jitter, so workers do not all retire at once.
    pub max_requests_jitter: u64,
    /// A worker whose resident memory passes this many bytes is recycled.
    pub max_worker_memory: Option<u64>,
}

/// How a master watches over its workers.
#[derive(Clone)]
pub struct Supervision {
    /// A worker silent this long is aborted and replaced (`--timeout`; zero: never).
    pub timeout: Duration,
    /// A worker retires after this many requests (`--max-requests`; zero: never) …
    pub max_requests: u64,
    /// … plus a random 0..=jitter, so workers do not all retire at once.
    pub max_requests_jitter: u64,
    /// A worker whose resident memory passes this many bytes is recycled.
    pub max_worker_memory: Option<u64>,
    /// `--pid`.
    pub pidfile: Option<PathBuf>,
    /// The environment change each new worker applies to itself (a reloaded `--env`; none
    /// until a `HUP` changes it: workers inherit the master's environment).
    pub worker_env: WorkerEnv,
    /// Re-reads the configuration on `SIGHUP`.
    pub reload: Option<ReloadFn>,
    /// `SIGHUP` without a master (single-process models).
    pub hup_alone: Option<HupAloneFn>,
    /// Reopens log files on `SIGUSR1` (in the master and in each worker).
    pub reopen_logs: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Process name prefix (`-n`): `NAME:master`, `NAME:w:MODEL` (15 bytes show in `ps`).
    pub name: String,
    /// The `--model`, shown in worker names.
    pub model: &'static str,
    /// `--reuse-port`: each worker binds its own socket on these addresses (backlog given),
    /// and the kernel spreads connections across them.
    pub per_worker_sockets: Option<(Vec<ironhorse_runtime::listener::BindAddr>, i32)>,
    /// `--control-socket`: the master's command socket (multi-process models).
    pub control_socket: Option<PathBuf>,
    /// `--reload`: readable when a watched file changed (the changed paths, one a line);
    /// the master then replaces its workers.
    pub reload_trigger: Option<Arc<std::os::fd::OwnedFd>>,
    /// `--metrics-bind`: the socket `/metrics` is served on, by the supervising process.
    pub metrics: Option<Arc<ironhorse_metrics::MetricsListener>>,
}

impl Supervision {
    /// Takes the limits of a reloaded configuration.
    fn set_limits(&mut self, limits: WorkerLimits) {
        self.timeout = limits.timeout;
        self.max_requests = limits.max_requests;
        self.max_requests_jitter = limits.max_requests_jitter;
        self.max_worker_memory = limits.max_worker_memory;
    }

    /// The request budget of the next worker, jitter applied.
    fn max_requests_for_next_worker(&self) -> u64 {
        if self.max_requests == 0 {
            return 0;
        }
        let noise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        self.max_requests + noise % (self.max_requests_jitter + 1)
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
    pub supervision: Supervision,
    /// Where this process and its workers log their own messages.
    pub logs: ProcessLogs,
}

/// The `--metrics-bind` socket a master upgrading itself (`USR2`) handed this process, if
/// any; read once (the variable is removed, so that no child takes it for its own).
pub fn inherited_metrics_fd() -> Option<std::os::fd::RawFd> {
    let fd = std::env::var(arbiter::upgrade::METRICS_FD).ok()?;
    // Single-threaded here (settings are applied before any thread starts).
    std::env::remove_var(arbiter::upgrade::METRICS_FD);
    fd.parse().ok()
}

/// Whether this process is a new master that `USR2` started (fork and exec) from a master
/// that is still its parent. `--daemon` must not detach it again, as gunicorn's does not:
/// it is detached already (it has the old master's session and standard streams), and
/// only as the old master's child is it seen to run, so that a second `USR2` to the old
/// master is ignored meanwhile (daemonized, it left at once and was reaped as gone). A
/// master started without `--daemon` that `USR2` starts with it stays in the foreground.
pub fn started_by_upgrade() -> bool {
    let parent = std::os::unix::process::parent_id();
    pidfile::upgraded_from().is_some_and(|old| u32::try_from(old).is_ok_and(|old| old == parent))
}

/// Exit code of a worker that could not load the application: the master stops instead of
/// respawning it forever.
pub const EXIT_APP_LOAD_ERROR: i32 = 4;
/// Exit code of a worker that left because a timed-out request would not stop.
pub const EXIT_STUCK: i32 = 5;
/// Exit code of a worker that failed for another reason while booting.
pub const EXIT_BOOT_ERROR: i32 = 3;

/// Runs the plan to completion; returns the process exit code. `on_ready` runs once signal
/// handling is in place (announce the server then: a stop sent after it is never lost).
pub fn run(strategy: Processes, plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    match strategy {
        Processes::Single => single::run(plan, on_ready),
        Processes::ForkPerConnection => fork::run(plan, on_ready),
        Processes::Prefork => arbiter::run(plan, on_ready),
    }
}
