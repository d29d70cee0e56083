//! The access-log record of the request in progress. Costs nothing when no access log is
//! configured; when one is, the request head is kept until the response ends.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use ironhorse_app::{HeaderList, RequestHead};
use ironhorse_log::{AccessEntry, AccessLog};

struct Record {
    head: RequestHead,
    started: SystemTime,
    began: Instant,
    status: u16,
    headers: HeaderList,
    bytes: u64,
}

/// Collects what the access log needs as a response goes out, and logs it at the end
/// (or when the connection is dropped mid-response).
pub(super) struct Recorder {
    log: Option<AccessLog>,
    current: Option<Record>,
    remote: Option<SocketAddr>,
}

impl Recorder {
    pub fn new(log: Option<AccessLog>, remote: Option<SocketAddr>) -> Recorder {
        Recorder {
            log,
            current: None,
            remote,
        }
    }

    pub fn begin(&mut self, head: &RequestHead) {
        if self.log.is_some() {
            self.current = Some(Record {
                head: head.clone(),
                started: SystemTime::now(),
                began: Instant::now(),
                status: 0,
                headers: Vec::new(),
                bytes: 0,
            });
        }
    }

    pub fn head(&mut self, status: u16, headers: &HeaderList) {
        if let Some(record) = &mut self.current {
            record.status = status;
            record.headers = headers.clone();
        }
    }

    pub fn body(&mut self, n: u64) {
        if let Some(record) = &mut self.current {
            if !record.head.is_head() {
                record.bytes += n;
            }
        }
    }

    pub fn end(&mut self) {
        let (Some(log), Some(record)) = (&self.log, self.current.take()) else {
            return;
        };
        let head = &record.head;
        let lookup = |name: &str| head.header(name);
        log.log(&AccessEntry {
            remote: self.remote,
            method: head.method(),
            target: head.target(),
            path: head.path(),
            query: head.query(),
            version: head.version().as_str(),
            status: record.status,
            bytes: record.bytes,
            request_headers: &lookup,
            response_headers: &record.headers,
            started: record.started,
            duration: record.began.elapsed(),
        });
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.end();
    }
}
