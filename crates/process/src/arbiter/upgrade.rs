//! `USR2`: start the (possibly new) binary on disk with the same arguments, handing it the
//! listening sockets as systemd would (`LISTEN_FDS`, `LISTEN_PID`). Old and new masters then
//! serve side by side until the operator retires the old one (`WINCH`, then `TERM`).

use std::os::fd::AsFd;

use super::super::log;
use ironhorse_runtime::listener::Listener;
use ironhorse_sys::process::{self, Forked};

use super::super::pidfile::UPGRADED_FROM;

/// Forks and execs the current binary with the listeners at descriptors 3, 4, …
pub(super) fn reexec(listeners: &[Listener]) {
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return log(format_args!("USR2: cannot find the binary: {e}")),
    };
    let args: Vec<String> = std::env::args().collect();
    let master = process::pid();
    match process::fork() {
        Ok(Forked::Child) => {
            let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
            if let Err(e) = ironhorse_sys::pass_fds_for_exec(&fds) {
                log(format_args!("USR2: cannot pass the sockets: {e}"));
                process::exit_now(1);
            }
            let mut env: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| !k.starts_with("LISTEN_") && k != UPGRADED_FROM)
                .collect();
            env.push(("LISTEN_FDS".into(), listeners.len().to_string()));
            env.push(("LISTEN_PID".into(), process::pid().to_string()));
            env.push((UPGRADED_FROM.into(), master.to_string()));
            let error = ironhorse_sys::exec(&program, &args, &env);
            log(format_args!(
                "USR2: cannot start {}: {error}",
                program.display()
            ));
            process::exit_now(1);
        }
        Ok(Forked::Parent(pid)) => log(format_args!(
            "USR2: started a new master {pid} from {}",
            program.display()
        )),
        Err(e) => log(format_args!("USR2: fork failed: {e}")),
    }
}
