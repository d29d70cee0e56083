//! Signals, the gunicorn way: handlers only record the signal; a loop dispatches later.
//!
//! Two mechanisms, both async-signal-safe: a self-pipe that wakes a master's `poll`, and a
//! process-wide "stop requested" flag that workers' loops check between waits.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

pub use libc::{
    SIGABRT, SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1,
    SIGUSR2, SIGWINCH,
};

/// Write end of the self-pipe; -1 when none is installed.
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The last stop signal received (0: none): read by workers between waits.
static STOP_SIGNAL: AtomicU32 = AtomicU32::new(0);
/// Other signals received and not yet taken, one bit per signal number.
static PENDING: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_pending(signal: libc::c_int) {
    if (0..64).contains(&signal) {
        PENDING.fetch_or(1 << signal, Ordering::SeqCst);
    }
}

/// Makes `signals` only be recorded, to be taken with [`take_pending`] (e.g. `SIGUSR1` in a
/// worker: reopen the logs at the next check).
pub fn install_pending(signals: &[i32]) -> io::Result<()> {
    for &signal in signals {
        set_handler(
            signal,
            record_pending as *const () as usize as libc::sighandler_t,
        )?;
    }
    Ok(())
}

/// Whether `signal` arrived since the last call (clears it).
pub fn take_pending(signal: i32) -> bool {
    (0..64).contains(&signal)
        && PENDING.fetch_and(!(1 << signal), Ordering::SeqCst) & (1 << signal) != 0
}

extern "C" fn record_in_pipe(signal: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte. A full pipe
        // (EAGAIN) only drops a duplicate wake-up.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

extern "C" fn record_stop(signal: libc::c_int) {
    STOP_SIGNAL.store(signal as u32, Ordering::SeqCst);
    record_in_pipe(signal);
}

fn set_handler(signal: i32, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; we then set the
    // handler, which only touches atomics and write(2) (async-signal-safe). No SA_RESTART:
    // blocking waits return EINTR so loops re-check their flags promptly.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A self-pipe receiving the numbers of the signals it was installed for.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Installs handlers for `signals` that queue them into a new pipe (replacing any
    /// earlier pipe). `SIGTERM`/`SIGINT`/`SIGQUIT` also set the stop flag.
    pub fn install(signals: &[i32]) -> io::Result<SignalPipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        PIPE_WRITE_FD.store(std::os::fd::AsRawFd::as_raw_fd(&write), Ordering::SeqCst);
        for &signal in signals {
            let handler = if is_stop_signal(signal) {
                record_stop as *const () as usize
            } else {
                record_in_pipe as *const () as usize
            };
            set_handler(signal, handler as libc::sighandler_t)?;
        }
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// The queued signals, oldest first; empty if none.
    pub fn drain(&self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n) = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.read), &mut buf) {
            if n == 0 {
                break;
            }
            out.extend(buf[..n].iter().map(|&b| b as i32));
        }
        out
    }
}

impl AsFd for SignalPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

fn is_stop_signal(signal: i32) -> bool {
    matches!(signal, SIGTERM | SIGINT | SIGQUIT)
}

/// Makes `SIGTERM`, `SIGINT` and `SIGQUIT` only set the stop flag (for worker processes and
/// single-process servers), and ignores `SIGPIPE` (a vanished client is an `EPIPE` error).
pub fn install_stop_flag() -> io::Result<()> {
    for signal in [SIGTERM, SIGINT, SIGQUIT] {
        set_handler(
            signal,
            record_stop as *const () as usize as libc::sighandler_t,
        )?;
    }
    ignore_sigpipe()
}

/// Ignores `SIGPIPE`.
pub fn ignore_sigpipe() -> io::Result<()> {
    set_handler(libc::SIGPIPE, libc::SIG_IGN)
}

/// Restores the default disposition of `signals` (in a fresh child).
pub fn reset(signals: &[i32]) -> io::Result<()> {
    for &signal in signals {
        set_handler(signal, libc::SIG_DFL)?;
    }
    Ok(())
}

/// The stop signal received so far, if any.
pub fn stop_requested() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s as i32),
    }
}

/// Sets the stop flag as if `signal` had arrived (used by tests and by a parent's fan-out).
pub fn request_stop(signal: i32) {
    STOP_SIGNAL.store(signal as u32, Ordering::SeqCst);
}

/// Closes the self-pipe's write end registration (in a child that must not wake the master).
pub fn forget_pipe() {
    PIPE_WRITE_FD.store(-1, Ordering::SeqCst);
}

/// Wraps a raw descriptor inherited from a parent (`fd://N`, `LISTEN_FDS`).
///
/// Returns an error if `fd` is not open.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)?;
    // SAFETY: the descriptor is open (F_GETFD succeeded) and, by the caller's contract
    // (an inherited listening socket named on the command line), owned by nobody else here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
