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
//!
//! The read-ahead driver's connections are registered edge-triggered: they never leave the
//! thread that watches them. The pool's are one-shot ([`Trigger::Once`]): a connection
//! given to a pool thread stays registered but disarmed (its input wakes nobody), and the
//! thread that hands it back re-arms it itself, after putting it in the watcher's inbox.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_sys::epoll::{EpollSet, Events, Trigger, Wake};

use super::blocking::{left_empty, Conn};
use super::{stopping, STOP_CHECK};

/// Tokens from here up belong to the owner's own sources (a waker, listeners); below, to
/// watched connections.
pub(super) const OWN_TOKENS: usize = usize::MAX - 4096;
const WAKE: usize = usize::MAX;

/// A connection that has work, taken out of the set but still registered under `token`
/// (see [`Watched::readmit`] and [`Watched::release`]).
pub(super) struct Ready {
    pub token: usize,
    pub conn: Conn,
}

/// Connections registered with one epoll set, read without blocking.
pub(super) struct Watched {
    set: Arc<EpollSet>,
    trigger: Trigger,
    events: Events,
    conns: HashMap<usize, Conn>,
    /// Connections other threads registered and hand in (one-shot watches only).
    inbox: Option<Inbox>,
    next_token: usize,
    last_sweep: Instant,
}

impl Watched {
    /// A watch whose connections never leave the watching thread (edge-triggered).
    pub fn new() -> io::Result<Watched> {
        Ok(Watched {
            set: Arc::new(EpollSet::new()?),
            trigger: Trigger::Edge,
            events: Events::with_capacity(256),
            conns: HashMap::new(),
            inbox: None,
            next_token: 0,
            last_sweep: Instant::now(),
        })
    }

    /// A one-shot watch fed by other threads through `inbox`: they register and re-arm the
    /// connections they hand in on `set` ([`ParkingHandle`]).
    fn fed_by(inbox: Receiver<(usize, Conn)>, set: Arc<EpollSet>) -> Watched {
        Watched {
            set,
            trigger: Trigger::Once,
            events: Events::with_capacity(256),
            conns: HashMap::new(),
            inbox: Some(Inbox {
                parked: inbox,
                closed: false,
            }),
            next_token: 0,
            last_sweep: Instant::now(),
        }
    }

    /// Watches one of the owner's sources (a listener), edge-triggered, under a token from
    /// [`OWN_TOKENS`] up.
    pub fn watch_own(&self, fd: impl AsFd, token: usize) -> io::Result<()> {
        debug_assert!(token >= OWN_TOKENS);
        self.set.add(fd.as_fd(), token, Trigger::Edge)
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Starts watching `conn` (edge-triggered watch); one that cannot be is closed.
    /// Registering a socket that is already readable reports it at the next turn.
    pub fn add(&mut self, conn: Conn) {
        debug_assert_eq!(self.trigger, Trigger::Edge);
        self.next_token = (self.next_token + 1) % OWN_TOKENS;
        let registered = self
            .set
            .add(conn.stream.as_fd(), self.next_token, self.trigger);
        if registered.is_ok() {
            self.conns.insert(self.next_token, conn);
        }
    }

    /// Watches a connection given out by [`turn`](Self::turn) again, still registered (no
    /// system call; edge-triggered watch): the thread that watches and serves alike. Its
    /// events meanwhile were kept by the kernel, so nothing that arrived is missed.
    pub fn readmit(&mut self, ready: Ready) {
        debug_assert_eq!(self.trigger, Trigger::Edge);
        self.conns.insert(ready.token, ready.conn);
    }

    fn forget(&self, conn: &Conn) {
        let _ = self.set.delete(conn.stream.as_fd());
    }

    /// Takes in what other threads handed in.
    fn take_inbox(&mut self) {
        if let Some(inbox) = &mut self.inbox {
            inbox.take_into(&mut self.conns);
        }
    }

    /// No thread can hand in more.
    fn inbox_closed(&self) -> bool {
        self.inbox.as_ref().is_some_and(|inbox| inbox.closed)
    }

    /// Waits up to `timeout` for input and reads it. Returns the connections that have
    /// work (still registered); events of the owner's sources go to `own`. Every
    /// [`STOP_CHECK`] (every turn when `closing`), connections with work of their own (a
    /// buffered body's timeout, answered 408) are given out too, and expired ones closed:
    /// idle ones once the server stops, while a head in progress may still finish (within
    /// its header timeout), as on every other driver.
    pub fn turn(&mut self, timeout: Duration, closing: bool, own: &mut Vec<usize>) -> Vec<Ready> {
        let mut ready = Vec::new();
        if self.set.wait(&mut self.events, timeout).is_err() {
            return ready;
        }
        for event in self.events.iter() {
            let token = event.token();
            if token >= OWN_TOKENS {
                own.push(token);
                continue;
            }
            if !self.conns.contains_key(&token) {
                // Handed in and re-armed by another thread: in the inbox (sent first).
                if let Some(inbox) = &mut self.inbox {
                    inbox.take_into(&mut self.conns);
                }
            }
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            // Read until the socket has no more, or the session has work.
            let mut outcome = take_input(conn);
            conn.peer_ended |= event.is_read_closed() || event.is_error();
            if outcome.is_ok() && !conn.session.has_work() {
                if self.trigger == Trigger::Once {
                    // It reported once: armed again to hear the rest.
                    outcome = self.set.rearm(conn.stream.as_fd(), token);
                }
                if outcome.is_ok() {
                    continue;
                }
            }
            if let Some(conn) = self.conns.remove(&token) {
                match outcome {
                    // One-shot: disarmed now, so its thread's use wakes nobody.
                    Ok(()) => ready.push(Ready { token, conn }),
                    // A failed read closes the connection.
                    Err(_) => self.forget(&conn),
                }
            }
        }
        self.take_inbox();
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
        let set = &self.set;
        self.conns.retain(|_, conn| {
            let expired = super::connection::is_expired(conn.session.as_mut(), now, stop);
            if expired {
                let _ = set.delete(conn.stream.as_fd());
            }
            !expired
        });
    }
}

/// The receiving end of [`ParkingHandle`]s.
struct Inbox {
    parked: Receiver<(usize, Conn)>,
    /// Every sender is gone.
    closed: bool,
}

impl Inbox {
    fn take_into(&mut self, conns: &mut HashMap<usize, Conn>) {
        loop {
            match self.parked.try_recv() {
                Ok((token, conn)) => {
                    conns.insert(token, conn);
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }
}

/// Where pool threads leave idle connections.
pub(super) struct Parking {
    handle: ParkingHandle,
    wake: Arc<Wake>,
    thread: std::thread::JoinHandle<()>,
}

impl Parking {
    /// Starts the watcher thread; connections with input go to `resume`.
    pub fn start(resume: impl Fn(Ready) + Send + 'static) -> std::io::Result<Parking> {
        let set = Arc::new(EpollSet::new()?);
        let wake = Arc::new(Wake::new()?);
        wake.register(&set, WAKE)?;
        let (park, parked) = mpsc::channel();
        let watched = Watched::fed_by(parked, set.clone());
        let finishing = Arc::new(AtomicBool::new(false));
        let done = finishing.clone();
        let thread = std::thread::Builder::new()
            .name("ih-keepalive".into())
            .spawn(move || watch(watched, &done, resume))?;
        Ok(Parking {
            handle: ParkingHandle {
                park,
                set,
                next_token: Arc::new(AtomicUsize::new(0)),
                finishing,
            },
            wake,
            thread,
        })
    }

    /// A handle for pool threads.
    pub fn handle(&self) -> ParkingHandle {
        self.handle.clone()
    }

    /// Once the server stops: closes idle connections, hands back those whose request
    /// arrives, and returns when none is left.
    pub fn finish(self) {
        self.handle.finishing.store(true, Ordering::SeqCst);
        self.wake.wake();
        drop(self.handle);
        let _ = self.thread.join();
    }
}

/// Parks connections; cheap to clone.
#[derive(Clone)]
pub(super) struct ParkingHandle {
    park: Sender<(usize, Conn)>,
    set: Arc<EpollSet>,
    next_token: Arc<AtomicUsize>,
    finishing: Arc<AtomicBool>,
}

impl ParkingHandle {
    /// Leaves a new connection to the watcher (see [`park`](Self::park)).
    pub fn admit(&self, conn: Conn) -> Result<(), Conn> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed) % OWN_TOKENS;
        self.hand_in(token, conn, Arming::Register)
    }

    /// Leaves a connection the watcher gave out back to it. Once the server stops, an idle
    /// connection is closed, and one with a request in progress (a head arriving) is given
    /// back: the watcher may be gone before it could serve it, so the caller finishes it.
    pub fn park(&self, ready: Ready) -> Result<(), Conn> {
        self.hand_in(ready.token, ready.conn, Arming::Rearm)
    }

    /// Puts `conn` in the watcher's inbox, then arms its registration: an event it reports
    /// finds the connection there. No wake-up: the watcher takes the inbox in at its next
    /// event or turn, and a connection's input is an event.
    fn hand_in(&self, token: usize, conn: Conn, arming: Arming) -> Result<(), Conn> {
        let busy = !conn.session.is_idle() && !conn.session.is_waiting();
        if busy && self.finishing.load(Ordering::SeqCst) {
            return Err(conn);
        }
        // Keeps the descriptor open until it is armed: once handed in, the connection may be
        // closed (expired) by the watcher, and its number must not be reused by a new
        // connection that this would then arm under the wrong token.
        let stream = conn.stream.clone();
        match self.park.send((token, conn)) {
            Ok(()) => {
                let armed = match arming {
                    Arming::Register => self.set.add(stream.as_fd(), token, Trigger::Once),
                    Arming::Rearm => self.set.rearm(stream.as_fd(), token),
                };
                if armed.is_err() {
                    // Never heard again: its client sees the end now, the watcher drops it
                    // at its deadline.
                    stream.shutdown_both();
                }
                Ok(())
            }
            Err(mpsc::SendError((_, conn))) if busy => Err(conn),
            Err(_) => Ok(()),
        }
    }
}

/// How [`ParkingHandle::hand_in`] arms a connection's registration.
enum Arming {
    /// A new connection: registered.
    Register,
    /// Given out by the watcher: registered, disarmed since it reported.
    Rearm,
}

/// The pool's watcher thread: handed-in connections in, ready ones out to `resume`.
fn watch(mut watched: Watched, finishing: &AtomicBool, resume: impl Fn(Ready)) {
    let mut closed = false;
    let mut wakes = Vec::new();
    loop {
        for ready in watched.turn(STOP_CHECK, closed, &mut wakes) {
            resume(ready);
        }
        wakes.clear();
        closed |= watched.inbox_closed() || finishing.load(Ordering::SeqCst);
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
