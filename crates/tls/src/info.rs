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
        cert.subject = parsed.subject().to_string();
        cert.issuer = parsed.issuer().to_string();
        cert.serial = parsed.raw_serial().iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        });
    }
    cert
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
