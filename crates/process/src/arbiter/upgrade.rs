//! `USR2`: start the (possibly new) binary on disk with the same arguments, handing it the
//! listening sockets as systemd would (`LISTEN_FDS`, `LISTEN_PID`). Old and new masters then
//! serve side by side until the operator retires the old one (`WINCH`, then `TERM`).

use std::os::fd::AsFd;

use super::super::ProcessLogs;
use ironhorse_runtime::listener::Listener;
use ironhorse_sys::process::{self, Forked, Pid};

use super::super::pidfile::UPGRADED_FROM;

/// The variable naming the `--metrics-bind` socket handed to a new master (the descriptor
/// after the listeners').
pub const METRICS_FD: &str = "IRONHORSE_METRICS_FD";

/// Forks and execs the current binary with the listeners at descriptors 3, 4, … and the
/// metrics socket after them. Returns the new master's pid, if it was forked.
pub(super) fn reexec(
    listeners: &[Listener],
    metrics: Option<&ironhorse_metrics::MetricsListener>,
    logs: &ProcessLogs,
) -> Option<Pid> {
    let program = match std::env::current_exe() {
        Ok(p) => binary_on_disk(p),
        Err(e) => {
            logs.warn(format_args!("USR2: cannot find the binary: {e}"));
            return None;
        }
    };
    let args: Vec<String> = std::env::args().collect();
    let master = process::pid();
    match process::fork() {
        Ok(Forked::Child) => {
            let mut fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
            fds.extend(metrics.map(|m| m.as_fd()));
            if let Err(e) = ironhorse_sys::pass_fds_for_exec(&fds) {
                logs.warn(format_args!("USR2: cannot pass the sockets: {e}"));
                process::exit_now(1);
            }
            let mut env: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| !k.starts_with("LISTEN_") && k != UPGRADED_FROM && k != METRICS_FD)
                .collect();
            if metrics.is_some() {
                env.push((METRICS_FD.into(), (3 + listeners.len()).to_string()));
            }
            env.push(("LISTEN_FDS".into(), listeners.len().to_string()));
            env.push(("LISTEN_PID".into(), process::pid().to_string()));
            env.push((UPGRADED_FROM.into(), master.to_string()));
            let error = ironhorse_sys::exec(&program, &args, &env);
            logs.warn(format_args!(
                "USR2: cannot start {}: {error}",
                program.display()
            ));
            process::exit_now(1);
        }
        Ok(Forked::Parent(pid)) => {
            if let Some(metrics) = metrics {
                metrics.hand_over();
            }
            logs.info(format_args!(
                "USR2: started a new master {pid} from {}",
                program.display()
            ));
            Some(pid)
        }
        Err(e) => {
            logs.warn(format_args!("USR2: fork failed: {e}"));
            None
        }
    }
}

/// The binary to start: the file now at the path this one was started from. After an
/// install replaced that file by a rename (how installers and package managers update one),
/// Linux names the running, unlinked binary `PATH (deleted)`; the new one is at PATH.
fn binary_on_disk(exe: std::path::PathBuf) -> std::path::PathBuf {
    match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        Some(path) => path.into(),
        None => exe,
    }
}

#[cfg(test)]
mod tests {
    use super::binary_on_disk;

    #[test]
    fn a_replaced_binary_is_started_from_its_path() {
        assert_eq!(
            binary_on_disk("/usr/bin/ironhorse (deleted)".into()),
            std::path::PathBuf::from("/usr/bin/ironhorse")
        );
        assert_eq!(
            binary_on_disk("/usr/bin/ironhorse".into()),
            std::path::PathBuf::from("/usr/bin/ironhorse")
        );
    }
}
