//! A thread per connection, capped at `max_connections`: beyond it, accepting pauses and
//! new clients wait in the kernel's backlog.

use std::sync::Arc;

use super::connection::Live;
use super::{accept_loop, serve_connection, DriverConfig};

pub fn run(config: DriverConfig) -> std::io::Result<()> {
    let live = Arc::new(Live::default());
    let result = accept_loop(&config.listeners, &*config.hooks, |stream, info| {
        live.wait_below(config.max_connections);
        live.enter();
        let (protocol, hooks) = (config.protocol.clone(), config.hooks.clone());
        let thread_live = live.clone();
        let spawned = std::thread::Builder::new()
            .name("ih-conn".into())
            .spawn(move || {
                serve_connection(stream, info, &*protocol, &hooks);
                thread_live.leave();
            });
        if spawned.is_err() {
            live.leave();
        }
    });
    // Let in-flight connections finish, within the graceful timeout.
    live.drain(config.graceful_timeout);
    result
}
