//! The request-target (RFC 9112 §3.2): its bytes, its four forms, and where path, query and
//! authority sit inside it.
//!
//! Bytes: visible ASCII only. CTLs, SP and DEL cannot be in a target at all, and raw bytes
//! `>= 0x80` are not in the grammar either (they must be percent-encoded, RFC 3986 §2.1);
//! RFC 9112 §3 says a recipient of an invalid request-line SHOULD answer 400 rather than
//! autocorrect it, "since the invalid request-line might be deliberately crafted to bypass
//! security filters along the request chain". Visible ASCII outside RFC 3986 (`"`, `<`,
//! `{`, `|`, …) is accepted, as every major server does: clients send it unencoded and it
//! cannot change how the target splits.
use crate::authority::{absolute_authority, is_authority_form, AuthorityError};
use crate::request::Span;
use crate::Error;

/// Where the parts of a valid target are, as spans of the head buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TargetParts {
    pub(crate) path: Span,
    pub(crate) query: Span,
    /// `host[:port]` of an absolute-form target (userinfo dropped); empty otherwise.
    pub(crate) authority: Span,
}

/// Validates the target's bytes and form for `method`; `base` is the target's offset in the
/// head buffer.
pub(crate) fn parse_target(method: &[u8], t: &[u8], base: usize) -> Result<TargetParts, Error> {
    if !t.iter().all(|&b| b > 0x20 && b < 0x7f) {
        return Err(Error::BadTarget);
    }
    if method == b"CONNECT" {
        return if is_authority_form(t) {
            Ok(TargetParts {
                path: Span::new(base, t.len()),
                ..TargetParts::default()
            })
        } else {
            Err(Error::BadTarget)
        };
    }
    if t[0] == b'/' {
        return checked_escapes(t, split_path_query(t, 0, base), base);
    }
    if t == b"*" {
        return if method == b"OPTIONS" {
            Ok(TargetParts {
                path: Span::new(base, 1),
                ..TargetParts::default()
            })
        } else {
            Err(Error::BadTarget)
        };
    }
    let scheme_len = if starts_with_ci(t, b"http://") {
        7
    } else if starts_with_ci(t, b"https://") {
        8
    } else {
        return Err(Error::BadTarget);
    };
    let authority_len = t[scheme_len..]
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(t.len() - scheme_len);
    let authority = &t[scheme_len..scheme_len + authority_len];
    // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid; RFC 9112 §3.2.2: the
    // authority of an absolute-form target wins over Host, so it must be a valid one.
    let host_port = absolute_authority(authority).map_err(|e| match e {
        AuthorityError::Empty | AuthorityError::Invalid => Error::BadTarget,
    })?;
    let host_start = scheme_len + authority_len - host_port.len();
    let mut parts = split_path_query(t, scheme_len + authority_len, base);
    parts.authority = Span::new(base + host_start, host_port.len());
    checked_escapes(t, parts, base)
}

/// `parts` if every `%` in the path starts a `%XX` escape (RFC 3986 §2.1): a path with a
/// broken one (`/a%zz`, `/a%2`) cannot be decoded as the client meant, so the request is
/// invalid (`400`, as nginx answers) rather than decoded one way here and another way by
/// a proxy or filter in front. The query is the application's to parse, as sent.
fn checked_escapes(t: &[u8], parts: TargetParts, base: usize) -> Result<TargetParts, Error> {
    let start = parts.path.start as usize - base;
    let path = &t[start..start + parts.path.len as usize];
    let mut rest = path;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        match rest.get(at + 1..at + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                rest = &rest[at + 3..];
            }
            _ => return Err(Error::BadTarget),
        }
    }
    Ok(parts)
}

fn split_path_query(t: &[u8], from: usize, base: usize) -> TargetParts {
    let path_len = t[from..]
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(t.len() - from);
    let path = Span::new(base + from, path_len);
    let after = from + path_len;
    if t.get(after) != Some(&b'?') {
        return TargetParts {
            path,
            ..TargetParts::default()
        };
    }
    let q = after + 1;
    let q_len = t[q..]
        .iter()
        .position(|&b| b == b'#')
        .unwrap_or(t.len() - q);
    TargetParts {
        path,
        query: Span::new(base + q, q_len),
        authority: Span::default(),
    }
}

fn starts_with_ci(t: &[u8], prefix: &[u8]) -> bool {
    t.len() >= prefix.len() && t[..prefix.len()].eq_ignore_ascii_case(prefix)
}
