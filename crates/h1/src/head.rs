//! Request heads: an incremental line scanner that enforces limits and line endings as bytes
//! arrive, and the parser that turns a complete head into a validated [`RequestHead`].
//!
//! Line endings: CRLF is required everywhere (request line, fields, chunk lines). A bare LF
//! or bare CR is rejected with 400. RFC 9112 §2.2 lets a server accept bare LF, but the
//! gunicorn corpus rejects it (`003`, `chunked_11`, `invalid_field_value_01`) and
//! disagreeing parsers in a proxy chain are what request smuggling is made of.
use crate::authority::{check_host, AuthorityError};
use crate::request::{Field, Fields, Span};
use crate::target::parse_target;
use crate::{BodyFraming, Error, Limits, RequestHead, Version};

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

    /// Scans `data` (the head so far, from its first byte; earlier calls saw a prefix of it).
    /// Returns the head's length including the blank line once it is complete.
    pub(crate) fn scan(&mut self, data: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
        if !self.method_judged {
            self.judge_method(data, limits)?;
        }
        let mut i = self.scanned;
        while let Some(off) = data[i..].iter().position(|&b| b == b'\r' || b == b'\n') {
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

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

/// Parses a complete head (as found by [`HeadScan`]; `fields` is its field count).
pub(crate) fn parse_head(
    bytes: &[u8],
    fields: usize,
    limits: &Limits,
    require_host: bool,
) -> Result<RequestHead, Error> {
    let buf = bytes.to_vec();
    let rl_end = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(Error::BadRequestLine)?;
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
    let mut out_fields = Fields::new();
    let block = &buf[rl_end + 2..];
    let mut stack = [httparse::EMPTY_HEADER; 32];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if fields <= stack.len() {
        &mut stack[..]
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
    if version == Version::Http11 && require_host {
        if info.hosts == 0 {
            return Err(Error::MissingHost);
        }
        if info.empty_host {
            // RFC 9110 §4.2.1: an http URI with an empty host is invalid.
            return Err(Error::BadHost);
        }
    }
    if method == b"CONNECT" {
        // An origin server, not a proxy: no tunnels (RFC 9110 §9.3.6). Decided here, before
        // any application could see the request, and after the head was fully validated
        // (a malformed CONNECT is still a 400).
        return Err(Error::ConnectNotSupported);
    }
    let keep_alive = match version {
        Version::Http11 => !info.close,
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
        buf,
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
mod tests {
    use super::*;
    use crate::testutil::{conn_with, head, rejection};
    use crate::ServerConn;

    fn ok(bytes: &[u8]) -> RequestHead {
        head(bytes).unwrap().expect("complete head")
    }

    #[test]
    fn parses_method_target_path_query_and_headers() {
        let h = ok(b"GET /a%20b?x=1#frag HTTP/1.1\r\nHost: h\r\nX-A:  v  \r\n\r\n");
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a%20b?x=1#frag");
        assert_eq!(h.path(), "/a%20b");
        assert_eq!(h.query(), "x=1");
        assert_eq!(h.version(), Version::Http11);
        let hs: Vec<_> = h.headers().collect();
        assert_eq!(hs, vec![("Host", &b"h"[..]), ("X-A", &b"v"[..])]);
        assert_eq!(h.header("x-a"), Some(&b"v"[..]));
        assert_eq!(h.body_framing(), BodyFraming::None);
    }

    #[test]
    fn keeps_more_fields_than_fit_inline() {
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..40 {
            req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let h = ok(&req);
        assert_eq!(h.headers().count(), 41);
        assert_eq!(h.header("x-39"), Some(&b"39"[..]));
    }

    #[test]
    fn waits_for_the_blank_line() {
        assert!(head(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none());
        assert!(head(b"GET / HTTP/1.1\r\nHost: h\r\n\r").unwrap().is_none());
    }

    #[test]
    fn ignores_leading_empty_lines() {
        let h = ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.path(), "/");
    }

    #[test]
    fn accepts_absolute_form_and_takes_its_path() {
        let h = ok(b"GET http://u:p@h:8/x/y?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((h.path(), h.query()), ("/x/y", "q=1"));
        assert_eq!(h.host(), Some("h:8"));
        assert!(h.is_absolute_form());
        let h = ok(b"GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.path(), "/");
        assert_eq!(
            rejection(b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
        assert_eq!(
            rejection(b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
    }

    #[test]
    fn answers_connect_501_once_it_is_valid_and_400_when_it_is_not() {
        let e = rejection(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
        assert_eq!((e.clone(), e.status()), (Error::ConnectNotSupported, 501));
        let e = rejection(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n");
        assert_eq!(e, Error::ConnectNotSupported);
        let e = rejection(b"CONNECT u@h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
        assert_eq!(e, Error::BadTarget);
        let e = rejection(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: x\r\n\r\n");
        assert_eq!(e, Error::BadContentLength);
        let mut c = conn_with(b"CONNECT h:443 HTTP/1.1\r\n\r\n");
        c.set_require_host(false);
        assert_eq!(c.next_request().unwrap_err(), Error::ConnectNotSupported);
        assert!(c.is_closed());
    }

    #[test]
    fn allows_authority_form_only_for_connect() {
        let e = rejection(b"GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(e, Error::BadTarget);
        let e = rejection(b"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(e, Error::BadTarget);
    }

    #[test]
    fn allows_asterisk_only_for_options() {
        assert_eq!(ok(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").path(), "*");
        assert_eq!(
            rejection(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
    }

    #[test]
    fn rejects_relative_targets_and_control_characters_in_targets() {
        assert_eq!(
            rejection(b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
        assert_eq!(
            rejection(b"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
        assert_eq!(
            rejection(b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
        assert_eq!(
            rejection(b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n"),
            Error::BadTarget
        );
    }

    #[test]
    fn rejects_raw_bytes_over_0x7f_in_targets_even_as_utf8() {
        for target in [
            &b"/\xc3\xa0%20k"[..],
            b"/a?q=\xc3\xa9",
            b"http://h/\xe2\x82\xac",
        ] {
            let mut req = b"GET ".to_vec();
            req.extend_from_slice(target);
            req.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
            let e = rejection(&req);
            assert_eq!(
                (e.clone(), e.status()),
                (Error::BadTarget, 400),
                "{target:?}"
            );
        }
        // Percent-encoded, the same bytes are fine; so is visible ASCII outside RFC 3986.
        assert_eq!(
            ok(b"GET /%C3%A0 HTTP/1.1\r\nHost: h\r\n\r\n").path(),
            "/%C3%A0"
        );
        assert_eq!(
            ok(b"GET /\"q\"{|} HTTP/1.1\r\nHost: h\r\n\r\n").path(),
            "/\"q\"{|}"
        );
    }

    #[test]
    fn validates_host_as_uri_host_and_port() {
        for host in [
            "user@host",
            "host/path",
            "a, b",
            "a,b",
            "h:x",
            "h:70000",
            "[::1",
            "a b",
        ] {
            let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let e = rejection(req.as_bytes());
            assert_eq!((e.clone(), e.status()), (Error::BadHost, 400), "{host:?}");
            // Invalid stays invalid on HTTP/1.0 and without the Host requirement.
            let req = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n");
            assert_eq!(rejection(req.as_bytes()), Error::BadHost, "{host:?}");
        }
        let e = rejection(b"GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n");
        assert_eq!(e, Error::BadHost);
        for host in [
            "example.com",
            "example.com:8080",
            "[::1]:80",
            "127.0.0.1",
            "0.0.0.0=5000",
        ] {
            let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(ok(req.as_bytes()).host(), Some(host));
        }
    }

    #[test]
    fn rejects_an_empty_host_on_http11_only() {
        let e = rejection(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
        assert_eq!(e, Error::BadHost);
        let e = rejection(b"GET / HTTP/1.1\r\nHost:   \r\n\r\n");
        assert_eq!(e, Error::BadHost);
        assert_eq!(ok(b"GET / HTTP/1.0\r\nHost:\r\n\r\n").host(), None);
        let mut c = conn_with(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
        c.set_require_host(false);
        assert_eq!(c.next_request().unwrap().unwrap().host(), None);
    }

    #[test]
    fn lets_an_absolute_target_authority_win_over_host() {
        // RFC 9112 §3.2.2: a mismatch is not an error; the target's authority is the host.
        let h = ok(b"GET http://a.example:81/p HTTP/1.1\r\nHost: b.example\r\n\r\n");
        assert_eq!((h.host(), h.path()), (Some("a.example:81"), "/p"));
        assert_eq!(h.header("host"), Some(&b"b.example"[..]));
        for target in [
            "http://a b/",
            "http://h:x/",
            "http://u@/",
            "http://a,b/",
            "http://[::1/",
        ] {
            let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(rejection(req.as_bytes()).status(), 400, "{target:?}");
        }
        // Host is still required and still validated with an absolute-form target.
        let e = rejection(b"GET http://a/ HTTP/1.1\r\n\r\n");
        assert_eq!(e, Error::MissingHost);
        let e = rejection(b"GET http://a/ HTTP/1.1\r\nHost: u@a\r\n\r\n");
        assert_eq!(e, Error::BadHost);
    }

    #[test]
    fn answers_overlong_methods_501_however_the_bytes_are_split() {
        let method = "A".repeat(MAX_METHOD + 1);
        let req = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
        let long_line = format!("{} / HTTP/1.1\r\nHost: h\r\n\r\n", "A".repeat(9000));
        for req in [req.as_bytes(), long_line.as_bytes()] {
            for split in [1, 7, MAX_METHOD + 1, req.len()] {
                let mut c = ServerConn::new(Limits::default());
                let mut result = Ok(None);
                for piece in req.chunks(split) {
                    c.feed(piece);
                    result = c.next_request();
                    if result.is_err() {
                        break;
                    }
                }
                let e = result.unwrap_err();
                assert_eq!(
                    (e.clone(), e.status()),
                    (Error::MethodTooLong, 501),
                    "{split}"
                );
            }
        }
        let at_limit = format!("{} / HTTP/1.1\r\nHost: h\r\n\r\n", "A".repeat(MAX_METHOD));
        assert_eq!(ok(at_limit.as_bytes()).method().len(), MAX_METHOD);
        // Not a token within the bytes judged: the usual 400, not 501.
        let e = rejection(format!("Aa{} / HTTP/1.1\r\nHost: h\r\n\r\n", "A".repeat(30)).as_bytes());
        assert_eq!(e.status(), 400);
        // A request-line limit below the method bound trips first, on every split.
        let mut c = ServerConn::new(Limits {
            max_request_line: 10,
            ..Limits::default()
        });
        c.feed(req.as_bytes());
        assert_eq!(c.next_request().unwrap_err(), Error::RequestLineTooLong);
    }

    #[test]
    fn rejects_malformed_request_lines() {
        for line in [
            &b"GET HTTP/1.1"[..],
            b"GET  / HTTP/1.1",
            b"GET / HTTP/1.1 ",
            b"GET / a HTTP/1.1",
            b"GET",
        ] {
            let mut req = line.to_vec();
            req.extend_from_slice(b"\r\nHost: h\r\n\r\n");
            assert_eq!(
                rejection(&req).status(),
                400,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn rejects_methods_that_are_not_upper_case_tokens() {
        for m in ["get", "G:T", "GET\u{0}", "GÉT", "-bl"] {
            let req = format!("{m} / HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(rejection(req.as_bytes()), Error::BadMethod, "{m}");
        }
        assert_eq!(
            ok(b"-BLARGH / HTTP/1.1\r\nHost: h\r\n\r\n").method(),
            "-BLARGH"
        );
    }

    #[test]
    fn answers_505_for_well_formed_unknown_versions_and_400_for_garbage() {
        let e = rejection(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n");
        assert_eq!((e.clone(), e.status()), (Error::UnsupportedVersion, 505));
        for v in ["HTTP/1.10", "HTTP/111", "FTP/1.1", "http/1.1", "HTTP/1"] {
            let req = format!("GET / {v}\r\nHost: h\r\n\r\n");
            assert_eq!(rejection(req.as_bytes()), Error::BadVersion, "{v}");
        }
    }

    #[test]
    fn detects_a_too_long_request_line_before_its_end() {
        let mut c = ServerConn::new(Limits {
            max_request_line: 16,
            ..Limits::default()
        });
        c.feed(b"GET /0123456789ab");
        assert_eq!(c.next_request().unwrap_err(), Error::RequestLineTooLong);
        assert_eq!(Error::RequestLineTooLong.status(), 414);
        assert!(c.is_closed());
    }

    #[test]
    fn accepts_a_request_line_exactly_at_the_limit() {
        let mut c = ServerConn::new(Limits {
            max_request_line: 14,
            ..Limits::default()
        });
        c.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(c.next_request().unwrap().is_some());
    }

    #[test]
    fn detects_too_many_and_too_large_fields_early() {
        let limits = Limits {
            max_headers: 2,
            max_header_size: 10,
            ..Limits::default()
        };
        let mut c = ServerConn::new(limits);
        c.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n");
        assert_eq!(c.next_request().unwrap_err(), Error::TooManyHeaders);
        let mut c = ServerConn::new(limits);
        c.feed(b"GET / HTTP/1.1\r\nHost: 0123456");
        assert_eq!(c.next_request().unwrap_err(), Error::HeaderTooLarge);
        assert_eq!(Error::HeaderTooLarge.status(), 431);
    }

    #[test]
    fn rejects_obsolete_line_folding() {
        let e = rejection(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n");
        assert_eq!(e, Error::ObsoleteFolding);
        let e = rejection(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n");
        assert_eq!(e, Error::ObsoleteFolding);
    }

    #[test]
    fn rejects_whitespace_between_field_name_and_colon() {
        let e = rejection(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n");
        assert_eq!(e, Error::BadHeaderName);
    }

    #[test]
    fn rejects_empty_and_non_token_field_names() {
        for line in [
            &b": v"[..],
            b"A(B: v",
            b"A\x00: v",
            b"\xc3\x9f: v",
            b"novalue",
        ] {
            let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
            req.extend_from_slice(line);
            req.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                rejection(&req).status(),
                400,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn rejects_control_characters_in_field_values() {
        for v in [&b"a\x07b"[..], b"a\x7fb", b"a\x00b", b"a\x1bb"] {
            let mut req = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
            req.extend_from_slice(v);
            req.extend_from_slice(b"\r\n\r\n");
            assert_eq!(rejection(&req), Error::BadHeaderValue, "{v:?}");
        }
        let h = ok(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb caf\xc3\xa9\r\n\r\n");
        assert_eq!(h.header("x"), Some(&b"a\tb caf\xc3\xa9"[..]));
    }

    #[test]
    fn rejects_bare_cr_and_bare_lf() {
        assert_eq!(
            rejection(b"GET / HTTP/1.1\nHost: h\r\n\r\n"),
            Error::BadRequestLine
        );
        assert_eq!(
            rejection(b"GET / HTTP/1.1\r\nHost: h\n\r\n"),
            Error::BadLineEnding
        );
        assert_eq!(
            rejection(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
            Error::BadLineEnding
        );
        assert_eq!(
            rejection(b"GET / HTTP/1.1\r\nHost: h\r\n\n"),
            Error::BadLineEnding
        );
    }

    #[test]
    fn requires_exactly_one_host_on_http11() {
        assert_eq!(rejection(b"GET / HTTP/1.1\r\n\r\n"), Error::MissingHost);
        let e = rejection(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
        assert_eq!(e, Error::DuplicateHeader);
        assert!(ok(b"GET / HTTP/1.0\r\n\r\n").header("host").is_none());
        let mut c = conn_with(b"GET / HTTP/1.1\r\n\r\n");
        c.set_require_host(false);
        assert!(c.next_request().unwrap().is_some());
    }

    #[test]
    fn rejects_a_second_content_type() {
        let e =
            rejection(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n");
        assert_eq!(e, Error::DuplicateHeader);
    }

    #[test]
    fn drops_fields_with_underscores() {
        let h = ok(b"GET / HTTP/1.0\r\nContent_Length: 5\r\nX-A: 1\r\n\r\n");
        assert_eq!(h.headers().count(), 1);
        assert_eq!(h.body_framing(), BodyFraming::None);
    }

    #[test]
    fn parses_content_length() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0012\r\n\r\n");
        assert_eq!(h.body_framing(), BodyFraming::Length(12));
        let h = ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.body_framing(), BodyFraming::Length(0));
    }

    #[test]
    fn rejects_bad_content_lengths() {
        for v in [
            "",
            "-1",
            "+1",
            "-0",
            "0x10",
            "1, 1",
            "1 1",
            "1_0",
            "ten",
            "18446744073709551616",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {v}\r\n\r\n");
            assert_eq!(rejection(req.as_bytes()), Error::BadContentLength, "{v:?}");
        }
    }

    #[test]
    fn rejects_duplicate_content_length_even_when_equal() {
        let e = rejection(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        );
        assert_eq!(e, Error::BadContentLength);
    }

    #[test]
    fn rejects_content_length_with_transfer_encoding() {
        let e = rejection(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(e, Error::ContentLengthWithTransferEncoding);
    }

    #[test]
    fn classifies_transfer_encodings() {
        let cases: [(&str, Result<BodyFraming, Error>); 9] = [
            ("chunked", Ok(BodyFraming::Chunked)),
            ("Chunked", Ok(BodyFraming::Chunked)),
            ("gzip", Err(Error::BadTransferEncoding)),
            ("chunked, gzip", Err(Error::BadTransferEncoding)),
            ("chunked, chunked", Err(Error::BadTransferEncoding)),
            ("", Err(Error::BadTransferEncoding)),
            ("gzip, chunked", Err(Error::UnsupportedTransferCoding)),
            ("identity, chunked", Err(Error::UnsupportedTransferCoding)),
            ("identity", Err(Error::BadTransferEncoding)),
        ];
        for (te, want) in cases {
            let req = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
            let got = conn_with(req.as_bytes())
                .next_request()
                .map(|h| h.unwrap().body_framing());
            assert_eq!(got, want, "{te:?}");
        }
        assert_eq!(Error::UnsupportedTransferCoding.status(), 501);
    }

    #[test]
    fn rejects_chunked_split_across_two_fields_twice() {
        let e = rejection(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(e, Error::BadTransferEncoding);
    }

    #[test]
    fn rejects_transfer_encoding_on_http10() {
        let e = rejection(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e, Error::TransferEncodingInHttp10);
    }

    #[test]
    fn rejects_a_declared_body_over_max_body_at_head_time() {
        let mut c = ServerConn::new(Limits {
            max_body: 10,
            ..Limits::default()
        });
        c.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
        let e = c.next_request().unwrap_err();
        assert_eq!((e.clone(), e.status()), (Error::BodyTooLarge, 413));
    }

    #[test]
    fn reads_keep_alive_from_version_and_connection_tokens() {
        let ka = |req: &[u8]| ok(req).keep_alive();
        assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn notes_expect_100_continue() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n");
        assert!(h.expects_continue());
    }

    #[test]
    fn eof_mid_head_is_incomplete() {
        let mut c = conn_with(b"GET / HTTP/1.1\r\nHo");
        assert!(c.next_request().unwrap().is_none());
        assert!(c.is_mid_head());
        c.feed_eof();
        assert_eq!(c.next_request().unwrap_err(), Error::Incomplete);
        assert!(c.is_closed());
    }

    #[test]
    fn eof_between_requests_closes_quietly() {
        let mut c = conn_with(b"");
        c.feed_eof();
        assert!(c.next_request().unwrap().is_none());
        assert!(c.is_closed());
    }
}
