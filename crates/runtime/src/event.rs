//! One thread, many connections: a mio (epoll, edge-triggered) loop, the seeds'
//! select/epoll server. Sessions never block here: they are handed bytes as they arrive and
//! their output is drained as the sockets accept it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ironhorse_app::ConnInfo;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::os::fd::{AsFd, AsRawFd};

use super::connection::{self, accept_failed, AcceptFailure, Draining, Linger};
use super::{stopping, DriverConfig, STOP_CHECK};
use crate::listener::{Listener, Stream};
use ironhorse_protocol::hooks::Hooks;
use ironhorse_protocol::offload_pool::Batch;
use ironhorse_protocol::output::{Drained, Output};
use ironhorse_protocol::session::{Link, Protocol, Session, Step, Waker};

/// The token of the cross-thread waker (listeners and connections take the low ones).
const WAKE_TOKEN: Token = Token(usize::MAX);

/// Connections whose background work asked for attention: (slot, generation).
type WakeQueue = Arc<Mutex<Vec<(usize, u64)>>>;

struct Conn {
    /// Distinguishes this connection from earlier ones in the same slot.
    generation: u64,
    stream: Stream,
    /// Whether the socket may have unread input (edge-triggered readiness, tracked).
    readable: bool,
    /// Whether the peer's end of input (or an error) was announced.
    peer_closed: bool,
    session: Box<dyn Session>,
    out: Output,
    step: Step,
    /// Set once we have half-closed: discarding what the peer still sends.
    closing: Option<Linger>,
    /// Output held until the end of the loop's turn (`--threads 0`, see `defer_sends`).
    unsent: bool,
    /// Bytes arrived since the last sweep: not idle, so its buffers stay.
    active: bool,
}

/// Slot index of a connection ↔ its token (listeners take the first tokens).
struct Slots {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    generations: u64,
    wakes: WakeQueue,
    mio_waker: Arc<mio::Waker>,
    /// The sessions' jobs for the application threads, handed over after each turn.
    batch: Arc<Batch>,
}

impl Slots {
    fn insert(
        &mut self,
        stream: Stream,
        protocol: &dyn Protocol,
        info: ConnInfo,
        hooks: &Hooks,
    ) -> usize {
        self.live += 1;
        self.generations += 1;
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let generation = self.generations;
        let (wakes, mio_waker) = (self.wakes.clone(), self.mio_waker.clone());
        let waker: Waker = Arc::new(move || {
            let mut queue = wakes.lock().unwrap_or_else(|e| e.into_inner());
            // The loop takes the whole queue per wake-up: one wake per batch is enough.
            let first = queue.is_empty();
            queue.push((index, generation));
            drop(queue);
            if first {
                let _ = mio_waker.wake();
            }
        });
        let session = protocol.session(
            info,
            Link {
                waker,
                executor: None,
                hooks: hooks.clone(),
                batch: Some(self.batch.clone()),
            },
        );
        self.conns[index] = Some(Conn {
            generation,
            stream,
            readable: true,
            peer_closed: false,
            session,
            out: Output::default(),
            step: Step::Read,
            closing: None,
            unsent: false,
            active: true,
        });
        index
    }

    fn remove(&mut self, poll: &Poll, index: usize) {
        if let Some(conn) = self.conns[index].take() {
            deregister(poll, &conn.stream);
            self.free.push(index);
            self.live -= 1;
        }
    }
}

/// The loop's state between turns.
struct EventLoop {
    config: DriverConfig,
    poll: Poll,
    listeners: Vec<Listener>,
    /// The token of slot 0 (listeners take the tokens below).
    first_conn: usize,
    slots: Slots,
    /// Handler waits (`Step::WaitUntil`), earliest first.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// One read buffer for every connection: idle ones then own no buffer at all.
    scratch: Vec<u8>,
    last_sweep: Instant,
    accepting: bool,
    draining: Option<Draining>,
    /// Whether this thread stopped preempting the application threads it feeds.
    yields_to_app: bool,
    /// `--threads 0`: the app runs in `advance` on this thread, so each response would leave
    /// (and wake its client) right after its app call; held instead until every ready
    /// connection had its turn, the sends leave together, as an app thread's batch does.
    defer_sends: bool,
    /// Connections whose output waits for the end of the turn.
    unsent: Vec<usize>,
}

/// One turn: wait for events, handle them, hand the batch's jobs over, run the handler
/// waits that are due, and once per [`STOP_CHECK`] sweep; until a stop has drained.
pub fn run(config: DriverConfig) -> io::Result<()> {
    let _ = ironhorse_sys::raise_nofile_limit();
    let mut lp = EventLoop::new(config)?;
    let mut events = Events::with_capacity(1024);
    let protocol = lp.config.protocol.clone();
    // The application runs in the turn's `advance` calls (`--threads 0`): what it takes per
    // call (the GIL) is kept across them, and let go before the sends.
    let app_on_loop = lp.defer_sends;
    loop {
        lp.wait(&mut events)?;
        let mut handle_events = || {
            for event in events.iter() {
                lp.on_event(event);
            }
        };
        if app_on_loop {
            protocol.turn(&mut handle_events);
        } else {
            handle_events();
        }
        lp.send_unsent();
        let now = Instant::now();
        lp.run_due_timers(now);
        // Requests for the application threads leave together, after this batch.
        if lp.slots.batch.flush_counted() > 0 && !lp.yields_to_app {
            lp.yield_to_app_threads();
        }
        if now - lp.last_sweep >= STOP_CHECK && lp.sweep(now) {
            return Ok(());
        }
    }
}

impl EventLoop {
    fn new(mut config: DriverConfig) -> io::Result<EventLoop> {
        let defer_sends = config.threads == 0;
        let poll = Poll::new()?;
        let listeners: Vec<Listener> = std::mem::take(&mut config.listeners);
        for (i, listener) in listeners.iter().enumerate() {
            register(&poll, listener, Token(i), Interest::READABLE)?;
        }
        let mio_waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        Ok(EventLoop {
            config,
            first_conn: listeners.len(),
            poll,
            listeners,
            slots: Slots {
                conns: Vec::new(),
                free: Vec::new(),
                live: 0,
                generations: 0,
                wakes: WakeQueue::default(),
                mio_waker,
                batch: Arc::default(),
            },
            timers: BinaryHeap::new(),
            scratch: vec![0u8; 64 * 1024],
            last_sweep: Instant::now(),
            accepting: true,
            draining: None,
            yields_to_app: false,
            defer_sends,
            unsent: Vec::new(),
        })
    }

    /// Once the loop hands requests to application threads, or is first woken by another
    /// thread (an ASGI loop, a WSGI thread): it stops preempting them when it wakes
    /// (`SCHED_BATCH`); a loop serving only files keeps the default policy. Otherwise each request arriving while Python runs on the
    /// same core preempts it: a context switch per request, and an app with a large working
    /// set (Flask) runs measurably slower for the caches it loses (docs/BENCHMARKS.md, issue
    /// 15). The loop still runs as soon as the app threads wait, or at the next tick.
    fn yield_to_app_threads(&mut self) {
        self.yields_to_app = true;
        super::yield_to_app_threads(&*self.config.hooks);
    }

    /// Waits for events until the next due timer or sweep.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        self.config.hooks.beat();
        let now = Instant::now();
        let mut timeout = STOP_CHECK.saturating_sub(now - self.last_sweep);
        if let Some(Reverse((at, _))) = self.timers.peek() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        match self.poll.poll(events, Some(timeout)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }

    fn on_event(&mut self, event: &mio::event::Event) {
        let token = event.token().0;
        if event.token() == WAKE_TOKEN {
            if !self.yields_to_app {
                // Other threads work for this loop's sessions (app threads, the ASGI loop).
                self.yield_to_app_threads();
            }
            self.advance_woken();
        } else if token < self.first_conn {
            if self.accepting {
                self.accept(token);
            }
        } else if let Some(conn) = self
            .slots
            .conns
            .get_mut(token - self.first_conn)
            .and_then(Option::as_mut)
        {
            conn.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
            conn.peer_closed |= event.is_read_closed() || event.is_error();
            conn.unsent = self.defer_sends;
            if !drive(conn, &mut self.scratch) {
                self.slots.remove(&self.poll, token - self.first_conn);
            } else if conn.unsent {
                self.unsent.push(token - self.first_conn);
            } else if let Step::WaitUntil(at) = conn.step {
                self.timers.push(Reverse((at, token - self.first_conn)));
            }
        }
    }

    /// Sends what the turn's connections held back (see `defer_sends`).
    fn send_unsent(&mut self) {
        for index in std::mem::take(&mut self.unsent) {
            let Some(conn) = self.slots.conns[index].as_mut() else {
                continue;
            };
            if !std::mem::take(&mut conn.unsent) {
                continue;
            }
            if !drive(conn, &mut self.scratch) {
                self.slots.remove(&self.poll, index);
            } else if let Step::WaitUntil(at) = conn.step {
                self.timers.push(Reverse((at, index)));
            }
        }
    }

    /// Advances the sessions whose background work asked for attention.
    fn advance_woken(&mut self) {
        let woken =
            std::mem::take(&mut *self.slots.wakes.lock().unwrap_or_else(|e| e.into_inner()));
        for (index, generation) in woken {
            let Some(conn) = self.slots.conns[index]
                .as_mut()
                .filter(|c| c.generation == generation)
            else {
                continue;
            };
            if conn.closing.is_some() || conn.step == Step::Close {
                continue;
            }
            conn.step = conn.session.advance(&mut conn.out);
            if !drive(conn, &mut self.scratch) {
                self.slots.remove(&self.poll, index);
            }
        }
    }

    fn accept(&mut self, listener: usize) {
        accept_all(
            &mut self.scratch,
            &self.listeners[listener],
            &self.poll,
            &mut self.slots,
            self.first_conn,
            &self.config,
        );
    }

    /// Handler waits that are due.
    fn run_due_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, index))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(conn) = self.slots.conns[index].as_mut() {
                if matches!(conn.step, Step::WaitUntil(_)) && !drive(conn, &mut self.scratch) {
                    self.slots.remove(&self.poll, index);
                }
            }
        }
    }

    /// Once per [`STOP_CHECK`]: deadlines, lingering closes, idle memory, resumed accepting,
    /// stopping. Whether the loop is done (stopped and drained, or out of time).
    fn sweep(&mut self, now: Instant) -> bool {
        self.last_sweep = now;
        let stop = stopping();
        if stop && self.draining.is_none() {
            self.draining = Some(Draining::begin(self.config.graceful_timeout));
            self.accepting = false;
            // Closed, not only left alone: the kernel would go on completing handshakes
            // into their backlog, and reset those clients when the drain ends, up to the
            // graceful timeout later. Closed, a client is refused at once. Under a master
            // these are this worker's copies: the socket stays open in the master and the
            // other workers, which accept (`--reuse-port`: the kernel stops routing to this
            // worker's own socket). The listeners' tokens stay reserved.
            for listener in std::mem::take(&mut self.listeners) {
                deregister(&self.poll, &listener);
            }
        }
        for index in 0..self.slots.conns.len() {
            let Some(conn) = self.slots.conns[index].as_mut() else {
                continue;
            };
            if is_expired(conn, now, stop) {
                if conn.closing.is_none() {
                    connection::farewell(conn.session.as_mut(), conn.stream.as_fd());
                }
                self.slots.remove(&self.poll, index);
                continue;
            }
            if conn.step == Step::Read && !conn.readable && !conn.active {
                // Idle since at least the last sweep: it keeps no buffers meanwhile. (A busy
                // connection that merely waits for its next request at this instant keeps
                // them: dropping them every sweep cost a rebuild per sweep and connection.)
                conn.session.release_idle_memory();
                conn.out.release_idle_memory();
            }
            conn.active = false;
        }
        if !stop && self.slots.live < self.config.max_connections {
            for listener in 0..self.listeners.len() {
                self.accept(listener);
            }
        }
        // What the sweep's accepts handed to the application threads.
        self.slots.batch.flush();
        self.draining
            .as_ref()
            .is_some_and(|d| d.is_over(self.slots.live, now))
    }
}

/// Registers a socket with mio by descriptor, whatever its kind.
fn register(poll: &Poll, socket: &impl AsFd, token: Token, interest: Interest) -> io::Result<()> {
    let fd = socket.as_fd().as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&fd), token, interest)
}

fn deregister(poll: &Poll, socket: &impl AsFd) {
    let fd = socket.as_fd().as_raw_fd();
    let _ = poll.registry().deregister(&mut SourceFd(&fd));
}

/// Whether a connection should be dropped at a sweep.
fn is_expired(conn: &mut Conn, now: Instant, stopping: bool) -> bool {
    if let Some(linger) = &conn.closing {
        return linger.is_over(now);
    }
    let waiting_for_input = conn.step == Step::Read && conn.out.is_empty();
    waiting_for_input && connection::is_expired(conn.session.as_mut(), now, stopping)
}

fn accept_all(
    scratch: &mut [u8],
    listener: &Listener,
    poll: &Poll,
    slots: &mut Slots,
    first: usize,
    config: &DriverConfig,
) {
    let (max, protocol, hooks) = (config.max_connections, &*config.protocol, &config.hooks);
    while slots.live < max {
        match listener.accept_as(false) {
            Ok((stream, info)) => {
                let index = slots.insert(stream, protocol, info, hooks);
                let conn = slots.conns[index].as_mut().expect("just inserted");
                let interest = Interest::READABLE | Interest::WRITABLE;
                if register(poll, &conn.stream, Token(first + index), interest).is_err() {
                    slots.conns[index] = None;
                    slots.free.push(index);
                    slots.live -= 1;
                    continue;
                }
                if !drive(conn, scratch) {
                    slots.remove(poll, index);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // Backing off: the next sweep accepts again.
            Err(e) => match accept_failed(&e, &**hooks) {
                AcceptFailure::Skip => {}
                AcceptFailure::BackOff | AcceptFailure::Fatal => return,
            },
        }
    }
}

/// Moves a connection forward as far as its socket allows (with `unsent` set: until it has
/// output to send, which the caller sends at the end of the turn). Returns `false` to drop it.
fn drive(conn: &mut Conn, scratch: &mut [u8]) -> bool {
    if conn.closing.is_some() {
        return discard_input(conn);
    }
    loop {
        if conn.unsent && !conn.out.is_empty() {
            // Held for the end of the turn; `unsent` stays set for the caller to see.
            return true;
        }
        match conn.out.drain_into(&mut &conn.stream) {
            Ok(Drained::All) => {}
            Ok(Drained::WouldBlock) => return true,
            Err(_) => return false,
        }
        match conn.step {
            Step::Close => {
                conn.closing = Some(Linger::start(&conn.stream, conn.session.ends_in_reset()));
                return discard_input(conn);
            }
            Step::Upgrade => match conn.session.hand_off() {
                Some(next) => conn.session = next,
                None => {
                    conn.step = Step::Close;
                    continue;
                }
            },
            Step::WaitUntil(at) if Instant::now() < at => return true,
            Step::Pending => return true,
            Step::WaitUntil(_) | Step::Flush => {}
            // Edge-triggered: after a short read the socket is drained, and new bytes will
            // bring a new event; trying again would only earn an EAGAIN.
            Step::Read if !conn.readable => return true,
            Step::Read => {
                let room = scratch.len();
                match (&conn.stream).read(scratch) {
                    Ok(n) => {
                        // A pending end of input announces itself only once: read to it.
                        conn.readable = n == room || conn.peer_closed;
                        conn.active = true;
                        if n == 0 {
                            conn.session.received(0);
                        } else {
                            conn.session.receive(&scratch[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        conn.readable = false;
                        return true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
        }
        conn.step = conn.session.advance(&mut conn.out);
    }
}

/// Reads and drops what a closing peer still sends; `false` once it is done.
fn discard_input(conn: &mut Conn) -> bool {
    let Conn {
        closing, stream, ..
    } = conn;
    closing
        .as_mut()
        .is_some_and(|linger| linger.discard(|buf| (&*stream).read(buf)))
}
