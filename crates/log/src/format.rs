//! gunicorn's `access_log_format`, compiled once into segments.
use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;

use crate::access::AccessEntry;
use crate::escape::{push_ip, push_text, push_u64};
use crate::time;

/// gunicorn's default `access_log_format`.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// A format string that Python's `%` operator would reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// `%(` without its matching `)`; `at` is the byte offset of the `%`.
    UnterminatedKey { at: usize },
    /// `%(name)` not followed by a conversion character such as `s`.
    MissingConversion { at: usize },
    /// `%` followed by neither `(` nor `%`.
    LonePercent { at: usize },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::UnterminatedKey { at } => {
                write!(f, "access log format: `%(` at byte {at} has no closing `)`")
            }
            FormatError::MissingConversion { at } => write!(
                f,
                "access log format: `%(...)` at byte {at} must be followed by a conversion such as `s`"
            ),
            FormatError::LonePercent { at } => write!(
                f,
                "access log format: `%` at byte {at} must start `%(name)s` or be doubled (`%%`)"
            ),
        }
    }
}

impl std::error::Error for FormatError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// `h`
    RemoteAddr,
    /// `u`
    User,
    /// `t`
    Time,
    /// `r`
    RequestLine,
    /// `m`
    Method,
    /// `U`
    Path,
    /// `q`
    Query,
    /// `H`
    Protocol,
    /// `s`
    Status,
    /// `B`
    Bytes,
    /// `b`
    BytesOrDash,
    /// `f`
    Referer,
    /// `a`
    UserAgent,
    /// `T`
    Seconds,
    /// `D`
    Micros,
    /// `M`
    Millis,
    /// `L`
    DecimalSeconds,
    /// `p`
    Pid,
    /// `{name}i`
    RequestHeader(Box<str>),
    /// `{name}o`
    ResponseHeader(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<[u8]>),
    Atom(Atom),
}

/// A parsed `access_log_format`: literal text and atoms, rendered without re-parsing.
///
/// The language is gunicorn's (Python `%`-formatting against a dict of atoms):
///
/// | atom | value |
/// |---|---|
/// | `h` | remote address (IP only; `-` for Unix sockets) |
/// | `l` | `-` |
/// | `u` | user name from `Authorization: Basic`, else `-` |
/// | `t` | `[10/Oct/2000:13:55:36 +0000]`: when the request started, in UTC |
/// | `r` | request line, `GET /path?q HTTP/1.1` (the target as sent) |
/// | `m` `U` `q` `H` | method, path without query, query string, protocol |
/// | `s` | status |
/// | `B` / `b` | response body length / the same but `-` for 0 |
/// | `f` `a` | `Referer`, `User-Agent` (`-` when missing) |
/// | `T` `D` `M` `L` | request time in whole seconds, microseconds, milliseconds, decimal seconds (`0.001234`) |
/// | `p` | `<PID>` (gunicorn's spelling, angle brackets included) |
/// | `{name}i` / `{name}o` | request / response header, name case-insensitive, `-` when missing |
/// | `{name}e` | environment variable, read once when the format is compiled, `-` when unset |
///
/// Unknown atoms render as `-`, as in gunicorn. `%%` is a literal `%`. Python's flags,
/// width and precision (`%(s)5s`) are accepted and ignored. Every atom value is escaped
/// nginx-style (`\xHH` for bytes below 0x20, `"`, `\` and 0x7f and above), so a client
/// cannot forge log lines; literal text from the format is copied as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFormat {
    segments: Vec<Segment>,
}

impl CompiledFormat {
    /// Parses a format string.
    pub fn parse(fmt: &str) -> Result<CompiledFormat, FormatError> {
        let b = fmt.as_bytes();
        let mut segments = Vec::new();
        let mut lit: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let at = i;
            match b.get(i + 1) {
                Some(b'%') => {
                    lit.push(b'%');
                    i += 2;
                }
                Some(b'(') => {
                    // Python allows nested parentheses in the key.
                    let mut depth = 1;
                    let mut j = i + 2;
                    while j < b.len() && depth > 0 {
                        match b[j] {
                            b'(' => depth += 1,
                            b')' => depth -= 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    if depth > 0 {
                        return Err(FormatError::UnterminatedKey { at });
                    }
                    let key = &fmt[i + 2..j - 1];
                    while j < b.len() && b"#0- +".contains(&b[j]) {
                        j += 1;
                    }
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'.') {
                        j += 1;
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                    }
                    if j < b.len() && b"hlL".contains(&b[j]) {
                        j += 1;
                    }
                    match b.get(j) {
                        Some(c) if b"diouxXeEfFgGcrsa".contains(c) => {}
                        _ => return Err(FormatError::MissingConversion { at }),
                    }
                    i = j + 1;
                    match atom(key) {
                        Ok(a) => {
                            if !lit.is_empty() {
                                segments.push(Segment::Literal(std::mem::take(&mut lit).into()));
                            }
                            segments.push(Segment::Atom(a));
                        }
                        // Constant atoms (`l`, `{var}e`, unknown) join the literal text.
                        Err(constant) => lit.extend_from_slice(&constant),
                    }
                }
                _ => return Err(FormatError::LonePercent { at }),
            }
        }
        if !lit.is_empty() {
            segments.push(Segment::Literal(lit.into()));
        }
        Ok(CompiledFormat { segments })
    }

    /// Appends one rendered line (without the newline) to `out`.
    pub(crate) fn render(&self, e: &AccessEntry<'_>, pid: u32, out: &mut Vec<u8>) {
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => out.extend_from_slice(l),
                Segment::Atom(a) => render_atom(a, e, pid, out),
            }
        }
    }
}

/// The atom for `key`, or `Err(text)` for a value fixed at compile time.
fn atom(key: &str) -> Result<Atom, Vec<u8>> {
    Ok(match key {
        "h" => Atom::RemoteAddr,
        "l" => return Err(b"-".to_vec()),
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "s" => Atom::Status,
        "B" => Atom::Bytes,
        "b" => Atom::BytesOrDash,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "D" => Atom::Micros,
        "M" => Atom::Millis,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        _ => {
            // gunicorn lower-cases `{...}x` keys, so the suffix is case-insensitive too.
            let lower = key.to_ascii_lowercase();
            let name = |suffix: &str| {
                (key.len() >= 3 && key.starts_with('{') && lower.ends_with(suffix))
                    .then(|| &key[1..key.len() - 2])
            };
            if let Some(n) = name("}i") {
                Atom::RequestHeader(n.into())
            } else if let Some(n) = name("}o") {
                Atom::ResponseHeader(n.into())
            } else if let Some(n) = name("}e") {
                return Err(env_value(n));
            } else {
                return Err(b"-".to_vec());
            }
        }
    })
}

/// gunicorn matches `{var}e` against lower-cased variable names: try the exact name first,
/// then any case.
fn env_value(name: &str) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let value = std::env::var_os(name).or_else(|| {
        std::env::vars_os()
            .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    });
    match value {
        Some(v) => {
            let mut out = Vec::new();
            push_text(&mut out, v.as_bytes());
            out
        }
        None => b"-".to_vec(),
    }
}

fn push_or_dash(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => push_text(out, v),
        None => out.push(b'-'),
    }
}

fn render_atom(a: &Atom, e: &AccessEntry<'_>, pid: u32, out: &mut Vec<u8>) {
    match a {
        Atom::RemoteAddr => match e.remote {
            Some(addr) => push_ip(out, addr.ip()),
            None => out.push(b'-'),
        },
        Atom::User => {
            let mut buf = [0u8; 192];
            push_or_dash(out, basic_user(e, &mut buf).as_deref());
        }
        Atom::Time => {
            let (secs, _) = time::split(e.started);
            out.push(b'[');
            out.extend_from_slice(&time::stamp(secs).clf);
            out.push(b']');
        }
        Atom::RequestLine => {
            push_text(out, e.method.as_bytes());
            out.push(b' ');
            push_text(out, e.target.as_bytes());
            out.push(b' ');
            push_text(out, e.version.as_bytes());
        }
        Atom::Method => push_text(out, e.method.as_bytes()),
        Atom::Path => push_text(out, e.path.as_bytes()),
        Atom::Query => push_text(out, e.query.as_bytes()),
        Atom::Protocol => push_text(out, e.version.as_bytes()),
        Atom::Status => push_u64(out, u64::from(e.status)),
        Atom::Bytes => push_u64(out, e.bytes),
        Atom::BytesOrDash if e.bytes == 0 => out.push(b'-'),
        Atom::BytesOrDash => push_u64(out, e.bytes),
        Atom::Referer => push_or_dash(out, (e.request_headers)("referer")),
        Atom::UserAgent => push_or_dash(out, (e.request_headers)("user-agent")),
        Atom::Seconds => push_u64(out, e.duration.as_secs()),
        Atom::Micros => push_u64(out, e.duration.as_micros() as u64),
        Atom::Millis => push_u64(out, e.duration.as_millis() as u64),
        Atom::DecimalSeconds => {
            push_u64(out, e.duration.as_secs());
            out.push(b'.');
            let micros = e.duration.subsec_micros();
            let start = out.len();
            push_u64(out, u64::from(micros) + 1_000_000);
            out.remove(start); // the leading `1` that zero-pads to six digits
        }
        Atom::Pid => {
            out.push(b'<');
            push_u64(out, u64::from(pid));
            out.push(b'>');
        }
        Atom::RequestHeader(name) => push_or_dash(out, (e.request_headers)(name)),
        Atom::ResponseHeader(name) => push_or_dash(
            out,
            e.response_headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_slice()),
        ),
    }
}

/// The user name of `Authorization: Basic` (as gunicorn's `_get_user`), undecoded bytes;
/// decoded into `buf` when it fits (no allocation for ordinary credentials).
fn basic_user<'b>(e: &AccessEntry<'_>, buf: &'b mut [u8]) -> Option<Cow<'b, [u8]>> {
    let auth = (e.request_headers)("authorization")?;
    let auth = auth.trim_ascii();
    if auth.len() < 6 || !auth[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = auth[6..].trim_ascii();
    let engine = &base64::engine::general_purpose::STANDARD;
    let decoded: Cow<'b, [u8]> = if base64::decoded_len_estimate(encoded.len()) <= buf.len() {
        let n = engine.decode_slice(encoded, buf).ok()?;
        Cow::Borrowed(&buf[..n])
    } else {
        Cow::Owned(engine.decode(encoded).ok()?)
    };
    let end = decoded
        .iter()
        .position(|&b| b == b':')
        .unwrap_or(decoded.len());
    Some(match decoded {
        Cow::Borrowed(d) => Cow::Borrowed(&d[..end]),
        Cow::Owned(mut d) => {
            d.truncate(end);
            Cow::Owned(d)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_format_compiles_to_alternating_literals_and_atoms() {
        let f = CompiledFormat::parse(DEFAULT_FORMAT).unwrap();
        // `%(l)s` is constant, so `h`, ` - `, `u` ... : 8 atoms, 8 literals between/after.
        let atoms = f
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Atom(_)))
            .count();
        assert_eq!(atoms, 8);
        assert_eq!(f.segments[1], Segment::Literal(b" - ".to_vec().into()));
    }

    #[test]
    fn an_unterminated_key_is_an_error_with_its_position() {
        assert_eq!(
            CompiledFormat::parse("ok %(h"),
            Err(FormatError::UnterminatedKey { at: 3 })
        );
    }

    #[test]
    fn a_key_without_conversion_and_a_lone_percent_are_errors() {
        assert_eq!(
            CompiledFormat::parse("%(h)"),
            Err(FormatError::MissingConversion { at: 0 })
        );
        assert_eq!(
            CompiledFormat::parse("%(h)z"),
            Err(FormatError::MissingConversion { at: 0 })
        );
        assert_eq!(
            CompiledFormat::parse("100% sure"),
            Err(FormatError::LonePercent { at: 3 })
        );
        assert_eq!(
            CompiledFormat::parse("50%"),
            Err(FormatError::LonePercent { at: 2 })
        );
        assert!(FormatError::LonePercent { at: 2 }
            .to_string()
            .contains("byte 2"));
    }

    #[test]
    fn doubled_percent_flags_width_and_nested_parentheses_are_accepted() {
        let f = CompiledFormat::parse("%% %(s)-5d %((x))s").unwrap();
        assert_eq!(f.segments[0], Segment::Literal(b"% ".to_vec().into()));
        assert_eq!(f.segments[1], Segment::Atom(Atom::Status));
        // `(x)` is an unknown atom: `-`, merged into the literal.
        assert_eq!(f.segments[2], Segment::Literal(b" -".to_vec().into()));
    }

    #[test]
    fn header_atom_suffixes_are_case_insensitive_and_keep_the_name() {
        assert_eq!(
            atom("{X-Request-Id}I"),
            Ok(Atom::RequestHeader("X-Request-Id".into()))
        );
        assert_eq!(atom("{etag}o"), Ok(Atom::ResponseHeader("etag".into())));
        assert_eq!(atom("{}x"), Err(b"-".to_vec()));
        assert_eq!(atom("i"), Err(b"-".to_vec()));
    }

    #[test]
    fn environment_atoms_are_read_at_compile_time_case_insensitively() {
        // PATH is set in any test environment; gunicorn users write it lower-case.
        let path = std::env::var_os("PATH").unwrap();
        let mut want = Vec::new();
        push_text(
            &mut want,
            std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()),
        );
        assert_eq!(atom("{path}e"), Err(want));
        assert_eq!(
            atom("{IRONHORSE_LOG_SURELY_UNSET_VARIABLE}e"),
            Err(b"-".to_vec())
        );
    }
}
