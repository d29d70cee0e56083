//! From settings to a bound, ready server: validation, binding, the application.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ironhorse_server::drivers::Driver;
use ironhorse_server::listener::{BindAddr, Listener};
use ironhorse_server::model::Model;
use ironhorse_server::process::{
    self, AppSource, Processes, ReloadFn, Reloaded, ServerPlan, Supervision,
};

use crate::settings::SettingError;
use crate::values::Values;
use crate::{app, logs};

/// A validated server, its sockets bound.
pub struct Server {
    model: &'static Model,
    strategy: Processes,
    plan: ServerPlan,
}

impl Server {
    pub fn from_settings(values: &Values) -> Result<Server, SettingError> {
        let Layout {
            model,
            workers,
            threads,
            runtime_threads,
            strategy,
            max_connections,
            graceful_timeout,
        } = Layout::from(values)?;
        let listeners = bind_all(values)?;
        apply_process_settings(values)?;
        if values.flag("daemon") {
            // After binding, so a port in use is still reported to the terminal.
            ironhorse_sys::daemonize().map_err(|e| SettingError(format!("--daemon: {e}")))?;
        }
        let logs = logs::Logs::open(values)?;
        let shape = app::Shape {
            strategy,
            driver: model.driver,
            threads,
            access_log: logs.access.clone(),
            error_log: Some(logs.error.clone()),
        };
        let app = app::build(values, &shape)?;
        let mut supervision = supervision(values, &app, shape)?;
        supervision.model = model.name;
        supervision.reopen_logs = Some(logs.reopener());
        if values.flag("reuse-port") && strategy == Processes::Prefork {
            let addrs: Vec<BindAddr> = listeners.iter().filter_map(|l| l.rebind_addr()).collect();
            if addrs.len() == listeners.len() {
                let backlog = values
                    .count("backlog")?
                    .unwrap_or(2048)
                    .min(i32::MAX as usize) as i32;
                supervision.per_worker_sockets = Some((addrs, backlog));
            }
        }
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
                supervision,
            },
        })
    }

    /// `--check-config`: validates every setting and loads the application, binding nothing.
    pub fn check(values: &Values) -> Result<(), SettingError> {
        let layout = Layout::from(values)?;
        for setting in crate::settings::SETTINGS {
            use crate::settings::Kind;
            match setting.kind {
                Kind::Count => drop(values.count(setting.name)?),
                Kind::Seconds => drop(values.seconds(setting.name)?),
                Kind::Bytes => drop(values.bytes(setting.name)?),
                _ => {}
            }
        }
        for spec in values.list("bind") {
            BindAddr::parse(&spec).map_err(|e| SettingError(format!("--bind: {e}")))?;
        }
        let shape = app::Shape {
            strategy: layout.strategy,
            driver: layout.model.driver,
            threads: layout.threads,
            access_log: None,
            error_log: None,
        };
        // Load the app here, even one that would be imported per worker: that is the check.
        match app::build(values, &shape)? {
            AppSource::Preloaded(_) => Ok(()),
            AppSource::PerProcess(load) => load().map(drop).map_err(SettingError),
        }
    }
}

/// How processes and threads are laid out, validated.
struct Layout {
    model: &'static Model,
    workers: usize,
    threads: usize,
    runtime_threads: usize,
    strategy: Processes,
    max_connections: usize,
    graceful_timeout: Duration,
}

impl Layout {
    fn from(values: &Values) -> Result<Layout, SettingError> {
        let model = model_named(&values.text("model").unwrap_or_default())?;
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
        Ok(Layout {
            model,
            workers,
            threads,
            runtime_threads,
            strategy,
            max_connections,
            graceful_timeout,
        })
    }
}

impl Server {
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
        let code = process::run(self.strategy, self.plan, || {
            for line in announcement {
                eprintln!("{line}");
            }
        });
        process::flush_logs();
        code
    }
}

/// A model by its name, or by gunicorn's worker class (`-k sync`, `-k gthread`).
fn model_named(name: &str) -> Result<&'static Model, SettingError> {
    let ours = match name {
        "sync" => "prefork",
        "gthread" => "hybrid",
        other => other,
    };
    Model::named(ours).ok_or_else(|| {
        SettingError(format!(
            "--model: unknown model {name:?}; choose one of {} (or gunicorn's sync, gthread)",
            Model::names().join(", ")
        ))
    })
}

/// Process-wide settings applied once the sockets are bound: environment, umask, user.
/// (`--daemon` is applied before anything else, in `main`.)
fn apply_process_settings(values: &Values) -> Result<(), SettingError> {
    for pair in values.list("env") {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| SettingError(format!("--env: expected KEY=VALUE, got {pair:?}")))?;
        if key.is_empty() {
            return Err(SettingError(format!("--env: empty name in {pair:?}")));
        }
        // Single-threaded here: no thread reads the environment concurrently.
        std::env::set_var(key, value);
    }
    if let Some(mask) = values.text("umask") {
        let mask = u32::from_str_radix(mask.trim_start_matches("0o"), 8).map_err(|_| {
            SettingError(format!(
                "--umask: expected an octal mask like 022, got {mask:?}"
            ))
        })?;
        ironhorse_sys::set_umask(mask);
    }
    let (user, group) = (values.text("user"), values.text("group"));
    if user.is_some() || group.is_some() {
        ironhorse_sys::drop_privileges(user.as_deref(), group.as_deref())
            .map_err(|e| SettingError(format!("--user/--group: {e}")))?;
    }
    Ok(())
}

/// How a master watches its workers, and how it reloads the configuration on `SIGHUP`.
fn supervision(
    values: &Values,
    app: &AppSource,
    shape: app::Shape,
) -> Result<Supervision, SettingError> {
    let preloaded = matches!(app, AppSource::Preloaded(_)).then(|| app.clone());
    let reload: ReloadFn = Arc::new(move || {
        let matches = crate::settings::command()
            .try_get_matches_from(std::env::args())
            .map_err(|e| e.to_string())?;
        let values = Values::load(matches).map_err(|e| e.to_string())?;
        let workers = values
            .count("workers")
            .map_err(|e| e.to_string())?
            .unwrap_or(1);
        // A preloaded app stays: it lives in the master (gunicorn does the same).
        let app = match &preloaded {
            Some(app) => app.clone(),
            None => app::build(&values, &shape).map_err(|e| e.to_string())?,
        };
        Ok(Reloaded { app, workers })
    });
    Ok(Supervision {
        timeout: values
            .seconds("timeout")?
            .unwrap_or(Duration::from_secs(30)),
        max_requests: values.count("max-requests")?.unwrap_or(0) as u64,
        max_requests_jitter: values.count("max-requests-jitter")?.unwrap_or(0) as u64,
        max_worker_memory: values.bytes("max-worker-memory")?,
        pidfile: values.text("pid").map(PathBuf::from),
        reload: Some(reload),
        reopen_logs: None,
        per_worker_sockets: None,
        name: values.text("name").unwrap_or_else(|| "ih".into()),
        model: "",
    })
}

fn bind_all(values: &Values) -> Result<Vec<Listener>, SettingError> {
    if let Some(inherited) = inherited_listeners()? {
        return Ok(inherited);
    }
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

/// Sockets handed over by systemd socket activation or by a master upgrading itself
/// (`LISTEN_FDS` descriptors from 3, meant for this pid). They replace `--bind`.
fn inherited_listeners() -> Result<Option<Vec<Listener>>, SettingError> {
    // Children (workers, a later upgrade) must not take the variables for theirs: they are
    // removed whether or not they were meant for this process.
    let fds = ironhorse_sys::inherited_listen_fds()
        .map_err(|e| SettingError(format!("LISTEN_FDS: {e}")))?;
    if fds.is_empty() {
        return Ok(None);
    }
    fds.into_iter()
        .map(|fd| {
            Listener::bind(&BindAddr::Fd(fd), 0, false)
                .map_err(|e| SettingError(format!("LISTEN_FDS: descriptor {fd}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
