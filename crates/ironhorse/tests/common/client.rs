//! A deliberately small HTTP client for tests: raw bytes out, parsed responses in, so tests
//! can send anything (malformed, pipelined, trickled) and see exactly what comes back.

use std::io::{Read, Write};
use std::net::TcpStream;

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection to the server under test.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(super::HUNG)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Like [`open`](Self::open), reporting failure.
    pub fn try_open(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(super::HUNG))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Like [`send`](Self::send), reporting failure.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads more bytes; returns false at EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                false
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// The next `n` raw bytes (after the responses read so far), for a protocol switched to.
    pub fn read_raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "closed after {} of {n} bytes", self.buf.len());
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the bytes received contain `needle`; false if the connection closes
    /// first. Nothing is consumed: a later [`response`](Self::response) still sees it all.
    pub fn wait_for_bytes(&mut self, needle: &[u8]) -> bool {
        while find(&self.buf, needle).is_none() {
            if !self.fill() {
                return false;
            }
        }
        true
    }

    /// What has arrived and was not yet read as a response.
    pub fn received(&self) -> &[u8] {
        &self.buf
    }

    /// Reads one response to a request with `method` (HEAD has no body).
    pub fn response(&mut self, method: &str) -> Response {
        self.try_response(method)
            .expect("connection closed before a full response")
    }

    /// Like [`response`](Self::response), `None` if the connection closes first.
    pub fn try_response(&mut self, method: &str) -> Option<Response> {
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8(self.buf[..head_end - 4].to_vec()).expect("ascii head");
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap().to_string();
        let status: u16 = parts.next().unwrap().parse().unwrap();
        let reason = parts.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header colon");
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let mut response = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if method == "HEAD" || status == 304 || status == 204 || (100..200).contains(&status) {
            return Some(response);
        }
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                if !self.fill() {
                    return None;
                }
            }
            response.body = self.buf.drain(..len).collect();
        } else if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(p) = find(&self.buf, b"\r\n") {
                        break p;
                    }
                    if !self.fill() {
                        return None;
                    }
                };
                let size = usize::from_str_radix(
                    std::str::from_utf8(&self.buf[..line_end])
                        .unwrap()
                        .split(';')
                        .next()
                        .unwrap()
                        .trim(),
                    16,
                )
                .unwrap();
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.fill() {
                        return None;
                    }
                }
                response.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill() {}
            response.body = std::mem::take(&mut self.buf);
        }
        Some(response)
    }

    /// Whether the server closed the connection (EOF or reset) within the read timeout.
    /// Whether the connection is open at this moment: nothing to read and no end seen,
    /// checked without waiting.
    pub fn is_open_now(&mut self) -> bool {
        self.stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let open = matches!(
            self.stream.peek(&mut byte),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        self.stream.set_nonblocking(false).unwrap();
        open
    }

    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub fn get(addr: &str, path: &str) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes());
    conn.response("GET")
}
