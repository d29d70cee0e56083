//! TLS termination with rustls (no OpenSSL), under every concurrency model.
//!
//! [`TlsProtocol`] is a `Protocol` whose sessions own a `rustls::ServerConnection` and the
//! inner session of the protocol the client picked with ALPN (HTTP/1.1 by default; HTTP/2
//! plugs in as one more `(id, protocol)` pair). Drivers serve it like any other session, so
//! every model gets TLS without knowing about it; the inner session sees plaintext and a
//! `ConnInfo` with `scheme: "https"` and the handshake's facts (`ironhorse_app::TlsInfo`).
//!
//! Under TLS, file bodies cannot leave with `sendfile(2)`: they are read in bounded chunks
//! (`Output::take_plain`), encrypted, and sent as buffered records.
//!
//! [`TlsConfig::load`] reads the certificate chains, keys and client CA files once per
//! configuration (at start and on `HUP`), each problem a [`TlsError`] naming the file.
//! Several certificates are chosen by the client's SNI name, the first the default.
#![forbid(unsafe_code)]

mod config;
mod cutoff;
mod info;
mod protocol;
mod session;
mod sni;

pub use config::{CertFiles, CertReqs, MinVersion, TlsConfig, TlsError, TlsSettings};
pub use protocol::{ServerConfigSource, TlsProtocol, HTTP_1_1};
