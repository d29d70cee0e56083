use super::*;
use ironhorse_h1::{Limits, ServerConn};

fn head(text: &str) -> RequestHead {
    let mut conn = ServerConn::new(Limits::default());
    conn.feed(text.replace('\n', "\r\n").as_bytes());
    conn.next_request()
        .expect("valid HTTP")
        .expect("a whole head")
}

const GOOD: &str = "GET /chat HTTP/1.1\nHost: example.com\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n";

fn with(extra: &str) -> RequestHead {
    head(&format!("{GOOD}{extra}\n\n"))
}

fn replacing(from: &str, to: &str) -> Result<Offer, HandshakeError> {
    assert!(GOOD.contains(from));
    validate(&head(&format!("{}\n", GOOD.replace(from, to))))
}

#[test]
fn rfc_6455_sample_key() {
    // RFC 6455 §1.3's worked example.
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn valid_request_and_answer() {
    let offer = validate(&with(
        "Sec-WebSocket-Protocol: chat, superchat\nOrigin: http://example.com",
    ))
    .unwrap();
    assert_eq!(offer.protocols, ["chat", "superchat"]);
    assert_eq!(offer.origin.as_deref(), Some("http://example.com"));
    assert_eq!(offer.deflate, None);
    let (headers, deflate) = accept(&offer, Some("chat"), &Config::default());
    assert_eq!(deflate, None);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    assert_eq!(get("upgrade").as_deref(), Some("websocket"));
    assert_eq!(get("connection").as_deref(), Some("Upgrade"));
    assert_eq!(
        get("sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(get("sec-websocket-protocol").as_deref(), Some("chat"));
    assert_eq!(get("sec-websocket-extensions"), None);
    // A subprotocol the client did not offer is left out (one that would break the header
    // among them).
    for unoffered in ["graphql-ws", "Chat", "bad\r\nX: y"] {
        let (headers, _) = accept(&offer, Some(unoffered), &Config::default());
        assert!(!headers.iter().any(|(k, _)| k == "Sec-WebSocket-Protocol"));
    }
    let (headers, _) = accept(&offer, Some("superchat"), &Config::default());
    assert!(headers.contains(&("Sec-WebSocket-Protocol".into(), b"superchat".to_vec())));
}

#[test]
fn tokens_are_case_insensitive_and_in_lists() {
    let h = head("GET / HTTP/1.1\nHost: h\nUpgrade: foo/1, WebSocket\nConnection: keep-alive, UPGRADE\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\nSec-WebSocket-Version: 13\n\n");
    assert!(is_upgrade_request(&h));
    assert!(validate(&h).is_ok());
}

#[test]
fn each_bad_handshake_has_its_status() {
    assert_eq!(replacing("GET", "POST"), Err(HandshakeError::Method));
    assert_eq!(
        replacing("HTTP/1.1", "HTTP/1.0"),
        Err(HandshakeError::HttpVersion)
    );
    assert_eq!(
        replacing("Upgrade: websocket", "Upgrade: h2c"),
        Err(HandshakeError::Upgrade)
    );
    assert_eq!(
        replacing("Connection: Upgrade", "Connection: close"),
        Err(HandshakeError::Connection)
    );
    assert_eq!(
        replacing("Version: 13", "Version: 8"),
        Err(HandshakeError::Version)
    );
    assert_eq!(
        replacing("Sec-WebSocket-Version: 13\n", ""),
        Err(HandshakeError::VersionField)
    );
    assert_eq!(
        replacing("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
        Err(HandshakeError::Key)
    );
    assert_eq!(
        replacing("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
        Err(HandshakeError::Key)
    );
    assert_eq!(
        replacing("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n", ""),
        Err(HandshakeError::Key)
    );
    assert_eq!(
        validate(&with("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==")),
        Err(HandshakeError::Key)
    );
    assert_eq!(
        validate(&with("Sec-WebSocket-Protocol: a b")),
        Err(HandshakeError::Protocol)
    );
    assert_eq!(
        validate(&with("Sec-WebSocket-Version: 13")),
        Err(HandshakeError::VersionField)
    );
    assert_eq!(HandshakeError::VersionField.status(), 400);

    assert_eq!(HandshakeError::Version.status(), 426);
    assert_eq!(
        HandshakeError::Version.headers(),
        vec![("Sec-WebSocket-Version".to_string(), b"13".to_vec())]
    );
    for e in [
        HandshakeError::Method,
        HandshakeError::Key,
        HandshakeError::Upgrade,
        HandshakeError::Connection,
    ] {
        assert_eq!((e.status(), e.headers()), (400, vec![]));
    }
}

#[test]
fn deflate_offers_pick_the_first_we_can_honour() {
    let offer = validate(&with(
        "Sec-WebSocket-Extensions: x-unknown, permessage-deflate; server_max_window_bits=8\nSec-WebSocket-Extensions: permessage-deflate; bogus, permessage-deflate; client_max_window_bits; server_max_window_bits=12",
    ))
    .unwrap();
    let d = offer.deflate.unwrap();
    assert_eq!(d.server_max_window_bits, Some(12));
    let (headers, negotiated) = accept(&offer, None, &Config::default());
    assert_eq!(negotiated.unwrap().server_max_window_bits, 12);
    let ext = headers
        .iter()
        .find(|(k, _)| k == "Sec-WebSocket-Extensions")
        .unwrap();
    assert_eq!(ext.1, b"permessage-deflate; server_max_window_bits=12");
    // Turned off by config: no extension answered.
    let off = Config {
        deflate: false,
        ..Config::default()
    };
    let (headers, negotiated) = accept(&offer, None, &off);
    assert_eq!(negotiated, None);
    assert!(!headers.iter().any(|(k, _)| k == "Sec-WebSocket-Extensions"));
    // A broken header is declined, not refused.
    let offer = validate(&with("Sec-WebSocket-Extensions: permessage-deflate; =")).unwrap();
    assert_eq!(offer.deflate, None);
}
