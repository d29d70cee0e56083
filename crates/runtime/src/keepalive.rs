//! The connections of a thread pool that wait for a request, watched by one epoll thread
//! instead of a pool thread each (gunicorn's gthread does the same for idle ones): new
//! connections, idle keep-alive ones and heads arriving in pieces. The watcher reads what
//! arrives into the session without blocking and hands the connection to the pool once the
//! session has work for a thread ([`Session::has_work`]: a whole head, an error to answer,
//! the end of input); it closes those whose deadline (keep-alive or header timeout) passes.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::blocking::Conn;
use super::{stopping, STOP_CHECK};
use ironhorse_protocol::session::Session;

const WAKE: Token = Token(usize::MAX);

/// Where pool threads leave idle connections.
pub(super) struct Parking {
    park: Sender<Conn>,
    waker: Arc<mio::Waker>,
    finishing: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Parking {
    /// Starts the watcher; connections with input go to `resume`.
    pub fn start(resume: impl Fn(Conn) + Send + 'static) -> std::io::Result<Parking> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
        let (park, parked) = mpsc::channel();
        let finishing = Arc::new(AtomicBool::new(false));
        let done = finishing.clone();
        let thread = std::thread::Builder::new()
            .name("ih-keepalive".into())
            .spawn(move || watch(poll, parked, &done, resume))?;
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

fn watch(mut poll: Poll, parked: Receiver<Conn>, finishing: &AtomicBool, resume: impl Fn(Conn)) {
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next_token = 0usize;
    let mut events = Events::with_capacity(256);
    let mut last_sweep = Instant::now();
    let mut closed = false;
    loop {
        if poll.poll(&mut events, Some(STOP_CHECK)).is_err() {
            continue;
        }
        loop {
            match parked.try_recv() {
                Ok(conn) => {
                    next_token = (next_token + 1) % (usize::MAX - 1);
                    let fd = conn.stream.as_fd().as_raw_fd();
                    // Watched sockets are read without blocking until they go back.
                    // Registering a socket that is already readable reports it at once.
                    if conn.stream.set_nonblocking(true).is_ok()
                        && poll
                            .registry()
                            .register(&mut SourceFd(&fd), Token(next_token), Interest::READABLE)
                            .is_ok()
                    {
                        conns.insert(next_token, conn);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        for event in events.iter() {
            let token = event.token().0;
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            // Edge-triggered: read until the socket has no more, or the session has work.
            let outcome = take_input(&mut conn.stream, conn.session.as_mut());
            if outcome.is_ok() && !conn.session.has_work() {
                continue;
            }
            if let Some(conn) = conns.remove(&token) {
                // A failed read closes the connection (dropped here).
                hand_back(&poll, conn, outcome.is_ok(), &resume);
            }
        }
        closed |= finishing.load(Ordering::SeqCst);
        let now = Instant::now();
        if now - last_sweep >= STOP_CHECK || closed {
            last_sweep = now;
            let stop = stopping();
            // Sessions with deadlines of their own (a buffered body's timeout, answered
            // 408) may have work without input: a thread answers.
            let due: Vec<usize> = (conns.iter())
                .filter(|(_, conn)| conn.session.has_work())
                .map(|(token, _)| *token)
                .collect();
            for token in due {
                if let Some(conn) = conns.remove(&token) {
                    hand_back(&poll, conn, true, &resume);
                }
            }
            conns.retain(|_, conn| {
                // Stopping: idle connections close; a head in progress may still finish
                // (within its header timeout), as on every other driver.
                let expired = super::connection::is_expired(conn.session.as_mut(), now, stop);
                if expired {
                    let fd = conn.stream.as_fd().as_raw_fd();
                    let _ = poll.registry().deregister(&mut SourceFd(&fd));
                }
                !expired
            });
        }
        if closed && conns.is_empty() {
            return;
        }
    }
}

/// Stops watching `conn`; gives it to the pool (blocking again) when `keep`, else closes it.
fn hand_back(poll: &Poll, conn: Conn, keep: bool, resume: &impl Fn(Conn)) {
    let fd = conn.stream.as_fd().as_raw_fd();
    let _ = poll.registry().deregister(&mut SourceFd(&fd));
    if keep && conn.stream.set_nonblocking(false).is_ok() {
        resume(conn);
    }
}

/// Reads what arrived into `session` without blocking: until the socket has nothing more,
/// its input ends, or the session has work for a thread. `Err`: the connection failed.
fn take_input(stream: &mut impl Read, session: &mut dyn Session) -> io::Result<()> {
    loop {
        match stream.read(session.read_buf()) {
            Ok(n) => {
                session.received(n);
                if n == 0 || session.has_work() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
