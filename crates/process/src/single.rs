//! One process serves: the driver runs right here.

use super::{log, ServerPlan};
use ironhorse_runtime::DriverConfig;

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    let (pidfile, protocol) = match super::start_serving(&plan, on_ready) {
        Ok(started) => started,
        Err(code) => return code,
    };
    spawn_stop_watchdog(
        plan.graceful_timeout,
        plan.supervision.reopen_logs.clone(),
        None,
    );
    let config = DriverConfig {
        listeners: plan.listeners,
        protocol,
        threads: plan.threads,
        max_connections: plan.max_connections,
        graceful_timeout: plan.graceful_timeout,
        hooks: crate::hooks::process_hooks(),
    };
    let code = match plan.driver.run(config) {
        Ok(()) => 0,
        Err(e) => {
            log(format_args!("serving failed: {e}"));
            1
        }
    };
    if let Some(pidfile) = pidfile {
        pidfile.release();
    }
    code
}

/// A serving process's housekeeping thread: reopens logs on `SIGUSR1`, exits at once on a
/// quick stop (`SIGQUIT`), and bounds a graceful stop: once one is requested, the process
/// exits after the graceful timeout even if some request is stuck.
///
/// With `master`, a worker also stops (gracefully) when its master is gone: an orphaned
/// worker would otherwise serve on, unsupervised, forever.
pub(crate) fn spawn_stop_watchdog(
    graceful: std::time::Duration,
    reopen_logs: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    master: Option<u32>,
) {
    use ironhorse_sys::signals;
    let _ = signals::install_pending(&[signals::SIGUSR1]);
    let _ = std::thread::Builder::new()
        .name("ih-watchdog".into())
        .spawn(move || {
            let stop = loop {
                if signals::take_pending(signals::SIGUSR1) {
                    if let Some(reopen) = &reopen_logs {
                        reopen();
                    }
                }
                if let Some(signal) = signals::stop_requested() {
                    break signal;
                }
                if master.is_some_and(|m| std::os::unix::process::parent_id() != m) {
                    super::warn(format_args!("the master is gone; this worker stops"));
                    signals::request_stop(signals::SIGTERM);
                }
                std::thread::sleep(ironhorse_runtime::STOP_CHECK);
            };
            if stop == signals::SIGQUIT {
                super::exit(0);
            }
            std::thread::sleep(graceful);
            log(format_args!(
                "graceful timeout passed with requests in flight; exiting"
            ));
            super::exit(0);
        });
}
