//! From settings to a bound, ready server: validation, binding, the application.

use std::sync::Arc;

use ironhorse_process::model::Model;
use ironhorse_process::{AppSource, HupAloneFn, Processes, ServerPlan, Supervision};
use ironhorse_runtime::listener::{BindAddr, Listener};
use ironhorse_runtime::Driver;

use crate::settings::Settings;
use crate::values::{SettingError, Values};
use crate::{app, logs};

/// The command line the server was started with (program name first), read again on
/// `HUP`: not `std::env::args_os()`, which under the pip package's entry point is Python's.
pub type Launch = Arc<Vec<std::ffi::OsString>>;

/// A validated server, its sockets bound.
pub struct Server {
    /// Prints the addresses listened on (see `Logs::announcer`).
    announce: Box<dyn Fn(&str) + Send>,
    model: &'static Model,
    strategy: Processes,
    plan: ServerPlan,
    /// `--certfile`: the addresses are announced as `https://`.
    tls: bool,
}

impl Server {
    /// `running`: the settings' values as written, which a reload (`HUP`) compares with the
    /// configuration it reads again.
    /// `launch`: the command line the server was started with, read again on a reload.
    pub fn from_settings(
        settings: &Settings,
        running: Values,
        launch: Launch,
    ) -> Result<Server, SettingError> {
        let model = settings.model;
        let strategy = model.processes_for(settings.workers);
        refuse_unworkable(settings, strategy)?;
        // Bad certificate files are reported before binding or daemonising.
        let tls = crate::tls::source(settings)?;
        // A pid file naming another live server too: before its sockets could be touched.
        if let Some(path) = &settings.pid {
            ironhorse_process::check_pid_file(path)
                .map_err(|e| SettingError(format!("--pid: {e}")))?;
        }
        let listeners = bind_all(settings)?;
        let metrics = bind_metrics(settings)?;
        apply_process_settings(settings)?;
        if settings.daemon && !ironhorse_process::started_by_upgrade() {
            // After binding, so a port in use is still reported to the terminal. Not in a new
            // master started by `USR2`: it is detached already (see `started_by_upgrade`).
            ironhorse_sys::daemonize().map_err(|e| SettingError(format!("--daemon: {e}")))?;
        }
        // Log files are opened before --user/--group take effect, as gunicorn's master opens
        // them: a root-owned log directory (/var/log) stays usable.
        let logs = logs::Logs::open(settings)?;
        drop_privileges(settings)?;
        let shape = app::Shape {
            strategy,
            driver: model.driver,
            threads: settings.threads,
            access_log: logs.access.clone(),
            error_log: Some(logs.error.clone()),
            serve_load_errors: settings.reload,
            tls,
        };
        let reload_trigger =
            crate::reload::start(settings, strategy, &listeners, &logs.for_processes())?;
        let app = app::build(settings, &shape)?;
        let mut supervision = supervision(settings, running, launch, &app, shape);
        supervision.reopen_logs = Some(logs.reopener());
        supervision.reload_trigger = reload_trigger;
        supervision.metrics = metrics;
        if settings.reuse_port && strategy == Processes::Prefork {
            let addrs: Vec<BindAddr> = listeners.iter().filter_map(|l| l.rebind_addr()).collect();
            if addrs.len() == listeners.len() {
                supervision.per_worker_sockets = Some((addrs, settings.backlog()));
            }
        }
        Ok(Server {
            announce: Box::new(logs.announcer()),
            model,
            strategy,
            tls: !settings.certfile.is_empty(),
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
                logs: logs.for_processes(),
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
        let mut announcement: Vec<String> = self
            .plan
            .listeners
            .iter()
            .map(|listener| {
                format!(
                    "listening on {} (model {}, {})",
                    match self.tls {
                        true => listener.display_addr().replacen("http://", "https://", 1),
                        false => listener.display_addr(),
                    },
                    self.model.name,
                    self.model.seed_name
                )
            })
            .collect();
        let logs = self.plan.logs.clone();
        let metrics = self.plan.supervision.metrics.clone();
        announcement.extend(metrics.iter().map(|m| format!("metrics on {}", m.url())));
        let announce = self.announce;
        let code = ironhorse_process::run(self.strategy, self.plan, || {
            for line in announcement {
                announce(&line);
            }
        });
        if let Some(metrics) = metrics {
            metrics.unlink();
        }
        logs.flush();
        code
    }
}

/// Operations that cannot work as asked (`--reload`, `--control-socket`), in one line.
fn refuse_unworkable(settings: &Settings, strategy: Processes) -> Result<(), SettingError> {
    crate::reload::prepare(settings)?;
    if settings.threads == 0 {
        if settings.model.driver != Driver::Event {
            return Err(SettingError(format!("--threads 0 (the application on the event loop's thread) needs --model event; --model {} needs at least one thread", settings.model.name)));
        }
        if settings.http_protocols.h2 {
            return Err(SettingError("--threads 0 serves HTTP/1.1 only: HTTP/2 streams run on application threads (use --threads 1 or more with --http-protocols h1,h2)".into()));
        }
    }
    if settings.control_socket.is_some() && strategy != Processes::Prefork {
        return Err(SettingError(format!("--control-socket needs a master: --model {} -w {} runs without one (use prefork or hybrid, or -w 2 or more with event and async)", settings.model.name, settings.workers)));
    }
    Ok(())
}

/// Process-wide settings applied once the sockets are bound: environment, umask, user.
/// (`--daemon` is applied before anything else, in `main`.)
fn apply_process_settings(settings: &Settings) -> Result<(), SettingError> {
    // `units::env_assignment` checked each pair (a name, then `=`) when it was parsed.
    for (key, value) in settings.env.iter().filter_map(|pair| pair.split_once('=')) {
        // Single-threaded here: no thread reads the environment concurrently.
        std::env::set_var(key, value);
    }
    if let Some(mask) = settings.umask {
        ironhorse_sys::set_umask(mask);
    }
    Ok(())
}

/// `--user`/`--group`: the process (and every worker it forks) runs as them from here on.
fn drop_privileges(settings: &Settings) -> Result<(), SettingError> {
    let (user, group) = (settings.user.as_deref(), settings.group.as_deref());
    if user.is_some() || group.is_some() {
        ironhorse_sys::drop_privileges(user, group)
            .map_err(|e| SettingError(format!("--user/--group: {e}")))?;
    }
    Ok(())
}

/// How a master watches its workers, and how it reloads the configuration on `SIGHUP`.
fn supervision(
    settings: &Settings,
    running: Values,
    launch: Launch,
    app: &AppSource,
    shape: app::Shape,
) -> Supervision {
    let preloaded = matches!(app, AppSource::Preloaded(_)).then(|| app.clone());
    let hup_alone = hup_alone(settings, shape.tls.clone(), launch.clone());
    let reload = crate::hup::reload_fn(running, preloaded, shape, settings.env.clone(), launch);
    Supervision {
        timeout: settings.timeout,
        max_requests: settings.max_requests as u64,
        max_requests_jitter: settings.max_requests_jitter as u64,
        max_worker_memory: settings.max_worker_memory,
        pidfile: settings.pid.clone(),
        worker_env: Default::default(),
        reload: Some(reload),
        hup_alone: Some(hup_alone),
        reopen_logs: None,
        per_worker_sockets: None,
        control_socket: settings.control_socket.clone(),
        reload_trigger: None,
        metrics: None,
        name: settings.name.clone(),
        model: settings.model.name,
    }
}

/// `SIGHUP` in a process serving alone: no master to start new workers with a new
/// configuration, so only the TLS certificates are re-read (certificate rotation, e.g.
/// certbot's deploy hook, works in every model); the line logged says so.
fn hup_alone(
    settings: &Settings,
    tls: Option<Arc<ironhorse_tls::ServerConfigSource>>,
    launch: Launch,
) -> HupAloneFn {
    let needs_master = format!(
        "a configuration reload needs a master (--model prefork or hybrid, or event or async with -w 2 or more); --model {} -w {} has none: restart to change settings",
        settings.model.name, settings.workers
    );
    Arc::new(move || {
        if tls.is_none() {
            return Ok(format!("SIGHUP: nothing reloaded: {needs_master}"));
        }
        let kept =
            |e: String| format!("SIGHUP: certificates not re-read ({e}); serving the current ones");
        let loaded = crate::hup::reread(&launch).map_err(kept)?;
        crate::tls::reload(&loaded.settings, &tls).map_err(|e| kept(e.to_string()))?;
        Ok(format!(
            "SIGHUP: TLS certificates re-read; {needs_master} other than the certificates"
        ))
    })
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

/// `--metrics-bind`: bound here, before any fork, so a bad address or a port in use is one
/// line and exit code 2.
fn bind_metrics(
    settings: &Settings,
) -> Result<Option<Arc<ironhorse_metrics::MetricsListener>>, SettingError> {
    let Some(addr) = &settings.metrics_bind else {
        return Ok(None);
    };
    let listener = match ironhorse_process::inherited_metrics_fd() {
        Some(fd) => addr.adopt(fd),
        None => addr.bind(),
    };
    let listener = listener.map_err(|e| {
        let shown = match addr {
            ironhorse_metrics::MetricsAddr::Tcp(a) => a.to_string(),
            ironhorse_metrics::MetricsAddr::Unix(p) => format!("unix:{}", p.display()),
        };
        SettingError(format!("--metrics-bind: cannot listen on {shown}: {e}"))
    })?;
    Ok(Some(Arc::new(listener)))
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
