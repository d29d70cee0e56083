//! One process serves: the driver runs right here.

use std::path::PathBuf;

use super::{ProcessLogs, ServerPlan};
use ironhorse_runtime::DriverConfig;

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    let board = match super::metrics::start(&plan, 1) {
        Ok(board) => board,
        Err(code) => return code,
    };
    let (pidfile, protocol) = match super::start_serving(&plan, on_ready) {
        Ok(started) => started,
        Err(code) => return code,
    };
    // Unix socket files this process made go with it, however it stops (as the master's do).
    let socket_files: Vec<PathBuf> = (plan.listeners.iter())
        .filter_map(|l| l.created_file().map(PathBuf::from))
        .collect();
    spawn_stop_watchdog(
        plan.graceful_timeout,
        plan.supervision.reopen_logs.clone(),
        Exit::Alone(socket_files.clone(), plan.supervision.hup_alone.clone()),
        plan.logs.clone(),
    );
    let config = DriverConfig {
        listeners: plan.listeners,
        protocol,
        threads: plan.threads,
        max_connections: plan.max_connections,
        graceful_timeout: plan.graceful_timeout,
        hooks: crate::hooks::process_hooks(&plan.logs, super::metrics::own_meter(board.as_ref())),
    };
    let code = match plan.driver.run(config) {
        Ok(()) => 0,
        Err(e) => {
            plan.logs.error(format_args!("serving failed: {e}"));
            1
        }
    };
    remove_files(&socket_files);
    if let Some(pidfile) = pidfile {
        pidfile.release();
    }
    code
}

/// Who a serving process answers to, and so what it leaves behind when it exits.
pub(crate) enum Exit {
    /// A worker: it stops when its master (this pid) is gone; the master owns the sockets.
    Worker { master: u32 },
    /// The only serving process: it removes the Unix socket files it made, and acts on
    /// `SIGHUP` itself (a worker leaves that to its master).
    Alone(Vec<PathBuf>, Option<super::HupAloneFn>),
}

fn remove_files(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

/// A serving process's housekeeping thread: reopens logs on `SIGUSR1`, re-reads the
/// certificates on `SIGHUP` (serving alone: the driver's threads are never blocked by it), exits at once on a
/// quick stop (`SIGQUIT`), and bounds a graceful stop: once one is requested, the process
/// exits after the graceful timeout even if some request is stuck.
///
/// A worker also stops (gracefully) when its master is gone: an orphaned worker would
/// otherwise serve on, unsupervised, forever.
pub(crate) fn spawn_stop_watchdog(
    graceful: std::time::Duration,
    reopen_logs: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    exit: Exit,
    logs: ProcessLogs,
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
                if let Exit::Alone(_, hup) = &exit {
                    super::take_signals_alone(hup.as_ref(), &logs);
                }
                if let Some(signal) = signals::stop_requested() {
                    break signal;
                }
                if matches!(exit, Exit::Worker { master } if std::os::unix::process::parent_id() != master) {
                    logs.warn(format_args!("the master is gone; this worker stops"));
                    signals::request_stop(signals::SIGTERM);
                }
                std::thread::sleep(ironhorse_runtime::STOP_CHECK);
            };
            let files = match &exit {
                Exit::Alone(files, _) => &files[..],
                Exit::Worker { .. } => &[],
            };
            if stop == signals::SIGQUIT {
                remove_files(files);
                logs.exit(0);
            }
            std::thread::sleep(graceful);
            logs.info(format_args!(
                "graceful timeout passed with requests in flight; exiting"
            ));
            remove_files(files);
            logs.exit(0);
        });
}
