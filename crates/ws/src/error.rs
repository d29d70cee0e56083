//! What can go wrong: the peer breaking the protocol (each with the close code it earns) and
//! the caller sending after the closing handshake began.

use std::fmt;

/// A peer's violation of RFC 6455 / RFC 7692, or a message over the configured limit. When
/// [`Connection::next_event`](crate::Connection::next_event) returns one, the close frame
/// with [`code`](Self::code) is already queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A client frame without a mask (RFC 6455 §5.1).
    Unmasked,
    /// RSV bits set without a negotiated extension that defines them.
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    UnknownOpcode(u8),
    /// A 64-bit payload length with its most significant bit set.
    BadLength,
    /// A control frame over 125 bytes.
    ControlTooLong,
    /// A control frame without FIN.
    FragmentedControl,
    /// A continuation frame with no message to continue.
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message is unfinished.
    ExpectedContinuation,
    /// A close frame with a one-byte payload.
    ShortClosePayload,
    /// A close code that may not be sent on the wire (RFC 6455 §7.4).
    BadCloseCode(u16),
    /// A close reason that is not UTF-8.
    InvalidCloseReason,
    /// A text message that is not UTF-8 (found as soon as the bad bytes arrive).
    InvalidUtf8,
    /// A compressed message that does not inflate.
    BadCompressedData,
    /// A frame or message (after decompression) over the configured limits.
    MessageTooBig,
}

impl ProtocolError {
    /// The close code this error is answered with.
    pub fn code(&self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::BadCompressedData => 1007,
            ProtocolError::MessageTooBig => 1009,
            _ => 1002,
        }
    }

    /// A short reason for the close frame and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::Unmasked => "client frame not masked",
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::UnknownOpcode(_) => "reserved opcode",
            ProtocolError::BadLength => "invalid payload length",
            ProtocolError::ControlTooLong => "control frame too long",
            ProtocolError::FragmentedControl => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "new message before the last one ended",
            ProtocolError::ShortClosePayload => "close payload of one byte",
            ProtocolError::BadCloseCode(_) => "invalid close code",
            ProtocolError::InvalidCloseReason => "close reason not UTF-8",
            ProtocolError::InvalidUtf8 => "text not UTF-8",
            ProtocolError::BadCompressedData => "invalid compressed data",
            ProtocolError::MessageTooBig => "message too big",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnknownOpcode(op) => write!(f, "{} {op:#x}", self.reason())?,
            ProtocolError::BadCloseCode(c) => write!(f, "{} {c}", self.reason())?,
            _ => f.write_str(self.reason())?,
        }
        write!(f, " (close {})", self.code())
    }
}

impl std::error::Error for ProtocolError {}

/// Sending a message after the close frame went out (RFC 6455 §5.5.1: no data after close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateError;

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the WebSocket is closing: no more messages may be sent")
    }
}

impl std::error::Error for StateError {}
