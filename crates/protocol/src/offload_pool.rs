//! A bounded pool of threads for application work that may block (Python), used by the
//! event-driven drivers so that their loops never run it. Threads start on first use, so a
//! pool built before `fork()` carries no threads across it.
//!
//! Hand-offs are batched both ways, because on a busy core every cross-thread wake-up can
//! cost a context switch: a loop may [`hold`] its submissions while it handles one batch of
//! events and release them together, and a pool thread defers the wake-ups of finished
//! requests ([`wake_when_idle`]) until it runs out of queued work.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::session::Waker;

type Job = Box<dyn FnOnce() + Send>;
/// Jobs held back by a loop, each with the queue it is for.
type HeldJobs = Vec<(Arc<Queue>, Job)>;

/// Jobs slower than this gain nothing from deferred wake-ups.
const SLOW_JOB: Duration = Duration::from_micros(200);
/// Held submissions are handed over at least this often.
const MAX_HELD: usize = 64;
/// Deferred wake-ups are flushed at least this often, to bound their latency.
const MAX_DEFERRED: usize = 64;

#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Queue {
    fn push_all(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut queue = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let before = queue.len();
        queue.extend(jobs);
        let added = queue.len() - before;
        drop(queue);
        if added == 1 {
            self.ready.notify_one();
        } else if added > 1 {
            self.ready.notify_all();
        }
    }
}

/// A fixed number of threads running jobs in submission order.
pub struct OffloadPool {
    threads: usize,
    queue: OnceLock<Arc<Queue>>,
}

thread_local! {
    /// Submissions held by this thread (see [`hold`]).
    static HELD: RefCell<Option<HeldJobs>> = const { RefCell::new(None) };
    /// Wake-ups a pool thread defers until it is idle (see [`wake_when_idle`]).
    static DEFERRED: RefCell<Option<Vec<Waker>>> = const { RefCell::new(None) };
}

impl OffloadPool {
    pub fn new(threads: usize) -> Self {
        OffloadPool {
            threads: threads.max(1),
            queue: OnceLock::new(),
        }
    }

    /// Queues `job`; it runs when a thread is free.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let queue = self.queue.get_or_init(|| self.start()).clone();
        let job: Job = Box::new(job);
        let job = HELD.with(|held| match held.borrow_mut().as_mut() {
            Some(held) => {
                held.push((queue.clone(), job));
                None
            }
            None => Some(job),
        });
        match job {
            Some(job) => queue.push_all([job]),
            // Bound the wait of held work when a loop has much to do.
            None if HELD.with(|h| h.borrow().as_ref().is_some_and(|h| h.len() >= MAX_HELD)) => {
                release_held()
            }
            None => {}
        }
    }

    fn start(&self) -> Arc<Queue> {
        let queue = Arc::new(Queue::default());
        for index in 0..self.threads {
            let queue = queue.clone();
            let _ = std::thread::Builder::new()
                .name(format!("ih-app-{index}"))
                .spawn(move || work(&queue));
        }
        queue
    }
}

/// A pool thread's life: run jobs; deliver deferred wake-ups before waiting for more, and
/// at once while jobs are slow (batching then saves nothing, and a finished response must
/// not wait behind a long request).
fn work(queue: &Queue) {
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
    // Recent job duration, smoothed.
    let mut typical = Duration::ZERO;
    loop {
        if typical > SLOW_JOB {
            flush_deferred();
        }
        let next = queue
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        let job = match next {
            Some(job) => job,
            None => {
                flush_deferred();
                let mut jobs = queue.jobs.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(job) = jobs.pop_front() {
                        break job;
                    }
                    jobs = queue.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        let started = Instant::now();
        // A panicking application must not take the thread with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        let took = started.elapsed();
        typical = (typical * 3 + took) / 4;
        if took > SLOW_JOB {
            flush_deferred();
        }
    }
}

fn flush_deferred() {
    let wakers = DEFERRED.with(|d| {
        d.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    });
    for waker in wakers {
        waker();
    }
}

/// Wakes `waker` once this pool thread has no queued work left (or at once, off the pool).
/// For completed responses: the client waits a few microseconds more, and a busy core is
/// spared a context switch per request.
pub fn wake_when_idle(waker: &Waker) {
    let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            list.push(waker.clone());
            Some(list.len())
        }
        None => None,
    });
    match deferred {
        None => waker(),
        Some(n) if n >= MAX_DEFERRED => flush_deferred(),
        Some(_) => {}
    }
}

/// Holds this thread's submissions to any pool until the guard is dropped, then hands them
/// over in one go.
pub fn hold() -> HoldGuard {
    hold_on_this_thread();
    HoldGuard(())
}

/// Releases held submissions when dropped (and stops holding).
pub struct HoldGuard(());

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let held = HELD
            .with(|held| held.borrow_mut().take())
            .unwrap_or_default();
        submit(held);
    }
}

/// From now on, this thread's submissions wait for [`release_held`] (for runtimes that
/// offer a hook when their thread runs out of work, like tokio's `on_thread_park`).
pub fn hold_on_this_thread() {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.is_none() {
            *held = Some(Vec::new());
        }
    });
}

/// Hands this thread's held submissions over, and keeps holding.
pub fn release_held() {
    let held = HELD
        .with(|held| held.borrow_mut().as_mut().map(std::mem::take))
        .unwrap_or_default();
    submit(held);
}

fn submit(held: HeldJobs) {
    // Almost always one pool per process: group consecutive jobs by queue.
    let mut batch: Vec<Job> = Vec::new();
    let mut current: Option<Arc<Queue>> = None;
    for (queue, job) in held {
        if current.as_ref().is_some_and(|c| !Arc::ptr_eq(c, &queue)) {
            if let Some(c) = current.take() {
                c.push_all(batch.drain(..));
            }
        }
        current = Some(queue);
        batch.push(job);
    }
    if let Some(c) = current {
        c.push_all(batch);
    }
}
