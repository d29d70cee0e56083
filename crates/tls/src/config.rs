//! The TLS settings and the rustls server configuration made from them: certificate chains
//! and keys from PEM files (several, chosen by SNI: `sni.rs`), client certificates checked against `--ca-certs`, the protocol
//! versions. Every problem is a [`TlsError`] naming the file and what is wrong with it, found
//! here, before any worker starts (and again on `HUP`, which re-reads the files).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::{ring, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::sni::{self, SniResolver};

/// Whether clients must present a certificate (gunicorn's `--cert-reqs`, Python's
/// `ssl.CERT_NONE`/`CERT_OPTIONAL`/`CERT_REQUIRED`, also accepted as 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertReqs {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client may present one; if it does, it must verify against `--ca-certs`.
    Optional,
    /// A client must present one that verifies against `--ca-certs`.
    Required,
}

impl FromStr for CertReqs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "0" | "cert_none" => Ok(CertReqs::None),
            "optional" | "1" | "cert_optional" => Ok(CertReqs::Optional),
            "required" | "2" | "cert_required" => Ok(CertReqs::Required),
            _ => Err(format!(
                "expected none, optional or required (or 0, 1, 2), got {s:?}"
            )),
        }
    }
}

impl fmt::Display for CertReqs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertReqs::None => "none",
            CertReqs::Optional => "optional",
            CertReqs::Required => "required",
        })
    }
}

/// The oldest TLS version accepted (`--tls-min-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    #[default]
    Tls12,
    Tls13,
}

impl FromStr for MinVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().trim_start_matches("tlsv") {
            "1.2" => Ok(MinVersion::Tls12),
            "1.3" => Ok(MinVersion::Tls13),
            _ => Err(format!("expected 1.2 or 1.3, got {s:?}")),
        }
    }
}

impl fmt::Display for MinVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MinVersion::Tls12 => "1.2",
            MinVersion::Tls13 => "1.3",
        })
    }
}

/// One certificate the server may present, as files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM: the server's certificate, then its chain.
    pub certfile: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub keyfile: PathBuf,
}

/// What the TLS settings say.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificates, at least one: the first is the default, the others are chosen by
    /// the names the client asks for (SNI; see `sni.rs`).
    pub certs: Vec<CertFiles>,
    /// PEM: the certificate authorities client certificates are checked against.
    pub ca_certs: Option<PathBuf>,
    pub cert_reqs: CertReqs,
    pub min_version: MinVersion,
    /// The cipher suites offered, by IANA name (`TLS13_AES_128_GCM_SHA256`); `None`: rustls's.
    pub ciphers: Option<Vec<String>>,
    /// How long a client may take from connecting to the end of the handshake.
    pub handshake_timeout: Duration,
}

/// A problem with the TLS settings or files: its `Display` is the one line printed.
#[derive(Debug)]
pub enum TlsError {
    /// The file cannot be read.
    Read {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not what the setting needs (no PEM item of the kind, malformed PEM,
    /// a key rustls cannot use).
    Content {
        setting: &'static str,
        path: PathBuf,
        problem: String,
    },
    /// The key is not the certificate's.
    KeyMismatch { certfile: PathBuf, keyfile: PathBuf },
    /// Settings that do not go together.
    Settings(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read {
                setting,
                path,
                source,
            } => write!(f, "{setting} {}: {source}", path.display()),
            TlsError::Content {
                setting,
                path,
                problem,
            } => write!(f, "{setting} {}: {problem}", path.display()),
            TlsError::KeyMismatch { certfile, keyfile } => write!(
                f,
                "--keyfile {}: the key does not match the certificate in {}",
                keyfile.display(),
                certfile.display()
            ),
            TlsError::Settings(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for TlsError {}

/// A loaded TLS configuration, ready to be shared by every connection (and re-made from the
/// files on `HUP`). The ALPN list is set by [`TlsProtocol`](crate::TlsProtocol).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) handshake_timeout: Duration,
}

impl TlsConfig {
    /// Reads and checks the files the settings name.
    pub fn load(settings: &TlsSettings) -> Result<TlsConfig, TlsError> {
        let mut provider = ring::default_provider();
        if let Some(names) = &settings.ciphers {
            provider.cipher_suites = cipher_suites(names, &provider.cipher_suites)?;
        }
        let provider = Arc::new(provider);
        let tls12 = settings.min_version == MinVersion::Tls12;
        let certs = resolver(&settings.certs, &provider, tls12)?;
        let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| {
                TlsError::Settings(format!(
                    "--ciphers/--tls-min-version: no cipher suite left for the versions allowed ({e})"
                ))
            })?;
        let builder = match (settings.cert_reqs, &settings.ca_certs) {
            (CertReqs::None, _) => builder.with_no_client_auth(),
            (reqs, None) => {
                return Err(TlsError::Settings(format!(
                    "--cert-reqs {reqs} needs --ca-certs (the authorities client certificates are checked against)"
                )))
            }
            (reqs, Some(path)) => {
                let roots = roots(path)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
                let verifier = match reqs {
                    CertReqs::Optional => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().map_err(|e| TlsError::Content {
                    setting: "--ca-certs",
                    path: path.clone(),
                    problem: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::new(certs));
        // The session wrapper gives rustls bounded pieces itself (see `session.rs`).
        server.max_early_data_size = 0;
        let server = Arc::new(server);
        // A configuration that cannot make a connection is found here, not per connection.
        ServerConnection::new(server.clone())
            .map_err(|e| TlsError::Settings(format!("TLS configuration: {e}")))?;
        Ok(TlsConfig {
            server,
            handshake_timeout: settings.handshake_timeout,
        })
    }
}

/// The certificates of `certs` behind one resolver: the first the default, each of the
/// others selected by the DNS names in it.
fn resolver(
    certs: &[CertFiles],
    provider: &CryptoProvider,
    tls12: bool,
) -> Result<SniResolver, TlsError> {
    let (first, others) = certs
        .split_first()
        .ok_or_else(|| TlsError::Settings("TLS needs --certfile".into()))?;
    let default = certified_key(first, provider)?;
    fits_tls12_suites(&default, first, provider, tls12)?;
    let mut resolver = SniResolver::new(default.clone());
    resolver.add(&sni::dns_names(&default.cert[0]), &default);
    for files in others {
        let key = certified_key(files, provider)?;
        fits_tls12_suites(&key, files, provider, tls12)?;
        let names = sni::dns_names(&key.cert[0]);
        let problem = if names.is_empty() {
            "no DNS name in its subjectAltName, so no client could select it by SNI (only the first --certfile, the default, may have none)"
        } else if resolver.add(&names, &key) == 0 {
            "every DNS name in it is served by an earlier --certfile (the first given wins), so no client would get it"
        } else {
            continue;
        };
        return Err(content("--certfile", &files.certfile, problem));
    }
    Ok(resolver)
}

/// A certificate chain and its key, checked to belong together.
fn certified_key(
    files: &CertFiles,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates("--certfile", &files.certfile)?;
    let key = private_key(&files.keyfile)?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    certfile: files.certfile.clone(),
                    keyfile: files.keyfile.clone(),
                }
            }
            e => content(
                "--keyfile",
                &files.keyfile,
                format!("the key cannot be used: {e}"),
            ),
        })
}

/// Refuses a key that none of the TLS 1.2 suites offered can sign for: a 1.2 suite names
/// the key type (`ECDHE_ECDSA`, `ECDHE_RSA`), so `--ciphers` listing only the other kind
/// would fail every TLS 1.2 handshake (1.3 suites fit any key). Nothing to check when 1.2
/// is off (`tls12` false, `--tls-min-version 1.3`) or no 1.2 suite is offered.
fn fits_tls12_suites(
    key: &CertifiedKey,
    files: &CertFiles,
    provider: &CryptoProvider,
    tls12: bool,
) -> Result<(), TlsError> {
    let algorithm = key.key.algorithm();
    let mut suites = provider
        .cipher_suites
        .iter()
        .filter(|suite| suite.version() == &rustls::version::TLS12)
        .peekable();
    if !tls12 || suites.peek().is_none() {
        return Ok(());
    }
    if suites
        .clone()
        .any(|suite| suite.usable_for_signature_algorithm(algorithm))
    {
        return Ok(());
    }
    let names: Vec<&str> = suites.map(|s| s.suite().as_str().unwrap_or("?")).collect();
    Err(content(
        "--keyfile",
        &files.keyfile,
        format!(
            "a {algorithm:?} key, which none of the TLS 1.2 suites in --ciphers ({}) can use: \
             list a suite for this key type, a TLS 1.3 suite with --tls-min-version 1.3, or \
             another key",
            names.join(", ")
        ),
    ))
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

fn content(setting: &'static str, path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::Content {
        setting,
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn pem_problem(e: pem::Error) -> String {
    format!("malformed PEM ({e})")
}

/// Every certificate in a PEM file, in order (at least one).
fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(setting, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(setting, path, pem_problem(e)))?;
    if chain.is_empty() {
        return Err(content(
            setting,
            path,
            "no certificate in the file (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("--keyfile", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => content(
            "--keyfile",
            path,
            "no private key in the file (expected PEM: -----BEGIN PRIVATE KEY-----, RSA or EC)",
        ),
        e => content("--keyfile", path, pem_problem(e)),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("--ca-certs", path)? {
        roots
            .add(cert)
            .map_err(|e| content("--ca-certs", path, format!("unusable certificate: {e}")))?;
    }
    Ok(roots)
}

/// The suites named in `--ciphers`, in that order.
fn cipher_suites(
    names: &[String],
    known: &[rustls::SupportedCipherSuite],
) -> Result<Vec<rustls::SupportedCipherSuite>, TlsError> {
    let name_of = |suite: &rustls::SupportedCipherSuite| suite.suite().as_str().unwrap_or("");
    names
        .iter()
        .map(|name| {
            known
                .iter()
                .find(|suite| name_of(suite).eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| {
                    let all: Vec<&str> = known.iter().map(name_of).collect();
                    TlsError::Settings(format!(
                        "--ciphers: unknown cipher suite {name:?} (known: {})",
                        all.join(", ")
                    ))
                })
        })
        .collect()
}
