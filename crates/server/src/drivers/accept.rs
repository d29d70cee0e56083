//! The accept loop shared by the blocking drivers.

use std::io;
use std::os::fd::AsFd;

use ironhorse_app::ConnInfo;

use super::{stopping, STOP_CHECK};
use crate::listener::{Listener, Stream};

/// Accepts connections from all `listeners` and hands each to `handle`, until a stop is
/// requested. Waits with a timeout so a stop is noticed within [`STOP_CHECK`].
pub fn accept_loop(listeners: &[Listener], handle: impl FnMut(Stream, ConnInfo)) -> io::Result<()> {
    accept_loop_ticking(listeners, || {}, handle)
}

/// [`accept_loop`], also calling `tick` at every wake-up (at least every [`STOP_CHECK`]).
pub fn accept_loop_ticking(
    listeners: &[Listener],
    mut tick: impl FnMut(),
    mut handle: impl FnMut(Stream, ConnInfo),
) -> io::Result<()> {
    let timeout_ms = STOP_CHECK.as_millis() as i32;
    while !stopping() {
        crate::process::beat();
        tick();
        let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
        let ready = ironhorse_sys::wait_readable(&fds, timeout_ms)?;
        for index in ready {
            // Several processes or threads may race for one connection: losing is normal.
            match listeners[index].accept() {
                Ok((stream, info)) => handle(stream, info),
                Err(e) if is_transient(&e) => {}
                Err(e) if is_fd_exhaustion(&e) => {
                    crate::process::warn(format_args!("accept: {e}; pausing"));
                    std::thread::sleep(STOP_CHECK);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Accept errors that only concern one connection or a lost race.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

/// Out of descriptors or memory: back off instead of spinning or dying.
pub(crate) fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
