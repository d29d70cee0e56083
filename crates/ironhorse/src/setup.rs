//! From settings to a bound, ready server: validation, binding, the application.

use std::sync::Arc;

use ironhorse_process::model::Model;
use ironhorse_process::{AppSource, Processes, ReloadFn, Reloaded, ServerPlan, Supervision};
use ironhorse_runtime::listener::{BindAddr, Listener};
use ironhorse_runtime::Driver;

use crate::settings::Settings;
use crate::values::{LoadError, Loaded, SettingError};
use crate::{app, logs};

/// A validated server, its sockets bound.
pub struct Server {
    model: &'static Model,
    strategy: Processes,
    plan: ServerPlan,
    /// `--certfile`: the addresses are announced as `https://`.
    tls: bool,
}

impl Server {
    pub fn from_settings(settings: &Settings) -> Result<Server, SettingError> {
        let model = settings.model;
        let strategy = model.processes_for(settings.workers);
        refuse_unworkable(settings, strategy)?;
        // Bad certificate files are reported before binding or daemonising.
        let tls = crate::tls::source(settings)?;
        let listeners = bind_all(settings)?;
        apply_process_settings(settings)?;
        if settings.daemon {
            // After binding, so a port in use is still reported to the terminal.
            ironhorse_sys::daemonize().map_err(|e| SettingError(format!("--daemon: {e}")))?;
        }
        let logs = logs::Logs::open(settings)?;
        let shape = app::Shape {
            strategy,
            driver: model.driver,
            threads: settings.threads,
            access_log: logs.access.clone(),
            error_log: Some(logs.error.clone()),
            serve_load_errors: settings.reload,
            tls,
        };
        let reload_trigger = crate::reload::start(settings, strategy, &listeners)?;
        let app = app::build(settings, &shape)?;
        let mut supervision = supervision(settings, &app, shape);
        supervision.reopen_logs = Some(logs.reopener());
        supervision.reload_trigger = reload_trigger;
        if settings.reuse_port && strategy == Processes::Prefork {
            let addrs: Vec<BindAddr> = listeners.iter().filter_map(|l| l.rebind_addr()).collect();
            if addrs.len() == listeners.len() {
                supervision.per_worker_sockets = Some((addrs, settings.backlog()));
            }
        }
        Ok(Server {
            model,
            strategy,
            tls: settings.certfile.is_some(),
            plan: ServerPlan {
                listeners,
                app,
                driver: model.driver,
                workers: settings.workers,
                threads: if model.driver == Driver::Async {
                    settings.runtime_threads
                } else {
                    settings.threads
                },
                max_connections: settings.max_connections(strategy == Processes::ForkPerConnection),
                graceful_timeout: settings.graceful_timeout,
                supervision,
            },
        })
    }

    /// `--check-config`: the values were checked when parsed; this checks the addresses and
    /// loads the application, binding nothing.
    pub fn check(settings: &Settings) -> Result<(), SettingError> {
        refuse_unworkable(settings, settings.model.processes_for(settings.workers))?;
        for spec in &settings.bind {
            BindAddr::parse(spec).map_err(|e| SettingError(format!("--bind: {e}")))?;
        }
        let shape = app::Shape {
            strategy: settings.model.processes_for(settings.workers),
            driver: settings.model.driver,
            threads: settings.threads,
            access_log: None,
            error_log: None,
            serve_load_errors: false,
            tls: crate::tls::source(settings)?,
        };
        // Load the app here, even one that would be imported per worker: that is the check.
        match app::build(settings, &shape)? {
            AppSource::Preloaded(_) => Ok(()),
            AppSource::PerProcess(load) => load().map(drop).map_err(SettingError),
        }
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
                    match self.tls {
                        true => listener.display_addr().replacen("http://", "https://", 1),
                        false => listener.display_addr(),
                    },
                    self.model.name,
                    self.model.seed_name
                )
            })
            .collect();
        let code = ironhorse_process::run(self.strategy, self.plan, || {
            for line in announcement {
                eprintln!("{line}");
            }
        });
        ironhorse_process::flush_logs();
        code
    }
}

/// Operations that cannot work as asked (`--reload`, `--control-socket`), in one line.
fn refuse_unworkable(settings: &Settings, strategy: Processes) -> Result<(), SettingError> {
    crate::reload::prepare(settings)?;
    if settings.control_socket.is_some() && strategy != Processes::Prefork {
        return Err(SettingError(format!("--control-socket needs a master: --model {} -w {} runs without one (use prefork or hybrid, or -w 2 or more with event and async)", settings.model.name, settings.workers)));
    }
    Ok(())
}

/// Process-wide settings applied once the sockets are bound: environment, umask, user.
/// (`--daemon` is applied before anything else, in `main`.)
fn apply_process_settings(settings: &Settings) -> Result<(), SettingError> {
    for pair in &settings.env {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| SettingError(format!("--env: expected KEY=VALUE, got {pair:?}")))?;
        if key.is_empty() {
            return Err(SettingError(format!("--env: empty name in {pair:?}")));
        }
        // Single-threaded here: no thread reads the environment concurrently.
        std::env::set_var(key, value);
    }
    if let Some(mask) = settings.umask {
        ironhorse_sys::set_umask(mask);
    }
    let (user, group) = (settings.user.as_deref(), settings.group.as_deref());
    if user.is_some() || group.is_some() {
        ironhorse_sys::drop_privileges(user, group)
            .map_err(|e| SettingError(format!("--user/--group: {e}")))?;
    }
    Ok(())
}

/// How a master watches its workers, and how it reloads the configuration on `SIGHUP`.
fn supervision(settings: &Settings, app: &AppSource, shape: app::Shape) -> Supervision {
    let preloaded = matches!(app, AppSource::Preloaded(_)).then(|| app.clone());
    let reload: ReloadFn = Arc::new(move || {
        let loaded = Loaded::from_args(std::env::args_os()).map_err(|e| match e {
            LoadError::Command(e) => crate::values::first_line(&e),
            LoadError::File(e) => e.to_string(),
        })?;
        let workers = loaded.settings.workers;
        // Certificates are re-read even for an app kept from the master.
        crate::tls::reload(&loaded.settings, &shape.tls).map_err(|e| e.to_string())?;
        // A preloaded app stays: it lives in the master (gunicorn does the same).
        let app = match &preloaded {
            Some(app) => app.clone(),
            None => app::build(&loaded.settings, &shape).map_err(|e| e.to_string())?,
        };
        Ok(Reloaded { app, workers })
    });
    Supervision {
        timeout: settings.timeout,
        max_requests: settings.max_requests as u64,
        max_requests_jitter: settings.max_requests_jitter as u64,
        max_worker_memory: settings.max_worker_memory,
        pidfile: settings.pid.clone(),
        reload: Some(reload),
        reopen_logs: None,
        per_worker_sockets: None,
        control_socket: settings.control_socket.clone(),
        reload_trigger: None,
        name: settings.name.clone(),
        model: settings.model.name,
    }
}

fn bind_all(settings: &Settings) -> Result<Vec<Listener>, SettingError> {
    if let Some(inherited) = inherited_listeners()? {
        return Ok(inherited);
    }
    settings
        .bind
        .iter()
        .map(|spec| {
            let addr = BindAddr::parse(spec).map_err(|e| SettingError(format!("--bind: {e}")))?;
            Listener::bind(&addr, settings.backlog(), settings.reuse_port)
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
