//! The contract between drivers and protocols.
//!
//! A [`Session`] is one connection's protocol logic, sans IO: the driver hands it received
//! bytes and drains the [`Output`] it fills. It never sees a socket. Drivers know nothing
//! about HTTP; the seeds' echo and reverse protocols run on them unchanged, which keeps
//! that honest.
//!
//! Work that may block (a Python application) leaves the session as a [`Job`], handed to
//! the [`Executor`] its driver gave it in a [`Link`]: event-driven drivers run jobs on a
//! thread pool; blocking drivers run them inline, on the connection's own thread, right
//! after `advance` returns, lending the job a [`JobHost`] whose `pump` drives the connection
//! while the job waits (no cross-thread hand-off per request).
//!
//! A layer that transforms bytes both ways (TLS: records in, records out) is a session
//! wrapping the inner session (`ironhorse_tls::TlsProtocol`): it decodes what it receives
//! into the inner session's `receive`, and encodes the inner session's [`Output`] — file
//! regions read in bounded chunks with [`Output::take_plain`], since a transform cannot
//! `sendfile` — into its own. Drivers serve it like any other session, so every model gets
//! the layer for free.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use ironhorse_app::ConnInfo;

use crate::hooks::Hooks;
use crate::offload_pool::Batch;
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
    /// Work runs elsewhere (a [`Job`]); `advance` again when the [`Waker`] is called.
    Pending,
    /// Close the connection once the output is sent.
    Close,
    /// The connection leaves this protocol for another on the same socket (HTTP/1.1's
    /// `101 Switching Protocols`, a prior-knowledge HTTP/2 preface): once the output is
    /// sent, the driver replaces the session with [`Session::hand_off`]'s and goes on with
    /// `advance` on it. The bytes already received are the next session's already.
    Upgrade,
}

/// Wakes a driver so that it calls `advance` on the session it serves. Callable from any
/// thread, any number of times; wake-ups may be merged.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Ends a connection from another thread: sends its argument (last words, maybe empty) and
/// shuts the socket down, which also wakes a thread blocked on it.
pub type Cutoff = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// What a job's runner lends it while it runs.
pub trait JobHost: Send {
    /// For jobs running inline on the connection's thread: drives the connection one turn
    /// (`advance`, send the output and, when `want_input` and the session asks for input,
    /// wait for it). `None` on a thread of its own: the job simply blocks on its queues,
    /// since the connection's driver runs elsewhere. `Some(Err)`: the connection is gone.
    fn pump(&mut self, want_input: bool) -> Option<io::Result<()>>;
    /// For jobs running inline: a handle ending the connection from another thread (made on
    /// demand, it costs a second descriptor while it lives), so that a watchdog can answer
    /// the client while the thread is stuck in the job.
    fn cutoff(&self) -> Option<Cutoff>;
    /// Calls `waker` for a finished response: at once (the default), or, on a pool thread,
    /// once the thread has no queued work left (the client waits a few microseconds more,
    /// and a busy core is spared a context switch per request).
    fn wake_when_idle(&mut self, waker: &Waker) {
        waker();
    }
}

/// Blocking work a session hands its driver.
pub type Job = Box<dyn FnOnce(&mut dyn JobHost) + Send>;

/// Where a driver runs a session's jobs.
pub trait Executor: Send + Sync {
    fn execute(&self, job: Job);
}

/// What a driver gives each session it serves.
#[derive(Clone)]
pub struct Link {
    /// Wakes the driver after [`Step::Pending`].
    pub waker: Waker,
    /// Where the session's jobs run. `None`: the driver's loop must never block, so the
    /// protocol runs them on its own pool (event-driven drivers).
    pub executor: Option<Arc<dyn Executor>>,
    /// The worker around the driver (request counting, the error log).
    pub hooks: Hooks,
    /// Where jobs for the protocol's own pool wait until the driver's batch of events ends
    /// (event-driven drivers, with `executor` `None`); `None`: they leave at once.
    pub batch: Option<Arc<Batch>>,
}

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
    fn advance(&mut self, out: &mut Output) -> Step;
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
    /// Whether what was received gives [`advance`](Self::advance) work for a thread: a whole
    /// request head, an error to answer, the end of input, a request in progress. Pool
    /// drivers keep a connection in their watcher until then (a client trickling its head
    /// holds no thread) and give it back to the watcher when it is again only partly there.
    /// The default: any input is work.
    fn has_work(&self) -> bool {
        true
    }
    /// The worker is stopping (called by the connection core, maybe more than once, while
    /// the connection waits for input): a session with in-flight work may say goodbye to
    /// its peer (HTTP/2's GOAWAY) and wake its driver to send it. The default does nothing:
    /// the driver closes idle sessions itself.
    fn stop(&mut self) {}
    /// The connection waits for input: release what memory can be rebuilt later.
    fn release_idle_memory(&mut self) {}
    /// The driver closes the connection on its own while it waits for input (its read
    /// deadline passed, or the server stops): the bytes to send before the close, best
    /// effort (TLS's `close_notify`, which RFC 8446 §6.1 requires before any close). The
    /// default: none.
    fn farewell(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// After [`Step::Close`]: whether the driver must reset the connection (RST) instead of
    /// closing it in order, because a response was cut short where only the close marks its
    /// end, and a FIN would pass the cut response off as whole. The default: never.
    fn ends_in_reset(&self) -> bool {
        false
    }
    /// After [`Step::Upgrade`]: the session that takes the connection over, fed with the
    /// bytes this one received but did not use. `None` (the default, for sessions that
    /// never upgrade): the driver closes the connection.
    fn hand_off(&mut self) -> Option<Box<dyn Session>> {
        None
    }
    /// The [`Cutoff`] a watchdog uses on this connection, made from the driver's `raw` one
    /// (which writes to the socket): a session that transforms its output (TLS) returns one
    /// that encodes the last words first, so they reach the peer as its own output would.
    /// Called on the connection's thread when an inline job starts; the result is called
    /// from the watchdog's thread. The default: `raw`.
    fn wrap_cutoff(&self, raw: Cutoff) -> Cutoff {
        raw
    }
}

/// What a switch from HTTP/1.1 carries to the next protocol's session.
pub struct HandOff {
    /// The request that asked for the switch (`Upgrade:`); `None` for a prior-knowledge
    /// preface. HTTP/2 answers it as stream 1 (RFC 7540 §3.2).
    pub head: Option<ironhorse_app::RequestHead>,
    /// The connection's count in the metrics (open while it lives), so that a switched
    /// connection counts once.
    pub connection: crate::Recorder,
}

/// A wire protocol: makes one session per accepted connection.
pub trait Protocol: Send + Sync + 'static {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session>;

    /// The session continuing a connection HTTP/1.1 switched to this protocol. Default: a
    /// fresh session (the hand-off's count ends: the connection counts as closed).
    fn session_after(&self, conn: ConnInfo, link: Link, hand_off: HandOff) -> Box<dyn Session> {
        drop(hand_off);
        self.session(conn, link)
    }

    /// Called just before this process forks (see `ironhorse_app::Service::before_fork`).
    fn before_fork(&self) {}
    /// Called in the parent after a fork.
    fn after_fork_parent(&self) {}
    /// Called in the child after a fork.
    fn after_fork_child(&self) {}
    /// The driver stopped serving (see `ironhorse_app::Service::shutdown`).
    fn shutdown(&self) {}

    /// Runs one turn of an event loop whose sessions call the application on the loop's
    /// thread (`--threads 0`; see `ironhorse_app::Service::turn`). Default: `work()`.
    fn turn(&self, work: &mut dyn FnMut()) {
        work()
    }
}
