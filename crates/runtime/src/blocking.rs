//! One connection served to its end on a blocking socket. Jobs the session hands over
//! (a blocking application's request) run inline on this thread: no hand-off to another
//! thread per request.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;

use super::connection::{self, Linger, LiveTicket};
use super::held::Holder;
use super::{stopping, STOP_CHECK};
use crate::listener::Stream;
use ironhorse_protocol::hooks::{Hooks, WorkerHooks};
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::{
    Cutoff, Executor, Job, JobHost, Link, Protocol, Session, Step, Waker,
};

/// Longest a client may stall our writes before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves a new connection on `stream` until it closes, the peer goes away, a read deadline
/// passes, or a stop is requested while the connection is idle.
pub fn serve_connection(stream: Stream, info: ConnInfo, protocol: &dyn Protocol, hooks: &Hooks) {
    if let Some(conn) = Conn::new(stream, info, protocol, hooks) {
        serve(conn, None);
    }
}

/// A connection on a blocking socket, with what serving it needs.
pub(crate) struct Conn {
    /// Shared with the thread's [`Holder`] while a response is held.
    pub stream: Arc<Stream>,
    pub session: Box<dyn Session>,
    /// Where small responses wait to leave with others; `None`: sent at once.
    holder: Option<Arc<Holder>>,
    /// The last read found the socket empty (a short read, or nothing at all): whatever
    /// arrives next brings a new readiness event, so asking again before handing the
    /// connection back to a watcher would only earn an `EAGAIN`. Never set by an end of
    /// input. (A client sending TCP urgent data, or file descriptors over a Unix socket,
    /// can stop a read short with more behind it; only its own connection then waits for
    /// a timeout.)
    pub drained: bool,
    /// A watcher's event announced the peer's end or an error: a later short read stops
    /// before it, and an edge-triggered watch reports it no more, so reading again is never
    /// skipped.
    pub peer_ended: bool,
    hooks: Hooks,
    /// The job the session handed over, run after `advance` returns.
    jobs: Arc<InlineJobs>,
    /// Where this thread sleeps on [`Step::Pending`] until the session's waker is called.
    parker: Arc<Parker>,
    /// Counts the connection against a cap until it drops (a pool's `max_connections`).
    _counted: Option<LiveTicket>,
}

impl Conn {
    pub fn new(
        stream: Stream,
        info: ConnInfo,
        protocol: &dyn Protocol,
        hooks: &Hooks,
    ) -> Option<Conn> {
        // Reads wake every STOP_CHECK so deadlines and stop requests are noticed without a
        // timer per connection.
        stream.set_read_timeout(Some(STOP_CHECK)).ok()?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT)).ok()?;
        let parker = Arc::new(Parker::default());
        let waker: Waker = {
            let parker = parker.clone();
            Arc::new(move || parker.unpark())
        };
        let jobs = Arc::new(InlineJobs::default());
        let link = Link {
            waker,
            executor: Some(jobs.clone()),
            hooks: hooks.clone(),
            batch: None,
        };
        let session = protocol.session(info, link);
        Some(Conn {
            stream: Arc::new(stream),
            session,
            holder: None,
            drained: false,
            peer_ended: false,
            hooks: hooks.clone(),
            jobs,
            parker,
            _counted: None,
        })
    }

    /// Counts this connection with `ticket` until it ends.
    pub fn counted(mut self, ticket: LiveTicket) -> Conn {
        self._counted = Some(ticket);
        self
    }

    /// Sends this connection's responses through `holder` (a thread serving many ready
    /// connections in turn).
    pub fn hold_with(mut self, holder: &Arc<Holder>) -> Conn {
        self.holder = Some(holder.clone());
        self
    }
}

/// Sends `out` to `stream` (blocking: all of it, unless the write timeout passes), or
/// leaves it with `holder`.
fn send(out: &mut Output, stream: &Arc<Stream>, holder: Option<&Arc<Holder>>) -> io::Result<()> {
    match holder {
        Some(holder) => holder.send(stream, out),
        None => out.drain_into(&mut &**stream).map(drop),
    }
}

/// Sends what `holder` keeps for `stream`: before waiting for the client, or closing.
fn release(stream: &Arc<Stream>, holder: Option<&Arc<Holder>>) -> io::Result<()> {
    holder.map_or(Ok(()), |holder| holder.release(stream))
}

/// Whether a read of `n` bytes into `room` left the socket empty (see [`Conn::drained`]):
/// a short read did; a full one may not have, and an end of input (0) brings no new event.
pub(crate) fn left_empty(n: usize, room: usize) -> bool {
    n > 0 && n < room
}

/// The executor of blocking drivers: keeps the job for the connection's own thread.
#[derive(Default)]
struct InlineJobs(Mutex<Option<Job>>);

impl Executor for InlineJobs {
    fn execute(&self, job: Job) {
        let previous = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(job);
        debug_assert!(previous.is_none(), "a session runs one job at a time");
    }
}

impl InlineJobs {
    fn take(&self) -> Option<Job> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What a job running on the connection's thread may do while it waits.
struct InlineHost<'a> {
    hooks: &'a dyn WorkerHooks,
    drained: &'a mut bool,
    stream: &'a Arc<Stream>,
    holder: Option<&'a Arc<Holder>>,
    session: &'a mut dyn Session,
    out: &'a mut Output,
}

impl JobHost for InlineHost<'_> {
    fn pump(&mut self, want_input: bool) -> Option<io::Result<()>> {
        Some(self.turn(want_input))
    }

    fn cutoff(&self) -> Option<Cutoff> {
        // Through the session's layers: under TLS the last words are encrypted.
        let raw = cutoff_for(self.stream.clone(), self.holder.cloned());
        Some(self.session.wrap_cutoff(raw))
    }
}

impl InlineHost<'_> {
    /// One turn of the connection: advance, send, and maybe wait for input.
    fn turn(&mut self, want_input: bool) -> io::Result<()> {
        let step = self.session.advance(self.out);
        send(self.out, self.stream, self.holder)?;
        match step {
            Step::Close => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection is closing",
            )),
            // Back to the job at each periodic wake-up too: its next turn lets the session
            // keep deadlines of its own (the body timeout).
            Step::Read if want_input => {
                release(self.stream, self.holder)?;
                *self.drained = read_once(self.stream, self.session, self.hooks, Wait::Yes)?;
                Ok(())
            }
            Step::WaitUntil(at) => {
                release(self.stream, self.holder)?;
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                Ok(())
            }
            // No switch of protocol happens while a job runs (the request is in progress).
            Step::Read | Step::Flush | Step::Pending | Step::Upgrade => Ok(()),
        }
    }
}

/// Runs `job` here, lending it the connection.
fn run_inline(job: Job, conn: &mut Conn, out: &mut Output) {
    let mut host = InlineHost {
        hooks: &*conn.hooks,
        drained: &mut conn.drained,
        stream: &conn.stream,
        holder: conn.holder.as_ref(),
        session: conn.session.as_mut(),
        out,
    };
    // A panicking application must not take the thread with it; the session sees its job
    // gone and answers 500.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut host)));
}

/// What became of a connection.
pub(crate) enum Served {
    Done,
    /// Between requests with no input waiting, or in the middle of a head whose rest has
    /// not come: the caller may watch it elsewhere (a pool thread must not sit on a
    /// trickling head, nor on an idle keep-alive connection while others wait).
    Idle(Conn),
}

/// Serves `conn`. With `yield_when`, returns it as soon as it waits for the rest of a head,
/// or is idle with nothing to read while `yield_when()` says others wait for this thread
/// (checked at every wake-up).
pub(crate) fn serve(mut conn: Conn, yield_when: Option<&dyn Fn() -> bool>) -> Served {
    let mut out = Output::default();
    loop {
        let step = conn.session.advance(&mut out);
        let holder = conn.holder.as_ref();
        if send(&mut out, &conn.stream, holder).is_err() {
            return Served::Done;
        }
        if let Some(job) = conn.jobs.take() {
            run_inline(job, &mut conn, &mut out);
            continue;
        }
        // Before this thread waits on anything but the next ready connection, or closes,
        // what it holds for the connection leaves.
        if !matches!(step, Step::Flush | Step::Read) && release(&conn.stream, holder).is_err() {
            return Served::Done;
        }
        match step {
            Step::Flush => {}
            Step::WaitUntil(at) => std::thread::sleep(at.saturating_duration_since(Instant::now())),
            Step::Pending => conn.parker.park(STOP_CHECK),
            Step::Upgrade => match conn.session.hand_off() {
                Some(next) => conn.session = next,
                None => {
                    close_gracefully(&conn.stream, false);
                    return Served::Done;
                }
            },
            Step::Close => {
                close_gracefully(&conn.stream, conn.session.ends_in_reset());
                return Served::Done;
            }
            Step::Read => {
                if let Some(others_wait) = yield_when {
                    // A head still arriving goes back to the watcher at once (a client
                    // trickling it must not hold this thread); an idle keep-alive
                    // connection only when others wait for the thread.
                    let session = conn.session.as_ref();
                    let waiting = session.is_waiting();
                    let give_back = (waiting && others_wait()) || (!waiting && !session.has_work());
                    if give_back {
                        if conn.drained && !conn.peer_ended {
                            return Served::Idle(conn);
                        }
                        // What is already there is served here; with nothing, the thread goes.
                        match read_once(&conn.stream, conn.session.as_mut(), &*conn.hooks, Wait::No)
                        {
                            Ok(drained) => conn.drained = drained,
                            Err(_) => return Served::Done,
                        }
                        continue;
                    }
                }
                // Back to `advance` after each read and each periodic wake-up, so that the
                // session keeps deadlines of its own (a buffered body's timeout, answered 408).
                if release(&conn.stream, holder).is_err() {
                    return Served::Done;
                }
                match read_once(&conn.stream, conn.session.as_mut(), &*conn.hooks, Wait::Yes) {
                    Ok(drained) => conn.drained = drained,
                    Err(_) => return Served::Done,
                }
            }
        }
    }
}

/// A handle that can end the connection from another thread (the request timeout's
/// watchdog): what is held for it leaves first, then the last words, in order.
fn cutoff_for(stream: Arc<Stream>, holder: Option<Arc<Holder>>) -> Cutoff {
    Arc::new(move |last_words: &[u8]| {
        if let Some(holder) = &holder {
            let _ = holder.release(&stream);
        }
        if !last_words.is_empty() {
            let _ = std::io::Write::write_all(&mut &*stream, last_words);
        }
        stream.shutdown_both();
    })
}

/// Whether [`read_once`] waits for input.
#[derive(Clone, Copy)]
enum Wait {
    /// Until it comes or the socket's periodic wake-up.
    Yes,
    /// No: only what is already there.
    No,
}

/// Reads input once (what came, or nothing before the socket's periodic wake-up, at once
/// with [`Wait::No`]). `Ok(true)` when the socket was left empty (a short read, or nothing
/// at all: see [`Conn::drained`]); fails when the connection expires (see
/// [`connection::is_expired`]).
fn read_once(
    mut stream: &Stream,
    session: &mut dyn Session,
    hooks: &dyn WorkerHooks,
    wait: Wait,
) -> io::Result<bool> {
    hooks.beat();
    let stop = stopping();
    if connection::is_expired(session, Instant::now(), stop) {
        connection::farewell(session, stream.as_fd());
        return Err(connection::expiry_error(session, stop));
    }
    let buf = session.read_buf();
    let room = buf.len();
    let read = match wait {
        Wait::Yes => stream.read(buf),
        Wait::No => ironhorse_sys::recv_now(stream.as_fd(), buf),
    };
    match read {
        Ok(n) => {
            session.received(n);
            Ok(left_empty(n, room))
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// Closes without losing the response ([`Linger`]), waiting at most 100 ms per read (a read
/// that times out says `WouldBlock`: look at the clock and wait again); or, with `reset`,
/// resets the connection.
fn close_gracefully(mut stream: &Stream, reset: bool) {
    let mut linger = Linger::start(&stream, reset);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    while linger.discard(|buf| stream.read(buf)) {}
}

/// Lets a blocking driver sleep until a session's background work wakes it.
#[derive(Default)]
struct Parker {
    state: Mutex<Parked>,
    signal: Condvar,
}

#[derive(Default)]
struct Parked {
    woken: bool,
    /// Whether the thread waits: only then is a notification (a `futex` call) worth it.
    /// Inline jobs wake their session on every response while nobody is parked.
    waiting: bool,
}

impl Parker {
    fn unpark(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.woken = true;
        if state.waiting {
            self.signal.notify_one();
        }
    }

    /// Waits for a wake-up, at most `limit`.
    fn park(&self, limit: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.waiting = true;
        let (mut state, _) = self
            .signal
            .wait_timeout_while(state, limit, |s| !s.woken)
            .unwrap_or_else(|e| e.into_inner());
        state.waiting = false;
        state.woken = false;
    }
}
