//! A process per connection: the parent accepts and forks; each child serves one client
//! and exits. The parent reaps children at every wake-up and caps how many run at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ServerPlan;
use ironhorse_runtime::{accept_loop_ticking, serve_connection, STOP_CHECK};
use ironhorse_sys::process::{self, Forked, Pid};
use ironhorse_sys::signals;

pub fn run(plan: ServerPlan, on_ready: impl FnOnce()) -> i32 {
    let max_children = plan.max_connections.max(1);
    let board = match super::metrics::start(&plan, max_children) {
        Ok(board) => board,
        Err(code) => return code,
    };
    let (pidfile, protocol) = match super::start_serving(&plan, on_ready) {
        Ok(started) => started,
        Err(code) => return code,
    };
    // Each child, with its slot of counters (released, i.e. added to the totals, when it
    // is reaped).
    let children: RefCell<Children> = RefCell::new(Children {
        pids: HashMap::new(),
        board: board.clone(),
    });
    let hooks = crate::hooks::process_hooks(&plan.logs, None);
    let result = accept_loop_ticking(
        &plan.listeners,
        &*hooks,
        || {
            reap(&mut children.borrow_mut());
            super::take_signals_alone(plan.supervision.hup_alone.as_ref(), &plan.logs);
        },
        |stream, info| {
            while children.borrow().pids.len() >= max_children
                && signals::stop_requested().is_none()
            {
                std::thread::sleep(Duration::from_millis(5));
                reap(&mut children.borrow_mut());
            }
            let slot = super::metrics::claim(board.as_ref(), &plan.logs);
            protocol.before_fork();
            match process::fork() {
                Ok(Forked::Child) => {
                    // The child keeps the defaults of the master's signals, as before the
                    // parent took them (it logs them; a child has nothing to say).
                    let _ = signals::reset(super::MASTER_ONLY);
                    protocol.after_fork_child();
                    let meter = board.as_ref().zip(slot).map(|(b, s)| b.meter(s));
                    let hooks = crate::hooks::process_hooks(&plan.logs, meter);
                    serve_connection(stream, info, &*protocol, &hooks);
                    plan.logs.exit(0);
                }
                Ok(Forked::Parent(pid)) => {
                    protocol.after_fork_parent();
                    if let (Some(board), Some(slot)) = (&board, slot) {
                        board.owned_by(slot, pid.as_raw());
                    }
                    children.borrow_mut().pids.insert(pid, slot);
                }
                Err(e) => {
                    protocol.after_fork_parent();
                    children.borrow_mut().release(slot);
                    plan.logs.error(format_args!("fork failed: {e}"));
                    std::thread::sleep(STOP_CHECK);
                }
            }
        },
    );
    if let Err(e) = result {
        plan.logs.error(format_args!("accept failed: {e}"));
    }
    let mut children = children.into_inner();
    // Stop: children finish their client (idle ones leave at once), bounded by the
    // graceful timeout.
    for &pid in children.pids.keys() {
        process::kill(pid, signals::SIGTERM);
    }
    let deadline = Instant::now() + plan.graceful_timeout;
    while !children.pids.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        reap(&mut children);
    }
    for &pid in children.pids.keys() {
        process::kill(pid, signals::SIGKILL);
    }
    for listener in &plan.listeners {
        listener.unlink();
    }
    if let Some(pidfile) = pidfile {
        pidfile.release();
    }
    0
}

/// The children serving now, each with its counter slot (if measured).
struct Children {
    pids: HashMap<Pid, Option<usize>>,
    board: Option<std::sync::Arc<ironhorse_metrics::Board>>,
}

impl Children {
    fn release(&self, slot: Option<usize>) {
        if let (Some(board), Some(slot)) = (&self.board, slot) {
            board.release(slot);
        }
    }
}

fn reap(children: &mut Children) {
    while let Some((pid, _status)) = process::reap_one() {
        if let Some(slot) = children.pids.remove(&pid) {
            children.release(slot);
        }
    }
}
