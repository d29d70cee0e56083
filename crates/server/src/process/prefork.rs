//! A master supervising N workers, the gunicorn way: signal handlers only queue signals;
//! one loop dispatches them, reaps and replaces dead workers, and stops gracefully.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{log, ServerPlan, EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR};
use crate::drivers::DriverConfig;
use ironhorse_sys::process::{self, ExitStatus, Forked, Pid};
use ironhorse_sys::signals::{self, SignalPipe};

/// Signals the master handles.
const MASTER_SIGNALS: &[i32] = &[
    signals::SIGTERM,
    signals::SIGINT,
    signals::SIGQUIT,
    signals::SIGCHLD,
    signals::SIGHUP,
    signals::SIGTTIN,
    signals::SIGTTOU,
];
/// More worker deaths than this within [`CRASH_WINDOW`] is a crash loop: respawning pauses.
const CRASH_LIMIT: usize = 10;
const CRASH_WINDOW: Duration = Duration::from_secs(10);

struct Master {
    plan: ServerPlan,
    workers: HashMap<Pid, Instant>,
    target: usize,
    recent_deaths: VecDeque<Instant>,
    /// Set when the master decided to stop, with the exit code to use.
    exit_code: Option<i32>,
}

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    let pipe = match SignalPipe::install(MASTER_SIGNALS)
        .and_then(|p| signals::ignore_sigpipe().map(|()| p))
    {
        Ok(p) => p,
        Err(e) => {
            log(format_args!("cannot install signal handlers: {e}"));
            return 1;
        }
    };
    on_ready();
    let target = plan.workers.max(1);
    let mut master = Master {
        plan,
        workers: HashMap::new(),
        target,
        recent_deaths: VecDeque::new(),
        exit_code: None,
    };
    while master.exit_code.is_none() {
        master.reap();
        if master.exit_code.is_some() {
            break;
        }
        master.scale();
        let _ = ironhorse_sys::wait_readable(&[std::os::fd::AsFd::as_fd(&pipe)], 1000);
        for signal in pipe.drain() {
            master.handle(signal);
        }
    }
    master.stop()
}

impl Master {
    fn handle(&mut self, signal: i32) {
        match signal {
            signals::SIGTERM | signals::SIGINT | signals::SIGQUIT => {
                log(format_args!("stopping (signal {signal})"));
                self.exit_code = Some(0);
            }
            signals::SIGTTIN => {
                self.target += 1;
                log(format_args!("workers: {}", self.target));
            }
            signals::SIGTTOU => {
                self.target = (self.target - 1).max(1);
                log(format_args!("workers: {}", self.target));
            }
            signals::SIGHUP => self.restart_workers(),
            _ => {} // SIGCHLD: reaping happens every loop turn.
        }
    }

    /// Replaces every worker: new ones first, then the old ones retire gracefully.
    fn restart_workers(&mut self) {
        log(format_args!("restarting workers"));
        let old: Vec<Pid> = self.workers.keys().copied().collect();
        for _ in 0..self.target {
            self.spawn();
        }
        for pid in old {
            process::kill(pid, signals::SIGTERM);
            self.workers.remove(&pid);
        }
    }

    /// Starts or retires workers to meet the target.
    fn scale(&mut self) {
        if self.crash_looping() {
            return;
        }
        while self.workers.len() < self.target {
            self.spawn();
        }
        while self.workers.len() > self.target {
            let newest = self
                .workers
                .iter()
                .max_by_key(|(_, started)| **started)
                .map(|(pid, _)| *pid);
            if let Some(pid) = newest {
                process::kill(pid, signals::SIGTERM);
                self.workers.remove(&pid);
            }
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
            log(format_args!(
                "workers keep dying ({} in {:?}); pausing respawns",
                self.recent_deaths.len(),
                CRASH_WINDOW
            ));
            return true;
        }
        false
    }

    fn reap(&mut self) {
        while let Some((pid, status)) = process::reap_one() {
            let Some(_) = self.workers.remove(&pid) else {
                continue;
            };
            match status {
                ExitStatus::Code(EXIT_APP_LOAD_ERROR) => {
                    log(format_args!(
                        "worker {pid} could not load the application; stopping"
                    ));
                    self.exit_code = Some(EXIT_APP_LOAD_ERROR);
                }
                ExitStatus::Code(EXIT_BOOT_ERROR) => {
                    log(format_args!("worker {pid} failed to boot; stopping"));
                    self.exit_code = Some(EXIT_BOOT_ERROR);
                }
                ExitStatus::Code(0) => {}
                other => {
                    log(format_args!("worker {pid} died ({other}); replacing it"));
                    self.recent_deaths.push_back(Instant::now());
                }
            }
        }
    }

    fn spawn(&mut self) {
        if let Some(protocol) = self.plan.app.preloaded() {
            protocol.before_fork();
        }
        match process::fork() {
            Ok(Forked::Child) => {
                if let Some(protocol) = self.plan.app.preloaded() {
                    protocol.after_fork_child();
                }
                process::exit_now(self.run_worker());
            }
            Ok(Forked::Parent(pid)) => {
                if let Some(protocol) = self.plan.app.preloaded() {
                    protocol.after_fork_parent();
                }
                self.workers.insert(pid, Instant::now());
            }
            Err(e) => {
                if let Some(protocol) = self.plan.app.preloaded() {
                    protocol.after_fork_parent();
                }
                log(format_args!("fork failed: {e}"));
                self.recent_deaths.push_back(Instant::now());
            }
        }
    }

    /// The worker's whole life, in the child. Returns its exit code.
    fn run_worker(&self) -> i32 {
        // A stop requested before this point (even before the fork) stands.
        let reset = [
            signals::SIGCHLD,
            signals::SIGHUP,
            signals::SIGTTIN,
            signals::SIGTTOU,
        ];
        if signals::reset(&reset)
            .and_then(|()| signals::install_stop_flag())
            .is_err()
        {
            return EXIT_BOOT_ERROR;
        }
        let protocol = match self.plan.app.build() {
            Ok(p) => p,
            Err(e) => {
                log(format_args!("{e}"));
                return EXIT_APP_LOAD_ERROR;
            }
        };
        let listeners = match self
            .plan
            .listeners
            .iter()
            .map(|l| l.try_clone())
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(l) => l,
            Err(_) => return EXIT_BOOT_ERROR,
        };
        super::single::spawn_stop_watchdog(self.plan.graceful_timeout);
        let config = DriverConfig {
            listeners,
            protocol,
            threads: self.plan.threads,
            max_connections: self.plan.max_connections,
            graceful_timeout: self.plan.graceful_timeout,
        };
        match self.plan.driver.run(config) {
            Ok(()) => 0,
            Err(e) => {
                log(format_args!("worker failed: {e}"));
                1
            }
        }
    }

    /// Graceful stop: workers finish in-flight requests within the graceful timeout, then
    /// any left are killed.
    fn stop(mut self) -> i32 {
        for &pid in self.workers.keys() {
            process::kill(pid, signals::SIGTERM);
        }
        let deadline = Instant::now() + self.plan.graceful_timeout + Duration::from_millis(500);
        while !self.workers.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            while let Some((pid, _)) = process::reap_one() {
                self.workers.remove(&pid);
            }
        }
        for &pid in self.workers.keys() {
            process::kill(pid, signals::SIGKILL);
        }
        for listener in &self.plan.listeners {
            listener.unlink();
        }
        self.exit_code.unwrap_or(0)
    }
}
