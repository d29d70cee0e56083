//! A blocking application's request body sent without `content-length` (HTTP/2 needs none:
//! the stream's end marks the body's), read ahead before the job starts. A WSGI
//! application has no "read until the end" without a length: Django reads
//! `CONTENT_LENGTH` bytes and takes a missing one as 0, so the body would be lost. As an
//! HTTP/1.1 chunked body is (`--buffer-request-body`), the body is read whole first, in
//! memory up to `--buffer-request-body-memory` and in an unlinked temporary file beyond
//! it, and the application gets its real length. One longer than the buffer goes on as it
//! arrives, starting with what was read, without a length (as a long chunked one does).

use ironhorse_app::RequestHead;
use ironhorse_h1::BodyFraming;
use ironhorse_protocol::{Prefilled, Spool, Spooled};

use crate::stream::Launch;
use crate::work::BodyPiece;

/// A body being read ahead of its application's call.
pub(crate) struct Gather {
    head: RequestHead,
    spool: Spool,
    /// The most to read ahead (`--buffer-request-body`).
    limit: u64,
    /// What the call needs, once the body is in.
    pub launch: Launch,
}

/// A call to make: the request, its body read ahead, and what starting it needs.
pub(crate) struct Call {
    pub head: RequestHead,
    pub body: Prefilled<Spooled>,
    pub launch: Launch,
}

/// What a piece of body came to.
pub(crate) enum Gathered {
    /// More is needed.
    More(Box<Gather>),
    /// Time to call the application, with the whole body or its start.
    Ready(Box<Call>),
    /// The body cannot be read ahead: a status for the client (413, 400) or the server's
    /// own trouble (500, the temporary file).
    Refused(u16),
}

impl Gather {
    /// Whether `head`'s body is one to read ahead: one of unknown length (sent without
    /// `content-length`; see `head::request_head`).
    pub fn wanted(head: &RequestHead, limit: u64) -> bool {
        limit > 0 && head.body_framing() == BodyFraming::Chunked
    }

    pub fn new(head: RequestHead, limit: u64, memory: u64, launch: Launch) -> Gather {
        Gather {
            head,
            spool: Spool::new(memory, None),
            limit,
            launch,
        }
    }

    /// Takes a piece of the body.
    pub fn take(mut self: Box<Self>, piece: BodyPiece) -> Gathered {
        match piece {
            BodyPiece::Data { data, last } => {
                if self.spool.write(&data).is_err() {
                    return Gathered::Refused(500);
                }
                if last {
                    self.finish(true)
                } else if self.spool.len() > self.limit {
                    self.finish(false)
                } else {
                    Gathered::More(self)
                }
            }
            BodyPiece::End => self.finish(true),
            BodyPiece::Failed(e) => Gathered::Refused(e.status()),
        }
    }

    /// The body read so far, whole or as the start of a longer one.
    fn finish(self: Box<Self>, whole: bool) -> Gathered {
        let Gather {
            head,
            spool,
            launch,
            ..
        } = *self;
        let body = match spool.finish() {
            Ok(body) if whole => Prefilled::Whole(body),
            Ok(body) => Prefilled::Start(body),
            Err(_) => return Gathered::Refused(500),
        };
        Gathered::Ready(Box::new(Call { head, body, launch }))
    }
}
