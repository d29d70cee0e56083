//! `--request-timeout`: a deadline on each application request, in every model.
//!
//! At the deadline the client gets `504 Gateway Timeout` (or, if the response had begun, a
//! closed connection), and the application is asked to abandon the request (WSGI raises
//! `TimeoutError` in its thread). Where the request runs on a blocking driver's thread, a
//! watchdog does this through a second descriptor of the socket; a worker process whose only
//! thread stays stuck then exits, and its master starts a fresh one. Offloaded requests are
//! timed out by their session, woken by the watchdog.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::Service;

use crate::deadlines::{self, Watch};
use crate::session::{Cutoff, Waker};

/// What a timed-out client receives when nothing of the response was sent yet.
pub(super) const GATEWAY_TIMEOUT: &[u8] =
    b"HTTP/1.1 504 Gateway Timeout\r\nServer: ironhorse\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\nGateway Timeout\n";
/// How long a stuck, cancelled request may take to unwind before its worker exits.
const UNWIND_GRACE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Flags {
    head_written: AtomicBool,
    timed_out: AtomicBool,
    done: AtomicBool,
}

/// The deadline of the request in progress; dropping it (the response ended) disarms it.
pub(super) struct RequestTimer {
    flags: Arc<Flags>,
    _watch: Watch,
}

impl RequestTimer {
    /// For a request running on this thread.
    pub fn inline(
        timeout: Duration,
        cutoff: Cutoff,
        service: Arc<dyn Service>,
        exit_when_stuck: bool,
    ) -> RequestTimer {
        let flags = Arc::new(Flags::default());
        let thread = ironhorse_sys::current_thread_id();
        let seen = flags.clone();
        let watch = deadlines::watch(Instant::now() + timeout, move || {
            seen.timed_out.store(true, Ordering::SeqCst);
            crate::process::warn(format_args!(
                "request timed out after {timeout:?} (--request-timeout); cutting it off"
            ));
            cutoff(if seen.head_written.load(Ordering::SeqCst) {
                b""
            } else {
                GATEWAY_TIMEOUT
            });
            service.cancel(thread);
            if exit_when_stuck {
                std::thread::sleep(UNWIND_GRACE);
                if !seen.done.load(Ordering::SeqCst) {
                    crate::process::warn(format_args!(
                        "the timed-out request is still running; this worker exits"
                    ));
                    crate::process::exit(crate::process::EXIT_STUCK);
                }
            }
        });
        RequestTimer {
            flags,
            _watch: watch,
        }
    }

    /// For an offloaded request: the session is woken at the deadline and finds
    /// [`timed_out`](Self::timed_out) true.
    pub fn offloaded(timeout: Duration, waker: Waker) -> RequestTimer {
        let flags = Arc::new(Flags::default());
        let seen = flags.clone();
        let watch = deadlines::watch(Instant::now() + timeout, move || {
            seen.timed_out.store(true, Ordering::SeqCst);
            waker();
        });
        RequestTimer {
            flags,
            _watch: watch,
        }
    }

    pub fn head_written(&self) {
        self.flags.head_written.store(true, Ordering::SeqCst);
    }

    pub fn timed_out(&self) -> bool {
        self.flags.timed_out.load(Ordering::SeqCst)
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.flags.done.store(true, Ordering::SeqCst);
    }
}
