//! HTTP/2 (RFC 9113) for ironhorse: a [`Protocol`] whose sessions run the `h2` crate's
//! server connection sans IO (bytes in, [`Output`](ironhorse_protocol::output::Output) out)
//! and answer each stream with the same application service HTTP/1.1 uses.
//!
//! HTTP/2 multiplexes streams on one connection, so a session must be able to read the
//! socket while applications run: its jobs always run on the protocol's offload pool, and
//! only drivers that wake a session while it waits for input (`event`, `async`) host it.
//! Reaching it: prior knowledge (`Http::with_prior_knowledge`), TLS ALPN `h2`, or
//! `Upgrade: h2c` (`Http::with_upgrade("h2c", ..)`: the upgrading request becomes stream 1,
//! see [`upgrade`]).
#![forbid(unsafe_code)]

mod flood;
mod gather;
mod head;
mod pipe;
mod send;
mod session;
mod stream;
mod upgrade;
mod work;

use std::sync::Arc;
use std::time::Duration;

use ironhorse_app::{ConnInfo, Service};
use ironhorse_h1::Limits;
use ironhorse_protocol::offload_pool::OffloadPool;
use ironhorse_protocol::session::{HandOff, Link, Protocol, Session};
use ironhorse_wire::forwarded::Policy;

/// HTTP/2 settings (gunicorn 27's `--http2-*`), and the limits against floods.
#[derive(Debug, Clone, Copy)]
pub struct H2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE (per stream; the connection's window is 4 times it).
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: larger header blocks (HPACK bombs) are refused.
    pub max_header_list_size: u32,
    /// Request head limits shared with HTTP/1.1 (fields are validated by h1).
    pub limits: Limits,
    /// An idle connection (no stream) gets GOAWAY after this long.
    pub keepalive_timeout: Duration,
    /// Longest wait for the client's preface and SETTINGS.
    pub handshake_timeout: Duration,
    /// How long in-flight streams may finish after GOAWAY on a graceful stop.
    pub graceful_timeout: Duration,
    /// Threads running blocking applications.
    pub offload_threads: usize,
    /// `--request-timeout`: a stream's application past it is cancelled (504, or
    /// RST_STREAM once its response began).
    pub request_timeout: Option<Duration>,
    /// `--body-timeout`: a stream whose application waits this long for body bytes that
    /// do not come is reset (see `stream.rs`).
    pub body_timeout: Duration,
    /// `--buffer-request-body`: a blocking application's body sent without a
    /// `content-length` is read ahead up to this size, so that it gets its length (see
    /// `gather.rs`); 0: off.
    pub buffer_body: u64,
    /// `--buffer-request-body-memory`: how much of such a body is kept in memory, the rest
    /// in an unlinked temporary file.
    pub buffer_body_memory: u64,
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            max_concurrent_streams: 100,
            initial_window_size: 65_535,
            max_frame_size: 16_384,
            max_header_list_size: 65_536,
            limits: Limits::default(),
            keepalive_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            graceful_timeout: Duration::from_secs(30),
            offload_threads: 16,
            request_timeout: None,
            body_timeout: Duration::from_secs(30),
            buffer_body: 1 << 20,
            buffer_body_memory: 64 << 10,
        }
    }
}

/// What every session of the protocol shares.
pub(crate) struct Shared {
    service: Arc<dyn Service>,
    settings: H2Settings,
    pool: Arc<OffloadPool>,
    access_log: Option<ironhorse_log::AccessLog>,
    /// Whose forwarding headers are believed (`--forwarded-allow-ips`), resolved per stream
    /// for the access log and the application, as HTTP/1.1 does per request.
    forwarded: Option<Policy>,
}

impl Shared {
    /// The `h2` server configuration: the settings, plus the flood limits.
    fn builder(&self) -> h2::server::Builder {
        let s = &self.settings;
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(s.max_concurrent_streams)
            .initial_window_size(s.initial_window_size)
            .initial_connection_window_size(s.initial_window_size.saturating_mul(4))
            .max_frame_size(s.max_frame_size)
            .max_header_list_size(s.max_header_list_size)
            // Rapid reset (CVE-2023-44487): streams reset before they were answered.
            .max_pending_accept_reset_streams(20)
            .max_concurrent_reset_streams(50)
            .max_local_error_reset_streams(Some(256))
            .max_send_buffer_size(256 * 1024);
        builder
    }
}

/// The HTTP/2 protocol serving one application.
pub struct Http2 {
    shared: Arc<Shared>,
}

impl Http2 {
    pub fn new(service: Arc<dyn Service>, settings: H2Settings) -> Http2 {
        Http2 {
            shared: Arc::new(Shared {
                service,
                settings,
                pool: Arc::new(OffloadPool::new(settings.offload_threads)),
                access_log: None,
                forwarded: None,
            }),
        }
    }

    /// Logs every answered stream to `log` (`HTTP/2.0` as the protocol).
    pub fn with_access_log(mut self, log: ironhorse_log::AccessLog) -> Http2 {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.access_log = Some(log);
        }
        self
    }

    /// Believes forwarding headers from `policy`'s peers (the access log's `%(h)s`, the
    /// application's `ConnInfo::forwarded`).
    pub fn with_forwarded(mut self, policy: Policy) -> Http2 {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.forwarded = Some(policy);
        }
        self
    }
}

impl Protocol for Http2 {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
        Box::new(session::H2Session::new(
            self.shared.clone(),
            conn,
            link,
            None,
        ))
    }

    /// After HTTP/1.1: prior knowledge, or `Upgrade: h2c` (its request becomes stream 1).
    fn session_after(&self, conn: ConnInfo, link: Link, hand_off: HandOff) -> Box<dyn Session> {
        Box::new(session::H2Session::new(
            self.shared.clone(),
            conn,
            link,
            Some(hand_off),
        ))
    }

    fn before_fork(&self) {
        self.shared.service.before_fork();
    }

    fn after_fork_parent(&self) {
        self.shared.service.after_fork_parent();
    }

    fn after_fork_child(&self) {
        self.shared.service.after_fork_child();
    }

    fn turn(&self, work: &mut dyn FnMut()) {
        self.shared.service.turn(work);
    }
}
