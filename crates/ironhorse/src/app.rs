//! What the server serves: static files, a WSGI application behind static mounts, or one of
//! the seeds' raw TCP protocols — and where it is built (before or after forking).

use std::sync::Arc;

use ironhorse_app::{Router, Service};
use ironhorse_h1::Limits;
use ironhorse_log::AccessLog;
use ironhorse_process::{AppSource, Processes};
use ironhorse_protocol::session::Protocol;
use ironhorse_protocol::{Echo, Http, HttpSettings, ProxyHeader, Reverse, Uwsgi};
use ironhorse_runtime::Driver;
use ironhorse_static::{StaticFiles, StaticOptions};
use ironhorse_wire::forwarded::Policy;
use ironhorse_wsgi::WsgiConfig;

use crate::health::{Health, Serving};
use crate::settings::Settings;
use crate::units::Wire;
use crate::values::SettingError;

/// How the serving processes and threads are arranged, which the app must know about
/// (`wsgi.multithread`, `wsgi.multiprocess`, whether it may be imported before forking).
#[derive(Clone)]
pub struct Shape {
    pub strategy: Processes,
    pub driver: Driver,
    pub threads: usize,
    pub access_log: Option<AccessLog>,
    /// For the WSGI bridge's own lines (client errors).
    pub error_log: Option<ironhorse_log::ErrorLog>,
    /// `--reload`: an app that fails to import is answered with 500s instead of stopping
    /// the server (see `reload::LoadFailed`).
    pub serve_load_errors: bool,
    /// `--certfile`: the TLS configuration for the server's life (re-read on HUP).
    pub tls: Option<Arc<ironhorse_tls::ServerConfigSource>>,
}

/// Builds the application source from the settings: the protocol, behind a PROXY protocol
/// header when `--proxy-protocol` asks for one.
pub fn build(settings: &Settings, shape: &Shape) -> Result<AppSource, SettingError> {
    if let Some(path) = settings
        .health_path
        .as_deref()
        .filter(|p| !p.starts_with('/'))
    {
        return Err(SettingError(format!(
            "--health-path: the path must start with '/', got {path:?}"
        )));
    }
    let mut source = build_protocol(settings, shape)?;
    // TLS inside the PROXY header: a load balancer sends its header first, then the
    // client's TLS bytes (as HAProxy does with `send-proxy`). HTTP put TLS around itself
    // already (offering HTTP/2 by ALPN); the raw TCP protocols get it here.
    let is_http = matches!(settings.protocol, Wire::Http | Wire::HttpEcho);
    if let Some(tls) = shape.tls.clone().filter(|_| !is_http) {
        source = wrap_source(source, move |inner| {
            crate::tls::protocol(&tls, Vec::new(), inner)
        });
    }
    let Some(versions) = settings.proxy_protocol.0 else {
        return Ok(source);
    };
    let (allow, timeout) = (settings.proxy_allow_from.clone(), settings.header_timeout);
    Ok(wrap_source(source, move |inner| {
        Arc::new(ProxyHeader::new(inner, allow.clone(), versions, timeout))
    }))
}

/// `source`'s protocol inside another, made by `wrap` (in each worker for per-process apps).
fn wrap_source(
    source: AppSource,
    wrap: impl Fn(Arc<dyn Protocol>) -> Arc<dyn Protocol> + Send + Sync + 'static,
) -> AppSource {
    match source {
        AppSource::Preloaded(inner) => AppSource::Preloaded(wrap(inner)),
        AppSource::PerProcess(factory) => {
            AppSource::PerProcess(Arc::new(move || factory().map(&wrap)))
        }
    }
}

// Long on purpose: the one place where settings become the protocol stack; the `http` and
// `load` closures capture the pieces built just above them.
fn build_protocol(settings: &Settings, shape: &Shape) -> Result<AppSource, SettingError> {
    // `http+echo`: HTTP, where a request may switch its connection to echo (`Upgrade: echo`,
    // or the HTTP/2 preface): the seeds' exercise of the protocol hand-off.
    let upgrade_echo = settings.protocol == Wire::HttpEcho;
    match settings.protocol {
        Wire::Http | Wire::HttpEcho | Wire::Uwsgi => {}
        Wire::Echo => return Ok(AppSource::Preloaded(Arc::new(Echo))),
        Wire::Reverse => {
            let work_delay = settings.work_delay;
            return Ok(AppSource::Preloaded(Arc::new(Reverse { work_delay })));
        }
    }
    let http_settings = http_settings(settings, shape);
    let health = settings.health_path.clone();
    let policy = forwarding_policy(settings);
    let uwsgi = (settings.protocol == Wire::Uwsgi).then(|| UwsgiFront::new(settings));
    let tls = shape.tls.clone();
    let h2c = settings.http2_cleartext;
    let h2 = crate::http2::Offer::from_settings(settings, &http_settings, shape, tls.is_some())?;
    let http = move |service, settings, access_log: &Option<AccessLog>| {
        let service = with_health(service, &health);
        let http = http(service.clone(), settings, upgrade_echo);
        let http = http.with_forwarded(policy.clone());
        let h2 = (h2.as_ref()).map(|offer| offer.protocol(service, access_log, policy.clone()));
        // h2c is cleartext HTTP/2: under TLS, ALPN offers h2 instead, and a client that
        // chose http/1.1 (or nothing) speaks HTTP/1.1 (RFC 9113 §3.3).
        let http = match &h2 {
            Some(h2) if h2c.prior_knowledge() && tls.is_none() => {
                http.with_prior_knowledge(h2.clone())
            }
            _ => http,
        };
        let http = match &h2 {
            Some(h2) if h2c.upgrade() && tls.is_none() => http.with_upgrade("h2c", h2.clone()),
            _ => http,
        };
        let http = match access_log {
            Some(log) => http.with_access_log(log.clone()),
            None => http,
        };
        let http = match &uwsgi {
            Some(front) => front.wrap(http),
            None => Arc::new(http) as Arc<dyn Protocol>,
        };
        match &tls {
            Some(tls) => crate::tls::protocol(tls, crate::http2::alpn(h2), http),
            None => http,
        }
    };
    let mounts = static_mounts(settings)?;
    let Some(spec) = settings.app.clone() else {
        let root = settings.root.as_ref().ok_or_else(|| {
            SettingError("nothing to serve: give an app (MODULE:CALLABLE) or --root DIR".into())
        })?;
        let options = StaticOptions {
            autoindex: settings.autoindex,
            cache: static_cache(settings),
            ..StaticOptions::default()
        };
        let files =
            StaticFiles::new(root, options).map_err(|e| SettingError(format!("--root: {e}")))?;
        let service: Arc<dyn Service> = Arc::new(files);
        return Ok(AppSource::Preloaded(http(
            with_mounts(service, &mounts),
            http_settings,
            &shape.access_log,
        )));
    };
    if settings.root.is_some() {
        return Err(SettingError("--root serves a folder without an app; with an app, mount folders with --static PREFIX=DIR".into()));
    }
    let config = wsgi_config(settings, spec, shape);
    let access_log = shape.access_log.clone();
    let (serve_load_errors, debug, error_log) = (
        shape.serve_load_errors,
        settings.debug,
        shape.error_log.clone(),
    );
    let interface = crate::interface::Choice::new(settings, shape);
    let load = move || -> Result<Arc<dyn Protocol>, String> {
        let app: Arc<dyn Service> = match interface.load(&config) {
            Ok(app) => app,
            Err(e) if serve_load_errors => crate::reload::load_failed(e, debug, &error_log),
            Err(e) => return Err(e),
        };
        Ok(http(with_mounts(app, &mounts), http_settings, &access_log))
    };
    // Import before forking when asked, and always where nothing forks workers: the fork
    // model forks per connection, so every child starts from the imported app.
    let preload = settings.preload || shape.strategy != Processes::Prefork;
    if preload {
        load().map(AppSource::Preloaded).map_err(SettingError)
    } else {
        Ok(AppSource::PerProcess(Arc::new(load)))
    }
}

fn http(service: Arc<dyn Service>, settings: HttpSettings, upgrade_echo: bool) -> Http {
    let http = Http::new(service, settings);
    if !upgrade_echo {
        return http;
    }
    http.with_upgrade("echo", Arc::new(Echo))
        .with_prior_knowledge(Arc::new(Echo))
}

/// `--protocol uwsgi`: request packets from `--uwsgi-allow-from`, in front of HTTP.
#[derive(Clone)]
struct UwsgiFront {
    allow: ironhorse_wire::AllowList,
    limits: ironhorse_wire::uwsgi::Limits,
    timeout: std::time::Duration,
}

impl UwsgiFront {
    fn new(settings: &Settings) -> UwsgiFront {
        UwsgiFront {
            allow: settings.uwsgi_allow_from.clone(),
            limits: ironhorse_wire::uwsgi::Limits {
                // The whole 16-bit block; as many variables as headers allowed over HTTP,
                // plus room for nginx's `uwsgi_params` (15) and a site's own.
                max_block: usize::from(u16::MAX),
                max_vars: settings.limit_request_fields + 64,
            },
            timeout: settings.header_timeout,
        }
    }

    /// `http`, answering as uWSGI does (no chunked framing), behind uwsgi packets.
    fn wrap(&self, http: Http) -> Arc<dyn Protocol> {
        let inner = Arc::new(http.close_delimited());
        Arc::new(Uwsgi::new(
            inner,
            self.allow.clone(),
            self.limits,
            self.timeout,
        ))
    }
}

/// Whose forwarding headers are believed, and which (`--forwarded-*`).
fn forwarding_policy(settings: &Settings) -> Policy {
    Policy {
        allow: settings.forwarded_allow_ips.clone(),
        headers: settings.forwarded_headers,
        secure_scheme_headers: settings.secure_scheme_headers.clone(),
    }
}

/// `service`, with `--health-path` answered in front of it.
fn with_health(service: Arc<dyn Service>, path: &Option<String>) -> Arc<dyn Service> {
    let Some(path) = path else {
        return service;
    };
    let serving: Serving = Arc::new(|| ironhorse_sys::signals::stop_requested().is_none());
    Arc::new(Health::new(path.clone(), service, serving))
}

fn with_mounts(app: Arc<dyn Service>, mounts: &[(String, Arc<StaticFiles>)]) -> Arc<dyn Service> {
    if mounts.is_empty() {
        return app;
    }
    let router = mounts
        .iter()
        .fold(Router::new(app), |router, (prefix, files)| {
            router.mount(prefix, files.clone())
        });
    Arc::new(router)
}

/// The open-file cache of each static mount, from the settings.
fn static_cache(settings: &Settings) -> ironhorse_static::CacheOptions {
    ironhorse_static::CacheOptions {
        entries: settings.static_cache_entries,
        bytes: settings.static_cache_bytes,
        valid: settings.static_cache_valid,
    }
}

fn static_mounts(settings: &Settings) -> Result<Vec<(String, Arc<StaticFiles>)>, SettingError> {
    settings
        .static_mounts
        .iter()
        .map(|spec| {
            let (prefix, dir) = spec.split_once('=').ok_or_else(|| {
                SettingError(format!("--static: expected PREFIX=DIR, got {spec:?}"))
            })?;
            if !prefix.starts_with('/') {
                return Err(SettingError(format!(
                    "--static: the prefix must start with '/', got {prefix:?}"
                )));
            }
            let options = StaticOptions {
                prefix: prefix.to_string(),
                cache: static_cache(settings),
                ..StaticOptions::default()
            };
            let files = StaticFiles::new(dir, options)
                .map_err(|e| SettingError(format!("--static {spec}: {e}")))?;
            Ok((prefix.to_string(), Arc::new(files)))
        })
        .collect()
}

fn wsgi_config(settings: &Settings, spec: String, shape: &Shape) -> WsgiConfig {
    let mut config = WsgiConfig::new(spec);
    config.chdir = settings.chdir.clone();
    config.pythonpath = settings.python_path();
    config.virtualenv = settings.virtualenv.clone();
    config.root_path = settings
        .root_path
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    config.debug = settings.debug;
    config.error_log = shape.error_log.clone();
    config.forwarded = forwarding_policy(settings);
    config.multiprocess = shape.strategy != Processes::Single;
    config.multithread = match shape.driver {
        Driver::Serial | Driver::ReadAhead => false,
        Driver::ThreadPerConnection => true,
        Driver::ThreadPool | Driver::Event | Driver::Async => shape.threads > 1,
    };
    if let Some(port) = settings
        .bind
        .iter()
        .find_map(|b| b.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
    {
        config.server_port = port;
    }
    config
}

/// The HTTP settings, every one from the command's settings (their defaults are declared
/// there, not taken from `HttpSettings::default()`).
fn http_settings(settings: &Settings, shape: &Shape) -> HttpSettings {
    let limits = Limits {
        max_request_line: usize::try_from(settings.limit_request_line).unwrap_or(usize::MAX),
        max_headers: settings.limit_request_fields,
        max_header_size: usize::try_from(settings.limit_request_field_size).unwrap_or(usize::MAX),
        max_head: match settings.limit_request_head {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
        max_body: settings.limit_request_body,
        // Not a setting: how much of an unread body is discarded to keep a connection.
        ..Limits::default()
    };
    HttpSettings {
        limits,
        keepalive_timeout: settings.keep_alive,
        header_timeout: settings.header_timeout,
        body_timeout: settings.body_timeout,
        offload_threads: shape.threads,
        request_timeout: settings.request_timeout.filter(|t| !t.is_zero()),
        // A worker whose only thread is stuck can only be freed by replacing the process.
        exit_when_stuck: matches!(shape.driver, Driver::Serial | Driver::ReadAhead)
            && shape.strategy != Processes::Single,
        ws_max_message_size: usize::try_from(settings.ws_max_message_size).unwrap_or(usize::MAX),
        ws_ping_interval: Some(settings.ws_ping_interval).filter(|d| !d.is_zero()),
        ws_ping_timeout: Some(settings.ws_ping_timeout).filter(|d| !d.is_zero()),
        ws_close_timeout: settings.ws_close_timeout,
        buffer_body: settings.buffer_request_body,
        buffer_body_memory: settings.buffer_request_body_memory,
    }
}
