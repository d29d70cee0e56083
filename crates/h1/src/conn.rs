//! One connection's state: reading heads and bodies, writing responses, keep-alive.
use crate::{Error, Limits, RequestHead};

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

/// The server side of one HTTP/1.1 connection.
pub struct ServerConn {
    limits: Limits,
}

impl ServerConn {
    pub fn new(limits: Limits) -> Self {
        todo!()
    }

    // ---- input ----

    /// Free space at the end of the input buffer to `read()` into (at least 4 KiB; grows).
    pub fn read_buf(&mut self) -> &mut [u8] {
        todo!()
    }

    /// Marks `n` bytes of [`read_buf`](Self::read_buf) as received.
    pub fn filled(&mut self, n: usize) {
        todo!()
    }

    /// Copies received bytes in (same as `read_buf` + `filled`).
    pub fn feed(&mut self, data: &[u8]) {
        todo!()
    }

    /// The peer closed its sending side.
    pub fn feed_eof(&mut self) {
        todo!()
    }

    /// The next request head. `Ok(None)` means more bytes are needed (or, once
    /// [`is_closed`](Self::is_closed), that there will be no more requests).
    /// Only valid when no response is in progress. Skips leftover body bytes of the previous
    /// request first (bounded by `Limits::max_drain`). Leading empty lines are ignored.
    /// EOF in the middle of a head is `Err(Error::Incomplete)`; EOF between requests is
    /// `Ok(None)` with `is_closed()` true.
    pub fn next_request(&mut self) -> Result<Option<RequestHead>, Error> {
        todo!()
    }

    /// Copies body bytes of the current request into `dst` (de-chunked).
    pub fn read_body(&mut self, dst: &mut [u8]) -> Result<BodyRead, Error> {
        todo!()
    }

    /// Trailer fields of the current chunked body, once [`BodyRead::End`] was returned.
    pub fn trailers(&self) -> &[(String, Vec<u8>)] {
        todo!()
    }

    /// Whether the current request's body has been read to its end (true if it has none).
    pub fn body_done(&self) -> bool {
        todo!()
    }

    /// Appends `HTTP/1.1 100 Continue\r\n\r\n` if the current request expects it and it was
    /// not sent yet and no final response head was written; call before reading the body.
    pub fn write_continue(&mut self, out: &mut Vec<u8>) {
        todo!()
    }

    // ---- output ----

    /// Appends the response head. Adds `Date`, `Server: ironhorse`, and framing:
    /// `Content-Length: len` when `len` is known, else `Transfer-Encoding: chunked` on
    /// HTTP/1.1, else close-delimited (`Connection: close`). No framing header and no body
    /// for 1xx/204/304; for HEAD the framing headers are written but no body bytes ever are.
    /// `Connection: close` or (HTTP/1.0) `Connection: keep-alive` as decided.
    /// `headers` must not contain Content-Length, Transfer-Encoding, Connection, Date or
    /// Server (they are skipped if present).
    pub fn write_head(
        &mut self,
        status: u16,
        headers: &crate::HeaderList,
        len: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        todo!()
    }

    /// Appends body bytes with the framing chosen by `write_head`. Bytes beyond a declared
    /// length are dropped; nothing is written for HEAD or bodiless statuses.
    pub fn write_body(&mut self, data: &[u8], out: &mut Vec<u8>) {
        todo!()
    }

    /// Accounts for `n` body bytes the caller sends itself (sendfile). Only valid with a
    /// declared length; returns how many of them should actually be sent (0 for HEAD).
    pub fn body_sent_externally(&mut self, n: u64) -> u64 {
        todo!()
    }

    /// Ends the response: the terminating chunk for chunked bodies. If a declared length was
    /// not reached, or the request body cannot be drained, or keep-alive is off, the answer
    /// is [`Next::Close`].
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Next {
        todo!()
    }

    /// Aborts the current response (the application failed after the head was sent): no
    /// terminating chunk is written; the connection must close.
    pub fn abort(&mut self) {
        todo!()
    }

    /// Appends a complete error response for `err` (`err.status()`, a short text body,
    /// `Connection: close`) unless a head was already written. The connection is then closed.
    pub fn write_error(&mut self, err: &Error, out: &mut Vec<u8>) {
        todo!()
    }

    // ---- state ----

    /// Whether a response head has been written for the current request.
    pub fn head_written(&self) -> bool {
        todo!()
    }

    /// Whether the connection is finished (error, close decided, or EOF between requests).
    pub fn is_closed(&self) -> bool {
        todo!()
    }

    /// Whether any unparsed input is buffered (e.g. pipelined requests).
    pub fn has_buffered_input(&self) -> bool {
        todo!()
    }

    /// Whether reading a head is in progress (some bytes of it buffered): used by drivers to
    /// pick the header-read timeout over the keep-alive idle timeout.
    pub fn is_mid_head(&self) -> bool {
        todo!()
    }
}
