//! One connection at a time: the seeds' first server.

use super::{accept_loop, serve_connection, DriverConfig};

pub fn run(config: DriverConfig) -> std::io::Result<()> {
    accept_loop(&config.listeners, &*config.hooks, |stream, info| {
        serve_connection(stream, info, &*config.protocol, &config.hooks)
    })
}
