//! The TLS protocol: one [`TlsSession`](crate::session::TlsSession) per connection, whose
//! inner session comes from the protocol the client chose with ALPN.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use ironhorse_app::ConnInfo;
use ironhorse_protocol::session::{Link, Protocol, Session};
use rustls::ServerConfig;

use crate::config::TlsConfig;

/// ALPN's name for HTTP/1.1, always offered (the fallback speaks it).
pub const HTTP_1_1: &[u8] = b"http/1.1";

/// Where connections get their TLS configuration: the one loaded last. `HUP` loads the
/// files again and [`replace`](Self::replace)s it in the master, so workers forked after get
/// the new certificates while the old workers keep theirs until they finish.
pub struct ServerConfigSource {
    current: RwLock<Arc<TlsConfig>>,
}

impl ServerConfigSource {
    pub fn new(config: TlsConfig) -> ServerConfigSource {
        ServerConfigSource {
            current: RwLock::new(Arc::new(config)),
        }
    }

    /// The configuration new connections get from now on.
    pub fn replace(&self, config: TlsConfig) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    pub fn current(&self) -> Arc<TlsConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// TLS in front of other protocols, chosen per connection by ALPN.
pub struct TlsProtocol {
    source: Arc<ServerConfigSource>,
    /// The source's configuration with this protocol's ALPN list, remade when the source
    /// changes (compared by pointer).
    with_alpn: RwLock<(Arc<TlsConfig>, Arc<ServerConfig>)>,
    choices: Arc<Choices>,
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
    /// TLS with the configuration `source` holds (re-read on HUP), offering the `alpn` protocols in that order of preference, then
    /// `http/1.1`; a client that negotiates none of them (or no ALPN at all) gets
    /// `fallback` (HTTP/1.1). Example: `vec![(b"h2".to_vec(), h2)]` with the HTTP/1.1
    /// protocol as the fallback.
    ///
    /// Fork hooks (and turns) reach the fallback only: the ALPN protocols are expected to
    /// serve the same application (whose `before_fork` must run once).
    pub fn new(
        source: Arc<ServerConfigSource>,
        alpn: Vec<(Vec<u8>, Arc<dyn Protocol>)>,
        fallback: Arc<dyn Protocol>,
    ) -> TlsProtocol {
        let choices = Choices { alpn, fallback };
        let config = source.current();
        let server = choices.server_config(&config);
        TlsProtocol {
            source,
            with_alpn: RwLock::new((config, server)),
            choices: Arc::new(choices),
        }
    }

    /// The rustls configuration for a new connection, and its handshake timeout.
    fn server_config(&self) -> (Arc<ServerConfig>, std::time::Duration) {
        let current = self.source.current();
        let timeout = current.handshake_timeout;
        {
            let cached = self.with_alpn.read().unwrap_or_else(|e| e.into_inner());
            if Arc::ptr_eq(&cached.0, &current) {
                return (cached.1.clone(), timeout);
            }
        }
        let server = self.choices.server_config(&current);
        *self.with_alpn.write().unwrap_or_else(|e| e.into_inner()) = (current, server.clone());
        (server, timeout)
    }
}

impl Choices {
    /// `config` offering these protocols with ALPN, in order, then `http/1.1`.
    fn server_config(&self, config: &TlsConfig) -> Arc<ServerConfig> {
        let mut server = (*config.server).clone();
        server.alpn_protocols = self.alpn.iter().map(|(id, _)| id.clone()).collect();
        if !server.alpn_protocols.iter().any(|id| id == HTTP_1_1) {
            server.alpn_protocols.push(HTTP_1_1.to_vec());
        }
        Arc::new(server)
    }
}

impl Protocol for TlsProtocol {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
        let (server, timeout) = self.server_config();
        crate::session::start(
            server,
            self.choices.clone(),
            conn,
            link,
            Instant::now() + timeout,
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
    fn shutdown(&self) {
        self.choices.fallback.shutdown();
    }
    fn turn(&self, work: &mut dyn FnMut()) {
        self.choices.fallback.turn(work);
    }
}
