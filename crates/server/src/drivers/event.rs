//! One thread, many connections: a mio (epoll, edge-triggered) loop, the seeds'
//! select/epoll server. Sessions never block here: they are handed bytes as they arrive and
//! their output is drained as the sockets accept it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::accept::{is_fd_exhaustion, is_transient};
use super::{stopping, DriverConfig, STOP_CHECK};
use crate::listener::{MioListener, MioStream};
use crate::output::{Drained, Output};
use crate::session::{Protocol, Session, Step};

/// How long a closing connection may keep sending before we stop discarding its bytes.
const LINGER: Duration = Duration::from_millis(500);

struct Conn {
    stream: MioStream,
    session: Box<dyn Session>,
    out: Output,
    step: Step,
    /// Set once we have half-closed: discard input until EOF or this instant.
    closing_until: Option<Instant>,
}

/// Slot index of a connection ↔ its token (listeners take the first tokens).
struct Slots {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
}

impl Slots {
    fn insert(&mut self, conn: Conn) -> usize {
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        }
    }

    fn remove(&mut self, poll: &Poll, index: usize) {
        if let Some(mut conn) = self.conns[index].take() {
            let _ = poll.registry().deregister(conn.stream.source());
            self.free.push(index);
            self.live -= 1;
        }
    }
}

pub fn run(config: DriverConfig) -> io::Result<()> {
    let _ = ironhorse_sys::raise_nofile_limit();
    let mut poll = Poll::new()?;
    let mut listeners: Vec<MioListener> =
        config.listeners.into_iter().map(|l| l.into_mio()).collect();
    for (i, listener) in listeners.iter_mut().enumerate() {
        let source: &mut dyn mio::event::Source = match listener {
            MioListener::Tcp(l) => l,
            MioListener::Unix(l) => l,
        };
        poll.registry()
            .register(source, Token(i), Interest::READABLE)?;
    }
    let first_conn = listeners.len();
    let mut slots = Slots {
        conns: Vec::new(),
        free: Vec::new(),
        live: 0,
    };
    let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut events = Events::with_capacity(1024);
    let mut last_sweep = Instant::now();
    let mut accepting = true;
    let mut stop_deadline: Option<Instant> = None;

    loop {
        let now = Instant::now();
        let mut timeout = STOP_CHECK.saturating_sub(now - last_sweep);
        if let Some(Reverse((at, _))) = timers.peek() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in events.iter() {
            let token = event.token().0;
            if token < first_conn {
                if accepting {
                    accept_all(
                        &listeners[token],
                        &poll,
                        &mut slots,
                        first_conn,
                        config.max_connections,
                        &*config.protocol,
                    );
                }
            } else if let Some(conn) = slots
                .conns
                .get_mut(token - first_conn)
                .and_then(Option::as_mut)
            {
                if !drive(conn) {
                    slots.remove(&poll, token - first_conn);
                } else if let Step::WaitUntil(at) = conn.step {
                    timers.push(Reverse((at, token - first_conn)));
                }
            }
        }
        // Handler waits that are due.
        let now = Instant::now();
        while let Some(Reverse((at, index))) = timers.peek().copied() {
            if at > now {
                break;
            }
            timers.pop();
            if let Some(conn) = slots.conns[index].as_mut() {
                if matches!(conn.step, Step::WaitUntil(_)) && !drive(conn) {
                    slots.remove(&poll, index);
                }
            }
        }
        // Once per STOP_CHECK: deadlines, lingering closes, resumed accepting, stopping.
        if now - last_sweep >= STOP_CHECK {
            last_sweep = now;
            let stop = stopping();
            if stop && stop_deadline.is_none() {
                stop_deadline = Some(now + config.graceful_timeout);
                accepting = false;
                for listener in &mut listeners {
                    let source: &mut dyn mio::event::Source = match listener {
                        MioListener::Tcp(l) => l,
                        MioListener::Unix(l) => l,
                    };
                    let _ = poll.registry().deregister(source);
                }
            }
            for index in 0..slots.conns.len() {
                let Some(conn) = slots.conns[index].as_ref() else {
                    continue;
                };
                if is_expired(conn, now, stop) {
                    slots.remove(&poll, index);
                }
            }
            if !stop && slots.live < config.max_connections {
                for i in 0..listeners.len() {
                    accept_all(
                        &listeners[i],
                        &poll,
                        &mut slots,
                        first_conn,
                        config.max_connections,
                        &*config.protocol,
                    );
                }
            }
            if stop && (slots.live == 0 || stop_deadline.is_some_and(|d| now >= d)) {
                return Ok(());
            }
        }
    }
}

/// Whether a connection should be dropped at a sweep.
fn is_expired(conn: &Conn, now: Instant, stopping: bool) -> bool {
    if let Some(until) = conn.closing_until {
        return now >= until;
    }
    let waiting_for_input = conn.step == Step::Read && conn.out.is_empty();
    waiting_for_input
        && (conn.session.read_deadline().is_some_and(|d| d <= now)
            || (stopping && conn.session.is_idle()))
}

fn accept_all(
    listener: &MioListener,
    poll: &Poll,
    slots: &mut Slots,
    first: usize,
    max: usize,
    protocol: &dyn Protocol,
) {
    while slots.live < max {
        let accepted = match listener {
            MioListener::Tcp(l) => l.accept().map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let local = s.local_addr().ok();
                (
                    MioStream::Tcp(s),
                    ironhorse_app::ConnInfo {
                        peer: Some(peer),
                        local,
                        scheme: "http",
                    },
                )
            }),
            MioListener::Unix(l) => l
                .accept()
                .map(|(s, _)| (MioStream::Unix(s), ironhorse_app::ConnInfo::unix())),
        };
        match accepted {
            Ok((mut stream, info)) => {
                let registered = poll.registry().register(
                    stream.source(),
                    Token(usize::MAX),
                    Interest::READABLE | Interest::WRITABLE,
                );
                if registered.is_err() {
                    continue;
                }
                let session = protocol.session(info);
                let index = slots.insert(Conn {
                    stream,
                    session,
                    out: Output::default(),
                    step: Step::Read,
                    closing_until: None,
                });
                let conn = slots.conns[index].as_mut().expect("just inserted");
                let _ = poll.registry().reregister(
                    conn.stream.source(),
                    Token(first + index),
                    Interest::READABLE | Interest::WRITABLE,
                );
                if !drive(conn) {
                    slots.remove(poll, index);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if is_transient(&e) => {}
            Err(e) if is_fd_exhaustion(&e) => return,
            Err(_) => return,
        }
    }
}

/// Moves a connection forward as far as its socket allows. Returns `false` to drop it.
fn drive(conn: &mut Conn) -> bool {
    if conn.closing_until.is_some() {
        return discard_input(conn);
    }
    loop {
        match conn.out.drain_into(&mut conn.stream) {
            Ok(Drained::All) => {}
            Ok(Drained::WouldBlock) => return true,
            Err(_) => return false,
        }
        match conn.step {
            Step::Close => {
                if let MioStream::Tcp(s) = &conn.stream {
                    let _ = s.shutdown(std::net::Shutdown::Write);
                }
                conn.closing_until = Some(Instant::now() + LINGER);
                return discard_input(conn);
            }
            Step::WaitUntil(at) if Instant::now() < at => return true,
            Step::WaitUntil(_) | Step::Flush => {}
            Step::Read => match conn.stream.read(conn.session.read_buf()) {
                Ok(n) => conn.session.received(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            },
        }
        conn.step = conn.session.advance(&mut conn.out);
    }
}

/// Reads and drops what a closing peer still sends; `false` once it is done.
fn discard_input(conn: &mut Conn) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match conn.stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
