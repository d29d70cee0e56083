//! A bounded pool of threads for application work that may block (Python), used by the
//! event-driven drivers so that their loops never run it. Threads start on first use, so a
//! pool built before `fork()` carries no threads across it.
//!
//! Hand-offs are batched both ways, because on a busy core every cross-thread wake-up can
//! cost a context switch. A driver owns a [`Batch`] and hands it to its sessions in their
//! [`Link`](crate::session::Link): their jobs wait in it while the driver handles one batch
//! of events, and leave together at [`Batch::flush`]. A pool thread lends each job a
//! [`JobHost`] whose [`wake_when_idle`](JobHost::wake_when_idle) defers the wake-ups of
//! finished requests until the thread runs out of queued work. Both are values passed down,
//! not thread-local state. Which threads run a batch ([`queue`]): one, while the
//! application's jobs do not block; one each, once they do.

mod queue;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::session::{Cutoff, Executor, Job, JobHost, Waker};
use queue::{Queue, Ran, Taken};

/// Jobs slower than this gain nothing from deferred wake-ups.
const SLOW_JOB: Duration = Duration::from_micros(200);
/// Jobs shorter than this are not checked for blocking: a wait shorter still costs the
/// queue little.
const BLOCK_CHECK: Duration = Duration::from_micros(20);
/// Held submissions are handed over at least this often.
const MAX_HELD: usize = 64;
/// Deferred wake-ups are flushed at least this often, to bound their latency.
const MAX_DEFERRED: usize = 64;

/// A fixed number of threads running jobs in submission order. As an [`Executor`] it hands
/// each job over at once; [`batched`](Self::batched) gives one that waits for a driver's
/// [`Batch`].
pub struct OffloadPool {
    threads: usize,
    /// How long queued jobs wait for a stuck thread before another takes them.
    stall: Duration,
    /// How long each job gets a thread after a job was seen to block.
    parallel: Duration,
    queue: OnceLock<Arc<Queue>>,
}

impl OffloadPool {
    pub fn new(threads: usize) -> Self {
        Self::with_timing(threads, queue::STALL, queue::PARALLEL)
    }

    fn with_timing(threads: usize, stall: Duration, parallel: Duration) -> Self {
        OffloadPool {
            threads: threads.max(1),
            stall,
            parallel,
            queue: OnceLock::new(),
        }
    }

    /// An executor for one session whose jobs wait in `batch` until the driver flushes it.
    pub fn batched(self: &Arc<Self>, batch: Arc<Batch>) -> Arc<dyn Executor> {
        Arc::new(Batched {
            pool: self.clone(),
            batch,
        })
    }

    fn queue(&self) -> &Arc<Queue> {
        self.queue.get_or_init(|| self.start())
    }

    fn start(&self) -> Arc<Queue> {
        let queue = Arc::new(Queue::new(self.threads, self.stall, self.parallel));
        for index in 0..self.threads {
            let queue = queue.clone();
            let _ = std::thread::Builder::new()
                .name(format!("ih-app-{index}"))
                .spawn(move || {
                    let me = queue.enter();
                    work(&queue, me)
                });
        }
        queue
    }
}

impl Executor for OffloadPool {
    fn execute(&self, job: Job) {
        self.queue().push_all([job]);
    }
}

/// Submissions a driver holds while it handles one batch of events: its sessions' jobs
/// (through [`OffloadPool::batched`]) wait here and leave together at [`flush`](Self::flush),
/// which the driver calls once per batch (the event loop after each turn, tokio when a
/// runtime thread runs out of work).
#[derive(Default)]
pub struct Batch {
    held: Mutex<Vec<(Arc<Queue>, Job)>>,
    /// Turns taken while jobs were held.
    turns_held: std::sync::atomic::AtomicU32,
}

impl Batch {
    fn hold(&self, queue: &Arc<Queue>, job: Job) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.push((queue.clone(), job));
        // Bound the wait of held work when a loop has much to do.
        if held.len() >= MAX_HELD {
            let jobs = std::mem::take(&mut *held);
            drop(held);
            submit(jobs);
        }
    }

    /// A task of the driver finished a turn (one `advance`): held jobs leave once they have
    /// waited [`MAX_TURNS_HELD`] turns, even if the driver never flushes.
    pub fn turn_done(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let waiting = !self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if waiting && self.turns_held.fetch_add(1, Relaxed) + 1 >= MAX_TURNS_HELD {
            self.flush();
        }
    }

    /// Hands every held job to its pool.
    pub fn flush(&self) {
        self.flush_counted();
    }

    /// [`flush`](Self::flush), saying how many jobs left.
    pub fn flush_counted(&self) -> usize {
        self.turns_held
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let jobs = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        let count = jobs.len();
        if count > 0 {
            submit(jobs);
        }
        count
    }
}

/// Most turns ([`Batch::turn_done`]) held jobs wait for their driver's flush: a tokio runtime
/// thread that never runs out of work (a steady stream of events, e.g. hundreds of slow
/// uploaders trickling bytes) must still hand them over.
const MAX_TURNS_HELD: u32 = 64;

/// A session's executor under a driver that batches.
struct Batched {
    pool: Arc<OffloadPool>,
    batch: Arc<Batch>,
}

impl Executor for Batched {
    fn execute(&self, job: Job) {
        self.batch.hold(self.pool.queue(), job);
    }
}

fn submit(held: Vec<(Arc<Queue>, Job)>) {
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

/// What a job on a pool thread is lent: no `pump` (it blocks on its queues while the driver
/// runs elsewhere), and the thread's deferred wake-ups, kept in the queue so that the
/// watcher can deliver them if the thread's next job blocks.
struct PoolThread<'a> {
    queue: &'a Queue,
    me: usize,
}

impl PoolThread<'_> {
    fn flush_deferred(&mut self) {
        for waker in self.queue.take_deferred(self.me) {
            waker();
        }
    }
}

impl JobHost for PoolThread<'_> {
    fn pump(&mut self, _want_input: bool) -> Option<io::Result<()>> {
        None
    }
    fn cutoff(&self) -> Option<Cutoff> {
        None
    }
    fn wake_when_idle(&mut self, waker: &Waker) {
        if self.queue.defer(self.me, waker.clone()) >= MAX_DEFERRED {
            self.flush_deferred();
        }
    }
}

/// A pool thread's life: run jobs; deliver deferred wake-ups before waiting for more, and
/// at once while jobs are slow (batching then saves nothing, and a finished response must
/// not wait behind a long request).
fn work(queue: &Queue, me: usize) {
    let mut host = PoolThread { queue, me };
    // Recent job duration, smoothed.
    let mut typical = Duration::ZERO;
    // This thread's count of blocking waits before its current job, when known: read after
    // each wait for work and each check, not per job (a system call).
    let mut switches: Option<u64> = None;
    let mut ran: Option<Ran> = None;
    loop {
        if typical > SLOW_JOB {
            host.flush_deferred();
        }
        let Taken { job, alone } = match queue.try_next(ran.take()) {
            Some(taken) => taken,
            None => {
                host.flush_deferred();
                let taken = queue.next(me);
                switches = Some(ironhorse_sys::thread_voluntary_switches());
                taken
            }
        };
        let started = Instant::now();
        // A panicking application must not take the thread with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut host)));
        let took = started.elapsed();
        typical = (typical * 3 + took) / 4;
        if took > SLOW_JOB {
            host.flush_deferred();
        }
        // A job long enough to have waited for something: did it?
        let mut blocked = false;
        if took >= BLOCK_CHECK {
            let now = ironhorse_sys::thread_voluntary_switches();
            blocked = switches.is_some_and(|before| now > before);
            switches = Some(now);
        }
        ran = Some(Ran { alone, blocked });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn held(batch: &Batch) -> usize {
        batch.held.lock().unwrap().len()
    }

    /// A job that reports `n` when it runs.
    fn report(tx: &mpsc::Sender<usize>, n: usize) -> Job {
        let tx = tx.clone();
        Box::new(move |_: &mut dyn JobHost| {
            let _ = tx.send(n);
        })
    }

    /// A pool of `threads`, a batch, a session's executor over both, and a channel for
    /// [`report`].
    fn batched_pool(
        threads: usize,
    ) -> (
        Arc<Batch>,
        Arc<dyn Executor>,
        mpsc::Sender<usize>,
        mpsc::Receiver<usize>,
    ) {
        let pool = Arc::new(OffloadPool::new(threads));
        let batch = Arc::new(Batch::default());
        let executor = pool.batched(batch.clone());
        let (tx, rx) = mpsc::channel();
        (batch, executor, tx, rx)
    }

    #[test]
    fn a_batch_holds_jobs_until_the_driver_flushes_it_then_they_run_in_order() {
        let (batch, executor, tx, rx) = batched_pool(1);
        for n in 0..3 {
            executor.execute(report(&tx, n));
        }
        assert_eq!(held(&batch), 3);
        batch.flush();
        assert_eq!(held(&batch), 0);
        let ran: Vec<usize> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap())
            .collect();
        assert_eq!(ran, [0, 1, 2]);
    }

    #[test]
    fn a_full_batch_leaves_without_waiting_for_the_flush() {
        let (batch, executor, tx, rx) = batched_pool(2);
        for n in 0..MAX_HELD - 1 {
            executor.execute(report(&tx, n));
        }
        assert_eq!(held(&batch), MAX_HELD - 1);
        executor.execute(report(&tx, MAX_HELD - 1));
        assert_eq!(held(&batch), 0);
        let mut ran: Vec<usize> = (0..MAX_HELD)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap())
            .collect();
        ran.sort_unstable();
        assert_eq!(ran, (0..MAX_HELD).collect::<Vec<_>>());
    }

    /// `pool` once its threads have run a job and all sleep, with a batch and a session's
    /// executor over both.
    fn settled(pool: OffloadPool) -> (Arc<OffloadPool>, Arc<Batch>, Arc<dyn Executor>) {
        let pool = Arc::new(pool);
        let (tx, rx) = mpsc::channel();
        pool.execute(report(&tx, 0));
        rx.recv_timeout(Duration::from_secs(60)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pool.queue().is_quiet() {
            assert!(
                Instant::now() < deadline,
                "the pool's threads never went to sleep"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let batch = Arc::new(Batch::default());
        let executor = pool.batched(batch.clone());
        (pool, batch, executor)
    }

    #[test]
    fn one_thread_runs_a_batch_of_quick_jobs_while_the_others_sleep() {
        // No stall within the test: only the batch's wake-up may start a thread.
        let hour = Duration::from_secs(3600);
        let (_pool, batch, executor) = settled(OffloadPool::with_timing(4, hour, hour));
        let (tx, rx) = mpsc::channel();
        for _ in 0..20 {
            let tx = tx.clone();
            executor.execute(Box::new(move |_: &mut dyn JobHost| {
                let _ = tx.send(std::thread::current().id());
            }));
        }
        batch.flush();
        let threads: std::collections::HashSet<_> = (0..20)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap())
            .collect();
        assert_eq!(
            threads.len(),
            1,
            "the batch ran on {} threads",
            threads.len()
        );
    }

    /// A job that blocks until the job after it runs: it finishes only if another thread
    /// takes the queue over while it blocks.
    fn blocked_job_waits_for_the_next(threads: usize, one_batch: bool) {
        let (_pool, batch, executor) = settled(OffloadPool::new(threads));
        let (started_tx, started) = mpsc::channel();
        let (unblock, blocked) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        executor.execute(Box::new(move |_: &mut dyn JobHost| {
            let _ = started_tx.send(());
            let _ = done_tx.send(blocked.recv_timeout(Duration::from_secs(60)).is_ok());
        }));
        if !one_batch {
            batch.flush();
            started.recv_timeout(Duration::from_secs(60)).unwrap();
        }
        executor.execute(Box::new(move |_: &mut dyn JobHost| {
            let _ = unblock.send(());
        }));
        batch.flush();
        assert!(done.recv_timeout(Duration::from_secs(120)).unwrap());
    }

    #[test]
    fn a_blocked_job_does_not_hold_up_the_rest_of_its_batch() {
        // Two threads: the watcher takes the job itself; four: it calls a sleeper.
        blocked_job_waits_for_the_next(2, true);
        blocked_job_waits_for_the_next(4, true);
    }

    #[test]
    fn a_job_pushed_while_the_runner_is_stuck_is_taken_by_another_thread() {
        blocked_job_waits_for_the_next(2, false);
        blocked_job_waits_for_the_next(4, false);
    }

    #[test]
    fn once_a_job_blocks_each_job_of_a_batch_gets_a_thread() {
        // No stall within the test: the batch below finishes only if its jobs run at once.
        let hour = Duration::from_secs(3600);
        let (pool, batch, executor) = settled(OffloadPool::with_timing(4, hour, hour));
        let (tx, rx) = mpsc::channel();
        // Blocks alone (a sleep); the job after it shows that its thread has reported so.
        pool.execute(Box::new(|_: &mut dyn JobHost| {
            std::thread::sleep(Duration::from_millis(2))
        }));
        pool.execute(report(&tx, 1));
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), 1);
        assert!(pool.queue().is_parallel());
        let all_in = Arc::new(std::sync::Barrier::new(3));
        for n in 0..3 {
            let (all_in, tx) = (all_in.clone(), tx.clone());
            executor.execute(Box::new(move |_: &mut dyn JobHost| {
                all_in.wait();
                let _ = tx.send(n);
            }));
        }
        batch.flush();
        let mut ran: Vec<usize> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap())
            .collect();
        ran.sort_unstable();
        assert_eq!(ran, [0, 1, 2]);
    }

    #[test]
    fn a_finished_response_is_not_held_behind_a_job_that_blocks() {
        for threads in [2, 4] {
            let (_pool, batch, executor) = settled(OffloadPool::new(threads));
            let (woken_tx, woken) = mpsc::channel();
            let (unblock, blocked) = mpsc::channel::<()>();
            // A quick job whose response's wake-up the thread defers until it is idle...
            executor.execute(Box::new(move |host: &mut dyn JobHost| {
                let waker: Waker = Arc::new(move || {
                    let _ = woken_tx.send(());
                });
                host.wake_when_idle(&waker);
            }));
            // ...then a job that blocks until that wake-up came.
            executor.execute(Box::new(move |_: &mut dyn JobHost| {
                let _ = blocked.recv_timeout(Duration::from_secs(120));
            }));
            batch.flush();
            assert!(
                woken.recv_timeout(Duration::from_secs(60)).is_ok(),
                "{threads} threads: the wake-up waited for the blocked job"
            );
            let _ = unblock.send(());
        }
    }

    #[test]
    fn the_pool_itself_hands_jobs_over_at_once() {
        let pool = OffloadPool::new(1);
        let (tx, rx) = mpsc::channel();
        pool.execute(report(&tx, 7));
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), 7);
    }
}
