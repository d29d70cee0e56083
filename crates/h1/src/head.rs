//! Request heads: an incremental line scanner that enforces limits and line endings as bytes
//! arrive, and the parser that turns a complete head into a validated [`RequestHead`].
//!
//! Line endings: CRLF is required everywhere (request line, fields, chunk lines). A bare LF
//! or bare CR is rejected with 400. RFC 9112 §2.2 lets a server accept bare LF, but the
//! gunicorn corpus rejects it (`003`, `chunked_11`, `invalid_field_value_01`) and
//! disagreeing parsers in a proxy chain are what request smuggling is made of.
use crate::authority::{check_host, AuthorityError};
use crate::request::{Field, Fields, HeadBuf, Span};
use crate::target::parse_target;
use crate::{BodyFraming, Error, Limits, RequestHead, Version};

/// Buffers a head is parsed into: the connection's spares (see
/// [`crate::ServerConn::recycle`]), empty and without allocation when there are none.
#[derive(Debug, Default)]
pub(crate) struct HeadStore {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fields: Fields,
}

/// Longest method accepted (gunicorn's bound too). The longest registered method
/// (`UPDATEREDIRECTREF`) has 17 characters; a longer token is a method no one implements,
/// answered 501 (RFC 9110 §9.1) as soon as its first `MAX_METHOD + 1` bytes are in, whether
/// or not the request line also exceeds its limit, so the answer never depends on how the
/// bytes were split.
pub(crate) const MAX_METHOD: usize = 20;

/// Incremental scan of the head being received. Every byte is examined once, so a head
/// trickling in byte by byte costs O(n) in total, and each limit trips as soon as the
/// buffered bytes exceed it, which bounds the buffer while reading a head.
#[derive(Debug, Default)]
pub(crate) struct HeadScan {
    scanned: usize,
    line_start: usize,
    request_line_done: bool,
    /// The method's length has been judged (a space within its first bytes, or not a token).
    method_judged: bool,
    /// Where the request line's CRLF is, once it was seen.
    request_line_end: usize,
    fields: usize,
}

impl HeadScan {
    /// Whether any byte of a head has been examined.
    pub(crate) fn started(&self) -> bool {
        self.scanned > 0
    }

    /// Number of field lines seen so far.
    pub(crate) fn fields(&self) -> usize {
        self.fields
    }

    /// Offset of the request line's CRLF (valid once [`scan`](Self::scan) found the head).
    pub(crate) fn request_line_end(&self) -> usize {
        self.request_line_end
    }

    /// Scans `data` (the head so far, from its first byte; earlier calls saw a prefix of it).
    /// Returns the head's length including the blank line once it is complete.
    pub(crate) fn scan(&mut self, data: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
        if !self.method_judged {
            self.judge_method(data, limits)?;
        }
        let mut i = self.scanned;
        while let Some(off) = memchr::memchr2(b'\r', b'\n', &data[i..]) {
            let at = i + off;
            if data[at] == b'\n' {
                return Err(self.bad_ending());
            }
            let Some(&next) = data.get(at + 1) else {
                // A CR as the last byte: wait for the LF, but the line is already this long.
                self.scanned = at;
                return self.check_partial(at, limits).map(|()| None);
            };
            if next != b'\n' {
                return Err(self.bad_ending());
            }
            let len = at - self.line_start;
            if !self.request_line_done {
                if len > limits.max_request_line {
                    return Err(Error::RequestLineTooLong);
                }
                if len == 0 {
                    // Leading empty lines are stripped by the connection before scanning.
                    return Err(Error::BadRequestLine);
                }
                self.request_line_done = true;
                self.request_line_end = at;
            } else if len == 0 {
                return Ok(Some(at + 2));
            } else {
                if matches!(data[self.line_start], b' ' | b'\t') {
                    return Err(Error::ObsoleteFolding);
                }
                if len > limits.max_header_size {
                    return Err(Error::HeaderTooLarge);
                }
                self.fields += 1;
                if self.fields > limits.max_headers {
                    return Err(Error::TooManyHeaders);
                }
                if at + 2 > limits.max_head {
                    return Err(Error::HeadTooLarge);
                }
            }
            self.line_start = at + 2;
            i = at + 2;
        }
        self.scanned = data.len();
        self.check_partial(data.len(), limits).map(|()| None)
    }

    /// Rejects an overlong method from its first `MAX_METHOD + 1` bytes alone (see
    /// [`MAX_METHOD`]); anything else about them is left to the other checks.
    fn judge_method(&mut self, data: &[u8], limits: &Limits) -> Result<(), Error> {
        let window = &data[..data.len().min(MAX_METHOD + 1)];
        if window.contains(&b' ') {
            self.method_judged = true;
        } else if window.len() > MAX_METHOD {
            self.method_judged = true;
            // With a shorter request-line limit, that limit trips first (414) on every split.
            if limits.max_request_line > MAX_METHOD && window.iter().all(|&b| is_method_char(b)) {
                return Err(Error::MethodTooLong);
            }
        }
        Ok(())
    }

    /// An incomplete line already over its limit can only grow: reject it now.
    fn check_partial(&self, end: usize, limits: &Limits) -> Result<(), Error> {
        let len = end - self.line_start;
        if !self.request_line_done {
            if len > limits.max_request_line {
                return Err(Error::RequestLineTooLong);
            }
        } else if len > limits.max_header_size {
            return Err(Error::HeaderTooLarge);
        } else if end > limits.max_head {
            return Err(Error::HeadTooLarge);
        }
        Ok(())
    }

    fn bad_ending(&self) -> Error {
        if self.request_line_done {
            Error::BadLineEnding
        } else {
            Error::BadRequestLine
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2), by table: every method and field name is checked byte by byte.
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

static TCHAR: [bool; 256] = byte_table!(is_tchar_by_grammar);

/// `tchar` as RFC 9110 §5.6.2 spells it: `!#$%&'*+-.^_`|~`, digits and letters.
const fn is_tchar_by_grammar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Method characters: `tchar` without lower-case letters. RFC 9110 allows any token, but
/// the corpus (`003c`) rejects lower-case methods as gunicorn and nginx do; real methods
/// are upper-case and a lower-case one is far more likely an attack or a mistake.
fn is_method_char(b: u8) -> bool {
    is_tchar(b) && !b.is_ascii_lowercase()
}

/// Field-value bytes: HT, SP, VCHAR, obs-text (no CTLs, no DEL).
pub(crate) fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
}

pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parses a complete head as found by [`HeadScan`]: `fields` is its field count and
/// `rl_end` the offset of the request line's CRLF (the scan checked that every CR is
/// followed by LF and that there is no bare LF, so that is the head's first CR).
// Long on purpose: one pass over the request line, then the fields, recording spans as
// offsets into the one `buf`; the steps share those offsets and read best in order.
pub(crate) fn parse_head(
    bytes: &[u8],
    fields: usize,
    rl_end: usize,
    store: HeadStore,
    limits: &Limits,
    require_host: bool,
) -> Result<RequestHead, Error> {
    let HeadStore {
        bytes: mut buf,
        fields: mut out_fields,
    } = store;
    buf.clear();
    buf.extend_from_slice(bytes);
    out_fields.clear();
    out_fields.reserve(fields);
    if buf.get(rl_end..rl_end + 2) != Some(b"\r\n") {
        return Err(Error::BadRequestLine);
    }
    let line = &buf[..rl_end];

    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Error::BadRequestLine)?;
    let method = &line[..sp1];
    if method.is_empty() || !method.iter().all(|&b| is_method_char(b)) {
        return Err(Error::BadMethod);
    }
    let rest = &line[sp1 + 1..];
    let sp2 = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Error::BadRequestLine)?;
    let target = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if target.is_empty() || version.contains(&b' ') {
        return Err(Error::BadRequestLine);
    }
    let version = parse_version(version)?;
    let target_start = sp1 + 1;
    let parts = parse_target(method, target, target_start)?;

    let mut info = HeaderInfo::default();
    let block = &buf[rl_end + 2..];
    // Slots for the fields the scan counted, initialised only as many as the tier needs
    // (most heads have a few fields: 8 slots are 256 bytes to fill, 32 are 1 KiB).
    let (mut small, mut large, mut heap);
    let slots: &mut [httparse::Header<'_>] = if fields <= 8 {
        small = [httparse::EMPTY_HEADER; 8];
        &mut small[..]
    } else if fields <= 32 {
        large = [httparse::EMPTY_HEADER; 32];
        &mut large[..]
    } else {
        heap = vec![httparse::EMPTY_HEADER; fields];
        &mut heap[..]
    };
    let parsed = match httparse::parse_headers(block, slots) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        Ok(httparse::Status::Partial) => return Err(Error::BadLineEnding),
        Err(httparse::Error::HeaderName) => return Err(Error::BadHeaderName),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
        Err(httparse::Error::NewLine) => return Err(Error::BadLineEnding),
        Err(_) => return Err(Error::BadHeaderValue),
    };
    let base = buf.as_ptr() as usize;
    for h in parsed.iter() {
        let name = h.name.as_bytes();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(Error::BadHeaderName);
        }
        let value = trim_ows(h.value);
        if !value.iter().all(|&b| is_value_byte(b)) {
            return Err(Error::BadHeaderValue);
        }
        if name.contains(&b'_') {
            continue;
        }
        info.note(name, value)?;
        let value_span = if value.is_empty() {
            Span::default()
        } else {
            Span::new(value.as_ptr() as usize - base, value.len())
        };
        out_fields.push(Field {
            name: Span::new(name.as_ptr() as usize - base, name.len()),
            value: value_span,
        });
    }

    let framing = info.framing(version, limits)?;
    info.check_routing(method, version, require_host)?;
    let keep_alive = match version {
        Version::Http11 | Version::Http2 => !info.close,
        Version::Http10 => info.keep_alive && !info.close,
    };
    Ok(RequestHead {
        method: Span::new(0, method.len()),
        target: Span::new(target_start, target.len()),
        path: parts.path,
        query: parts.query,
        authority: parts.authority,
        version,
        fields: out_fields,
        framing,
        keep_alive,
        expects_continue: info.expect_continue,
        has_upgrade: info.upgrade,
        buf: HeadBuf::new(buf),
    })
}

fn parse_version(v: &[u8]) -> Result<Version, Error> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Error::UnsupportedVersion)
        }
        _ => Err(Error::BadVersion),
    }
}

/// What the fields say about framing, routing and connection management.
#[derive(Default)]
struct HeaderInfo {
    content_length: Option<u64>,
    te_seen: bool,
    te_chunked: u32,
    te_last_chunked: bool,
    te_other: bool,
    hosts: u32,
    /// The `Host` value was empty.
    empty_host: bool,
    content_types: u32,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: bool,
}

impl HeaderInfo {
    fn note(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                self.hosts += 1;
                if self.hosts > 1 {
                    return Err(Error::DuplicateHeader);
                }
                match check_host(value) {
                    Ok(()) => {}
                    Err(AuthorityError::Empty) => self.empty_host = true,
                    Err(AuthorityError::Invalid) => return Err(Error::BadHost),
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect")
                && value.eq_ignore_ascii_case(b"100-continue") =>
            {
                self.expect_continue = true;
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => self.upgrade = true,
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    }
                }
            }
            12 if name.eq_ignore_ascii_case(b"content-type") => {
                // A singleton field; the corpus (`041`) rejects a second one.
                self.content_types += 1;
                if self.content_types > 1 {
                    return Err(Error::DuplicateHeader);
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // Even an equal duplicate is rejected: RFC 9112 §6.3 allows merging them,
                // but a strict server has no need to and smuggling attacks rely on it.
                if self.content_length.is_some() {
                    return Err(Error::BadContentLength);
                }
                self.content_length = Some(parse_content_length(value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.te_seen = true;
                for coding in value.split(|&b| b == b',').map(trim_ows) {
                    if coding.is_empty() {
                        continue;
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        self.te_chunked += 1;
                        self.te_last_chunked = true;
                    } else {
                        self.te_other = true;
                        self.te_last_chunked = false;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Host presence (RFC 9112 §3.2) and CONNECT, once the whole head is known valid.
    fn check_routing(
        &self,
        method: &[u8],
        version: Version,
        require_host: bool,
    ) -> Result<(), Error> {
        if version == Version::Http11 && require_host {
            if self.hosts == 0 {
                return Err(Error::MissingHost);
            }
            if self.empty_host {
                // RFC 9110 §4.2.1: an http URI with an empty host is invalid.
                return Err(Error::BadHost);
            }
        }
        if method == b"CONNECT" {
            // An origin server, not a proxy: no tunnels (RFC 9110 §9.3.6). Decided here,
            // before any application could see the request, and after the head was fully
            // validated (a malformed CONNECT is still a 400).
            return Err(Error::ConnectNotSupported);
        }
        Ok(())
    }

    /// RFC 9112 §6.3, strictly: TE and CL together, TE in HTTP/1.0, a final coding other
    /// than chunked and a repeated chunked are 400; any other coding is 501.
    fn framing(&self, version: Version, limits: &Limits) -> Result<BodyFraming, Error> {
        if self.te_seen {
            if version == Version::Http10 {
                return Err(Error::TransferEncodingInHttp10);
            }
            if self.content_length.is_some() {
                return Err(Error::ContentLengthWithTransferEncoding);
            }
            if self.te_chunked != 1 || !self.te_last_chunked {
                return Err(Error::BadTransferEncoding);
            }
            if self.te_other {
                return Err(Error::UnsupportedTransferCoding);
            }
            return Ok(BodyFraming::Chunked);
        }
        match self.content_length {
            Some(n) if n > limits.max_body => Err(Error::BodyTooLarge),
            Some(n) => Ok(BodyFraming::Length(n)),
            None => Ok(BodyFraming::None),
        }
    }
}

/// `1*DIGIT`, no sign, no list, no whitespace inside, no overflow.
fn parse_content_length(v: &[u8]) -> Result<u64, Error> {
    if v.is_empty() {
        return Err(Error::BadContentLength);
    }
    v.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(Error::BadContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Error::BadContentLength)
    })
}

#[cfg(test)]
mod tests;
