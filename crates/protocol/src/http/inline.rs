//! Responses from a service called inside `advance` (static files): the head and a body
//! written at once, a file inline or as a sendfile region, or a stream pulled chunk by chunk.

use std::io;
use std::os::unix::fs::FileExt;

use ironhorse_app::{Body, ChunkStream, FileRegion, Request, RequestHead, Response};

use super::body::BufferedBody;
use super::{Busy, HttpSession, HIGH_WATER};
use crate::output::Output;
use crate::session::Step;

/// File bodies up to this size are copied into the response buffer (one `write` with the
/// head beats a `write` plus a `sendfile`); larger ones go out with `sendfile`.
const INLINE_FILE_MAX: u64 = 16 * 1024;

/// What [`HttpSession::queue_response`] left to do.
pub(super) enum Queued {
    /// Head and body are queued.
    Whole,
    /// A file could not be read: the connection was aborted.
    Aborted,
    /// The head is queued; the body streams.
    Stream {
        chunks: ChunkStream,
        length: Option<u64>,
    },
}

impl HttpSession {
    /// Queues a file body: small files inline, large ones as a sendfile region.
    pub(super) fn queue_file(&mut self, region: FileRegion, out: &mut Output) -> io::Result<()> {
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

    /// Calls a non-blocking service inside `advance` and queues its response.
    pub(super) fn respond_inline(&mut self, head: RequestHead, out: &mut Output) -> Step {
        let response = self.service.call(Request {
            head: &head,
            body: &mut BufferedBody(&mut self.conn),
            conn: &self.info,
            sink: None,
            body_length: None,
        });
        self.conn.recycle(head);
        match self.queue_response(response, out) {
            Queued::Whole => self.finish(out),
            Queued::Aborted => Step::Close,
            Queued::Stream { chunks, .. } => {
                self.busy = Busy::Streaming(chunks);
                Step::Flush
            }
        }
    }

    /// Queues a response's head and, unless it streams, its whole body; a stream is handed
    /// back for the caller to pace.
    pub(super) fn queue_response(&mut self, response: Response, out: &mut Output) -> Queued {
        let len = response.body.len_hint();
        self.send_head(response.status, &response.headers, len, out);
        match response.body {
            Body::Empty => {}
            Body::Bytes(bytes) => self.send_body(&bytes, out),
            Body::File(region) => {
                if self.queue_file(region, out).is_err() {
                    self.conn.abort();
                    return Queued::Aborted;
                }
            }
            Body::Stream { chunks, length } => return Queued::Stream { chunks, length },
        }
        Queued::Whole
    }

    /// Pulls a streaming body forward. `None`: the response is done and the connection
    /// stays open.
    pub(super) fn pump_stream(&mut self, out: &mut Output) -> Option<Step> {
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
}
