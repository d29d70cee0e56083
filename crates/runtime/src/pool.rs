//! A fixed pool of threads. An acceptor hands new connections over a queue. A thread keeps
//! serving its connection across keep-alive requests (cheapest), but when work waits for a
//! thread, an idle connection is handed to an epoll watcher ([`keepalive`](super::keepalive))
//! instead of holding the thread (gunicorn's gthread always does so); it comes back to the
//! queue when its next request arrives. When every thread is busy and new connections pile
//! up, accepting pauses and clients wait in the backlog.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use super::blocking::{serve, Conn, Served};
use super::keepalive::Parking;
use super::{accept_loop, DriverConfig};
use crate::listener::Stream;
use ironhorse_app::ConnInfo;

/// Work for the pool threads.
enum Work {
    New(Stream, ConnInfo),
    /// A parked connection whose next request arrived.
    Resume(Conn),
}

#[derive(Default)]
struct Queue {
    state: Mutex<(VecDeque<Work>, bool)>,
    changed: Condvar,
}

impl Queue {
    fn push(&self, work: Work) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push_back(work);
        self.changed.notify_one();
    }

    /// Waits while `limit` or more items are queued (backpressure on accepting).
    fn wait_below(&self, limit: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0.len() >= limit && !super::stopping() {
            state = self
                .changed
                .wait_timeout(state, super::STOP_CHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The next item; `None` once closed and empty.
    fn pop(&self) -> Option<Work> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(work) = state.0.pop_front() {
                self.changed.notify_all();
                return Some(work);
            }
            if state.1 {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether work waits for a thread: then threads sitting on idle connections yield.
    fn has_work(&self) -> bool {
        !self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .is_empty()
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }
}

pub fn run(config: DriverConfig) -> std::io::Result<()> {
    let threads = config.threads.max(1);
    let queue = Arc::new(Queue::default());
    let parking = {
        let queue = queue.clone();
        Parking::start(move |conn| queue.push(Work::Resume(conn)))?
    };
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let (queue, protocol, parking) = (queue.clone(), config.protocol.clone(), parking.handle());
        let hooks = config.hooks.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("ih-pool-{index}"))
                .spawn(move || {
                    while let Some(work) = queue.pop() {
                        let conn = match work {
                            Work::New(stream, info) => Conn::new(stream, info, &*protocol, &hooks),
                            Work::Resume(conn) => Some(conn),
                        };
                        let others_wait = || queue.has_work();
                        if let Some(Served::Idle(conn)) = conn.map(|c| serve(c, Some(&others_wait)))
                        {
                            parking.park(conn);
                        }
                    }
                })?,
        );
    }
    let result = accept_loop(&config.listeners, &*config.hooks, |stream, info| {
        queue.wait_below(threads);
        queue.push(Work::New(stream, info));
    });
    // Stopping: idle connections close, requests already sent are still answered.
    parking.finish();
    queue.close();
    for worker in workers {
        let _ = worker.join();
    }
    result
}
