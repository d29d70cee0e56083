//! The access-log record of the request in progress. Costs nothing when no access log is
//! configured; when one is, the request head is kept until the response ends.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use ironhorse_app::{ConnInfo, HeaderList, RequestHead};
use ironhorse_log::{AccessEntry, AccessLog};

struct Record {
    head: RequestHead,
    /// The client: the one trusted forwarding headers named, or the peer.
    remote: Option<SocketAddr>,
    started: SystemTime,
    began: Instant,
    status: u16,
    headers: HeaderList,
    bytes: u64,
}

/// Collects what the access log needs as a response goes out, and logs it at the end
/// (or when the connection is dropped mid-response).
pub struct Recorder {
    log: Option<AccessLog>,
    current: Option<Record>,
}

impl Recorder {
    pub fn new(log: Option<AccessLog>) -> Recorder {
        Recorder { log, current: None }
    }

    pub fn begin(&mut self, head: &RequestHead, conn: &ConnInfo) {
        if self.log.is_some() {
            let forwarded = conn.forwarded.as_ref().and_then(|f| f.client);
            let remote = forwarded.map(|(ip, port)| SocketAddr::new(ip, port.unwrap_or(0)));
            self.current = Some(Record {
                head: head.clone(),
                remote: remote.or(conn.peer),
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
            remote: record.remote,
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
