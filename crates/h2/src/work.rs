//! Where a stream's response comes from, and where its request body goes: an inline
//! service's answer, a blocking service's job (the HTTP/1.1 session's [`Exchange`]), or a
//! non-blocking application's [`AppExchange`] (ASGI). One enum, so a stream moves body
//! bytes and response pieces the same way whichever application answers.

use ironhorse_app::{AppEvent, AppExchange, ChunkStream};
use ironhorse_protocol::{BodyDemand, Exchange, Reply};

use crate::gather::Gather;

/// What the application side of a stream is.
pub(crate) enum Work {
    /// Everything is queued already (an inline answer, a refusal).
    Queued,
    /// An inline service's streamed body, pulled as capacity allows.
    Chunks(ChunkStream),
    /// A blocking service's job.
    Offloaded(Exchange),
    /// A non-blocking application (ASGI): no job, it wakes the driver with news.
    NonBlocking(Box<dyn AppExchange>),
    /// A blocking service's body read ahead; its job starts once it is in.
    Gathering(Box<Gather>),
}

/// A piece of the request body for the application.
pub(crate) enum BodyPiece {
    Data {
        data: Vec<u8>,
        last: bool,
    },
    End,
    /// The body ended badly (too large, or the client broke the stream).
    Failed(ironhorse_h1::Error),
}

/// The next response piece, whatever the work.
pub(crate) enum Piece {
    Chunk(Vec<u8>),
    Reply(Reply),
    Event(AppEvent),
    /// The inline stream ended.
    Ended,
    /// The work failed (a chunk error, a job gone).
    Failed,
    /// Nothing ready.
    None,
}

impl Work {
    /// Whether the application has room for body bytes.
    pub fn wants_body(&mut self) -> bool {
        match self {
            Work::Offloaded(exchange) => matches!(exchange.body_demand(), BodyDemand::More),
            Work::NonBlocking(exchange) => exchange.wants_body(),
            Work::Gathering(_) => true,
            Work::Queued | Work::Chunks(_) => false,
        }
    }

    /// Whether the application asked for the body yet (`100 Continue` is due).
    pub fn body_requested(&self) -> bool {
        match self {
            Work::Offloaded(exchange) => exchange.body_requested(),
            Work::NonBlocking(exchange) => exchange.body_requested(),
            Work::Gathering(_) => true,
            Work::Queued | Work::Chunks(_) => false,
        }
    }

    /// Hands a body piece to the application; whether the body is complete for it (no more
    /// pieces to give). A job's body ends only with [`BodyPiece::End`] (once its queue
    /// took the last data: `Exchange` holds one chunk at most).
    pub fn give(&mut self, piece: BodyPiece) -> bool {
        match (self, piece) {
            (Work::Offloaded(exchange), BodyPiece::Data { data, .. }) => {
                exchange.body_data(data);
                false
            }
            (Work::Offloaded(exchange), BodyPiece::End) => {
                exchange.body_end(None);
                true
            }
            (Work::Offloaded(exchange), BodyPiece::Failed(e)) => {
                exchange.body_end(Some(e));
                true
            }
            (Work::NonBlocking(exchange), BodyPiece::Data { data, last }) => {
                exchange.body(data, !last);
                last
            }
            (Work::NonBlocking(exchange), BodyPiece::End) => {
                exchange.body(Vec::new(), false);
                true
            }
            // ASGI has no "the body failed": the application hears the client is gone.
            (Work::NonBlocking(exchange), BodyPiece::Failed(_)) => {
                exchange.disconnect();
                true
            }
            _ => true,
        }
    }

    /// The body stalled past `--body-timeout`: the application's reads fail with a timeout
    /// (WSGI), or it hears the client is gone (ASGI).
    pub fn body_timed_out(&mut self) {
        match self {
            Work::Offloaded(exchange) => exchange.body_timed_out(),
            Work::NonBlocking(exchange) => exchange.disconnect(),
            Work::Queued | Work::Chunks(_) | Work::Gathering(_) => {}
        }
    }

    /// The stream passed `--request-timeout`: a non-blocking application's task is
    /// cancelled (a job's thread was cancelled by the watchdog already).
    pub fn cancel(&mut self) {
        if let Work::NonBlocking(exchange) = self {
            exchange.cancel();
        }
    }

    /// The client reset the stream.
    pub fn disconnect(&mut self) {
        if let Work::NonBlocking(exchange) = self {
            exchange.disconnect();
        }
    }

    /// The next response piece, if one is ready.
    pub fn next(&mut self) -> Piece {
        match self {
            Work::Queued | Work::Gathering(_) => Piece::None,
            Work::Chunks(chunks) => match chunks.next() {
                Some(Ok(chunk)) => Piece::Chunk(chunk),
                Some(Err(_)) => Piece::Failed,
                None => Piece::Ended,
            },
            Work::Offloaded(exchange) => match exchange.next_reply() {
                Ok(Some(reply)) => Piece::Reply(reply),
                Ok(None) => Piece::None,
                // The job ended without finishing (a panic).
                Err(_job_gone) => Piece::Failed,
            },
            Work::NonBlocking(exchange) => match exchange.next_event() {
                Some(event) => Piece::Event(event),
                None => Piece::None,
            },
        }
    }
}
