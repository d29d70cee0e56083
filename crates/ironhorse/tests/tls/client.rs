//! A small TLS client over rustls for the cases curl cannot show: the certificate a
//! connection got, one connection kept for many requests, a PROXY header before the TLS
//! bytes. HTTP/1.1 with `Content-Length` responses only (what the tests' servers send).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

use crate::common::HUNG;

/// A client trusting the CA in `ca`, speaking `versions`, presenting `identity` if given.
pub fn config(
    ca: &Path,
    versions: &[&'static SupportedProtocolVersion],
    identity: Option<&crate::pki::Issued>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let chain = CertificateDer::pem_file_iter(&issued.cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    })
}

/// One TLS connection to `localhost`.
pub struct Client {
    tls: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`, sends `preamble` in clear (a PROXY header), then completes the
    /// handshake.
    pub fn connect(
        addr: &str,
        config: Arc<ClientConfig>,
        preamble: &[u8],
    ) -> std::io::Result<Client> {
        Client::connect_to(addr, config, preamble, "localhost")
    }

    /// [`connect`](Self::connect), asking for the server `name` (SNI, and what the
    /// certificate is verified against).
    pub fn connect_to(
        addr: &str,
        config: Arc<ClientConfig>,
        preamble: &[u8],
        name: &str,
    ) -> std::io::Result<Client> {
        let mut sock = TcpStream::connect(addr)?;
        sock.set_read_timeout(Some(HUNG))?;
        sock.write_all(preamble)?;
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut conn = ClientConnection::new(config, name).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(Client {
            tls: StreamOwned::new(conn, sock),
            buf: Vec::new(),
        })
    }

    /// The DER of the certificate the server presented.
    pub fn server_cert(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// `GET path` on this connection: the status and the body.
    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        self.send_get(path)?;
        self.response()
    }

    /// Sends `bytes` as they are (a request head in pieces).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// Sends `GET path` without reading the response.
    pub fn send_get(&mut self, path: &str) -> std::io::Result<()> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.tls.write_all(request.as_bytes())?;
        self.tls.flush()
    }

    /// Reads one response.
    pub fn response(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("Content-Length");
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok((status, body))
    }

    /// Reads `n` body bytes at most into the buffer (for a transfer left half-read).
    pub fn read_some(&mut self, n: usize) -> std::io::Result<()> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(())
    }

    /// Reads until the server ends the connection: `Ok` (with the bytes that came before)
    /// only when it ended the TLS way, with `close_notify`; a bare TCP close is
    /// `UnexpectedEof` (rustls tells the two apart).
    pub fn read_to_close(&mut self) -> std::io::Result<Vec<u8>> {
        let mut rest = std::mem::take(&mut self.buf);
        self.tls.read_to_end(&mut rest)?;
        Ok(rest)
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 65536];
        match self.tls.read(&mut chunk)? {
            0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }
}
