//! `--interface wsgi|asgi|gevent|auto` (and `-k gevent`): which bridge runs the imported
//! application, and whether the model can host it.

use std::sync::Arc;

use ironhorse_app::Service;
use ironhorse_asgi::{AsgiApp, AsgiConfig};
use ironhorse_green::{GeventApp, GreenConfig};
use ironhorse_process::Processes;
use ironhorse_runtime::Driver;
use ironhorse_wsgi::{WsgiApp, WsgiConfig};

use crate::app::Shape;
use crate::settings::Settings;
use crate::units::Interface;

/// What is known before the import: the setting, the model, how ASGI would start.
#[derive(Clone)]
pub struct Choice {
    interface: Interface,
    /// `None` when the model can host ASGI, else why not.
    refusal: Option<String>,
    asgi: AsgiConfig,
    /// `Some` for `--interface gevent` (or `-k gevent`).
    gevent: Option<GreenConfig>,
    error_log: Option<ironhorse_log::ErrorLog>,
}

impl Choice {
    pub fn new(settings: &Settings, shape: &Shape) -> Choice {
        let hosts_asgi = matches!(shape.driver, Driver::Event | Driver::Async);
        let gevent = settings.interface == Interface::Gevent || settings.model.name == "gevent";
        let what = if gevent { "a gevent" } else { "an ASGI" };
        let refusal = if !hosts_asgi {
            Some(format!(
                "{what} application runs on --model event or async (one {} per process; -w N for more processes); --model {} cannot host it",
                if gevent { "hub thread" } else { "event loop" },
                settings.model.name
            ))
        } else {
            None
        };
        // A master that imports the app before forking leaves the loop to each worker.
        let start_now = !(settings.preload && shape.strategy == Processes::Prefork);
        let gevent = gevent.then_some(GreenConfig {
            worker_connections: settings
                .max_connections
                .unwrap_or(crate::settings::GEVENT_GREENLETS),
            // Greenlets hold read-ahead bodies in memory (no spooling on this path), so
            // only up to the in-memory part of body buffering; longer bodies stream in.
            buffer_body: settings
                .buffer_request_body
                .min(settings.buffer_request_body_memory),
            start_now,
        });
        Choice {
            interface: if gevent.is_some() {
                Interface::Gevent
            } else {
                settings.interface
            },
            gevent,
            refusal,
            asgi: AsgiConfig {
                loop_kind: settings.event_loop,
                disconnect_grace: settings.asgi_disconnect_grace_period,
                root_path: settings
                    .root_path
                    .as_deref()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string(),
                server_name: "localhost".into(),
                server_port: 0,
                unix_socket: settings
                    .bind
                    .iter()
                    .find_map(|b| b.strip_prefix("unix:"))
                    .map(str::to_string),
                start_now,
            },
            error_log: shape.error_log.clone(),
        }
    }

    /// Imports the application and wraps it in the bridge its interface needs.
    pub fn load(&self, config: &WsgiConfig) -> Result<Arc<dyn Service>, String> {
        if let Some(gevent) = &self.gevent {
            if let Some(refusal) = &self.refusal {
                return Err(refusal.clone());
            }
            // Greenlets of one process run requests at once.
            let config = WsgiConfig {
                multithread: true,
                ..config.clone()
            };
            let app = GeventApp::load(config.clone(), gevent.clone())?;
            // The greenlets run on the hub: the worker beats only while it turns.
            let pulse = app.pulse();
            ironhorse_process::gate_heartbeat(move || pulse.alive());
            self.info(format_args!(
                "{}: WSGI application in greenlets (gevent)",
                config.app
            ));
            return Ok(Arc::new(app));
        }
        if self.interface == Interface::Asgi {
            if let Some(refusal) = &self.refusal {
                return Err(refusal.clone());
            }
        }
        let callable = ironhorse_wsgi::import_app(config).map_err(|e| e.to_string())?;
        let (asgi, how) = match self.interface {
            Interface::Wsgi => (false, "--interface wsgi"),
            Interface::Asgi => (true, "--interface asgi"),
            Interface::Gevent => unreachable!("gevent apps load above"),
            Interface::Auto => (ironhorse_asgi::is_asgi(&callable)?, "detected"),
        };
        let kind = if asgi { "ASGI 3" } else { "WSGI" };
        self.info(format_args!("{}: {kind} application ({how})", config.app));
        if !asgi {
            let app =
                WsgiApp::with_callable(config.clone(), callable).map_err(|e| e.to_string())?;
            return Ok(Arc::new(app));
        }
        if let Some(refusal) = &self.refusal {
            return Err(refusal.clone());
        }
        let asgi = AsgiConfig {
            server_name: config.server_name.clone(),
            server_port: config.server_port,
            ..self.asgi.clone()
        };
        Ok(Arc::new(AsgiApp::new(callable, asgi)?))
    }

    fn info(&self, line: std::fmt::Arguments<'_>) {
        match &self.error_log {
            Some(log) => log.info(line),
            None => eprintln!("[ironhorse] [{}] [INFO] {line}", std::process::id()),
        }
    }
}
