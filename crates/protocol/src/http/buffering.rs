//! Reading a request body whole before a blocking application is called
//! (`--buffer-request-body`, uWSGI's `post-buffering`): the application's thread or worker
//! is taken only when the request is complete, a chunked body reaches it de-chunked with
//! its real length, and a body whose framing is broken is answered `400` by the engine
//! without the application ever running.
//!
//! Bodies are held in memory up to `--buffer-request-body-memory` and in an unlinked
//! temporary file beyond it ([`spool`](super::spool)), up to the configured size; one that
//! turns out longer (a chunked one) goes on to the application as it arrives, starting with
//! what was read.

use ironhorse_h1::{BodyFraming, BodyRead, Error, RequestHead, ServerConn};

use std::time::Instant;

use super::spool::{Spool, Spooled};
use super::{Busy, HttpSession};
use crate::hooks::Level;
use crate::output::Output;
use crate::session::Step;

/// Bytes read from the engine per step.
const STEP: usize = 16 * 1024;

/// A body being read ahead of its request's application call.
pub(super) struct Buffered {
    pub head: RequestHead,
    pub body: Spool,
    /// The declared length (none: chunked).
    declared: Option<u64>,
}

/// What reading more of the body gave.
pub(super) enum Progress {
    /// The body needs more input.
    NeedMore,
    /// The body is complete: call the application with it.
    Complete,
    /// The body is longer than the buffer allows: stream it (starting with what was read).
    TooLong,
    /// The body's framing is broken (the engine's error, answered before any call).
    Failed(Error),
    /// The temporary file could not be written (the server's trouble: 500).
    Spool(std::io::Error),
}

impl Buffered {
    /// Whether `head`'s body is one to read ahead: one that `limit` bytes may hold (a
    /// chunked body is tried: its length shows only as it arrives). `whole_only`: the
    /// application takes whole bodies only (`--threads 0`), so a chunked body is tried even
    /// when `limit` is 0 (an empty one fits).
    pub fn wants(head: &RequestHead, limit: u64, whole_only: bool) -> bool {
        match head.body_framing() {
            BodyFraming::Length(n) => n > 0 && n <= limit,
            BodyFraming::Chunked => limit > 0 || whole_only,
            BodyFraming::None => false,
        }
    }

    /// A buffer for `head`'s body, in memory up to `memory` bytes.
    pub fn new(head: RequestHead, memory: u64) -> Buffered {
        let declared = match head.body_framing() {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        Buffered {
            head,
            body: Spool::new(memory, declared),
            declared,
        }
    }

    /// Reads what the engine has of the body (at most what the driver's last reads
    /// brought: the spool's file writes per turn are bounded by them).
    pub fn read(&mut self, conn: &mut ServerConn, limit: u64) -> Progress {
        let mut step = [0u8; STEP];
        loop {
            if self.body.len() > limit {
                return Progress::TooLong;
            }
            let read = conn.read_body(&mut step);
            match read {
                Ok(BodyRead::Data(n)) => {
                    if let Err(e) = self.body.write(&step[..n]) {
                        return Progress::Spool(e);
                    }
                }
                Ok(BodyRead::NeedMore) => return Progress::NeedMore,
                Ok(BodyRead::End) => return Progress::Complete,
                Err(e) => return Progress::Failed(e),
            }
        }
    }

    /// Whether the input buffered in the engine (`buffered` bytes) may complete the body:
    /// for a declared length, exactly when enough bytes are there; for a chunked body, any
    /// input might.
    pub fn may_complete(&self, buffered: usize) -> bool {
        match self.declared {
            Some(n) => buffered as u64 >= n.saturating_sub(self.body.len()),
            None => buffered > 0,
        }
    }
}

/// Body bytes read before a job starts (see [`buffering`](self)).
pub enum Prefilled<B = ()> {
    None,
    /// The start of a body too long to hold: the rest follows from the connection.
    Start(B),
    /// The whole body.
    Whole(B),
}

impl Prefilled {
    pub fn with(self, body: Spooled) -> Prefilled<Spooled> {
        match self {
            Prefilled::None => Prefilled::None,
            Prefilled::Start(()) => Prefilled::Start(body),
            Prefilled::Whole(()) => Prefilled::Whole(body),
        }
    }
}

impl HttpSession {
    /// Reads a body ahead of its application call; once it is whole (or too long to hold),
    /// starts the job with it. Broken framing is answered here: the application never runs.
    pub(super) fn pump_buffering(&mut self, out: &mut Output) -> Option<Step> {
        let Busy::Buffering(buffered) = &mut self.busy else {
            return None;
        };
        let before = buffered.body.len();
        let progress = buffered.read(&mut self.conn, self.settings.buffer_body);
        // The body keeps its own copy: the engine's read buffer (grown by fast reads, to
        // 64 KiB on the event loop) is not held per waiting connection.
        self.conn.release_idle_buffer();
        if buffered.body.len() > before {
            self.last_progress = Instant::now();
        }
        let mut timed_out = false;
        let prefilled = match progress {
            Progress::NeedMore => {
                let (last, timeout) = (self.last_progress, self.settings.body_timeout);
                if !self.body_deadline.expired(last, timeout, &self.waker) {
                    return Some(Step::Read);
                }
                // The body stalled: the application gets what came and a timeout, and
                // answers 408 as for a streamed body.
                timed_out = true;
                Prefilled::Start(())
            }
            Progress::Failed(error) => {
                if let Busy::Buffering(b) = std::mem::replace(&mut self.busy, Busy::Idle) {
                    self.log_body_error(&b.head, &error);
                }
                self.recorder.head(error.status(), &Vec::new());
                self.recorder.end();
                self.conn.write_error(&error, out.bytes());
                return Some(Step::Close);
            }
            Progress::Spool(error) => return Some(self.spool_failed(&error, out)),
            Progress::Complete => Prefilled::Whole(()),
            Progress::TooLong => Prefilled::Start(()),
        };
        let Busy::Buffering(buffered) = std::mem::replace(&mut self.busy, Busy::Idle) else {
            return None;
        };
        let Buffered { head, body, .. } = *buffered;
        let body = match body.finish() {
            Ok(body) => body,
            Err(error) => return Some(self.spool_failed(&error, out)),
        };
        if self.app_on_loop() {
            let ready = super::on_loop::Ready::new(head, prefilled.with(body), timed_out);
            self.on_loop = Some(ready);
            self.busy = Busy::OnLoop;
            return self.pump_on_loop(out);
        }
        self.start_exchange(head, prefilled.with(body));
        if let (true, Busy::Offloaded { exchange, .. }) = (timed_out, &mut self.busy) {
            exchange.body_timed_out();
            self.conn.give_up_body();
        }
        self.pump_exchange(out)
    }

    /// The temporary file of a buffered body failed (a full disk): the server's trouble,
    /// logged as an error and answered `500`.
    fn spool_failed(&mut self, error: &std::io::Error, out: &mut Output) -> Step {
        self.link.hooks.log(
            Level::Error,
            format_args!("could not buffer a request body in a temporary file: {error}"),
        );
        self.busy = Busy::Idle;
        self.fail(ironhorse_h1::Failure::AppFailed, out);
        Step::Close
    }

    /// One info line for a body the client broke while it was buffered (as the WSGI bridge
    /// logs one the application met): the client's doing, no traceback.
    fn log_body_error(&self, head: &RequestHead, error: &ironhorse_h1::Error) {
        let peer = self
            .info
            .peer
            .map_or_else(|| "unix socket".to_string(), |p| p.to_string());
        let what = match error {
            ironhorse_h1::Error::Incomplete => {
                "client went away mid-body (connection closed); closed".to_string()
            }
            other => format!(
                "malformed request body ({}); answered {} and closed",
                other.message(),
                other.status()
            ),
        };
        self.link.hooks.log(
            Level::Info,
            format_args!(
                "client error from {peer} on {} {}: {what}",
                head.method(),
                head.path()
            ),
        );
    }
}
