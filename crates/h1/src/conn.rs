//! One connection's state: reading heads and bodies, writing responses, keep-alive.
use crate::body::{Decoder, Got};
use crate::head::{parse_head, HeadScan, HeadStore};
use crate::{BodyFraming, Error, Limits, RequestHead, Version};

mod output;

pub(crate) use output::put_content_length;

/// The result of [`ServerConn::read_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRead {
    /// `n` body bytes were copied into the caller's buffer.
    Data(usize),
    /// The buffered input holds no more body bytes: read from the socket and call again.
    NeedMore,
    /// The body is complete (for chunked bodies, trailers are available now).
    End,
}

/// What the connection does after a response finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ready for the next request (maybe already buffered: call `next_request`).
    KeepAlive,
    /// Send what was written, then close the connection.
    Close,
}

/// Smallest spare space `read_buf` hands out.
const MIN_SPARE: usize = 4096;
/// First allocation of the input buffer.
const INITIAL_BUF: usize = 8192;
/// A head given back ([`ServerConn::recycle`]) keeps its buffers for the next one only up
/// to these sizes, so a connection that once got a huge head does not hold it.
const SPARE_HEAD_BYTES: usize = 8192;
const SPARE_HEAD_FIELDS: usize = 64;

/// The request side.
#[derive(Debug)]
enum Reading {
    /// Waiting for (or in the middle of) a head; also "the current body is complete".
    Head,
    /// Reading the current request's body.
    Body(Decoder),
    /// Discarding the previous request's unread body, at most `budget` more bytes.
    Draining { decoder: Decoder, budget: u64 },
    /// No more requests on this connection.
    Closed,
}

/// How the response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
    CloseDelimited,
    /// HEAD, 1xx, 204, 304: whatever the application writes is dropped.
    NoBody,
}

/// The response side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// No head written for the current request.
    Idle,
    /// Head written; `remaining` counts down a declared length.
    Body { framing: Framing, remaining: u64 },
    /// Nothing more will be written (aborted, errored or closing).
    Done,
}

/// What the connection remembers about the current request.
#[derive(Debug, Clone, Copy)]
struct Current {
    version: Version,
    keep_alive: bool,
    expects_continue: bool,
    is_head: bool,
}

/// The server side of one HTTP/1.1 connection.
pub struct ServerConn {
    limits: Limits,
    require_host: bool,
    /// Every response ends the connection; none is chunked (see `set_close_delimited`).
    close_delimited: bool,
    /// Input: bytes `start..end` are received and unparsed; `end..` is spare space.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    scan: HeadScan,
    /// The buffers of the last head given back, for the next head to be parsed into.
    spare: HeadStore,
    reading: Reading,
    writing: Writing,
    current: Option<Current>,
    continue_sent: bool,
    /// The head written said `Connection: close` (or implied it).
    close_after: bool,
    /// The last request did not want keep-alive: parse no further requests.
    last_request: bool,
    closed: bool,
    /// A response was cut short whose end only the connection's close marks.
    cut_unmarked: bool,
    /// The server is going away: the next response says `Connection: close`.
    retiring: bool,
    trailers: Vec<(String, Vec<u8>)>,
}

impl ServerConn {
    pub fn new(limits: Limits) -> Self {
        ServerConn {
            limits,
            require_host: true,
            close_delimited: false,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            scan: HeadScan::default(),
            spare: HeadStore::default(),
            reading: Reading::Head,
            writing: Writing::Idle,
            current: None,
            continue_sent: false,
            close_after: false,
            cut_unmarked: false,
            retiring: false,
            last_request: false,
            closed: false,
            trailers: Vec::new(),
        }
    }

    /// The server is going away (a worker stopping or retiring): from the next response head
    /// on, the connection closes after the response, said with `Connection: close`, so a
    /// keep-alive client sends its next request elsewhere instead of into a closing socket.
    pub fn retire(&mut self) {
        self.retiring = true;
    }

    /// Whether an HTTP/1.1 request without `Host` is rejected with 400 (RFC 9112 §3.2; the
    /// default). Turning it off matches gunicorn, which accepts such requests.
    pub fn set_require_host(&mut self, required: bool) {
        self.require_host = required;
    }

    /// When on, every response ends the connection (`Connection: close`) and one of unknown
    /// length is close-delimited, never chunked: for a peer that reads a response as uWSGI
    /// writes it, until the connection ends (nginx's `uwsgi_pass` decodes no chunks, and
    /// must not keep the connection for another request). Off by default.
    pub fn set_close_delimited(&mut self, on: bool) {
        self.close_delimited = on;
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    // ---- input ----

    /// Free space at the end of the input buffer to `read()` into (at least 4 KiB; grows).
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < MIN_SPARE {
            if self.start > 0 {
                // Shift down only when the tail is short of space.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < MIN_SPARE {
                let want = (self.end + MIN_SPARE).max(INITIAL_BUF);
                self.buf.resize(want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Frees the input buffer while nothing is buffered, so an idle keep-alive connection
    /// costs almost no memory; the next [`read_buf`](Self::read_buf) allocates it again.
    pub fn release_idle_buffer(&mut self) {
        if self.start == self.end {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
        self.spare = HeadStore::default();
    }

    /// Gives a request head back once it is no longer needed: the next head is parsed into
    /// its buffers instead of new allocations. Optional (a head may as well be dropped);
    /// any head will do, and what a small head does not need is not kept.
    pub fn recycle(&mut self, head: RequestHead) {
        let (bytes, fields) = (head.buf.into_bytes(), head.fields);
        if bytes.capacity() <= SPARE_HEAD_BYTES && bytes.capacity() >= self.spare.bytes.capacity() {
            self.spare.bytes = bytes;
        }
        if fields.capacity() <= SPARE_HEAD_FIELDS
            && fields.capacity() >= self.spare.fields.capacity()
        {
            self.spare.fields = fields;
        }
    }

    /// Marks `n` bytes of [`read_buf`](Self::read_buf) as received.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies received bytes in (same as `read_buf` + `filled`).
    /// The buffer grows only by what arrives, so a connection fed small requests (from a
    /// driver's shared read buffer) stays small.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.start > 0 && self.buf.len() - self.end < data.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < data.len() {
            self.buf.resize(self.end + data.len(), 0);
        }
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// The received bytes not parsed yet (to recognise another protocol's preface).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether the peer ended its input ([`feed_eof`](Self::feed_eof)).
    pub fn input_ended(&self) -> bool {
        self.eof
    }

    /// Takes the received, unparsed bytes and whether input ended: they belong to the next
    /// protocol once this connection leaves HTTP/1.1.
    pub fn take_input(&mut self) -> (Vec<u8>, bool) {
        let input = self.buf[self.start..self.end].to_vec();
        self.start = 0;
        self.end = 0;
        (input, self.eof)
    }

    /// The peer closed its sending side.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The connection is done for: no more reading or writing.
    fn close(&mut self) {
        self.closed = true;
        self.reading = Reading::Closed;
    }

    fn fail(&mut self, e: Error) -> Error {
        self.close();
        e
    }

    /// The next request head. `Ok(None)` means more bytes are needed (or, once
    /// [`is_closed`](Self::is_closed), that there will be no more requests).
    /// Only valid when no response is in progress. Skips leftover body bytes of the previous
    /// request first (bounded by `Limits::max_drain`). Leading empty lines are ignored.
    /// EOF in the middle of a head is `Err(Error::Incomplete)`; EOF between requests is
    /// `Ok(None)` with `is_closed()` true.
    pub fn next_request(&mut self) -> Result<Option<RequestHead>, Error> {
        if self.closed || self.last_request {
            return Ok(None);
        }
        // A body abandoned without `finish` is drained like an unread one.
        self.start_draining();
        if let Reading::Draining { .. } = self.reading {
            if !self.drain() {
                if self.eof && !self.closed {
                    self.close();
                }
                return Ok(None);
            }
        }
        self.current = None;
        self.writing = Writing::Idle;
        self.trailers.clear();
        self.continue_sent = false;
        self.close_after = false;

        if self.start == self.end && !self.eof {
            // Nothing buffered (the usual state after a response): no head to scan yet.
            return Ok(None);
        }
        if !self.scan.started() {
            while self.buf[self.start..self.end].starts_with(b"\r\n") {
                self.consume(2);
            }
        }
        let data = &self.buf[self.start..self.end];
        match self.scan.scan(data, &self.limits) {
            Err(e) => Err(self.fail(e)),
            Ok(Some(len)) => {
                let (fields, rl_end) = (self.scan.fields(), self.scan.request_line_end());
                self.scan = HeadScan::default();
                let head = parse_head(
                    &self.buf[self.start..self.start + len],
                    fields,
                    rl_end,
                    std::mem::take(&mut self.spare),
                    &self.limits,
                    self.require_host,
                )
                .map_err(|e| self.fail(e))?;
                self.consume(len);
                self.start_request(&head);
                Ok(Some(head))
            }
            Ok(None) if self.eof => {
                if self.start < self.end {
                    Err(self.fail(Error::Incomplete))
                } else {
                    self.close();
                    Ok(None)
                }
            }
            Ok(None) => Ok(None),
        }
    }

    fn start_request(&mut self, head: &RequestHead) {
        self.current = Some(Current {
            version: head.version(),
            keep_alive: head.keep_alive(),
            expects_continue: head.expects_continue(),
            is_head: head.is_head(),
        });
        self.last_request = !head.keep_alive();
        self.reading = match head.body_framing() {
            BodyFraming::None | BodyFraming::Length(0) => Reading::Head,
            BodyFraming::Length(n) => Reading::Body(Decoder::Length(n)),
            BodyFraming::Chunked => Reading::Body(Decoder::chunked()),
        };
    }

    /// Turns an unread body into one to discard, with `Limits::max_drain` as the budget.
    fn start_draining(&mut self) {
        self.reading = match std::mem::replace(&mut self.reading, Reading::Closed) {
            Reading::Body(decoder) => Reading::Draining {
                decoder,
                budget: self.limits.max_drain,
            },
            other => other,
        };
    }

    /// Discards buffered body bytes while draining. Returns whether the body is complete;
    /// closes the connection if it is malformed or larger than the budget.
    fn drain(&mut self) -> bool {
        let Reading::Draining { decoder, budget } = &mut self.reading else {
            return true;
        };
        if decoder.known_remaining().is_some_and(|n| n > *budget) {
            self.close();
            return false;
        }
        loop {
            let input = &self.buf[self.start..self.end];
            match decoder.step(input, usize::MAX, &self.limits, &mut self.trailers) {
                Err(_) => {
                    self.close();
                    return false;
                }
                Ok((consumed, got)) => {
                    self.start += consumed;
                    match got {
                        Got::Data(r) => {
                            let n = r.len() as u64;
                            if n > *budget {
                                self.close();
                                return false;
                            }
                            *budget -= n;
                        }
                        Got::NeedMore => {
                            self.consume(0);
                            return false;
                        }
                        Got::End => {
                            self.consume(0);
                            self.reading = Reading::Head;
                            return true;
                        }
                    }
                }
            }
        }
    }

    /// Copies body bytes of the current request into `dst` (de-chunked).
    pub fn read_body(&mut self, dst: &mut [u8]) -> Result<BodyRead, Error> {
        let Reading::Body(decoder) = &mut self.reading else {
            return Ok(BodyRead::End);
        };
        if dst.is_empty() {
            return Ok(BodyRead::Data(0));
        }
        let mut n = 0;
        let mut done = false;
        while n < dst.len() {
            let input = &self.buf[self.start..self.end];
            let step = decoder.step(input, dst.len() - n, &self.limits, &mut self.trailers);
            let (consumed, got) = match step {
                Ok(s) => s,
                Err(e) => return Err(self.fail(e)),
            };
            if let Got::Data(r) = &got {
                dst[n..n + r.len()].copy_from_slice(&input[r.clone()]);
                n += r.len();
            }
            self.start += consumed;
            match got {
                Got::Data(_) => {}
                Got::NeedMore => break,
                Got::End => {
                    done = true;
                    break;
                }
            }
        }
        self.consume(0);
        if done {
            self.reading = Reading::Head;
        }
        if n > 0 {
            Ok(BodyRead::Data(n))
        } else if done {
            Ok(BodyRead::End)
        } else if self.eof {
            Err(self.fail(Error::Incomplete))
        } else {
            Ok(BodyRead::NeedMore)
        }
    }

    /// Trailer fields of the current chunked body, once [`BodyRead::End`] was returned.
    pub fn trailers(&self) -> &[(String, Vec<u8>)] {
        &self.trailers
    }

    /// Whether the current request's body has been read to its end (true if it has none).
    pub fn body_done(&self) -> bool {
        !matches!(self.reading, Reading::Body(_) | Reading::Draining { .. })
    }

    /// Appends `HTTP/1.1 100 Continue\r\n\r\n` if the current request expects it and it was
    /// not sent yet and no final response head was written; call before reading the body.
    pub fn write_continue(&mut self, out: &mut Vec<u8>) {
        let Some(cur) = self.current else { return };
        if cur.expects_continue
            && cur.version == Version::Http11
            && !self.continue_sent
            && self.writing == Writing::Idle
            && matches!(self.reading, Reading::Body(_))
        {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.continue_sent = true;
        }
    }

    /// Whether an unread request body forces the connection to close after this response:
    /// the client awaits a 100 we never sent, or more is left than we are willing to drain.
    fn unread_body_forces_close(&self) -> bool {
        let Reading::Body(decoder) = &self.reading else {
            return false;
        };
        let awaiting_continue =
            self.current.is_some_and(|c| c.expects_continue) && !self.continue_sent;
        awaiting_continue
            || decoder
                .known_remaining()
                .is_some_and(|n| n > self.limits.max_drain)
    }

    /// Whether the current request is a `HEAD` (its answers carry no body).
    pub fn is_head_request(&self) -> bool {
        self.current.is_some_and(|c| c.is_head)
    }

    // ---- state ----

    /// Whether a response head has been written for the current request.
    pub fn head_written(&self) -> bool {
        self.writing != Writing::Idle
    }

    /// Whether the connection is finished (error, close decided, or EOF between requests).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether any unparsed input is buffered (e.g. pipelined requests).
    pub fn has_buffered_input(&self) -> bool {
        self.start < self.end
    }

    /// Whether reading a head is in progress (some bytes of it buffered): used by drivers to
    /// pick the header-read timeout over the keep-alive idle timeout.
    pub fn is_mid_head(&self) -> bool {
        matches!(self.reading, Reading::Head) && self.start < self.end
    }
}

#[cfg(test)]
mod tests;
