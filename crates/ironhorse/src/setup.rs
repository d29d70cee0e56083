//! From settings to a bound, ready server: validation, binding, the application.

use std::sync::Arc;
use std::time::Duration;

use ironhorse_h1::Limits;
use ironhorse_server::listener::{BindAddr, Listener};
use ironhorse_server::model::Model;
use ironhorse_server::process::{self, AppSource, Processes, ServerPlan};
use ironhorse_server::protocols::{Echo, Http, HttpSettings, Reverse};
use ironhorse_server::session::Protocol;
use ironhorse_static::{StaticFiles, StaticOptions};

use crate::settings::{SettingError, Values};

/// A validated server, its sockets bound.
pub struct Server {
    model: &'static Model,
    strategy: Processes,
    plan: ServerPlan,
}

impl Server {
    pub fn from_settings(values: &Values) -> Result<Server, SettingError> {
        let model_name = values.text("model").unwrap_or_default();
        let model = Model::named(&model_name).ok_or_else(|| {
            SettingError(format!(
                "--model: unknown model {model_name:?}; choose one of {}",
                Model::names().join(", ")
            ))
        })?;
        let workers = values.count("workers")?.unwrap_or(1);
        if workers == 0 {
            return Err(SettingError("--workers: must be at least 1".into()));
        }
        let threads = values
            .count("threads")?
            .unwrap_or(if model.name == "async" { 1 } else { 16 });
        if threads == 0 {
            return Err(SettingError("--threads: must be at least 1".into()));
        }
        let strategy = model.processes_for(workers);
        let max_connections = match strategy {
            Processes::ForkPerConnection => values.count("max-children")?.unwrap_or(512),
            _ => values
                .count("max-connections")?
                .unwrap_or(if model.name == "thread" { 1000 } else { 50_000 }),
        };
        if max_connections == 0 {
            return Err(SettingError(
                "--max-connections / --max-children: must be at least 1".into(),
            ));
        }
        let graceful_timeout = values
            .seconds("graceful-timeout")?
            .unwrap_or(Duration::from_secs(30));
        let protocol = build_protocol(values, threads)?;
        let listeners = bind_all(values)?;
        Ok(Server {
            model,
            strategy,
            plan: ServerPlan {
                listeners,
                app: AppSource::Preloaded(protocol),
                driver: model.driver,
                workers,
                threads,
                max_connections,
                graceful_timeout,
            },
        })
    }

    /// Announces the addresses and serves until stopped; returns the exit code.
    pub fn run(self) -> i32 {
        let announcement: Vec<String> = self
            .plan
            .listeners
            .iter()
            .map(|listener| {
                format!(
                    "[ironhorse] [{}] listening on {} (model {}, {})",
                    std::process::id(),
                    listener.display_addr(),
                    self.model.name,
                    self.model.seed_name
                )
            })
            .collect();
        process::run(self.strategy, self.plan, || {
            for line in announcement {
                eprintln!("{line}");
            }
        })
    }
}

fn build_protocol(values: &Values, threads: usize) -> Result<Arc<dyn Protocol>, SettingError> {
    let name = values.text("protocol").unwrap_or_default();
    Ok(match name.as_str() {
        "http" => {
            let root = values
                .text("root")
                .ok_or_else(|| SettingError("nothing to serve: give --root DIR".into()))?;
            let options = StaticOptions {
                autoindex: values.flag("autoindex"),
                ..StaticOptions::default()
            };
            let files = StaticFiles::new(&root, options)
                .map_err(|e| SettingError(format!("--root: {e}")))?;
            Arc::new(Http::new(Arc::new(files), http_settings(values, threads)?))
        }
        "echo" => Arc::new(Echo),
        "reverse" => Arc::new(Reverse {
            work_delay: values.seconds("work-delay")?.unwrap_or_default(),
        }),
        other => {
            return Err(SettingError(format!(
                "--protocol: unknown protocol {other:?}; choose http, echo or reverse"
            )))
        }
    })
}

fn http_settings(values: &Values, threads: usize) -> Result<HttpSettings, SettingError> {
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
        offload_threads: threads,
    })
}

fn bind_all(values: &Values) -> Result<Vec<Listener>, SettingError> {
    let backlog = values
        .count("backlog")?
        .unwrap_or(2048)
        .min(i32::MAX as usize) as i32;
    let reuse_port = values.flag("reuse-port");
    values
        .list("bind")
        .iter()
        .map(|spec| {
            let addr = BindAddr::parse(spec).map_err(|e| SettingError(format!("--bind: {e}")))?;
            Listener::bind(&addr, backlog, reuse_port)
                .map_err(|e| SettingError(format!("--bind: cannot listen on {addr}: {e}")))
        })
        .collect()
}
