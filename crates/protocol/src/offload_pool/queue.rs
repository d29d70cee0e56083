//! The pool's queue, and which of its threads run it.
//!
//! Python's jobs take turns on one GIL, so a batch of jobs that never wait runs fastest on
//! one thread: every other thread woken for it is a context switch and a GIL hand-off that
//! buys nothing. Jobs that wait (a database, a sleep, an upstream) want the opposite: a
//! thread each, so that their waits overlap. The queue finds out which kind the application
//! has, and keeps checking ([`Mode`]):
//! - it starts by probing: while at most one thread runs, a batch wakes one thread (the
//!   runner), which takes job after job while the others sleep; enough jobs run that way
//!   without blocking ([`CLEAN_JOBS`]) and it stays so (serial);
//! - a job seen to block while its thread ran alone (the thread gave up the CPU, and no other
//!   thread can have held the GIL) switches it to giving each job a thread (parallel) for
//!   [`PARALLEL`], after which it probes again.
//!
//! Whatever the mode, a queue that stops moving (no job taken for `stall` while some wait:
//! the running ones block) calls more threads, and ends a serial mode. A push notices that
//! itself; a stall that starts later is noticed by the watcher, one idle thread that looks
//! at the queue while the pool is busy instead of sleeping until called, within `stall` +
//! [`MAX_LOOK`]. The watcher also delivers the wake-ups of finished responses that a thread
//! holds (to send a batch's together) when its next job blocks.
//!
//! Measured on one CPU under `wrk -c50` (docs/BENCHMARKS.md): with 16 threads, waking
//! every thread for each batch cost WSGI hello 1.2× the CPU per request of one thread.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::session::{Job, Waker};

/// How long queued jobs may wait with no job taken before more threads are called.
pub const STALL: Duration = Duration::from_millis(1);
/// How long each job gets a thread of its own after a job was seen to block.
pub const PARALLEL: Duration = Duration::from_secs(1);
/// Jobs run alone without blocking after which a probe concludes that jobs do not block.
const CLEAN_JOBS: u32 = 32;
/// The longest the watcher goes between looks while the queue moves.
const MAX_LOOK: Duration = Duration::from_millis(16);
/// The watcher keeps looking this long after the last job was taken, so that a steady
/// stream of batches does not also wake it for each one; then it sleeps until a push.
const LINGER: Duration = Duration::from_millis(10);

pub struct Queue {
    state: Mutex<State>,
    /// Where the watcher waits.
    watch: Condvar,
    /// How long a job may keep the others waiting before another thread takes them.
    stall: Duration,
    /// How long jobs are spread after one blocked ([`PARALLEL`]).
    parallel: Duration,
    /// Threads serving the queue.
    threads: usize,
}

/// A job taken from the queue.
pub struct Taken {
    pub job: Job,
    /// Whether no other thread was running when it was taken (threads called but not yet
    /// awake do not count: they have not taken a job yet).
    pub alone: bool,
}

/// What a thread saw of the job it ran, reported when it takes its next one.
pub struct Ran {
    /// [`Taken::alone`].
    pub alone: bool,
    /// Whether the thread blocked while it ran the job; `false` when not checked.
    pub blocked: bool,
}

/// How a batch is spread over the threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Finding out: one thread runs the batches while no other runs; `clean` jobs have run
    /// alone without blocking so far.
    Probing { clean: u32 },
    /// Jobs do not block: one thread runs the batches.
    Serial,
    /// Jobs block: each gets a thread of its own, until then.
    Parallel { until: Instant },
}

struct State {
    jobs: VecDeque<Job>,
    /// Threads out of every wait: running a job or about to look at the queue.
    running: usize,
    /// Idle threads other than the watcher, the last to sleep last: the one called first
    /// is the one that ran last, whose caches (and the interpreter's) are warm.
    sleeping: Vec<Sleeper>,
    /// Per thread: called, and not awake yet.
    called: Vec<bool>,
    called_count: usize,
    watcher: Watcher,
    /// Threads started so far.
    entered: usize,
    /// When a thread last took a job (or was called for one): how the queue moves.
    last_taken: Instant,
    mode: Mode,
    /// Per thread: wake-ups of finished responses it holds until it runs out of work, and
    /// since when. The watcher delivers those held longer than `stall` (the thread's next
    /// job blocks).
    deferred: Vec<(Vec<Waker>, Option<Instant>)>,
}

struct Sleeper {
    index: usize,
    thread: Thread,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Watcher {
    /// No idle thread watches (every thread runs, or the role is between threads).
    Absent,
    /// Looks at the queue while the pool is busy.
    Looking,
    /// The pool is quiet: waits for a push.
    Parked,
}

impl State {
    /// The next job, for a thread counted in `running`.
    fn take(&mut self, now: Instant) -> Option<Taken> {
        let job = self.jobs.pop_front()?;
        self.last_taken = now;
        let alone = self.running == 1;
        Some(Taken { job, alone })
    }

    /// Threads running or on their way to.
    fn awake(&self) -> usize {
        self.running + self.called_count
    }

    fn stalled(&self, now: Instant, stall: Duration) -> bool {
        now.saturating_duration_since(self.last_taken) >= stall
    }

    /// Whether new jobs each get a thread of their own now.
    fn spread(&mut self, now: Instant) -> bool {
        if matches!(self.mode, Mode::Parallel { until } if now >= until) {
            self.mode = Mode::Probing { clean: 0 };
        }
        match self.mode {
            Mode::Parallel { .. } => true,
            // A probe watches one thread: while others still run, it waits.
            Mode::Probing { .. } => self.awake() > 1,
            Mode::Serial => false,
        }
    }

    /// Learns from a job that a thread ran, before it takes its next one.
    fn learn(&mut self, ran: Ran, now: Instant, parallel: Duration) {
        // Alone from start to end: the thread's waits were the job's own, not the GIL's.
        if !ran.alone || self.running != 1 {
            return;
        }
        self.mode = match self.mode {
            Mode::Probing { .. } | Mode::Serial if ran.blocked => Mode::Parallel {
                until: now + parallel,
            },
            Mode::Probing { clean } if clean + 1 >= CLEAN_JOBS => Mode::Serial,
            Mode::Probing { clean } => Mode::Probing { clean: clean + 1 },
            mode => mode,
        };
    }

    /// The queue stalled with jobs waiting: if it took jobs for ones that never block, it
    /// was wrong (the stalled job ran alongside the ones called to rescue it, so it could
    /// not report itself); find out again.
    fn stalled_with_work(&mut self) {
        if self.mode == Mode::Serial {
            self.mode = Mode::Probing { clean: 0 };
        }
    }

    /// Wake-ups held longer than `stall`, taken from their threads.
    fn overdue_wakers(&mut self, now: Instant, stall: Duration) -> Vec<Waker> {
        let mut due = Vec::new();
        for (wakers, since) in &mut self.deferred {
            if since.is_some_and(|since| now.saturating_duration_since(since) >= stall) {
                due.append(wakers);
                *since = None;
            }
        }
        due
    }

    /// Calls up to `count` sleeping threads to take queued jobs, most recent sleeper first;
    /// they are to be unparked, after the lock is let go where the caller can (so that they
    /// do not wait for it).
    fn call(&mut self, count: usize, now: Instant) -> Vec<Thread> {
        let count = count.min(self.sleeping.len());
        let first = self.sleeping.len() - count;
        let called: Vec<Thread> = (self.sleeping.drain(first..).rev())
            .map(|Sleeper { index, thread }| {
                self.called[index] = true;
                thread
            })
            .collect();
        self.called_count += called.len();
        if !called.is_empty() {
            // Being called counts as progress: the watcher gives them time to take theirs.
            self.last_taken = now;
        }
        called
    }
}

impl Queue {
    /// A queue for `threads` threads, each of which calls [`enter`](Self::enter) once, then
    /// [`try_next`](Self::try_next) and [`next`](Self::next) for each job.
    pub fn new(threads: usize, stall: Duration, parallel: Duration) -> Queue {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                running: 0,
                sleeping: Vec::with_capacity(threads),
                called: vec![false; threads],
                called_count: 0,
                watcher: Watcher::Absent,
                entered: 0,
                last_taken: Instant::now(),
                mode: Mode::Probing { clean: 0 },
                deferred: (0..threads).map(|_| (Vec::new(), None)).collect(),
            }),
            watch: Condvar::new(),
            stall,
            parallel,
            threads,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push_all(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut st = self.lock();
        let before = st.jobs.len();
        st.jobs.extend(jobs);
        let added = st.jobs.len() - before;
        if added == 0 {
            return;
        }
        let now = Instant::now();
        let stalled = st.awake() > 0 && st.stalled(now, self.stall);
        if stalled {
            st.stalled_with_work();
        }
        let (called, wake_watcher) = if stalled || st.spread(now) {
            // Jobs block (or the running ones are stuck now): each new job gets a
            // thread, so that their waits overlap. The watcher takes one if no sleeper
            // is left.
            let called = st.call(added, now);
            let wake_watcher = called.len() < added;
            (called, wake_watcher)
        } else if st.awake() == 0 {
            // Nobody runs: one thread takes the whole batch. The watcher, if it is that
            // thread or sleeps, is woken too (to notice a job that blocks).
            let called = st.call(1, now);
            let wake_watcher = called.is_empty() || st.watcher == Watcher::Parked;
            (called, wake_watcher)
        } else {
            (Vec::new(), st.watcher == Watcher::Parked)
        };
        drop(st);
        for thread in called {
            thread.unpark();
        }
        if wake_watcher {
            self.watch.notify_one();
        }
    }

    /// A new thread starts serving the queue (it counts as running until it first waits).
    /// Its index, for [`next`](Self::next).
    pub fn enter(&self) -> usize {
        let mut st = self.lock();
        st.running += 1;
        st.entered += 1;
        st.entered - 1
    }

    /// Holds a finished response's wake-up for thread `me` until it runs out of work (or
    /// the watcher finds it held too long). How many it holds now.
    pub fn defer(&self, me: usize, waker: Waker) -> usize {
        let mut st = self.lock();
        let (wakers, since) = &mut st.deferred[me];
        since.get_or_insert_with(Instant::now);
        wakers.push(waker);
        wakers.len()
    }

    /// Thread `me`'s held wake-ups, to be called (outside any lock).
    pub fn take_deferred(&self, me: usize) -> Vec<Waker> {
        let mut st = self.lock();
        let (wakers, since) = &mut st.deferred[me];
        *since = None;
        std::mem::take(wakers)
    }

    /// The next job, if one waits; `ran` tells how the thread's last job went.
    pub fn try_next(&self, ran: Option<Ran>) -> Option<Taken> {
        let now = Instant::now();
        let mut st = self.lock();
        if let Some(ran) = ran {
            st.learn(ran, now, self.parallel);
        }
        st.take(now)
    }

    /// The next job for thread `me`: one that waits, or else the thread sleeps (as the
    /// watcher if none watches) until one is its to run.
    pub fn next(&self, me: usize) -> Taken {
        let mut st = self.lock();
        if let Some(taken) = st.take(Instant::now()) {
            return taken;
        }
        st.running -= 1;
        loop {
            if st.watcher == Watcher::Absent {
                return self.watch_until_needed(st);
            }
            st.sleeping.push(Sleeper {
                index: me,
                thread: std::thread::current(),
            });
            while !st.called[me] {
                drop(st);
                std::thread::park();
                st = self.lock();
            }
            st.called[me] = false;
            st.called_count -= 1;
            st.running += 1;
            if let Some(taken) = st.take(Instant::now()) {
                return taken;
            }
            st.running -= 1;
            // Another thread took it first.
        }
    }

    /// The watcher's wait: look at the queue while the pool is busy, calling sleepers when
    /// the queue stops moving, and take a job itself when nobody else can.
    fn watch_until_needed<'a>(&'a self, mut st: MutexGuard<'a, State>) -> Taken {
        st.watcher = Watcher::Looking;
        // How long until the next look while the queue moves: doubled each time, up to
        // MAX_LOOK, because each look wakes this thread and, on a busy core, preempts the
        // runner (looks every 1 ms cost the Flask JSON view a fifth of its throughput).
        let mut look = self.stall;
        loop {
            let now = Instant::now();
            let overdue = st.overdue_wakers(now, self.stall);
            if !overdue.is_empty() {
                drop(st);
                for waker in overdue {
                    waker();
                }
                st = self.lock();
                continue;
            }
            let stalled = !st.jobs.is_empty() && st.stalled(now, self.stall);
            if stalled {
                st.stalled_with_work();
            }
            let stuck = !st.jobs.is_empty() && (st.awake() == 0 || stalled || st.spread(now));
            if stuck {
                // A sleeper runs them if one is free (one for a batch nobody runs, one per
                // job when jobs block or the runners are stuck, less those called already);
                // this thread keeps watching. With no sleeper left, it is the last free
                // thread: it takes one itself.
                let wanted = if st.awake() == 0 {
                    1
                } else {
                    st.jobs.len().saturating_sub(st.called_count)
                };
                let called = st.call(wanted, now);
                let none = called.is_empty();
                for thread in called {
                    thread.unpark();
                }
                if none {
                    st.running += 1;
                    if let Some(taken) = st.take(now) {
                        st.watcher = Watcher::Absent;
                        return taken;
                    }
                    st.running -= 1;
                }
                look = self.stall;
            }
            let busy = st.awake() > 0
                || !st.jobs.is_empty()
                || now.saturating_duration_since(st.last_taken) < LINGER;
            if self.threads > 1 && busy {
                let wait = look;
                if !stuck {
                    look = (look * 2).min(MAX_LOOK);
                }
                let (guard, timeout) =
                    (self.watch.wait_timeout(st, wait)).unwrap_or_else(|e| e.into_inner());
                st = guard;
                if !timeout.timed_out() {
                    // Called by a push: look closely again.
                    look = self.stall;
                }
            } else {
                st.watcher = Watcher::Parked;
                st = self.watch.wait(st).unwrap_or_else(|e| e.into_inner());
                st.watcher = Watcher::Looking;
                look = self.stall;
            }
        }
    }

    /// Whether every thread has started and sleeps, with nothing queued (tests wait for it).
    #[cfg(test)]
    pub fn is_quiet(&self) -> bool {
        let st = self.lock();
        st.entered == self.threads
            && st.awake() == 0
            && st.jobs.is_empty()
            && st.watcher != Watcher::Absent
    }

    /// Whether each job now gets a thread of its own because jobs were seen to block.
    #[cfg(test)]
    pub fn is_parallel(&self) -> bool {
        matches!(self.lock().mode, Mode::Parallel { .. })
    }
}
