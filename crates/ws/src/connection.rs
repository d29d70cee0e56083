//! One WebSocket connection's protocol state: the reader for what comes in, the frames we
//! queue to go out, and the closing handshake (RFC 6455 §7) that ties the two.

use crate::deflate::{Deflate, Deflater};
use crate::frame::{put_frame, OpCode, MAX_CONTROL_PAYLOAD};
use crate::reader::{Incoming, Reader};
use crate::{close, Config, Event, Message, ProtocolError, StateError};

/// Where the closing handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    Closing,
    /// Both sides sent close (or the peer's stream cannot be followed any more): once the
    /// output is written, the transport may be closed.
    Closed,
}

/// A server-side WebSocket connection, sans IO.
pub struct Connection {
    reader: Reader,
    out: Vec<u8>,
    deflater: Option<Deflater>,
    sent_close: bool,
    /// A protocol error was reported: later input is only searched for the peer's close.
    failed: bool,
}

impl Connection {
    /// A connection after a successful handshake; `deflate` as [`crate::handshake::accept`]
    /// negotiated it.
    pub fn new(config: Config, deflate: Option<Deflate>) -> Self {
        Connection {
            reader: Reader::new(&config, deflate.as_ref()),
            out: Vec::new(),
            deflater: deflate.map(Deflater::new),
            sent_close: false,
            failed: false,
        }
    }

    /// Buffers received bytes; [`next_event`](Self::next_event) parses them. Bytes after
    /// the peer's close are ignored.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
    }

    /// The next event from the received bytes; `Ok(None)` when more are needed (or nothing
    /// more will come). On `Err` the close frame with the error's code is already queued and
    /// the connection is [`State::Closing`]; the error is reported once, and afterwards
    /// only the peer's close is looked for (which makes the connection
    /// [`State::Closed`]).
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        loop {
            let unit = match self.reader.next() {
                Ok(Some(unit)) => unit,
                Ok(None) => return Ok(None),
                Err(_) if self.failed => return Ok(None),
                Err(e) => {
                    self.failed = true;
                    self.queue_close(e.code(), e.reason());
                    return Err(e);
                }
            };
            let event = match unit {
                Incoming::Message(m) => Event::Message(m),
                Incoming::Ping(payload) => {
                    if !self.sent_close {
                        put_frame(&mut self.out, false, OpCode::Pong, &payload);
                    }
                    Event::Ping(payload)
                }
                Incoming::Pong(payload) => Event::Pong(payload),
                Incoming::Close(code, reason) => {
                    self.queue_close(code.unwrap_or(1000), "");
                    Event::Close { code, reason }
                }
            };
            if !self.failed {
                return Ok(Some(event));
            }
        }
    }

    /// Queues a message: compressed when deflate was negotiated and it pays off. Refused
    /// once our close frame is queued.
    pub fn send(&mut self, msg: &Message) -> Result<(), StateError> {
        if self.sent_close {
            return Err(StateError);
        }
        let (opcode, data) = match msg {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, &b[..]),
        };
        match self.deflater.as_mut().and_then(|d| d.compress(data)) {
            Some(compressed) => put_frame(&mut self.out, true, opcode, &compressed),
            None => put_frame(&mut self.out, false, opcode, data),
        }
        Ok(())
    }

    /// Queues a ping (payload cut to 125 bytes); nothing once our close is queued.
    pub fn send_ping(&mut self, payload: &[u8]) {
        if !self.sent_close {
            let n = payload.len().min(MAX_CONTROL_PAYLOAD);
            put_frame(&mut self.out, false, OpCode::Ping, &payload[..n]);
        }
    }

    /// Starts the closing handshake (once; later calls do nothing). A code that may not be
    /// sent (RFC 6455 §7.4) goes out as 1000, 1005 as a close without a code; the reason is
    /// cut to fit a control frame.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.queue_close(code, reason);
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        if !self.sent_close {
            self.sent_close = true;
            put_frame(
                &mut self.out,
                false,
                OpCode::Close,
                &close::build(code, reason),
            );
        }
    }

    /// Appends the bytes waiting to be sent to `out`.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Bytes queued and not taken yet: a caller stops accepting messages to send beyond
    /// its bound (backpressure).
    pub fn buffered_output(&self) -> usize {
        self.out.len()
    }

    pub fn state(&self) -> State {
        match (self.sent_close, self.reader.is_stopped()) {
            (true, true) => State::Closed,
            (true, false) => State::Closing,
            // The reader stops only on the peer's close or after an error, both of which
            // queue our close: not reached, but Open would be wrong.
            (false, true) => State::Closed,
            (false, false) => State::Open,
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state())
            .field("deflate", &self.deflater.is_some())
            .field("failed", &self.failed)
            .field("buffered_output", &self.buffered_output())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
