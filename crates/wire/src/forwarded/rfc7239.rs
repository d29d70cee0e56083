//! The `Forwarded` header (RFC 7239 §4):
//!
//! ```text
//! Forwarded         = 1#forwarded-element
//! forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//! forwarded-pair    = token "=" value
//! value             = token / quoted-string
//! ```
//!
//! Only `for`, `proto` and `host` matter here; `by` and extensions are read and ignored.

use super::hops::Hop;

/// One `forwarded-element`: what one proxy saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// `for=`: who sent that proxy the request (`None` when the element has no `for`).
    pub for_: Option<Hop>,
    /// `proto=`, as written.
    pub proto: Option<String>,
    /// `host=`, as written (unchecked).
    pub host: Option<String>,
}

/// Why a `Forwarded` value cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("a parameter name is not a token")]
    BadName,
    #[error("a parameter has no '='")]
    MissingEquals,
    #[error("a value is neither a token nor a quoted string")]
    BadValue,
    #[error("a quoted string is not closed")]
    UnclosedQuote,
    #[error("a parameter occurs twice in one element")]
    Repeated,
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses a whole `Forwarded` value (repeated headers joined with `,`), elements leftmost
/// first. Empty list items are skipped (RFC 9110 §5.6.1).
pub fn parse(value: &[u8]) -> Result<Vec<Element>, SyntaxError> {
    let mut elements = vec![Element::default()];
    // Whether each element had any pair: empty list items are dropped at the end.
    let mut filled = vec![false];
    let mut seen = [false; 3];
    let mut i = 0;
    loop {
        while i < value.len() && is_ows(value[i]) {
            i += 1;
        }
        match value.get(i) {
            None => break,
            Some(b',') => {
                elements.push(Element::default());
                filled.push(false);
                seen = [false; 3];
                i += 1;
                continue;
            }
            Some(b';') => {
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let start = i;
        while i < value.len() && is_tchar(value[i]) {
            i += 1;
        }
        if i == start {
            return Err(SyntaxError::BadName);
        }
        let name = &value[start..i];
        if value.get(i) != Some(&b'=') {
            return Err(SyntaxError::MissingEquals);
        }
        i += 1;
        let (text, next) = read_value(value, i)?;
        i = next;
        while i < value.len() && is_ows(value[i]) {
            i += 1;
        }
        if i < value.len() && value[i] != b';' && value[i] != b',' {
            return Err(SyntaxError::BadValue);
        }
        let element = elements.last_mut().expect("never empty");
        *filled.last_mut().expect("never empty") = true;
        let slot = ["for", "proto", "host"]
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n.as_bytes()));
        if let Some(slot) = slot {
            if std::mem::replace(&mut seen[slot], true) {
                return Err(SyntaxError::Repeated);
            }
            match slot {
                0 => element.for_ = Some(Hop::parse(&text)),
                1 => element.proto = Some(text),
                _ => element.host = Some(text),
            }
        }
    }
    Ok(elements
        .into_iter()
        .zip(filled)
        .filter_map(|(e, filled)| filled.then_some(e))
        .collect())
}

/// Reads a token or a quoted string starting at `i`; returns it and the index after it.
fn read_value(value: &[u8], mut i: usize) -> Result<(String, usize), SyntaxError> {
    if value.get(i) != Some(&b'"') {
        let start = i;
        while i < value.len() && is_tchar(value[i]) {
            i += 1;
        }
        if i == start {
            return Err(SyntaxError::BadValue);
        }
        return Ok((latin1(&value[start..i]), i));
    }
    i += 1;
    let mut out = Vec::new();
    loop {
        match value.get(i) {
            None => return Err(SyntaxError::UnclosedQuote),
            Some(b'"') => return Ok((latin1(&out), i + 1)),
            Some(b'\\') => match value.get(i + 1) {
                Some(&c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                    out.push(c);
                    i += 2;
                }
                _ => return Err(SyntaxError::BadValue),
            },
            Some(&c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                out.push(c);
                i += 1;
            }
            Some(_) => return Err(SyntaxError::BadValue),
        }
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(s: &str) -> Option<Hop> {
        Some(Hop::parse(s))
    }

    #[test]
    fn the_rfc_examples() {
        let e = parse(br#"for="_gazonk""#).unwrap();
        assert_eq!(e[0].for_, Some(Hop::Opaque));
        let e = parse(br#"For="[2001:db8:cafe::17]:4711""#).unwrap();
        assert_eq!(e[0].for_, hop("[2001:db8:cafe::17]:4711"));
        let e = parse(b"for=192.0.2.60;proto=http;by=203.0.113.43").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].for_, hop("192.0.2.60"));
        assert_eq!(e[0].proto.as_deref(), Some("http"));
        let e = parse(b"for=192.0.2.43, for=198.51.100.17").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].for_, hop("198.51.100.17"));
    }

    #[test]
    fn quoting_escapes_and_case() {
        let e = parse(br#"HOST="ex\"ample.com";PROTO="https" ; for = x"#);
        // OWS around '=' is not allowed by the grammar.
        assert!(e.is_err());
        let e = parse(br#"HOST="ex\ample.com";PROTO="https" ;for=unknown"#).unwrap();
        assert_eq!(e[0].host.as_deref(), Some("example.com"));
        assert_eq!(e[0].proto.as_deref(), Some("https"));
        assert_eq!(e[0].for_, Some(Hop::Opaque));
        let e = parse(br#"for="1.2.3.4,5.6.7.8";host="a;b""#).unwrap();
        assert_eq!(e.len(), 1, "separators inside quotes do not split");
        assert_eq!(e[0].for_, Some(Hop::Opaque));
        assert_eq!(e[0].host.as_deref(), Some("a;b"));
    }

    #[test]
    fn empty_items_are_skipped() {
        let e = parse(b" , for=1.2.3.4;;, ,by=10.0.0.1").unwrap();
        assert_eq!(e.len(), 2, "an element without for= still counts as a hop");
        assert_eq!(e[1].for_, None);
        assert_eq!(parse(b"").unwrap(), vec![]);
    }

    #[test]
    fn malformed_values_are_errors() {
        for (bad, err) in [
            (&b"for"[..], SyntaxError::MissingEquals),
            (b"for=", SyntaxError::BadValue),
            (b"=1.2.3.4", SyntaxError::BadName),
            (b"for=\"1.2.3.4", SyntaxError::UnclosedQuote),
            (b"for=1.2.3.4 x", SyntaxError::BadValue),
            (b"for=[::1]", SyntaxError::BadValue),
            (b"for=1.2.3.4;for=5.6.7.8", SyntaxError::Repeated),
            (b"for=\"a\x01\"", SyntaxError::BadValue),
            (b"for=\"a\\", SyntaxError::BadValue),
            (b"for=a\"b\"", SyntaxError::BadValue),
        ] {
            assert_eq!(parse(bad), Err(err), "{:?}", String::from_utf8_lossy(bad));
        }
        // The same parameter in two elements is fine.
        assert!(parse(b"for=1.2.3.4,for=5.6.7.8").is_ok());
    }
}
