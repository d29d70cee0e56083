//! One process serves: the driver runs right here.

use super::{log, ServerPlan, EXIT_APP_LOAD_ERROR};
use crate::drivers::DriverConfig;

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    if let Err(e) = ironhorse_sys::signals::install_stop_flag() {
        log(format_args!("cannot install signal handlers: {e}"));
        return 1;
    }
    on_ready();
    let protocol = match plan.app.build() {
        Ok(p) => p,
        Err(e) => {
            log(format_args!("{e}"));
            return EXIT_APP_LOAD_ERROR;
        }
    };
    spawn_stop_watchdog(plan.graceful_timeout);
    let config = DriverConfig {
        listeners: plan.listeners,
        protocol,
        threads: plan.threads,
        max_connections: plan.max_connections,
        graceful_timeout: plan.graceful_timeout,
    };
    match plan.driver.run(config) {
        Ok(()) => 0,
        Err(e) => {
            log(format_args!("serving failed: {e}"));
            1
        }
    }
}

/// Bounds a graceful stop: once a stop is requested, the process exits after the graceful
/// timeout even if some request is stuck.
pub(crate) fn spawn_stop_watchdog(graceful: std::time::Duration) {
    let _ = std::thread::Builder::new()
        .name("ih-watchdog".into())
        .spawn(move || {
            while ironhorse_sys::signals::stop_requested().is_none() {
                std::thread::sleep(crate::drivers::STOP_CHECK);
            }
            std::thread::sleep(graceful);
            log(format_args!(
                "graceful timeout passed with requests in flight; exiting"
            ));
            ironhorse_sys::process::exit_now(0);
        });
}
