//! A thread per connection, capped at `max_connections`: beyond it, accepting pauses and
//! new clients wait in the kernel's backlog.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::{accept_loop, serve_connection, DriverConfig};

/// Counts live connection threads.
#[derive(Default)]
struct Live {
    count: Mutex<usize>,
    changed: Condvar,
}

pub fn run(config: DriverConfig) -> std::io::Result<()> {
    let live = Arc::new(Live::default());
    let result = accept_loop(&config.listeners, |stream, info| {
        let mut count = live.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count >= config.max_connections {
            count = live.changed.wait(count).unwrap_or_else(|e| e.into_inner());
        }
        *count += 1;
        drop(count);
        let protocol = config.protocol.clone();
        let thread_live = live.clone();
        let spawned = std::thread::Builder::new()
            .name("ih-conn".into())
            .spawn(move || {
                serve_connection(stream, info, &*protocol);
                *thread_live.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                thread_live.changed.notify_all();
            });
        if spawned.is_err() {
            *live.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        }
    });
    // Let in-flight connections finish, within the graceful timeout.
    let deadline = Instant::now() + config.graceful_timeout;
    let mut count = live.count.lock().unwrap_or_else(|e| e.into_inner());
    while *count > 0 && Instant::now() < deadline {
        count = live
            .changed
            .wait_timeout(count, super::STOP_CHECK)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    result
}
