//! `--threads 0` on an event-driven driver: a blocking application (WSGI) called inside
//! `advance`, on the driver's own thread, bjoern-style — no hand-off to an application
//! thread and back.
//!
//! The loop must then never wait on a client, so the application only ever sees a whole
//! body (read ahead by [`buffering`](super::buffering) up to `--buffer-request-body`; a
//! longer one is answered `413`, one that stalls `408`), a streamed response is pulled chunk
//! by chunk as the socket takes it (the session keeps the iterator, as for static streams),
//! and `--request-timeout` reaches the loop thread the way it reaches a pool thread (the
//! watchdog raises `TimeoutError` in it). An application stuck in a call that never returns
//! stops the loop, and with it the worker's heartbeat: its master replaces it after
//! `--timeout`, as gunicorn's sync worker.

use std::io::{self, Read};

use ironhorse_app::{ChunkStream, Request, RequestHead};
use ironhorse_h1::BodyFraming;

use super::buffering::Prefilled;
use super::inline::Queued;
use super::spool::Spooled;
use super::timeout::Running;
use super::{Busy, HttpSession, HIGH_WATER};
use crate::output::Output;
use crate::session::Step;

/// A request ready to be called on the loop thread.
pub(super) struct Ready {
    head: RequestHead,
    body: Prefilled<Spooled>,
    /// The body stalled past `--body-timeout` while it was read ahead.
    stalled: bool,
}

impl Ready {
    pub fn new(head: RequestHead, body: Prefilled<Spooled>, stalled: bool) -> Ready {
        Ready {
            head,
            body,
            stalled,
        }
    }
}

/// A buffered body as `wsgi.input` reads it.
enum WholeBody {
    Memory(io::Cursor<Vec<u8>>),
    File(io::Take<std::fs::File>),
}

impl Read for WholeBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            WholeBody::Memory(c) => c.read(buf),
            WholeBody::File(f) => f.read(buf),
        }
    }
}

/// A response stream that keeps the request's deadline watch pointed at the loop thread
/// while the application's iterator runs.
struct Timed {
    chunks: ChunkStream,
    _running: Option<Running>,
}

impl Iterator for Timed {
    type Item = io::Result<Vec<u8>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.chunks.next()
    }
}

impl HttpSession {
    /// Whether blocking applications run inside `advance` (`--threads 0`).
    pub(super) fn app_on_loop(&self) -> bool {
        self.settings.offload_threads == 0
    }

    /// Calls the application with its whole body, or refuses a body the loop cannot wait
    /// for. `None`: the response is done and the connection stays open.
    pub(super) fn pump_on_loop(&mut self, out: &mut Output) -> Option<Step> {
        if !matches!(self.busy, Busy::OnLoop) {
            return None;
        }
        self.busy = Busy::Idle;
        let mut ready = self.on_loop.take()?;
        let body = match std::mem::replace(&mut ready.body, Prefilled::None) {
            Prefilled::Whole(body) => Some(body),
            // `Content-Length: 0` (what `requests.post(url)` sends) is no body too.
            Prefilled::None
                if matches!(
                    ready.head.body_framing(),
                    BodyFraming::None | BodyFraming::Length(0)
                ) =>
            {
                None
            }
            // The rest of the body would have to come from the client while the loop waits.
            _ => return Some(self.refuse_body(&ready.head, ready.stalled, out)),
        };
        let step = self.call_on_loop(&ready.head, body, out);
        // The next head is parsed into this one's buffers.
        self.conn.recycle(ready.head);
        (step != Step::Read).then_some(step)
    }

    /// A body the loop will not wait for: `413` (longer than `--buffer-request-body`) or
    /// `408` (it stalled past `--body-timeout`), one info line, and the connection closes
    /// (the rest of the body is never read).
    fn refuse_body(&mut self, head: &RequestHead, stalled: bool, out: &mut Output) -> Step {
        let (status, why) = if stalled {
            (408, "the body stalled past --body-timeout")
        } else {
            (413, "the body is longer than --buffer-request-body")
        };
        self.link.hooks.log(
            crate::hooks::Level::Info,
            format_args!(
                "{} {}: answered {status}: {why} (--threads 0 calls the application with whole bodies only)",
                head.method(),
                head.path()
            ),
        );
        let body = format!("{why}\n");
        let headers: ironhorse_app::HeaderList = vec![
            ("Content-Type".into(), b"text/plain".to_vec()),
            ("Connection".into(), b"close".to_vec()),
        ];
        self.send_head(status, &headers, Some(body.len() as u64), out);
        self.send_body(body.as_bytes(), out);
        self.finish(out);
        Step::Close
    }

    fn call_on_loop(
        &mut self,
        head: &RequestHead,
        body: Option<Spooled>,
        out: &mut Output,
    ) -> Step {
        self.timer = self.request_timer(head.is_head());
        let running = self.timer.as_ref().map(|t| t.state().running_on(None));
        let mut ticket = self.recorder.job_ticket();
        if let Some(ticket) = ticket.as_mut() {
            ticket.running();
        }
        let body_length = body.as_ref().map(Spooled::len);
        let mut reader = match body {
            None => WholeBody::Memory(io::Cursor::new(Vec::new())),
            Some(Spooled::Memory(bytes)) => WholeBody::Memory(io::Cursor::new(bytes)),
            Some(Spooled::File(file, len)) => WholeBody::File(file.take(len)),
        };
        let response = self.service.call(Request {
            head,
            body: &mut reader,
            conn: &self.info,
            sink: None,
            body_length,
        });
        drop(ticket);
        if self.timer.as_ref().is_some_and(|t| t.timed_out()) {
            drop(response);
            return self.time_out(out);
        }
        match self.queue_response(response, out) {
            Queued::Whole => {}
            Queued::Aborted => return Step::Close,
            Queued::Stream { chunks, length } => {
                let chunks = Timed {
                    chunks,
                    _running: running,
                };
                if length.is_some() {
                    // A framework's response (Flask's, Django's) is an iterable of declared
                    // length, usually one chunk: pulled to its end here, it leaves with its
                    // head in one write. Streams of unknown length (server-sent events) go
                    // out chunk by chunk as produced, through `pump_stream`.
                    match self.pull_declared(chunks, out) {
                        Some(step) => return step,
                        None => return self.finish(out),
                    }
                }
                self.busy = Busy::Streaming(Box::new(chunks));
                return Step::Flush;
            }
        }
        self.finish(out)
    }

    /// Pulls a stream of declared length while less than a high-water mark is queued.
    /// `None`: it ended; else the step to return (the rest streams through `pump_stream`).
    fn pull_declared(&mut self, mut chunks: Timed, out: &mut Output) -> Option<Step> {
        while out.queued() <= HIGH_WATER {
            match chunks.next() {
                Some(Ok(chunk)) => self.send_body(&chunk, out),
                Some(Err(_)) => {
                    self.conn.abort();
                    return Some(Step::Close);
                }
                None => return None,
            }
        }
        self.busy = Busy::Streaming(Box::new(chunks));
        Some(Step::Flush)
    }
}
