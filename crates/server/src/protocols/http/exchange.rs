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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;

use ironhorse_app::{Body, ConnInfo, FileRegion, HeaderList, Request, RequestHead, Service};

use super::timeout::TimerState;
use crate::offload_pool::wake_when_idle;
use crate::session::{Job, JobHost, Waker};

/// Response pieces queued from the application thread before it waits for the client.
const REPLY_QUEUE: usize = 8;
/// Request body chunks queued for the application before the session stops reading.
const BODY_QUEUE: usize = 4;

/// A piece of the response, from the application thread.
pub(super) enum Reply {
    /// A whole in-memory response in one message (the common case: one hand-off, one wake).
    Whole {
        status: u16,
        headers: HeaderList,
        body: Vec<u8>,
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

/// A piece of the request body, for the application thread.
enum BodyChunk {
    Data(Vec<u8>),
    End,
    Failed(String),
}

/// The session's side of one application request.
pub(super) struct Exchange {
    replies: Receiver<Reply>,
    body: Option<SyncSender<BodyChunk>>,
    /// A body chunk that did not fit in the queue yet.
    held: Option<BodyChunk>,
    wants_body: Arc<AtomicBool>,
}

/// What the session should do about the request body.
pub(super) enum BodyDemand {
    /// Send more body bytes.
    More,
    /// The queue is full or the body is complete.
    Enough,
}

impl Exchange {
    /// The exchange for `service` answering `head`, and the job that runs the application
    /// (for the driver's executor). `timer` learns the thread the job runs on (to cancel
    /// it) and whether it finished.
    pub fn new(
        service: Arc<dyn Service>,
        head: RequestHead,
        info: ConnInfo,
        waker: Waker,
        timer: Option<Arc<TimerState>>,
    ) -> (Exchange, Job) {
        let (reply_tx, replies) = sync_channel(REPLY_QUEUE);
        let (body_tx, body_rx) = sync_channel(BODY_QUEUE);
        let wants_body = Arc::new(AtomicBool::new(false));
        let wants = wants_body.clone();
        let job: Job = Box::new(move |host: &mut dyn JobHost| {
            let _running = timer.as_ref().map(|t| t.running(host));
            let _panic = WakeOnPanic(waker.clone());
            let body = ChannelBody {
                chunks: body_rx,
                wants,
                waker: waker.clone(),
                asked: false,
                current: Vec::new(),
                pos: 0,
                done: false,
                host,
            };
            run(&*service, &head, &info, body, reply_tx, &waker)
        });
        let exchange = Exchange {
            replies,
            body: Some(body_tx),
            held: None,
            wants_body,
        };
        (exchange, job)
    }

    /// Whether the application asked for the body (time to send `100 Continue`).
    pub fn body_requested(&self) -> bool {
        self.wants_body.load(Ordering::Acquire)
    }

    /// How the body feed stands.
    pub fn body_demand(&mut self) -> BodyDemand {
        if self.body.is_none() {
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

    /// The body ended; `error` if it ended badly.
    pub fn body_end(&mut self, error: Option<String>) {
        let last = match error {
            Some(e) => BodyChunk::Failed(e),
            None => BodyChunk::End,
        };
        if let Err(chunk) = self.try_send(last) {
            self.held = Some(chunk);
        }
        if self.held.is_none() {
            self.body = None;
        }
    }

    fn try_send(&mut self, chunk: BodyChunk) -> Result<(), BodyChunk> {
        let Some(sender) = &self.body else {
            return Ok(());
        };
        let finished = !matches!(chunk, BodyChunk::Data(_));
        match sender.try_send(chunk) {
            Ok(()) => {
                if finished {
                    self.body = None;
                }
                Ok(())
            }
            Err(TrySendError::Full(chunk)) => Err(chunk),
            // The application stopped reading: drop the rest.
            Err(TrySendError::Disconnected(_)) => {
                self.body = None;
                Ok(())
            }
        }
    }

    /// The next response piece, if one is ready. `None` with `gone` true means the
    /// application thread ended without finishing (a panic).
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ()> {
        match self.replies.try_recv() {
            Ok(reply) => Ok(Some(reply)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(()),
        }
    }
}

/// The job: the application call and its response stream, sent to the session.
fn run(
    service: &dyn Service,
    head: &RequestHead,
    info: &ConnInfo,
    mut body: ChannelBody<'_>,
    replies: SyncSender<Reply>,
    waker: &Waker,
) {
    let response = service.call(Request {
        head,
        body: &mut body,
        conn: info,
    });
    let host = body.host;
    let mut send = |reply: Reply, piece: Piece| -> bool {
        let delivered = send_reply(&replies, reply, host);
        if piece == Piece::Last {
            wake_when_idle(waker);
            return delivered;
        }
        waker();
        delivered && (piece == Piece::Part || !matches!(host.pump(false), Some(Err(_))))
    };
    let (status, headers, body) = (response.status, response.headers, response.body);
    let len = body.len_hint();
    let body = match body {
        Body::Empty => Vec::new(),
        Body::Bytes(bytes) => bytes,
        streamed => {
            // A streamed head leaves at once; a file's waits for the file (one packet).
            let piece = match streamed {
                Body::Stream { .. } => Piece::Now,
                _ => Piece::Part,
            };
            if send(
                Reply::Head {
                    status,
                    headers,
                    len,
                },
                piece,
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

/// Wakes the session if the application panics: it then finds the job gone (and answers
/// 500) instead of waiting for a reply that never comes. A normal end woke it already.
struct WakeOnPanic(Waker);

impl Drop for WakeOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
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

/// Queues `reply`: blocking on a thread of its own, pumping the connection inline until
/// the session makes room. `false`: the session is gone.
fn send_reply(replies: &SyncSender<Reply>, mut reply: Reply, host: &mut dyn JobHost) -> bool {
    loop {
        match replies.try_send(reply) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => match host.pump(false) {
                None => return replies.send(back).is_ok(),
                Some(Ok(())) => reply = back,
                Some(Err(_)) => return false,
            },
        }
    }
}

/// The application's view of the body: chunks from the session, waiting for them.
struct ChannelBody<'h> {
    chunks: Receiver<BodyChunk>,
    wants: Arc<AtomicBool>,
    waker: Waker,
    asked: bool,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    host: &'h mut dyn JobHost,
}

impl ChannelBody<'_> {
    /// The next chunk from the session: blocking on a thread of its own, pumping the
    /// connection inline until the session delivers one.
    fn next_chunk(&mut self) -> io::Result<BodyChunk> {
        let gone = || io::Error::new(io::ErrorKind::ConnectionAborted, "client went away");
        loop {
            match self.chunks.try_recv() {
                Ok(chunk) => return Ok(chunk),
                Err(TryRecvError::Disconnected) => return Err(gone()),
                Err(TryRecvError::Empty) => match self.host.pump(true) {
                    None => return self.chunks.recv().map_err(|_| gone()),
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(e),
                },
            }
        }
    }
}

impl Read for ChannelBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.asked {
            self.asked = true;
            self.wants.store(true, Ordering::Release);
            (self.waker)();
        }
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            match self.next_chunk()? {
                BodyChunk::Data(data) => {
                    self.current = data;
                    self.pos = 0;
                    // Room freed in the queue: let the session read more.
                    (self.waker)();
                }
                BodyChunk::End => self.done = true,
                BodyChunk::Failed(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}
