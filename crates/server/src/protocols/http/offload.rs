//! Running a blocking application off an event loop.
//!
//! The request goes to a pool thread; the session feeds it body bytes through a small
//! bounded queue and receives the response in pieces through another. Both queues are
//! bounded, so a slow client slows the application (backpressure) instead of growing
//! memory, and a streaming application never blocks the loop. Every message is followed by
//! a wake-up of the driver.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;

use ironhorse_app::{Body, ConnInfo, FileRegion, HeaderList, Request, RequestHead, Service};

use crate::offload_pool::{wake_when_idle, OffloadPool};
use crate::session::Waker;

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
    /// Typed, so the application side can tell a malformed body (400/413) from EOF.
    Failed(ironhorse_h1::Error),
}

/// The session's side of one offloaded request.
pub(super) struct Exchange {
    /// The pool thread running the request (0 until it starts).
    thread: Arc<std::sync::atomic::AtomicU64>,
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
    /// Starts `service` on `head` in the pool.
    pub fn start(
        pool: &OffloadPool,
        service: Arc<dyn Service>,
        head: RequestHead,
        info: ConnInfo,
        waker: Waker,
    ) -> Exchange {
        let (reply_tx, replies) = sync_channel(REPLY_QUEUE);
        let (body_tx, body_rx) = sync_channel(BODY_QUEUE);
        let wants_body = Arc::new(AtomicBool::new(false));
        let wants = wants_body.clone();
        let thread = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let running_on = thread.clone();
        pool.spawn(move || {
            running_on.store(ironhorse_sys::current_thread_id(), Ordering::SeqCst);
            run(
                &*service,
                &head,
                &info,
                ChannelBody {
                    chunks: body_rx,
                    wants,
                    waker: waker.clone(),
                    asked: false,
                    current: Vec::new(),
                    pos: 0,
                    done: false,
                },
                reply_tx,
                &waker,
            )
        });
        Exchange {
            thread,
            replies,
            body: Some(body_tx),
            held: None,
            wants_body,
        }
    }

    /// The pool thread running the request, once it started.
    pub fn thread(&self) -> Option<u64> {
        Some(self.thread.load(Ordering::SeqCst)).filter(|t| *t != 0)
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
    pub fn body_end(&mut self, error: Option<ironhorse_h1::Error>) {
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

/// Runs on a pool thread: the application call and its response stream.
fn run(
    service: &dyn Service,
    head: &RequestHead,
    info: &ConnInfo,
    mut body: ChannelBody,
    replies: SyncSender<Reply>,
    waker: &Waker,
) {
    let send = |reply: Reply| {
        let delivered = replies.send(reply).is_ok();
        waker();
        delivered
    };
    let response = service.call(Request {
        head,
        body: &mut body,
        conn: info,
    });
    let (status, headers) = (response.status, response.headers);
    let len = response.body.len_hint();
    let delivered = match response.body {
        Body::Empty => {
            let _ = replies.send(Reply::Whole {
                status,
                headers,
                body: Vec::new(),
            });
            return wake_when_idle(waker);
        }
        Body::Bytes(body) => {
            let _ = replies.send(Reply::Whole {
                status,
                headers,
                body,
            });
            return wake_when_idle(waker);
        }
        _ if !send(Reply::Head {
            status,
            headers,
            len,
        }) =>
        {
            return
        }
        Body::File(region) => send(Reply::File(region)),
        Body::Stream { chunks, .. } => {
            for item in chunks {
                match item {
                    Ok(chunk) if chunk.is_empty() => {}
                    Ok(chunk) => {
                        // A closed connection ends the stream; dropping it lets the
                        // application clean up (WSGI `close()`).
                        if !send(Reply::Bytes(chunk)) {
                            return;
                        }
                    }
                    Err(_) => {
                        send(Reply::Failed);
                        return;
                    }
                }
            }
            true
        }
    };
    if delivered {
        send(Reply::End);
    }
}

/// The application's view of the body: chunks from the session, waiting for them.
struct ChannelBody {
    chunks: Receiver<BodyChunk>,
    wants: Arc<AtomicBool>,
    waker: Waker,
    asked: bool,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelBody {
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
            match self.chunks.recv() {
                Ok(BodyChunk::Data(data)) => {
                    self.current = data;
                    self.pos = 0;
                    // Room freed in the queue: let the session read more.
                    (self.waker)();
                }
                Ok(BodyChunk::End) => self.done = true,
                Ok(BodyChunk::Failed(e)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e))
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "client went away",
                    ))
                }
            }
        }
    }
}
