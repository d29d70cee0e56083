//! `--certfile` and friends: the TLS configuration read from the settings' files, once at
//! start and again on every `HUP` (replaced in the one [`ServerConfigSource`] the protocol
//! reads, so workers forked after a reload get the new certificates even when the app was
//! built once in the master), and the TLS protocol put around the HTTP protocol.

use std::sync::Arc;

use ironhorse_protocol::session::Protocol;
use ironhorse_tls::{CertFiles, ServerConfigSource, TlsConfig, TlsProtocol, TlsSettings};

use crate::settings::Settings;
use crate::values::SettingError;

/// The TLS configuration, `None` without `--certfile`. A missing, unreadable or malformed
/// file, or a key that does not match the certificate, is one line naming the file.
pub fn config(settings: &Settings) -> Result<Option<TlsConfig>, SettingError> {
    if settings.certfile.is_empty() {
        if settings.keyfile.is_empty() && settings.ca_certs.is_none() {
            return Ok(None);
        }
        let orphan = if settings.keyfile.is_empty() {
            "--ca-certs"
        } else {
            "--keyfile"
        };
        return Err(SettingError(format!(
            "{orphan} needs --certfile (TLS is off without it)"
        )));
    }
    let certs = cert_files(settings)?;
    let tls = TlsSettings {
        certs,
        ca_certs: settings.ca_certs.clone(),
        cert_reqs: settings.cert_reqs,
        min_version: settings.tls_min_version,
        ciphers: settings.ciphers.as_ref().map(|list| {
            list.split([',', ':'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }),
        handshake_timeout: settings.ssl_handshake_timeout,
    };
    TlsConfig::load(&tls)
        .map(Some)
        .map_err(|e| SettingError(e.to_string()))
}

/// The `--certfile`/`--keyfile` pairs, in order: one key per certificate.
fn cert_files(settings: &Settings) -> Result<Vec<CertFiles>, SettingError> {
    let (certs, keys) = (&settings.certfile, &settings.keyfile);
    if certs.len() != keys.len() {
        let times = |n: usize| match n {
            0 => "not at all".to_string(),
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        return Err(SettingError(format!(
            "--certfile is given {} but --keyfile {}: each certificate needs its private key, in the same order",
            times(certs.len()),
            times(keys.len())
        )));
    }
    Ok(certs
        .iter()
        .zip(keys)
        .map(|(certfile, keyfile)| CertFiles {
            certfile: certfile.clone(),
            keyfile: keyfile.clone(),
        })
        .collect())
}

/// The source of the TLS configuration for the server's life, `None` without `--certfile`.
pub fn source(settings: &Settings) -> Result<Option<Arc<ServerConfigSource>>, SettingError> {
    Ok(config(settings)?.map(|config| Arc::new(ServerConfigSource::new(config))))
}

/// On `HUP`: the files read again into `source`. TLS cannot be switched on or off by a
/// reload (the sockets' clients would not expect it): that needs a restart.
pub fn reload(
    settings: &Settings,
    source: &Option<Arc<ServerConfigSource>>,
) -> Result<(), SettingError> {
    match (config(settings)?, source) {
        (Some(config), Some(source)) => {
            source.replace(config);
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(SettingError(
            "--certfile cannot be added or removed by a reload; restart the server".into(),
        )),
    }
}

/// `http` behind TLS, offering the `alpn` protocols first (HTTP/2 as `h2`); HTTP/1.1
/// for clients that choose none of them.
pub fn protocol(
    source: &Arc<ServerConfigSource>,
    alpn: Vec<(Vec<u8>, Arc<dyn Protocol>)>,
    http: Arc<dyn Protocol>,
) -> Arc<dyn Protocol> {
    Arc::new(TlsProtocol::new(source.clone(), alpn, http))
}
