//! A process per connection: the parent accepts and forks; each child serves one client
//! and exits. The parent reaps children at every wake-up and caps how many run at once.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{log, ServerPlan};
use ironhorse_runtime::{accept_loop_ticking, serve_connection, STOP_CHECK};
use ironhorse_sys::process::{self, Forked, Pid};
use ironhorse_sys::signals;

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    let (pidfile, protocol) = match super::start_serving(&plan, on_ready) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let max_children = plan.max_connections.max(1);
    let children: RefCell<HashSet<Pid>> = RefCell::new(HashSet::new());
    let hooks = crate::hooks::process_hooks();
    let result = accept_loop_ticking(
        &plan.listeners,
        &*hooks,
        || reap(&mut children.borrow_mut()),
        |stream, info| {
            while children.borrow().len() >= max_children && signals::stop_requested().is_none() {
                std::thread::sleep(Duration::from_millis(5));
                reap(&mut children.borrow_mut());
            }
            protocol.before_fork();
            match process::fork() {
                Ok(Forked::Child) => {
                    protocol.after_fork_child();
                    serve_connection(stream, info, &*protocol, &hooks);
                    super::exit(0);
                }
                Ok(Forked::Parent(pid)) => {
                    protocol.after_fork_parent();
                    children.borrow_mut().insert(pid);
                }
                Err(e) => {
                    protocol.after_fork_parent();
                    log(format_args!("fork failed: {e}"));
                    std::thread::sleep(STOP_CHECK);
                }
            }
        },
    );
    if let Err(e) = result {
        log(format_args!("accept failed: {e}"));
    }
    let mut children = children.into_inner();
    // Stop: children finish their client (idle ones leave at once), bounded by the
    // graceful timeout.
    for &pid in &children {
        process::kill(pid, signals::SIGTERM);
    }
    let deadline = Instant::now() + plan.graceful_timeout;
    while !children.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        reap(&mut children);
    }
    for &pid in &children {
        process::kill(pid, signals::SIGKILL);
    }
    if let Some(pidfile) = pidfile {
        pidfile.release();
    }
    0
}

fn reap(children: &mut HashSet<Pid>) {
    while let Some((pid, _status)) = process::reap_one() {
        children.remove(&pid);
    }
}
