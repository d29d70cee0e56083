//! The accept loop shared by the blocking drivers.

use std::io;
use std::os::fd::AsFd;

use ironhorse_app::ConnInfo;

use super::connection::{accept_failed, AcceptFailure};
use super::{stopping, STOP_CHECK};
use crate::listener::{Listener, Stream};
use ironhorse_protocol::hooks::WorkerHooks;

/// Accepts connections from all `listeners` and hands each to `handle`, until a stop is
/// requested. Waits with a timeout so a stop is noticed within [`STOP_CHECK`].
pub fn accept_loop(
    listeners: &[Listener],
    hooks: &dyn WorkerHooks,
    handle: impl FnMut(Stream, ConnInfo),
) -> io::Result<()> {
    accept_loop_ticking(listeners, hooks, || {}, handle)
}

/// [`accept_loop`], also calling `tick` at every wake-up (at least every [`STOP_CHECK`]).
pub fn accept_loop_ticking(
    listeners: &[Listener],
    hooks: &dyn WorkerHooks,
    tick: impl FnMut(),
    handle: impl FnMut(Stream, ConnInfo),
) -> io::Result<()> {
    accept_loop_gated(listeners, hooks, tick, || true, handle)
}

/// [`accept_loop_ticking`], asking `may_accept` before each `accept`: it may wait (at most
/// about [`STOP_CHECK`], so that the loop keeps beating and noticing a stop), and when it
/// says no, the clients stay in the backlog for a sibling process, or for later.
pub(crate) fn accept_loop_gated(
    listeners: &[Listener],
    hooks: &dyn WorkerHooks,
    mut tick: impl FnMut(),
    mut may_accept: impl FnMut() -> bool,
    mut handle: impl FnMut(Stream, ConnInfo),
) -> io::Result<()> {
    let timeout_ms = STOP_CHECK.as_millis() as i32;
    while !stopping() {
        hooks.beat();
        tick();
        let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
        let ready = ironhorse_sys::wait_readable(&fds, timeout_ms)?;
        for index in ready {
            // The gate may wait: beat before each, so that several listeners it holds up in
            // one round do not add up to a silence.
            hooks.beat();
            if !may_accept() {
                break;
            }
            // Several processes or threads may race for one connection: losing is normal.
            match listeners[index].accept() {
                Ok((stream, info)) => handle(stream, info),
                Err(e) => match accept_failed(&e, hooks) {
                    AcceptFailure::Skip => {}
                    AcceptFailure::BackOff => std::thread::sleep(STOP_CHECK),
                    AcceptFailure::Fatal => return Err(e),
                },
            }
        }
    }
    Ok(())
}
