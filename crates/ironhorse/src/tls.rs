//! `--certfile` and friends: the TLS configuration read from the settings' files (at start
//! and on every `HUP`, since the app source is built anew then), and the TLS protocol put
//! around the HTTP protocol.

use std::sync::Arc;

use ironhorse_server::session::Protocol;
use ironhorse_tls::{TlsConfig, TlsProtocol, TlsSettings};

use crate::settings::Settings;
use crate::values::SettingError;

/// The TLS configuration, `None` without `--certfile`. A missing, unreadable or malformed
/// file, or a key that does not match the certificate, is one line naming the file.
pub fn config(settings: &Settings) -> Result<Option<Arc<TlsConfig>>, SettingError> {
    let Some(certfile) = settings.certfile.clone() else {
        if let Some(orphan) = [
            ("--keyfile", &settings.keyfile),
            ("--ca-certs", &settings.ca_certs),
        ]
        .iter()
        .find_map(|(name, value)| value.as_ref().map(|_| name))
        {
            return Err(SettingError(format!(
                "{orphan} needs --certfile (TLS is off without it)"
            )));
        }
        return Ok(None);
    };
    let keyfile = settings.keyfile.clone().ok_or_else(|| {
        SettingError("--certfile needs --keyfile (the certificate's private key)".into())
    })?;
    let tls = TlsSettings {
        certfile,
        keyfile,
        ca_certs: settings.ca_certs.clone(),
        cert_reqs: settings.cert_reqs,
        min_version: settings.tls_min_version,
        handshake_timeout: settings.ssl_handshake_timeout,
    };
    TlsConfig::load(&tls)
        .map(|config| Some(Arc::new(config)))
        .map_err(|e| SettingError(e.to_string()))
}

/// `http` behind TLS: HTTP/1.1 for every client (no other ALPN protocol yet).
pub fn protocol(config: &Arc<TlsConfig>, http: Arc<dyn Protocol>) -> Arc<dyn Protocol> {
    Arc::new(TlsProtocol::new(config.clone(), Vec::new(), http))
}
