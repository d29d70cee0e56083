//! HTTP/1.1 over the sans-IO engine, for services that never block (static files).
//!
//! The session parses requests from the buffered input, calls the service inline, and
//! queues the responses, pipelined requests included, so a burst leaves in one write.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::{Body, ChunkStream, ConnInfo, FileRegion, Request, Service};
use ironhorse_h1::{BodyRead, Limits, Next, ServerConn};

use crate::output::Output;
use crate::session::{Protocol, Session, Step};

/// File bodies up to this size are copied into the response buffer (one `write` with the
/// head beats a `write` plus a `sendfile`); larger ones go out with `sendfile`.
const INLINE_FILE_MAX: u64 = 16 * 1024;
/// A streaming body pauses once this much output is queued (backpressure).
const STREAM_HIGH_WATER: u64 = 256 * 1024;

/// Per-connection HTTP settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub limits: Limits,
    /// How long an idle keep-alive connection is kept.
    pub keepalive_timeout: Duration,
    /// How long a client may take to send a whole request head (slowloris defence).
    pub header_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            limits: Limits::default(),
            keepalive_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// The HTTP/1.1 protocol serving one application.
pub struct Http {
    pub service: Arc<dyn Service>,
    pub settings: HttpSettings,
}

impl Protocol for Http {
    fn session(&self, conn: ConnInfo) -> Box<dyn Session> {
        Box::new(HttpSession {
            conn: ServerConn::new(self.settings.limits),
            service: self.service.clone(),
            info: conn,
            settings: self.settings,
            streaming: None,
            head_started: None,
            idle_since: Instant::now(),
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

struct HttpSession {
    conn: ServerConn,
    service: Arc<dyn Service>,
    info: ConnInfo,
    settings: HttpSettings,
    /// A response body still being produced.
    streaming: Option<ChunkStream>,
    /// When the head being read began to arrive.
    head_started: Option<Instant>,
    /// When the connection last became idle between requests.
    idle_since: Instant,
}

/// A request body reader for non-blocking services: what is buffered, never waiting.
/// Services that read bodies declare `may_block` and are run on threads instead.
struct BufferedBody<'a>(&'a mut ServerConn);

impl io::Read for BufferedBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read_body(buf) {
            Ok(BodyRead::Data(n)) => Ok(n),
            Ok(BodyRead::End) => Ok(0),
            Ok(BodyRead::NeedMore) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

impl HttpSession {
    /// Pulls one chunk of a streaming body. Returns `false` when the stream ended.
    fn pump_stream(&mut self, out: &mut Output) -> Result<bool, ()> {
        let Some(stream) = self.streaming.as_mut() else {
            return Ok(false);
        };
        match stream.next() {
            Some(Ok(chunk)) => {
                self.conn.write_body(&chunk, out.bytes());
                Ok(true)
            }
            Some(Err(_)) => Err(()),
            None => {
                self.streaming = None;
                Ok(false)
            }
        }
    }

    /// Queues a file body: small files inline, large ones as a sendfile region.
    fn queue_file(&mut self, region: FileRegion, out: &mut Output) -> io::Result<()> {
        let len = self.conn.body_sent_externally(region.len);
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

    /// Answers one request; returns whether the connection stays open.
    fn respond(&mut self, out: &mut Output, head: ironhorse_h1::RequestHead) -> Step {
        let response = self.service.call(Request {
            head: &head,
            body: &mut BufferedBody(&mut self.conn),
            conn: &self.info,
        });
        let len = response.body.len_hint();
        self.conn
            .write_head(response.status, &response.headers, len, out.bytes());
        match response.body {
            Body::Empty => {}
            Body::Bytes(bytes) => self.conn.write_body(&bytes, out.bytes()),
            Body::File(region) => {
                if self.queue_file(region, out).is_err() {
                    self.conn.abort();
                    return Step::Close;
                }
            }
            Body::Stream { chunks, .. } => {
                self.streaming = Some(chunks);
                return Step::Flush;
            }
        }
        self.finish(out)
    }

    fn finish(&mut self, out: &mut Output) -> Step {
        match self.conn.finish(out.bytes()) {
            Next::KeepAlive => {
                self.idle_since = Instant::now();
                Step::Read
            }
            Next::Close => Step::Close,
        }
    }
}

impl Session for HttpSession {
    fn read_buf(&mut self) -> &mut [u8] {
        self.conn.read_buf()
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            self.conn.feed_eof();
        } else {
            self.conn.filled(n);
        }
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        loop {
            if self.streaming.is_some() {
                if out.queued() > STREAM_HIGH_WATER {
                    return Step::Flush;
                }
                match self.pump_stream(out) {
                    Ok(true) => continue,
                    Ok(false) => match self.finish(out) {
                        Step::Read => continue,
                        other => return other,
                    },
                    Err(()) => {
                        self.conn.abort();
                        return Step::Close;
                    }
                }
            }
            match self.conn.next_request() {
                Ok(Some(head)) => {
                    self.head_started = None;
                    match self.respond(out, head) {
                        Step::Read => {
                            if out.queued() > STREAM_HIGH_WATER {
                                return Step::Flush;
                            }
                        }
                        other => return other,
                    }
                }
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
            }
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        Some(match self.head_started {
            Some(started) => started + self.settings.header_timeout,
            None => self.idle_since + self.settings.keepalive_timeout,
        })
    }

    fn is_idle(&self) -> bool {
        self.streaming.is_none() && !self.conn.is_mid_head() && !self.conn.has_buffered_input()
    }
}
