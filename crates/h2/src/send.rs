//! The sending half of one stream: response pieces waiting for HTTP/2 send capacity.
//! Data leaves only as the peer's flow-control windows allow (`reserve_capacity`, then
//! `poll_capacity`), so a slow client holds a bounded amount here and the application
//! (whose reply queue is bounded too) waits. File regions are read in chunks as capacity
//! comes: DATA frames cannot use `sendfile`.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::SendStream;
use ironhorse_app::FileRegion;

/// Largest piece read from a file at once.
const FILE_CHUNK: u64 = 64 * 1024;

/// What the sending side did in one turn.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Waiting for capacity or for more pieces.
    Waiting,
    /// Data left (the caller may poll the connection to flush it).
    Progress,
    /// The stream's end was sent.
    Finished,
    /// The stream is gone (reset by the peer, or a file could not be read: reset here).
    Broken,
    /// What was produced before the application failed is handed over: the stream must
    /// now be reset (never ended as if complete).
    ResetDue,
}

#[derive(Default)]
pub(crate) struct Outgoing {
    queue: VecDeque<Bytes>,
    file: Option<FileRegion>,
    /// No more pieces will come: end the stream after the queue.
    end: bool,
    /// Trailer fields that end the stream after the queue (instead of an empty DATA frame).
    trailers: Option<http::HeaderMap>,
    /// The application failed: reset the stream after the queue.
    failed: bool,
    /// Body bytes the head's `content-length` still allows (none declared: `None`). Bytes
    /// beyond it are dropped; a body ending short of it is reset, never ended as whole
    /// (RFC 9113 §8.1.1).
    allowed: Option<u64>,
    /// Bytes handed to h2 (for the access log).
    pub sent: u64,
}

impl Outgoing {
    /// Whether few enough pieces wait that more may be taken from the application.
    pub fn wants_more(&self) -> bool {
        !self.end && !self.failed && self.file.is_none() && self.queue.len() < 2
    }

    /// The head declared `len` body bytes.
    pub fn declare(&mut self, len: Option<u64>) {
        self.allowed = len;
    }

    /// How much of `n` offered bytes the declared length still allows.
    fn allow(&mut self, n: u64) -> u64 {
        match &mut self.allowed {
            Some(left) => {
                let n = n.min(*left);
                *left -= n;
                n
            }
            None => n,
        }
    }

    pub fn push(&mut self, mut data: Bytes) {
        data.truncate(self.allow(data.len() as u64) as usize);
        if !data.is_empty() {
            self.queue.push_back(data);
        }
    }

    pub fn push_file(&mut self, mut region: FileRegion) {
        region.len = self.allow(region.len);
        if region.len > 0 {
            self.file = Some(region);
        }
    }

    pub fn end(&mut self) {
        self.end = true;
        self.fail_if_short();
    }

    /// No more pieces will come: end the stream with these trailer fields after the queue.
    pub fn end_with_trailers(&mut self, trailers: http::HeaderMap) {
        self.trailers = Some(trailers);
        self.end = true;
        self.fail_if_short();
    }

    /// A body that ends short of its declared length is reset after what was produced.
    fn fail_if_short(&mut self) {
        if self.allowed.is_some_and(|left| left > 0) {
            self.failed = true;
        }
    }

    /// The application failed after its head: send what it produced, then reset.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    fn is_drained(&self) -> bool {
        self.queue.is_empty() && self.file.is_none()
    }

    /// The size of the next piece to send.
    fn next_len(&self) -> usize {
        match (&self.queue.front(), &self.file) {
            (Some(data), _) => data.len(),
            (None, Some(region)) => region.len.min(FILE_CHUNK) as usize,
            (None, None) => 0,
        }
    }

    /// Takes up to `n` bytes of the next piece.
    fn take(&mut self, n: usize) -> std::io::Result<Bytes> {
        if let Some(front) = self.queue.front_mut() {
            let piece = if front.len() <= n {
                self.queue.pop_front().unwrap_or_default()
            } else {
                front.split_to(n)
            };
            return Ok(piece);
        }
        let Some(region) = &mut self.file else {
            return Ok(Bytes::new());
        };
        let len = (n as u64).min(region.len).min(FILE_CHUNK) as usize;
        let mut buf = vec![0u8; len];
        region.file.read_exact_at(&mut buf, region.offset)?;
        region.offset += len as u64;
        region.len -= len as u64;
        if region.len == 0 {
            self.file = None;
        }
        Ok(Bytes::from(buf))
    }

    /// Sends what capacity allows on `stream`.
    pub fn send(&mut self, stream: &mut SendStream<Bytes>, cx: &mut Context<'_>) -> Sent {
        let mut progress = false;
        loop {
            if self.is_drained() {
                if self.failed {
                    return Sent::ResetDue;
                }
                if !self.end {
                    return if progress {
                        Sent::Progress
                    } else {
                        Sent::Waiting
                    };
                }
                let ended = match self.trailers.take() {
                    Some(trailers) => stream.send_trailers(trailers),
                    None => stream.send_data(Bytes::new(), true),
                };
                return match ended {
                    Ok(()) => Sent::Finished,
                    Err(_) => Sent::Broken,
                };
            }
            stream.reserve_capacity(self.next_len());
            let room = match stream.poll_capacity(cx) {
                Poll::Ready(Some(Ok(room))) => room,
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Sent::Broken,
                Poll::Pending => {
                    return if progress {
                        Sent::Progress
                    } else {
                        Sent::Waiting
                    };
                }
            };
            if room == 0 {
                return if progress {
                    Sent::Progress
                } else {
                    Sent::Waiting
                };
            }
            let Ok(piece) = self.take(room) else {
                stream.send_reset(h2::Reason::INTERNAL_ERROR);
                return Sent::Broken;
            };
            let last = self.end && !self.failed && self.is_drained() && self.trailers.is_none();
            self.sent += piece.len() as u64;
            if stream.send_data(piece, last).is_err() {
                return Sent::Broken;
            }
            if last {
                return Sent::Finished;
            }
            progress = true;
        }
    }
}
