//! The operating-system glue of ironhorse, and the only crate allowed `unsafe` code.
//!
//! Everything here is a thin, documented wrapper: process creation and reaping, signal
//! delivery through a self-pipe (signal-hook), `sendfile(2)`, `openat2(2)` (rustix), systemd's
//! readiness and socket-activation protocols (libsystemd), resource limits, and a one-shot
//! capable epoll set for the blocking drivers (nix). Callers get
//! safe functions returning `io::Result`.

pub mod epoll;
pub mod process;
pub mod reactor;
mod shared;
pub mod signals;

pub use shared::{listen_queue, SharedCounters};

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

/// Receives what is already there without waiting, even on a blocking socket (`recv` with
/// `MSG_DONTWAIT`): one system call that both asks whether input waits and takes it, where
/// a zero-timeout `poll` and then a `read` are two. `WouldBlock` when nothing waits.
pub fn recv_now(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use nix::sys::socket::{recv, MsgFlags};
    recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)
}

/// Sets `TCP_NODELAY`-like per-socket options that std lacks: `SO_REUSEPORT` etc. live in
/// socket2; this only exposes the raw fd number for logging.
pub fn fd_number(fd: &impl AsFd) -> i32 {
    fd.as_fd().as_raw_fd()
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    Ok(nix::unistd::pipe2(
        nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
    )?)
}

/// Writes what the descriptor takes without blocking (a full pipe drops the bytes).
pub fn write_nonblocking(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, bytes)?)
}

/// Reads what is there without blocking; `Ok(0)` at EOF, `WouldBlock` when empty.
pub fn read_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(nix::unistd::read(fd.as_raw_fd(), buf)?)
}

/// Lets `fd` survive `exec` (for handing listening sockets to a new binary).
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok(())
}

/// Replaces this process with `program`, with exactly the environment `env`. Returns only
/// on failure.
pub fn exec(program: &std::path::Path, args: &[String], env: &[(String, String)]) -> io::Error {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let to_c = |s: &[u8]| {
        CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in argument"))
    };
    let built = (|| -> io::Result<(CString, Vec<CString>, Vec<CString>)> {
        let path = to_c(program.as_os_str().as_bytes())?;
        let argv = args
            .iter()
            .map(|a| to_c(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = env
            .iter()
            .map(|(k, v)| to_c(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok((path, argv, envp))
    })();
    match built {
        Ok((path, argv, envp)) => match nix::unistd::execve(&path, &argv, &envp) {
            Ok(never) => match never {},
            Err(e) => e.into(),
        },
        Err(e) => e,
    }
}

/// Whether process `pid` is running (a zombie, exited but not yet reaped, is not).
pub fn process_alive(pid: i32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // `/proc/PID/stat` is "pid (comm) STATE ..."; the comm may contain spaces or parens.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                != Some('Z')
        }
        Err(_) => true,
    }
}

/// Makes standard error append to the file at `path` (created if missing): what is written
/// there (Python tracebacks, `wsgi.errors`, `sys.stderr`) then lands in the error log file.
/// Returns a descriptor of what standard error was before (the console).
pub fn redirect_stderr(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    let console = io::stderr().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2(file.as_raw_fd(), 2)?;
    Ok(console)
}

/// Places `fds` at descriptors 3, 4, … (the `LISTEN_FDS` convention of systemd), inheritable
/// across `exec`. For a freshly forked child about to exec.
pub fn pass_fds_for_exec(fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg};
    // First move every one out of the way, so placing one cannot clobber another.
    let high: Vec<i32> = fds
        .iter()
        .map(|fd| fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(1000)))
        .collect::<Result<_, _>>()?;
    for (i, fd) in high.iter().enumerate() {
        let target = 3 + i as i32;
        nix::unistd::dup2(*fd, target)?;
        // `dup2`'s copy has no close-on-exec flag; cleared explicitly all the same, since
        // the new binary finding its sockets depends on it.
        fcntl(target, FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
    }
    Ok(())
}

/// Sets this thread's name as `ps -o comm`, `top` and `/proc/PID/comm` show it
/// (at most 15 bytes are kept).
pub fn set_process_name(name: &str) {
    let truncated: String = name.chars().take(15).collect();
    if let Ok(c) = std::ffi::CString::new(truncated) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// Detaches into the background the classic way (fork, setsid, fork), with standard
/// streams on /dev/null. Returns in the daemon; the original process exits.
pub fn daemonize() -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    for step in 0..2 {
        match process::fork()? {
            process::Forked::Parent(_) => process::exit_now(0),
            process::Forked::Child => {}
        }
        if step == 0 {
            nix::unistd::setsid()?;
        }
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into_raw_fd();
    for target in 0..3 {
        nix::unistd::dup2(null, target)?;
    }
    Ok(())
}

/// Switches to `group` then `user` (names or numeric ids), after binding privileged ports.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> io::Result<()> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Group, Uid, User};
    let not_found = |what: &str, name: &str| {
        io::Error::new(io::ErrorKind::NotFound, format!("no such {what}: {name}"))
    };
    if let Some(group) = group {
        let gid = match group.parse::<u32>() {
            Ok(id) => Gid::from_raw(id),
            Err(_) => {
                Group::from_name(group)?
                    .ok_or_else(|| not_found("group", group))?
                    .gid
            }
        };
        setgroups(&[gid])?;
        setgid(gid)?;
    }
    if let Some(user) = user {
        let uid = match user.parse::<u32>() {
            Ok(id) => Uid::from_raw(id),
            Err(_) => {
                User::from_name(user)?
                    .ok_or_else(|| not_found("user", user))?
                    .uid
            }
        };
        setuid(uid)?;
    }
    Ok(())
}

/// Sets the file-creation mask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        mask as nix::libc::mode_t,
    ))
    .bits() as u32
}

/// An id of the calling thread that other threads (and CPython's `threading.get_ident()`)
/// agree on: its pthread id.
pub fn current_thread_id() -> u64 {
    nix::sys::pthread::pthread_self() as u64
}

/// How many times the calling thread has blocked (given up the CPU to wait) since it began.
/// It grows when a job waits on I/O, a sleep or a lock; it does not when the thread is
/// preempted.
pub fn thread_voluntary_switches() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|usage| usage.voluntary_context_switches() as u64)
        .unwrap_or(0)
}

/// Gives the calling thread the `SCHED_BATCH` policy (same priority and share of the CPU as
/// `SCHED_OTHER`): the scheduler no longer lets it preempt the running thread when it wakes
/// up; it runs at the next tick or when that thread blocks. For an event loop whose
/// application threads run on the same core, this turns one preemption per incoming request
/// (and the caches an application like Flask loses to it) into one loop turn per batch.
pub fn no_wakeup_preemption() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` living across the call; pid 0 names the
    // calling thread (Linux applies scheduling policies per thread); SCHED_BATCH requires
    // priority 0 and no privilege.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends what the socket takes of `buf` now, even on a blocking socket (`send` with
/// `MSG_DONTWAIT`): `WouldBlock` when its buffer is full (the client is not reading).
pub fn send_now(socket: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    use nix::sys::socket::{send, MsgFlags};
    Ok(send(
        socket.as_raw_fd(),
        buf,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    )?)
}

/// Sends `buf` on a socket telling the kernel more follows at once (`MSG_MORE`), so a
/// response head and the file body sent next with `sendfile` share packets.
pub fn send_more(socket: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    use nix::sys::socket::{send, MsgFlags};
    let flags = MsgFlags::from_bits_retain(libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL;
    Ok(send(socket.as_raw_fd(), buf, flags)?)
}

/// What [`open_beneath`] found.
pub enum Beneath {
    /// Opened, and the kernel guarantees it lies below the directory (symlinks included).
    Opened(std::fs::File),
    /// The kernel cannot tell (no `openat2`, or an absolute symlink on the way): check the
    /// path another way.
    Unsure,
}

/// Opens `relative` for reading below the directory `root` with `openat2(RESOLVE_BENEATH)`:
/// one system call that refuses any path (`..`, symlinks) leading outside it. Non-blocking,
/// so a FIFO cannot stall the caller.
pub fn open_beneath(root: BorrowedFd<'_>, relative: &std::path::Path) -> io::Result<Beneath> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    match rustix::fs::openat2(
        root,
        relative,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Beneath::Opened(std::fs::File::from(fd))),
        // No openat2 (old kernel, seccomp), an absolute symlink on the way, or a rename
        // racing the lookup: the kernel cannot vouch for the path.
        Err(Errno::NOSYS | Errno::XDEV | Errno::PERM | Errno::AGAIN) => Ok(Beneath::Unsure),
        // A NUL byte in the path is refused before the call, like any invalid path.
        Err(e) => Err(e.into()),
    }
}

/// The size of a memory page, in bytes (4 KiB on most machines, 16 or 64 KiB on some ARM
/// and POWER systems).
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// A process's resident set size, in bytes (`/proc/PID/statm` counts pages); `None` if the
/// process is gone.
pub fn resident_bytes(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size() as u64)
}

/// What the service manager is told (systemd's readiness protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// `READY=1`: the server serves.
    Ready,
    /// `STOPPING=1`: it has begun to stop.
    Stopping,
}

/// Tells the service manager (`NOTIFY_SOCKET`, a path or an `@abstract` name) about
/// `state`, with this process as the main one. A no-op without a service manager; a failed
/// send is not an error worth stopping for, so it is only returned.
pub fn notify_service_manager(state: ServiceState) -> io::Result<()> {
    use libsystemd::daemon::NotifyState;
    let state = match state {
        ServiceState::Ready => NotifyState::Ready,
        ServiceState::Stopping => NotifyState::Stopping,
    };
    let main = NotifyState::Mainpid(nix::unistd::Pid::this());
    libsystemd::daemon::notify(false, &[state, main])
        .map(|_| ())
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The descriptors handed over by socket activation (`LISTEN_FDS` from descriptor 3, when
/// `LISTEN_PID` names this process), as raw numbers for [`signals::adopt_fd`]. The
/// variables are removed either way, so children never take them for theirs.
pub fn inherited_listen_fds() -> io::Result<Vec<std::os::fd::RawFd>> {
    use std::os::fd::IntoRawFd;
    let fds = libsystemd::activation::receive_descriptors(true)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    Ok(fds.into_iter().map(IntoRawFd::into_raw_fd).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first `KEY: N kB` line of a `/proc/self` file, in bytes.
    fn proc_self_bytes(file: &str, key: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap();
        let kb: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }

    #[test]
    fn page_size_is_the_kernels() {
        // smaps reports the kernel's page size for ordinary mappings.
        let kernel = proc_self_bytes("smaps", "KernelPageSize");
        assert_eq!(page_size() as u64, kernel);
    }

    #[test]
    fn resident_bytes_agrees_with_vm_rss() {
        let theirs = proc_self_bytes("status", "VmRSS");
        let ours = resident_bytes(std::process::id() as i32).unwrap();
        // Read a moment apart: allow the test's own growth in between.
        assert!(ours.abs_diff(theirs) < theirs / 10, "{ours} vs {theirs}");
        assert_eq!(resident_bytes(-1), None);
    }

    // The only test here that touches the environment (tests run in parallel threads).
    #[test]
    fn systemd_protocols_read_and_clear_their_variables() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let pid = std::process::id();
        let name = format!("ironhorse-sys-test-{pid}");
        let manager =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
        notify_service_manager(ServiceState::Ready).unwrap();
        notify_service_manager(ServiceState::Stopping).unwrap();
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).unwrap();
        let first = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        let n = manager.recv(&mut buf).unwrap();
        let second = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        assert_eq!(first, format!("READY=1\nMAINPID={pid}\n"));
        assert_eq!(second, format!("STOPPING=1\nMAINPID={pid}\n"));
        std::env::remove_var("NOTIFY_SOCKET");
        notify_service_manager(ServiceState::Ready).unwrap(); // no manager: nothing to do

        // Descriptors meant for another process are not taken, and the variables go.
        std::env::set_var("LISTEN_PID", (pid + 1).to_string());
        std::env::set_var("LISTEN_FDS", "1");
        assert!(inherited_listen_fds().unwrap().is_empty());
        assert!(std::env::var_os("LISTEN_FDS").is_none());
        assert!(std::env::var_os("LISTEN_PID").is_none());
    }

    /// The scheduling policy of the calling thread.
    fn thread_policy() -> i32 {
        // SAFETY: pid 0 names the calling thread; the call only reads its policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn no_wakeup_preemption_sets_sched_batch_on_the_calling_thread_only() {
        let before = thread_policy();
        let policy = std::thread::spawn(|| {
            no_wakeup_preemption().unwrap();
            thread_policy()
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_BATCH);
        assert_eq!(thread_policy(), before, "other threads keep their policy");
    }
}
