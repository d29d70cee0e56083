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
//! given to a pool thread after it reported stays registered but disarmed (its input wakes
//! nobody; one the sweep gives out may still report once, an event the watcher ignores),
//! and the thread that hands it back re-arms it itself, after putting it in the watcher's
//! inbox.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ironhorse_sys::epoll::{EpollSet, Events, Trigger, Wake};

use super::blocking::{left_empty, Conn};
use super::{stopping, STOP_CHECK};

/// Tokens from here up belong to the owner's own sources (a waker, listeners); below, to
/// watched connections.
pub(super) const OWN_TOKENS: usize = usize::MAX - 4096;
const WAKE: usize = usize::MAX;

/// A connection that has work, taken out of the set but still registered under `token`
/// (see [`Watched::readmit`] and [`ParkingHandle::park`]).
pub(super) struct Ready {
    pub token: usize,
    pub conn: Conn,
}

/// Connections registered with one epoll set, read without blocking.
pub(super) struct Watched {
    set: Arc<EpollSet>,
    events: Events,
    conns: HashMap<usize, Conn>,
    /// Connections other threads registered and hand in: a one-shot watch has one, an
    /// edge-triggered watch none.
    inbox: Option<Inbox>,
    next_token: usize,
    last_sweep: Instant,
    /// Whether the server stops ([`stopping`]; a test's own answer in unit tests).
    stop_requested: fn() -> bool,
}

impl Watched {
    /// A watch whose connections never leave the watching thread (edge-triggered).
    pub fn new() -> io::Result<Watched> {
        Ok(Watched::on(Arc::new(EpollSet::new()?), None))
    }

    /// A one-shot watch fed by other threads through `inbox`: they register and re-arm the
    /// connections they hand in on `set` ([`ParkingHandle`]).
    fn fed_by(inbox: Receiver<Handed>, set: Arc<EpollSet>) -> Watched {
        let inbox = Inbox {
            parked: inbox,
            closed: false,
        };
        Watched::on(set, Some(inbox))
    }

    fn on(set: Arc<EpollSet>, inbox: Option<Inbox>) -> Watched {
        Watched {
            set,
            events: Events::with_capacity(256),
            conns: HashMap::new(),
            inbox,
            next_token: 0,
            last_sweep: Instant::now(),
            stop_requested: stopping,
        }
    }

    /// How its connections are registered.
    fn trigger(&self) -> Trigger {
        match self.inbox {
            Some(_) => Trigger::Once,
            None => Trigger::Edge,
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
        debug_assert_eq!(self.trigger(), Trigger::Edge);
        self.next_token = (self.next_token + 1) % OWN_TOKENS;
        let registered = self
            .set
            .add(conn.stream.as_fd(), self.next_token, Trigger::Edge);
        if registered.is_ok() {
            self.conns.insert(self.next_token, conn);
        }
    }

    /// Watches a connection given out by [`turn`](Self::turn) again, still registered (no
    /// system call; edge-triggered watch): the thread that watches and serves alike. Its
    /// events meanwhile were kept by the kernel, so nothing that arrived is missed.
    pub fn readmit(&mut self, ready: Ready) {
        debug_assert_eq!(self.trigger(), Trigger::Edge);
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
            if let Some(inbox) = &mut self.inbox {
                if !self.conns.contains_key(&token) {
                    // Handed in and re-armed by another thread: in the inbox (sent first).
                    inbox.take_into(&mut self.conns);
                }
            }
            // Not held: served by a thread (given out by the sweep while armed), or closed.
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            // Read until the socket has no more, or the session has work.
            let mut outcome = take_input(conn);
            conn.peer_ended |= event.is_read_closed() || event.is_error();
            if outcome.is_ok() && !conn.session.has_work() {
                if self.inbox.is_some() {
                    // It reported once: armed again to hear the rest.
                    outcome = self.set.rearm(conn.stream.as_fd(), token);
                }
                if outcome.is_ok() {
                    continue;
                }
            }
            if let Some(conn) = self.conns.remove(&token) {
                match outcome {
                    // One-shot: disarmed by this report, so its thread's use wakes nobody.
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
        let stop = (self.stop_requested)();
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
        let mut late = Vec::new();
        self.conns.retain(|&token, conn| {
            if !super::connection::is_expired(conn.session.as_mut(), now, stop) {
                return true;
            }
            // At a stop an idle connection closes, unless its next request is there: one
            // handed in just now may not have reported it yet (its thread re-arms it after).
            if stop && take_input(conn).is_ok() && conn.session.has_work() {
                late.push(token);
                return true;
            }
            super::connection::farewell(conn.session.as_mut(), conn.stream.as_fd());
            let _ = set.delete(conn.stream.as_fd());
            false
        });
        for token in late {
            if let Some(conn) = self.conns.remove(&token) {
                ready.push(Ready { token, conn });
            }
        }
    }
}

/// What a [`ParkingHandle`] sends the watcher: a connection under its token, or `None`:
/// forget the token's connection (it could not be armed, so it would never be heard again).
type Handed = (usize, Option<Conn>);

/// The receiving end of [`ParkingHandle`]s.
struct Inbox {
    parked: Receiver<Handed>,
    /// Every sender is gone.
    closed: bool,
}

impl Inbox {
    fn take_into(&mut self, conns: &mut HashMap<usize, Conn>) {
        loop {
            match self.parked.try_recv() {
                Ok((token, Some(conn))) => {
                    conns.insert(token, conn);
                }
                // Closed as it is dropped.
                Ok((token, None)) => {
                    conns.remove(&token);
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

/// Where the accepting thread leaves new connections and pool threads idle ones.
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
        let finishing = Arc::new(Finishing::default());
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
        self.handle.finishing.flag.store(true, Ordering::SeqCst);
        self.wake.wake();
        drop(self.handle);
        let _ = self.thread.join();
    }
}

/// Parks connections; cheap to clone.
#[derive(Clone)]
pub(super) struct ParkingHandle {
    park: Sender<Handed>,
    set: Arc<EpollSet>,
    next_token: Arc<AtomicUsize>,
    finishing: Arc<Finishing>,
}

/// Whether the server stops. A hand-in of a connection with a request in progress checks it
/// and sends under `gate`'s read side, and the watcher takes the write side for its last
/// look at the inbox: such a connection is never sent after that look (it would be dropped
/// unanswered).
#[derive(Default)]
struct Finishing {
    flag: AtomicBool,
    gate: RwLock<()>,
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
        // Keeps the descriptor open until it is armed: once handed in, the connection may be
        // closed (expired) by the watcher, and its number must not be reused by a new
        // connection that this would then arm under the wrong token.
        let stream = conn.stream.clone();
        // Only a request in progress needs the stop check and the send under the gate (off
        // the per-request path): a connection waiting for a request that is sent after the
        // watcher's last look is closed, as a stop closes idle ones.
        let gate = busy.then(|| (self.finishing.gate.read()).unwrap_or_else(|e| e.into_inner()));
        if busy && self.finishing.flag.load(Ordering::SeqCst) {
            return Err(conn);
        }
        let sent = self.park.send((token, Some(conn)));
        drop(gate);
        match sent {
            Ok(()) => {
                let armed = match arming {
                    Arming::Register => self.set.add(stream.as_fd(), token, Trigger::Once),
                    Arming::Rearm => self.set.rearm(stream.as_fd(), token),
                };
                if armed.is_err() {
                    // Never heard again: its client sees the end now, and the watcher drops it.
                    stream.shutdown_both();
                    let _ = self.park.send((token, None));
                }
                Ok(())
            }
            Err(mpsc::SendError((_, Some(conn)))) if busy => Err(conn),
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
fn watch(mut watched: Watched, finishing: &Finishing, resume: impl Fn(Ready)) {
    let mut closed = false;
    let mut wakes = Vec::new();
    loop {
        for ready in watched.turn(STOP_CHECK, closed, &mut wakes) {
            resume(ready);
        }
        wakes.clear();
        closed |= watched.inbox_closed() || finishing.flag.load(Ordering::SeqCst);
        if closed {
            // No hand-in falls between this last look at the inbox and the end.
            let _gate = finishing.gate.write().unwrap_or_else(|e| e.into_inner());
            watched.take_inbox();
            if watched.is_empty() {
                drop(watched);
                return;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::Stream;
    use ironhorse_app::ConnInfo;
    use ironhorse_protocol::hooks::{Detached, Hooks};
    use ironhorse_protocol::output::Output;
    use ironhorse_protocol::session::{Link, Protocol, Session, Step};
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// Lines: a request is a line; idle once it has answered one and holds no input.
    struct Lines;

    struct LineSession {
        buf: Vec<u8>,
        got: Vec<u8>,
        ended: bool,
    }

    impl Protocol for Lines {
        fn session(&self, _conn: ConnInfo, _link: Link) -> Box<dyn Session> {
            Box::new(LineSession {
                buf: vec![0; 1024],
                got: Vec::new(),
                ended: false,
            })
        }
    }

    impl Session for LineSession {
        fn read_buf(&mut self) -> &mut [u8] {
            &mut self.buf
        }
        fn received(&mut self, n: usize) {
            self.ended |= n == 0;
            let got = self.buf[..n].to_vec();
            self.got.extend_from_slice(&got);
        }
        fn advance(&mut self, _out: &mut Output) -> Step {
            self.got.clear();
            Step::Read
        }
        fn read_deadline(&self) -> Option<Instant> {
            Some(Instant::now() + Duration::from_secs(60))
        }
        fn is_idle(&self) -> bool {
            self.got.is_empty()
        }
        fn has_work(&self) -> bool {
            self.ended || self.got.contains(&b'\n')
        }
    }

    /// A one-shot watch with its handle, and a connection (not yet handed in) with its client.
    fn pool_watch() -> (Watched, ParkingHandle, Conn, UnixStream) {
        let set = Arc::new(EpollSet::new().unwrap());
        let (park, parked) = mpsc::channel();
        let watched = Watched::fed_by(parked, set.clone());
        let handle = ParkingHandle {
            park,
            set,
            next_token: Arc::new(AtomicUsize::new(0)),
            finishing: Arc::new(Finishing::default()),
        };
        let (client, server) = UnixStream::pair().unwrap();
        let hooks: Hooks = Arc::new(Detached);
        let conn = Conn::new(Stream::from_unix(server), ConnInfo::unix(), &Lines, &hooks).unwrap();
        (watched, handle, conn, client)
    }

    /// A connection admitted, whose first request the watch gave out and a pool thread
    /// served; its client has sent the next.
    fn served_with_the_next_request_sent() -> (Watched, ParkingHandle, Ready, UnixStream) {
        let (mut watched, handle, conn, mut client) = pool_watch();
        handle.admit(conn).map_err(drop).unwrap();
        client.write_all(b"first\n").unwrap();
        let mut ready = watched.turn(Duration::from_secs(60), false, &mut Vec::new());
        let mut out = ready.pop().expect("the first request is given out");
        out.conn.session.advance(&mut Output::default());
        client.write_all(b"second\n").unwrap();
        (watched, handle, out, client)
    }

    #[test]
    fn a_connection_handed_back_reports_input_that_came_while_it_was_out() {
        let (mut watched, handle, out, _client) = served_with_the_next_request_sent();
        // Disarmed while out: no event.
        assert!(watched
            .turn(Duration::ZERO, false, &mut Vec::new())
            .is_empty());
        // Handed back: the re-arm reports what is already there.
        handle.park(out).map_err(drop).unwrap();
        let ready = watched.turn(Duration::from_secs(60), false, &mut Vec::new());
        assert_eq!(ready.len(), 1);
        assert!(ready[0].conn.session.has_work());
    }

    #[test]
    fn at_a_stop_a_connection_just_handed_back_with_its_next_request_is_served() {
        let (mut watched, handle, Ready { token, conn }, _client) =
            served_with_the_next_request_sent();
        // The server stops while a pool thread hands the idle connection back: it has sent
        // it to the inbox, and not yet re-armed it.
        watched.stop_requested = || true;
        handle.park.send((token, Some(conn))).map_err(drop).unwrap();
        let ready = watched.turn(Duration::ZERO, true, &mut Vec::new());
        assert_eq!(
            ready.len(),
            1,
            "closed by the stop with a request in its socket"
        );
        assert!(ready[0].conn.session.has_work());
    }

    #[test]
    fn at_a_stop_an_idle_connection_with_nothing_sent_is_closed() {
        let (mut watched, handle, conn, mut client) = pool_watch();
        handle.admit(conn).map_err(drop).unwrap();
        watched.stop_requested = || true;
        assert!(watched
            .turn(Duration::ZERO, true, &mut Vec::new())
            .is_empty());
        assert!(watched.is_empty());
        let mut rest = Vec::new();
        assert_eq!(
            std::io::Read::read_to_end(&mut client, &mut rest).unwrap(),
            0
        );
    }
}
