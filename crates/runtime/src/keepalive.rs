//! Idle keep-alive connections of a thread pool, watched by one epoll thread instead of a
//! pool thread each (gunicorn's gthread does the same): a connection goes back to the pool
//! when its next request arrives, and is closed when its keep-alive deadline passes.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::blocking::Conn;
use super::{stopping, STOP_CHECK};

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
}

impl ParkingHandle {
    pub fn park(&self, conn: Conn) {
        // Once the watcher is gone, an idle connection of a stopping server is closed.
        if self.park.send(conn).is_ok() {
            let _ = self.waker.wake();
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
                    // Registering a socket that is already readable reports it at once.
                    if poll
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
            if let Some(conn) = conns.remove(&event.token().0) {
                let fd = conn.stream.as_fd().as_raw_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
                resume(conn);
            }
        }
        closed |= finishing.load(Ordering::SeqCst);
        let now = Instant::now();
        if now - last_sweep >= STOP_CHECK || closed {
            last_sweep = now;
            let stop = stopping();
            conns.retain(|_, conn| {
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
