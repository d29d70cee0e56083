//! The uwsgi packet (<https://uwsgi-docs.readthedocs.io/en/latest/Protocol.html>), as nginx's
//! `uwsgi_pass` sends a request: a 4-byte header (`modifier1`, a little-endian 16-bit
//! `datasize`, `modifier2`), then for `modifier1 = 0` (a WSGI request) a var block of
//! `datasize` bytes: key size (16-bit LE), key, value size (16-bit LE), value, repeated.
//! The request body follows the packet.
//!
//! [`parse`] takes the bytes received so far; a malformed packet is an error, never a panic.
//! [`to_http`] turns a parsed packet back into the HTTP request it stands for.

mod request;

pub use request::{to_http, HttpRequest, RequestError};

use crate::Parsed;

/// The only `modifier1` served: a WSGI/HTTP request with a var block.
pub const MODIFIER1_WSGI: u8 = 0;

/// Bounds on one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest var block, in bytes (the wire allows 65535).
    pub max_block: usize,
    /// Most variables in one block.
    pub max_vars: usize,
}

impl Default for Limits {
    /// What nginx can send: the whole 16-bit block, and more variables than the HTTP side's
    /// 100 headers plus nginx's `uwsgi_params`.
    fn default() -> Self {
        Limits {
            max_block: usize::from(u16::MAX),
            max_vars: 256,
        }
    }
}

/// A parsed request packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub modifier1: u8,
    pub modifier2: u8,
    /// The variables in the order sent (CGI names: `REQUEST_METHOD`, `HTTP_HOST`, ...).
    pub vars: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes the packet took (4 + datasize); the body follows.
    pub consumed: usize,
}

impl Packet {
    /// The first variable named `key`.
    pub fn var(&self, key: &str) -> Option<&[u8]> {
        self.vars
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// Why a packet cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("uwsgi modifier1 {0} is not supported (only 0, a WSGI request)")]
    UnsupportedModifier(u8),
    #[error("uwsgi var block of {size} bytes is over the limit of {limit}")]
    BlockTooLarge { size: usize, limit: usize },
    #[error("uwsgi var block has more than {limit} variables")]
    TooManyVars { limit: usize },
    #[error("uwsgi var block: a size at offset {offset} runs past the end of the block")]
    SizePastEnd { offset: usize },
    #[error("uwsgi var block: an empty name at offset {offset}")]
    EmptyKey { offset: usize },
}

/// Parses the packet at the start of `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Parsed<Packet, Error> {
    let Some(&modifier1) = buf.first() else {
        return Parsed::NeedMore;
    };
    if modifier1 != MODIFIER1_WSGI {
        return Parsed::Error(Error::UnsupportedModifier(modifier1));
    }
    if buf.len() < 4 {
        return Parsed::NeedMore;
    }
    let size = usize::from(u16::from_le_bytes([buf[1], buf[2]]));
    if size > limits.max_block {
        return Parsed::Error(Error::BlockTooLarge {
            size,
            limit: limits.max_block,
        });
    }
    let Some(block) = buf.get(4..4 + size) else {
        return Parsed::NeedMore;
    };
    match vars(block, limits.max_vars) {
        Ok(vars) => Parsed::Done(Packet {
            modifier1,
            modifier2: buf[3],
            vars,
            consumed: 4 + size,
        }),
        Err(e) => Parsed::Error(e),
    }
}

type Vars = Vec<(Vec<u8>, Vec<u8>)>;

fn vars(block: &[u8], max_vars: usize) -> Result<Vars, Error> {
    let mut out = Vec::new();
    let mut at = 0;
    // One length-prefixed string at `at`; offsets are reported within the block.
    let read = |at: &mut usize| -> Result<Vec<u8>, Error> {
        let offset = *at;
        let len = block
            .get(offset..offset + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or(Error::SizePastEnd { offset })?;
        let bytes = block
            .get(offset + 2..offset + 2 + len)
            .ok_or(Error::SizePastEnd { offset })?;
        *at = offset + 2 + len;
        Ok(bytes.to_vec())
    };
    while at < block.len() {
        if out.len() == max_vars {
            return Err(Error::TooManyVars { limit: max_vars });
        }
        let offset = at;
        let key = read(&mut at)?;
        if key.is_empty() {
            return Err(Error::EmptyKey { offset });
        }
        let value = read(&mut at)?;
        out.push((key, value));
    }
    Ok(out)
}

/// Encodes a request packet (for tests and for clients speaking uwsgi); `None` when the
/// variables do not fit the 16-bit sizes.
pub fn encode(modifier2: u8, vars: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    let mut block = Vec::new();
    for (key, value) in vars {
        for part in [key, value] {
            block.extend_from_slice(&u16::try_from(part.len()).ok()?.to_le_bytes());
            block.extend_from_slice(part);
        }
    }
    let size = u16::try_from(block.len()).ok()?;
    let mut packet = vec![MODIFIER1_WSGI];
    packet.extend_from_slice(&size.to_le_bytes());
    packet.push(modifier2);
    packet.extend_from_slice(&block);
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> Packet {
        match parse(buf, &Limits::default()) {
            Parsed::Done(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_packet_and_its_body() {
        let mut buf = encode(
            0,
            &[
                (b"REQUEST_METHOD", b"POST"),
                (b"PATH_INFO", b"/x"),
                (b"HTTP_X_EMPTY", b""),
            ],
        )
        .unwrap();
        let consumed = buf.len();
        buf.extend_from_slice(b"body bytes");
        let p = done(&buf);
        assert_eq!(p.consumed, consumed);
        assert_eq!(p.var("REQUEST_METHOD"), Some(&b"POST"[..]));
        assert_eq!(p.var("HTTP_X_EMPTY"), Some(&b""[..]));
        assert_eq!(p.var("NOPE"), None);
        assert_eq!(p.vars.len(), 3);
        for cut in 0..consumed {
            assert_eq!(
                parse(&buf[..cut], &Limits::default()),
                Parsed::NeedMore,
                "{cut}"
            );
        }
        // An empty block is a packet too (not a request: `to_http` finds no method).
        assert_eq!(done(&[0, 0, 0, 0]).vars, vec![]);
    }

    #[test]
    fn malformed_packets_are_errors() {
        let limits = Limits::default();
        assert_eq!(
            parse(&[5, 0, 0, 0], &limits),
            Parsed::Error(Error::UnsupportedModifier(5))
        );
        assert_eq!(
            parse(&[1], &limits),
            Parsed::Error(Error::UnsupportedModifier(1))
        );
        // A key size past the block's end.
        assert_eq!(
            parse(&[0, 4, 0, 0, 9, 0, b'A', b'B'], &limits),
            Parsed::Error(Error::SizePastEnd { offset: 0 })
        );
        // A value size cut in half.
        assert_eq!(
            parse(&[0, 4, 0, 0, 1, 0, b'A', 1], &limits),
            Parsed::Error(Error::SizePastEnd { offset: 3 })
        );
        assert_eq!(
            parse(&[0, 4, 0, 0, 0, 0, 0, 0], &limits),
            Parsed::Error(Error::EmptyKey { offset: 0 })
        );
        let small = Limits {
            max_block: 16,
            max_vars: 1,
        };
        assert_eq!(
            parse(&[0, 17, 0, 0], &small),
            Parsed::Error(Error::BlockTooLarge {
                size: 17,
                limit: 16
            })
        );
        let two = encode(0, &[(b"A", b""), (b"B", b"")]).unwrap();
        assert_eq!(
            parse(&two, &small),
            Parsed::Error(Error::TooManyVars { limit: 1 })
        );
    }

    #[test]
    fn encode_refuses_what_does_not_fit() {
        let big = vec![b'x'; 70_000];
        assert_eq!(encode(0, &[(b"K", &big)]), None);
    }
}
