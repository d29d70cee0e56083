//! One HTTP/2 stream: a request answered by the application service, the same way an
//! HTTP/1.1 request is. Non-blocking services (static files) are called at once; blocking
//! ones (WSGI) run as a job through the HTTP/1.1 session's [`Exchange`], whose bounded
//! queues carry the body to the application (HTTP/2 capacity released only as chunks are
//! handed over) and the response pieces back (sent as send capacity allows). Several
//! streams of a connection run at once, each with its own exchange.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use ironhorse_app::{Body, ChunkStream, ConnInfo, Request, RequestHead, Service};
use ironhorse_protocol::offload_pool::OffloadPool;
use ironhorse_protocol::session::{Executor, Waker};
use ironhorse_protocol::{BodyDemand, Exchange, Recorder, Reply};

use crate::send::{Outgoing, Sent};

/// Where the response comes from.
enum Work {
    /// Everything is queued already (an inline answer, a refusal).
    Queued,
    /// An inline service's streamed body, pulled as capacity allows.
    Chunks(ChunkStream),
    /// A blocking service's job.
    Offloaded(Exchange),
}

/// What a stream needs from its connection.
pub(crate) struct StreamContext<'a> {
    pub service: &'a Arc<dyn Service>,
    pub pool: &'a Arc<OffloadPool>,
    pub info: &'a ConnInfo,
    pub waker: &'a Waker,
    /// `--limit-request-body`.
    pub max_body: u64,
}

pub(crate) struct Stream {
    /// Until the head is sent.
    respond: Option<SendResponse<Bytes>>,
    /// After the head is sent.
    send: Option<SendStream<Bytes>>,
    /// The request body, while the application may still want it.
    recv: Option<RecvStream>,
    work: Work,
    out: Outgoing,
    head_only: bool,
    recorder: Recorder,
    /// The application failed after its head, and what it produced was handed to h2: the
    /// reset goes out on the next turn, after the connection wrote those frames (h2 drops
    /// a reset stream's queued frames, the head included).
    reset_due: bool,
    /// Body bytes still allowed (`--limit-request-body`; a declared length was checked
    /// with the head).
    body_budget: u64,
}

/// What a turn of a stream came to.
pub(crate) enum Turn {
    Waiting,
    Progress,
    Done,
}

impl Stream {
    /// Starts answering `head` (`Err(status)`: the request was refused while rebuilding it).
    pub fn start(
        head: Result<RequestHead, u16>,
        recv: RecvStream,
        respond: SendResponse<Bytes>,
        ctx: &StreamContext<'_>,
        mut recorder: Recorder,
    ) -> Stream {
        let mut stream = Stream {
            respond: Some(respond),
            send: None,
            recv: None,
            work: Work::Queued,
            out: Outgoing::default(),
            head_only: false,
            recorder: Recorder::new(None, None),
            body_budget: ctx.max_body,
            reset_due: false,
        };
        let head = match head {
            Ok(head) => head,
            Err(status) => {
                let (response, body) = crate::head::plain(status);
                stream.send_head(response, body.len() as u64 == 0);
                stream.out.push(body);
                stream.out.end();
                return stream;
            }
        };
        recorder.begin(&head, ctx.info);
        stream.recorder = recorder;
        stream.head_only = head.is_head();
        if ctx.service.may_block_for(&head) {
            let (exchange, job) = Exchange::untimed(
                ctx.service.clone(),
                head,
                ctx.info.clone(),
                ctx.waker.clone(),
            );
            stream.recv = Some(recv);
            stream.work = Work::Offloaded(exchange);
            ctx.pool.execute(job);
        } else {
            // Non-blocking services (static files) take no body: it is discarded.
            drop(recv);
            let response = ctx.service.call(Request {
                head: &head,
                body: &mut std::io::empty(),
                conn: ctx.info,
                sink: None,
                body_length: None,
            });
            stream.answer(response.status, &response.headers, response.body.len_hint());
            match response.body {
                Body::Empty => stream.out.end(),
                Body::Bytes(bytes) => {
                    stream.out.push(Bytes::from(bytes));
                    stream.out.end();
                }
                Body::File(region) => {
                    stream.out.push_file(region);
                    stream.out.end();
                }
                Body::Stream { chunks, .. } => stream.work = Work::Chunks(chunks),
            }
        }
        stream
    }

    /// Sends the response head for the application's answer.
    fn answer(&mut self, status: u16, headers: &ironhorse_app::HeaderList, len: Option<u64>) {
        self.recorder.head(status, headers);
        let empty = self.head_only || len == Some(0) || status == 204 || status == 304;
        self.send_head(crate::head::response_head(status, headers, len), empty);
        if self.head_only {
            self.out.end();
        }
    }

    fn send_head(&mut self, response: http::Response<()>, end: bool) {
        let Some(mut respond) = self.respond.take() else {
            return;
        };
        match respond.send_response(response, end) {
            Ok(send) if !end => self.send = Some(send),
            _ => {}
        }
    }

    /// Moves the stream forward: body to the application, response pieces to the peer.
    pub fn turn(&mut self, cx: &mut Context<'_>) -> Turn {
        if self.peer_reset(cx) {
            return Turn::Done;
        }
        let fed = self.feed_body(cx);
        if let Err(failed) = self.pull_response() {
            return failed;
        }
        let Some(send) = &mut self.send else {
            // The head ended the stream (or could not be sent).
            return if self.respond.is_none() {
                Turn::Done
            } else if fed {
                Turn::Progress
            } else {
                Turn::Waiting
            };
        };
        let body = if self.head_only {
            Sent::Finished
        } else {
            self.out.send(send, cx)
        };
        self.recorder.body(std::mem::take(&mut self.out.sent));
        match body {
            Sent::ResetDue if self.reset_due => {
                send.send_reset(Reason::INTERNAL_ERROR);
                Turn::Done
            }
            Sent::ResetDue => {
                self.reset_due = true;
                Turn::Progress
            }
            Sent::Finished | Sent::Broken => Turn::Done,
            Sent::Progress => Turn::Progress,
            Sent::Waiting if fed => Turn::Progress,
            Sent::Waiting => Turn::Waiting,
        }
    }

    /// Whether the peer reset the stream (`RST_STREAM`): the application's side of the
    /// exchange then ends (its reads and writes fail, WSGI `close()` runs).
    fn peer_reset(&mut self, cx: &mut Context<'_>) -> bool {
        let reset = match (&mut self.respond, &mut self.send) {
            (Some(respond), _) => respond.poll_reset(cx),
            (None, Some(send)) => send.poll_reset(cx),
            (None, None) => Poll::Pending,
        };
        reset.is_ready()
    }

    /// Hands received body bytes to the application while its queue has room, releasing
    /// the flow-control capacity they used. Whether anything moved.
    fn feed_body(&mut self, cx: &mut Context<'_>) -> bool {
        let (Work::Offloaded(exchange), Some(recv)) = (&mut self.work, &mut self.recv) else {
            return false;
        };
        let mut moved = false;
        while let BodyDemand::More = exchange.body_demand() {
            match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    let Some(left) = self.body_budget.checked_sub(data.len() as u64) else {
                        // The application's read fails as under HTTP/1.1 (413).
                        exchange.body_end(Some(ironhorse_h1::Error::BodyTooLarge));
                        self.recv = None;
                        return true;
                    };
                    self.body_budget = left;
                    exchange.body_data(data.to_vec());
                    moved = true;
                }
                Poll::Ready(None) => {
                    exchange.body_end(None);
                    self.recv = None;
                    return true;
                }
                Poll::Ready(Some(Err(_))) => {
                    exchange.body_end(Some(ironhorse_h1::Error::Incomplete));
                    self.recv = None;
                    return true;
                }
                Poll::Pending => break,
            }
        }
        moved
    }

    /// Takes response pieces while few wait to be sent. `Err` ends the stream.
    fn pull_response(&mut self) -> Result<(), Turn> {
        while self.out.wants_more() {
            match &mut self.work {
                Work::Queued => return Ok(()),
                Work::Chunks(chunks) => match chunks.next() {
                    Some(Ok(chunk)) => self.out.push(Bytes::from(chunk)),
                    Some(Err(_)) => return Err(self.fail()),
                    None => self.out.end(),
                },
                Work::Offloaded(exchange) => match exchange.next_reply() {
                    Ok(Some(reply)) => self.take_reply(reply)?,
                    Ok(None) => return Ok(()),
                    // The job ended without finishing (a panic).
                    Err(_job_gone) => return Err(self.fail()),
                },
            }
        }
        Ok(())
    }

    fn take_reply(&mut self, reply: Reply) -> Result<(), Turn> {
        match reply {
            Reply::Whole {
                status,
                headers,
                body,
            } => {
                self.answer(status, &headers, Some(body.len() as u64));
                self.out.push(Bytes::from(body));
                self.out.end();
            }
            Reply::Head {
                status,
                headers,
                len,
            } => self.answer(status, &headers, len),
            Reply::Bytes(data) => self.out.push(Bytes::from(data)),
            Reply::File(region) => self.out.push_file(region),
            Reply::End => self.out.end(),
            Reply::Failed => return Err(self.fail()),
        }
        Ok(())
    }

    /// The application failed: `500` if nothing was sent yet, else `RST_STREAM` once what
    /// it produced before is out.
    fn fail(&mut self) -> Turn {
        self.work = Work::Queued;
        if self.respond.is_some() {
            let (response, body) = crate::head::plain(500);
            self.recorder.head(500, &Vec::new());
            self.send_head(response, false);
            self.out = Outgoing::default();
            self.out.push(body);
            self.out.end();
        } else {
            self.out.fail();
        }
        Turn::Progress
    }
}
