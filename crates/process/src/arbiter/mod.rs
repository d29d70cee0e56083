//! The master of a multi-process server, the gunicorn way: signal handlers only queue
//! signals; one loop dispatches each to a small handler, reads worker heartbeats, reaps and
//! replaces dead workers, aborts silent ones, and stops gracefully.
//!
//! | signal | effect |
//! |---|---|
//! | `TERM` | graceful stop: workers finish in-flight requests (`--graceful-timeout`), exit 0 |
//! | `INT`, `QUIT` | quick stop |
//! | `HUP` | reload the configuration, then replace workers one by one (rolling) |
//! | `TTIN` / `TTOU` | one worker more / less (never below 1) |
//! | `USR1` | reopen log files, in the master and every worker |
//! | `USR2` | re-exec the binary, handing it the listening sockets (upgrade); ignored while the new master of an earlier one runs, and in a new master while the old one that started it runs |
//! | `WINCH` | stop all workers, keep the master (before retiring it after an upgrade) |
//!
//! The same handlers serve `--control-socket` commands (`control.rs`); `--reload` changes
//! start a new generation of workers as `HUP` does (`reload.rs`).

mod control;
mod reasons;
mod reload;
pub(crate) mod upgrade;
mod workers;

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::{ServerPlan, EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR};
use ironhorse_sys::process::ExitStatus;
use ironhorse_sys::signals::{self, SignalPipe};

use self::workers::{Workers, WORKER_QUICK_STOP};
use super::pidfile::PidFile;

/// Signals the master handles.
const MASTER_SIGNALS: &[i32] = &[
    signals::SIGTERM,
    signals::SIGINT,
    signals::SIGQUIT,
    signals::SIGCHLD,
    signals::SIGHUP,
    signals::SIGTTIN,
    signals::SIGTTOU,
    signals::SIGUSR1,
    signals::SIGUSR2,
    signals::SIGWINCH,
];
/// More worker deaths than this within [`CRASH_WINDOW`] is a crash loop: respawning pauses.
const CRASH_LIMIT: usize = 10;
const CRASH_WINDOW: Duration = Duration::from_secs(10);
/// How long quick-stopped workers get before they are killed.
const QUICK_STOP_GRACE: Duration = Duration::from_secs(1);

struct Master {
    plan: ServerPlan,
    workers: Workers,
    /// How many workers should run.
    target: usize,
    recent_deaths: VecDeque<Instant>,
    pidfile: Option<PidFile>,
    /// Set when the master decided to stop: (exit code, graceful).
    exit: Option<(i32, bool)>,
    /// Whether the service manager was told the server is ready.
    announced_ready: bool,
    started: Instant,
    /// `--control-socket`.
    control: Option<control::ControlSocket>,
    /// Whether the first workers were started (later starts are replacements or scaling).
    booted: bool,
    /// Workers added by `TTIN` (or a reload raising `workers`) not started yet: their starts
    /// are `scale_up`; every other start after the first ones replaces a worker.
    scale_ups: usize,
    /// The new master started by `USR2`, while it runs: another `USR2` meanwhile is
    /// ignored, as gunicorn does, so a repeated signal cannot start a third master.
    new_master: Option<ironhorse_sys::process::Pid>,
    /// The old master that started this one by `USR2`, while it runs: `USR2` here meanwhile
    /// is ignored (gunicorn ignores it while its parent master runs), or a third master
    /// would take the sockets and `PATH.2` while the operator still retires the first.
    old_master: Option<i32>,
}

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    let pipe = match SignalPipe::install(MASTER_SIGNALS)
        .and_then(|p| signals::ignore_sigpipe().map(|()| p))
    {
        Ok(p) => p,
        Err(e) => {
            plan.logs
                .error(format_args!("cannot install signal handlers: {e}"));
            return 1;
        }
    };
    // Before the pid file: a refused socket leaves nothing behind.
    let Ok(control) =
        control::ControlSocket::open(plan.supervision.control_socket.as_deref(), &plan.logs)
    else {
        return 1;
    };
    let pidfile = match plan
        .supervision
        .pidfile
        .as_deref()
        .map(PidFile::claim)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            plan.logs.error(format_args!("--pid: {e}"));
            return 1;
        }
    };
    // Before the listeners are cleared for --reuse-port: they are watched unless so.
    let board = match super::metrics::start(&plan, super::metrics::MASTER_SLOTS) {
        Ok(board) => board,
        Err(code) => return code,
    };
    ironhorse_sys::set_process_name(&format!("{}:master", plan.supervision.name));
    on_ready();
    let mut plan = plan;
    if plan.supervision.per_worker_sockets.is_some() {
        // Each worker binds its own socket. A copy kept here (and inherited by every worker)
        // would take a share of the connections that nobody accepts.
        plan.listeners.clear();
    }
    let target = plan.workers.max(1);
    let mut master = Master {
        plan,
        workers: Workers::default(),
        target,
        recent_deaths: VecDeque::new(),
        pidfile,
        exit: None,
        announced_ready: false,
        started: Instant::now(),
        control,
        booted: false,
        scale_ups: 0,
        new_master: None,
        old_master: super::pidfile::live_predecessor(),
    };
    if let Some(control) = &master.control {
        master.workers.close_in_children(control.raw_fd());
    }
    if let Some(metrics) = &master.plan.supervision.metrics {
        master.workers.close_in_children(metrics.raw_fd());
    }
    master.workers.board = board;
    master.supervise_until_exit(&pipe);
    master.stop()
}

impl Master {
    /// The master's loop: reaps, scales, waits for a signal or a heartbeat, and acts on
    /// them, until an exit is decided.
    fn supervise_until_exit(&mut self, pipe: &SignalPipe) {
        while self.exit.is_none() {
            self.reap();
            if self.exit.is_some() {
                break;
            }
            self.scale();
            self.wait(pipe);
            for signal in pipe.drain() {
                self.handle(signal);
            }
            self.serve_control();
            self.take_reload_trigger();
            self.workers.read_beats();
            if !self.announced_ready && self.workers.ready_new() >= self.target.min(1) {
                super::notify::send(ironhorse_sys::ServiceState::Ready);
                self.announced_ready = true;
            }
            self.supervise();
            self.forget_exited_old_master();
            if let Some(pidfile) = &mut self.pidfile {
                pidfile.take_over_when_predecessor_exits(&self.plan.logs);
            }
        }
    }

    /// Sleeps until a signal or a heartbeat arrives, or a second passes.
    fn wait(&self, pipe: &SignalPipe) {
        let mut fds = vec![pipe.as_fd()];
        fds.extend(self.workers.beat_fds());
        fds.extend(self.control.iter().flat_map(|c| c.fds()));
        fds.extend(
            self.plan
                .supervision
                .reload_trigger
                .as_deref()
                .map(|t| t.as_fd()),
        );
        let _ = ironhorse_sys::wait_readable(&fds, 1000);
    }

    fn handle(&mut self, signal: i32) {
        match signal {
            signals::SIGTERM => self.stop_with(0, true),
            signals::SIGINT | signals::SIGQUIT => self.stop_with(0, false),
            signals::SIGHUP => self.reload(),
            signals::SIGTTIN => {
                self.target += 1;
                self.scale_ups += 1;
                self.plan
                    .logs
                    .info(format_args!("SIGTTIN: workers {}", self.target));
            }
            signals::SIGTTOU => {
                self.target = self.target.saturating_sub(1).max(1);
                self.scale_ups = self.scale_ups.saturating_sub(1);
                self.plan
                    .logs
                    .info(format_args!("SIGTTOU: workers {}", self.target));
            }
            signals::SIGUSR1 => {
                self.plan
                    .logs
                    .info(format_args!("SIGUSR1: reopening log files"));
                if let Some(reopen) = &self.plan.supervision.reopen_logs {
                    reopen();
                }
                self.workers.signal_all(signals::SIGUSR1);
            }
            signals::SIGUSR2 => self.upgrade(),
            // A terminal sends WINCH on every resize: only a master without one (daemonized,
            // or under a supervisor) takes it as the operator's, as gunicorn does.
            signals::SIGWINCH if has_terminal() => {
                self.plan.logs.info(format_args!(
                    "SIGWINCH ignored: the master runs in a terminal (a window resize sends it)"
                ));
            }
            signals::SIGWINCH => {
                self.plan.logs.info(format_args!(
                    "SIGWINCH: stopping all workers; the master stays"
                ));
                self.target = 0;
            }
            _ => {} // SIGCHLD: reaping happens every turn.
        }
    }

    /// `USR2`: starts a new master, unless one from an earlier `USR2` still runs (a second
    /// would take the same sockets and pid file; gunicorn ignores the signal then too).
    fn upgrade(&mut self) {
        self.forget_exited_old_master();
        if let Some(old) = self.old_master {
            self.plan.logs.warn(format_args!(
                "USR2 ignored: the old master {old} that started this one is still running (retire it first: WINCH, then TERM)"
            ));
            return;
        }
        if let Some(pid) = self.new_master {
            self.plan.logs.warn(format_args!(
                "USR2 ignored: the new master {pid} from an earlier USR2 is still running"
            ));
            return;
        }
        self.new_master = upgrade::reexec(
            &self.plan.listeners,
            self.plan.supervision.metrics.as_deref(),
            &self.plan.logs,
        );
    }

    /// Forgets the old master once it has exited: checked every turn, so that its pid, once
    /// reused by some other process, is not taken for it.
    fn forget_exited_old_master(&mut self) {
        if self
            .old_master
            .is_some_and(|old| !ironhorse_sys::process_alive(old))
        {
            self.old_master = None;
        }
    }

    fn stop_with(&mut self, code: i32, graceful: bool) {
        self.plan.logs.info(format_args!(
            "{} stop requested",
            if graceful { "graceful" } else { "quick" }
        ));
        self.exit = Some((code, graceful));
    }

    /// `HUP`: re-read the configuration, then roll new workers in.
    fn reload(&mut self) {
        match self.plan.supervision.reload.as_ref().map(|reload| reload()) {
            Some(Ok(reloaded)) => self.apply(reloaded),
            Some(Err(e)) => {
                self.plan.logs.warn(format_args!("SIGHUP: configuration not reloaded ({e}); keeping the current one, restarting workers"));
                self.target = self.target.max(1);
            }
            None => {
                self.plan
                    .logs
                    .info(format_args!("SIGHUP: restarting workers"));
                self.target = self.target.max(1);
            }
        }
        self.workers.start_generation();
    }

    /// Applies a reloaded configuration to the workers started from now on, and says which
    /// changed settings it applied; each one it could not is a warning of its own (a reload
    /// that left `bind` as it was must not read "configuration reloaded").
    fn apply(&mut self, reloaded: super::Reloaded) {
        self.plan.app = reloaded.app;
        self.scale_ups += reloaded.workers.max(1).saturating_sub(self.target);
        self.target = reloaded.workers.max(1);
        self.plan.supervision.set_limits(reloaded.limits);
        self.plan.graceful_timeout = reloaded.graceful_timeout;
        if let Some(env) = reloaded.env {
            self.plan.supervision.worker_env = env;
        }
        for setting in &reloaded.not_applied {
            self.plan.logs.warn(format_args!(
                "SIGHUP: {} changed but a reload does not apply it; it needs {}",
                setting.name, setting.needs
            ));
        }
        let applied = match reloaded.applied.is_empty() {
            true => "no applicable setting changed".to_string(),
            false => format!("applied: {}", reloaded.applied.join(", ")),
        };
        let (what, not_applied) = match reloaded.not_applied.is_empty() {
            true => ("reloaded", String::new()),
            false => (
                "partly reloaded",
                format!(
                    "; not applied: {}",
                    (reloaded.not_applied.iter())
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        self.plan.logs.info(format_args!(
            "SIGHUP: configuration {what} ({applied}{not_applied}); replacing {} workers",
            self.workers.len()
        ));
    }

    /// Starts or retires workers to meet the target. During a rolling restart, at most one
    /// extra worker runs: a new one starts, and once it is ready an old one retires.
    fn scale(&mut self) {
        if self.crash_looping() {
            return;
        }
        if self.workers.old_generation_left() {
            if self.workers.ready_new() > 0 || self.target == 0 {
                self.workers.retire_one_old();
            }
            if self.workers.current_len() < self.target && !self.workers.starting_new() {
                self.workers.spawn(&self.plan, "reload");
            }
            return;
        }
        while self.workers.current_len() < self.target {
            let why = match (self.booted, self.scale_ups) {
                (false, _) => "boot",
                (true, 0) => "replace",
                (true, _) => "scale_up",
            };
            if !self.workers.spawn(&self.plan, why) {
                self.recent_deaths.push_back(Instant::now());
                break;
            }
            self.scale_ups = self
                .scale_ups
                .saturating_sub(usize::from(why == "scale_up"));
        }
        self.booted = true;
        while self.workers.current_len() > self.target {
            self.workers.retire_newest();
        }
    }

    fn crash_looping(&mut self) -> bool {
        let now = Instant::now();
        while self
            .recent_deaths
            .front()
            .is_some_and(|t| now - *t > CRASH_WINDOW)
        {
            self.recent_deaths.pop_front();
        }
        if self.recent_deaths.len() > CRASH_LIMIT {
            self.plan.logs.warn(format_args!(
                "workers keep dying ({} in {:?}): crash loop; pausing respawns",
                self.recent_deaths.len(),
                CRASH_WINDOW
            ));
            return true;
        }
        false
    }

    /// Heartbeat timeouts and memory limits.
    fn supervise(&mut self) {
        let timeout = self.plan.supervision.timeout;
        if !timeout.is_zero() {
            self.workers.abort_silent(timeout, &self.plan.logs);
        }
        if let Some(limit) = self.plan.supervision.max_worker_memory {
            self.workers.retire_over_memory(limit, &self.plan.logs);
        }
    }

    fn reap(&mut self) {
        while let Some((pid, status)) = ironhorse_sys::process::reap_one() {
            let Some(worker) = self.workers.remove(pid) else {
                // The only other children are new masters started by `USR2`.
                if self.new_master == Some(pid) {
                    self.new_master = None;
                }
                self.plan.logs.warn(format_args!(
                    "USR2: the new master {pid} exited ({status}); this master keeps serving"
                ));
                continue;
            };
            let reached_max_requests = worker.max_requests_reached();
            let reason = reasons::exit_reason(&worker, status, reached_max_requests);
            if let Some(board) = &self.workers.board {
                board.worker_exited(reason);
            }
            match status {
                ExitStatus::Code(EXIT_APP_LOAD_ERROR) => {
                    self.plan.logs.error(format_args!("worker {pid} could not load the application; stopping (exit {EXIT_APP_LOAD_ERROR})"));
                    self.exit = Some((EXIT_APP_LOAD_ERROR, false));
                }
                ExitStatus::Code(EXIT_BOOT_ERROR) => {
                    self.plan.logs.info(format_args!(
                        "worker {pid} failed to boot; stopping (exit {EXIT_BOOT_ERROR})"
                    ));
                    self.exit = Some((EXIT_BOOT_ERROR, false));
                }
                ExitStatus::Code(0) if worker.retiring || reached_max_requests => {}
                ExitStatus::Code(super::EXIT_STUCK) => self.plan.logs.info(format_args!(
                    "worker {pid} left behind a stuck request; replacing it"
                )),
                ExitStatus::Code(0) => self.plan.logs.info(format_args!("worker {pid} exited")),
                ExitStatus::Signal(9) if worker.killed_for.is_some() => {
                    self.plan.logs.info(format_args!(
                        "worker {pid} killed ({})",
                        worker.killed_for.unwrap_or("")
                    ));
                }
                other => {
                    let hint = if other == ExitStatus::Signal(9) {
                        " — killed by the kernel's OOM killer or an operator?"
                    } else {
                        ""
                    };
                    self.plan.logs.warn(format_args!(
                        "worker {pid} died ({other}){hint}; replacing it"
                    ));
                    self.recent_deaths.push_back(Instant::now());
                }
            }
        }
    }

    /// Stops every worker: gracefully (bounded by the graceful timeout), or quickly.
    fn stop(mut self) -> i32 {
        super::notify::send(ironhorse_sys::ServiceState::Stopping);
        let (code, graceful) = self.exit.unwrap_or((0, true));
        let (signal, grace) = if graceful {
            (
                signals::SIGTERM,
                self.plan.graceful_timeout + Duration::from_millis(500),
            )
        } else {
            (WORKER_QUICK_STOP, QUICK_STOP_GRACE)
        };
        self.workers.signal_all(signal);
        let deadline = Instant::now() + grace;
        while !self.workers.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            while let Some((pid, _)) = ironhorse_sys::process::reap_one() {
                if self.workers.remove(pid).is_some() {
                    if let Some(board) = &self.workers.board {
                        board.worker_exited("shutdown");
                    }
                }
            }
        }
        if !self.workers.is_empty() {
            self.plan.logs.info(format_args!(
                "killing {} workers still running after {:?}",
                self.workers.len(),
                grace
            ));
            self.workers.signal_all(signals::SIGKILL);
        }
        for listener in &self.plan.listeners {
            listener.unlink();
        }
        if let Some(pidfile) = self.pidfile.take() {
            pidfile.release();
        }
        code
    }
}

/// Whether the master's standard input, output or error is a terminal.
fn has_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
        || std::io::stdout().is_terminal()
        || std::io::stderr().is_terminal()
}
