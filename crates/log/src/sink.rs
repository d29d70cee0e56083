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
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Flusher {
    #[default]
    NotStarted,
    Running,
    /// `thread::spawn` failed; retried when the buffer reaches `flush_bytes`.
    Failed,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// Bytes taken by the writer and not yet written.
    in_flight: usize,
    flusher: Flusher,
    /// The flusher sleeps without timeout because the buffer was empty.
    idle: bool,
    /// The flusher was signalled for `flush_bytes`.
    kicked: bool,
    shutdown: bool,
}

struct Io {
    file: File,
    /// The buffer being written; swapped with `State::buf`, so both keep their capacity.
    spare: Vec<u8>,
}

struct Core {
    kind: SinkKind,
    opts: SinkOptions,
    counters: Arc<Counters>,
    state: Mutex<State>,
    wake: Condvar,
    /// Held while writing; taken before `state` (never the other way round), so writes leave
    /// in the order the lines were buffered.
    io: Mutex<Io>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain bytes behind: carry on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Core {
    fn note(&self, unreported: u64) -> String {
        format!(
            "ironhorse: {unreported} {} log lines dropped\n",
            self.kind.label()
        )
    }

    fn append(self: &Arc<Self>, line: &[u8]) {
        let mut st = lock(&self.state);
        if st.buf.capacity() == 0 {
            st.buf
                .reserve(self.opts.flush_bytes.min(self.opts.max_buffer) + 4096);
        }
        let used = st.buf.len() + st.in_flight;
        let unreported = self.counters.unreported.load(Ordering::Relaxed);
        let note = (unreported > 0).then(|| self.note(unreported));
        let need = line.len() + note.as_ref().map_or(0, String::len);
        if used + need > self.opts.max_buffer {
            drop(st);
            self.counters.dropped(1);
            return;
        }
        if let Some(note) = note {
            self.counters
                .unreported
                .fetch_sub(unreported, Ordering::Relaxed);
            st.buf.extend_from_slice(note.as_bytes());
        }
        st.buf.extend_from_slice(line);

        let start = st.flusher == Flusher::NotStarted
            || (st.flusher == Flusher::Failed && st.buf.len() >= self.opts.flush_bytes);
        if start {
            st.flusher = Flusher::Running;
        }
        let mut notify = false;
        if st.idle {
            // The flusher sleeps without timeout on an empty buffer: start its interval.
            st.idle = false;
            notify = true;
        }
        if st.buf.len() >= self.opts.flush_bytes && !st.kicked {
            st.kicked = true;
            notify = true;
        }
        drop(st);
        if start {
            let core = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("ironhorse-log".into())
                .spawn(move || core.run_flusher());
            if spawned.is_err() {
                lock(&self.state).flusher = Flusher::Failed;
            }
        } else if notify {
            self.wake.notify_one();
        }
    }

    fn run_flusher(&self) {
        loop {
            {
                let mut st = lock(&self.state);
                while st.buf.is_empty() && !st.shutdown {
                    st.idle = true;
                    st = self.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                st.idle = false;
                if !st.shutdown && st.buf.len() < self.opts.flush_bytes {
                    // Batch: let the lines of the next `flush_interval` join this write.
                    st = self
                        .wake
                        .wait_timeout(st, self.opts.flush_interval)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                if st.shutdown {
                    drop(st);
                    let _ = self.write_pending(false);
                    return;
                }
            }
            let _ = self.write_pending(false);
        }
    }

    /// Writes what is buffered, on the calling thread. With `announce`, pending drop counts
    /// are written too even if no line follows them.
    fn write_pending(&self, announce: bool) -> io::Result<()> {
        let mut io = lock(&self.io);
        let mut st = lock(&self.state);
        if announce {
            let unreported = self.counters.unreported.swap(0, Ordering::Relaxed);
            if unreported > 0 {
                st.buf.extend_from_slice(self.note(unreported).as_bytes());
            }
        }
        if st.buf.is_empty() {
            return Ok(());
        }
        let Io { file, spare } = &mut *io;
        std::mem::swap(&mut st.buf, spare);
        st.in_flight = spare.len();
        st.kicked = false;
        drop(st);

        let result = file.write_all(spare);
        if result.is_err() {
            let lines = spare.iter().filter(|&&b| b == b'\n').count() as u64;
            self.counters.dropped(lines);
        }
        spare.clear();
        if spare.capacity() > 4 * self.opts.flush_bytes {
            // After a burst, do not keep megabytes around.
            spare.shrink_to(2 * self.opts.flush_bytes);
        }
        lock(&self.state).in_flight = 0;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn quiet() -> SinkOptions {
        // The flusher only runs on explicit flush, so tests see exact buffer contents.
        SinkOptions {
            max_buffer: 1000,
            flush_bytes: 1 << 30,
            flush_interval: Duration::from_secs(3600),
        }
    }

    #[test]
    fn lines_beyond_the_cap_are_dropped_counted_and_announced_in_the_next_write() {
        let dir = TempDir::new("cap");
        let path = dir.path("access.log");
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
        let pid = std::process::id();
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>(); // 100 bytes
        for _ in 0..15 {
            sink.append(&line, pid);
        }
        // 1000 bytes fit: 10 lines kept, 5 dropped.
        assert_eq!(sink.dropped_lines(), 5);
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 11, "{text}");
        assert!(
            text.ends_with("ironhorse: 5 access log lines dropped\n"),
            "{text}"
        );

        // Reported once: the next line is written plainly.
        sink.append(b"after\n", pid);
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("dropped\nafter\n"), "{text}");
        assert_eq!(sink.dropped_lines(), 5);
    }

    #[test]
    fn the_drop_notice_precedes_the_next_line_that_fits() {
        let dir = TempDir::new("notice");
        let path = dir.path("error.log");
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Error, quiet()).unwrap();
        let pid = std::process::id();
        sink.append(&[b'y'; 1001], pid);
        sink.append(b"ok\n", pid);
        drop(sink);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "ironhorse: 1 error log lines dropped\nok\n");
    }

    #[test]
    fn dropping_the_sink_writes_what_is_buffered() {
        let dir = TempDir::new("drop");
        let path = dir.path("a.log");
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
        sink.append(b"one\n", std::process::id());
        sink.append(b"two\n", std::process::id());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        drop(sink);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    }

    #[test]
    fn reopen_after_rename_sends_the_following_lines_to_a_new_file() {
        let dir = TempDir::new("reopen");
        let path = dir.path("a.log");
        let rotated = dir.path("a.log.1");
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
        let pid = std::process::id();
        sink.append(b"before\n", pid);
        std::fs::rename(&path, &rotated).unwrap();
        sink.append(b"still old\n", pid);
        sink.reopen().unwrap();
        sink.append(b"after\n", pid);
        sink.flush().unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
    }

    #[test]
    fn the_background_flusher_writes_within_the_interval_without_an_explicit_flush() {
        let dir = TempDir::new("bg");
        let path = dir.path("a.log");
        let opts = SinkOptions {
            flush_interval: Duration::from_millis(10),
            ..SinkOptions::default()
        };
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
        sink.append(b"hello\n", std::process::id());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap() != "hello\n" {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        // And again after going idle.
        sink.append(b"again\n", std::process::id());
        while std::fs::read_to_string(&path).unwrap() != "hello\nagain\n" {
            assert!(std::time::Instant::now() < deadline, "never flushed twice");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn an_idle_flusher_wakes_for_a_line_preceded_by_a_drop_notice() {
        let dir = TempDir::new("idle-notice");
        let path = dir.path("a.log");
        let opts = SinkOptions {
            max_buffer: 250,
            flush_bytes: 1 << 20,
            flush_interval: Duration::from_millis(5),
        };
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
        let pid = std::process::id();
        let wait_for = |want: &str| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let text = std::fs::read_to_string(&path).unwrap();
                if text == want {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "got {text:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        sink.append(b"a\n", pid);
        wait_for("a\n");
        // The flusher is now idle; a dropped line then a kept one must still be written.
        std::thread::sleep(Duration::from_millis(20));
        sink.append(&[b'x'; 300], pid);
        sink.append(b"b\n", pid);
        wait_for("a\nironhorse: 1 access log lines dropped\nb\n");
    }

    #[test]
    fn the_buffer_reaching_flush_bytes_wakes_the_flusher_at_once() {
        let dir = TempDir::new("kick");
        let path = dir.path("a.log");
        let opts = SinkOptions {
            max_buffer: 1 << 20,
            flush_bytes: 100,
            flush_interval: Duration::from_secs(3600),
        };
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
        let pid = std::process::id();
        for _ in 0..20 {
            sink.append(b"0123456789\n", pid);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() < 100 {
            assert!(std::time::Instant::now() < deadline, "flusher not woken");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_state_stamped_with_another_pid_is_replaced_not_used() {
        // What a forked child sees: the state carries the parent's pid. Simulate it by
        // appending with a pid that differs from the stamp.
        let dir = TempDir::new("adopt");
        let path = dir.path("a.log");
        let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
        let parent_state = sink.shared.current.load_full();
        let fake_child = std::process::id().wrapping_add(1);
        sink.append(b"child\n", fake_child);
        let child_state = sink.shared.current.load_full();
        assert_eq!(child_state.pid, fake_child);
        assert!(!Arc::ptr_eq(&parent_state, &child_state));
        assert!(lock(&parent_state.core.state).buf.is_empty());
        // The child's state writes through its own duplicate of the descriptor.
        child_state.core.write_pending(false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "child\n");
    }

    #[test]
    fn many_threads_appending_lose_nothing_below_the_cap() {
        let dir = TempDir::new("threads");
        let path = dir.path("a.log");
        let sink = LogSink::open(
            path.to_str().unwrap(),
            SinkKind::Access,
            SinkOptions::default(),
        )
        .unwrap();
        let pid = std::process::id();
        std::thread::scope(|s| {
            for t in 0..8 {
                let sink = &sink;
                s.spawn(move || {
                    for i in 0..2000 {
                        sink.append(format!("t{t} line {i}\n").as_bytes(), pid);
                    }
                });
            }
        });
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 16_000);
        assert_eq!(sink.dropped_lines(), 0);
        for t in 0..8 {
            // Each thread's lines are in its own order.
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            assert_eq!(mine.len(), 2000);
            assert!(mine.windows(2).all(|w| {
                let n = |l: &str| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap();
                n(w[0]) < n(w[1])
            }));
        }
    }
}
