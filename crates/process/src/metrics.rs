//! `--metrics-bind` in the process strategies: the board (shared counter slots) made before
//! any fork, the `/metrics` thread, and a slot for each serving process. See the
//! `ironhorse-metrics` crate for how counters flow.

use std::sync::Arc;

use ironhorse_metrics::{Board, Meter, Watched};
use std::os::fd::AsFd;

use super::{ProcessLogs, ServerPlan};

/// Most serving processes a master measures at once (`ctl add` stops at 1024 workers);
/// more go unmeasured, with a log line.
pub(super) const MASTER_SLOTS: usize = 1024;

/// Makes the board for up to `slots` serving processes and starts serving it, if
/// `--metrics-bind` was given. `Err`: the exit code (the reason is logged).
pub(super) fn start(plan: &ServerPlan, slots: usize) -> Result<Option<Arc<Board>>, i32> {
    let Some(listener) = plan.supervision.metrics.clone() else {
        return Ok(None);
    };
    let board = Board::new(slots).map_err(|e| {
        plan.logs
            .error(format_args!("--metrics-bind: cannot map the counters: {e}"));
        1
    })?;
    // With --reuse-port the master's own copies are closed (they would take connections
    // nobody accepts): nothing to watch then.
    let watched = if plan.supervision.per_worker_sockets.is_some() {
        Vec::new()
    } else {
        plan.listeners
            .iter()
            .filter_map(|l| {
                let fd = l.as_fd().try_clone_to_owned().ok()?;
                Some(Watched {
                    name: l.display_addr(),
                    fd,
                })
            })
            .collect()
    };
    ironhorse_metrics::spawn(listener, board.clone(), watched).map_err(|e| {
        plan.logs
            .error(format_args!("--metrics-bind: cannot start its thread: {e}"));
        1
    })?;
    Ok(Some(board))
}

/// A slot for this very process (models without a master): it serves and is measured.
pub(super) fn own_meter(board: Option<&Arc<Board>>) -> Option<Meter> {
    let board = board?;
    let slot = board.claim()?;
    board.owned_by(slot, std::process::id() as i32);
    Some(board.meter(slot))
}

/// A slot for a process about to be forked; `None` (logged) when all are taken.
pub(super) fn claim(board: Option<&Arc<Board>>, logs: &ProcessLogs) -> Option<usize> {
    let board = board?;
    let slot = board.claim();
    if slot.is_none() {
        logs.warn(format_args!(
            "--metrics-bind: every counter slot is taken; the next process goes unmeasured"
        ));
    }
    slot
}
