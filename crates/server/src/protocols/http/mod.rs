//! HTTP/1.1 over the sans-IO engine.
//!
//! The session parses requests from the buffered input and answers them in order, pipelined
//! ones included, so a burst leaves in one write. Where the application runs depends on it
//! and on the driver:
//! - a non-blocking service (static files) runs inline, on any driver;
//! - a blocking service (Python) runs inline on blocking drivers, reading the body straight
//!   from the socket;
//! - on event-driven drivers a blocking service is offloaded to a bounded thread pool
//!   ([`offload`]), and the session shuttles body and response pieces.

mod body;
mod offload;
mod record;
mod timeout;

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::{Body, ChunkStream, ConnInfo, FileRegion, Request, RequestHead, Service};
use ironhorse_h1::{BodyRead, Limits, Next, ServerConn};

use self::body::{BufferedBody, SocketBody};
use self::offload::{BodyDemand, Exchange, Reply};
use self::record::Recorder;
use self::timeout::{RequestTimer, GATEWAY_TIMEOUT};
use crate::offload_pool::OffloadPool;
use crate::output::Output;
use crate::session::{Io, Protocol, Session, Step};

/// File bodies up to this size are copied into the response buffer (one `write` with the
/// head beats a `write` plus a `sendfile`); larger ones go out with `sendfile`.
const INLINE_FILE_MAX: u64 = 16 * 1024;
/// A response pauses once this much output is queued (backpressure).
const HIGH_WATER: u64 = 256 * 1024;
/// Body bytes handed to an offloaded application per chunk.
const BODY_CHUNK: usize = 64 * 1024;

/// Per-connection HTTP settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub limits: Limits,
    /// How long an idle keep-alive connection is kept.
    pub keepalive_timeout: Duration,
    /// How long a client may take to send a whole request head (slowloris defence).
    pub header_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Threads running blocking applications for event-driven drivers.
    pub offload_threads: usize,
    /// Longest an application request may run (`--request-timeout`).
    pub request_timeout: Option<Duration>,
    /// Whether a worker whose only thread is stuck in a timed-out request exits (serial
    /// workers under a master, fork children), to be replaced.
    pub exit_when_stuck: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            limits: Limits::default(),
            keepalive_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            offload_threads: 16,
            request_timeout: None,
            exit_when_stuck: false,
        }
    }
}

/// The HTTP/1.1 protocol serving one application.
pub struct Http {
    service: Arc<dyn Service>,
    settings: HttpSettings,
    pool: Arc<OffloadPool>,
    access_log: Option<ironhorse_log::AccessLog>,
}

impl Http {
    pub fn new(service: Arc<dyn Service>, settings: HttpSettings) -> Http {
        let pool = Arc::new(OffloadPool::new(settings.offload_threads));
        Http {
            service,
            settings,
            pool,
            access_log: None,
        }
    }

    /// Logs every answered request to `log`.
    pub fn with_access_log(mut self, log: ironhorse_log::AccessLog) -> Http {
        self.access_log = Some(log);
        self
    }
}

impl Protocol for Http {
    fn session(&self, conn: ConnInfo) -> Box<dyn Session> {
        let peer = conn.peer;
        Box::new(HttpSession {
            conn: ServerConn::new(self.settings.limits),
            service: self.service.clone(),
            pool: self.pool.clone(),
            info: conn,
            settings: self.settings,
            busy: Busy::Idle,
            stashed: None,
            head_started: None,
            last_progress: Instant::now(),
            answered_any: false,
            recorder: Recorder::new(self.access_log.clone(), peer),
            timer: None,
        })
    }

    fn before_fork(&self) {
        self.service.before_fork();
    }

    fn after_fork_parent(&self) {
        self.service.after_fork_parent();
    }

    fn after_fork_child(&self) {
        self.service.after_fork_child();
    }
}

/// What the connection is in the middle of.
enum Busy {
    Idle,
    /// A streaming body from an inline call.
    Streaming(ChunkStream),
    /// A request running on the offload pool.
    Offloaded {
        exchange: Exchange,
        awaits_continue: bool,
    },
}

struct HttpSession {
    conn: ServerConn,
    service: Arc<dyn Service>,
    pool: Arc<OffloadPool>,
    info: ConnInfo,
    settings: HttpSettings,
    busy: Busy,
    /// A parsed request waiting for earlier responses to be flushed first.
    stashed: Option<RequestHead>,
    /// When the head being read began to arrive.
    head_started: Option<Instant>,
    /// When the connection last made progress (a response ended, body bytes came).
    last_progress: Instant,
    /// Whether a response was completed on this connection. A stopping server still serves
    /// the first request of a connection it accepted (the client has likely sent it).
    answered_any: bool,
    recorder: Recorder,
    /// The deadline of the application request in progress.
    timer: Option<RequestTimer>,
}

impl HttpSession {
    /// Queues a file body: small files inline, large ones as a sendfile region.
    fn queue_file(&mut self, region: FileRegion, out: &mut Output) -> io::Result<()> {
        let len = self.conn.body_sent_externally(region.len);
        self.recorder.body(len);
        if len == 0 {
            return Ok(());
        }
        if len > INLINE_FILE_MAX {
            out.file(FileRegion { len, ..region });
            return Ok(());
        }
        let buf = out.bytes();
        let start = buf.len();
        buf.resize(start + len as usize, 0);
        let result = region.file.read_exact_at(&mut buf[start..], region.offset);
        if result.is_err() {
            buf.truncate(start);
        }
        result
    }

    /// Calls the service on this thread and queues its response.
    fn respond_inline(
        &mut self,
        head: RequestHead,
        out: &mut Output,
        socket: Option<&mut dyn crate::session::BlockingSocket>,
    ) -> Step {
        let response = match socket {
            Some(socket) => {
                let mut body = SocketBody {
                    conn: &mut self.conn,
                    socket,
                    timeout: self.settings.body_timeout,
                };
                self.service.call(Request {
                    head: &head,
                    body: &mut body,
                    conn: &self.info,
                })
            }
            None => self.service.call(Request {
                head: &head,
                body: &mut BufferedBody(&mut self.conn),
                conn: &self.info,
            }),
        };
        let len = response.body.len_hint();
        self.send_head(response.status, &response.headers, len, out);
        match response.body {
            Body::Empty => {}
            Body::Bytes(bytes) => self.send_body(&bytes, out),
            Body::File(region) => {
                if self.queue_file(region, out).is_err() {
                    self.conn.abort();
                    return Step::Close;
                }
            }
            Body::Stream { chunks, .. } => {
                self.busy = Busy::Streaming(chunks);
                return Step::Flush;
            }
        }
        self.finish(out)
    }

    /// An offloaded request passed its deadline: answer 504 (or cut the response short),
    /// ask the application to stop, and close.
    fn time_out(&mut self, out: &mut Output) -> Step {
        crate::process::warn(format_args!(
            "request timed out (--request-timeout); cutting it off"
        ));
        if let Busy::Offloaded { exchange, .. } = &self.busy {
            if let Some(thread) = exchange.thread() {
                self.service.cancel(thread);
            }
        }
        if !self.conn.head_written() {
            out.bytes().extend_from_slice(GATEWAY_TIMEOUT);
        }
        self.conn.abort();
        self.busy = Busy::Idle;
        self.timer = None;
        Step::Close
    }

    /// Writes a response head, noting it for the access log.
    fn send_head(
        &mut self,
        status: u16,
        headers: &ironhorse_app::HeaderList,
        len: Option<u64>,
        out: &mut Output,
    ) {
        self.conn.write_head(status, headers, len, out.bytes());
        self.recorder.head(status, headers);
        if let Some(timer) = &self.timer {
            timer.head_written();
        }
    }

    /// Writes body bytes, counting them for the access log.
    fn send_body(&mut self, data: &[u8], out: &mut Output) {
        self.recorder.body(data.len() as u64);
        self.conn.write_body(data, out.bytes());
    }

    /// Ends the response for the pumps: `None` when the connection stays open (the session
    /// goes on to the next request), else the step to return.
    fn finish_response(&mut self, out: &mut Output) -> Option<Step> {
        match self.finish(out) {
            Step::Read => None,
            other => Some(other),
        }
    }

    fn finish(&mut self, out: &mut Output) -> Step {
        crate::process::request_done();
        self.recorder.end();
        self.timer = None;
        self.answered_any = true;
        self.busy = Busy::Idle;
        self.last_progress = Instant::now();
        match self.conn.finish(out.bytes()) {
            Next::KeepAlive => Step::Read,
            Next::Close => Step::Close,
        }
    }

    /// Pulls a streaming body forward. `None`: the response is done and the connection
    /// stays open.
    fn pump_stream(&mut self, out: &mut Output) -> Option<Step> {
        loop {
            if out.queued() > HIGH_WATER {
                return Some(Step::Flush);
            }
            let Busy::Streaming(stream) = &mut self.busy else {
                return None;
            };
            match stream.next() {
                Some(Ok(chunk)) => {
                    self.send_body(&chunk, out);
                    // Each chunk reaches the client as it is produced (server-sent events).
                    if !chunk.is_empty() {
                        return Some(Step::Flush);
                    }
                }
                Some(Err(_)) => {
                    self.busy = Busy::Idle;
                    self.conn.abort();
                    return Some(Step::Close);
                }
                None => {
                    return self.finish_response(out);
                }
            }
        }
    }

    /// Moves an offloaded request forward: body bytes to the application, response pieces
    /// from it. `None`: the response is done and the connection stays open.
    fn pump_exchange(&mut self, out: &mut Output) -> Option<Step> {
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
        let mut need_input = false;
        if *awaits_continue && exchange.body_requested() {
            self.conn.write_continue(out.bytes());

            *awaits_continue = false;
        }
        if !*awaits_continue {
            while let BodyDemand::More = exchange.body_demand() {
                let mut chunk = vec![0; BODY_CHUNK];
                match self.conn.read_body(&mut chunk) {
                    Ok(BodyRead::Data(n)) => {
                        chunk.truncate(n);
                        exchange.body_data(chunk);
                        self.last_progress = Instant::now();
                    }
                    Ok(BodyRead::NeedMore) => {
                        need_input = true;
                        break;
                    }
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
        }
        loop {
            let Busy::Offloaded { exchange, .. } = &mut self.busy else {
                return None;
            };
            match exchange.next_reply() {
                Ok(Some(Reply::Whole {
                    status,
                    headers,
                    body,
                })) => {
                    self.send_head(status, &headers, Some(body.len() as u64), out);
                    self.send_body(&body, out);
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
                Ok(Some(Reply::Failed)) | Err(()) => {
                    self.busy = Busy::Idle;
                    if self.conn.head_written() {
                        self.conn.abort();
                    } else {
                        let status = ironhorse_app::Response::text(500, "Internal Server Error\n");
                        if let Body::Bytes(text) = status.body {
                            self.send_head(500, &status.headers, Some(text.len() as u64), out);
                            self.send_body(&text, out);
                            let _ = self.conn.finish(out.bytes());
                        }
                    }
                    return Some(Step::Close);
                }
                Ok(None) => break,
            }
            if out.queued() > HIGH_WATER {
                return Some(Step::Flush);
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

impl Session for HttpSession {
    fn read_buf(&mut self) -> &mut [u8] {
        self.conn.read_buf()
    }

    fn receive(&mut self, data: &[u8]) {
        self.conn.feed(data);
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            self.conn.feed_eof();
        } else {
            self.conn.filled(n);
        }
    }

    fn advance(&mut self, out: &mut Output, mut io: Io<'_>) -> Step {
        loop {
            let pending = match self.busy {
                Busy::Idle => None,
                Busy::Streaming(_) => self.pump_stream(out),
                Busy::Offloaded { .. } => self.pump_exchange(out),
            };
            if let Some(step) = pending {
                return step;
            }
            if out.queued() > HIGH_WATER {
                return Step::Flush;
            }
            let head = match self.stashed.take() {
                Some(head) => head,
                None => match self.conn.next_request() {
                    Ok(Some(head)) => head,
                    Ok(None) if self.conn.is_closed() => return Step::Close,
                    Ok(None) => {
                        if self.conn.is_mid_head() && self.head_started.is_none() {
                            self.head_started = Some(Instant::now());
                        }
                        return Step::Read;
                    }
                    Err(error) => {
                        self.conn.write_error(&error, out.bytes());
                        return Step::Close;
                    }
                },
            };
            self.head_started = None;
            self.recorder.begin(&head);
            let step = if !self.service.may_block_for(&head) {
                self.respond_inline(head, out, None)
            } else if let Some(socket) = io.blocking.as_deref_mut() {
                // The application may write `100 Continue` straight to the socket: earlier
                // responses must be out first.
                if !out.is_empty() {
                    self.stashed = Some(head);
                    return Step::Flush;
                }
                if let Some(timeout) = self.settings.request_timeout {
                    if let Some(cutoff) = socket.cutoff() {
                        self.timer = Some(RequestTimer::inline(
                            timeout,
                            cutoff,
                            self.service.clone(),
                            self.settings.exit_when_stuck,
                        ));
                    }
                }
                self.respond_inline(head, out, Some(socket))
            } else {
                let awaits_continue = head.expects_continue();
                self.timer = self
                    .settings
                    .request_timeout
                    .map(|t| RequestTimer::offloaded(t, io.waker.clone()));
                let exchange = Exchange::start(
                    &self.pool,
                    self.service.clone(),
                    head,
                    self.info.clone(),
                    io.waker.clone(),
                );
                self.busy = Busy::Offloaded {
                    exchange,
                    awaits_continue,
                };
                continue;
            };
            if step != Step::Read {
                return step;
            }
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        Some(match (&self.busy, self.head_started) {
            (Busy::Offloaded { .. }, _) => self.last_progress + self.settings.body_timeout,
            (_, Some(started)) => started + self.settings.header_timeout,
            _ => self.last_progress + self.settings.keepalive_timeout,
        })
    }

    fn release_idle_memory(&mut self) {
        if matches!(self.busy, Busy::Idle) {
            self.conn.release_idle_buffer();
        }
    }

    fn is_waiting(&self) -> bool {
        matches!(self.busy, Busy::Idle)
            && self.stashed.is_none()
            && !self.conn.is_mid_head()
            && !self.conn.has_buffered_input()
    }

    fn is_idle(&self) -> bool {
        self.answered_any
            && matches!(self.busy, Busy::Idle)
            && self.stashed.is_none()
            && !self.conn.is_mid_head()
            && !self.conn.has_buffered_input()
    }
}
