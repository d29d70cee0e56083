//! Leaving HTTP/1.1 on the same connection: `Upgrade:` requests accepted with `101`, and a
//! prior-knowledge HTTP/2 preface. The protocols a connection may switch to are registered
//! on [`Http`](super::Http); with none registered a connection stays plain HTTP/1.1 (an
//! `Upgrade` header is ignored, and a preface is answered as the bad request it is there).

use std::sync::Arc;

use ironhorse_app::RequestHead;
use ironhorse_h1::{BodyFraming, Version};

use crate::session::Protocol;

/// The client preface of HTTP/2 with prior knowledge (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocols a connection may switch to.
#[derive(Clone, Default)]
pub(super) struct Upgrades {
    /// By `Upgrade` token (compared case-insensitively).
    by_token: Vec<(String, Arc<dyn Protocol>)>,
    /// Takes connections that open with [`H2_PREFACE`].
    prior_knowledge: Option<Arc<dyn Protocol>>,
}

/// What the first bytes of a connection say about a prior-knowledge preface.
pub(super) enum Preface<'a> {
    /// Not a preface (or none is registered): HTTP/1.1.
    No,
    /// The bytes so far begin a preface: wait for more.
    Partial,
    /// A whole preface: hand the connection to this protocol.
    Complete(&'a Arc<dyn Protocol>),
}

impl Upgrades {
    pub fn add(&mut self, token: &str, protocol: Arc<dyn Protocol>) {
        self.by_token.push((token.to_string(), protocol));
    }

    pub fn set_prior_knowledge(&mut self, protocol: Arc<dyn Protocol>) {
        self.prior_knowledge = Some(protocol);
    }

    /// The registered protocol `head` asks to switch to, with its token: an HTTP/1.1
    /// request without a body, `Connection: upgrade`, and an `Upgrade` token we know.
    pub fn requested(&self, head: &RequestHead) -> Option<(&str, &Arc<dyn Protocol>)> {
        if self.by_token.is_empty()
            || !head.has_upgrade()
            || head.version() != Version::Http11
            || head.body_framing() != BodyFraming::None
            || !has_token(head.header("connection")?, "upgrade")
        {
            return None;
        }
        let offered = head.header("upgrade")?;
        self.by_token
            .iter()
            .find(|(token, _)| has_token(offered, token))
            // RFC 7540 §3.2.1: no upgrade to h2c without exactly one HTTP2-Settings field,
            // and one that is a SETTINGS payload.
            .filter(|(token, _)| {
                if !token.eq_ignore_ascii_case("h2c") {
                    return true;
                }
                let mut fields = head
                    .headers()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("http2-settings"));
                match (fields.next(), fields.next()) {
                    (Some((_, value)), None) => is_settings_payload(value),
                    _ => false,
                }
            })
            .map(|(token, protocol)| (token.as_str(), protocol))
    }

    /// Looks at the first bytes of a connection (`ended`: no more will come).
    pub fn preface(&self, received: &[u8], ended: bool) -> Preface<'_> {
        let Some(protocol) = &self.prior_knowledge else {
            return Preface::No;
        };
        if received.starts_with(H2_PREFACE) {
            Preface::Complete(protocol)
        } else if !ended && H2_PREFACE.starts_with(received) {
            Preface::Partial
        } else {
            Preface::No
        }
    }
}

/// Whether an `HTTP2-Settings` value is a SETTINGS frame's payload in base64url (RFC 7540
/// §3.2.1): whole 6-byte settings, each value in its range (§6.5.2). A client's malformed
/// one is declined rather than switched to a connection that would fail at once.
fn is_settings_payload(value: &[u8]) -> bool {
    use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode};
    use base64::Engine as _;
    const BASE64URL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let Ok(payload) = BASE64URL.decode(value) else {
        return false;
    };
    payload.len() % 6 == 0
        && payload.chunks_exact(6).all(|setting| {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            match id {
                0x2 => value <= 1,                             // ENABLE_PUSH
                0x4 => value <= 0x7fff_ffff,                   // INITIAL_WINDOW_SIZE
                0x5 => (16_384..=16_777_215).contains(&value), // MAX_FRAME_SIZE
                _ => true,
            }
        })
}

/// Whether the comma-separated header `value` holds `token` (case-insensitively; an
/// `Upgrade` token's `/version` must match whole too).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Echo;

    fn head(text: &str) -> RequestHead {
        let mut conn = ironhorse_h1::ServerConn::new(Default::default());
        conn.feed(text.as_bytes());
        conn.next_request().unwrap().unwrap()
    }

    fn upgrades() -> Upgrades {
        let mut upgrades = Upgrades::default();
        upgrades.add("echo", Arc::new(Echo));
        upgrades
    }

    #[test]
    fn an_upgrade_needs_the_connection_token_a_known_protocol_and_no_body() {
        let u = upgrades();
        let ask = |extra: &str| {
            u.requested(&head(&format!("GET / HTTP/1.1\r\nHost: h\r\n{extra}\r\n")))
                .map(|(token, _)| token.to_string())
        };
        assert_eq!(
            ask("Connection: keep-alive, Upgrade\r\nUpgrade: h2c, ECHO\r\n"),
            Some("echo".into())
        );
        assert_eq!(ask("Upgrade: echo\r\n"), None, "no Connection: upgrade");
        assert_eq!(ask("Connection: upgrade\r\nUpgrade: websocket\r\n"), None);
        assert_eq!(
            ask("Connection: upgrade\r\nUpgrade: echo\r\nContent-Length: 1\r\n"),
            None,
            "a request with a body stays HTTP"
        );
        let old = head("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n");
        assert!(u.requested(&old).is_none(), "HTTP/1.0 cannot switch");
    }

    #[test]
    fn h2c_needs_exactly_one_http2_settings_field() {
        let mut u = Upgrades::default();
        u.add("h2c", Arc::new(Echo));
        let ask = |extra: &str| {
            let text = format!(
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2c\r\n{extra}\r\n"
            );
            u.requested(&head(&text)).is_some()
        };
        assert!(ask("HTTP2-Settings: AAMAAABkAAQAAP__\r\n"));
        assert!(!ask(""), "RFC 7540 §3.2.1: no settings, no upgrade");
        assert!(!ask("HTTP2-Settings: AAMA\r\nHTTP2-Settings: AAQA\r\n"));
        assert!(
            ask("HTTP2-Settings: \r\n"),
            "no settings at all is a valid payload"
        );
        assert!(!ask("HTTP2-Settings: !!not-base64!!\r\n"));
        assert!(
            !ask("HTTP2-Settings: AAMAAABkAA\r\n"),
            "7 bytes: not whole settings"
        );
        assert!(!ask("HTTP2-Settings: AAIAAAAC\r\n"), "ENABLE_PUSH 2");
        assert!(!ask("HTTP2-Settings: AAUAAAAB\r\n"), "MAX_FRAME_SIZE 1");
    }

    #[test]
    fn a_preface_is_recognised_whole_waited_for_in_part_and_only_when_registered() {
        assert!(matches!(upgrades().preface(H2_PREFACE, false), Preface::No));
        let mut u = upgrades();
        u.set_prior_knowledge(Arc::new(Echo));
        assert!(matches!(
            u.preface(b"PRI * HTTP/2", false),
            Preface::Partial
        ));
        assert!(matches!(u.preface(b"PRI * HTTP/2", true), Preface::No));
        assert!(matches!(u.preface(H2_PREFACE, false), Preface::Complete(_)));
        assert!(matches!(
            u.preface(b"GET / HTTP/1.1\r\n", false),
            Preface::No
        ));
    }
}
