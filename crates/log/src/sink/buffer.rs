//! The per-process buffer behind a [`LogSink`](super::LogSink): lines appended under a
//! mutex, the cap, and the flusher thread that writes them (see the parent module).
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{Counters, SinkKind, SinkOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Flusher {
    #[default]
    NotStarted,
    Running,
    /// `thread::spawn` failed; retried when the buffer reaches `flush_bytes`.
    Failed,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) buf: Vec<u8>,
    /// Bytes taken by the writer and not yet written.
    pub(super) in_flight: usize,
    pub(super) flusher: Flusher,
    /// The flusher sleeps without timeout because the buffer was empty.
    pub(super) idle: bool,
    /// The flusher was signalled for `flush_bytes`.
    pub(super) kicked: bool,
    pub(super) shutdown: bool,
}

pub(super) struct Io {
    pub(super) file: File,
    /// The buffer being written; swapped with `State::buf`, so both keep their capacity.
    pub(super) spare: Vec<u8>,
}

pub(super) struct Core {
    pub(super) kind: SinkKind,
    pub(super) opts: SinkOptions,
    pub(super) counters: Arc<Counters>,
    pub(super) state: Mutex<State>,
    pub(super) wake: Condvar,
    /// Held while writing; taken before `state` (never the other way round), so writes leave
    /// in the order the lines were buffered.
    pub(super) io: Mutex<Io>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

    pub(super) fn append(self: &Arc<Self>, line: &[u8]) {
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
    pub(super) fn write_pending(&self, announce: bool) -> io::Result<()> {
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
