//! The life of a connection, the same under every driver: when a waiting connection ends,
//! how it closes without losing its last response, how accepting survives errors, and how
//! a stopping server drains. Drivers call these and only schedule.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;

use super::STOP_CHECK;
use ironhorse_protocol::hooks::{Level, WorkerHooks};
use ironhorse_protocol::session::Session;

/// How long a closing connection may pause in sending before we stop discarding its bytes
/// (nginx's `lingering_timeout`, shorter: a blocking driver's thread waits meanwhile).
pub(crate) const LINGER: Duration = Duration::from_secs(1);
/// How long a closing connection may keep sending in all (nginx's `lingering_time`, 30 s,
/// shorter for the same reason).
const LINGER_MAX: Duration = Duration::from_secs(10);
/// How much a closing connection may still send before we stop discarding it: the body an
/// application answered early without reading (a 401 or 413 to an upload) keeps coming,
/// from a proxy as fast as we read it, and must all be read or the client (nginx: a 502)
/// gets a reset instead of the answer. As `--limit-request-body`'s default, 1 GiB.
const LINGER_BUDGET: usize = 1 << 30;

/// Whether a connection that waits for input ends now: its read deadline passed, or the
/// server is stopping and nothing is in progress on it. A stopping server tells the
/// session ([`Session::stop`]) first.
pub(crate) fn is_expired(session: &mut dyn Session, now: Instant, stopping: bool) -> bool {
    if stopping {
        session.stop();
    }
    session.read_deadline().is_some_and(|d| d <= now) || (stopping && session.is_idle())
}

/// Sends what a session says before its expired connection closes
/// ([`Session::farewell`]), without waiting: a client that does not read misses it.
pub(crate) fn farewell(session: &mut dyn Session, socket: BorrowedFd<'_>) {
    let bytes = session.farewell();
    if !bytes.is_empty() {
        let _ = ironhorse_sys::send_now(socket, &bytes);
    }
}

/// The error a driver's read reports for an expired connection.
pub(crate) fn expiry_error(session: &dyn Session, stopping: bool) -> io::Error {
    if stopping && session.is_idle() {
        io::ErrorKind::Interrupted.into()
    } else {
        io::ErrorKind::TimedOut.into()
    }
}

/// Ends a connection so that its last response is not lost: half-close first (the peer
/// reads our bytes, then EOF), then discard what it still sends for a moment, so the
/// kernel does not answer unread data with a reset that could destroy the response in
/// flight. For TCP and Unix sockets alike.
pub(crate) struct Linger {
    /// The end of lingering unless more comes: a pause of [`LINGER`] after the last bytes.
    until: Instant,
    /// The end of lingering whatever comes.
    last: Instant,
    budget: usize,
}

impl Linger {
    /// Half-closes `socket` and starts lingering; or, with `reset` (the session asked for
    /// one: [`Session::ends_in_reset`]), arms the socket to send a reset when it is closed,
    /// with no lingering.
    pub fn start(socket: &impl AsFd, reset: bool) -> Linger {
        let socket = socket2::SockRef::from(socket);
        let now = Instant::now();
        if reset {
            let _ = socket.set_linger(Some(Duration::ZERO));
            return Linger {
                until: now,
                last: now,
                budget: 0,
            };
        }
        let _ = socket.shutdown(std::net::Shutdown::Write);
        Linger {
            until: now + LINGER,
            last: now + LINGER_MAX,
            budget: LINGER_BUDGET,
        }
    }

    /// Discards input with `read` (non-blocking, or blocking with a timeout) until the peer
    /// closes, the budget or time runs out (`false`: close now), or it would block
    /// (`true`: call again when readable).
    pub fn discard(&mut self, mut read: impl FnMut(&mut [u8]) -> io::Result<usize>) -> bool {
        let mut sink = [0u8; 16 * 1024];
        while self.budget > 0 && !self.is_over(Instant::now()) {
            match read(&mut sink) {
                Ok(0) => return false,
                Ok(n) => {
                    self.budget -= n.min(self.budget);
                    self.until = (Instant::now() + LINGER).min(self.last);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                // A blocking socket's read timeout: look at the clock again.
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// When lingering ends.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// Whether lingering is over by `now`.
    pub fn is_over(&self, now: Instant) -> bool {
        now >= self.until
    }
}

/// What an accepted TCP connection is, for the application.
pub(crate) fn tcp_info(peer: SocketAddr, local: Option<SocketAddr>) -> ConnInfo {
    ConnInfo {
        peer: Some(peer),
        local,
        scheme: "http",
        forwarded: None,
        tls: None,
        server_name: None,
        cache: Default::default(),
    }
}

/// What a driver does after a failed `accept`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptFailure {
    /// Only that connection failed, or another process won the race: go on.
    Skip,
    /// Out of descriptors or memory: logged; stop accepting for [`STOP_CHECK`] (the
    /// waiting clients stay in the backlog) instead of spinning or dying.
    BackOff,
    /// The listener itself broke: logged; the driver stops.
    Fatal,
}

/// Classifies (and logs) an `accept` error: one policy for every driver.
pub(crate) fn accept_failed(e: &io::Error, hooks: &dyn WorkerHooks) -> AcceptFailure {
    let transient = matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) || e.raw_os_error() == Some(libc::EPROTO);
    if transient {
        return AcceptFailure::Skip;
    }
    let exhausted = matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    );
    if exhausted {
        hooks.log(
            Level::Warning,
            format_args!(
            "accept: {e}; pausing {STOP_CHECK:?} (raise the descriptor limit or lower --max-connections)"
        ),
        );
        AcceptFailure::BackOff
    } else {
        hooks.log(
            Level::Warning,
            format_args!("accept: {e}; this listener stops"),
        );
        AcceptFailure::Fatal
    }
}

/// Connections in flight, for a graceful stop: drivers count them in and out, and wait for
/// none to be left (or the graceful timeout).
#[derive(Default)]
pub(crate) struct Live {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Live {
    /// Counts a connection in until the ticket drops (wherever the connection ends).
    pub fn ticket(self: &Arc<Self>) -> LiveTicket {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        LiveTicket(self.clone())
    }

    /// Whether fewer than `max` are in flight (a cap on connections), waiting at most
    /// `patience` for one to leave.
    pub fn has_room_within(&self, max: usize, patience: Duration) -> bool {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let (count, _) = self
            .changed
            .wait_timeout_while(count, patience, |count| *count >= max)
            .unwrap_or_else(|e| e.into_inner());
        *count < max
    }

    /// Waits until none is in flight or `graceful` passed; whether all finished.
    pub fn drain(&self, graceful: Duration) -> bool {
        let deadline = Instant::now() + graceful;
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 && Instant::now() < deadline {
            count = self
                .changed
                .wait_timeout(count, STOP_CHECK.min(deadline - Instant::now()))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *count == 0
    }
}

/// One connection counted in [`Live`], out again when this drops.
pub(crate) struct LiveTicket(Arc<Live>);

impl Drop for LiveTicket {
    fn drop(&mut self) {
        let live = &self.0;
        *live.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        live.changed.notify_all();
    }
}

/// A stop in progress: in-flight work may finish until the graceful timeout.
pub(crate) struct Draining {
    deadline: Instant,
}

impl Draining {
    pub fn begin(graceful: Duration) -> Draining {
        Draining {
            deadline: Instant::now() + graceful,
        }
    }

    /// Whether the driver may return: nothing left in flight, or time is up.
    pub fn is_over(&self, live: usize, now: Instant) -> bool {
        live == 0 || now >= self.deadline
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests;
