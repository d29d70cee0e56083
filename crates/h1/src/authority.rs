//! Host and authority syntax (RFC 9110 §4.2, §7.2; RFC 3986 §3.2).
//!
//! `Host = uri-host [ ":" port ]`, where `uri-host` is an IP literal (`[v6]`), an IPv4
//! address or a reg-name. A value that is not that — userinfo (`user@host`), a path
//! (`host/x`), spaces, a list (`a, b`) — is answered 400 (RFC 9112 §3.2: "a Host header field
//! with an invalid field value"). Two deliberate strictnesses beyond the bare grammar, both
//! because a peer parsing differently is how host confusion and cache poisoning start:
//! - a comma is refused even though reg-name allows it: it is what two `Host` lines merged
//!   into one look like (RFC 9110 §5.3), and no DNS name contains one;
//! - a port must be at most 65535 (RFC 3986 leaves `port = *DIGIT` unbounded).

/// Why a host or authority is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthorityError {
    /// Empty host (RFC 9110 §4.2.1: an `http` URI with an empty host is invalid).
    Empty,
    /// Not `uri-host [ ":" port ]`.
    Invalid,
}

/// RFC 3986 `unreserved`.
const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `unreserved / sub-delims` (no `,`, see the module comment).
const fn is_reg_name_byte(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b)
}

/// [`is_reg_name_byte`] by table: every request's `Host` is checked byte by byte.
static REG_NAME_BYTE: [bool; 256] = byte_table!(is_reg_name_byte);

/// RFC 3986 `sub-delims`, without `,` (see the module comment).
const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b';' | b'='
    )
}

/// Whether `s` is made of `allowed` bytes and well-formed `%HH` escapes.
fn all_pct_or(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if allowed(s[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `IP-literal = "[" ( IPv6address / IPvFuture ) "]"`, brackets included.
fn is_ip_literal(h: &[u8]) -> bool {
    let Some(inner) = h.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) else {
        return false;
    };
    if let [b'v' | b'V', rest @ ..] = inner {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b',');
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `uri-host`: IP literal, IPv4 address or reg-name (IPv4 is a special case of reg-name).
fn is_uri_host(h: &[u8]) -> bool {
    if h.first() == Some(&b'[') {
        return is_ip_literal(h);
    }
    all_pct_or(h, |b| REG_NAME_BYTE[usize::from(b)])
}

/// `*DIGIT`, at most 65535 (an empty port means the scheme's default).
fn is_port(p: &[u8]) -> bool {
    p.is_empty()
        || (p.len() <= 5
            && p.iter().all(u8::is_ascii_digit)
            && p.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= u32::from(u16::MAX))
}

/// Splits `host[:port]`; the port colon is the last one outside an IP literal.
fn split_port(v: &[u8]) -> (&[u8], Option<&[u8]>) {
    let search_from = if v.first() == Some(&b'[') {
        v.iter().position(|&b| b == b']').map_or(v.len(), |i| i + 1)
    } else {
        0
    };
    match v[search_from..].iter().rposition(|&b| b == b':') {
        Some(i) => (&v[..search_from + i], Some(&v[search_from + i + 1..])),
        None => (v, None),
    }
}

/// Validates a `Host` field value (already trimmed of whitespace).
pub(crate) fn check_host(v: &[u8]) -> Result<(), AuthorityError> {
    if plain_host_and_port(v) {
        return Ok(());
    }
    check_host_fully(v)
}

/// The usual `Host` (`name-or-ipv4[:digits]`, no escapes, no IP literal) in one pass: `true`
/// only for values [`check_host_fully`] accepts; `false` means "ask it".
fn plain_host_and_port(v: &[u8]) -> bool {
    let name = v
        .iter()
        .take_while(|&&b| REG_NAME_BYTE[usize::from(b)])
        .count();
    match v.get(name) {
        None => name > 0,
        Some(b':') if name > 0 => is_port(&v[name + 1..]),
        Some(_) => false,
    }
}

/// [`check_host`] for every form.
fn check_host_fully(v: &[u8]) -> Result<(), AuthorityError> {
    let (host, port) = split_port(v);
    if host.is_empty() {
        // `Host:` alone, or `:80`.
        return Err(if port.is_none() {
            AuthorityError::Empty
        } else {
            AuthorityError::Invalid
        });
    }
    let port_ok = match port {
        None => true,
        Some(p) => is_port(p),
    };
    if is_uri_host(host) && port_ok {
        Ok(())
    } else {
        Err(AuthorityError::Invalid)
    }
}

/// Validates an absolute-form target's authority (`[ userinfo "@" ] host [ ":" port ]`)
/// and returns its `host[:port]` part, the userinfo dropped (it never reaches the app).
pub(crate) fn absolute_authority(a: &[u8]) -> Result<&[u8], AuthorityError> {
    let host_port = match a.iter().rposition(|&b| b == b'@') {
        Some(at) => {
            let userinfo = &a[..at];
            if !all_pct_or(userinfo, |b| {
                is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b','
            }) {
                return Err(AuthorityError::Invalid);
            }
            &a[at + 1..]
        }
        None => a,
    };
    check_host(host_port).map(|()| host_port)
}

/// CONNECT's authority-form: `uri-host ":" port`, the port present and non-empty.
pub(crate) fn is_authority_form(t: &[u8]) -> bool {
    let (host, port) = split_port(t);
    matches!(port, Some(p) if !p.is_empty()) && check_host(t).is_ok() && !host.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reg_name_table_is_unreserved_or_sub_delims() {
        for b in 0..=255u8 {
            assert_eq!(
                REG_NAME_BYTE[usize::from(b)],
                is_unreserved(b) || is_sub_delim(b),
                "{b:#x}"
            );
        }
    }

    #[test]
    fn the_one_pass_host_check_accepts_only_what_the_full_one_does() {
        // Every string of up to 5 bytes over an alphabet with each class in it.
        let alphabet = b"a1.-:%[]@,/ 9\xc3";
        let mut values: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = values
                .iter()
                .filter(|v| v.len() == values.last().map_or(0, Vec::len))
                .flat_map(|v| {
                    alphabet.iter().map(move |&b| {
                        let mut w = v.clone();
                        w.push(b);
                        w
                    })
                })
                .collect();
            values.extend(longer);
        }
        values.extend([
            b"h:65535".to_vec(),
            b"h:65536".to_vec(),
            b"h:000080".to_vec(),
        ]);
        for v in &values {
            if plain_host_and_port(v) {
                assert_eq!(check_host_fully(v), Ok(()), "{v:?}");
            }
            assert_eq!(
                check_host(v),
                check_host_fully(v),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        assert!(plain_host_and_port(b"127.0.0.1:8000"));
        assert!(plain_host_and_port(b"example.com"));
    }

    #[test]
    fn ports_are_bounded_digits() {
        for ok in [&b""[..], b"0", b"80", b"00080", b"65535"] {
            assert!(is_port(ok), "{ok:?}");
        }
        for bad in [&b"65536"[..], b"99999", b"000000", b"8a", b"+80", b" 80"] {
            assert!(!is_port(bad), "{bad:?}");
        }
    }

    #[test]
    fn accepts_names_addresses_and_ports() {
        for ok in [
            &b"example.com"[..],
            b"example.com:8080",
            b"example.com:",
            b"127.0.0.1",
            b"0.0.0.0=5000",
            b"[::1]",
            b"[::1]:8080",
            b"[v1.fe80::a+en1]",
            b"xn--caf-dma.example",
            b"caf%C3%A9.example",
            b"localhost:65535",
        ] {
            assert_eq!(check_host(ok), Ok(()), "{:?}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn refuses_userinfo_paths_lists_spaces_and_bad_ports() {
        for bad in [
            &b"user@host"[..],
            b"host/path",
            b"a, b",
            b"a,b",
            b"a b",
            b"host:http",
            b"host:65536",
            b"host:1:2",
            b":80",
            b"[::1",
            b"[nope]",
            b"::1",
            b"h\xc3\xa9",
            b"bad%zz",
            b"host?q",
            b"host#f",
        ] {
            assert_eq!(
                check_host(bad),
                Err(AuthorityError::Invalid),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(check_host(b""), Err(AuthorityError::Empty));
    }

    #[test]
    fn drops_userinfo_from_absolute_authorities() {
        assert_eq!(absolute_authority(b"u:p@h:8"), Ok(&b"h:8"[..]));
        assert_eq!(absolute_authority(b"[::1]:80"), Ok(&b"[::1]:80"[..]));
        assert_eq!(absolute_authority(b"u@"), Err(AuthorityError::Empty));
        assert_eq!(absolute_authority(b"u p@h"), Err(AuthorityError::Invalid));
        assert_eq!(absolute_authority(b"h:x"), Err(AuthorityError::Invalid));
    }

    #[test]
    fn authority_form_needs_a_host_and_a_port() {
        assert!(is_authority_form(b"example.com:443"));
        assert!(is_authority_form(b"[::1]:443"));
        assert!(!is_authority_form(b"example.com"));
        assert!(!is_authority_form(b"example.com:"));
        assert!(!is_authority_form(b":443"));
        assert!(!is_authority_form(b"u@h:443"));
        assert!(!is_authority_form(b"[::1]"));
    }
}
