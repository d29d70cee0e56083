//! Escaping of request-derived values, so that a client cannot forge log lines.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Bytes [`push_text`] writes as `\xHH`.
const NEEDS_HEX: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize || b >= 0x7f;
        b += 1;
    }
    t
};

/// nginx's access-log escaping: bytes below 0x20, `"`, `\` and 0x7f and above become `\xHH`;
/// everything else is copied.
pub(crate) fn push_text(out: &mut Vec<u8>, s: &[u8]) {
    if !s.iter().any(|&b| NEEDS_HEX[b as usize]) {
        // The common case: one copy.
        out.extend_from_slice(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if NEEDS_HEX[b as usize] {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// The error log's escaping: like [`push_text`] for control bytes (except tab) and DEL, but
/// UTF-8 and quotes are kept, and a newline starts a continuation line indented by two spaces
/// (multi-line messages such as Python tracebacks stay readable, and no line of a message can
/// pass for a new `[date] [pid] [LEVEL]` record).
pub(crate) fn push_message(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b == b'\n' {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(b"\n  ");
            start = i + 1;
        } else if (b < 0x20 && b != b'\t') || b == 0x7f {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// A JSON string literal (with its quotes). Invalid UTF-8 becomes U+FFFD first; then `"`, `\`,
/// control characters, DEL and U+2028/U+2029 (line breaks to JavaScript) are escaped.
pub(crate) fn push_json(out: &mut Vec<u8>, s: &[u8]) {
    let s = String::from_utf8_lossy(s);
    let s = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        let short: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            _ => None,
        };
        let line_sep =
            b == 0xE2 && s.get(i + 1) == Some(&0x80) && matches!(s.get(i + 2), Some(0xA8 | 0xA9));
        if short.is_some() || b < 0x20 || b == 0x7f || line_sep {
            out.extend_from_slice(&s[start..i]);
            let width = if line_sep { 3 } else { 1 };
            match short {
                Some(esc) => out.extend_from_slice(esc),
                None => {
                    let cp = if line_sep {
                        0x2028 + u32::from(s[i + 2] - 0xA8)
                    } else {
                        u32::from(b)
                    };
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[((cp >> shift) & 15) as usize].to_ascii_lowercase());
                    }
                }
            }
            i += width;
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Appends an IP address (IPv4 by hand: `fmt` costs more than the rest of a line).
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends a decimal number.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &[u8]) -> String {
        let mut v = Vec::new();
        push_text(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    fn json(s: &[u8]) -> String {
        let mut v = Vec::new();
        push_json(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn text_escaping_hexes_control_bytes_quotes_backslashes_and_high_bytes() {
        assert_eq!(text(b"plain /a?b=c"), "plain /a?b=c");
        assert_eq!(
            text(b"a\"b\\c\nd\x7f\xff\x00"),
            "a\\x22b\\x5Cc\\x0Ad\\x7F\\xFF\\x00"
        );
        assert_eq!(text("é".as_bytes()), "\\xC3\\xA9");
    }

    #[test]
    fn message_escaping_indents_continuation_lines_and_hexes_other_controls() {
        let mut v = Vec::new();
        push_message(&mut v, "a\nb\tc\r\x1b[31mé\"".as_bytes());
        assert_eq!(String::from_utf8(v).unwrap(), "a\n  b\tc\\x0D\\x1B[31mé\"");
    }

    #[test]
    fn json_escaping_round_trips_through_serde_json() {
        let hostile: &[u8] = b"q\"u\\o\nt\r\te\x01\x1f\x7f \xff\xfe end \xe2\x80\xa8\xe2\x80\xa9";
        let s = json(hostile);
        assert!(!s.contains('\n') && !s.contains('\u{2028}'), "{s}");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, String::from_utf8_lossy(hostile));
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(String::from_utf8(v).unwrap(), n.to_string());
        }
    }
}
