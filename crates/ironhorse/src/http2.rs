//! HTTP/2 as the settings ask for it (`--http-protocols`, `--http2-*`): which ways in are
//! offered (TLS ALPN `h2`, h2c by prior knowledge through HTTP/1.1's hand-off), which
//! models may host it, and the protocol itself.

use std::sync::Arc;

use ironhorse_app::Service;
use ironhorse_h2::{H2Settings, Http2};
use ironhorse_log::AccessLog;
use ironhorse_protocol::session::Protocol;
use ironhorse_protocol::HttpSettings;
use ironhorse_runtime::Driver;
use ironhorse_wire::forwarded::Policy;

use crate::app::Shape;
use crate::settings::Settings;
use crate::values::SettingError;

/// `--http-protocols`: what is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    pub h1: bool,
    pub h2: bool,
}

pub fn protocols(text: &str) -> Result<Protocols, String> {
    let mut offered = Protocols {
        h1: false,
        h2: false,
    };
    for item in text.split(',').map(str::trim) {
        match item {
            "h1" | "http/1.1" => offered.h1 = true,
            "h2" => offered.h2 = true,
            _ => {
                return Err(format!(
                    "unknown protocol {item:?}; expected h1, h2 or h1,h2"
                ))
            }
        }
    }
    Ok(offered)
}

/// `--http2-cleartext`: how HTTP/2 without TLS (h2c) is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleartext {
    Off,
    /// Connections that open with the HTTP/2 preface (RFC 9113 §3.3).
    PriorKnowledge,
    /// HTTP/1.1 requests with `Upgrade: h2c` (RFC 7540 §3.2; deprecated by RFC 9113).
    Upgrade,
    /// Either.
    Both,
}

impl Cleartext {
    /// Whether a connection opening with the HTTP/2 preface switches to HTTP/2.
    pub fn prior_knowledge(self) -> bool {
        matches!(self, Cleartext::PriorKnowledge | Cleartext::Both)
    }

    /// Whether `Upgrade: h2c` is accepted.
    pub fn upgrade(self) -> bool {
        matches!(self, Cleartext::Upgrade | Cleartext::Both)
    }
}

pub fn cleartext(text: &str) -> Result<Cleartext, String> {
    match text.trim() {
        "off" => Ok(Cleartext::Off),
        "prior-knowledge" => Ok(Cleartext::PriorKnowledge),
        "upgrade" => Ok(Cleartext::Upgrade),
        "both" => Ok(Cleartext::Both),
        _ => Err("expected off, prior-knowledge, upgrade or both".into()),
    }
}

/// HTTP/2 as offered: made once per application (in each worker for per-process apps).
#[derive(Clone)]
pub struct Offer {
    settings: H2Settings,
}

impl Offer {
    /// What the settings ask for: `None` when HTTP/2 is not offered. Refuses what cannot
    /// work, in one line.
    pub fn from_settings(
        settings: &Settings,
        http: &HttpSettings,
        shape: &Shape,
        tls: bool,
    ) -> Result<Option<Offer>, SettingError> {
        let offered = settings.http_protocols;
        if !offered.h1 {
            return Err(SettingError(
                "--http-protocols: h1 must be offered (HTTP/1.1 is the fallback of TLS and h2c)"
                    .into(),
            ));
        }
        if !offered.h2 {
            if settings.http2_cleartext != Cleartext::Off {
                return Err(SettingError(
                    "--http2-cleartext needs h2 in --http-protocols".into(),
                ));
            }
            return Ok(None);
        }
        if !matches!(shape.driver, Driver::Event | Driver::Async) {
            return Err(SettingError(format!(
                "--http-protocols h2 needs --model event or async (model {} cannot read a connection while its requests run)",
                settings.model.name
            )));
        }
        if settings.http2_cleartext == Cleartext::Off && !tls {
            return Err(SettingError(
                "--http-protocols h2 needs TLS (--certfile) or --http2-cleartext prior-knowledge, upgrade or both"
                    .into(),
            ));
        }
        let frame = settings.http2_max_frame_size;
        if !(16_384..=16_777_215).contains(&frame) {
            return Err(SettingError(format!(
                "--http2-max-frame-size: {frame} is outside 16384..16777215 (RFC 9113 §6.5.2)"
            )));
        }
        if settings.http2_initial_window_size > 0x7fff_ffff {
            return Err(SettingError(
                "--http2-initial-window-size: at most 2147483647 (RFC 9113 §6.9.2)".into(),
            ));
        }
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Some(Offer {
            settings: H2Settings {
                max_concurrent_streams: clamp(settings.http2_max_concurrent_streams as u64),
                initial_window_size: clamp(settings.http2_initial_window_size),
                max_frame_size: clamp(frame),
                max_header_list_size: clamp(settings.http2_max_header_list_size),
                limits: http.limits,
                keepalive_timeout: http.keepalive_timeout,
                handshake_timeout: http.header_timeout,
                graceful_timeout: settings.graceful_timeout,
                offload_threads: http.offload_threads,
                request_timeout: http.request_timeout,
                body_timeout: http.body_timeout,
                buffer_body: http.buffer_body,
                buffer_body_memory: http.buffer_body_memory,
            },
        }))
    }

    /// HTTP/2 serving `service` (the same service as HTTP/1.1: its streams share the
    /// application and its thread pool size, and whose forwarding headers are believed).
    pub fn protocol(
        &self,
        service: Arc<dyn Service>,
        log: &Option<AccessLog>,
        forwarded: Policy,
    ) -> Arc<dyn Protocol> {
        let h2 = Http2::new(service, self.settings).with_forwarded(forwarded);
        Arc::new(match log {
            Some(log) => h2.with_access_log(log.clone()),
            None => h2,
        })
    }
}

/// The ALPN list for TLS: `h2` when HTTP/2 is offered.
pub fn alpn(h2: Option<Arc<dyn Protocol>>) -> Vec<(Vec<u8>, Arc<dyn Protocol>)> {
    h2.map(|p| (b"h2".to_vec(), p)).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_and_cleartext_take_gunicorns_words() {
        assert_eq!(protocols("h1,h2"), Ok(Protocols { h1: true, h2: true }));
        assert_eq!(protocols("h2, h1"), Ok(Protocols { h1: true, h2: true }));
        assert_eq!(
            protocols("h1"),
            Ok(Protocols {
                h1: true,
                h2: false
            })
        );
        assert!(protocols("h3").is_err());
        assert_eq!(cleartext("prior-knowledge"), Ok(Cleartext::PriorKnowledge));
        assert_eq!(cleartext("off"), Ok(Cleartext::Off));
        assert_eq!(cleartext("upgrade"), Ok(Cleartext::Upgrade));
        assert!(cleartext("both").is_ok_and(|c| c.prior_knowledge() && c.upgrade()));
        assert!(cleartext("sometimes").is_err());
    }
}
