//! The TLS protocol: one [`TlsSession`](crate::session::TlsSession) per connection, whose
//! inner session comes from the protocol the client chose with ALPN.

use std::sync::Arc;
use std::time::Instant;

use ironhorse_app::ConnInfo;
use ironhorse_server::session::{Link, Protocol, Session};
use rustls::ServerConfig;

use crate::config::TlsConfig;

/// ALPN's name for HTTP/1.1, always offered (the fallback speaks it).
pub const HTTP_1_1: &[u8] = b"http/1.1";

/// TLS in front of other protocols, chosen per connection by ALPN.
pub struct TlsProtocol {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) config: Arc<TlsConfig>,
    pub(crate) choices: Arc<Choices>,
}

/// The protocols a handshake may pick.
pub(crate) struct Choices {
    pub(crate) alpn: Vec<(Vec<u8>, Arc<dyn Protocol>)>,
    pub(crate) fallback: Arc<dyn Protocol>,
}

impl Choices {
    /// The protocol for a negotiated ALPN id (none negotiated, or `http/1.1`: the fallback).
    pub(crate) fn pick(&self, alpn: Option<&[u8]>) -> &Arc<dyn Protocol> {
        alpn.and_then(|id| self.alpn.iter().find(|(name, _)| name == id))
            .map_or(&self.fallback, |(_, protocol)| protocol)
    }
}

impl TlsProtocol {
    /// TLS with `config`, offering the `alpn` protocols in that order of preference, then
    /// `http/1.1`; a client that negotiates none of them (or no ALPN at all) gets
    /// `fallback` (HTTP/1.1). Example: `vec![(b"h2".to_vec(), h2)]` with the HTTP/1.1
    /// protocol as the fallback.
    ///
    /// Fork hooks reach the fallback only: the ALPN protocols are expected to serve the same
    /// application (whose `before_fork` must run once).
    pub fn new(
        config: Arc<TlsConfig>,
        alpn: Vec<(Vec<u8>, Arc<dyn Protocol>)>,
        fallback: Arc<dyn Protocol>,
    ) -> TlsProtocol {
        let mut server = (*config.server).clone();
        server.alpn_protocols = alpn.iter().map(|(id, _)| id.clone()).collect();
        if !server.alpn_protocols.iter().any(|id| id == HTTP_1_1) {
            server.alpn_protocols.push(HTTP_1_1.to_vec());
        }
        TlsProtocol {
            server: Arc::new(server),
            config,
            choices: Arc::new(Choices { alpn, fallback }),
        }
    }
}

impl Protocol for TlsProtocol {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        crate::session::start(
            self.server.clone(),
            self.choices.clone(),
            conn,
            link,
            deadline,
        )
    }

    fn before_fork(&self) {
        self.choices.fallback.before_fork();
    }
    fn after_fork_parent(&self) {
        self.choices.fallback.after_fork_parent();
    }
    fn after_fork_child(&self) {
        self.choices.fallback.after_fork_child();
    }
}
