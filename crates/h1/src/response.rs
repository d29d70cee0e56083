//! Response serialisation: status line, fixed headers, framing headers, chunk framing.
use std::borrow::Cow;

/// Response header fields: names usually static, values raw bytes.
///
/// Two entries are instructions to the engine rather than fields, and never go out as such:
/// - [`REASON_FIELD`] (`:reason`), the reason phrase to send instead of the standard one
///   (used when it is valid, see [`is_valid_reason`]). A name starting with `:` can never be
///   a real field name (not a token), as with HTTP/2's pseudo-fields, so it cannot clash;
/// - `Connection` with a `close` token: the engine closes the connection after this
///   response (and writes its own `Connection: close`).
pub type HeaderList = Vec<(Cow<'static, str>, Vec<u8>)>;

/// The pseudo-field carrying a service's own reason phrase (see [`HeaderList`]).
pub const REASON_FIELD: &str = ":reason";

/// Whether `reason` may be sent as a reason phrase: visible ASCII, spaces and tabs only
/// (RFC 9112 §4 also allows obs-text; ironhorse never generates it).
pub fn is_valid_reason(reason: &[u8]) -> bool {
    reason
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The service's valid, non-empty reason phrase from `headers`, if any.
pub(crate) fn custom_reason(headers: &HeaderList) -> Option<&[u8]> {
    headers
        .iter()
        .find(|(name, _)| name == REASON_FIELD)
        .map(|(_, value)| value.as_slice())
        .filter(|r| !r.is_empty() && is_valid_reason(r))
}

/// Whether the service asked for the connection to close (`Connection: close`).
pub(crate) fn asks_to_close(headers: &HeaderList) -> bool {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(|&b| b == b','))
        .any(|token| crate::head::trim_ows(token).eq_ignore_ascii_case(b"close"))
}

/// The reason phrase for a status (`200` → `OK`); `""` if unknown.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Statuses that never carry content (RFC 9110 §6.4.1): 1xx, 204, 304.
pub(crate) fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Header names the engine owns; an application's copies are skipped.
pub(crate) fn is_engine_header(name: &str) -> bool {
    const OWNED: [&str; 6] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
        "keep-alive",
    ];
    name.starts_with(':') || OWNED.iter().any(|o| o.eq_ignore_ascii_case(name))
}

/// Appends `n` in decimal without going through `fmt`.
pub(crate) fn put_dec(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends `n` in lower-case hex (chunk sizes).
pub(crate) fn put_hex(out: &mut Vec<u8>, mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends `HTTP/1.1 <code> <reason>\r\nServer: ironhorse\r\nDate: <date>\r\n`; the
/// standard reason unless `reason` is given.
pub(crate) fn put_status_and_fixed(out: &mut Vec<u8>, status: u16, reason: Option<&[u8]>) {
    if (100..1000).contains(&status) {
        // Every status a service can give has three digits: one append for the lot.
        let digit = |n: u16| b'0' + (n % 10) as u8;
        out.extend_from_slice(&[
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            b'1',
            b' ',
            digit(status / 100),
            digit(status / 10),
            digit(status),
            b' ',
        ]);
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        put_dec(out, u64::from(status));
        out.push(b' ');
    }
    out.extend_from_slice(reason.unwrap_or(reason_phrase(status).as_bytes()));
    out.extend_from_slice(b"\r\nServer: ironhorse\r\nDate: ");
    out.extend_from_slice(&crate::http_date_now());
    out.extend_from_slice(b"\r\n");
}

/// Appends the application's headers, skipping the ones the engine writes itself.
pub(crate) fn put_app_headers(out: &mut Vec<u8>, headers: &HeaderList) {
    for (name, value) in headers {
        if is_engine_header(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends one chunk (`{hex}\r\n{data}\r\n`); nothing for empty data, which would end the body.
pub(crate) fn put_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    put_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_of_200_is_exactly_ok() {
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(799), "");
    }

    #[test]
    fn writes_decimal_and_hex_without_leading_zeros() {
        let mut v = Vec::new();
        put_dec(&mut v, 0);
        v.push(b' ');
        put_dec(&mut v, u64::MAX);
        v.push(b' ');
        put_hex(&mut v, 0x1e);
        v.push(b' ');
        put_hex(&mut v, 0);
        assert_eq!(v, b"0 18446744073709551615 1e 0");
    }

    #[test]
    fn status_lines_of_three_digits_and_others() {
        for (status, line) in [
            (200, "HTTP/1.1 200 OK\r\n"),
            (100, "HTTP/1.1 100 Continue\r\n"),
            (404, "HTTP/1.1 404 Not Found\r\n"),
            (599, "HTTP/1.1 599 \r\n"),
            (999, "HTTP/1.1 999 \r\n"),
            (99, "HTTP/1.1 99 \r\n"),
            (1000, "HTTP/1.1 1000 \r\n"),
        ] {
            let mut v = Vec::new();
            put_status_and_fixed(&mut v, status, None);
            assert!(v.starts_with(line.as_bytes()), "{status}: {v:?}");
        }
    }

    #[test]
    fn empty_chunk_writes_nothing() {
        let mut v = Vec::new();
        put_chunk(&mut v, b"");
        assert!(v.is_empty());
        put_chunk(&mut v, b"hello");
        assert_eq!(v, b"5\r\nhello\r\n");
    }

    #[test]
    fn skips_engine_owned_app_headers_case_insensitively() {
        let h: HeaderList = vec![
            ("content-LENGTH".into(), b"1".to_vec()),
            ("X-A".into(), b"b".to_vec()),
            ("Keep-Alive".into(), b"x".to_vec()),
            ("SERVER".into(), b"x".to_vec()),
            (REASON_FIELD.into(), b"Fine".to_vec()),
        ];
        let mut v = Vec::new();
        put_app_headers(&mut v, &h);
        assert_eq!(v, b"X-A: b\r\n");
    }

    #[test]
    fn takes_a_valid_custom_reason_only() {
        let with = |r: &[u8]| -> HeaderList { vec![(REASON_FIELD.into(), r.to_vec())] };
        assert_eq!(
            custom_reason(&with(b"Custom Reason")),
            Some(&b"Custom Reason"[..])
        );
        assert_eq!(custom_reason(&with(b"")), None);
        for bad in [
            &b"a\r\nX: y"[..],
            b"a\nb",
            b"caf\xc3\xa9",
            b"a\x7fb",
            b"a\x00",
        ] {
            assert_eq!(custom_reason(&with(bad)), None, "{bad:?}");
        }
        assert_eq!(custom_reason(&Vec::new()), None);
    }

    #[test]
    fn sees_close_among_connection_tokens() {
        let h = |v: &[u8]| -> HeaderList { vec![("connection".into(), v.to_vec())] };
        assert!(asks_to_close(&h(b"close")));
        assert!(asks_to_close(&h(b"foo, Close ")));
        assert!(!asks_to_close(&h(b"keep-alive")));
        assert!(!asks_to_close(&Vec::new()));
    }
}
