//! The record of the request in progress, for the access log and the metrics: both are
//! written here, where the request ends, so every driver and model counts the same way.
//! Costs nothing when neither is configured; with an access log the request head is kept
//! until the response ends; metrics keep three numbers (see `ironhorse_metrics::Meter`).

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use ironhorse_app::{ConnInfo, HeaderList, RequestHead};
use ironhorse_log::{AccessEntry, AccessLog};
use ironhorse_metrics::{layout, Meter};

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

/// The request in progress as the metrics see it.
struct Measured {
    began: Instant,
    method: usize,
    status: u16,
    bytes: u64,
}

/// Collects what the access log and the metrics need as a response goes out, and records
/// it at the end (or when the connection is dropped mid-response). One per connection: it
/// also counts the connection open until it is dropped.
pub struct Recorder {
    log: Option<AccessLog>,
    current: Option<Record>,
    meter: Option<Meter>,
    measured: Option<Measured>,
    /// Whether this recorder counts a connection (open while it lives): an HTTP/2 stream's
    /// does not, its connection counts once.
    connection: bool,
}

impl Recorder {
    pub fn new(log: Option<AccessLog>, meter: Option<Meter>) -> Recorder {
        if let Some(meter) = &meter {
            meter.connection_opened();
        }
        Recorder {
            log,
            current: None,
            meter,
            measured: None,
            connection: true,
        }
    }

    /// The recorder of one stream of a multiplexed connection (HTTP/2): its requests are
    /// recorded, the connection is counted by the connection's own recorder.
    pub fn for_stream(log: Option<AccessLog>, meter: Option<Meter>) -> Recorder {
        Recorder {
            log,
            current: None,
            meter,
            measured: None,
            connection: false,
        }
    }

    pub fn begin(&mut self, head: &RequestHead, conn: &ConnInfo) {
        if let Some(meter) = &self.meter {
            self.measured = Some(Measured {
                began: meter.request_started(),
                method: layout::method_class(head.method()),
                status: 0,
                bytes: 0,
            });
        }
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
        if let Some(measured) = &mut self.measured {
            measured.status = status;
        }
        if let Some(record) = &mut self.current {
            record.status = status;
            record.headers = headers.clone();
        }
    }

    pub fn body(&mut self, n: u64) {
        if let Some(measured) = &mut self.measured {
            measured.bytes += n;
        }
        if let Some(record) = &mut self.current {
            if !record.head.is_head() {
                record.bytes += n;
            }
        }
    }

    /// A request the parser refused (answered `status` by h1): counted, not logged (no head
    /// was read to log).
    pub fn refused(&mut self, status: u16) {
        if let Some(meter) = &self.meter {
            meter.request_counted(layout::METHODS.len() - 1, status, 0);
        }
    }

    /// A ticket following an application job through its queue and its run.
    pub fn job_ticket(&self) -> Option<ironhorse_metrics::JobTicket> {
        self.meter.as_ref().map(Meter::job_queued)
    }

    pub fn end(&mut self) {
        if let (Some(meter), Some(m)) = (&self.meter, self.measured.take()) {
            meter.request_done(m.began, m.method, m.status, m.bytes);
        }
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
        if let Some(meter) = self.meter.as_ref().filter(|_| self.connection) {
            meter.connection_closed();
        }
    }
}
