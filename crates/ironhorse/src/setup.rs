//! From settings to a bound, ready server: validation, binding, the application.

use std::time::Duration;

use ironhorse_server::drivers::Driver;
use ironhorse_server::listener::{BindAddr, Listener};
use ironhorse_server::model::Model;
use ironhorse_server::process::{self, Processes, ServerPlan};

use crate::app;
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
        let threads = values.count("threads")?.unwrap_or(16);
        let runtime_threads = values.count("runtime-threads")?.unwrap_or(1);
        if threads == 0 || runtime_threads == 0 {
            return Err(SettingError(
                "--threads / --runtime-threads: must be at least 1".into(),
            ));
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
        let listeners = bind_all(values)?;
        let shape = app::Shape {
            strategy,
            driver: model.driver,
            threads,
        };
        let app = app::build(values, &shape)?;
        Ok(Server {
            model,
            strategy,
            plan: ServerPlan {
                listeners,
                app,
                driver: model.driver,
                workers,
                threads: if model.driver == Driver::Async {
                    runtime_threads
                } else {
                    threads
                },
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
