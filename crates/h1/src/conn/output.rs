//! The writing side of a [`ServerConn`]: response heads and bodies with their framing,
//! `100 Continue`, `101 Switching Protocols`, error answers, and the end of a response
//! (keep-alive or close).
use super::{Current, Framing, Next, Reading, ServerConn, Writing};
use crate::response::status_has_no_body;
use crate::response::{
    asks_to_close, custom_reason, put_app_headers, put_chunk, put_dec, put_status_and_fixed,
};
use crate::{Error, Version};

impl ServerConn {
    /// Accepts the current request's switch to `protocol` (an `Upgrade` token): appends
    /// `101 Switching Protocols` and ends HTTP/1.1 on this connection. The bytes received
    /// after the request head are the new protocol's ([`take_input`](Self::take_input)).
    pub fn write_switching_protocols(&mut self, protocol: &str, out: &mut Vec<u8>) {
        put_status_and_fixed(out, 101, None);
        out.extend_from_slice(b"Connection: Upgrade\r\nUpgrade: ");
        out.extend_from_slice(protocol.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        self.writing = Writing::Done;
        self.close();
    }

    /// As [`write_switching_protocols`](Self::write_switching_protocols), with the
    /// protocol's own headers (`Upgrade`, `Connection` and the rest, e.g. a WebSocket's
    /// `Sec-WebSocket-Accept`), checked by the caller.
    pub fn write_switching_protocols_with(
        &mut self,
        headers: &[(String, Vec<u8>)],
        out: &mut Vec<u8>,
    ) {
        put_status_and_fixed(out, 101, None);
        for (name, value) in headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.writing = Writing::Done;
        self.close();
    }

    /// Appends the response head. Adds `Date`, `Server: ironhorse`, and framing:
    /// `Content-Length: len` when `len` is known, else `Transfer-Encoding: chunked` on
    /// HTTP/1.1, else close-delimited (`Connection: close`). No framing header and no body
    /// for 1xx/204/304, `Content-Length: 0` and no body for 205; for HEAD the framing
    /// headers are written but no body bytes ever are.
    /// `Connection: close` or (HTTP/1.0) `Connection: keep-alive` as decided.
    /// `headers` must not contain Content-Length, Transfer-Encoding, Date or Server (they
    /// are skipped if present); a `:reason` entry sets the reason phrase and a `Connection`
    /// with `close` closes the connection after this response (see [`crate::HeaderList`]).
    pub fn write_head(
        &mut self,
        status: u16,
        headers: &crate::HeaderList,
        len: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        if self.writing != Writing::Idle {
            return;
        }
        let cur = self.current.unwrap_or(Current {
            version: Version::Http11,
            keep_alive: false,
            expects_continue: false,
            is_head: false,
        });
        let mut keep_alive = cur.keep_alive
            && !self.retiring
            && !self.close_delimited
            && !self.closed
            && !self.unread_body_forces_close()
            && !asks_to_close(headers);

        put_status_and_fixed(out, status, custom_reason(headers));
        put_app_headers(out, headers);
        let framing = if status_has_no_body(status) {
            Framing::NoBody
        } else if status == 205 {
            // Reset Content: no content, said with `Content-Length: 0` (RFC 9110 §15.3.6).
            put_content_length(out, 0);
            Framing::NoBody
        } else if cur.is_head {
            // HEAD: announce a known length; with an unknown one, say nothing (no chunked).
            if let Some(n) = len {
                put_content_length(out, n);
            }
            Framing::NoBody
        } else if let Some(n) = len {
            put_content_length(out, n);
            Framing::Length
        } else if cur.version == Version::Http11 && !self.close_delimited {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            Framing::Chunked
        } else {
            keep_alive = false;
            Framing::CloseDelimited
        };
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if cur.version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.close_after = !keep_alive;
        self.writing = Writing::Body {
            framing,
            remaining: if framing == Framing::Length {
                len.unwrap_or(0)
            } else {
                0
            },
        };
    }

    /// Appends body bytes with the framing chosen by `write_head`. Bytes beyond a declared
    /// length are dropped; nothing is written for HEAD or bodiless statuses.
    pub fn write_body(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let Writing::Body { framing, remaining } = &mut self.writing else {
            return;
        };
        match framing {
            Framing::Length => {
                let n = (*remaining).min(data.len() as u64) as usize;
                out.extend_from_slice(&data[..n]);
                *remaining -= n as u64;
            }
            Framing::Chunked => put_chunk(out, data),
            Framing::CloseDelimited => out.extend_from_slice(data),
            Framing::NoBody => {}
        }
    }

    /// Accounts for `n` body bytes the caller sends itself (sendfile). Only valid with a
    /// declared length; returns how many of them should actually be sent (0 for HEAD).
    pub fn body_sent_externally(&mut self, n: u64) -> u64 {
        let Writing::Body { framing, remaining } = &mut self.writing else {
            return 0;
        };
        match framing {
            Framing::Length => {
                let k = (*remaining).min(n);
                *remaining -= k;
                k
            }
            Framing::CloseDelimited => n,
            // Raw bytes would corrupt chunk framing; bodiless responses send nothing.
            Framing::Chunked | Framing::NoBody => 0,
        }
    }

    /// Ends a chunked body with trailer fields (`0\r\n`, the fields, `\r\n`), framing
    /// headers among them left out; [`finish`](Self::finish) then adds nothing. `false`
    /// (nothing written) unless the body is chunked: a body of declared length has no room
    /// for trailers.
    pub fn write_trailers(&mut self, trailers: &crate::HeaderList, out: &mut Vec<u8>) -> bool {
        let Writing::Body {
            framing: framing @ Framing::Chunked,
            ..
        } = &mut self.writing
        else {
            return false;
        };
        out.extend_from_slice(b"0\r\n");
        put_app_headers(out, trailers);
        out.extend_from_slice(b"\r\n");
        *framing = Framing::NoBody;
        true
    }

    /// Ends the response: the terminating chunk for chunked bodies. If a declared length was
    /// not reached, or the request body cannot be drained, or keep-alive is off, the answer
    /// is [`Next::Close`].
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Next {
        let mut close = self.close_after || self.closed || self.current.is_none();
        match self.writing {
            Writing::Body {
                framing: Framing::Chunked,
                ..
            } => out.extend_from_slice(b"0\r\n\r\n"),
            Writing::Body {
                framing: Framing::Length,
                remaining,
            } if remaining > 0 => close = true,
            Writing::Body {
                framing: Framing::CloseDelimited,
                ..
            } => close = true,
            Writing::Body { .. } => {}
            Writing::Idle | Writing::Done => close = true,
        }
        if !close && self.unread_body_forces_close() {
            close = true;
        }
        if !close {
            if let Reading::Body(_) = self.reading {
                self.start_draining();
                // Discard what is already here; the rest is skipped by `next_request`.
                self.drain();
                close = self.closed;
            }
        }
        self.writing = Writing::Done;
        if close {
            self.close();
            Next::Close
        } else {
            Next::KeepAlive
        }
    }

    /// The rest of the request body will not be read (it stopped arriving: the body
    /// timeout): the response says `Connection: close`, and no further request is parsed.
    pub fn give_up_body(&mut self) {
        if let Some(current) = &mut self.current {
            current.keep_alive = false;
        }
        self.last_request = true;
    }

    /// Aborts the current response (the application failed after the head was sent): no
    /// terminating chunk is written; the connection must close.
    pub fn abort(&mut self) {
        self.note_cut();
        self.writing = Writing::Done;
        self.close();
    }

    /// Whether the connection must end with a reset rather than an orderly close: a response
    /// was cut short whose end only the close marks (a close-delimited body, HTTP/1.0's), so
    /// a FIN would pass the cut body off as whole (RFC 9112 §8).
    pub fn must_reset(&self) -> bool {
        self.cut_unmarked
    }

    fn note_cut(&mut self) {
        if let Writing::Body {
            framing: Framing::CloseDelimited,
            ..
        } = self.writing
        {
            self.cut_unmarked = true;
        }
    }

    /// Appends a complete error response for `err` (`err.status()`, a short text body,
    /// `Connection: close`) unless a head was already written. The connection is then closed.
    pub fn write_error(&mut self, err: &Error, out: &mut Vec<u8>) {
        if self.writing == Writing::Idle {
            let with_body = !self.current.is_some_and(|c| c.is_head);
            crate::failure::put_error_response(out, err.status(), err.message(), with_body);
        }
        self.writing = Writing::Done;
        self.close();
    }

    /// Answers a request the server failed (see [`Failure`](crate::Failure)) if no response
    /// head was written yet, and closes; after a head, only closes (the client sees a cut
    /// response).
    pub fn write_failure(&mut self, failure: crate::Failure, out: &mut Vec<u8>) {
        if self.writing == Writing::Idle {
            failure.write_response(!self.is_head_request(), out);
        }
        self.note_cut();
        self.writing = Writing::Done;
        self.close();
    }
}

pub(crate) fn put_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    put_dec(out, n);
    out.extend_from_slice(b"\r\n");
}
