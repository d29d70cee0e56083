//! HAProxy's PROXY protocol (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>):
//! the header a load balancer (HAProxy, AWS NLB, nginx's `proxy_protocol on`) sends before
//! anything else on a connection, naming the client it accepted.
//!
//! * v1: one text line, `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n` (at most 107
//!   bytes), or `PROXY UNKNOWN ...\r\n`.
//! * v2: a 12-byte signature, version/command, family, a big-endian length, the addresses,
//!   then TLVs (type, 16-bit length, value).
//!
//! [`parse`] takes the bytes received so far. Every check runs in byte order, so a prefix of
//! a stream answers `NeedMore` or the very error the whole stream gets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::Parsed;

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included.
pub const V1_MAX: usize = 107;
const V1_PREFIX: &[u8] = b"PROXY ";

/// Which versions a listener accepts (`--proxy-protocol v1,v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub v1: bool,
    pub v2: bool,
}

impl Versions {
    pub const BOTH: Versions = Versions { v1: true, v2: true };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// v2's command; v1 headers are always `Proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The proxy's own connection (a health check): use the real endpoints.
    Local,
    /// A relayed connection: the addresses are the client's and the one it reached.
    Proxy,
}

/// One v2 TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// A complete header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub command: Command,
    /// The client; `None` for `LOCAL`, `UNKNOWN`, unspecified or Unix-socket families.
    pub src: Option<SocketAddr>,
    /// The address the client connected to.
    pub dst: Option<SocketAddr>,
    pub tlvs: Vec<Tlv>,
    /// Bytes the header took; what follows is the proxied stream.
    pub consumed: usize,
}

/// Why the bytes are not an acceptable PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no PROXY protocol header")]
    NotProxy,
    #[error("PROXY protocol {0:?} is not accepted here")]
    NotAccepted(Version),
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    #[error("PROXY v1 line: {0}")]
    V1Syntax(&'static str),
    #[error("PROXY v2: unsupported version {0}")]
    V2Version(u8),
    #[error("PROXY v2: unknown command {0}")]
    V2Command(u8),
    #[error("PROXY v2: unknown address family {0:#04x}")]
    V2Family(u8),
    #[error("PROXY v2: address block shorter than its family needs")]
    V2AddressTooShort,
    #[error("PROXY v2: a TLV runs past the header")]
    V2Tlv,
}

/// Parses the PROXY header at the start of `buf`.
pub fn parse(buf: &[u8], accept: Versions) -> Parsed<Header, Error> {
    match buf.first() {
        None => Parsed::NeedMore,
        Some(b'P') if !accept.v1 => Parsed::Error(Error::NotAccepted(Version::V1)),
        Some(b'P') => v1(buf),
        Some(b'\r') if !accept.v2 => Parsed::Error(Error::NotAccepted(Version::V2)),
        Some(b'\r') => v2(buf),
        Some(_) => Parsed::Error(Error::NotProxy),
    }
}

fn v1(buf: &[u8]) -> Parsed<Header, Error> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Parsed::Error(Error::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let mut end = None;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\r' => match window.get(i + 1) {
                Some(b'\n') => {
                    end = Some(i);
                    break;
                }
                Some(_) => return Parsed::Error(Error::V1Syntax("a CR without LF")),
                None => {}
            },
            0x20..=0x7e => {}
            _ => return Parsed::Error(Error::V1Syntax("a byte that is not printable ASCII")),
        }
    }
    let Some(end) = end else {
        return if buf.len() >= V1_MAX {
            Parsed::Error(Error::V1TooLong)
        } else {
            Parsed::NeedMore
        };
    };
    // Printable ASCII only, checked above.
    let line = std::str::from_utf8(&buf[..end]).expect("ascii");
    match v1_fields(line) {
        Ok((src, dst)) => Parsed::Done(Header {
            version: Version::V1,
            command: Command::Proxy,
            src,
            dst,
            tlvs: Vec::new(),
            consumed: end + 2,
        }),
        Err(e) => Parsed::Error(Error::V1Syntax(e)),
    }
}

type Endpoints = (Option<SocketAddr>, Option<SocketAddr>);

fn v1_fields(line: &str) -> Result<Endpoints, &'static str> {
    let mut fields = line.split(' ');
    fields.next(); // "PROXY", checked
    let family = fields.next().ok_or("no protocol")?;
    if family == "UNKNOWN" {
        return Ok((None, None));
    }
    let parts: Vec<&str> = fields.collect();
    let [src, dst, sport, dport] = parts[..] else {
        return Err("expected PROXY TCP4|TCP6 SRC DST SPORT DPORT");
    };
    let ip = |text: &str| -> Result<IpAddr, &'static str> {
        match family {
            "TCP4" => text
                .parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| "bad IPv4 address"),
            "TCP6" => text
                .parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| "bad IPv6 address"),
            _ => Err("protocol is not TCP4, TCP6 or UNKNOWN"),
        }
    };
    let port = |text: &str| -> Result<u16, &'static str> {
        let digits =
            !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
        let leading_zero = text.len() > 1 && text.starts_with('0');
        match (digits && !leading_zero).then(|| text.parse::<u16>()) {
            Some(Ok(p)) => Ok(p),
            _ => Err("bad port"),
        }
    };
    Ok((
        Some(SocketAddr::new(ip(src)?, port(sport)?)),
        Some(SocketAddr::new(ip(dst)?, port(dport)?)),
    ))
}

// Long on purpose: it walks the PROXY v2 header field by field in wire order (signature,
// version/command, family, length, addresses, TLVs), each step needing the one before.
fn v2(buf: &[u8]) -> Parsed<Header, Error> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Parsed::Error(Error::NotProxy);
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return Parsed::NeedMore;
    };
    if ver_cmd >> 4 != 2 {
        return Parsed::Error(Error::V2Version(ver_cmd >> 4));
    }
    let command = match ver_cmd & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        other => return Parsed::Error(Error::V2Command(other)),
    };
    let Some(&family) = buf.get(13) else {
        return Parsed::NeedMore;
    };
    let address_len = match family >> 4 {
        0 => 0,
        1 => 12,
        2 => 36,
        3 => 216,
        _ if command == Command::Local => 0,
        _ => return Parsed::Error(Error::V2Family(family)),
    };
    if command == Command::Proxy && !matches!(family & 0x0f, 0..=2) {
        return Parsed::Error(Error::V2Family(family));
    }
    if buf.len() < 16 {
        return Parsed::NeedMore;
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if command == Command::Proxy && len < address_len {
        return Parsed::Error(Error::V2AddressTooShort);
    }
    let Some(block) = buf.get(16..16 + len) else {
        return Parsed::NeedMore;
    };
    let mut header = Header {
        version: Version::V2,
        command,
        src: None,
        dst: None,
        tlvs: Vec::new(),
        consumed: 16 + len,
    };
    if command == Command::Local {
        // The receiver must ignore what a LOCAL header carries.
        return Parsed::Done(header);
    }
    let (addresses, mut rest) = block.split_at(address_len);
    match family >> 4 {
        1 => {
            let ip = |o: usize| IpAddr::from(<[u8; 4]>::try_from(&addresses[o..o + 4]).unwrap());
            let port = |o: usize| u16::from_be_bytes([addresses[o], addresses[o + 1]]);
            header.src = Some(SocketAddr::new(ip(0), port(8)));
            header.dst = Some(SocketAddr::new(ip(4), port(10)));
        }
        2 => {
            let ip = |o: usize| IpAddr::from(<[u8; 16]>::try_from(&addresses[o..o + 16]).unwrap());
            let port = |o: usize| u16::from_be_bytes([addresses[o], addresses[o + 1]]);
            header.src = Some(SocketAddr::new(ip(0), port(32)));
            header.dst = Some(SocketAddr::new(ip(16), port(34)));
        }
        _ => {} // unspecified or Unix-socket endpoints: nothing to report as an address
    }
    while !rest.is_empty() {
        let [kind, hi, lo, ..] = *rest else {
            return Parsed::Error(Error::V2Tlv);
        };
        let Some(value) = rest.get(3..3 + usize::from(u16::from_be_bytes([hi, lo]))) else {
            return Parsed::Error(Error::V2Tlv);
        };
        header.tlvs.push(Tlv {
            kind,
            value: value.to_vec(),
        });
        rest = &rest[3 + value.len()..];
    }
    Parsed::Done(header)
}

#[cfg(test)]
mod tests;
