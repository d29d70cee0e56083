//! One HTTP/2 stream: a request answered by the application service, the same way an
//! HTTP/1.1 request is. Non-blocking applications (ASGI) trade messages through their
//! `AppExchange`; static files are called at once; blocking ones (WSGI) run as a job
//! through the HTTP/1.1 session's `Exchange` (see [`Work`]). Request bodies reach the
//! application through bounded queues (HTTP/2 capacity released only as chunks are handed
//! over), response pieces leave as send capacity allows. Several streams of a connection
//! run at once.
//!
//! Deadlines, per stream, as HTTP/1.1 has them per request (the connection and its other
//! streams go on):
//! - `--request-timeout`: the watchdog cancels the application (WSGI: `TimeoutError` in its
//!   thread; ASGI: the task), then the stream gets `504` if no head was sent, else
//!   `RST_STREAM(INTERNAL_ERROR)` (the response can never be completed).
//! - `--body-timeout`: an application waiting for body bytes that do not come is told so
//!   (WSGI reads fail with a timeout, ASGI hears `http.disconnect`) and the stream is reset
//!   with `RST_STREAM(CANCEL)`, logged as `408`. A reset rather than a `408` response, as
//!   nginx does (`client_body_timeout` over HTTP/2 terminates the request, which resets
//!   the stream, and logs 408): the client is stuck sending, not reading, and a reset
//!   frees both sides' flow-control state at once.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use ironhorse_app::{AppEvent, Body, ConnInfo, Request, RequestHead, Service};
use ironhorse_protocol::hooks::Hooks;
use ironhorse_protocol::offload_pool::OffloadPool;
use ironhorse_protocol::session::{Executor, Waker};
use ironhorse_protocol::{
    BodyDeadline, Exchange, Expiry, Prefilled, Recorder, Reply, RequestTimer, Spooled,
};

use crate::gather::{Gather, Gathered};
use crate::send::{Outgoing, Sent};
use crate::work::{BodyPiece, Piece, Work};
use crate::H2Settings;

/// What a stream needs from its connection.
pub(crate) struct StreamContext<'a> {
    pub service: &'a Arc<dyn Service>,
    pub pool: &'a Arc<OffloadPool>,
    /// The connection, with this request's forwarding headers resolved.
    pub info: &'a ConnInfo,
    pub waker: &'a Waker,
    pub hooks: &'a Hooks,
    pub settings: &'a H2Settings,
}

pub(crate) struct Stream {
    /// Until the head is sent.
    respond: Option<SendResponse<Bytes>>,
    /// After the head is sent.
    send: Option<SendStream<Bytes>>,
    /// The request body, while the application may still want it.
    recv: Option<RecvStream>,
    work: Work,
    out: Outgoing,
    head_only: bool,
    recorder: Recorder,
    /// The application failed after its head, and what it produced was handed to h2: the
    /// reset goes out on the next turn, after the connection wrote those frames (h2 drops
    /// a reset stream's queued frames, the head included).
    reset_due: bool,
    /// Body bytes still allowed (`--limit-request-body`; a declared length was checked
    /// with the head).
    body_budget: u64,
    /// `--request-timeout`, while the application runs.
    timer: Option<RequestTimer>,
    /// `--body-timeout`: when body bytes last came, and the wake-up at the deadline.
    last_body: Instant,
    body_deadline: BodyDeadline,
    body_timeout: std::time::Duration,
    waker: Waker,
    /// `expect: 100-continue`: an interim `100` goes out when the application first asks
    /// for the body (RFC 9110 §10.1.1), as over HTTP/1.1.
    awaits_continue: bool,
}

/// What a turn of a stream came to.
pub(crate) enum Turn {
    Waiting,
    Progress,
    Done,
}

impl Stream {
    /// Starts answering `head` (`Err(status)`: the request was refused while rebuilding it).
    pub fn start(
        head: Result<RequestHead, u16>,
        recv: RecvStream,
        respond: SendResponse<Bytes>,
        ctx: &StreamContext<'_>,
        mut recorder: Recorder,
    ) -> Stream {
        let mut stream = Stream {
            respond: Some(respond),
            send: None,
            recv: None,
            work: Work::Queued,
            out: Outgoing::default(),
            head_only: false,
            recorder: Recorder::for_stream(None, None),
            body_budget: ctx.settings.limits.max_body,
            reset_due: false,
            timer: None,
            last_body: Instant::now(),
            body_deadline: BodyDeadline::default(),
            body_timeout: ctx.settings.body_timeout,
            waker: ctx.waker.clone(),
            awaits_continue: false,
        };
        let head = match head {
            Ok(head) => head,
            Err(status) => {
                stream.answer_plain(status);
                return stream;
            }
        };
        recorder.begin(&head, ctx.info);
        stream.recorder = recorder;
        stream.head_only = head.is_head();
        stream.awaits_continue = head.expects_continue();
        let service = ctx.service;
        if let Some(exchange) = service.start_exchange(&head, ctx.info, ctx.waker.clone()) {
            stream.timer = request_timer(
                ctx.settings.request_timeout,
                ctx.service,
                ctx.waker,
                ctx.hooks,
            );
            stream.recv = Some(recv);
            stream.work = Work::NonBlocking(exchange);
        } else if service.may_block_for(&head) {
            let launch = Launch::new(ctx);
            let settings = ctx.settings;
            stream.recv = Some(recv);
            if Gather::wanted(&head, settings.buffer_body) {
                let (limit, memory) = (settings.buffer_body, settings.buffer_body_memory);
                stream.work = Work::Gathering(Box::new(Gather::new(head, limit, memory, launch)));
            } else {
                stream.offload(head, Prefilled::None, &launch);
            }
        } else {
            // Non-blocking services (static files) take no body: it is discarded.
            drop(recv);
            stream.call_inline(&head, ctx);
        }
        stream
    }

    /// Starts a blocking service's job on the offload pool, with the body read ahead.
    fn offload(&mut self, head: RequestHead, body: Prefilled<Spooled>, launch: &Launch) {
        self.timer = launch.request_timer(&self.waker);
        let (exchange, job) = Exchange::for_stream(
            launch.service.clone(),
            head,
            launch.info.clone(),
            self.waker.clone(),
            self.timer.as_ref(),
            body,
        );
        self.work = Work::Offloaded(exchange);
        let job = match self.recorder.job_ticket() {
            Some(mut ticket) => {
                Box::new(move |host: &mut dyn ironhorse_protocol::session::JobHost| {
                    ticket.running();
                    job(host);
                })
            }
            None => job,
        };
        launch.pool.execute(job);
    }

    /// Gives a piece of a body being read ahead to its gather; starts the job once it is
    /// in (the rest of a longer one follows as it comes).
    fn gather(&mut self, piece: BodyPiece) {
        let Work::Gathering(gather) = std::mem::replace(&mut self.work, Work::Queued) else {
            return;
        };
        match gather.take(piece) {
            Gathered::More(gather) => self.work = Work::Gathering(gather),
            Gathered::Ready(call) => {
                if matches!(call.body, Prefilled::Whole(_)) {
                    self.recv = None;
                }
                self.offload(call.head, call.body, &call.launch);
            }
            Gathered::Refused(status) => self.refuse(status),
        }
    }

    /// Answers a service that never blocks (static files) at once.
    fn call_inline(&mut self, head: &RequestHead, ctx: &StreamContext<'_>) {
        let response = ctx.service.call(Request {
            head,
            body: &mut std::io::empty(),
            conn: ctx.info,
            sink: None,
            body_length: None,
        });
        self.answer(response.status, &response.headers, response.body.len_hint());
        match response.body {
            Body::Empty => self.out.end(),
            Body::Bytes(bytes) => {
                self.out.push(Bytes::from(bytes));
                self.out.end();
            }
            Body::File(region) => {
                self.out.push_file(region);
                self.out.end();
            }
            Body::Stream { chunks, .. } => self.work = Work::Chunks(chunks),
        }
    }

    /// Sends the response head for the application's answer.
    fn answer(&mut self, status: u16, headers: &ironhorse_app::HeaderList, len: Option<u64>) {
        self.recorder.head(status, headers);
        let empty = self.head_only || len == Some(0) || matches!(status, 204 | 205 | 304);
        self.send_head(crate::head::response_head(status, headers, len), empty);
        if self.head_only {
            self.out.end();
        } else if !empty {
            self.out.declare(len);
        }
    }

    /// A short plain answer from the server itself (a refusal, a failure, a timeout),
    /// replacing whatever was queued.
    fn answer_plain(&mut self, status: u16) {
        let (response, body) = crate::head::plain(status);
        self.recorder.head(status, &Vec::new());
        self.send_head(response, false);
        self.out = Outgoing::default();
        self.out.push(body);
        self.out.end();
    }

    fn send_head(&mut self, response: http::Response<()>, end: bool) {
        let Some(mut respond) = self.respond.take() else {
            return;
        };
        match respond.send_response(response, end) {
            Ok(send) if !end => self.send = Some(send),
            _ => {}
        }
    }

    /// Moves the stream forward: body to the application, response pieces to the peer.
    pub fn turn(&mut self, cx: &mut Context<'_>) -> Turn {
        if self.peer_reset(cx) {
            self.work.disconnect();
            return Turn::Done;
        }
        if self.timer.as_ref().is_some_and(RequestTimer::timed_out) {
            return self.time_out();
        }
        self.send_continue();
        let fed = match self.feed_body(cx) {
            Ok(fed) => fed,
            Err(turn) => return turn,
        };
        if let Err(failed) = self.pull_response() {
            return failed;
        }
        let Some(send) = &mut self.send else {
            // The head ended the stream (or could not be sent).
            return if self.respond.is_none() {
                Turn::Done
            } else if fed {
                Turn::Progress
            } else {
                Turn::Waiting
            };
        };
        let body = if self.head_only {
            Sent::Finished
        } else {
            self.out.send(send, cx)
        };
        self.recorder.body(std::mem::take(&mut self.out.sent));
        match body {
            Sent::ResetDue if self.reset_due => {
                send.send_reset(Reason::INTERNAL_ERROR);
                Turn::Done
            }
            Sent::ResetDue => {
                self.reset_due = true;
                Turn::Progress
            }
            Sent::Finished | Sent::Broken => Turn::Done,
            Sent::Progress => Turn::Progress,
            Sent::Waiting if fed => Turn::Progress,
            Sent::Waiting => Turn::Waiting,
        }
    }

    /// Whether the peer reset the stream (`RST_STREAM`): the application's side of the
    /// exchange then ends (WSGI reads and writes fail, `close()` runs; ASGI gets
    /// `http.disconnect`).
    fn peer_reset(&mut self, cx: &mut Context<'_>) -> bool {
        let reset = match (&mut self.respond, &mut self.send) {
            (Some(respond), _) => respond.poll_reset(cx),
            (None, Some(send)) => send.poll_reset(cx),
            (None, None) => Poll::Pending,
        };
        reset.is_ready()
    }

    /// Sends `100 Continue` once the application asked for a body the client holds back.
    fn send_continue(&mut self) {
        if !self.awaits_continue || self.recv.is_none() || !self.work.body_requested() {
            return;
        }
        self.awaits_continue = false;
        if let Some(respond) = &mut self.respond {
            let mut interim = http::Response::new(());
            *interim.status_mut() = http::StatusCode::CONTINUE;
            let _ = respond.send_informational(interim);
        }
    }

    /// `--request-timeout` passed (the watchdog cancelled a job's thread already): `504`
    /// if nothing was sent yet, else the stream is reset.
    fn time_out(&mut self) -> Turn {
        self.timer = None;
        self.work.cancel();
        self.work = Work::Queued;
        self.recv = None;
        if self.respond.is_some() {
            self.answer_plain(504);
            return Turn::Progress;
        }
        if let Some(send) = &mut self.send {
            send.send_reset(Reason::INTERNAL_ERROR);
        }
        Turn::Done
    }

    /// Hands received body bytes to the application while it has room, releasing the
    /// flow-control capacity they used. `Ok`: whether anything moved; `Err`: the stream
    /// ends (its body timed out).
    fn feed_body(&mut self, cx: &mut Context<'_>) -> Result<bool, Turn> {
        let mut moved = false;
        loop {
            let Some(recv) = &mut self.recv else {
                self.body_deadline.disarm();
                return Ok(moved);
            };
            if !self.work.wants_body() {
                self.body_deadline.disarm();
                return Ok(moved);
            }
            let piece = match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    self.last_body = Instant::now();
                    match self.body_budget.checked_sub(data.len() as u64) {
                        Some(left) => {
                            self.body_budget = left;
                            let last = recv.is_end_stream();
                            BodyPiece::Data {
                                data: data.to_vec(),
                                last,
                            }
                        }
                        // The application's read fails as under HTTP/1.1 (413).
                        None => BodyPiece::Failed(ironhorse_h1::Error::BodyTooLarge),
                    }
                }
                Poll::Ready(None) => BodyPiece::End,
                Poll::Ready(Some(Err(_))) => BodyPiece::Failed(ironhorse_h1::Error::Incomplete),
                Poll::Pending => {
                    return if self.body_deadline.expired(
                        self.last_body,
                        self.body_timeout,
                        &self.waker,
                    ) {
                        Err(self.body_timed_out())
                    } else {
                        Ok(moved)
                    };
                }
            };
            if matches!(self.work, Work::Gathering(_)) {
                self.gather(piece);
                moved = true;
                continue;
            }
            let too_large = matches!(piece, BodyPiece::Failed(ironhorse_h1::Error::BodyTooLarge));
            if self.work.give(piece) {
                self.recv = None;
            }
            // ASGI has no failing read: the server answers 413 itself.
            if too_large && matches!(self.work, Work::NonBlocking(_)) {
                self.work = Work::Queued;
                self.refuse(413);
            }
            moved = true;
        }
    }

    /// The body stalled past `--body-timeout`: the application is told, the stream reset.
    fn body_timed_out(&mut self) -> Turn {
        self.work.body_timed_out();
        if self.respond.is_some() {
            self.recorder.head(408, &Vec::new());
        }
        self.reset(Reason::CANCEL);
        Turn::Done
    }

    /// Resets the stream (from either half).
    fn reset(&mut self, reason: Reason) {
        self.recv = None;
        match (&mut self.respond, &mut self.send) {
            (Some(respond), _) => respond.send_reset(reason),
            (None, Some(send)) => send.send_reset(reason),
            (None, None) => {}
        }
    }

    /// A refusal after the application started: `status` if no head was sent, else reset.
    fn refuse(&mut self, status: u16) {
        self.recv = None;
        if self.respond.is_some() {
            self.answer_plain(status);
        } else {
            self.out.fail();
        }
    }

    /// Takes response pieces while few wait to be sent. `Err` ends the stream.
    fn pull_response(&mut self) -> Result<(), Turn> {
        while self.out.wants_more() {
            match self.work.next() {
                Piece::None => return Ok(()),
                Piece::Chunk(chunk) => self.out.push(Bytes::from(chunk)),
                Piece::Ended => self.out.end(),
                Piece::Failed => return Err(self.fail()),
                Piece::Reply(reply) => self.take_reply(reply)?,
                Piece::Event(event) => self.take_event(event)?,
            }
        }
        Ok(())
    }

    fn take_reply(&mut self, reply: Reply) -> Result<(), Turn> {
        match reply {
            Reply::Whole {
                status,
                headers,
                body,
                ..
            } => {
                self.answer(status, &headers, Some(body.len() as u64));
                self.out.push(Bytes::from(body));
                self.out.end();
                self.timer = None;
            }
            Reply::Head {
                status,
                headers,
                len,
            } => self.answer(status, &headers, len),
            Reply::Bytes(data) => self.out.push(Bytes::from(data)),
            Reply::File(region) => self.out.push_file(region),
            Reply::End => {
                self.out.end();
                self.timer = None;
            }
            Reply::Failed => return Err(self.fail()),
        }
        Ok(())
    }

    fn take_event(&mut self, event: AppEvent) -> Result<(), Turn> {
        match event {
            AppEvent::Head {
                status,
                headers,
                len,
            } => self.answer(status, &headers, len),
            AppEvent::Body { data, more } => {
                self.out.push(Bytes::from(data));
                if !more {
                    self.out.end();
                    self.timer = None;
                }
            }
            AppEvent::File(region) => {
                self.out.push_file(region);
                self.out.end();
                self.timer = None;
            }
            AppEvent::Trailers(fields) => {
                self.out
                    .end_with_trailers(crate::head::trailer_fields(&fields));
                self.timer = None;
            }
            AppEvent::Failed | AppEvent::Returned => return Err(self.fail()),
        }
        Ok(())
    }

    /// The application failed: `500` if nothing was sent yet, else `RST_STREAM` once what
    /// it produced before is out.
    fn fail(&mut self) -> Turn {
        self.work = Work::Queued;
        self.timer = None;
        if self.respond.is_some() {
            self.answer_plain(500);
        } else {
            self.out.fail();
        }
        Turn::Progress
    }
}

/// What starting a blocking application's job needs from the connection, kept by a stream
/// whose body is read ahead first.
pub(crate) struct Launch {
    service: Arc<dyn Service>,
    pool: Arc<OffloadPool>,
    info: ConnInfo,
    hooks: Hooks,
    request_timeout: Option<Duration>,
}

impl Launch {
    fn new(ctx: &StreamContext<'_>) -> Launch {
        Launch {
            service: ctx.service.clone(),
            pool: ctx.pool.clone(),
            info: ctx.info.clone(),
            hooks: ctx.hooks.clone(),
            request_timeout: ctx.settings.request_timeout,
        }
    }

    fn request_timer(&self, waker: &Waker) -> Option<RequestTimer> {
        request_timer(self.request_timeout, &self.service, waker, &self.hooks)
    }
}

/// The `--request-timeout` deadline of an application request starting now, if one is set.
fn request_timer(
    timeout: Option<Duration>,
    service: &Arc<dyn Service>,
    waker: &Waker,
    hooks: &Hooks,
) -> Option<RequestTimer> {
    timeout.map(|timeout| {
        RequestTimer::start(Expiry {
            timeout,
            service: service.clone(),
            waker: waker.clone(),
            // A stream's job runs on the offload pool: the worker never needs replacing.
            exit_when_stuck: false,
            hooks: hooks.clone(),
            // No cut-off handle on a pool thread: the stream answers itself.
            last_words: Vec::new(),
        })
    })
}
