//! `--request-timeout`: a deadline on each application request, in every model, on one path.
//!
//! At the deadline a watchdog marks the request timed out, asks the application to abandon
//! it (WSGI raises `TimeoutError` in its thread) and wakes the driver; the session then
//! answers `504 Gateway Timeout` through h1 (or, if the response had begun, closes).
//!
//! Where the request runs inline on a blocking driver's thread, that thread may be stuck in
//! the application and cannot answer: the job lends the timer a cut-off handle when it
//! starts, and the watchdog sends the 504 the session prepared (h1's bytes) through it and
//! shuts the connection down. A worker process whose only thread stays stuck then exits
//! (`ironhorse_process::EXIT_STUCK`), and its master starts a fresh one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironhorse_app::Service;

use crate::deadlines::{self, Watch};
use crate::hooks::{Hooks, Level};
use crate::session::{Cutoff, JobHost, Waker};

/// How long a stuck, cancelled request may take to unwind before its worker exits.
const UNWIND_GRACE: Duration = Duration::from_secs(1);

/// What the watchdog, the job and the session share about one timed request.
pub(crate) struct TimerState {
    head_written: AtomicBool,
    timed_out: AtomicBool,
    /// The watchdog answered the client itself (through the cut-off handle).
    cut_off: AtomicBool,
    /// The job returned.
    done: AtomicBool,
    /// The thread running the job (0 until it starts).
    thread: AtomicU64,
    /// Set while an inline job runs: how the watchdog reaches the client.
    cutoff: Mutex<Option<Cutoff>>,
    /// What the client gets at the deadline if no response head was sent (from h1).
    last_words: Vec<u8>,
}

/// Held by a job while it runs (see [`TimerState::running`]).
pub(crate) struct Running(Arc<TimerState>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
        *self.0.cutoff.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl TimerState {
    /// The job starts on this thread, hosted by `host`.
    pub fn running(self: &Arc<Self>, host: &dyn JobHost) -> Running {
        self.running_on(host.cutoff())
    }

    /// The request runs on this thread from now on (a job, or a call inside `advance`);
    /// `cutoff` reaches the client if the thread gets stuck.
    pub fn running_on(self: &Arc<Self>, cutoff: Option<Cutoff>) -> Running {
        self.thread
            .store(ironhorse_sys::current_thread_id(), Ordering::SeqCst);
        *self.cutoff.lock().unwrap_or_else(|e| e.into_inner()) = cutoff;
        Running(self.clone())
    }
}

/// The deadline of the request in progress; dropping it (the response ended) disarms it.
pub struct RequestTimer {
    state: Arc<TimerState>,
    _watch: Watch,
}

/// What the watchdog needs besides the shared state.
pub struct Expiry {
    pub timeout: Duration,
    pub service: Arc<dyn Service>,
    pub waker: Waker,
    /// Whether a worker whose thread stays stuck exits, to be replaced.
    pub exit_when_stuck: bool,
    pub hooks: Hooks,
    pub last_words: Vec<u8>,
}

impl RequestTimer {
    pub fn start(expiry: Expiry) -> RequestTimer {
        let state = Arc::new(TimerState {
            head_written: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            cut_off: AtomicBool::new(false),
            done: AtomicBool::new(false),
            thread: AtomicU64::new(0),
            cutoff: Mutex::new(None),
            last_words: expiry.last_words,
        });
        let seen = state.clone();
        let (timeout, service, waker) = (expiry.timeout, expiry.service, expiry.waker);
        let (exit_when_stuck, hooks) = (expiry.exit_when_stuck, expiry.hooks);
        let watch = deadlines::watch(Instant::now() + timeout, move || {
            seen.timed_out.store(true, Ordering::SeqCst);
            hooks.log(
                Level::Warning,
                format_args!(
                    "request timed out after {timeout:?} (--request-timeout); cutting it off"
                ),
            );
            let thread = seen.thread.load(Ordering::SeqCst);
            if thread != 0 && !seen.done.load(Ordering::SeqCst) {
                // Asked again once the application can act: the request may end meanwhile
                // (a loop thread keeps the GIL to the end of its turn), and its thread
                // must not get the exception meant for it in a later request.
                service.cancel(thread, &|| !seen.done.load(Ordering::SeqCst));
            }
            let cutoff = seen.cutoff.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(cutoff) = cutoff {
                seen.cut_off.store(true, Ordering::SeqCst);
                cutoff(if seen.head_written.load(Ordering::SeqCst) {
                    b""
                } else {
                    &seen.last_words
                });
            }
            waker();
            if exit_when_stuck && seen.cut_off.load(Ordering::SeqCst) {
                std::thread::sleep(UNWIND_GRACE);
                if !seen.done.load(Ordering::SeqCst) {
                    hooks.log(
                        Level::Warning,
                        format_args!("the timed-out request is still running; this worker exits"),
                    );
                    hooks.stuck();
                }
            }
        });
        RequestTimer {
            state,
            _watch: watch,
        }
    }

    /// The shared state, for the job.
    pub(crate) fn state(&self) -> Arc<TimerState> {
        self.state.clone()
    }

    pub fn head_written(&self) {
        self.state.head_written.store(true, Ordering::SeqCst);
    }

    pub fn timed_out(&self) -> bool {
        self.state.timed_out.load(Ordering::SeqCst)
    }

    /// Whether the watchdog already answered the client and ended the connection.
    pub fn cut_off(&self) -> bool {
        self.state.cut_off.load(Ordering::SeqCst)
    }
}

impl super::HttpSession {
    /// The `--request-timeout` deadline of a request starting now, if one is set.
    pub(super) fn request_timer(&self, is_head: bool) -> Option<RequestTimer> {
        self.settings.request_timeout.map(|timeout| {
            let mut last_words = Vec::new();
            ironhorse_h1::Failure::TimedOut.write_response(!is_head, &mut last_words);
            RequestTimer::start(Expiry {
                timeout,
                service: self.service.clone(),
                waker: self.waker.clone(),
                exit_when_stuck: self.settings.exit_when_stuck,
                hooks: self.link.hooks.clone(),
                last_words,
            })
        })
    }
}
