//! One request to a blocking application: the only path such requests take, on every driver.
//!
//! The application call is a [`Job`]; the session feeds it body bytes through a small
//! bounded queue and receives the response in pieces through another. Both queues are
//! bounded, so a slow client slows the application (backpressure) instead of growing
//! memory, and a streaming application never blocks an event loop. Every message is
//! followed by a wake-up of the driver.
//!
//! Who runs the job is the driver's choice ([`Executor`](crate::session::Executor)): on a
//! pool thread the job's waits block on the queues; inline on a blocking driver's thread
//! they call [`JobHost::pump`] instead, which moves the connection forward (reads the
//! socket, lets the session fill and drain the queues, sends its output).

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use ironhorse_app::{
    Body, ConnInfo, FileRegion, HeaderList, Request, RequestHead, ResponseSink, Service,
};

use super::buffering::Prefilled;
use super::queues::{BodyChunk, Queues};
use super::spool::Spooled;
use super::timeout::TimerState;
use crate::session::{Job, JobHost, Waker};

/// A piece of the response, from the application thread.
pub enum Reply {
    /// A whole in-memory response in one message (the common case: one hand-off, one wake).
    Whole {
        status: u16,
        headers: HeaderList,
        body: Vec<u8>,
        /// The request's head, handed back for its buffers' reuse
        /// ([`ServerConn::recycle`](ironhorse_h1::ServerConn::recycle)): freed here, on the
        /// thread that allocated it, instead of on the application's.
        request: RequestHead,
    },
    Head {
        status: u16,
        headers: HeaderList,
        len: Option<u64>,
    },
    Bytes(Vec<u8>),
    File(FileRegion),
    End,
    /// The application failed after its head was produced.
    Failed,
}

/// The application's job ended without a complete response (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobGone;

/// The session's side of one application request.
pub struct Exchange {
    queues: Queues<Reply>,
    /// Whether body chunks may still be sent (not ended, or the last one is held).
    body_open: bool,
    /// A body chunk that did not fit in the queue yet.
    held: Option<BodyChunk>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.queues.close_session();
    }
}

/// What the session should do about the request body.
pub enum BodyDemand {
    /// Send more body bytes.
    More,
    /// The queue is full or the body is complete.
    Enough,
}

impl Exchange {
    /// The exchange for `service` answering `head`, and the job that runs the application
    /// (for the driver's executor). `timer` learns the thread the job runs on (to cancel
    /// it) and whether it finished.
    pub(super) fn new(
        service: Arc<dyn Service>,
        head: RequestHead,
        info: ConnInfo,
        waker: Waker,
        timer: Option<Arc<TimerState>>,
        prefilled: Prefilled<Spooled>,
    ) -> (Exchange, Job) {
        let body_length = match &prefilled {
            Prefilled::Whole(body) => Some(body.len()),
            _ => None,
        };
        let queues = Queues::new();
        let app_side = queues.clone();
        let job: Job = Box::new(move |host: &mut dyn JobHost| {
            let _running = timer.as_ref().map(|t| t.running(host));
            let _done = JobDone(app_side.clone(), waker.clone());
            let host = Host(Mutex::new(host));
            let body = ChannelBody {
                queues: app_side.clone(),
                waker: waker.clone(),
                asked: false,
                current: Vec::new(),
                pos: 0,
                file: None,
                done: false,
                host: &host,
            };
            let sink = Sink {
                queues: &app_side,
                waker: &waker,
                host: &host,
                started: false,
            };
            run(&*service, (head, body_length), &info, body, sink)
        });
        let mut exchange = Exchange {
            queues,
            body_open: true,
            held: None,
        };
        match prefilled {
            Prefilled::None => {}
            Prefilled::Start(body) => exchange.body_spooled(body),
            Prefilled::Whole(body) => {
                if !body.is_empty() {
                    exchange.body_spooled(body);
                }
                exchange.body_end(None);
            }
        }
        (exchange, job)
    }

    /// The exchange and job of an HTTP/2 stream's request; `timer`, its
    /// `--request-timeout`, learns the job's thread (to cancel it); `prefilled`, the body
    /// or its start when the stream read it ahead (a whole one becomes the application's
    /// `CONTENT_LENGTH`).
    pub fn for_stream(
        service: Arc<dyn Service>,
        head: RequestHead,
        info: ConnInfo,
        waker: Waker,
        timer: Option<&super::RequestTimer>,
        prefilled: Prefilled<Spooled>,
    ) -> (Exchange, Job) {
        let timer = timer.map(super::RequestTimer::state);
        Exchange::new(service, head, info, waker, timer, prefilled)
    }

    /// Whether the application asked for the body (time to send `100 Continue`).
    pub fn body_requested(&self) -> bool {
        self.queues.body_wanted()
    }

    /// How the body feed stands.
    pub fn body_demand(&mut self) -> BodyDemand {
        if !self.body_open {
            return BodyDemand::Enough;
        }
        if let Some(chunk) = self.held.take() {
            if let Err(chunk) = self.try_send(chunk) {
                self.held = Some(chunk);
                return BodyDemand::Enough;
            }
        }
        BodyDemand::More
    }

    /// Passes body bytes on (or holds them until the queue has room).
    pub fn body_data(&mut self, data: Vec<u8>) {
        if let Err(chunk) = self.try_send(BodyChunk::Data(data)) {
            self.held = Some(chunk);
        }
    }

    /// Passes a buffered body (or its start) on: bytes, or a file the application reads.
    fn body_spooled(&mut self, body: Spooled) {
        match body {
            Spooled::Memory(data) => self.body_data(data),
            Spooled::File(file, _) => {
                if let Err(chunk) = self.try_send(BodyChunk::File(file)) {
                    self.held = Some(chunk);
                }
            }
        }
    }

    /// The body ended; `error` if it ended badly.
    pub fn body_end(&mut self, error: Option<ironhorse_h1::Error>) {
        self.end_body(match error {
            Some(e) => BodyChunk::Failed(e),
            None => BodyChunk::End,
        });
    }

    /// No body bytes came for `--body-timeout`: the application's reads fail with a
    /// timeout (it answers `408`).
    pub fn body_timed_out(&mut self) {
        self.end_body(BodyChunk::TimedOut);
    }

    fn end_body(&mut self, last: BodyChunk) {
        if let Err(chunk) = self.try_send(last) {
            self.held = Some(chunk);
        }
        if self.held.is_none() {
            self.body_open = false;
        }
    }

    fn try_send(&mut self, chunk: BodyChunk) -> Result<(), BodyChunk> {
        if !self.body_open {
            return Ok(());
        }
        let last = !matches!(chunk, BodyChunk::Data(_) | BodyChunk::File(_));
        self.queues.push_body(chunk)?;
        if last {
            self.body_open = false;
        }
        Ok(())
    }

    /// The next response piece, if one is ready; [`JobGone`] when the application thread
    /// ended without finishing (a panic).
    pub fn next_reply(&mut self) -> Result<Option<Reply>, JobGone> {
        self.queues.pop_reply().map_err(|()| JobGone)
    }
}

/// The job: the application call and its response stream, sent to the session.
fn run(
    service: &dyn Service,
    (head, body_length): (RequestHead, Option<u64>),
    info: &ConnInfo,
    mut body: ChannelBody<'_, '_>,
    mut sink: Sink<'_, '_>,
) {
    let response = service.call(Request {
        head: &head,
        body: &mut body,
        conn: info,
        sink: Some(&mut sink),
        body_length,
    });
    // The application can no longer read its body: what still arrives is discarded, and a
    // spooled body's file closes (it was unlinked at creation: the space is freed) before
    // the response leaves.
    sink.queues.drop_body();
    drop(body);
    let started = sink.started;
    let mut send = |reply: Reply, piece: Piece| sink.send(reply, piece);
    let (status, headers, body) = (response.status, response.headers, response.body);
    if started {
        // The head left through the sink: what the application returned continues the body.
        let rest = match body {
            Body::Bytes(bytes) => Body::Stream {
                chunks: Box::new(std::iter::once(Ok(bytes))),
                length: None,
            },
            other => other,
        };
        send_streamed(rest, &mut send);
        return;
    }
    let len = body.len_hint();
    let body = match body {
        Body::Empty => Vec::new(),
        Body::Bytes(bytes) => bytes,
        streamed => {
            // The head waits for the body's first bytes or the file: one packet. Nothing is
            // held back by it: a stream's first chunk is already in hand (WSGI pulls the
            // first non-empty chunk before it answers, PEP 3333), and an empty stream's end
            // follows at once.
            if send(
                Reply::Head {
                    status,
                    headers,
                    len,
                },
                Piece::Part,
            ) {
                send_streamed(streamed, &mut send);
            }
            return;
        }
    };
    send(
        Reply::Whole {
            status,
            headers,
            body,
            request: head,
        },
        Piece::Last,
    );
}

/// Sends a file or streamed body after its head, then the end.
fn send_streamed(body: Body, send: &mut impl FnMut(Reply, Piece) -> bool) {
    let delivered = match body {
        Body::File(region) => send(Reply::File(region), Piece::Part),
        Body::Stream { chunks, .. } => {
            for item in chunks {
                match item {
                    Ok(chunk) if chunk.is_empty() => {}
                    Ok(chunk) => {
                        // A closed connection ends the stream; dropping it lets the
                        // application clean up (WSGI `close()`).
                        if !send(Reply::Bytes(chunk), Piece::Now) {
                            return;
                        }
                    }
                    Err(_) => {
                        send(Reply::Failed, Piece::Last);
                        return;
                    }
                }
            }
            true
        }
        Body::Empty | Body::Bytes(_) => true,
    };
    if delivered {
        send(Reply::End, Piece::Last);
    }
}

/// Marks the job ended when it returns or unwinds. After a panic it also wakes the session,
/// which then finds the job gone (and answers 500) instead of waiting for a reply that
/// never comes; a normal end woke it already.
struct JobDone(Queues<Reply>, Waker);

impl Drop for JobDone {
    fn drop(&mut self) {
        self.0.finish_job();
        if std::thread::panicking() {
            (self.1)();
        }
    }
}

/// How a response piece leaves.
#[derive(PartialEq)]
enum Piece {
    /// More follows at once.
    Part,
    /// Reaches the client as it is produced (a streamed head or chunk, server-sent events):
    /// inline, the connection is pumped at once.
    Now,
    /// Ends the job; its wake-up may wait until this pool thread is idle.
    Last,
}

/// The job's host, shared by the body reader and the response sink (both may pump the
/// connection, one at a time: they run on the application's one thread).
struct Host<'h>(Mutex<&'h mut dyn JobHost>);

impl Host<'_> {
    fn pump(&self, want_input: bool) -> Option<io::Result<()>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pump(want_input)
    }

    fn wake_when_idle(&self, waker: &Waker) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wake_when_idle(waker);
    }
}

/// The response pieces' way to the session, lent to the application as its
/// [`ResponseSink`] (WSGI `write()`) and used for what it returns.
struct Sink<'q, 'h> {
    queues: &'q Queues<Reply>,
    waker: &'q Waker,
    host: &'q Host<'h>,
    /// The head left through the sink while the application ran.
    started: bool,
}

impl Sink<'_, '_> {
    /// Queues one piece and wakes the session as `piece` says. `false`: the session is gone.
    fn send(&mut self, reply: Reply, piece: Piece) -> bool {
        let delivered = self.push(reply);
        if piece == Piece::Last {
            self.host.wake_when_idle(self.waker);
            return delivered;
        }
        (self.waker)();
        delivered && (piece == Piece::Part || !matches!(self.host.pump(false), Some(Err(_))))
    }

    /// Queues `reply`: waiting on a thread of its own, pumping the connection inline until
    /// the session makes room. `false`: the session is gone.
    fn push(&mut self, mut reply: Reply) -> bool {
        loop {
            match self.queues.push_reply(reply) {
                Ok(()) => return true,
                Err(None) => return false,
                Err(Some(back)) => {
                    reply = back;
                    match self.host.pump(false) {
                        None => self.queues.wait_for_room(),
                        Some(Ok(())) => {}
                        Some(Err(_)) => return false,
                    }
                }
            }
        }
    }
}

impl ResponseSink for Sink<'_, '_> {
    fn send_head(&mut self, status: u16, headers: HeaderList, len: Option<u64>) -> io::Result<()> {
        if self.started {
            return Err(io::Error::other("the response head was sent already"));
        }
        self.started = true;
        let head = Reply::Head {
            status,
            headers,
            len,
        };
        // The head waits for the first body bytes: one packet.
        self.send(head, Piece::Part).then_some(()).ok_or_else(gone)
    }

    fn send_body(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        if !self.started {
            return Err(io::Error::other("body bytes before the response head"));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.send(Reply::Bytes(bytes), Piece::Now)
            .then_some(())
            .ok_or_else(gone)
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "client went away")
}

/// The application's view of the body: chunks from the session, waiting for them.
struct ChannelBody<'q, 'h> {
    queues: Queues<Reply>,
    waker: Waker,
    asked: bool,
    current: Vec<u8>,
    pos: usize,
    /// A buffered body spooled to a file, read before the chunks after it.
    file: Option<std::fs::File>,
    done: bool,
    host: &'q Host<'h>,
}

impl ChannelBody<'_, '_> {
    /// The next chunk from the session: blocking on a thread of its own, pumping the
    /// connection inline until the session delivers one.
    fn next_chunk(&mut self) -> io::Result<BodyChunk> {
        loop {
            match self.queues.try_pop_body() {
                Ok(Some(chunk)) => return Ok(chunk),
                Err(()) => return Err(gone()),
                Ok(None) => match self.host.pump(true) {
                    None => self.queues.wait_for_body(),
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(e),
                },
            }
        }
    }
}

impl Read for ChannelBody<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.asked {
            self.asked = true;
            self.queues.want_body();
            (self.waker)();
        }
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if let Some(file) = &mut self.file {
                match file.read(buf)? {
                    0 => self.file = None,
                    n => return Ok(n),
                }
            }
            if self.done {
                return Ok(0);
            }
            match self.next_chunk()? {
                BodyChunk::Data(data) => {
                    self.current = data;
                    self.pos = 0;
                    // Room freed in the queue: let the session read more.
                    (self.waker)();
                }
                BodyChunk::File(file) => self.file = Some(file),
                BodyChunk::End => self.done = true,
                BodyChunk::Failed(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                BodyChunk::TimedOut => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request body timed out",
                    ))
                }
            }
        }
    }
}
