//! A request to a non-blocking application (ASGI): no job, no thread. The session offers
//! body bytes while the application has room and takes response pieces as they are ready;
//! the application's side wakes the driver when it has news ([`ironhorse_app::Wake`]).
//!
//! While the application runs the session keeps reading (a bounded amount) so that a
//! client that goes away is noticed and the application told (`http.disconnect`).

use std::time::Instant;

use ironhorse_app::{AppEvent, AppExchange};
use ironhorse_h1::{BodyRead, Failure};

use super::{Busy, HttpSession, BODY_CHUNK, HIGH_WATER};
use crate::output::Output;
use crate::session::Step;

/// Input buffered past the request (pipelined requests) beyond which the session stops
/// reading while the application runs.
const READ_AHEAD: usize = 64 * 1024;

impl HttpSession {
    /// Starts `exchange` for the request just parsed, with its deadline.
    pub(super) fn start_nonblocking(
        &mut self,
        exchange: Box<dyn AppExchange>,
        awaits_continue: bool,
        is_head: bool,
    ) {
        self.timer = self.request_timer(is_head);
        self.busy = Busy::NonBlocking {
            exchange,
            awaits_continue,
        };
    }

    /// Moves a non-blocking request forward. `None`: the response is done and the
    /// connection stays open.
    pub(super) fn pump_nonblocking(&mut self, out: &mut Output) -> Option<Step> {
        let Busy::NonBlocking {
            exchange,
            awaits_continue,
        } = &mut self.busy
        else {
            return None;
        };
        if self.timer.as_ref().is_some_and(|t| t.timed_out()) {
            exchange.cancel();
            return Some(self.time_out(out));
        }
        if *awaits_continue && exchange.body_requested() {
            self.conn.write_continue(out.bytes());
            *awaits_continue = false;
        }
        let mut need_input = false;
        if !*awaits_continue {
            match self.feed(out) {
                Ok(need) => need_input = need,
                Err(step) => return Some(step),
            }
        }
        loop {
            // As for a job (`offload.rs`): nothing more while the client lags, so that the
            // application's `send()` waits on its bounded queue.
            if out.queued() > HIGH_WATER {
                return Some(Step::Flush);
            }
            let Busy::NonBlocking { exchange, .. } = &mut self.busy else {
                return None;
            };
            let Some(event) = exchange.next_event() else {
                break;
            };
            if let Err(step) = self.write_event(event, out) {
                return step;
            }
        }
        if self.conn.input_ended() {
            if let Busy::NonBlocking { exchange, .. } = &mut self.busy {
                // A body cut short by the end fails in `feed` (a disconnect, 400).
                exchange.input_closed();
            }
        }
        Some(if !out.is_empty() {
            Step::Flush
        } else if need_input
            || (!self.conn.input_ended() && self.conn.buffered().len() < READ_AHEAD)
        {
            // Reading on also notices a client that leaves.
            Step::Read
        } else {
            Step::Pending
        })
    }

    /// Writes one response piece. `Err`: the response ended, with what `pump_nonblocking`
    /// returns.
    fn write_event(&mut self, event: AppEvent, out: &mut Output) -> Result<(), Option<Step>> {
        match event {
            AppEvent::Head {
                status,
                headers,
                len,
            } => self.send_head(status, &headers, len, out),
            AppEvent::Body { data, more } => {
                self.send_body(&data, out);
                if !more {
                    return Err(self.finish_response(out));
                }
            }
            AppEvent::Trailers(fields) => {
                // A body of declared length has no room for them: they are dropped.
                self.conn.write_trailers(&fields, out.bytes());
                return Err(self.finish_response(out));
            }
            AppEvent::File(region) => {
                if self.queue_file(region, out).is_err() {
                    self.busy = Busy::Idle;
                    self.timer = None;
                    self.conn.abort();
                    return Err(Some(Step::Close));
                }
                return Err(self.finish_response(out));
            }
            AppEvent::Failed | AppEvent::Returned => {
                self.busy = Busy::Idle;
                self.timer = None;
                // A client that left gets no answer (its task ended on the disconnect, or
                // was cancelled): the connection just closes.
                if !self.conn.input_ended() {
                    self.fail(Failure::AppFailed, out);
                }
                return Err(Some(Step::Close));
            }
        }
        Ok(())
    }

    /// Offers received body bytes while the application has room. `Ok(true)`: more input
    /// is needed for it; `Err`: the body was malformed (answered by h1).
    fn feed(&mut self, out: &mut Output) -> Result<bool, Step> {
        let Busy::NonBlocking { exchange, .. } = &mut self.busy else {
            return Ok(false);
        };
        while exchange.wants_body() {
            if self.conn.body_done() {
                exchange.body(Vec::new(), false);
                break;
            }
            let mut chunk = vec![0; BODY_CHUNK];
            match self.conn.read_body(&mut chunk) {
                Ok(BodyRead::Data(n)) => {
                    chunk.truncate(n);
                    let more = !self.conn.body_done();
                    exchange.body(chunk, more);
                    self.last_progress = Instant::now();
                }
                Ok(BodyRead::NeedMore) => return Ok(true),
                Ok(BodyRead::End) => {
                    exchange.body(Vec::new(), false);
                    break;
                }
                Err(error) => {
                    exchange.disconnect();
                    self.busy = Busy::Idle;
                    self.timer = None;
                    if self.conn.head_written() {
                        self.conn.abort();
                    } else {
                        self.recorder.head(error.status(), &Vec::new());
                        self.conn.write_error(&error, out.bytes());
                    }
                    return Err(Step::Close);
                }
            }
        }
        Ok(false)
    }
}
