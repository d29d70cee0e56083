//! The access log.
use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::escape::{push_ip, push_json, push_u64};
use crate::format::{CompiledFormat, FormatError, DEFAULT_FORMAT};
use crate::sink::LogSink;
use crate::{time, with_scratch};

/// Looks a request header up by name (case-insensitively), e.g. `&|n| head.header(n)`.
pub type HeaderLookup<'a> = dyn Fn(&str) -> Option<&'a [u8]> + 'a;

/// A [`HeaderLookup`] for a request without headers.
pub fn no_headers<'a>(_: &str) -> Option<&'a [u8]> {
    None
}

/// One finished request, borrowed from wherever the server keeps it.
pub struct AccessEntry<'a> {
    /// The peer; `None` for Unix-domain sockets (rendered `-`).
    pub remote: Option<SocketAddr>,
    pub method: &'a str,
    /// The request-target as sent (`/a%20b?x=1`).
    pub target: &'a str,
    /// The path without the query.
    pub path: &'a str,
    /// The query string without `?` (`""` when absent).
    pub query: &'a str,
    /// `HTTP/1.1`.
    pub version: &'a str,
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Request headers, looked up only for the atoms that need them.
    pub request_headers: &'a HeaderLookup<'a>,
    pub response_headers: &'a [(Cow<'static, str>, Vec<u8>)],
    /// When the request started (its first byte, or when its head was parsed).
    pub started: SystemTime,
    pub duration: Duration,
}

/// How access lines look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessFormat {
    /// gunicorn's `access_log_format` language (see [`CompiledFormat`]).
    Text(CompiledFormat),
    /// One JSON object per line (`--access-log-json`), with the keys `remote_addr`, `time`
    /// (RFC 3339, UTC, milliseconds), `method`, `path`, `query`, `protocol`, `status`,
    /// `bytes`, `referer`, `user_agent`, `duration_us` and `pid`, always in that order.
    /// Strings are JSON-escaped (invalid UTF-8 becomes U+FFFD first); a missing remote
    /// address, referer or user agent is `null`.
    Json,
}

impl AccessFormat {
    /// Compiles a gunicorn `access_log_format`.
    pub fn text(fmt: &str) -> Result<AccessFormat, FormatError> {
        CompiledFormat::parse(fmt).map(AccessFormat::Text)
    }
}

impl Default for AccessFormat {
    /// gunicorn's default format.
    fn default() -> Self {
        AccessFormat::text(DEFAULT_FORMAT).expect("the default format compiles")
    }
}

/// The access log: renders entries and queues them on a [`LogSink`].
/// `Clone + Send + Sync`; clones share the sink.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<(LogSink, AccessFormat)>,
}

impl AccessLog {
    pub fn new(sink: LogSink, format: AccessFormat) -> AccessLog {
        AccessLog {
            inner: Arc::new((sink, format)),
        }
    }

    /// Renders and queues one line. No system call besides `getpid` (fork detection), no
    /// allocation once the thread's scratch buffer has grown, never waits for the disk.
    pub fn log(&self, entry: &AccessEntry<'_>) {
        let (sink, format) = &*self.inner;
        let pid = std::process::id();
        with_scratch(|line| {
            render(format, entry, pid, line);
            line.push(b'\n');
            sink.append(line, pid);
        });
    }

    /// Flushes and reopens the file (`SIGUSR1`, after logrotate moved it).
    pub fn reopen(&self) -> io::Result<()> {
        self.inner.0.reopen()
    }

    /// Writes everything buffered, now, on this thread.
    pub fn flush(&self) -> io::Result<()> {
        self.inner.0.flush()
    }

    pub fn sink(&self) -> &LogSink {
        &self.inner.0
    }
}

/// Appends one line for `entry`, without the newline (exposed for tests and custom sinks).
pub fn render(format: &AccessFormat, entry: &AccessEntry<'_>, pid: u32, out: &mut Vec<u8>) {
    match format {
        AccessFormat::Text(f) => f.render(entry, pid, out),
        AccessFormat::Json => render_json(entry, pid, out),
    }
}

fn render_json(e: &AccessEntry<'_>, pid: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"remote_addr\":");
    match e.remote {
        Some(addr) => {
            // An IP address needs no escaping.
            out.push(b'"');
            push_ip(out, addr.ip());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"time\":\"");
    let (secs, nanos) = time::split(e.started);
    let mut iso = time::stamp(secs).iso;
    iso[10] = b'T';
    out.extend_from_slice(&iso);
    out.push(b'.');
    let start = out.len();
    push_u64(out, u64::from(nanos / 1_000_000) + 1000);
    out.remove(start); // the leading `1` that zero-pads to three digits
    out.extend_from_slice(b"Z\",\"method\":");
    push_json(out, e.method.as_bytes());
    out.extend_from_slice(b",\"path\":");
    push_json(out, e.path.as_bytes());
    out.extend_from_slice(b",\"query\":");
    push_json(out, e.query.as_bytes());
    out.extend_from_slice(b",\"protocol\":");
    push_json(out, e.version.as_bytes());
    out.extend_from_slice(b",\"status\":");
    push_u64(out, u64::from(e.status));
    out.extend_from_slice(b",\"bytes\":");
    push_u64(out, e.bytes);
    for (key, header) in [
        (&b",\"referer\":"[..], "referer"),
        (b",\"user_agent\":", "user-agent"),
    ] {
        out.extend_from_slice(key);
        match (e.request_headers)(header) {
            Some(v) => push_json(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"duration_us\":");
    push_u64(out, e.duration.as_micros() as u64);
    out.extend_from_slice(b",\"pid\":");
    push_u64(out, u64::from(pid));
    out.push(b'}');
}
