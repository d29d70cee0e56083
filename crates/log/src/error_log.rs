//! The error log.
use std::fmt::{self, Write as _};
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::escape::{push_message, push_u64};
use crate::sink::LogSink;
use crate::{time, with_scratch};

/// Severity, in increasing order (`Debug < Critical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// The name written in the log: `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`.
    pub fn as_upper(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Level {
    /// The `--log-level` spelling: `debug`, `info`, `warning`, `error`, `critical`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        })
    }
}

/// A `--log-level` that is none of `debug`, `info`, `warning` (or `warn`), `error`,
/// `critical`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLevelError(pub String);

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown log level {:?} (expected debug, info, warning, error or critical)",
            self.0
        )
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Case-insensitive, as gunicorn's `--log-level`.
    fn from_str(s: &str) -> Result<Level, ParseLevelError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            "critical" => Level::Critical,
            _ => return Err(ParseLevelError(s.to_owned())),
        })
    }
}

/// The error log: `[2026-11-23 07:40:12 +0000] [PID] [LEVEL] message`, one line per event
/// (gunicorn's layout; UTC). A message's own newlines continue it on lines indented by two
/// spaces; other control characters are written `\xHH`. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct ErrorLog {
    inner: Arc<(LogSink, Level)>,
}

impl ErrorLog {
    /// Events below `level` are discarded.
    pub fn new(sink: LogSink, level: Level) -> ErrorLog {
        ErrorLog {
            inner: Arc::new((sink, level)),
        }
    }

    /// Whether events at `level` are written (to skip building expensive messages).
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.inner.1
    }

    /// Queues one event, e.g. `log.log(Level::Info, format_args!("Booting worker {pid}"))`.
    pub fn log(&self, level: Level, msg: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        let pid = std::process::id();
        with_scratch(|line| {
            render(level, msg, SystemTime::now(), pid, line);
            self.inner.0.append(line, pid);
        });
    }

    pub fn debug(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Debug, msg)
    }
    pub fn info(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Info, msg)
    }
    pub fn warning(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Warning, msg)
    }
    pub fn error(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Error, msg)
    }
    pub fn critical(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Critical, msg)
    }

    /// Flushes and reopens the file (`SIGUSR1`).
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

/// Escapes as it formats, so the message is never copied twice.
struct Escaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_message(self.0, s.as_bytes());
        Ok(())
    }
}

/// Appends one complete line, newline included.
pub(crate) fn render(
    level: Level,
    msg: fmt::Arguments<'_>,
    now: SystemTime,
    pid: u32,
    out: &mut Vec<u8>,
) {
    let (secs, _) = time::split(now);
    out.push(b'[');
    out.extend_from_slice(&time::stamp(secs).iso);
    out.extend_from_slice(b" +0000] [");
    push_u64(out, u64::from(pid));
    out.extend_from_slice(b"] [");
    out.extend_from_slice(level.as_upper().as_bytes());
    out.extend_from_slice(b"] ");
    let start = out.len();
    let _ = Escaper(out).write_fmt(msg);
    // A trailing newline would leave an empty indented line.
    while out.len() > start && out.ends_with(b"\n  ") {
        out.truncate(out.len() - 3);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{SinkKind, SinkOptions};
    use crate::testutil::TempDir;
    use std::time::{Duration, UNIX_EPOCH};

    fn line(level: Level, msg: fmt::Arguments<'_>) -> String {
        let mut out = Vec::new();
        let t = UNIX_EPOCH + Duration::from_secs(1_795_419_612);
        render(level, msg, t, 4242, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_event_is_one_line_with_date_pid_and_level() {
        assert_eq!(
            line(Level::Info, format_args!("Booting worker with pid: {}", 7)),
            "[2026-11-23 07:40:12 +0000] [4242] [INFO] Booting worker with pid: 7\n"
        );
    }

    #[test]
    fn a_multi_line_message_continues_on_indented_lines_and_cannot_forge_a_record() {
        let hostile = "bad path /x\n[2026-11-23 07:40:12 +0000] [1] [CRITICAL] forged\r\x1b";
        assert_eq!(
            line(Level::Error, format_args!("{hostile}\n")),
            "[2026-11-23 07:40:12 +0000] [4242] [ERROR] bad path /x\n  \
             [2026-11-23 07:40:12 +0000] [1] [CRITICAL] forged\\x0D\\x1B\n"
        );
    }

    #[test]
    fn levels_parse_case_insensitively_order_and_display() {
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warning));
        assert_eq!("warn".parse::<Level>(), Ok(Level::Warning));
        assert_eq!("Critical".parse::<Level>(), Ok(Level::Critical));
        assert!("verbose".parse::<Level>().is_err());
        assert!(Level::Debug < Level::Info && Level::Error < Level::Critical);
        for l in [
            Level::Debug,
            Level::Info,
            Level::Warning,
            Level::Error,
            Level::Critical,
        ] {
            assert_eq!(l.to_string().parse::<Level>(), Ok(l));
        }
    }

    #[test]
    fn events_below_the_minimum_level_are_not_written() {
        let dir = TempDir::new("level");
        let path = dir.path("error.log");
        let sink = LogSink::open(
            path.to_str().unwrap(),
            SinkKind::Error,
            SinkOptions::default(),
        )
        .unwrap();
        let log = ErrorLog::new(sink, Level::Warning);
        log.debug(format_args!("no"));
        log.info(format_args!("no"));
        log.warning(format_args!("w"));
        log.error(format_args!("e"));
        log.critical(format_args!("c"));
        log.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let levels: Vec<&str> = text
            .lines()
            .map(|l| l.split("] [").nth(2).unwrap())
            .collect();
        assert_eq!(levels, ["WARNING] w", "ERROR] e", "CRITICAL] c"]);
        let pid = std::process::id().to_string();
        assert!(text.lines().all(|l| l.contains(&format!("] [{pid}] ["))));
    }
}
