//! Memory shared between a master and the workers it forks: counters the workers bump and
//! the master reads, without a system call per update. Also the kernel's view of a listening
//! socket's accept queue.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::AtomicU64;

/// `len` atomic counters in one anonymous mapping made with `MAP_SHARED`: every process
/// forked after it was made sees (and updates) the same memory. Starts zeroed.
pub struct SharedCounters {
    ptr: *mut AtomicU64,
    len: usize,
}

// SAFETY: the mapping is only reached through `&[AtomicU64]`, which is `Sync`; the pointer
// is owned by this value and unmapped once, in `Drop`.
unsafe impl Send for SharedCounters {}
// SAFETY: as above: every access is an atomic operation.
unsafe impl Sync for SharedCounters {}

impl SharedCounters {
    /// Maps `len` counters (at least one).
    pub fn new(len: usize) -> io::Result<SharedCounters> {
        let len = len.max(1);
        let bytes = len * std::mem::size_of::<AtomicU64>();
        // SAFETY: a fresh anonymous mapping (no address hint, no file): it aliases no Rust
        // object. The result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedCounters {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The counters.
    pub fn counters(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` is a live, page-aligned (so 8-byte aligned) mapping of
        // `len * 8` readable and writable bytes, zero-filled by the kernel (a valid
        // `AtomicU64` is any 8 bytes), alive as long as `self`; it is only ever shared
        // through this slice of atomics, so no `&mut` aliases it.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for SharedCounters {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; no borrow of it outlives
        // `self`.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len * std::mem::size_of::<AtomicU64>());
        }
    }
}

/// A listening TCP socket's accept queue as the kernel reports it (`TCP_INFO` on a socket
/// in `LISTEN` state, Linux): connections waiting to be accepted, and the queue's limit
/// (the backlog). `None` for other sockets (Unix ones) or where the kernel does not tell.
pub fn listen_queue(socket: BorrowedFd<'_>) -> Option<(u32, u32)> {
    // SAFETY: `tcp_info` is plain old data: all-zero bytes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of `len` bytes; the kernel writes at
    // most that many and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // TCP_LISTEN is state 10 in the kernel's numbering.
    if rc != 0 || info.tcpi_state != 10 {
        return None;
    }
    Some((info.tcpi_unacked, info.tcpi_sacked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_child_updates_what_the_parent_reads() {
        let shared = SharedCounters::new(4).unwrap();
        assert!(shared
            .counters()
            .iter()
            .all(|c| c.load(Ordering::Relaxed) == 0));
        match crate::process::fork().unwrap() {
            crate::process::Forked::Child => {
                shared.counters()[2].fetch_add(7, Ordering::Relaxed);
                crate::process::exit_now(0);
            }
            crate::process::Forked::Parent(pid) => {
                while crate::process::reap_one().map(|(p, _)| p) != Some(pid) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        assert_eq!(shared.counters()[2].load(Ordering::Relaxed), 7);
    }

    #[test]
    fn a_listener_tells_its_queue() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _waiting: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        use std::os::fd::AsFd;
        let (queued, limit) = listen_queue(listener.as_fd()).unwrap();
        assert_eq!(queued, 3, "three connections wait to be accepted");
        assert!(limit > 0);
        let conn = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(listen_queue(conn.as_fd()), None, "not a listener");
    }
}
