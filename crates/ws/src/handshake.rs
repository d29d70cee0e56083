//! The opening handshake (RFC 6455 §4.2): validating a client's upgrade request and
//! building the `101 Switching Protocols` answer.

use std::fmt;

use base64::Engine as _;
use ironhorse_h1::{BodyFraming, RequestHead, Version};
use sha1::{Digest, Sha1};

use crate::deflate::{Deflate, DeflateOffer};
use crate::{extension, Config};

/// The GUID RFC 6455 §1.3 appends to the key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a valid client opening handshake asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `Sec-WebSocket-Key`, as sent (base64 of 16 bytes).
    pub key: String,
    /// `Sec-WebSocket-Protocol` values in the client's order of preference.
    pub protocols: Vec<String>,
    /// The first permessage-deflate offer we can honour, if any.
    pub deflate: Option<DeflateOffer>,
    /// `Origin`, when sent (browsers always send it; the app decides what to allow).
    pub origin: Option<String>,
}

/// Why an upgrade request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not a GET.
    Method,
    /// Not HTTP/1.1.
    HttpVersion,
    /// No `Host` field.
    MissingHost,
    /// `Upgrade` lacks the `websocket` token.
    Upgrade,
    /// `Connection` lacks the `upgrade` token.
    Connection,
    /// `Sec-WebSocket-Version` is not 13 (answered 426 with our version).
    Version,
    /// `Sec-WebSocket-Version` missing or given more than once: not a handshake at all
    /// (RFC 6455 §4.2.1 requires the field once; §4.2.2 answers such a request 400).
    VersionField,
    /// `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes.
    Key,
    /// `Sec-WebSocket-Protocol` is not a list of tokens.
    Protocol,
    /// The request has a body: its bytes would be taken for WebSocket frames.
    Body,
}

impl HandshakeError {
    /// The HTTP status to refuse with: 426 for the version (with
    /// [`headers`](Self::headers)), 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::Version => 426,
            _ => 400,
        }
    }

    /// Headers the refusal must carry: `Sec-WebSocket-Version: 13` on a 426 (RFC 6455 §4.4).
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        match self {
            HandshakeError::Version => {
                vec![("Sec-WebSocket-Version".into(), b"13".to_vec())]
            }
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::Method => "WebSocket upgrade must be a GET",
            HandshakeError::HttpVersion => "WebSocket upgrade needs HTTP/1.1",
            HandshakeError::MissingHost => "WebSocket upgrade without Host",
            HandshakeError::Upgrade => "Upgrade header lacks the websocket token",
            HandshakeError::Connection => "Connection header lacks the upgrade token",
            HandshakeError::Version => "unsupported Sec-WebSocket-Version (13 is)",
            HandshakeError::VersionField => "Sec-WebSocket-Version missing or repeated",
            HandshakeError::Key => "Sec-WebSocket-Key missing or not 16 bytes in base64",
            HandshakeError::Protocol => "Sec-WebSocket-Protocol is not a list of tokens",
            HandshakeError::Body => "WebSocket upgrade with a request body",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// The comma-separated elements of every `name` field, trimmed, empty ones dropped.
fn list<'a>(head: &'a RequestHead, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

fn has_token(head: &RequestHead, name: &str, token: &str) -> bool {
    list(head, name).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether the request asks for a WebSocket at all (`Upgrade: websocket`): a request
/// without it is plain HTTP; one with it is validated by [`validate`].
pub fn is_upgrade_request(head: &RequestHead) -> bool {
    has_token(head, "upgrade", "websocket")
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Validates an HTTP/1.1 request head as a WebSocket opening handshake.
pub fn validate(head: &RequestHead) -> Result<Offer, HandshakeError> {
    if head.method() != "GET" {
        return Err(HandshakeError::Method);
    }
    if head.version() != Version::Http11 {
        return Err(HandshakeError::HttpVersion);
    }
    if head.host().is_none() {
        return Err(HandshakeError::MissingHost);
    }
    if !is_upgrade_request(head) {
        return Err(HandshakeError::Upgrade);
    }
    if !has_token(head, "connection", "upgrade") {
        return Err(HandshakeError::Connection);
    }
    if !matches!(
        head.body_framing(),
        BodyFraming::None | BodyFraming::Length(0)
    ) {
        return Err(HandshakeError::Body);
    }
    let mut versions = list(head, "sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(b"13"), None) => {}
        (Some(_), None) => return Err(HandshakeError::Version),
        _ => return Err(HandshakeError::VersionField),
    }
    let mut keys = head
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.trim_ascii());
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) if is_key(k) => String::from_utf8_lossy(k).into_owned(),
        _ => return Err(HandshakeError::Key),
    };
    let mut protocols = Vec::new();
    for p in list(head, "sec-websocket-protocol") {
        if !is_token(p) {
            return Err(HandshakeError::Protocol);
        }
        protocols.push(String::from_utf8_lossy(p).into_owned());
    }
    Ok(Offer {
        key,
        protocols,
        deflate: deflate_offer(head),
        origin: head
            .header("origin")
            .map(|o| String::from_utf8_lossy(o).into_owned()),
    })
}

fn is_key(k: &[u8]) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(k)
        .is_ok_and(|raw| raw.len() == 16)
}

/// The first permessage-deflate offer we can honour. A header that breaks the grammar, and
/// offers with bad parameters, are declined, not refused (RFC 7692 §5).
fn deflate_offer(head: &RequestHead) -> Option<DeflateOffer> {
    head.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
        .filter_map(|(_, v)| extension::parse(v))
        .flatten()
        .filter_map(|ext| DeflateOffer::from_extension(&ext))
        .find(DeflateOffer::is_supported)
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The headers of the `101 Switching Protocols` answer, and the negotiated deflate
/// parameters to build the [`Connection`](crate::Connection) with. A `subprotocol` the
/// client did not offer is left out: RFC 6455 §4.2.2 has the server pick one of the
/// client's, and a client fails the connection on any other (see [`is_offered`]).
///
/// The first two headers are `Upgrade: websocket` and `Connection: Upgrade`; a caller
/// answering with `ironhorse_h1::ServerConn::write_switching_protocols` (which writes those
/// two itself) skips them.
pub fn accept(
    offer: &Offer,
    subprotocol: Option<&str>,
    config: &Config,
) -> (Vec<(String, Vec<u8>)>, Option<Deflate>) {
    let mut headers = vec![
        ("Upgrade".to_string(), b"websocket".to_vec()),
        ("Connection".to_string(), b"Upgrade".to_vec()),
        (
            "Sec-WebSocket-Accept".to_string(),
            accept_key(&offer.key).into_bytes(),
        ),
    ];
    if let Some(p) = subprotocol.filter(|p| is_offered(offer, p)) {
        headers.push(("Sec-WebSocket-Protocol".into(), p.as_bytes().to_vec()));
    }
    let deflate = offer
        .deflate
        .filter(|_| config.deflate)
        .map(|o| o.accept(config));
    if let Some(d) = &deflate {
        headers.push((
            "Sec-WebSocket-Extensions".into(),
            d.response_header().into_bytes(),
        ));
    }
    (headers, deflate)
}

/// Whether the client offered `subprotocol` (the offer's values are valid tokens, so one
/// that is cannot break the header either).
pub fn is_offered(offer: &Offer, subprotocol: &str) -> bool {
    offer.protocols.iter().any(|p| p == subprotocol)
}

#[cfg(test)]
mod tests;
