//! An epoll set whose registrations can be one-shot, for the blocking drivers' connection
//! watcher. mio (the event loop's poller) has no `EPOLLONESHOT`; with it, a thread pool
//! takes a connection out of the watch with no system call (its registration disarms
//! itself when it reports) and hands it back with one (`EPOLL_CTL_MOD` re-arms it),
//! where registering anew cost an `EPOLL_CTL_DEL`, an `EPOLL_CTL_ADD` and a wake-up of the
//! watcher per hand-over (measured: `epoll_ctl` 1.45 and eventfd `write` 0.73 per request
//! under `threadpool --threads 4`).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

/// How a registration reports input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// At every arrival (edge-triggered): the watching thread keeps the descriptor.
    Edge,
    /// Once, then nothing until [`EpollSet::rearm`]: meanwhile another thread may use the
    /// descriptor without its input waking the watcher.
    Once,
}

impl Trigger {
    fn flags(self) -> EpollFlags {
        let readable = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        match self {
            Trigger::Edge => readable | EpollFlags::EPOLLET,
            Trigger::Once => readable | EpollFlags::EPOLLONESHOT,
        }
    }
}

/// One epoll instance; registrations carry a `usize` token. Shared between threads: the
/// kernel serialises `epoll_ctl` and `epoll_wait` on one set.
#[derive(Debug)]
pub struct EpollSet(Epoll);

impl EpollSet {
    pub fn new() -> io::Result<EpollSet> {
        Ok(EpollSet(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?))
    }

    /// Watches `fd` for input under `token`. A descriptor already readable is reported at
    /// the next wait.
    pub fn add(&self, fd: BorrowedFd<'_>, token: usize, trigger: Trigger) -> io::Result<()> {
        Ok(self
            .0
            .add(fd, EpollEvent::new(trigger.flags(), token as u64))?)
    }

    /// Arms a [`Trigger::Once`] registration again (under `token`). Input that came while
    /// it was disarmed is reported at the next wait: the kernel looks at the socket's state.
    pub fn rearm(&self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
        let mut event = EpollEvent::new(Trigger::Once.flags(), token as u64);
        Ok(self.0.modify(fd, &mut event)?)
    }

    /// Stops watching `fd` (closing its last descriptor does so too).
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(self.0.delete(fd)?)
    }

    /// Waits up to `timeout` (rounded up to whole milliseconds) and fills `events`. An
    /// interrupted wait returns no events.
    pub fn wait(&self, events: &mut Events, timeout: Duration) -> io::Result<()> {
        let millis = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128);
        let timeout = EpollTimeout::try_from(millis as i32).unwrap_or(EpollTimeout::MAX);
        events.len = 0;
        events.len = match self.0.wait(&mut events.buf, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(())
    }
}

/// What one wait reported.
pub struct Events {
    buf: Vec<EpollEvent>,
    len: usize,
}

impl Events {
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            buf: vec![EpollEvent::empty(); capacity.max(1)],
            len: 0,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf[..self.len].iter().map(|e| Event {
            token: e.data() as usize,
            flags: e.events(),
        })
    }
}

/// One descriptor's readiness.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    token: usize,
    flags: EpollFlags,
}

impl Event {
    pub fn token(&self) -> usize {
        self.token
    }

    /// The peer ended its side (or both): after what is buffered, reads return 0.
    pub fn is_read_closed(&self) -> bool {
        self.flags.contains(EpollFlags::EPOLLHUP)
            || self
                .flags
                .contains(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP)
    }

    pub fn is_error(&self) -> bool {
        self.flags.contains(EpollFlags::EPOLLERR)
    }
}

/// Wakes a thread waiting on an [`EpollSet`] where it is registered (an eventfd).
#[derive(Debug)]
pub struct Wake(EventFd);

impl Wake {
    pub fn new() -> io::Result<Wake> {
        Ok(Wake(EventFd::from_flags(
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
        )?))
    }

    /// Registers it (edge-triggered: every [`wake`](Self::wake) is reported, and the
    /// counter is never read).
    pub fn register(&self, set: &EpollSet, token: usize) -> io::Result<()> {
        use std::os::fd::AsFd;
        set.add(self.0.as_fd(), token, Trigger::Edge)
    }

    pub fn wake(&self) {
        // Fails only once 2^64 - 2 wakes went unread: not within a server's life.
        let _ = self.0.write(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn tokens(set: &EpollSet, timeout: Duration) -> Vec<usize> {
        let mut events = Events::with_capacity(8);
        set.wait(&mut events, timeout).unwrap();
        events.iter().map(|e| e.token()).collect()
    }

    #[test]
    fn a_one_shot_registration_reports_once_until_rearmed() {
        let set = EpollSet::new().unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        set.add(b.as_fd(), 7, Trigger::Once).unwrap();
        a.write_all(b"x").unwrap();
        assert_eq!(tokens(&set, Duration::from_secs(5)), [7]);
        // More input while disarmed: nothing.
        a.write_all(b"y").unwrap();
        assert!(tokens(&set, Duration::ZERO).is_empty());
        // Re-armed with input unread: reported at once.
        set.rearm(b.as_fd(), 8).unwrap();
        assert_eq!(tokens(&set, Duration::from_secs(5)), [8]);
    }

    #[test]
    fn an_edge_registration_reports_each_arrival_and_the_peers_end() {
        let set = EpollSet::new().unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        set.add(b.as_fd(), 1, Trigger::Edge).unwrap();
        a.write_all(b"x").unwrap();
        assert_eq!(tokens(&set, Duration::from_secs(5)), [1]);
        assert!(tokens(&set, Duration::ZERO).is_empty());
        drop(a);
        let mut events = Events::with_capacity(8);
        set.wait(&mut events, Duration::from_secs(5)).unwrap();
        let event = events.iter().next().unwrap();
        assert!(event.is_read_closed() && !event.is_error());
    }

    #[test]
    fn a_wake_is_reported_every_time() {
        let set = EpollSet::new().unwrap();
        let wake = Wake::new().unwrap();
        wake.register(&set, 99).unwrap();
        for _ in 0..3 {
            wake.wake();
            assert_eq!(tokens(&set, Duration::from_secs(5)), [99]);
        }
    }
}
