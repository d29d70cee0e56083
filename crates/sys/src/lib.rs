//! The operating-system glue of ironhorse, and the only crate allowed `unsafe` code.
//!
//! Everything here is a thin, documented wrapper: process creation and reaping, signal
//! delivery through a self-pipe, `sendfile(2)`, and resource limits. Callers get safe
//! functions returning `io::Result`.

pub mod process;
pub mod signals;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Sends up to `count` bytes of `file` starting at `*offset` to the socket `out`, advancing
/// `offset`. Zero copy: the kernel moves page-cache pages to the socket.
pub fn sendfile(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = *offset as libc::off_t;
    let sent = nix::sys::sendfile::sendfile(out, file, Some(&mut off), count)?;
    *offset = off as u64;
    Ok(sent)
}

/// Raises the soft open-files limit to the hard limit (event loops hold many sockets).
/// Returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (`-1`: forever).
/// Returns the indexes of the readable ones (empty on timeout or EINTR).
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<usize>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
    match poll(&mut polls, timeout) {
        Ok(_) => Ok(polls
            .iter()
            .enumerate()
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| i)
            .collect()),
        Err(nix::errno::Errno::EINTR) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Sets `TCP_NODELAY`-like per-socket options that std lacks: `SO_REUSEPORT` etc. live in
/// socket2; this only exposes the raw fd number for logging.
pub fn fd_number(fd: &impl AsFd) -> i32 {
    fd.as_fd().as_raw_fd()
}
