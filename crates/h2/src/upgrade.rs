//! `Upgrade: h2c` (RFC 7540 §3.2; deprecated by RFC 9113 but still sent by some clients):
//! the HTTP/1.1 session answered `101` and handed the connection over with the upgrading
//! request, which HTTP/2 must answer as stream 1 (half-closed from the client's side).
//!
//! The `h2` crate has no way to adopt a request it did not read, so the request is given
//! to it as the client would have sent it: a HEADERS frame for stream 1 (END_STREAM: only
//! requests without a body are upgraded), spliced into the input right after the client's
//! connection preface and first SETTINGS frame. Its header block uses only HPACK literals
//! "without indexing", which leave the decoder's dynamic table untouched, so the client's
//! own later header blocks decode exactly as the client encoded them.
//!
//! The `HTTP2-Settings` field is not applied separately: the response on stream 1 is only
//! produced after the client's SETTINGS frame (which carries the same settings) was read.

use ironhorse_app::RequestHead;
use ironhorse_protocol::H2_PREFACE;

/// The largest frame payload a server always accepts (SETTINGS_MAX_FRAME_SIZE's floor).
const MAX_FRAME: usize = 16_384;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Fields that belong to the HTTP/1.1 hop (RFC 9113 §8.2.2) or are pseudo-fields now.
const HOP_FIELDS: [&str; 7] = [
    "connection",
    "upgrade",
    "http2-settings",
    "host",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// Stream 1's frames, waiting for the client's preface and SETTINGS.
pub(crate) struct Stream1 {
    frames: Vec<u8>,
    held: Vec<u8>,
}

impl Stream1 {
    pub fn new(head: &RequestHead) -> Stream1 {
        Stream1 {
            frames: frames(&header_block(head)),
            held: Vec::new(),
        }
    }

    /// Takes received bytes: `None` while the preface and first frame are incomplete (held
    /// here), then everything received with stream 1 spliced in after that frame. Input that
    /// is not a preface and SETTINGS frame passes unchanged (`h2` then refuses it).
    pub fn splice(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        self.held.extend_from_slice(data);
        let held = &self.held;
        let n = held.len().min(H2_PREFACE.len());
        if held[..n] != H2_PREFACE[..n] {
            return Some(std::mem::take(&mut self.held));
        }
        let header_end = H2_PREFACE.len() + 9;
        if held.len() < header_end {
            return None;
        }
        let header = &held[H2_PREFACE.len()..header_end];
        if header[3] != SETTINGS {
            return Some(std::mem::take(&mut self.held));
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        if held.len() < header_end + len {
            return None;
        }
        let mut out = Vec::with_capacity(held.len() + self.frames.len());
        out.extend_from_slice(&held[..header_end + len]);
        out.extend_from_slice(&self.frames);
        out.extend_from_slice(&held[header_end + len..]);
        Some(out)
    }

    /// The client closed before its preface was complete: what it sent, as it is.
    pub fn into_held(self) -> Vec<u8> {
        self.held
    }
}

/// The request's header block: pseudo-fields, then its fields (names lowercased).
fn header_block(head: &RequestHead) -> Vec<u8> {
    let mut block = Vec::with_capacity(256);
    let target = head.target();
    let path = if target.starts_with('/') || target == "*" {
        target.to_string()
    } else if head.query().is_empty() {
        head.path().to_string()
    } else {
        format!("{}?{}", head.path(), head.query())
    };
    literal(&mut block, b":method", head.method().as_bytes());
    literal(&mut block, b":scheme", b"http");
    if let Some(host) = head.header("host") {
        literal(&mut block, b":authority", host);
    }
    literal(&mut block, b":path", path.as_bytes());
    for (name, value) in head.headers() {
        let te_other = name.eq_ignore_ascii_case("te") && !value.eq_ignore_ascii_case(b"trailers");
        if te_other || HOP_FIELDS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        literal(&mut block, name.to_ascii_lowercase().as_bytes(), value);
    }
    block
}

/// A literal field without indexing, new name (RFC 7541 §6.2.2), strings not Huffman-coded.
fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.push(0x00);
    string(block, name);
    string(block, value);
}

fn string(block: &mut Vec<u8>, s: &[u8]) {
    integer(block, 7, 0x00, s.len());
    block.extend_from_slice(s);
}

/// An integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(block: &mut Vec<u8>, n: u8, first: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        block.push(first | value as u8);
        return;
    }
    block.push(first | max as u8);
    value -= max;
    while value >= 128 {
        block.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    block.push(value as u8);
}

/// HEADERS (END_STREAM) for stream 1, with CONTINUATION frames for a large block.
fn frames(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + 18);
    let mut pieces = block.chunks(MAX_FRAME).peekable();
    let mut kind = HEADERS;
    let mut flags = END_STREAM;
    if pieces.peek().is_none() {
        frame(&mut out, kind, flags | END_HEADERS, &[]);
    }
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        frame(
            &mut out,
            kind,
            flags | if last { END_HEADERS } else { 0 },
            piece,
        );
        kind = CONTINUATION;
        flags = 0;
    }
    out
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> RequestHead {
        let mut conn = ironhorse_h1::ServerConn::new(Default::default());
        conn.feed(text.as_bytes());
        conn.next_request().unwrap().unwrap()
    }

    #[test]
    fn integers_follow_rfc7541s_examples() {
        let mut out = Vec::new();
        integer(&mut out, 5, 0, 10);
        assert_eq!(out, [10]);
        out.clear();
        integer(&mut out, 5, 0, 1337);
        assert_eq!(out, [31, 154, 10]);
    }

    #[test]
    fn stream1_is_spliced_after_the_preface_and_settings_only() {
        let upgrading = head(
            "GET /a?b=1 HTTP/1.1\r\nHost: h:1\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nX-A: 1\r\n\r\n",
        );
        let mut s = Stream1::new(&upgrading);
        let settings = [0u8, 0, 0, SETTINGS, 0, 0, 0, 0, 0];
        assert_eq!(s.splice(&H2_PREFACE[..10]), None);
        let mut rest = H2_PREFACE[10..].to_vec();
        rest.extend_from_slice(&settings);
        rest.extend_from_slice(b"next");
        let out = s.splice(&rest).unwrap();
        let at = H2_PREFACE.len() + settings.len();
        assert_eq!(&out[..at - 9], H2_PREFACE);
        assert_eq!(out[at + 3], HEADERS);
        assert_eq!(out[at + 4], END_STREAM | END_HEADERS);
        assert_eq!(&out[at + 5..at + 9], &[0, 0, 0, 1]);
        assert!(out.ends_with(b"next"));
        let block = &out[at + 9..out.len() - 4];
        let text = String::from_utf8_lossy(block);
        for want in [
            ":method",
            "GET",
            ":path",
            "/a?b=1",
            ":authority",
            "h:1",
            "x-a",
        ] {
            assert!(text.contains(want), "{want} in {text:?}");
        }
        assert!(!text.contains("upgrade") && !text.contains("http2-settings"));
        let mut other = Stream1::new(&upgrading);
        assert_eq!(
            other.splice(b"GET / HTTP/1.1\r\n").unwrap(),
            b"GET / HTTP/1.1\r\n"
        );
    }
}
