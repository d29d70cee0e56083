//! Signals, the gunicorn way: handlers only record the signal; a loop dispatches later.
//!
//! Handlers are registered through signal-hook's registry, which chains several actions on
//! one signal and saves `errno` around them (a hand-rolled handler that calls `write(2)`
//! clobbers the `errno` of whatever it interrupted). Three ways to record a signal, all
//! async-signal-safe:
//! - [`SignalPipe`]: every delivery writes the signal's number into a pipe, a queue in arrival
//!   order that also wakes a master's `poll`. N deliveries are N entries: two `TTIN`s are two
//!   workers, never one.
//! - the stop flag ([`install_stop_flag`], [`stop_requested`]) that workers' loops check
//!   between waits;
//! - pending flags ([`install_pending`], [`take_pending`]) for signals whose repeats mean
//!   nothing more (`USR1`: reopen the logs).
//!
//! What no handler can count: the kernel keeps at most one *pending* instance of a standard
//! signal per process (POSIX; only real-time signals queue). A `TTIN` sent while an earlier
//! `TTIN` has not yet been delivered (the target not yet scheduled, or inside `fork`) merges
//! with it before any code of ours runs. gunicorn has the same limit (CPython's handler even
//! keeps a flag per signal). Senders that need every signal counted wait until the previous
//! one left the pending set (`SigPnd`/`ShdPnd` in `/proc/PID/status`).
//!
//! The registry installs handlers with `SA_RESTART`. Waits that must notice a signal promptly
//! are `poll`/`epoll` or socket calls with a timeout, which the kernel never restarts.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

pub use libc::{
    SIGABRT, SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1,
    SIGUSR2, SIGWINCH,
};
use signal_hook::SigId;

/// Write end of the self-pipe; -1 when none is installed (or in a forked child).
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The last stop signal received (0: none): read by workers between waits.
static STOP_SIGNAL: AtomicUsize = AtomicUsize::new(0);
/// Signals received and not yet taken, one flag per signal number below 64.
static PENDING: [AtomicBool; 64] = [const { AtomicBool::new(false) }; 64];

/// Makes `signals` only be recorded, to be taken with [`take_pending`] (e.g. `SIGUSR1` in a
/// worker: reopen the logs at the next check). Repeats before the next take count once.
pub fn install_pending(signals: &[i32]) -> io::Result<()> {
    for &signal in signals {
        let flag = usize::try_from(signal)
            .ok()
            .and_then(|n| PENDING.get(n))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "signal number"))?;
        signal_hook::flag::register(signal, flag)?;
    }
    Ok(())
}

/// Whether `signal` arrived since the last call (clears it).
pub fn take_pending(signal: i32) -> bool {
    usize::try_from(signal)
        .ok()
        .and_then(|n| PENDING.get(n))
        .is_some_and(|flag| flag.swap(false, Ordering::SeqCst))
}

/// Registers the action that queues `signal`'s number into the current self-pipe.
///
/// Not signal-hook's ready-made pieces: `iterator::Signals` keeps one pending flag per signal
/// (two `TTIN`s before the loop reads would be one, the bug this queue avoids), and
/// `low_level::pipe` writes the same byte for every signal (one pipe per signal kind).
fn register_in_pipe(signal: i32) -> io::Result<SigId> {
    let byte = signal as u8;
    let action = move || {
        let fd = PIPE_WRITE_FD.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe; the buffer is a local byte that outlives
            // the call, and `fd` is the pipe's write end, open while it is published here
            // (`SignalPipe`'s drop unpublishes it before closing). A full pipe (EAGAIN) would
            // drop this one entry; it holds 64 KiB of them.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    };
    // SAFETY: the action is async-signal-safe: one atomic load and one write(2); it does not
    // allocate, lock or panic.
    unsafe { signal_hook::low_level::register(signal, action) }
}

/// Restores `handler` (`SIG_DFL` or `SIG_IGN`) for `signal` at the kernel, behind the
/// registry's back (its actions for `signal` stop being called; it is not told).
fn set_disposition(signal: i32, handler: nix::sys::signal::SigHandler) -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigSet, Signal};
    let signal = Signal::try_from(signal)?;
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler is SIG_DFL or SIG_IGN (callers pass no function), so no code of
    // ours runs in signal context through it.
    unsafe { sigaction(signal, &action) }?;
    Ok(())
}

/// A self-pipe receiving the numbers of the signals it was installed for, one entry per
/// delivery.
pub struct SignalPipe {
    read: OwnedFd,
    write: OwnedFd,
    registered: Vec<SigId>,
}

impl SignalPipe {
    /// Installs handlers for `signals` that queue them into a new pipe (replacing any
    /// earlier pipe). `SIGTERM`/`SIGINT`/`SIGQUIT` also set the stop flag.
    pub fn install(signals: &[i32]) -> io::Result<SignalPipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        PIPE_WRITE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        let mut pipe = SignalPipe {
            read,
            write,
            registered: Vec::new(),
        };
        for &signal in signals {
            if is_stop_signal(signal) {
                // Registered first, so the flag is set before the loop wakes.
                let id = signal_hook::flag::register_usize(signal, &STOP_SIGNAL, signal as usize)?;
                pipe.registered.push(id);
            }
            pipe.registered.push(register_in_pipe(signal)?);
        }
        Ok(pipe)
    }

    /// The queued signals, oldest first, one entry per delivery; empty if none.
    pub fn drain(&self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n) = nix::unistd::read(self.read.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            out.extend(buf[..n].iter().map(|&b| i32::from(b)));
        }
        out
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.registered.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        let _ = PIPE_WRITE_FD.compare_exchange(
            self.write.as_raw_fd(),
            -1,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
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
        signal_hook::flag::register_usize(signal, &STOP_SIGNAL, signal as usize)?;
    }
    ignore_sigpipe()
}

/// Ignores `SIGPIPE`.
pub fn ignore_sigpipe() -> io::Result<()> {
    set_disposition(libc::SIGPIPE, nix::sys::signal::SigHandler::SigIgn)
}

/// Restores the default disposition of `signals` (in a fresh child).
pub fn reset(signals: &[i32]) -> io::Result<()> {
    for &signal in signals {
        set_disposition(signal, nix::sys::signal::SigHandler::SigDfl)?;
    }
    Ok(())
}

/// The stop signal received so far, if any.
pub fn stop_requested() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => i32::try_from(s).ok(),
    }
}

/// Sets the stop flag as if `signal` had arrived (used by tests and by a parent's fan-out).
pub fn request_stop(signal: i32) {
    STOP_SIGNAL.store(signal as usize, Ordering::SeqCst);
}

/// Detaches from the self-pipe (in a child that must not wake the master): the inherited
/// handlers stay registered but write nowhere.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raise(signal: i32) {
        nix::sys::signal::raise(nix::sys::signal::Signal::try_from(signal).unwrap()).unwrap();
    }

    // One test touches the process-wide handlers, so parallel tests cannot interleave.
    #[test]
    fn every_delivery_is_queued_and_flags_are_set() {
        let pipe = SignalPipe::install(&[SIGTTIN, SIGTTOU, SIGWINCH]).unwrap();
        // raise() delivers synchronously, before it returns: each one is a separate delivery.
        for signal in [SIGTTIN, SIGTTIN, SIGTTOU, SIGTTIN, SIGWINCH] {
            raise(signal);
        }
        assert_eq!(
            pipe.drain(),
            vec![SIGTTIN, SIGTTIN, SIGTTOU, SIGTTIN, SIGWINCH]
        );
        assert!(pipe.drain().is_empty());
        drop(pipe);

        install_pending(&[SIGUSR2]).unwrap();
        assert!(!take_pending(SIGUSR2));
        raise(SIGUSR2);
        raise(SIGUSR2);
        assert!(take_pending(SIGUSR2));
        assert!(!take_pending(SIGUSR2), "taking clears the flag");
        assert!(!take_pending(1000), "an impossible signal is never pending");
    }
}
