//! Processes: fork, reap, signal, exit.

use std::io;

pub use nix::unistd::Pid;

/// Which side of a `fork()` we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Forks the process.
///
/// The caller must make sure no other thread holds a lock the child will need: forking is
/// done from single-threaded masters, or with the interpreter's lock held via the
/// application's fork hooks.
///
/// Signals are blocked across the fork, and the child detaches from the parent's signal
/// self-pipe before unblocking them: a signal aimed at a newborn child can then neither be
/// lost nor be mistaken by the parent for one of its own.
pub fn fork() -> io::Result<Forked> {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let mut previous = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous),
    )?;
    let forked = fork_raw();
    if let Ok(Forked::Child) = forked {
        crate::signals::forget_pipe();
    }
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None)?;
    forked
}

fn fork_raw() -> io::Result<Forked> {
    // SAFETY: in the child only the calling thread exists; callers fork from a point where
    // no other thread of ours holds locks the child touches (the master is single-threaded;
    // Python's GIL is taken around the fork by the application's hooks). The child only
    // builds fresh runtimes and pools after this returns.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                write!(f, "signal {s} ({name})")
            }
        }
    }
}

/// Reaps one exited child without blocking; `None` if none has exited.
pub fn reap_one() -> Option<(Pid, ExitStatus)> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => return Some((pid, ExitStatus::Code(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                return Some((pid, ExitStatus::Signal(sig as i32)))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Sends `signal` to `pid`; a process already gone is not an error.
pub fn kill(pid: Pid, signal: i32) {
    if let Ok(sig) = nix::sys::signal::Signal::try_from(signal) {
        let _ = nix::sys::signal::kill(pid, sig);
    }
}

/// Sets the core file size limit (`RLIMIT_CORE`) of process `pid` to 0, so that dying of a
/// signal such as `SIGABRT` writes no core file. For a worker the master aborts after
/// `--timeout`: a core of a whole Python process per stuck request could fill a disk, and
/// the master's log line says why it went. A crash of the worker's own (a real `abort()`)
/// still dumps core as the operator's limits allow. `pid` must be a process of the same
/// user (a child), or the kernel refuses with `EPERM`.
pub fn forbid_core_dump(pid: Pid) -> io::Result<()> {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `none` is a valid `rlimit` that outlives the call, which only reads it; the
    // null old-limit pointer asks for nothing to be written back.
    let rc = unsafe { libc::prlimit(pid.as_raw(), libc::RLIMIT_CORE, &none, std::ptr::null_mut()) };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// This process's id.
pub fn pid() -> u32 {
    std::process::id()
}

/// Ends the process at once, without running atexit handlers or destructors: the way a
/// forked child must leave so it does not flush or finalise state shared with its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and never returns; skipping destructors is the
    // point (they belong to the parent's copy of the state).
    unsafe { libc::_exit(code) }
}
