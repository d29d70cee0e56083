//! Connections that wait for a request, watched by one epoll set instead of a thread each
//! (gunicorn's gthread does the same for idle ones): new connections, idle keep-alive ones,
//! heads and buffered bodies arriving in pieces. [`Watched`] reads what arrives into the
//! session without blocking and gives the connection out once the session has work
//! ([`Session::has_work`]: a whole head, an error to answer, the end of input); it closes
//! those whose deadline (keep-alive, header or body timeout) passes. Sockets stay blocking
//! throughout (the threads that serve them block); the watcher reads with `MSG_DONTWAIT`,
//! so moving a connection in and out costs no `fcntl`. Two drivers schedule
//! over it: the pool's watcher thread ([`Parking`], handing ready connections to pool
//! threads) and the read-ahead driver ([`read_ahead`](super::read_ahead), serving them on
//! the watching thread itself).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use super::blocking::{left_empty, Conn};
use super::{stopping, STOP_CHECK};

/// Tokens from here up belong to the owner's own sources (a waker, listeners); below, to
/// watched connections.
pub(super) const OWN_TOKENS: usize = usize::MAX - 4096;
const WAKE: Token = Token(usize::MAX);

/// A connection that has work, taken out of the set but still registered under `token`
/// (see [`Watched::readmit`] and [`Watched::release`]).
pub(super) struct Ready {
    pub token: usize,
    pub conn: Conn,
}

/// Connections registered (edge-triggered) with one epoll set, read without blocking.
pub(super) struct Watched {
    poll: Poll,
    events: Events,
    conns: HashMap<usize, Conn>,
    next_token: usize,
    last_sweep: Instant,
}

impl Watched {
    pub fn new() -> io::Result<Watched> {
        Ok(Watched {
            poll: Poll::new()?,
            events: Events::with_capacity(256),
            conns: HashMap::new(),
            next_token: 0,
            last_sweep: Instant::now(),
        })
    }

    /// For the owner's sources, registered with tokens from [`OWN_TOKENS`] up.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Starts watching `conn`; one that cannot be is closed. Registering a socket that is
    /// already readable reports it at the next turn.
    pub fn add(&mut self, conn: Conn) {
        self.next_token = (self.next_token + 1) % OWN_TOKENS;
        let fd = conn.stream.as_fd().as_raw_fd();
        let registered = self.registry().register(
            &mut SourceFd(&fd),
            Token(self.next_token),
            Interest::READABLE,
        );
        if registered.is_ok() {
            self.conns.insert(self.next_token, conn);
        }
    }

    /// Watches a connection given out by [`turn`](Self::turn) again, still registered (no
    /// system call): cheaper than [`release`](Self::release) then [`add`](Self::add) for
    /// the thread that watches and serves alike. Its events meanwhile were kept by the
    /// kernel, so nothing that arrived is missed.
    pub fn readmit(&mut self, ready: Ready) {
        self.conns.insert(ready.token, ready.conn);
    }

    /// Stops watching a connection given out by [`turn`](Self::turn), for a thread to serve.
    pub fn release(&self, ready: Ready) -> Conn {
        self.forget(&ready.conn);
        ready.conn
    }

    fn forget(&self, conn: &Conn) {
        let fd = conn.stream.as_fd().as_raw_fd();
        let _ = self.registry().deregister(&mut SourceFd(&fd));
    }

    /// Waits up to `timeout` for input and reads it. Returns the connections that have
    /// work (still registered); events of the owner's sources go to `own`. Every
    /// [`STOP_CHECK`] (every turn when `closing`), connections with work of their own (a
    /// buffered body's timeout, answered 408) are given out too, and expired ones closed:
    /// idle ones once the server stops, while a head in progress may still finish (within
    /// its header timeout), as on every other driver.
    pub fn turn(&mut self, timeout: Duration, closing: bool, own: &mut Vec<Token>) -> Vec<Ready> {
        let mut ready = Vec::new();
        if self.poll.poll(&mut self.events, Some(timeout)).is_err() {
            return ready;
        }
        for event in self.events.iter() {
            let token = event.token().0;
            if token >= OWN_TOKENS {
                own.push(event.token());
                continue;
            }
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            // Edge-triggered: read until the socket has no more, or the session has work.
            let outcome = take_input(conn);
            conn.peer_ended |= event.is_read_closed() || event.is_error();
            if outcome.is_ok() && !conn.session.has_work() {
                continue;
            }
            if let Some(conn) = self.conns.remove(&token) {
                match outcome {
                    Ok(()) => ready.push(Ready { token, conn }),
                    // A failed read closes the connection.
                    Err(_) => self.forget(&conn),
                }
            }
        }
        let now = Instant::now();
        if now - self.last_sweep >= STOP_CHECK || closing {
            self.last_sweep = now;
            self.sweep(now, &mut ready);
        }
        ready
    }

    fn sweep(&mut self, now: Instant, ready: &mut Vec<Ready>) {
        let stop = stopping();
        // Not those waiting for a request: a session that cannot tell a partial request
        // from a whole one (TLS: work whenever asked) waits here for its input.
        let due: Vec<usize> = (self.conns.iter())
            .filter(|(_, conn)| conn.session.has_work() && !conn.session.is_waiting())
            .map(|(token, _)| *token)
            .collect();
        for token in due {
            if let Some(conn) = self.conns.remove(&token) {
                ready.push(Ready { token, conn });
            }
        }
        let registry = self.poll.registry();
        self.conns.retain(|_, conn| {
            let expired = super::connection::is_expired(conn.session.as_mut(), now, stop);
            if expired {
                let fd = conn.stream.as_fd().as_raw_fd();
                let _ = registry.deregister(&mut SourceFd(&fd));
            }
            !expired
        });
    }
}

/// Where pool threads leave idle connections.
pub(super) struct Parking {
    park: Sender<Conn>,
    waker: Arc<mio::Waker>,
    finishing: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Parking {
    /// Starts the watcher thread; connections with input go to `resume`.
    pub fn start(resume: impl Fn(Conn) + Send + 'static) -> std::io::Result<Parking> {
        let watched = Watched::new()?;
        let waker = Arc::new(mio::Waker::new(watched.registry(), WAKE)?);
        let (park, parked) = mpsc::channel();
        let finishing = Arc::new(AtomicBool::new(false));
        let done = finishing.clone();
        let thread = std::thread::Builder::new()
            .name("ih-keepalive".into())
            .spawn(move || watch(watched, parked, &done, resume))?;
        Ok(Parking {
            park,
            waker,
            finishing,
            thread,
        })
    }

    /// A handle for pool threads.
    pub fn handle(&self) -> ParkingHandle {
        ParkingHandle {
            park: self.park.clone(),
            waker: self.waker.clone(),
            finishing: self.finishing.clone(),
        }
    }

    /// Once the server stops: closes idle connections, hands back those whose request
    /// arrives, and returns when none is left.
    pub fn finish(self) {
        self.finishing.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

/// Parks connections; cheap to clone.
#[derive(Clone)]
pub(super) struct ParkingHandle {
    park: Sender<Conn>,
    waker: Arc<mio::Waker>,
    finishing: Arc<AtomicBool>,
}

impl ParkingHandle {
    /// Leaves `conn` to the watcher. Once the server stops, an idle connection is closed,
    /// and one with a request in progress (a head arriving) is given back: the watcher may
    /// be gone before it could serve it, so the caller finishes it.
    pub fn park(&self, conn: Conn) -> Result<(), Conn> {
        let busy = !conn.session.is_idle() && !conn.session.is_waiting();
        if busy && self.finishing.load(Ordering::SeqCst) {
            return Err(conn);
        }
        match self.park.send(conn) {
            Ok(()) => {
                let _ = self.waker.wake();
                Ok(())
            }
            Err(mpsc::SendError(conn)) if busy => Err(conn),
            Err(_) => Ok(()),
        }
    }
}

/// The pool's watcher thread: parked connections in, ready ones out to `resume`.
fn watch(
    mut watched: Watched,
    parked: Receiver<Conn>,
    finishing: &AtomicBool,
    resume: impl Fn(Conn),
) {
    let mut closed = false;
    let mut wakes = Vec::new();
    loop {
        for ready in watched.turn(STOP_CHECK, closed, &mut wakes) {
            resume(watched.release(ready));
        }
        wakes.clear();
        loop {
            match parked.try_recv() {
                Ok(conn) => watched.add(conn),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        closed |= finishing.load(Ordering::SeqCst);
        if closed && watched.is_empty() {
            return;
        }
    }
}

/// Reads what arrived into the connection's session without blocking: until the socket
/// has nothing more, its input ends, or the session has work for a thread (noting whether
/// the socket was left empty: [`Conn::drained`]). `Err`: the connection failed.
fn take_input(conn: &mut Conn) -> io::Result<()> {
    let session = conn.session.as_mut();
    loop {
        let buf = session.read_buf();
        let room = buf.len();
        match ironhorse_sys::recv_now(conn.stream.as_fd(), buf) {
            Ok(n) => {
                session.received(n);
                conn.drained = left_empty(n, room);
                if n == 0 || session.has_work() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.drained = true;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
