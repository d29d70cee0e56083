//! The sans-IO HTTP/1.1 server engine (RFC 9110/9112).
//!
//! [`ServerConn`] is one connection's protocol state. The caller (a driver) owns the socket:
//! it copies received bytes in ([`ServerConn::read_buf`] + [`ServerConn::filled`], or
//! [`ServerConn::feed`]), pulls parsed requests ([`ServerConn::next_request`]) and body bytes
//! ([`ServerConn::read_body`]), and hands responses in, getting the bytes to send appended to a
//! `Vec<u8>`. No sockets, threads, clocks beyond the cached `Date`, or Python in here.
//!
//! "Need more bytes" is `Ok(None)` / [`BodyRead::NeedMore`], never an error. Every protocol
//! violation is an [`Error`] whose status is decided in exactly one place ([`Error::status`]).
#![forbid(unsafe_code)]

/// A `[bool; 256]` membership table of the bytes `$pred` (a `const fn(u8) -> bool`) admits,
/// built at compile time: the checks every request's head runs byte by byte look bytes up.
macro_rules! byte_table {
    ($pred:path) => {{
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = $pred(b as u8);
            b += 1;
        }
        table
    }};
}

mod authority;
mod body;
mod conn;
mod date;
mod error;
mod failure;
mod head;
mod request;
mod response;
mod target;
#[cfg(test)]
mod testutil;

pub use body::is_forbidden_trailer;
pub use conn::{BodyRead, Next, ServerConn};
pub use date::http_date_now;
pub use error::Error;
pub use failure::Failure;
pub use head::is_tchar;
pub use request::{BodyFraming, RequestHead, Version};
pub use response::{is_valid_reason, reason_phrase, HeaderList, REASON_FIELD};

/// Parser limits. Defaults follow gunicorn/nginx habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, in bytes, without the CRLF (→ 414 beyond).
    pub max_request_line: usize,
    /// Most header fields (→ 431 beyond).
    pub max_headers: usize,
    /// Longest single header field line, name + value (→ 431 beyond).
    pub max_header_size: usize,
    /// Largest whole head, request line and field lines with their line ends (→ 431
    /// beyond): what one connection can make the server hold before it is answered.
    pub max_head: usize,
    /// Largest request body (→ 413 beyond); `u64::MAX` for none.
    pub max_body: u64,
    /// How many unread body bytes the engine will discard to keep a connection alive after a
    /// response; a larger leftover body closes the connection instead.
    pub max_drain: u64,
}

impl Limits {
    /// The defaults, also the command line's (`ironhorse/src/settings.rs` takes them from here).
    pub const DEFAULT: Limits = Limits {
        max_request_line: 8190,
        max_headers: 100,
        max_header_size: 8190,
        max_head: 64 * 1024,
        max_body: 1 << 30,
        max_drain: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
