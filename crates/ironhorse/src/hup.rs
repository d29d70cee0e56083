//! `SIGHUP` in a master: the configuration read again (command line, environment, config
//! file), and which of its changes the next workers get. A master cannot rebind, change the
//! model or re-import an app it holds (`--preload`) without a restart; every changed
//! setting a reload does not apply is named in a warning, never passed off as reloaded.

use std::sync::{Arc, Mutex};

use ironhorse_process::{AppSource, NotApplied, ReloadFn, Reloaded, WorkerEnv, WorkerLimits};

use crate::app;
use crate::settings::{self, Settings};
use crate::setup::Launch;
use crate::values::{first_line, LoadError, Loaded, Values};

/// Settings the master applies to the workers it starts after a reload, whatever the app.
const APPLIED_BY_MASTER: &[&str] = &[
    "workers",
    "timeout",
    "graceful_timeout",
    "max_requests",
    "max_requests_jitter",
    "max_worker_memory",
];

/// TLS settings: read again into the one configuration source every process reads.
const APPLIED_TO_TLS: &[&str] = &[
    "certfile",
    "keyfile",
    "ca_certs",
    "cert_reqs",
    "ssl_handshake_timeout",
    "tls_min_version",
    "ciphers",
];

/// Settings read when the application and its HTTP stack are built (`app::build`): applied
/// when each worker builds its own (no `--preload`); a preloaded app stays as it was.
const APPLIED_WITH_THE_APP: &[&str] = &[
    "app",
    "root",
    "autoindex",
    "static",
    "static_cache_entries",
    "static_cache_bytes",
    "static_cache_valid",
    "chdir",
    "pythonpath",
    "root_path",
    "debug",
    "work_delay",
    "keep_alive",
    "header_timeout",
    "body_timeout",
    "request_timeout",
    "forwarded_allow_ips",
    "proxy_protocol",
    "proxy_allow_from",
    "uwsgi_allow_from",
    "health_path",
    "forwarded_headers",
    "secure_scheme_headers",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "limit_request_head",
    "limit_request_body",
    "interface",
    "event_loop",
    "asgi_disconnect_grace_period",
    "ws_max_message_size",
    "ws_ping_interval",
    "ws_ping_timeout",
    "ws_close_timeout",
    "buffer_request_body",
    "buffer_request_body_memory",
    "http_protocols",
    "http2_cleartext",
    "http2_max_concurrent_streams",
    "http2_initial_window_size",
    "http2_max_frame_size",
    "http2_max_header_list_size",
];

/// Settings each worker applies to itself right after its fork, before it imports the app
/// (`WorkerEnv`): only an app imported there sees them; a preloaded one read them in the
/// master, where nothing changes them after the start.
const APPLIED_IN_EACH_WORKER: &[&str] = &["env"];

/// Settings of the listening sockets: `USR2` hands the same sockets to the new master (they
/// replace `--bind`), so only a restart applies a change.
const NEED_NEW_SOCKETS: &[&str] = &["bind", "backlog", "reuse_port"];

/// The master's `SIGHUP`: `running` is what the server started with; `preloaded` the app
/// kept from the master, if it was built there; `started_env` the `--env` the master set in
/// its own environment at the start (which every worker inherits).
pub fn reload_fn(
    running: Values,
    preloaded: Option<AppSource>,
    shape: app::Shape,
    started_env: Vec<String>,
    launch: Launch,
) -> ReloadFn {
    // What the running workers were given: a change not applied is named again on the next
    // HUP, until a restart applies it.
    let running = Mutex::new(running);
    Arc::new(move || {
        let loaded = reread(&launch)?;
        // Certificates are re-read even for an app kept from the master.
        crate::tls::reload(&loaded.settings, &shape.tls).map_err(|e| e.to_string())?;
        // A preloaded app stays: it lives in the master (gunicorn does the same).
        let app = match &preloaded {
            Some(app) => app.clone(),
            None => app::build(&loaded.settings, &shape).map_err(|e| e.to_string())?,
        };
        let new = loaded.values();
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        let (mut applied, mut not_applied) = (Vec::new(), Vec::new());
        let mut env = None;
        for id in running.changed_in(&new) {
            if is_applied(&id, preloaded.is_some()) {
                if id == "env" {
                    env = Some(worker_env(&started_env, &loaded.settings.env));
                }
                running.take(&id, &new);
                applied.push(name(&id));
            } else {
                not_applied.push(NotApplied {
                    name: name(&id),
                    needs: match NEED_NEW_SOCKETS.contains(&id.as_str()) {
                        true => "a restart (USR2 keeps the sockets)",
                        false => "a restart or USR2",
                    },
                });
            }
        }
        Ok(reloaded(&loaded.settings, app, env, applied, not_applied))
    })
}

/// The environment change of a reloaded `--env` for the workers: its variables, and those
/// the master's starting `--env` set (and so every worker inherits) that it no longer does.
/// Both lists were checked as `KEY=VALUE` when parsed (`units::env_assignment`).
/// The settings as the command line the server started with (and the files and variables it
/// names) give them now; `Err`: the one line saying why they cannot be read.
pub(crate) fn reread(launch: &Launch) -> Result<Loaded, String> {
    Loaded::from_args(launch.iter().cloned()).map_err(|e| match e {
        LoadError::Command(e) => first_line(&e),
        LoadError::File(e) => e.to_string(),
    })
}

fn worker_env(started: &[String], reloaded: &[String]) -> WorkerEnv {
    let set: Vec<(String, String)> = reloaded
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let mut remove: Vec<String> = Vec::new();
    for (key, _) in started.iter().filter_map(|pair| pair.split_once('=')) {
        if !set.iter().any(|(k, _)| k == key) && !remove.iter().any(|k| k == key) {
            remove.push(key.to_string());
        }
    }
    WorkerEnv { set, remove }
}

/// What the next workers start with.
fn reloaded(
    settings: &Settings,
    app: AppSource,
    env: Option<WorkerEnv>,
    applied: Vec<String>,
    not_applied: Vec<NotApplied>,
) -> Reloaded {
    Reloaded {
        app,
        workers: settings.workers,
        limits: WorkerLimits {
            timeout: settings.timeout,
            max_requests: settings.max_requests as u64,
            max_requests_jitter: settings.max_requests_jitter as u64,
            max_worker_memory: settings.max_worker_memory,
        },
        graceful_timeout: settings.graceful_timeout,
        env,
        applied,
        not_applied,
    }
}

/// Whether a reload applies a change of the setting `id`.
fn is_applied(id: &str, app_preloaded: bool) -> bool {
    APPLIED_BY_MASTER.contains(&id)
        || APPLIED_TO_TLS.contains(&id)
        || (!app_preloaded
            && (APPLIED_WITH_THE_APP.contains(&id) || APPLIED_IN_EACH_WORKER.contains(&id)))
}

/// The setting's name as operators write it (`max-requests`; the positional `app`).
fn name(id: &str) -> String {
    let command = settings::command();
    let name = command
        .get_arguments()
        .find(|a| a.get_id().as_str() == id)
        .map_or(id, settings::key)
        .to_string();
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A misspelt id would silently count a change as not applied (or applied).
    #[test]
    fn every_listed_id_is_a_setting() {
        let command = settings::command();
        let lists = [
            APPLIED_BY_MASTER,
            APPLIED_TO_TLS,
            APPLIED_WITH_THE_APP,
            APPLIED_IN_EACH_WORKER,
            NEED_NEW_SOCKETS,
        ];
        for id in lists.concat() {
            assert!(
                command.get_arguments().any(|a| a.get_id().as_str() == id),
                "{id} is not a setting"
            );
        }
    }

    #[test]
    fn a_reloaded_env_sets_its_variables_and_removes_those_it_dropped() {
        let started = ["A=1".to_string(), "B=2".into(), "B=3".into()];
        let env = worker_env(&started, &["A=x=y".into(), "C=".into()]);
        assert_eq!(
            env.set,
            [("A".into(), "x=y".into()), ("C".into(), String::new())]
        );
        assert_eq!(env.remove, ["B"]);
    }
}
