//! [`LogSink`]: an in-memory buffer drained to a file by a background thread.
//!
//! # Buffering
//!
//! [`LogSink::append`] copies one finished line into a `Vec` under a mutex: no system call,
//! no allocation once the buffer has grown. A flusher thread takes the whole buffer (swapping
//! in an empty one, so writers wait only for a pointer swap) and writes it with one
//! `write_all`. It does so [`SinkOptions::flush_interval`] after the first line of a batch, at
//! once when the buffer reaches [`SinkOptions::flush_bytes`] (the appender signals a
//! condvar), and when the sink is dropped. When idle, it sleeps without timeout: an idle
//! server does not wake up ten times a second per log.
//!
//! # The cap
//!
//! Bytes buffered plus bytes being written may not exceed [`SinkOptions::max_buffer`]. A
//! line that would exceed it is dropped and counted; the next line that fits is preceded by
//! `ironhorse: N access log lines dropped` (or `error`). A failed write counts the lines it
//! carried the same way. The request thread never waits for the disk.
//!
//! # Fork safety
//!
//! Everything that belongs to a process — the buffer, its mutexes, the flusher thread, the
//! file handle it writes — lives in a `ProcState` stamped with the process id that created
//! it, reached through a lock-free [`ArcSwap`]. Every call compares the stamp with
//! [`std::process::id`]: a forked child (where the parent's flusher does not exist, and where
//! a mutex the parent's threads held at `fork` stays locked forever) never touches the
//! parent's state. It builds its own from a spare descriptor that is read without any lock,
//! drops the parent's unwritten lines (the parent writes them), and starts its own flusher
//! on its first line. The flusher starts lazily, on the first line, so a master that forks
//! workers before logging owns no thread.
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

mod buffer;

use self::buffer::{lock, Core, Flusher, Io, State};

/// Which log a sink carries: decides where `-` goes and how dropped lines are announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// `-` is standard output (gunicorn's `--access-logfile -`).
    Access,
    /// `-` is standard error (gunicorn's `--error-logfile -`).
    Error,
}

impl SinkKind {
    fn label(self) -> &'static str {
        match self {
            SinkKind::Access => "access",
            SinkKind::Error => "error",
        }
    }
}

/// Tuning; the defaults suit production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkOptions {
    /// Most bytes held in memory (buffered plus being written); lines beyond are dropped.
    /// Default 8 MiB.
    pub max_buffer: usize,
    /// Buffered bytes that wake the flusher at once. Default 64 KiB.
    pub flush_bytes: usize,
    /// Longest a line waits in memory while the disk keeps up. Default 100 ms.
    pub flush_interval: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            max_buffer: 8 << 20,
            flush_bytes: 64 << 10,
            flush_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone)]
enum Target {
    Path(PathBuf),
    Stdout,
    Stderr,
}

impl Target {
    fn open(&self) -> io::Result<File> {
        match self {
            Target::Path(p) => OpenOptions::new().append(true).create(true).open(p),
            // A duplicate of the descriptor: writes bypass std's stdout lock and line buffer.
            Target::Stdout => Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?)),
            Target::Stderr => Ok(File::from(io::stderr().as_fd().try_clone_to_owned()?)),
        }
    }
}

/// Counters shared by all the per-process states of one sink.
#[derive(Debug, Default)]
struct Counters {
    /// Dropped lines not yet announced in the log.
    unreported: AtomicU64,
    /// Dropped lines since the sink was opened (in this process and, for a child, its
    /// parent before the fork).
    total: AtomicU64,
}

impl Counters {
    fn dropped(&self, n: u64) {
        self.unreported.fetch_add(n, Ordering::Relaxed);
        self.total.fetch_add(n, Ordering::Relaxed);
    }
}

/// A log destination. Cheap to clone (all clones share one buffer); `Send + Sync`.
///
/// Dropping the last clone writes what is buffered, synchronously. `std::process::exit`
/// runs no destructors: call [`LogSink::flush`] (or the logger's `flush`) before it.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    kind: SinkKind,
    opts: SinkOptions,
    counters: Arc<Counters>,
    current: ArcSwap<ProcState>,
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSink")
            .field("target", &self.shared.target)
            .field("kind", &self.shared.kind)
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// Opens an access log: `target` is a path (appended to, created if missing) or `-` for
    /// standard output.
    pub fn open_access(target: &str) -> io::Result<LogSink> {
        LogSink::open(target, SinkKind::Access, SinkOptions::default())
    }

    /// Opens an error log: `target` is a path (appended to, created if missing) or `-` for
    /// standard error.
    pub fn open_error(target: &str) -> io::Result<LogSink> {
        LogSink::open(target, SinkKind::Error, SinkOptions::default())
    }

    /// Opens a sink with explicit options. No thread is started until the first line.
    pub fn open(target: &str, kind: SinkKind, opts: SinkOptions) -> io::Result<LogSink> {
        let target = match (target, kind) {
            ("-", SinkKind::Access) => Target::Stdout,
            ("-", SinkKind::Error) => Target::Stderr,
            (path, _) => Target::Path(PathBuf::from(path)),
        };
        let counters = Arc::new(Counters::default());
        let state = ProcState::new(
            std::process::id(),
            target.open()?,
            kind,
            opts,
            counters.clone(),
        )?;
        Ok(LogSink {
            shared: Arc::new(Shared {
                target,
                kind,
                opts,
                counters,
                current: ArcSwap::from_pointee(state),
            }),
        })
    }

    /// Queues one line (`line` must end with `\n`). Never waits for the disk: at worst the
    /// line is dropped and counted. `pid` is [`std::process::id`], which callers usually
    /// already have.
    pub fn append(&self, line: &[u8], pid: u32) {
        let guard = self.shared.current.load();
        if guard.pid == pid {
            guard.core.append(line);
        } else {
            match self.adopt(&guard, pid) {
                Some(state) => state.core.append(line),
                None => self.shared.counters.dropped(1),
            }
        }
    }

    /// Writes everything buffered now, on the calling thread (for shutdown and tests).
    pub fn flush(&self) -> io::Result<()> {
        let pid = std::process::id();
        let guard = self.shared.current.load();
        if guard.pid == pid {
            guard.core.write_pending(true)
        } else {
            // A child that never logged has nothing of its own to flush.
            Ok(())
        }
    }

    /// Flushes, then reopens the target: after `logrotate` moved the file away, the following
    /// lines go to a new file at the path (`-` re-duplicates stdout/stderr). On error the old
    /// file stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        let pid = std::process::id();
        let s = &self.shared;
        let file = s.target.open()?;
        let fresh = Arc::new(ProcState::new(
            pid,
            file,
            s.kind,
            s.opts,
            s.counters.clone(),
        )?);
        let old = s.current.swap(fresh);
        if old.pid == pid {
            // Lines appended to the old state by threads that loaded it just before the swap
            // are written by its flusher when the last reference goes (see `Drop`).
            old.core.write_pending(false)?;
        }
        Ok(())
    }

    /// Lines dropped since the sink was opened (buffer full or write failed).
    pub fn dropped_lines(&self) -> u64 {
        self.shared.counters.total.load(Ordering::Relaxed)
    }

    /// In a forked child: replaces the parent's state with one for this process. `None` when
    /// no descriptor could be had (the line is then dropped).
    fn adopt(&self, old: &Arc<ProcState>, pid: u32) -> Option<Arc<ProcState>> {
        let s = &self.shared;
        let file = old.spare_fd.try_clone().or_else(|_| s.target.open()).ok()?;
        // The parent announces its own drops.
        s.counters.unreported.store(0, Ordering::Relaxed);
        let fresh = Arc::new(ProcState::new(pid, file, s.kind, s.opts, s.counters.clone()).ok()?);
        let prev = s.current.compare_and_swap(old, fresh.clone());
        if Arc::ptr_eq(&prev, old) {
            Some(fresh)
        } else {
            // Another thread of this child got there first.
            Some(arc_swap::Guard::into_inner(prev))
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self.current.load();
        if state.pid == std::process::id() {
            let _ = state.core.write_pending(true);
        }
    }
}

/// What one process owns.
struct ProcState {
    pid: u32,
    core: Arc<Core>,
    /// A duplicate of the file the flusher writes, never locked: a forked child clones it.
    spare_fd: File,
}

impl ProcState {
    fn new(
        pid: u32,
        file: File,
        kind: SinkKind,
        opts: SinkOptions,
        counters: Arc<Counters>,
    ) -> io::Result<ProcState> {
        let spare_fd = file.try_clone()?;
        Ok(ProcState {
            pid,
            spare_fd,
            core: Arc::new(Core {
                kind,
                opts,
                counters,
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                io: Mutex::new(Io {
                    file,
                    spare: Vec::new(),
                }),
            }),
        })
    }
}

impl Drop for ProcState {
    fn drop(&mut self) {
        // In a forked child the parent's state may have mutexes locked by threads that do not
        // exist here: leave it alone (its memory is simply freed).
        if self.pid != std::process::id() {
            return;
        }
        let mut st = lock(&self.core.state);
        st.shutdown = true;
        let running = st.flusher == Flusher::Running;
        drop(st);
        if running {
            // The flusher drains what is left and exits; no request thread waits for it.
            self.core.wake.notify_one();
        } else {
            let _ = self.core.write_pending(false);
        }
    }
}

#[cfg(test)]
mod tests;
