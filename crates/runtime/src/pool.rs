//! A fixed pool of threads fed by an epoll watcher ([`keepalive`](super::keepalive)). New
//! connections wait in the watcher until a whole request head is there, and only then go
//! over a queue to a thread: clients trickling their heads (slowloris) hold no thread. A
//! thread keeps serving its connection across keep-alive requests (cheapest), but when work
//! waits for a thread, an idle connection goes back to the watcher instead of holding the
//! thread (gunicorn's gthread always does so), as does one whose next head arrives only in
//! part. When every thread is busy and ready connections pile up, accepting pauses for a
//! moment ([`ACCEPT_PATIENCE`]) so that an idle sibling process may take the waiting
//! clients; then this process takes them anyway (its queue is first come, first served), so
//! that clients keeping the queue full never starve a newcomer. At `max_connections` open
//! connections it accepts none: new clients wait in the backlog (or go to a sibling).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::accept::accept_loop_gated;
use super::blocking::{serve, Conn, Served};
use super::connection::Live;
use super::keepalive::{Parking, Ready};
use super::{DriverConfig, STOP_CHECK};

/// Longest accepting pauses while the queue is full; after a pause that ran out, accepting
/// goes on without pausing for as long again, so that a crowd of newcomers is let in too.
const ACCEPT_PATIENCE: Duration = Duration::from_millis(10);

/// Work for the pool threads: a watched connection whose request head arrived.
struct Work(Ready);

/// The pool's queue. Notifications are sent only to a thread known to wait: std's
/// condition variable makes a `futex` call per notification, waiter or not (measured: the
/// queue's notifications were most of `threadpool`'s 1.9 `futex` calls per request).
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Pool threads wait here for work.
    work: Condvar,
    /// The accepting thread waits here for room (backpressure).
    room: Condvar,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Work>,
    closed: bool,
    /// Pool threads waiting in [`Queue::pop`].
    idle_threads: usize,
    /// The length the accepting thread waits to fall below, while it waits.
    accept_limit: Option<usize>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, work: Work) {
        let mut state = self.lock();
        state.items.push_back(work);
        let wake = state.idle_threads > 0;
        drop(state);
        if wake {
            self.work.notify_one();
        }
    }

    /// Waits while `limit` or more items are queued (backpressure on accepting), until
    /// `deadline`. Whether the queue got shorter (`false`: the wait ran out, or a stop).
    fn wait_below(&self, limit: usize, deadline: Instant) -> bool {
        let mut state = self.lock();
        let shorter = loop {
            if state.items.len() < limit {
                break true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || super::stopping() {
                break false;
            }
            state.accept_limit = Some(limit);
            state = (self.room)
                .wait_timeout(state, left.min(super::STOP_CHECK))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        state.accept_limit = None;
        shorter
    }

    /// The next item; `None` once closed and empty.
    fn pop(&self) -> Option<Work> {
        let mut state = self.lock();
        loop {
            if let Some(work) = state.items.pop_front() {
                let room = state
                    .accept_limit
                    .is_some_and(|limit| state.items.len() < limit);
                drop(state);
                if room {
                    self.room.notify_one();
                }
                return Some(work);
            }
            if state.closed {
                return None;
            }
            state.idle_threads += 1;
            state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle_threads -= 1;
        }
    }

    /// Whether work waits for a thread: then threads sitting on idle connections yield.
    fn has_work(&self) -> bool {
        !self.lock().items.is_empty()
    }

    fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }
}

pub fn run(mut config: DriverConfig) -> std::io::Result<()> {
    let threads = config.threads.max(1);
    let queue = Arc::new(Queue::default());
    let parking = {
        let (queue, hooks) = (queue.clone(), config.hooks.clone());
        Parking::start(move |ready| {
            // The watcher hands requests to the pool: it stops preempting the threads it feeds.
            super::yield_to_app_threads(&*hooks);
            queue.push(Work(ready));
        })?
    };
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let (queue, parking) = (queue.clone(), parking.handle());
        workers.push(
            std::thread::Builder::new()
                .name(format!("ih-pool-{index}"))
                .spawn(move || {
                    while let Some(Work(Ready { token, conn })) = queue.pop() {
                        let others_wait = || queue.has_work();
                        // A connection given back is re-armed (`EPOLL_CTL_MOD` looks at the
                        // socket's state), so input, an end or an error that came while it
                        // was out is reported whatever `Conn::drained` says.
                        if let Served::Idle(conn) = serve(conn, Some(&others_wait)) {
                            // Stopping, with a head in progress: finish it here.
                            if let Err(conn) = parking.park(Ready { token, conn }) {
                                serve(conn, None);
                            }
                        }
                    }
                })?,
        );
    }
    let watcher = parking.handle();
    let live = Arc::new(Live::default());
    // Until when accepting goes on without pausing (after a pause that ran out).
    let mut unpaused_until = Instant::now();
    let may_accept = || {
        if !live.has_room_within(config.max_connections.max(1), STOP_CHECK) {
            return false;
        }
        if Instant::now() >= unpaused_until
            && !queue.wait_below(threads, Instant::now() + ACCEPT_PATIENCE)
        {
            unpaused_until = Instant::now() + ACCEPT_PATIENCE;
        }
        // A stop that came during the pause leaves the clients to a sibling or successor.
        !super::stopping()
    };
    let result = accept_loop_gated(
        &config.listeners,
        &*config.hooks,
        || {},
        may_accept,
        |stream, info| {
            if let Some(conn) = Conn::new(stream, info, &*config.protocol, &config.hooks) {
                let conn = conn.counted(live.ticket());
                // A stopping server ends this loop first: a refusal is not expected here.
                if let Err(conn) = watcher.admit(conn) {
                    drop(conn);
                }
            }
        },
    );
    // Stopping: the listeners close first (a client connecting now is refused at once,
    // not left in the backlog to be reset when the drain ends), then idle connections
    // close; requests already sent are still answered.
    drop(std::mem::take(&mut config.listeners));
    parking.finish();
    queue.close();
    for worker in workers {
        let _ = worker.join();
    }
    result
}
