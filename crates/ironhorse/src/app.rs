//! What the server serves: static files, a WSGI application behind static mounts, or one of
//! the seeds' raw TCP protocols — and where it is built (before or after forking).

use std::path::PathBuf;
use std::sync::Arc;

use ironhorse_app::{Router, Service};
use ironhorse_h1::Limits;
use ironhorse_log::AccessLog;
use ironhorse_server::drivers::Driver;
use ironhorse_server::process::{AppSource, Processes};
use ironhorse_server::protocols::{Echo, Http, HttpSettings, Reverse};
use ironhorse_server::session::Protocol;
use ironhorse_static::{StaticFiles, StaticOptions};
use ironhorse_wsgi::{WsgiApp, WsgiConfig};

use crate::settings::SettingError;
use crate::values::Values;

/// How the serving processes and threads are arranged, which the app must know about
/// (`wsgi.multithread`, `wsgi.multiprocess`, whether it may be imported before forking).
#[derive(Clone)]
pub struct Shape {
    pub strategy: Processes,
    pub driver: Driver,
    pub threads: usize,
    pub access_log: Option<AccessLog>,
}

/// Builds the application source from the settings.
pub fn build(values: &Values, shape: &Shape) -> Result<AppSource, SettingError> {
    let protocol = values.text("protocol").unwrap_or_default();
    // `http+echo`: HTTP, where a request may switch its connection to echo (`Upgrade: echo`,
    // or the HTTP/2 preface): the seeds' exercise of the protocol hand-off.
    let upgrade_echo = protocol == "http+echo";
    match protocol.as_str() {
        "http" | "http+echo" => {}
        "echo" => return Ok(AppSource::Preloaded(Arc::new(Echo))),
        "reverse" => {
            let work_delay = values.seconds("work-delay")?.unwrap_or_default();
            return Ok(AppSource::Preloaded(Arc::new(Reverse { work_delay })));
        }
        other => {
            return Err(SettingError(format!(
                "--protocol: unknown protocol {other:?}; choose http, http+echo, echo or reverse"
            )))
        }
    }
    let settings = http_settings(values, shape)?;
    let http = move |service, settings, access_log: &Option<AccessLog>| {
        http(service, settings, access_log, upgrade_echo)
    };
    let mounts = static_mounts(values)?;
    let Some(spec) = values.text("app") else {
        let root = values.text("root").ok_or_else(|| {
            SettingError("nothing to serve: give an app (MODULE:CALLABLE) or --root DIR".into())
        })?;
        let options = StaticOptions {
            autoindex: values.flag("autoindex"),
            ..StaticOptions::default()
        };
        let files =
            StaticFiles::new(&root, options).map_err(|e| SettingError(format!("--root: {e}")))?;
        let service: Arc<dyn Service> = Arc::new(files);
        return Ok(AppSource::Preloaded(http(
            with_mounts(service, &mounts),
            settings,
            &shape.access_log,
        )));
    };
    if values.text("root").is_some() {
        return Err(SettingError("--root serves a folder without an app; with an app, mount folders with --static PREFIX=DIR".into()));
    }
    let config = wsgi_config(values, spec, shape);
    let access_log = shape.access_log.clone();
    let load = move || -> Result<Arc<dyn Protocol>, String> {
        let app = WsgiApp::load(config.clone()).map_err(|e| e.to_string())?;
        Ok(http(
            with_mounts(Arc::new(app), &mounts),
            settings,
            &access_log,
        ))
    };
    // Import before forking when asked, and always where nothing forks workers: the fork
    // model forks per connection, so every child starts from the imported app.
    let preload = values.flag("preload") || shape.strategy != Processes::Prefork;
    if preload {
        load().map(AppSource::Preloaded).map_err(SettingError)
    } else {
        Ok(AppSource::PerProcess(Arc::new(load)))
    }
}

fn http(
    service: Arc<dyn Service>,
    settings: HttpSettings,
    access_log: &Option<AccessLog>,
    upgrade_echo: bool,
) -> Arc<dyn Protocol> {
    let mut http = Http::new(service, settings);
    if upgrade_echo {
        http = http
            .with_upgrade("echo", Arc::new(Echo))
            .with_prior_knowledge(Arc::new(Echo));
    }
    Arc::new(match access_log {
        Some(log) => http.with_access_log(log.clone()),
        None => http,
    })
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

fn static_mounts(values: &Values) -> Result<Vec<(String, Arc<StaticFiles>)>, SettingError> {
    values
        .list("static")
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
                ..StaticOptions::default()
            };
            let files = StaticFiles::new(dir, options)
                .map_err(|e| SettingError(format!("--static {spec}: {e}")))?;
            Ok((prefix.to_string(), Arc::new(files)))
        })
        .collect()
}

fn wsgi_config(values: &Values, spec: String, shape: &Shape) -> WsgiConfig {
    let mut config = WsgiConfig::new(spec);
    config.chdir = values.text("chdir").map(PathBuf::from);
    config.pythonpath = values
        .list("pythonpath")
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    config.virtualenv = values.text("virtualenv").map(PathBuf::from);
    config.root_path = values
        .text("root-path")
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    config.debug = values.flag("debug");
    config.multiprocess = shape.strategy != Processes::Single;
    config.multithread = match shape.driver {
        Driver::Serial => false,
        Driver::ThreadPerConnection => true,
        Driver::ThreadPool | Driver::Event | Driver::Async => shape.threads > 1,
    };
    if let Some(port) = values
        .list("bind")
        .iter()
        .find_map(|b| b.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
    {
        config.server_port = port;
    }
    config
}

fn http_settings(values: &Values, shape: &Shape) -> Result<HttpSettings, SettingError> {
    let defaults = HttpSettings::default();
    let limits = Limits {
        max_request_line: values
            .bytes("limit-request-line")?
            .map_or(defaults.limits.max_request_line, |v| v as usize),
        max_headers: values
            .count("limit-request-fields")?
            .unwrap_or(defaults.limits.max_headers),
        max_header_size: values
            .bytes("limit-request-field-size")?
            .map_or(defaults.limits.max_header_size, |v| v as usize),
        max_body: values
            .bytes("limit-request-body")?
            .unwrap_or(defaults.limits.max_body),
        ..defaults.limits
    };
    Ok(HttpSettings {
        limits,
        keepalive_timeout: values
            .seconds("keep-alive")?
            .unwrap_or(defaults.keepalive_timeout),
        header_timeout: values
            .seconds("header-timeout")?
            .unwrap_or(defaults.header_timeout),
        body_timeout: values
            .seconds("body-timeout")?
            .unwrap_or(defaults.body_timeout),
        offload_threads: shape.threads,
        request_timeout: values.seconds("request-timeout")?.filter(|t| !t.is_zero()),
        // A worker whose only thread is stuck can only be freed by replacing the process.
        exit_when_stuck: shape.driver == Driver::Serial && shape.strategy != Processes::Single,
    })
}
