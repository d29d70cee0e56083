//! The receiving half: turns client bytes into messages and control frames, enforcing the
//! framing rules of RFC 6455 §5 and RFC 7692 §6 as bytes arrive. Payloads are unmasked and
//! moved on as soon as they are in (never buffered whole as frames, never allocated from an
//! advertised length), so a text message fails on its first bad byte and a frame over the
//! limits fails from its header.

use crate::deflate::{Deflate, InflateError, Inflater};
use crate::frame::{apply_mask, parse_header, Header, OpCode, MAX_CONTROL_PAYLOAD};
use crate::utf8::Utf8Check;
use crate::{close, Config, Message, ProtocolError};

/// Input buffer capacity kept between reads; more is released once the buffer empties.
const KEEP_INPUT: usize = 64 * 1024;

/// One unit the reader produces; the [`Connection`](crate::Connection) decides what it
/// means for the closing handshake.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// Where the current frame's payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Control(OpCode),
    Data,
    Discard,
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    remaining: u64,
    mask: [u8; 4],
    offset: usize,
    sink: Sink,
    fin: bool,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Header,
    Payload(Frame),
    /// Nothing more is read: the peer closed, or the stream cannot be followed any more.
    Stopped,
}

/// The data message being assembled from its frames.
#[derive(Default)]
struct Assembly {
    /// `Some` while a message is in progress (text?).
    text: Option<bool>,
    compressed: bool,
    buf: Vec<u8>,
    utf8: Utf8Check,
    /// Payload bytes received for it on the wire (compressed size, when compressed).
    wire: u64,
}

pub(crate) struct Reader {
    input: Vec<u8>,
    pos: usize,
    step: Step,
    msg: Assembly,
    control: Vec<u8>,
    inflater: Option<Inflater>,
    max_message: usize,
    max_frame: usize,
    /// After a protocol error: payloads are skipped and only a close frame is looked for.
    draining: bool,
}

impl Reader {
    pub(crate) fn new(config: &Config, deflate: Option<&Deflate>) -> Reader {
        Reader {
            input: Vec::new(),
            pos: 0,
            step: Step::Header,
            msg: Assembly::default(),
            control: Vec::new(),
            inflater: deflate.map(Inflater::new),
            max_message: config.max_message_size,
            max_frame: config.max_frame_size,
            draining: false,
        }
    }

    /// Buffers received bytes (nothing is parsed until [`next`](Self::next)).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if matches!(self.step, Step::Stopped) {
            return;
        }
        self.compact();
        self.input.extend_from_slice(bytes);
    }

    fn compact(&mut self) {
        if self.pos == self.input.len() {
            self.input.clear();
            // A burst of input should not stay allocated on an idle connection.
            if self.input.capacity() > KEEP_INPUT {
                self.input = Vec::new();
            }
        } else if self.pos > 0 {
            self.input.drain(..self.pos);
        }
        self.pos = 0;
    }

    /// Stops reading for good (the peer closed, or we gave up following the stream).
    pub(crate) fn stop(&mut self) {
        self.step = Step::Stopped;
        self.input = Vec::new();
        self.pos = 0;
        self.msg = Assembly::default();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self.step, Step::Stopped)
    }

    /// The next complete unit, `Ok(None)` when more bytes are needed. After an error the
    /// reader drains: the rest of the offending frame and every later frame but a close
    /// are skipped; a second error stops it.
    pub(crate) fn next(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        let result = self.advance();
        if result.is_err() {
            if self.draining {
                self.stop();
            } else {
                self.draining = true;
                self.msg = Assembly::default();
                if let Step::Payload(frame) = &mut self.step {
                    frame.sink = Sink::Discard;
                }
            }
        }
        result
    }

    fn advance(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        loop {
            match self.step {
                Step::Stopped => return Ok(None),
                Step::Header => {
                    let parsed = parse_header(&self.input[self.pos..]).inspect_err(|_| {
                        // A length that cannot be followed: the stream is lost.
                        self.stop();
                    })?;
                    let Some((header, len)) = parsed else {
                        self.compact();
                        return Ok(None);
                    };
                    self.pos += len;
                    // The payload is skipped if the header is refused.
                    self.step = Step::Payload(Frame {
                        remaining: header.len,
                        mask: header.mask.unwrap_or_default(),
                        offset: 0,
                        sink: Sink::Discard,
                        fin: header.fin,
                    });
                    let sink = self.begin_frame(&header)?;
                    if let Step::Payload(frame) = &mut self.step {
                        frame.sink = sink;
                    }
                }
                Step::Payload(mut frame) => {
                    let available = self.input.len() - self.pos;
                    let n =
                        usize::try_from(frame.remaining).map_or(available, |r| r.min(available));
                    if n == 0 && frame.remaining > 0 {
                        self.compact();
                        return Ok(None);
                    }
                    let (start, end) = (self.pos, self.pos + n);
                    self.pos = end;
                    frame.remaining -= n as u64;
                    let offset = frame.offset;
                    frame.offset = (frame.offset + n) % 4;
                    self.step = Step::Payload(frame);
                    if frame.sink != Sink::Discard {
                        apply_mask(&mut self.input[start..end], frame.mask, offset);
                        self.take_payload(frame.sink, start, end)?;
                    }
                    if frame.remaining == 0 {
                        self.step = Step::Header;
                        if let Some(unit) = self.end_frame(frame)? {
                            return Ok(Some(unit));
                        }
                    }
                }
            }
        }
    }

    /// Checks a frame header against the connection's state; returns where its payload goes.
    fn begin_frame(&mut self, h: &Header) -> Result<Sink, ProtocolError> {
        let Some(opcode) = h.opcode else {
            return if self.draining {
                Ok(Sink::Discard)
            } else {
                Err(ProtocolError::UnknownOpcode(h.raw_opcode))
            };
        };
        if self.draining {
            let is_close = opcode == OpCode::Close && h.len <= MAX_CONTROL_PAYLOAD as u64;
            if is_close {
                self.control.clear();
                return Ok(Sink::Control(OpCode::Close));
            }
            return Ok(Sink::Discard);
        }
        if h.mask.is_none() {
            return Err(ProtocolError::Unmasked);
        }
        // RSV1 marks the first frame of a compressed message, when deflate was negotiated.
        let rsv1_ok = self.inflater.is_some() && matches!(opcode, OpCode::Text | OpCode::Binary);
        if h.rsv23 || (h.rsv1 && !rsv1_ok) {
            return Err(ProtocolError::ReservedBits);
        }
        if opcode.is_control() {
            if h.len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong);
            }
            if !h.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            self.control.clear();
            return Ok(Sink::Control(opcode));
        }
        match (opcode, self.msg.text.is_some()) {
            (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, true) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            (OpCode::Continuation, true) => {}
            (op, _) => {
                self.msg = Assembly {
                    text: Some(op == OpCode::Text),
                    compressed: h.rsv1,
                    ..Assembly::default()
                };
            }
        }
        self.msg.wire += h.len;
        let over_message = if self.msg.compressed {
            self.msg.wire > self.max_message as u64
        } else {
            self.msg.buf.len() as u64 + h.len > self.max_message as u64
        };
        if h.len > self.max_frame as u64 || over_message {
            return Err(ProtocolError::MessageTooBig);
        }
        Ok(Sink::Data)
    }

    /// Moves unmasked payload bytes `input[start..end]` to their sink.
    fn take_payload(&mut self, sink: Sink, start: usize, end: usize) -> Result<(), ProtocolError> {
        let bytes = &self.input[start..end];
        match sink {
            Sink::Discard => {}
            Sink::Control(_) => self.control.extend_from_slice(bytes),
            Sink::Data => {
                let msg = &mut self.msg;
                match &mut self.inflater {
                    Some(inflater) if msg.compressed => inflater
                        .inflate(bytes, &mut msg.buf, self.max_message)
                        .map_err(inflate_error)?,
                    _ => msg.buf.extend_from_slice(bytes),
                }
                if msg.text == Some(true) {
                    msg.utf8
                        .advance(&msg.buf)
                        .map_err(|()| ProtocolError::InvalidUtf8)?;
                }
            }
        }
        Ok(())
    }

    /// A frame's payload is all in: a control frame or a finished message is a unit.
    fn end_frame(&mut self, frame: Frame) -> Result<Option<Incoming>, ProtocolError> {
        match frame.sink {
            Sink::Discard => Ok(None),
            Sink::Control(op) => {
                let payload = std::mem::take(&mut self.control);
                Ok(Some(match op {
                    OpCode::Ping => Incoming::Ping(payload),
                    OpCode::Pong => Incoming::Pong(payload),
                    _ => {
                        self.stop();
                        let (code, reason) = close::parse(&payload).unwrap_or_default();
                        if !self.draining {
                            close::parse(&payload)?;
                        }
                        Incoming::Close(code, reason)
                    }
                }))
            }
            Sink::Data if !frame.fin => Ok(None),
            Sink::Data => self.end_message().map(Some),
        }
    }

    fn end_message(&mut self) -> Result<Incoming, ProtocolError> {
        let mut msg = std::mem::take(&mut self.msg);
        if msg.compressed {
            if let Some(inflater) = &mut self.inflater {
                inflater
                    .finish(&mut msg.buf, self.max_message)
                    .map_err(inflate_error)?;
            }
        }
        if msg.text != Some(true) {
            return Ok(Incoming::Message(Message::Binary(msg.buf)));
        }
        msg.utf8
            .advance(&msg.buf)
            .map_err(|()| ProtocolError::InvalidUtf8)?;
        if !msg.utf8.is_complete(&msg.buf) {
            return Err(ProtocolError::InvalidUtf8);
        }
        let text = String::from_utf8(msg.buf).map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Incoming::Message(Message::Text(text)))
    }
}

fn inflate_error(e: InflateError) -> ProtocolError {
    match e {
        InflateError::TooBig => ProtocolError::MessageTooBig,
        InflateError::Corrupt => ProtocolError::BadCompressedData,
    }
}
