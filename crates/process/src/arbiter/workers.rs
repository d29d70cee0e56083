//! The master's table of workers: starting them (and the worker's whole life, in the
//! child), their heartbeats, retiring and aborting them.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::super::{lifecycle, ProcessLogs, ServerPlan, EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR};
use ironhorse_runtime::DriverConfig;
use ironhorse_sys::process::{self, Forked, Pid};
use ironhorse_sys::signals;

/// The signal a master sends for a quick stop; workers exit at once on it.
pub(super) const WORKER_QUICK_STOP: i32 = signals::SIGQUIT;
/// A worker silent past `--timeout` gets `SIGABRT` (with no core file, see
/// [`abort_without_core`]), and this long later `SIGKILL`.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// One worker, as the master sees it.
pub(super) struct Worker {
    started: Instant,
    generation: u64,
    beats: OwnedFd,
    last_beat: Instant,
    /// Whether it has beaten since it started (its application is loaded).
    pub ready: bool,
    /// Asked to stop gracefully (scaled down, rolled over, recycled).
    pub retiring: bool,
    /// Why it was asked to stop (a `worker_exits` reason).
    pub retired_for: Option<&'static str>,
    /// Its slot of metrics (`--metrics-bind`).
    slot: Option<usize>,
    /// Why the master killed it, and when.
    pub killed_for: Option<&'static str>,
    killed_at: Option<Instant>,
    /// Requests served, as of its last heartbeat.
    requests: u64,
    /// Whether it said it served its `--max-requests` (a [`lifecycle::RETIRING`] beat).
    reached_max_requests: bool,
}

impl Worker {
    /// A worker just forked, beating into `beats`.
    fn new(beats: OwnedFd, generation: u64, slot: Option<usize>) -> Worker {
        let now = Instant::now();
        Worker {
            started: now,
            generation,
            beats,
            last_beat: now,
            ready: false,
            retiring: false,
            retired_for: None,
            slot,
            killed_for: None,
            killed_at: None,
            requests: 0,
            reached_max_requests: false,
        }
    }

    /// Whether the worker said it served its `--max-requests` (a clean exit then is
    /// routine). Reads what is left in its heartbeat pipe: it may have exited before the
    /// master read its last beat.
    pub fn max_requests_reached(&self) -> bool {
        self.reached_max_requests || drain_beats(&self.beats).retiring
    }
}

/// Reads every whole beat waiting in a worker's pipe.
fn drain_beats(pipe: &OwnedFd) -> Beats {
    let mut buf = [0u8; 8 * lifecycle::BEAT_LEN];
    let mut beats = Beats::default();
    while let Ok(n) = ironhorse_sys::read_nonblocking(pipe.as_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        beats.any = true;
        for beat in buf[..n].chunks_exact(lifecycle::BEAT_LEN) {
            match lifecycle::read_beat(beat) {
                lifecycle::Beat::Alive { requests } => beats.requests = Some(requests),
                lifecycle::Beat::Retiring => beats.retiring = true,
            }
        }
    }
    beats
}

/// What a worker's heartbeat pipe held.
#[derive(Default)]
struct Beats {
    any: bool,
    retiring: bool,
    /// The request count of its latest beat.
    requests: Option<u64>,
}

#[derive(Default)]
pub(super) struct Workers {
    table: HashMap<Pid, Worker>,
    generation: u64,
    /// Master-only descriptors (the control socket) that workers close at birth.
    close_in_children: Vec<i32>,
    /// `--metrics-bind`: the workers' counter slots.
    pub board: Option<std::sync::Arc<ironhorse_metrics::Board>>,
}

impl Workers {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Forgets a reaped worker; its counters join the totals.
    pub fn remove(&mut self, pid: Pid) -> Option<Worker> {
        let worker = self.table.remove(&pid)?;
        if let (Some(board), Some(slot)) = (&self.board, worker.slot) {
            board.release(slot);
        }
        Some(worker)
    }

    fn live(&self) -> impl Iterator<Item = (&Pid, &Worker)> {
        self.table
            .iter()
            .filter(|(_, w)| !w.retiring && w.killed_for.is_none())
    }

    /// Workers of the current generation that are not on their way out.
    pub fn current_len(&self) -> usize {
        self.live()
            .filter(|(_, w)| w.generation == self.generation)
            .count()
    }

    /// Begins a new generation (HUP): every running worker becomes "old".
    pub fn start_generation(&mut self) {
        self.generation += 1;
    }

    pub fn old_generation_left(&self) -> bool {
        self.live().any(|(_, w)| w.generation < self.generation)
    }

    pub fn ready_new(&self) -> usize {
        self.live()
            .filter(|(_, w)| w.generation == self.generation && w.ready)
            .count()
    }

    pub fn starting_new(&self) -> bool {
        self.live()
            .any(|(_, w)| w.generation == self.generation && !w.ready)
    }

    /// Gracefully retires the oldest worker of an old generation.
    pub fn retire_one_old(&mut self) {
        let oldest = self
            .live()
            .filter(|(_, w)| w.generation < self.generation)
            .min_by_key(|(_, w)| w.started)
            .map(|(p, _)| *p);
        if let Some(pid) = oldest {
            self.retire(pid, "reload");
        }
    }

    pub fn retire_newest(&mut self) {
        let newest = self.live().max_by_key(|(_, w)| w.started).map(|(p, _)| *p);
        if let Some(pid) = newest {
            self.retire(pid, "scale_down");
        }
    }

    fn retire(&mut self, pid: Pid, why: &'static str) {
        if let Some(worker) = self.table.get_mut(&pid) {
            worker.retiring = true;
            worker.retired_for = Some(why);
            process::kill(pid, signals::SIGTERM);
        }
    }

    pub fn signal_all(&self, signal: i32) {
        for pid in self.table.keys() {
            process::kill(*pid, signal);
        }
    }

    pub fn beat_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.table.values().map(|w| w.beats.as_fd())
    }

    /// Records the heartbeats that arrived. Each is the worker's request count (see
    /// `lifecycle::beat`); the buffer holds whole beats, as each is written atomically.
    pub fn read_beats(&mut self) {
        let now = Instant::now();
        for worker in self.table.values_mut() {
            let beats = drain_beats(&worker.beats);
            if beats.any {
                worker.last_beat = now;
                worker.ready = true;
            }
            if let Some(requests) = beats.requests {
                worker.requests = requests;
            }
            worker.reached_max_requests |= beats.retiring;
        }
    }

    /// Marks a master-only descriptor for closing in every worker started from now on.
    pub fn close_in_children(&mut self, fd: i32) {
        self.close_in_children.push(fd);
    }

    /// Each worker as the control socket's `status` shows it, oldest first.
    pub fn describe(&self) -> Vec<serde_json::Value> {
        let mut table: Vec<(&Pid, &Worker)> = self.table.iter().collect();
        table.sort_by_key(|(_, w)| w.started);
        table
            .into_iter()
            .map(|(pid, w)| {
                let state = match (w.killed_for, w.retiring, w.ready) {
                    (Some(_), _, _) => "killed",
                    (None, true, _) => "retiring",
                    (None, false, false) => "starting",
                    (None, false, true) if w.generation < self.generation => "old",
                    (None, false, true) => "ready",
                };
                serde_json::json!({
                    "pid": pid.as_raw(),
                    "age_s": w.started.elapsed().as_secs_f64(),
                    "requests": w.requests,
                    "rss_bytes": ironhorse_sys::resident_bytes(pid.as_raw()),
                    "state": state,
                })
            })
            .collect()
    }

    /// Aborts workers that stopped beating (stuck in a request or a C call), and kills those
    /// that ignore the abort.
    pub fn abort_silent(&mut self, timeout: Duration, logs: &ProcessLogs) {
        let now = Instant::now();
        for (pid, worker) in &mut self.table {
            match worker.killed_at {
                Some(at) if now - at > ABORT_GRACE => process::kill(*pid, signals::SIGKILL),
                Some(_) => {}
                None if now - worker.last_beat > timeout => {
                    logs.warn(format_args!(
                        "worker {pid} silent for {:?} (--timeout {:?}): aborting it",
                        now - worker.last_beat,
                        timeout
                    ));
                    worker.killed_for = Some("heartbeat timeout");
                    worker.killed_at = Some(now);
                    abort_without_core(*pid, logs);
                }
                None => {}
            }
        }
    }

    /// Gracefully recycles workers whose resident memory passed `limit` bytes.
    pub fn retire_over_memory(&mut self, limit: u64, logs: &ProcessLogs) {
        let over: Vec<(Pid, u64)> = self
            .live()
            .filter(|(_, w)| w.ready)
            .filter_map(|(pid, _)| {
                ironhorse_sys::resident_bytes(pid.as_raw())
                    .filter(|rss| *rss > limit)
                    .map(|rss| (*pid, rss))
            })
            .collect();
        for (pid, rss) in over {
            logs.info(format_args!(
                "worker {pid} uses {} MiB (--max-worker-memory {} MiB): recycling it",
                rss >> 20,
                limit >> 20
            ));
            self.retire(pid, "memory");
        }
    }

    /// Forks a worker (`why`: a `worker_starts` reason). Returns `false` if the fork failed.
    pub fn spawn(&mut self, plan: &ServerPlan, why: &'static str) -> bool {
        let (beats_read, beats_write) = match ironhorse_sys::pipe() {
            Ok(p) => p,
            Err(e) => {
                plan.logs
                    .error(format_args!("cannot create a heartbeat pipe: {e}"));
                return false;
            }
        };
        let max_requests = plan.supervision.max_requests_for_next_worker();
        let preloaded = plan.app.preloaded();
        let slot = super::super::metrics::claim(self.board.as_ref(), &plan.logs);
        if let Some(protocol) = preloaded {
            protocol.before_fork();
        }
        let forked = process::fork();
        if let Ok(Forked::Child) = forked {
            if let Some(protocol) = preloaded {
                protocol.after_fork_child();
            }
            // Before the app is imported (in `run_worker`): it reads the new values.
            plan.supervision.worker_env.apply_in_forked_child();
            drop(beats_read);
            for fd in &self.close_in_children {
                // Adopting the descriptor and dropping it closes it.
                drop(ironhorse_sys::signals::adopt_fd(*fd));
            }
            let meter = self.board.as_ref().zip(slot).map(|(b, s)| b.meter(s));
            plan.logs
                .exit(run_worker(plan, beats_write, max_requests, meter));
        }
        if let Some(protocol) = preloaded {
            protocol.after_fork_parent();
        }
        match forked {
            Ok(Forked::Parent(pid)) => {
                if let Some(board) = &self.board {
                    board.worker_started(why);
                    slot.inspect(|s| board.owned_by(*s, pid.as_raw()));
                }
                self.table
                    .insert(pid, Worker::new(beats_read, self.generation, slot));
                true
            }
            Ok(Forked::Child) => unreachable!("the child never gets here"),
            Err(e) => {
                if let (Some(board), Some(slot)) = (&self.board, slot) {
                    board.release(slot);
                }
                plan.logs.error(format_args!("fork failed: {e}"));
                false
            }
        }
    }
}

/// Aborts a worker silent past `--timeout` with `SIGABRT`, as gunicorn does (a Python
/// `faulthandler` then prints every thread's stack), after setting its core size limit to
/// 0: the kernel would otherwise write a core file of the whole worker for each timeout
/// wherever core dumps are allowed, and those can fill a disk.
fn abort_without_core(pid: Pid, logs: &ProcessLogs) {
    if let Err(e) = process::forbid_core_dump(pid) {
        logs.warn(format_args!(
            "worker {pid}: cannot turn off its core dump before aborting it: {e}"
        ));
    }
    process::kill(pid, signals::SIGABRT);
}

/// The worker's whole life, in the child. Returns its exit code.
fn run_worker(
    plan: &ServerPlan,
    beats: OwnedFd,
    max_requests: u64,
    meter: Option<ironhorse_metrics::Meter>,
) -> i32 {
    // A stop requested before this point (even before the fork) stands.
    let reset = [
        signals::SIGCHLD,
        signals::SIGHUP,
        signals::SIGTTIN,
        signals::SIGTTOU,
        signals::SIGUSR2,
        signals::SIGWINCH,
    ];
    if signals::reset(&reset)
        .and_then(|()| signals::install_stop_flag())
        .is_err()
    {
        return EXIT_BOOT_ERROR;
    }
    ironhorse_sys::set_process_name(&format!(
        "{}:w:{}",
        plan.supervision.name, plan.supervision.model
    ));
    let protocol = match plan.app.build() {
        Ok(p) => p,
        Err(e) => {
            plan.logs.info(format_args!("{e}"));
            return EXIT_APP_LOAD_ERROR;
        }
    };
    let listeners = match &plan.supervision.per_worker_sockets {
        Some((addrs, backlog)) => addrs
            .iter()
            .map(|a| ironhorse_runtime::listener::Listener::bind(a, *backlog, true))
            .collect::<Result<Vec<_>, _>>(),
        None => plan
            .listeners
            .iter()
            .map(|l| l.try_clone())
            .collect::<Result<Vec<_>, _>>(),
    };
    let listeners = match listeners {
        Ok(l) => l,
        Err(_) => return EXIT_BOOT_ERROR,
    };
    // Ready: the application is loaded.
    lifecycle::enroll(beats, max_requests);
    super::super::single::spawn_stop_watchdog(
        plan.graceful_timeout,
        plan.supervision.reopen_logs.clone(),
        super::super::single::Exit::Worker {
            master: std::os::unix::process::parent_id(),
        },
        plan.logs.clone(),
    );
    let config = DriverConfig {
        listeners,
        protocol,
        threads: plan.threads,
        max_connections: plan.max_connections,
        graceful_timeout: plan.graceful_timeout,
        hooks: crate::hooks::process_hooks(&plan.logs, meter),
    };
    match plan.driver.run(config) {
        Ok(()) => 0,
        Err(e) => {
            plan.logs.error(format_args!("worker failed: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(beats: OwnedFd) -> Worker {
        Worker::new(beats, 0, None)
    }

    #[test]
    fn max_requests_reached_only_once_the_worker_says_so() {
        let (read, write) = ironhorse_sys::pipe().unwrap();
        let w = worker(read);
        assert!(
            !w.max_requests_reached(),
            "a fresh worker has not reached it"
        );
        ironhorse_sys::write_nonblocking(write.as_fd(), &lifecycle::alive_beat(3)).unwrap();
        assert!(!w.max_requests_reached(), "heartbeats are not retirement");
        ironhorse_sys::write_nonblocking(write.as_fd(), &lifecycle::RETIRING).unwrap();
        drop(write);
        assert!(
            w.max_requests_reached(),
            "read from the pipe after the exit"
        );
    }

    #[test]
    fn read_beats_remembers_the_retirement() {
        let (read, write) = ironhorse_sys::pipe().unwrap();
        let mut workers = Workers::default();
        workers.table.insert(Pid::from_raw(1), worker(read));
        let mut beats = lifecycle::alive_beat(7).to_vec();
        beats.extend_from_slice(&lifecycle::RETIRING);
        ironhorse_sys::write_nonblocking(write.as_fd(), &beats).unwrap();
        workers.read_beats();
        let w = workers.remove(Pid::from_raw(1)).unwrap();
        assert!(w.ready);
        assert_eq!(w.requests, 7, "the retiring beat carries no count");
        assert!(w.max_requests_reached());
    }
}
