//! What the handshake settled, in the form applications get it (`ironhorse_app::TlsInfo`):
//! version, cipher suite, SNI, and the verified client certificate's names and PEM.

use std::fmt::Write;

use base64::Engine;
use ironhorse_app::{ClientCert, TlsInfo};
use rustls::{ProtocolVersion, ServerConnection};
use rustls_pki_types::CertificateDer;

/// The facts of a connection whose handshake is complete.
pub(crate) fn of(tls: &ServerConnection) -> TlsInfo {
    TlsInfo {
        protocol: match tls.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        },
        cipher: tls
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or_default()
            .to_string(),
        server_name: tls.server_name().map(str::to_string),
        version_id: tls.protocol_version().map(u16::from),
        cipher_id: tls.negotiated_cipher_suite().map(|s| u16::from(s.suite())),
        // rustls hands over peer certificates only once its verifier accepted them.
        client_cert: tls
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(client_cert),
    }
}

fn client_cert(der: &CertificateDer<'_>) -> ClientCert {
    let mut cert = ClientCert {
        pem: pem(der),
        ..ClientCert::default()
    };
    // Verified by webpki already; a certificate x509-parser cannot read keeps empty names.
    if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der) {
        cert.subject = rfc4514(parsed.subject());
        cert.issuer = rfc4514(parsed.issuer());
        cert.serial = parsed.raw_serial().iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        });
    }
    cert
}

/// `name` as RFC 4514 writes it (the ASGI TLS extension's form; mod_ssl's in RFC 2253 mode):
/// its RDNs last first, joined with `,`, a multi-valued RDN's attributes with `+`, and in each
/// value the characters that would end it escaped, so that no value (a subject of
/// `CN=mallory, O=x` chosen by the certificate's requester) can pose as another attribute.
fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            let attributes: Vec<String> = rdn
                .iter()
                .map(|attr| {
                    let kind = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map_or_else(|_| attr.attr_type().to_id_string(), str::to_string);
                    let value = match attr.as_str() {
                        Ok(text) => escape_value(text),
                        // Not a string type: `#` and the value's bytes in hex (RFC 4514 §2.4).
                        Err(_) => attr.as_slice().iter().fold(String::from("#"), |mut s, b| {
                            let _ = write!(s, "{b:02x}");
                            s
                        }),
                    };
                    format!("{kind}={value}")
                })
                .collect();
            attributes.join("+")
        })
        .collect();
    rdns.reverse();
    rdns.join(",")
}

/// An attribute value with RFC 4514 §2.4's escapes: `"+,;<>\` anywhere, a leading `#` or
/// space, a trailing space, and NUL.
fn escape_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// PEM with 64-column lines, as `openssl x509` writes it (mod_ssl's `SSL_CLIENT_CERT`).
fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::escape_value;

    #[test]
    fn values_cannot_pose_as_other_attributes() {
        assert_eq!(escape_value("mallory, CN=admin"), "mallory\\, CN=admin");
        assert_eq!(
            escape_value("a+b;c<d>e\"f\\g"),
            "a\\+b\\;c\\<d\\>e\\\"f\\\\g"
        );
        assert_eq!(escape_value("#lead and trail "), "\\#lead and trail\\ ");
        assert_eq!(escape_value(" x"), "\\ x");
        assert_eq!(escape_value("Zürich"), "Zürich");
        assert_eq!(escape_value(""), "");
    }
}
