//! The two bounded queues of an exchange (body to the application, response pieces back)
//! in one mutex-guarded state: one allocation per request, and a condition variable that is
//! only signalled when an application thread actually waits (inline jobs never do; they
//! pump the connection instead). Two `std::sync::mpsc` channels cost about 2k instructions
//! more per request, mostly in the allocator (see docs/BENCHMARKS.md).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Response pieces queued from the application thread before it waits for the client.
const REPLY_QUEUE: usize = 8;
/// Request body chunks queued for the application before the session stops reading.
const BODY_QUEUE: usize = 4;

/// A piece of the request body, for the application thread.
pub(super) enum BodyChunk {
    Data(Vec<u8>),
    /// A buffered body (or its start) in an unlinked temporary file, read from its start.
    File(std::fs::File),
    End,
    /// Typed, so the application side can tell a malformed body (400/413) from EOF.
    Failed(ironhorse_h1::Error),
    /// No body bytes came for `--body-timeout` (the client gets `408`).
    TimedOut,
}

#[derive(Default)]
struct State<R> {
    /// `Data` and `File` chunks only.
    body: VecDeque<BodyChunk>,
    /// How the body ended, once it did (delivered after the data).
    body_end: Option<BodyChunk>,
    replies: VecDeque<R>,
    /// The application asked for the body (`100 Continue` is due).
    body_wanted: bool,
    /// The application dropped its body reader: further body bytes are discarded.
    body_dropped: bool,
    /// The session dropped its side: the client is gone or the request timed out.
    session_gone: bool,
    /// The job ended: no more replies will come.
    job_done: bool,
    /// An application thread waits on the condition variable.
    app_waiting: bool,
}

/// Both queues; cloned once for the job.
pub(super) struct Queues<R> {
    shared: Arc<(Mutex<State<R>>, Condvar)>,
}

impl<R> Clone for Queues<R> {
    fn clone(&self) -> Self {
        Queues {
            shared: self.shared.clone(),
        }
    }
}

impl<R> Queues<R> {
    pub fn new() -> Queues<R> {
        Queues {
            shared: Arc::new((
                Mutex::new(State {
                    body: VecDeque::new(),
                    body_end: None,
                    replies: VecDeque::new(),
                    body_wanted: false,
                    body_dropped: false,
                    session_gone: false,
                    job_done: false,
                    app_waiting: false,
                }),
                Condvar::new(),
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the application thread if it waits (a changed state).
    fn signal(&self, state: &State<R>) {
        if state.app_waiting {
            self.shared.1.notify_all();
        }
    }

    /// Blocks the application thread until `ready` holds (pool threads only).
    fn wait(&self, mut ready: impl FnMut(&State<R>) -> bool) {
        let mut state = self.lock();
        while !ready(&state) {
            state.app_waiting = true;
            state = self.shared.1.wait(state).unwrap_or_else(|e| e.into_inner());
            state.app_waiting = false;
        }
    }

    // ---- the session's side ----

    /// Queues a body chunk; gives it back when the queue is full. Once the application
    /// dropped its reader, chunks are discarded.
    pub fn push_body(&self, chunk: BodyChunk) -> Result<(), BodyChunk> {
        let mut state = self.lock();
        if state.body_dropped {
            return Ok(());
        }
        match chunk {
            BodyChunk::Data(_) | BodyChunk::File(_) if state.body.len() >= BODY_QUEUE => {
                return Err(chunk)
            }
            data @ (BodyChunk::Data(_) | BodyChunk::File(_)) => state.body.push_back(data),
            last => state.body_end = Some(last),
        }
        self.signal(&state);
        Ok(())
    }

    /// The next response piece; `Err` once the job ended without more (a panic included).
    pub fn pop_reply(&self) -> Result<Option<R>, ()> {
        let mut state = self.lock();
        match state.replies.pop_front() {
            Some(reply) => {
                self.signal(&state);
                Ok(Some(reply))
            }
            None if state.job_done => Err(()),
            None => Ok(None),
        }
    }

    pub fn body_wanted(&self) -> bool {
        self.lock().body_wanted
    }

    /// The session is gone: the application's waits end.
    pub fn close_session(&self) {
        let mut state = self.lock();
        state.session_gone = true;
        self.signal(&state);
    }

    // ---- the application's side ----

    pub fn want_body(&self) {
        self.lock().body_wanted = true;
    }

    /// The next body chunk if one is there; `Err` when the session is gone.
    pub fn try_pop_body(&self) -> Result<Option<BodyChunk>, ()> {
        let mut state = self.lock();
        if let Some(data) = state.body.pop_front() {
            return Ok(Some(data));
        }
        if let Some(last) = state.body_end.take() {
            return Ok(Some(last));
        }
        if state.session_gone {
            return Err(());
        }
        Ok(None)
    }

    /// Waits (on a pool thread) until a body chunk is there or the session is gone.
    pub fn wait_for_body(&self) {
        self.wait(|s| !s.body.is_empty() || s.body_end.is_some() || s.session_gone);
    }

    /// The application dropped its reader.
    pub fn drop_body(&self) {
        let mut state = self.lock();
        state.body_dropped = true;
        state.body.clear();
    }

    /// Queues a reply; gives it back when the queue is full. `Err(None)`: the session is
    /// gone.
    pub fn push_reply(&self, reply: R) -> Result<(), Option<R>> {
        let mut state = self.lock();
        if state.session_gone {
            return Err(None);
        }
        if state.replies.len() >= REPLY_QUEUE {
            return Err(Some(reply));
        }
        state.replies.push_back(reply);
        Ok(())
    }

    /// Waits (on a pool thread) until the reply queue has room or the session is gone.
    pub fn wait_for_room(&self) {
        self.wait(|s| s.replies.len() < REPLY_QUEUE || s.session_gone);
    }

    /// The job ended: the session gets what is queued, then `Err` from
    /// [`pop_reply`](Self::pop_reply).
    pub fn finish_job(&self) {
        self.lock().job_done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_bounded_and_drain_before_their_ends() {
        let q: Queues<u32> = Queues::new();
        for i in 0..REPLY_QUEUE as u32 {
            q.push_reply(i).unwrap();
        }
        assert!(matches!(q.push_reply(99), Err(Some(99))), "full");
        q.finish_job();
        for i in 0..REPLY_QUEUE as u32 {
            assert_eq!(q.pop_reply(), Ok(Some(i)));
        }
        assert_eq!(q.pop_reply(), Err(()), "the job ended");

        for _ in 0..BODY_QUEUE {
            q.push_body(BodyChunk::Data(vec![1]))
                .map_err(|_| ())
                .unwrap();
        }
        assert!(q.push_body(BodyChunk::Data(vec![2])).is_err(), "full");
        q.push_body(BodyChunk::End).map_err(|_| ()).unwrap();
        for _ in 0..BODY_QUEUE {
            assert!(matches!(q.try_pop_body(), Ok(Some(BodyChunk::Data(_)))));
        }
        assert!(matches!(q.try_pop_body(), Ok(Some(BodyChunk::End))));
        assert!(matches!(q.try_pop_body(), Ok(None)));
        q.close_session();
        assert!(q.try_pop_body().is_err());
        assert!(matches!(q.push_reply(1), Err(None)));
    }

    #[test]
    fn a_waiting_application_thread_is_woken() {
        let q: Queues<u32> = Queues::new();
        let app = q.clone();
        let thread = std::thread::spawn(move || {
            app.wait_for_body();
            matches!(app.try_pop_body(), Ok(Some(BodyChunk::Data(_))))
        });
        q.push_body(BodyChunk::Data(vec![7]))
            .map_err(|_| ())
            .unwrap();
        assert!(thread.join().unwrap());
    }
}
