//! Access and error logs for a production server, written without ever blocking a request
//! on the disk.
//!
//! - [`AccessLog`]: gunicorn's `access_log_format` language, compiled once
//!   ([`CompiledFormat`], default [`DEFAULT_FORMAT`]), or one JSON object per line
//!   ([`AccessFormat::Json`]). Request-derived values are escaped so clients cannot forge
//!   lines.
//! - [`ErrorLog`]: `[2026-11-23 07:40:12 +0000] [PID] [LEVEL] message` with a minimum
//!   [`Level`].
//! - [`LogSink`]: a file or `-`. A log call renders the line into a per-thread scratch buffer
//!   and copies it into the sink's memory buffer under a mutex; a background thread, started
//!   on the first line (so also afresh in each forked child), writes the buffer out every
//!   100 ms or at 64 KiB. Past 8 MiB in memory, lines are dropped and counted, and the count
//!   is written with the next line. See [`sink`](LogSink) for buffering and fork safety.
//!
//! ```no_run
//! use ironhorse_log::{AccessFormat, AccessLog, ErrorLog, Level, LogSink};
//! let access = AccessLog::new(LogSink::open_access("-")?, AccessFormat::default());
//! let errors = ErrorLog::new(LogSink::open_error("/var/log/ih.err")?, "info".parse()?);
//! errors.info(format_args!("Listening at: http://{}", "127.0.0.1:8000"));
//! // ... on SIGUSR1: access.reopen()?; errors.reopen()?;
//! // ... at exit: access.flush()?; errors.flush()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Times are UTC, written `+0000`. The cost of one call is measured by
//! `cargo bench -p ironhorse-log` (`benches/log_call.rs`).
#![forbid(unsafe_code)]

mod access;
mod error_log;
mod escape;
mod format;
mod sink;
#[cfg(test)]
mod testutil;
mod time;

pub use access::{no_headers, render, AccessEntry, AccessFormat, AccessLog, HeaderLookup};
pub use error_log::{ErrorLog, Level, ParseLevelError};
pub use format::{CompiledFormat, FormatError, DEFAULT_FORMAT};
pub use sink::{LogSink, SinkKind, SinkOptions};

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's cleared line buffer (a fresh one if it is busy or gone).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut f = Some(f);
    let reused = SCRATCH.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        let r = (f.take()?)(&mut buf);
        if buf.capacity() > 64 << 10 {
            // One huge line must not pin memory in every thread.
            *buf = Vec::new();
        }
        Some(r)
    });
    match reused {
        Ok(Some(r)) => r,
        _ => (f.take().expect("scratch closure runs once"))(&mut Vec::with_capacity(256)),
    }
}

#[cfg(test)]
mod tests;
