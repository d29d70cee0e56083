//! Who the client is, according to the proxy in front: trusted forwarding headers.
//!
//! A [`Policy`] says which peers are proxies ([`AllowList`]) and which of their headers are
//! believed; [`Policy::resolve`] reads a request's headers and answers the client address,
//! the scheme and the host they vouch for ([`Resolved`]). From a peer that is not trusted
//! nothing is believed: the headers stay ordinary headers.
//!
//! * Scheme: gunicorn's `secure_scheme_headers` (`X-Forwarded-Proto: https`,
//!   `X-Forwarded-Ssl: on`, `X-Forwarded-Protocol: ssl`): a listed header with its value
//!   means `https`, with another value `http`; headers that disagree are an error (gunicorn
//!   answers 400 "Contradictory scheme headers"), as is `Forwarded`'s `proto=` disagreeing.
//! * Client: `X-Forwarded-For` (and `Forwarded`'s `for=`) walked from the right, skipping
//!   trusted proxies; the first address not trusted is the client ([`hops::pick`]), so a
//!   client cannot forge its address by sending the header itself.
//! * Host: the last `X-Forwarded-Host` value (the one the nearest proxy wrote), or the
//!   chosen `Forwarded` element's `host=`, when it is a well-formed host.
//! * When `Forwarded` is believed and present (and readable), it wins over `X-Forwarded-For`
//!   and `X-Forwarded-Host`; an unreadable one is ignored.
//!
//! Unix-socket peers have no address: they are trusted unless the allow list is empty, as
//! gunicorn trusts them (whoever may open the socket file is the proxy).

pub mod hops;
pub mod rfc7239;

use std::fmt;
use std::net::IpAddr;

use crate::AllowList;
use hops::{pick, valid_host, Hop};

pub use hops::split_host;

/// Which headers describing the client a trusted peer may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headers {
    /// `X-Forwarded-For` → the client address.
    pub x_forwarded_for: bool,
    /// `X-Forwarded-Host` → the host.
    pub x_forwarded_host: bool,
    /// RFC 7239 `Forwarded` (`for=`, `proto=`, `host=`).
    pub forwarded: bool,
}

/// A name in the list of forwarding headers that is none of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of x-forwarded-for, x-forwarded-host, forwarded, none")]
pub struct UnknownHeader(pub String);

impl Headers {
    /// Parses `x-forwarded-for,forwarded` (case-insensitive; `none` or nothing: none).
    pub fn parse(text: &str) -> Result<Headers, UnknownHeader> {
        let mut headers = Headers::default();
        for name in text
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|n| !n.is_empty())
        {
            match name.to_ascii_lowercase().as_str() {
                "x-forwarded-for" => headers.x_forwarded_for = true,
                "x-forwarded-host" => headers.x_forwarded_host = true,
                "forwarded" => headers.forwarded = true,
                "none" => {}
                _ => return Err(UnknownHeader(name.to_string())),
            }
        }
        Ok(headers)
    }
}

impl fmt::Display for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.x_forwarded_for, "x-forwarded-for"),
            (self.x_forwarded_host, "x-forwarded-host"),
            (self.forwarded, "forwarded"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(if names.is_empty() { "none" } else { "" })?;
        f.write_str(&names.join(","))
    }
}

/// gunicorn's `secure_scheme_headers`: header names with the value that means `https`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemeHeaders(Vec<(String, String)>);

/// An entry of the scheme headers that is not `NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not HEADER=VALUE (e.g. X-Forwarded-Proto=https)")]
pub struct SchemeHeadersError(pub String);

impl SchemeHeaders {
    /// Parses `X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on` (names case-insensitive).
    pub fn parse(text: &str) -> Result<SchemeHeaders, SchemeHeadersError> {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| match entry.split_once('=') {
                Some((name, value))
                    if !name.trim().is_empty()
                        && !value.trim().is_empty()
                        && name
                            .trim()
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
                {
                    Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
                }
                _ => Err(SchemeHeadersError(entry.to_string())),
            })
            .collect::<Result<_, _>>()
            .map(SchemeHeaders)
    }

    /// The value that means `https` for header `name`, if it is a scheme header.
    fn secure_value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for SchemeHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|(n, v)| format!("{}={v}", n.to_ascii_uppercase()))
            .collect();
        f.write_str(&entries.join(","))
    }
}

/// The URL scheme a proxy says the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Default port of the scheme.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// What the trusted headers of one request say; `None`s leave the connection's own values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The client's address, and its port when a proxy gave one.
    pub client: Option<(IpAddr, Option<u16>)>,
    pub scheme: Option<Scheme>,
    /// `host[:port]`, checked to be a well-formed host.
    pub host: Option<String>,
}

/// Trusted headers that cannot all be true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("contradictory scheme headers")]
    ContradictoryScheme,
}

/// Which peers are proxies, and what of theirs is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow: AllowList,
    pub headers: Headers,
    pub secure_scheme_headers: SchemeHeaders,
}

impl Policy {
    /// Whether the peer's headers are believed (`None`: a Unix-socket peer, trusted unless
    /// the allow list is empty).
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        self.allow.admits(peer)
    }

    /// Reads the request's `headers` (name, value; in the order received) from `peer`.
    pub fn resolve<'h>(
        &self,
        peer: Option<IpAddr>,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<Resolved, ResolveError> {
        if !self.trusts(peer) {
            return Ok(Resolved::default());
        }
        let mut scheme = None;
        // Field values as received: X-Forwarded-For is walked from the right without copying.
        let mut xff: Vec<&[u8]> = Vec::new();
        let mut fwd: Option<Vec<u8>> = None;
        let mut xfh: Option<&[u8]> = None;
        for (name, value) in headers {
            if let Some(secure) = self.secure_scheme_headers.secure_value(name) {
                let https = trim(value).eq_ignore_ascii_case(secure.as_bytes());
                merge(
                    &mut scheme,
                    if https { Scheme::Https } else { Scheme::Http },
                )?;
            } else if self.headers.x_forwarded_for && name.eq_ignore_ascii_case("x-forwarded-for") {
                xff.push(value);
            } else if self.headers.x_forwarded_host && name.eq_ignore_ascii_case("x-forwarded-host")
            {
                xfh = Some(value);
            } else if self.headers.forwarded && name.eq_ignore_ascii_case("forwarded") {
                join(&mut fwd, value);
            }
        }
        let mut out = Resolved {
            scheme,
            ..Resolved::default()
        };
        if let Some(elements) = fwd.and_then(|v| rfc7239::parse(&v).ok()) {
            let hops = elements.iter().rev().map(|e| e.for_.unwrap_or(Hop::Opaque));
            if let Some(p) = pick(hops, &self.allow) {
                let element = &elements[elements.len() - 1 - p.from_right];
                out.client = p.client;
                let proto = element.proto.as_deref().map(str::to_ascii_lowercase);
                match proto.as_deref() {
                    Some("https" | "wss") => merge(&mut out.scheme, Scheme::Https)?,
                    Some("http" | "ws") => merge(&mut out.scheme, Scheme::Http)?,
                    _ => {}
                }
                out.host = element.host.clone().filter(|h| valid_host(h));
                return Ok(out);
            }
        }
        let hops = xff
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(|&b| b == b','))
            .map(|item| std::str::from_utf8(item).map_or(Hop::Opaque, Hop::parse));
        out.client = pick(hops, &self.allow).and_then(|p| p.client);
        if let Some(value) = xfh {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            out.host = std::str::from_utf8(trim(last))
                .ok()
                .filter(|h| valid_host(h))
                .map(str::to_string);
        }
        Ok(out)
    }
}

/// Records `scheme`, failing when an earlier header said otherwise.
fn merge(slot: &mut Option<Scheme>, scheme: Scheme) -> Result<(), ResolveError> {
    match slot.replace(scheme) {
        Some(previous) if previous != scheme => Err(ResolveError::ContradictoryScheme),
        _ => Ok(()),
    }
}

/// Joins repeated header fields with `,` (RFC 9110 §5.3).
fn join(slot: &mut Option<Vec<u8>>, value: &[u8]) {
    match slot {
        Some(joined) => {
            joined.push(b',');
            joined.extend_from_slice(value);
        }
        None => *slot = Some(value.to_vec()),
    }
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b' ' && b != b'\t');
    let end = value.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(s), Some(e)) => &value[s..=e],
        _ => &[],
    }
}

#[cfg(test)]
mod tests;
