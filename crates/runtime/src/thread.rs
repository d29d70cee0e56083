//! A thread per connection, capped at `max_connections`: beyond it, accepting pauses and
//! new clients wait in the kernel's backlog.

use std::sync::Arc;

use super::accept::accept_loop_gated;
use super::connection::Live;
use super::{serve_connection, DriverConfig, STOP_CHECK};

pub fn run(mut config: DriverConfig) -> std::io::Result<()> {
    let live = Arc::new(Live::default());
    let max = config.max_connections.max(1);
    let may_accept = || live.has_room_within(max, STOP_CHECK);
    let result = accept_loop_gated(
        &config.listeners,
        &*config.hooks,
        || {},
        may_accept,
        |stream, info| {
            let (protocol, hooks) = (config.protocol.clone(), config.hooks.clone());
            // Counted out when the thread ends, or when it cannot start (the closure drops).
            let ticket = live.ticket();
            let _ = std::thread::Builder::new()
                .name("ih-conn".into())
                .spawn(move || {
                    serve_connection(stream, info, &*protocol, &hooks);
                    drop(ticket);
                });
        },
    );
    // Let in-flight connections finish, within the graceful timeout; the listeners close
    // first (a client connecting now is refused, not reset when the drain ends).
    drop(std::mem::take(&mut config.listeners));
    live.drain(config.graceful_timeout);
    result
}
