//! HTTP/1.1 over the sans-IO engine.
//!
//! The session parses requests from the buffered input and answers them in order, pipelined
//! ones included, so a burst leaves in one write. Where the application runs depends on it:
//! - a non-blocking service (static files) runs inside `advance`, on any driver;
//! - a blocking service (Python) runs as a job on the driver's executor ([`exchange`]):
//!   inline on a blocking driver's thread, on the offload pool under event-driven drivers.
//!   The session shuttles body and response pieces either way; `100 Continue` is queued
//!   when the application first asks for the body, and every error answer comes from h1.

mod body;
mod body_deadline;
mod buffering;
mod exchange;
mod inline;
mod nonblocking;
mod offload;
mod on_loop;
mod protocol;
mod queues;
mod readiness;
mod record;
mod spool;
mod timeout;
mod upgrade;
mod ws_upgrade;

pub use body_deadline::BodyDeadline;
pub use buffering::Prefilled;
pub use exchange::{BodyDemand, Exchange, Reply};
pub use protocol::{Http, HttpSettings};
pub use record::Recorder;
pub use spool::{Spool, Spooled};
pub use timeout::{Expiry, RequestTimer};
pub use upgrade::H2_PREFACE;

use std::sync::Arc;
use std::time::Instant;

use ironhorse_app::{ChunkStream, ConnInfo, RequestHead, Service};
use ironhorse_h1::{Failure, Next, ServerConn};
use ironhorse_wire::forwarded::Policy;

use self::upgrade::{Preface, Upgrades};
use crate::output::Output;
use crate::session::{Executor, Link, Protocol, Session, Step};

/// A response pauses once this much output is queued (backpressure).
const HIGH_WATER: u64 = 256 * 1024;
/// Body bytes handed to an offloaded application per chunk.
const BODY_CHUNK: usize = 64 * 1024;

/// What the connection is in the middle of.
enum Busy {
    Idle,
    /// A streaming body from an inline call.
    Streaming(ChunkStream),
    /// A blocking request whose body is read whole before its job starts (see
    /// [`buffering`]).
    Buffering(Box<buffering::Buffered>),
    /// A request running as a job (see [`exchange`]).
    Offloaded {
        exchange: Exchange,
        awaits_continue: bool,
    },
    /// A WebSocket handshake waiting for the application's answer (see [`ws_upgrade`]).
    WsHandshake {
        exchange: Option<Box<dyn ironhorse_app::WsExchange>>,
        offer: Box<ironhorse_ws::handshake::Offer>,
    },
    /// A blocking request to call inside `advance` (`--threads 0`, see [`on_loop`]); the
    /// request is in `HttpSession::on_loop`.
    OnLoop,
    /// A request to a non-blocking application (see [`nonblocking`]).
    NonBlocking {
        exchange: Box<dyn ironhorse_app::AppExchange>,
        awaits_continue: bool,
    },
}

struct HttpSession {
    conn: ServerConn,
    service: Arc<dyn Service>,
    /// Where blocking application calls run.
    executor: Arc<dyn Executor>,
    waker: crate::session::Waker,
    /// What the driver gave this session, for the session of a protocol switched to.
    link: Link,
    upgrades: Arc<Upgrades>,
    /// No request has arrived yet (a prior-knowledge preface may still come).
    fresh: bool,
    /// The session taking the connection over after [`Step::Upgrade`].
    next: Option<Box<dyn Session>>,
    info: ConnInfo,
    settings: HttpSettings,
    busy: Busy,
    /// The request `Busy::OnLoop` is about to call: kept here, not boxed in `Busy`, so a
    /// `--threads 0` request costs no allocation of its own (`Busy` stays small).
    on_loop: Option<on_loop::Ready>,
    /// When the head being read began to arrive.
    head_started: Option<Instant>,
    /// When the connection last made progress (a response ended, body bytes came).
    last_progress: Instant,
    /// Whether a response was completed on this connection. A stopping server still serves
    /// the first request of a connection it accepted (the client has likely sent it).
    answered_any: bool,
    recorder: Recorder,
    /// Whose forwarding headers are believed: resolved once per request into
    /// `info.forwarded`, for the access log and the application.
    forwarded: Option<Arc<Policy>>,
    /// The deadline of the application request in progress.
    timer: Option<RequestTimer>,
    /// `--body-timeout` while the application waits for body bytes.
    body_deadline: BodyDeadline,
}

impl HttpSession {
    /// The header timeout runs from the first byte of a head, wherever it was received
    /// (a pool's watcher feeds a trickling head without calling `advance`).
    ///
    /// Not for a head that arrived whole (the buffered bytes end with its blank line, as
    /// nearly every request does): no driver judges a deadline before the `advance` that
    /// dispatches it (the watchers hand over whatever `has_work` first, the others advance
    /// right after receiving), and that `advance` clears the start again; so the clock is
    /// not read for it (a vDSO read, ~25 ns, per request).
    fn note_head_start(&mut self) {
        if matches!(self.busy, Busy::Idle) && self.conn.is_mid_head() && self.head_started.is_none()
        {
            let buffered = self.conn.buffered();
            let whole = buffered.len() > 4
                && !buffered.starts_with(b"\r\n")
                && buffered.ends_with(b"\r\n\r\n");
            if !whole {
                self.head_started = Some(Instant::now());
            }
        }
    }

    /// A request passed its deadline (the watchdog already asked the application to stop):
    /// answer 504 unless the watchdog did or the response had begun, and close.
    fn time_out(&mut self, out: &mut Output) -> Step {
        if self.timer.as_ref().is_some_and(RequestTimer::cut_off) {
            self.conn.abort();
        } else {
            self.fail(Failure::TimedOut, out);
        }
        self.busy = Busy::Idle;
        self.timer = None;
        Step::Close
    }

    /// Leaves HTTP/1.1 for `protocol`, whose session gets what was received and unused,
    /// the connection's count and, after `Upgrade:`, the upgrading request's head.
    fn switch_to(&mut self, protocol: &dyn Protocol, head: Option<RequestHead>) -> Step {
        let (input, ended) = self.conn.take_input();
        let hand_off = crate::session::HandOff {
            head,
            connection: std::mem::replace(&mut self.recorder, Recorder::new(None, None)),
        };
        let mut next = protocol.session_after(self.info.clone(), self.link.clone(), hand_off);
        if !input.is_empty() {
            next.receive(&input);
        }
        if ended {
            next.received(0);
        }
        self.next = Some(next);
        Step::Upgrade
    }

    /// Answers a failed request through h1 (or cuts the response short), for the access
    /// log too.
    fn fail(&mut self, failure: Failure, out: &mut Output) {
        if !self.conn.head_written() {
            self.recorder.head(failure.status(), &Vec::new());
        }
        self.conn.write_failure(failure, out.bytes());
    }

    /// Writes a response head, noting it for the access log.
    fn send_head(
        &mut self,
        status: u16,
        headers: &ironhorse_app::HeaderList,
        len: Option<u64>,
        out: &mut Output,
    ) {
        if self.link.hooks.retiring() {
            self.conn.retire();
        }
        self.conn.write_head(status, headers, len, out.bytes());
        self.recorder.head(status, headers);
        if let Some(timer) = &self.timer {
            timer.head_written();
        }
    }

    /// Writes body bytes, counting them for the access log.
    fn send_body(&mut self, data: &[u8], out: &mut Output) {
        self.recorder.body(data.len() as u64);
        self.conn.write_body(data, out.bytes());
    }

    /// Ends the response for the pumps: `None` when the connection stays open (the session
    /// goes on to the next request), else the step to return.
    fn finish_response(&mut self, out: &mut Output) -> Option<Step> {
        match self.finish(out) {
            Step::Read => None,
            other => Some(other),
        }
    }

    fn finish(&mut self, out: &mut Output) -> Step {
        self.link.hooks.request_done();
        self.recorder.end();
        self.timer = None;
        self.body_deadline.disarm();
        self.answered_any = true;
        self.busy = Busy::Idle;
        self.last_progress = Instant::now();
        match self.conn.finish(out.bytes()) {
            Next::KeepAlive => Step::Read,
            Next::Close => Step::Close,
        }
    }

    /// Starts answering a request whose head was just parsed: a protocol switch, a
    /// WebSocket, a non-blocking exchange, a job, or an inline call. `None`: `advance` goes
    /// on (the request is in progress or done with the connection open), else the step to
    /// return.
    fn dispatch(&mut self, head: RequestHead, out: &mut Output) -> Option<Step> {
        self.head_started = None;
        self.fresh = false;
        let peer = self.info.peer.map(|a| a.ip());
        self.info.forwarded =
            (self.forwarded.as_ref()).and_then(|policy| policy.resolve(peer, head.headers()).ok());
        self.recorder.begin(&head, &self.info);
        if let Some((token, protocol)) = self.upgrades.requested(&head) {
            let protocol = protocol.clone();
            self.conn.write_switching_protocols(token, out.bytes());
            self.recorder.head(101, &Vec::new());
            self.recorder.end();
            self.link.hooks.request_done();
            return Some(self.switch_to(&*protocol, Some(head)));
        }
        if self.is_websocket_for_app(&head) {
            let step = self.start_websocket(head, out);
            return (step != Step::Pending).then_some(step);
        }
        let waker = self.waker.clone();
        if let Some(exchange) = self.service.start_exchange(&head, &self.info, waker) {
            self.start_nonblocking(exchange, head.expects_continue(), head.is_head());
            return None;
        }
        if self.service.may_block_for(&head) {
            let whole_only = self.app_on_loop();
            if buffering::Buffered::wants(&head, self.settings.buffer_body, whole_only) {
                if head.expects_continue() {
                    self.conn.write_continue(out.bytes());
                }
                let memory = self.settings.buffer_body_memory;
                self.busy = Busy::Buffering(Box::new(buffering::Buffered::new(head, memory)));
            } else {
                self.start_exchange(head, Prefilled::None);
            }
            return None;
        }
        let step = self.respond_inline(head, out);
        (step != Step::Read).then_some(step)
    }
}

impl Session for HttpSession {
    fn read_buf(&mut self) -> &mut [u8] {
        self.conn.read_buf()
    }

    fn receive(&mut self, data: &[u8]) {
        self.conn.feed(data);
        self.note_head_start();
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            self.conn.feed_eof();
        } else {
            self.conn.filled(n);
            self.note_head_start();
            if let Busy::Buffering(_) = self.busy {
                self.last_progress = Instant::now();
            }
        }
    }

    fn ends_in_reset(&self) -> bool {
        self.conn.must_reset()
    }

    fn has_work(&self) -> bool {
        let in_progress = match &self.busy {
            Busy::Idle => false,
            Busy::Buffering(b) => {
                b.may_complete(self.conn.buffered().len())
                    || Instant::now() >= self.last_progress + self.settings.body_timeout
            }
            _ => true,
        };
        in_progress
            || self.conn.input_ended()
            || self.conn.is_closed()
            || readiness::head_ready(self.conn.buffered(), self.conn.limits())
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        loop {
            let pending = match self.busy {
                Busy::Idle => None,
                Busy::Streaming(_) => self.pump_stream(out),
                Busy::Buffering(_) => self.pump_buffering(out),
                Busy::Offloaded { .. } => self.pump_exchange(out),
                Busy::OnLoop => self.pump_on_loop(out),
                Busy::NonBlocking { .. } => self.pump_nonblocking(out),
                Busy::WsHandshake { .. } => self.pump_ws_handshake(out),
            };
            if let Some(step) = pending {
                return step;
            }
            if out.queued() > HIGH_WATER {
                return Step::Flush;
            }
            if self.fresh {
                match self
                    .upgrades
                    .preface(self.conn.buffered(), self.conn.input_ended())
                {
                    Preface::No => {}
                    Preface::Partial => return Step::Read,
                    Preface::Complete(protocol) => {
                        let protocol = protocol.clone();
                        return self.switch_to(&*protocol, None);
                    }
                }
            }
            let head = match self.conn.next_request() {
                Ok(Some(head)) => head,
                Ok(None) if self.conn.is_closed() => return Step::Close,
                Ok(None) => {
                    self.note_head_start();
                    return Step::Read;
                }
                Err(error) => {
                    self.recorder.refused(error.status());
                    self.conn.write_error(&error, out.bytes());
                    return Step::Close;
                }
            };
            if let Some(step) = self.dispatch(head, out) {
                return step;
            }
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        Some(match (&self.busy, self.head_started) {
            // The session answers the body timeout itself (`body_deadline`); this is the
            // backstop.
            (Busy::Offloaded { .. }, _) => {
                self.last_progress + self.settings.body_timeout + body_deadline::GRACE
            }
            // A non-blocking application may hold its response open as long as it likes
            // (server-sent events); `--request-timeout` bounds it when set. Only a body
            // still being received has a deadline.
            (Busy::NonBlocking { .. }, _) if self.conn.body_done() => return None,
            (Busy::WsHandshake { .. }, _) => return None,
            (Busy::NonBlocking { .. }, _) => self.last_progress + self.settings.body_timeout,
            (Busy::Buffering(_), _) => {
                self.last_progress + self.settings.body_timeout + body_deadline::GRACE
            }
            (_, Some(started)) => started + self.settings.header_timeout,
            _ => self.last_progress + self.settings.keepalive_timeout,
        })
    }

    fn hand_off(&mut self) -> Option<Box<dyn Session>> {
        self.next.take()
    }

    fn release_idle_memory(&mut self) {
        // A body being buffered keeps its own copy: the engine's read buffer, grown by
        // fast reads (64 KiB on the event loop), need not wait with it.
        if matches!(self.busy, Busy::Idle | Busy::Buffering(_)) {
            self.conn.release_idle_buffer();
        }
        if matches!(self.busy, Busy::Idle) {
            // The application's per-connection values (WSGI's environ template, ~1 KiB).
            self.info.cache.clear();
        }
    }

    fn is_waiting(&self) -> bool {
        matches!(self.busy, Busy::Idle)
            && !self.conn.is_mid_head()
            && !self.conn.has_buffered_input()
    }

    fn is_idle(&self) -> bool {
        self.answered_any
            && matches!(self.busy, Busy::Idle)
            && !self.conn.is_mid_head()
            && !self.conn.has_buffered_input()
    }
}

#[cfg(test)]
mod tests;
