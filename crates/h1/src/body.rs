//! Body decoders: Content-Length and chunked (RFC 9112 §6, §7.1).
//!
//! A decoder never copies: [`Decoder::step`] consumes framing from the buffered input and
//! points at the next run of body bytes, which the connection copies out (`read_body`) or
//! discards (draining).
use crate::head::{is_tchar, is_value_byte, trim_ows};
use crate::{Error, Limits};
use std::ops::Range;

/// Longest chunk-size line (size + extensions) we accept; extensions carry nothing we use.
const MAX_CHUNK_LINE: usize = 4096;

/// What one [`Decoder::step`] found after consuming `consumed` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Got {
    /// Body bytes at this range of the input (already counted in `consumed`).
    Data(Range<usize>),
    /// The input holds no more body bytes.
    NeedMore,
    /// The body is complete.
    End,
}

#[derive(Debug)]
pub(crate) enum Decoder {
    /// Bytes left of a Content-Length body.
    Length(u64),
    Chunked(Chunked),
}

#[derive(Debug)]
pub(crate) struct Chunked {
    state: ChunkState,
    /// Body bytes announced so far, against `Limits::max_body`.
    total: u64,
    trailer_count: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataCrlf,
    Trailers,
    Done,
}

/// Trailer fields that must not appear in trailers (RFC 9110 §6.5.1): framing, routing,
/// request modifiers and authentication. The corpus rejects Content-Length, Host and TE.
const FORBIDDEN_TRAILERS: [&str; 16] = [
    "transfer-encoding",
    "content-length",
    "host",
    "trailer",
    "te",
    "connection",
    "keep-alive",
    "upgrade",
    "expect",
    "max-forwards",
    "range",
    "authorization",
    "proxy-authorization",
    "cookie",
    "content-encoding",
    "content-range",
];

/// Whether `name` must not be sent as a trailer field: framing, routing, request modifiers,
/// authentication, content handling (RFC 9110 §6.5.1); requests carrying one are refused,
/// responses lose it.
pub fn is_forbidden_trailer(name: &str) -> bool {
    FORBIDDEN_TRAILERS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

impl Decoder {
    pub(crate) fn chunked() -> Decoder {
        Decoder::Chunked(Chunked {
            state: ChunkState::Size,
            total: 0,
            trailer_count: 0,
        })
    }

    /// Body bytes still to come, when known (Content-Length).
    pub(crate) fn known_remaining(&self) -> Option<u64> {
        match self {
            Decoder::Length(n) => Some(*n),
            Decoder::Chunked(c) => match c.state {
                ChunkState::Done => Some(0),
                _ => None,
            },
        }
    }

    /// Consumes framing from `input` up to the next run of at most `max` (> 0) body bytes.
    /// Returns the bytes consumed (framing and that data) and what was found.
    pub(crate) fn step(
        &mut self,
        input: &[u8],
        max: usize,
        limits: &Limits,
        trailers: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(usize, Got), Error> {
        match self {
            Decoder::Length(0) => Ok((0, Got::End)),
            Decoder::Length(rem) => {
                let n = (*rem).min(input.len() as u64).min(max as u64) as usize;
                if n == 0 {
                    return Ok((0, Got::NeedMore));
                }
                *rem -= n as u64;
                Ok((n, Got::Data(0..n)))
            }
            Decoder::Chunked(c) => c.step(input, max, limits, trailers),
        }
    }
}

impl Chunked {
    fn step(
        &mut self,
        input: &[u8],
        max: usize,
        limits: &Limits,
        trailers: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(usize, Got), Error> {
        let mut pos = 0;
        loop {
            let avail = &input[pos..];
            match self.state {
                ChunkState::Size => {
                    let Some(line_len) = find_line(avail, MAX_CHUNK_LINE, Error::BadChunkSize)?
                    else {
                        return Ok((pos, Got::NeedMore));
                    };
                    let size = parse_chunk_size_line(&avail[..line_len])?;
                    pos += line_len + 2;
                    if size == 0 {
                        self.state = ChunkState::Trailers;
                    } else {
                        self.total = self.total.saturating_add(size);
                        if self.total > limits.max_body {
                            return Err(Error::BodyTooLarge);
                        }
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(rem) => {
                    let n = rem.min(avail.len() as u64).min(max as u64) as usize;
                    if n == 0 {
                        return Ok((pos, Got::NeedMore));
                    }
                    self.state = match rem - n as u64 {
                        0 => ChunkState::DataCrlf,
                        left => ChunkState::Data(left),
                    };
                    return Ok((pos + n, Got::Data(pos..pos + n)));
                }
                ChunkState::DataCrlf => match avail {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok((pos, Got::NeedMore)),
                    _ => return Err(Error::ChunkMissingCrlf),
                },
                ChunkState::Trailers => {
                    let Some(line_len) =
                        find_line(avail, limits.max_header_size, Error::HeaderTooLarge)?
                    else {
                        return Ok((pos, Got::NeedMore));
                    };
                    let line = &avail[..line_len];
                    pos += line_len + 2;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok((pos, Got::End));
                    }
                    self.trailer_count += 1;
                    if self.trailer_count > limits.max_headers {
                        return Err(Error::TooManyHeaders);
                    }
                    if let Some(field) = parse_trailer(line)? {
                        trailers.push(field);
                    }
                }
                ChunkState::Done => return Ok((pos, Got::End)),
            }
        }
    }
}

/// Finds a CRLF-terminated line of at most `max` bytes at the start of `avail`; returns its
/// length without the CRLF, or `None` if more bytes are needed. A bare LF (or a CR inside,
/// caught by the callers' grammar) is rejected; a longer line is `too_long`.
fn find_line(avail: &[u8], max: usize, too_long: Error) -> Result<Option<usize>, Error> {
    let window = &avail[..avail.len().min(max.saturating_add(2))];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && window[i - 1] == b'\r' => Ok(Some(i - 1)),
        Some(_) => Err(Error::BadLineEnding),
        None if avail.len() > max.saturating_add(1) => Err(too_long),
        None => Ok(None),
    }
}

/// `chunk-size [ chunk-ext ]`: 1 to 16 hex digits, then nothing or `BWS ; ...`.
fn parse_chunk_size_line(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(Error::BadChunkSize);
    }
    let size = line[..digits].iter().fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16).unwrap_or(0);
        (n << 4) | u64::from(d)
    });
    let rest = &line[digits..];
    if rest.is_empty() {
        return Ok(size);
    }
    let ws = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    // Whitespace with no extension after it (`0 `), or anything but `;` (`6_0`, `0x5`).
    if rest.get(ws) != Some(&b';') {
        return Err(Error::BadChunkSize);
    }
    parse_chunk_ext(&rest[ws..])?;
    Ok(size)
}

/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`; accepted and ignored.
fn parse_chunk_ext(s: &[u8]) -> Result<(), Error> {
    let bad = Error::BadChunkExtension;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && matches!(s[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let from = *i;
        while *i < s.len() && is_tchar(s[*i]) {
            *i += 1;
        }
        *i > from
    };
    let mut i = 0;
    while i < s.len() {
        if s[i] != b';' {
            return Err(bad);
        }
        i += 1;
        skip_ws(&mut i);
        if !token(&mut i) {
            return Err(bad);
        }
        skip_ws(&mut i);
        if s.get(i) == Some(&b'=') {
            i += 1;
            skip_ws(&mut i);
            if s.get(i) == Some(&b'"') {
                i += 1;
                loop {
                    match s.get(i) {
                        None => return Err(bad),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match s.get(i + 1) {
                            Some(&c) if is_value_byte(c) => i += 2,
                            _ => return Err(bad),
                        },
                        Some(&c) if is_value_byte(c) => i += 1,
                        Some(_) => return Err(bad),
                    }
                }
            } else if !token(&mut i) {
                return Err(bad);
            }
            skip_ws(&mut i);
        }
    }
    Ok(())
}

/// One trailer field line; `None` for a dropped field (name with `_`, as for headers).
fn parse_trailer(line: &[u8]) -> Result<Option<(String, Vec<u8>)>, Error> {
    if matches!(line[0], b' ' | b'\t') {
        return Err(Error::ObsoleteFolding);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::BadHeaderName)?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Error::BadHeaderName);
    }
    let value = trim_ows(&line[colon + 1..]);
    if !value.iter().all(|&b| is_value_byte(b)) {
        return Err(Error::BadHeaderValue);
    }
    let name = String::from_utf8_lossy(name).into_owned();
    if is_forbidden_trailer(&name) {
        return Err(Error::ForbiddenTrailer);
    }
    if name.contains('_') {
        return Ok(None);
    }
    Ok(Some((name, value.to_vec())))
}

#[cfg(test)]
mod tests {
    use crate::testutil::{conn_with, read_all, rejection};
    use crate::{BodyRead, Error, Limits, ServerConn};

    const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

    type Fields = Vec<(String, Vec<u8>)>;

    fn chunked(body: &[u8]) -> Result<(Vec<u8>, Fields), Error> {
        let mut req = CHUNKED.to_vec();
        req.extend_from_slice(body);
        let mut c = conn_with(&req);
        c.feed_eof();
        c.next_request()?.unwrap();
        let body = read_all(&mut c)?;
        Ok((body, c.trailers().to_vec()))
    }

    #[test]
    fn reads_a_content_length_body_and_stops_there() {
        let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET");
        c.next_request().unwrap().unwrap();
        assert!(!c.body_done());
        assert_eq!(read_all(&mut c).unwrap(), b"hello");
        assert!(c.body_done());
        assert!(c.has_buffered_input());
    }

    #[test]
    fn needs_more_then_errors_on_eof_mid_body() {
        let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhe");
        c.next_request().unwrap().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.read_body(&mut buf).unwrap(), BodyRead::Data(2));
        assert_eq!(c.read_body(&mut buf).unwrap(), BodyRead::NeedMore);
        c.feed_eof();
        assert_eq!(c.read_body(&mut buf).unwrap_err(), Error::Incomplete);
    }

    #[test]
    fn dechunks_with_extensions_and_trailers() {
        let (body, trailers) = chunked(
            b"5;a=b;c=\"q \\\" x\" ; d\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\nX-T:  y \r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(
            trailers,
            vec![
                ("Vary".to_string(), b"*".to_vec()),
                ("X-T".to_string(), b"y".to_vec())
            ]
        );
    }

    #[test]
    fn accepts_leading_zeros_and_upper_case_hex() {
        assert_eq!(
            chunked(b"000A\r\n0123456789\r\n000\r\n\r\n").unwrap().0,
            b"0123456789"
        );
    }

    #[test]
    fn rejects_invalid_chunk_sizes() {
        for size in [
            "-5",
            "+5",
            "0x5",
            "5_0",
            "",
            " 5",
            "5 ",
            "g",
            "11111111111111111",
        ] {
            let body = format!("{size}\r\nhello\r\n0\r\n\r\n");
            assert_eq!(
                chunked(body.as_bytes()).unwrap_err().status(),
                400,
                "{size:?}"
            );
        }
        let body = b"1_0\r\nhello\r\n0\r\n\r\n";
        assert_eq!(chunked(body).unwrap_err(), Error::BadChunkSize);
    }

    #[test]
    fn rejects_a_chunk_size_that_overflows_the_body_limit() {
        let e = chunked(b"ffffffffffffffff\r\nx").unwrap_err();
        assert_eq!((e.clone(), e.status()), (Error::BodyTooLarge, 413));
    }

    #[test]
    fn rejects_bad_chunk_extensions() {
        for ext in [
            ";",
            "; =x",
            ";a=",
            ";a=\"x",
            ";a=b c",
            ";a\rb",
            ";a=\"\x01\"",
        ] {
            let body = format!("5{ext}\r\nhello\r\n0\r\n\r\n");
            assert_eq!(
                chunked(body.as_bytes()).unwrap_err(),
                Error::BadChunkExtension,
                "{ext:?}"
            );
        }
    }

    #[test]
    fn rejects_chunk_data_not_followed_by_crlf() {
        assert_eq!(
            chunked(b"5\r\nhelloX\r\n0\r\n\r\n").unwrap_err(),
            Error::ChunkMissingCrlf
        );
        assert_eq!(
            chunked(b"5\r\nhello\rX0\r\n\r\n").unwrap_err(),
            Error::ChunkMissingCrlf
        );
    }

    #[test]
    fn rejects_bare_lf_in_chunk_lines() {
        assert_eq!(chunked(b"5\nhello\r\n0\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(chunked(b"5\r\nhello\r\n0\n\r\n").unwrap_err().status(), 400);
    }

    #[test]
    fn rejects_forbidden_and_malformed_trailers() {
        for t in ["Content-Length: 1", "host: x", "Transfer-Encoding: chunked"] {
            let body = format!("0\r\n{t}\r\n\r\n");
            assert_eq!(
                chunked(body.as_bytes()).unwrap_err(),
                Error::ForbiddenTrailer,
                "{t}"
            );
        }
        assert_eq!(
            chunked(b"0\r\nX : 1\r\n\r\n").unwrap_err(),
            Error::BadHeaderName
        );
        assert_eq!(
            chunked(b"0\r\nX: a\x07\r\n\r\n").unwrap_err(),
            Error::BadHeaderValue
        );
        assert_eq!(
            chunked(b"0\r\nX: a\r\n b\r\n\r\n").unwrap_err(),
            Error::ObsoleteFolding
        );
    }

    #[test]
    fn eof_before_the_last_crlf_is_incomplete() {
        assert_eq!(chunked(b"0\r\n").unwrap_err(), Error::Incomplete);
        assert_eq!(chunked(b"5\r\nhel").unwrap_err(), Error::Incomplete);
    }

    #[test]
    fn rejects_a_chunked_body_once_its_total_exceeds_max_body() {
        let mut c = ServerConn::new(Limits {
            max_body: 8,
            ..Limits::default()
        });
        c.feed(CHUNKED);
        c.feed(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n");
        c.next_request().unwrap().unwrap();
        let mut buf = [0u8; 64];
        let first = c.read_body(&mut buf);
        // The first chunk may come out before the second size line trips the limit.
        let e = match first {
            Ok(BodyRead::Data(5)) => c.read_body(&mut buf).unwrap_err(),
            other => other.unwrap_err(),
        };
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn bounds_chunk_size_lines() {
        let mut body = b"5;a=".to_vec();
        body.extend(std::iter::repeat_n(b'x', 5000));
        let e = chunked(&body).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn a_complete_request_passes_rejection_helper_sanity() {
        // `rejection` panics when a request is accepted; an invalid body is rejected.
        let mut req = CHUNKED.to_vec();
        req.extend_from_slice(b"zz\r\n");
        assert_eq!(rejection(&req), Error::BadChunkSize);
    }
}
