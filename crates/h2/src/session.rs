//! The HTTP/2 session: the `h2` crate's server connection polled inside `advance`, over the
//! in-memory [`Pipe`]. Its `Context` wakes the driver (`Link::waker`), so whatever `h2` or
//! an application job waits on (send capacity, body bytes, a reply) brings the driver back
//! to call `advance`. One connection, many streams, each a [`Stream`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::{Connection, Handshake};
use h2::Reason;
use ironhorse_app::ConnInfo;
use ironhorse_protocol::deadlines::{self, Watch};
use ironhorse_protocol::hooks::{Hooks, Level};
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::{HandOff, Link, Session, Step, Waker};
use ironhorse_protocol::Recorder;

use crate::flood::FloodGuard;
use crate::pipe::Pipe;
use crate::stream::{Stream, StreamContext, Turn};
use crate::upgrade::Stream1;
use crate::Shared;

/// Output queued for the driver beyond which `h2`'s bytes wait in the pipe.
const HIGH_WATER: u64 = 256 * 1024;
/// How long a closing connection's GOAWAY may take before the driver's own deadline
/// closes it anyway.
const GOODBYE_GRACE: Duration = Duration::from_secs(2);
/// Turns of accepting and stream work per `advance` (the rest after a wake-up).
const MAX_ROUNDS: usize = 64;
/// Read buffer for drivers that read into the session's own buffer.
const READ_BUF: usize = 16 * 1024;

enum State {
    Handshaking(Handshake<Pipe, Bytes>),
    Serving(Connection<Pipe, Bytes>),
    /// The connection ended; close once the output is sent.
    Done,
}

/// The driver's waker as a `std::task::Waker`.
struct DriverWaker(Waker);

impl Wake for DriverWaker {
    fn wake(self: Arc<Self>) {
        (self.0)();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        (self.0)();
    }
}

pub(crate) struct H2Session {
    shared: Arc<Shared>,
    info: ConnInfo,
    link_waker: Waker,
    /// The worker: answered streams count toward `--max-requests`; connection errors are
    /// logged.
    hooks: Hooks,
    waker: std::task::Waker,
    pipe: Pipe,
    state: State,
    streams: Vec<Stream>,
    read_buf: Vec<u8>,
    flood: FloodGuard,
    /// When the connection last had no stream (or was opened).
    idle_since: Instant,
    /// Wakes the driver when the idle connection's keep-alive time is up (GOAWAY).
    idle_watch: Option<Watch>,
    /// GOAWAY was queued (graceful stop or idle timeout).
    saying_goodbye: Option<Instant>,
    /// The connection's count in the metrics (once per connection, whatever its streams).
    _connection: Recorder,
    /// After `Upgrade: h2c`: the upgrading request, spliced in as stream 1 once the
    /// client's preface arrived.
    stream1: Option<Stream1>,
}

impl H2Session {
    pub fn new(
        shared: Arc<Shared>,
        info: ConnInfo,
        link: Link,
        hand_off: Option<HandOff>,
    ) -> H2Session {
        let (link_waker, hooks) = (link.waker, link.hooks);
        let (connection, head) = match hand_off {
            Some(hand_off) => (hand_off.connection, hand_off.head),
            None => (Recorder::new(None, hooks.meter().cloned()), None),
        };
        let pipe = Pipe::default();
        let handshake = shared.builder().handshake(pipe.clone());
        let waker = std::task::Waker::from(Arc::new(DriverWaker(link_waker.clone())));
        let mut session = H2Session {
            shared,
            info,
            link_waker,
            hooks,
            waker,
            pipe,
            state: State::Handshaking(handshake),
            streams: Vec::new(),
            read_buf: Vec::new(),
            flood: FloodGuard::new(),
            idle_since: Instant::now(),
            idle_watch: None,
            saying_goodbye: None,
            _connection: connection,
            stream1: head.map(|head| Stream1::new(&head)),
        };
        session.watch_idle();
        session
    }

    /// Arms the keep-alive deadline of a connection without streams.
    fn watch_idle(&mut self) {
        self.idle_since = Instant::now();
        let waker = self.link_waker.clone();
        let at = self.idle_since + self.shared.settings.keepalive_timeout;
        self.idle_watch = Some(deadlines::watch(at, move || waker()));
    }

    /// Drives the connection and its streams as far as they go without waiting.
    fn serve(&mut self, cx: &mut Context<'_>) {
        if let State::Handshaking(handshake) = &mut self.state {
            match Pin::new(handshake).poll(cx) {
                Poll::Ready(Ok(conn)) => self.state = State::Serving(conn),
                Poll::Ready(Err(_)) => self.state = State::Done,
                Poll::Pending => return,
            }
        }
        let State::Serving(conn) = &mut self.state else {
            return;
        };
        if self.flood.is_flooded() {
            conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
        } else if self.streams.is_empty()
            && self.saying_goodbye.is_none()
            && self.idle_since.elapsed() >= self.shared.settings.keepalive_timeout
        {
            // Keep-alive time is up: GOAWAY, then the connection ends.
            conn.graceful_shutdown();
            self.saying_goodbye = Some(Instant::now());
        }
        for _ in 0..MAX_ROUNDS {
            let accepted = self.accept(cx);
            let progressed = self.turn_streams(cx);
            if !accepted && !progressed {
                break;
            }
        }
    }

    /// Takes new streams; whether any came. Ends the state when the connection ends.
    fn accept(&mut self, cx: &mut Context<'_>) -> bool {
        let mut any = false;
        loop {
            let State::Serving(conn) = &mut self.state else {
                return any;
            };
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    any = true;
                    self.idle_watch = None;
                    let ended = request.body().is_end_stream();
                    let limits = self.shared.settings.limits;
                    let head = crate::head::request_head(&request, ended, limits);
                    let info = self.stream_info(head.as_ref().ok());
                    let ctx = StreamContext {
                        service: &self.shared.service,
                        pool: &self.shared.pool,
                        info: &info,
                        waker: &self.link_waker,
                        hooks: &self.hooks,
                        settings: &self.shared.settings,
                    };
                    let recorder = Recorder::for_stream(
                        self.shared.access_log.clone(),
                        self.hooks.meter().cloned(),
                    );
                    let recv = request.into_body();
                    self.streams
                        .push(Stream::start(head, recv, respond, &ctx, recorder));
                }
                // A protocol error: h2 queued its GOAWAY; ending with the output.
                Poll::Ready(Some(Err(e))) => {
                    let peer = self.info.peer.map(|p| p.to_string());
                    let peer = peer.as_deref().unwrap_or("a unix socket");
                    self.hooks.log(
                        Level::Info,
                        format_args!("HTTP/2 connection from {peer} closed: {e}"),
                    );
                    self.state = State::Done;
                    return any;
                }
                Poll::Ready(None) => {
                    self.state = State::Done;
                    return any;
                }
                Poll::Pending => return any,
            }
        }
    }

    /// The connection as one stream's request sees it: its trusted forwarding headers
    /// resolved (as HTTP/1.1 does per request).
    fn stream_info(&self, head: Option<&ironhorse_app::RequestHead>) -> ConnInfo {
        let mut info = self.info.clone();
        if let (Some(policy), Some(head)) = (&self.shared.forwarded, head) {
            info.forwarded = policy
                .resolve(info.peer.map(|p| p.ip()), head.headers())
                .ok();
        }
        info
    }

    /// Hands received bytes to `h2` (after an upgrade, with stream 1 spliced in).
    fn push_input(&mut self, data: &[u8]) {
        self.flood.scan(data);
        match &mut self.stream1 {
            Some(stream1) => {
                if let Some(spliced) = stream1.splice(data) {
                    self.pipe.push_input(&spliced);
                    self.stream1 = None;
                }
            }
            None => self.pipe.push_input(data),
        }
    }

    /// Moves every stream; whether any moved. Finished streams leave.
    fn turn_streams(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        let before = self.streams.len();
        let hooks = &self.hooks;
        self.streams.retain_mut(|stream| match stream.turn(cx) {
            Turn::Waiting => true,
            Turn::Progress => {
                progressed = true;
                true
            }
            Turn::Done => {
                progressed = true;
                hooks.request_done();
                false
            }
        });
        if before > 0 && self.streams.is_empty() && self.saying_goodbye.is_none() {
            self.watch_idle();
        }
        progressed
    }
}

impl Session for H2Session {
    fn read_buf(&mut self) -> &mut [u8] {
        if self.read_buf.len() < READ_BUF {
            self.read_buf.resize(READ_BUF, 0);
        }
        &mut self.read_buf
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            if let Some(stream1) = self.stream1.take() {
                self.pipe.push_input(&stream1.into_held());
            }
            self.pipe.push_eof();
        } else {
            let data = std::mem::take(&mut self.read_buf);
            self.push_input(&data[..n]);
            self.read_buf = data;
        }
    }

    fn receive(&mut self, data: &[u8]) {
        self.push_input(data);
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        if !matches!(self.state, State::Done) {
            self.serve(&mut cx);
        }
        // h2 blocked on a full pipe: once `out` is sent, `advance` again (Flush).
        let blocked = out.queued() >= HIGH_WATER || {
            let was = self.pipe.take_output(out.bytes());
            if was {
                // Room again: let h2 write more before the driver sends.
                self.serve(&mut cx);
                self.pipe.take_output(out.bytes());
            }
            was
        };
        match self.state {
            State::Done if !blocked => {
                let mut rest = Vec::new();
                self.pipe.take_output(&mut rest);
                out.bytes().extend_from_slice(&rest);
                Step::Close
            }
            _ if blocked => Step::Flush,
            _ => Step::Read,
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        if let Some(since) = self.saying_goodbye {
            return Some(since + GOODBYE_GRACE + self.shared.settings.graceful_timeout);
        }
        match self.state {
            State::Handshaking(_) => Some(self.idle_since + self.shared.settings.handshake_timeout),
            // The session says GOAWAY itself at the keep-alive deadline; this is a backstop.
            _ if self.streams.is_empty() => {
                Some(self.idle_since + self.shared.settings.keepalive_timeout + GOODBYE_GRACE)
            }
            _ => None,
        }
    }

    fn is_idle(&self) -> bool {
        self.streams.is_empty() && !self.pipe.has_input()
    }

    fn stop(&mut self) {
        if self.saying_goodbye.is_some() {
            return;
        }
        if let State::Serving(conn) = &mut self.state {
            conn.graceful_shutdown();
            self.saying_goodbye = Some(Instant::now());
            (self.link_waker)();
        }
    }

    fn release_idle_memory(&mut self) {
        self.read_buf = Vec::new();
        self.pipe.release_idle_memory();
    }
}
