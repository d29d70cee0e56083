//! A request to a blocking service (Python) run as a job on the driver's executor (see
//! [`exchange`](super::exchange)): starting the job, then shuttling body bytes to it and
//! response pieces from it.

use std::time::Instant;

use ironhorse_app::RequestHead;
use ironhorse_h1::{BodyRead, Failure, ServerConn};

use super::buffering::Prefilled;
use super::exchange::{self, BodyDemand, Exchange, Reply};
use super::spool::Spooled;
use super::timeout::RequestTimer;
use super::{Busy, HttpSession, BODY_CHUNK, HIGH_WATER};
use crate::output::Output;
use crate::session::Step;

impl HttpSession {
    /// Starts a blocking service's job on the executor, with its deadline.
    /// Under `--threads 0` the request is called in `advance` instead ([`on_loop`](super::on_loop)).
    pub(super) fn start_exchange(&mut self, head: RequestHead, prefilled: Prefilled<Spooled>) {
        if self.app_on_loop() {
            self.on_loop = Some(super::on_loop::Ready::new(head, prefilled, false));
            self.busy = Busy::OnLoop;
            return;
        }
        // A buffered body's `100 Continue` went out when its reading began.
        let awaits_continue = head.expects_continue() && matches!(prefilled, Prefilled::None);
        self.timer = self.request_timer(head.is_head());
        let (exchange, job) = Exchange::new(
            self.service.clone(),
            head,
            self.info.clone(),
            self.waker.clone(),
            self.timer.as_ref().map(RequestTimer::state),
            prefilled,
        );
        self.busy = Busy::Offloaded {
            exchange,
            awaits_continue,
        };
        let job = match self.recorder.job_ticket() {
            Some(mut ticket) => Box::new(move |host: &mut dyn crate::session::JobHost| {
                ticket.running();
                job(host);
            }),
            None => job,
        };
        self.executor.execute(job);
    }

    /// Moves an offloaded request forward: body bytes to the application, response pieces
    /// from it. `None`: the response is done and the connection stays open.
    pub(super) fn pump_exchange(&mut self, out: &mut Output) -> Option<Step> {
        if self.timer.as_ref().is_some_and(|t| t.timed_out()) {
            return Some(self.time_out(out));
        }
        let Busy::Offloaded {
            exchange,
            awaits_continue,
        } = &mut self.busy
        else {
            return None;
        };
        if *awaits_continue && exchange.body_requested() {
            self.conn.write_continue(out.bytes());
            *awaits_continue = false;
        }
        let mut need_input =
            !*awaits_continue && feed_body(&mut self.conn, exchange, &mut self.last_progress);
        if !need_input {
            self.body_deadline.disarm();
        } else if self.body_deadline.expired(
            self.last_progress,
            self.settings.body_timeout,
            &self.waker,
        ) {
            // The application's reads fail with a timeout; it answers 408 and we close.
            exchange.body_timed_out();
            self.conn.give_up_body();
            need_input = false;
        }
        loop {
            // Nothing more from the application while the client has not taken what is
            // queued: the exchange's bounded queue then holds it back (a driver may call
            // `advance` on each of its wake-ups, the socket still full).
            if out.queued() > HIGH_WATER {
                return Some(Step::Flush);
            }
            let Busy::Offloaded { exchange, .. } = &mut self.busy else {
                return None;
            };
            match exchange.next_reply() {
                Ok(Some(Reply::Whole {
                    status,
                    headers,
                    body,
                    request,
                })) => {
                    self.send_head(status, &headers, Some(body.len() as u64), out);
                    self.send_body(&body, out);
                    // The next head is parsed into this one's buffers.
                    self.conn.recycle(request);
                    return self.finish_response(out);
                }
                Ok(Some(Reply::Head {
                    status,
                    headers,
                    len,
                })) => self.send_head(status, &headers, len, out),
                Ok(Some(Reply::Bytes(bytes))) => self.send_body(&bytes, out),
                Ok(Some(Reply::File(region))) => {
                    if self.queue_file(region, out).is_err() {
                        self.conn.abort();
                        return Some(Step::Close);
                    }
                }
                Ok(Some(Reply::End)) => {
                    return self.finish_response(out);
                }
                Ok(Some(Reply::Failed)) | Err(exchange::JobGone) => {
                    self.busy = Busy::Idle;
                    self.timer = None;
                    self.fail(Failure::AppFailed, out);
                    return Some(Step::Close);
                }
                Ok(None) => break,
            }
        }
        Some(if !out.is_empty() {
            Step::Flush
        } else if need_input {
            Step::Read
        } else {
            Step::Pending
        })
    }
}

/// Moves received body bytes to the application while its queue has room. Whether more
/// input is needed for it.
fn feed_body(conn: &mut ServerConn, exchange: &mut Exchange, last_progress: &mut Instant) -> bool {
    while let BodyDemand::More = exchange.body_demand() {
        // Most requests have no body: end it without a chunk buffer.
        if conn.body_done() {
            exchange.body_end(None);
            break;
        }
        let mut chunk = vec![0; BODY_CHUNK];
        match conn.read_body(&mut chunk) {
            Ok(BodyRead::Data(n)) => {
                chunk.truncate(n);
                exchange.body_data(chunk);
                *last_progress = Instant::now();
            }
            Ok(BodyRead::NeedMore) => return true,
            Ok(BodyRead::End) => {
                exchange.body_end(None);
                break;
            }
            Err(e) => {
                exchange.body_end(Some(e));
                break;
            }
        }
    }
    false
}
