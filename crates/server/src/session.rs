//! The contract between drivers and protocols.
//!
//! A [`Session`] is one connection's protocol logic, sans IO: the driver hands it received
//! bytes and drains the [`Output`] it fills. Drivers know nothing about HTTP; the seeds'
//! echo and reverse protocols run on them unchanged, which keeps that honest.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use ironhorse_app::ConnInfo;

use crate::output::Output;

/// What a session wants next from its driver. In every case the driver first sends what
/// the session queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait for input, then `received` and `advance` again.
    Read,
    /// More output will follow: once the queued output is sent, `advance` again.
    Flush,
    /// Call `advance` again at this instant (a handler's simulated work).
    WaitUntil(Instant),
    /// Work runs elsewhere; `advance` again when the [`Waker`] is called.
    Pending,
    /// Close the connection once the output is sent.
    Close,
}

/// Wakes a driver so that it calls `advance` on the session it was lent to. Callable from
/// any thread, any number of times; wake-ups may be merged.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A blocking socket, lent to sessions by blocking drivers so that applications may read
/// request bodies as they arrive.
pub trait BlockingSocket: io::Read + io::Write + Send {
    /// A handle that ends this connection from another thread (made on demand: it costs a
    /// second descriptor while it lives).
    fn cutoff(&self) -> Option<Cutoff>;
}

/// What a driver lends a session for one call of `advance`.
pub struct Io<'a> {
    /// The socket, when the driver is blocking (its thread may wait on it).
    pub blocking: Option<&'a mut dyn BlockingSocket>,
    /// How to wake the driver after [`Step::Pending`].
    pub waker: &'a Waker,
}

/// Ends a connection from another thread: sends its argument (last words, maybe empty) and
/// shuts the socket down, which also wakes a thread blocked on it.
pub type Cutoff = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// One connection's protocol state.
pub trait Session: Send {
    /// Space to read received bytes into.
    fn read_buf(&mut self) -> &mut [u8];
    /// `n` bytes of [`read_buf`](Self::read_buf) were received; `0` means end of input.
    fn received(&mut self, n: usize);
    /// Bytes received into the driver's own buffer (non-empty). Drivers that read into a
    /// shared buffer use this, so idle connections need no buffer of their own.
    fn receive(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.read_buf();
            // A session whose buffer is full must override `receive`.
            assert!(
                !room.is_empty(),
                "session offers no room for received bytes"
            );
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
            self.received(n);
            data = &data[n..];
        }
    }
    /// Makes progress with what was received, queueing output.
    fn advance(&mut self, out: &mut Output, io: Io<'_>) -> Step;
    /// How long the driver may wait for input before closing the connection.
    fn read_deadline(&self) -> Option<Instant>;
    /// Whether nothing is in progress, so a stopping server may close the connection.
    fn is_idle(&self) -> bool;
    /// Whether the connection waits for a new request with nothing in progress or buffered
    /// (it may then be watched by a poller instead of a thread). Unlike
    /// [`is_idle`](Self::is_idle), true for a fresh connection too.
    fn is_waiting(&self) -> bool {
        self.is_idle()
    }
    /// The connection waits for input: release what memory can be rebuilt later.
    fn release_idle_memory(&mut self) {}
}

/// A wire protocol: makes one session per accepted connection.
pub trait Protocol: Send + Sync + 'static {
    fn session(&self, conn: ConnInfo) -> Box<dyn Session>;

    /// Called just before this process forks (see `ironhorse_app::Service::before_fork`).
    fn before_fork(&self) {}
    /// Called in the parent after a fork.
    fn after_fork_parent(&self) {}
    /// Called in the child after a fork.
    fn after_fork_child(&self) {}
}
