//! A worker's side of supervision: heartbeats to the master and request counting for
//! `--max-requests`. Process-wide statics on purpose: each forked worker has its own copy.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The write end of this worker's heartbeat pipe (unset outside supervised workers).
static BEAT_PIPE: OnceLock<OwnedFd> = OnceLock::new();
/// Milliseconds since [`EPOCH`] of the last beat.
static LAST_BEAT_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Requests answered by this process, and the count at which it retires (0: never).
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static MAX_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// What must also say the worker is alive for it to beat: the gevent hub's pulse (its
/// greenlets run there, not on the driver's thread that beats; unset elsewhere).
type Gate = Box<dyn Fn() -> bool + Send + Sync>;
static GATE: OnceLock<Gate> = OnceLock::new();

/// How often a worker tells the master it is alive, at most.
const BEAT_EVERY_MS: u64 = 500;

/// Makes this process a supervised worker: it beats into `pipe` and retires after
/// `max_requests` answered requests (0: never).
pub(crate) fn enroll(pipe: OwnedFd, max_requests: u64) {
    let _ = BEAT_PIPE.set(pipe);
    MAX_REQUESTS.store(max_requests, Ordering::Relaxed);
    beat_now();
}

/// Makes the heartbeat also depend on `alive`: while it says no, the worker does not beat
/// (and the master aborts it after `--timeout`). Set once per process (a preloading master
/// sets it before forking: its workers inherit it).
pub fn gate_heartbeat(alive: impl Fn() -> bool + Send + Sync + 'static) {
    let _ = GATE.set(Box::new(alive));
}

/// Tells the master this worker's serving loop is alive. Cheap enough for every loop turn:
/// it writes at most every `BEAT_EVERY_MS` (500 ms).
pub(crate) fn beat() {
    let Some(_) = BEAT_PIPE.get() else { return };
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let last = LAST_BEAT_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= BEAT_EVERY_MS
        && GATE.get().is_none_or(|alive| alive())
        && LAST_BEAT_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        beat_now();
    }
}

/// The size of one heartbeat: the worker's request count, little-endian, or [`RETIRING`].
/// Smaller than `PIPE_BUF`, so each is written whole and the master reads whole beats.
pub(crate) const BEAT_LEN: usize = 8;

/// The beat a worker sends when it retires after `--max-requests`, so the master knows its
/// clean exit is routine (no request count reaches `u64::MAX`).
pub(crate) const RETIRING: [u8; BEAT_LEN] = u64::MAX.to_le_bytes();

/// What one heartbeat says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Alive, having answered this many requests.
    Alive { requests: u64 },
    /// Retiring after `--max-requests`.
    Retiring,
}

/// The heartbeat for a live worker that answered `requests` requests.
pub(crate) fn alive_beat(requests: u64) -> [u8; BEAT_LEN] {
    requests.min(u64::MAX - 1).to_le_bytes()
}

/// Reads one whole heartbeat.
pub(crate) fn read_beat(beat: &[u8]) -> Beat {
    match beat.try_into().map(u64::from_le_bytes) {
        Ok(u64::MAX) => Beat::Retiring,
        Ok(requests) => Beat::Alive { requests },
        Err(_) => Beat::Alive { requests: 0 },
    }
}

fn beat_now() {
    if let Some(pipe) = BEAT_PIPE.get() {
        let beat = alive_beat(REQUESTS.load(Ordering::Relaxed));
        // A full pipe means the master has not read yet; it has seen a beat already.
        let _ = ironhorse_sys::write_nonblocking(pipe.as_fd(), &beat);
    }
}

/// Whether this worker is going away: it was told to stop, or the request in progress is its
/// last before `--max-requests` retires it (with requests served at once on several threads,
/// each of the last ones counts).
pub(crate) fn retiring() -> bool {
    let max = MAX_REQUESTS.load(Ordering::Relaxed);
    ironhorse_sys::signals::stop_requested().is_some()
        || (max > 0 && REQUESTS.load(Ordering::Relaxed) + 1 >= max)
}

/// Counts one answered request; past `--max-requests` the worker stops gracefully and the
/// master starts a fresh one.
pub(crate) fn request_done(logs: &crate::ProcessLogs) {
    let max = MAX_REQUESTS.load(Ordering::Relaxed);
    let done = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    if max > 0 && done == max {
        if let Some(pipe) = BEAT_PIPE.get() {
            let _ = ironhorse_sys::write_nonblocking(pipe.as_fd(), &RETIRING);
        }
        logs.info(format_args!(
            "served {done} requests (--max-requests); retiring"
        ));
        ironhorse_sys::signals::request_stop(ironhorse_sys::signals::SIGTERM);
    }
}
