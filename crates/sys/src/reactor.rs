//! Registering a socket with tokio's reactor by descriptor.
//!
//! `tokio::io::unix::AsyncFd::register` is `unsafe` (since tokio 1.54 its safe `new` is
//! deprecated as unsound for an arbitrary `AsRawFd`: the reactor must not be left watching a
//! descriptor that was closed or reused behind it). For a `socket2::Socket` the contract holds
//! by construction, so this safe function is the one place that says so, and the runtime
//! gets one tokio type for TCP and Unix sockets alike.

use std::io;

use socket2::Socket;
use tokio::io::unix::AsyncFd;

/// Registers `socket` (non-blocking) with the current tokio runtime's reactor, for reading
/// and writing. Panics outside a runtime, as tokio's registration does.
pub fn register_socket(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a `Socket` owns its descriptor: it is open from creation and closed only when
    // the `Socket` is dropped, which the `AsyncFd` does after deregistering it (or hands the
    // `Socket` back whole with `into_inner`). `as_raw_fd` always returns that one descriptor.
    Ok(unsafe { AsyncFd::register(socket) }?)
}
