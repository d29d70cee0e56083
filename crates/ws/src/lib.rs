//! Sans-IO WebSocket server engine: RFC 6455 framing and closing handshake with RFC 7692
//! permessage-deflate.
//!
//! No sockets, threads, clocks or Python here. The caller (a driver) validates the opening
//! handshake with [`handshake::validate`], answers with [`handshake::accept`]'s headers, then
//! feeds received bytes to a [`Connection`] ([`Connection::receive`]), pulls
//! [`Event`]s ([`Connection::next_event`]), hands messages in ([`Connection::send`]) and
//! writes what [`Connection::take_output`] gives it. Pings are answered and the peer's close
//! is echoed by the engine itself; every protocol violation queues the close frame with its
//! code (1002, 1007, 1009) and is reported once as a [`ProtocolError`].
//!
//! ```
//! use ironhorse_ws::{handshake, Config, Connection, Event, Message};
//!
//! let mut h1 = ironhorse_h1::ServerConn::new(ironhorse_h1::Limits::default());
//! h1.feed(b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!           Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!           Sec-WebSocket-Version: 13\r\n\r\n");
//! let head = h1.next_request().unwrap().unwrap();
//! let offer = handshake::validate(&head).expect("a valid upgrade");
//! let config = Config::default();
//! let (headers, deflate) = handshake::accept(&offer, None, &config);
//! assert!(headers.iter().any(|(name, _)| name == "Sec-WebSocket-Accept"));
//! // ... write `101 Switching Protocols` with `headers`, then:
//! let mut ws = Connection::new(config, deflate);
//! // A masked text frame "Hi" (mask 1, 2, 3, 4).
//! ws.receive(&[0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2]);
//! let Some(Event::Message(msg)) = ws.next_event().unwrap() else { panic!() };
//! assert_eq!(msg, Message::Text("Hi".into()));
//! ws.send(&msg).unwrap();
//! let mut out = Vec::new();
//! ws.take_output(&mut out);
//! assert_eq!(out, [0x81, 2, b'H', b'i']);
//! ```
#![forbid(unsafe_code)]

mod close;
mod connection;
mod deflate;
mod error;
mod extension;
mod frame;
pub mod handshake;
mod keepalive;
#[cfg(test)]
mod proptests;
mod reader;
#[cfg(test)]
mod testutil;
mod utf8;

pub use close::is_valid_close_code;
pub use connection::{Connection, State};
pub use deflate::{Deflate, DeflateOffer};
pub use error::{ProtocolError, StateError};
pub use keepalive::{Due, Keepalive};

/// Limits and preferences of a connection (and of the handshake's deflate answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest message, after decompression (→ close 1009). gunicorn 27's default: 16 MiB.
    pub max_message_size: usize,
    /// Largest single frame payload (→ close 1009), checked from the header before any of
    /// the payload is buffered.
    pub max_frame_size: usize,
    /// Accept a client's permessage-deflate offer.
    pub deflate: bool,
    /// Compression level of our messages (0–9).
    pub deflate_level: u32,
    /// Messages shorter than this are sent uncompressed.
    pub deflate_min_size: usize,
    /// The largest window we compress with (9–15); smaller saves memory per connection.
    pub deflate_window_bits: u8,
    /// Reset our compressor after every message even when the client allows keeping it
    /// (less memory held between messages, worse compression).
    pub deflate_no_context_takeover: bool,
    /// Ping the peer after this long without hearing from it ([`Keepalive`]); `None`: never.
    /// uvicorn's (and the `websockets` library's) default: 20 s.
    pub ping_interval: Option<std::time::Duration>,
    /// How long a ping may go unanswered before the connection is given up (1011);
    /// `None`: never. Default 20 s, as uvicorn's.
    pub ping_timeout: Option<std::time::Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            deflate: true,
            deflate_level: 6,
            deflate_min_size: 64,
            deflate_window_bits: 15,
            deflate_no_context_takeover: false,
            ping_interval: Some(std::time::Duration::from_secs(20)),
            ping_timeout: Some(std::time::Duration::from_secs(20)),
        }
    }
}

impl Config {
    /// The keepalive of a connection opened at `now`, if pings are on.
    pub fn keepalive(&self, now: std::time::Instant) -> Option<Keepalive> {
        self.ping_interval
            .filter(|i| !i.is_zero())
            .map(|interval| Keepalive::new(interval, self.ping_timeout, now))
    }
}

/// A whole data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// What the peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text or binary message.
    Message(Message),
    /// A ping (informative: the pong is already queued, unless our close went out first).
    Ping(Vec<u8>),
    /// A pong (an answer to our ping, or unsolicited).
    Pong(Vec<u8>),
    /// The peer's close frame: `code` is `None` when it sent none. Our reply close is
    /// already queued (unless we had sent ours first); the connection is then
    /// [`State::Closed`].
    Close { code: Option<u16>, reason: String },
}
