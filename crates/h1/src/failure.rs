//! Answers for requests the server (not the client) failed: the application broke, or ran
//! past its deadline. Written like protocol errors (`Date`, `Connection: close`), so every
//! error response on the wire comes from this crate.

use crate::conn::put_content_length;
use crate::response::put_status_and_fixed;

/// Why the server could not answer a request it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The application failed before producing a response head.
    AppFailed,
    /// The application passed its deadline (`--request-timeout`).
    TimedOut,
}

impl Failure {
    /// The status to answer with.
    pub fn status(self) -> u16 {
        match self {
            Failure::AppFailed => 500,
            Failure::TimedOut => 504,
        }
    }

    /// The response body's text.
    pub fn message(self) -> &'static str {
        match self {
            Failure::AppFailed => "Internal Server Error",
            Failure::TimedOut => "Gateway Timeout",
        }
    }

    /// Appends the whole answer (the body only when `with_body`: not for `HEAD`). Used by
    /// [`ServerConn::write_failure`](crate::ServerConn::write_failure), and on its own where the
    /// bytes must be ready before they are needed (a watchdog sends them from another thread).
    pub fn write_response(self, with_body: bool, out: &mut Vec<u8>) {
        put_error_response(out, self.status(), self.message(), with_body);
    }
}

/// A plain-text error response that closes the connection.
pub(crate) fn put_error_response(out: &mut Vec<u8>, status: u16, message: &str, with_body: bool) {
    put_status_and_fixed(out, status, None);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    put_content_length(out, message.len() as u64 + 1);
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if with_body {
        out.extend_from_slice(message.as_bytes());
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_answer_is_a_dated_closing_504() {
        let mut out = Vec::new();
        Failure::TimedOut.write_response(true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nDate: "), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nGateway Timeout\n"), "{text}");
    }

    #[test]
    fn head_requests_get_no_body() {
        let mut out = Vec::new();
        Failure::AppFailed.write_response(false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(text.contains("Content-Length: 22\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }
}
