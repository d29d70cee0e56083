//! The HTTP/1.1 protocol: its settings, what it shares between its sessions, and the pool
//! that runs blocking applications when the driver brings no executor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::{ConnInfo, Service};
use ironhorse_h1::{Limits, ServerConn};
use ironhorse_wire::forwarded::Policy;

use super::record::Recorder;
use super::upgrade::Upgrades;
use super::{Busy, HttpSession};
use crate::offload_pool::OffloadPool;
use crate::session::{Executor, Link, Protocol, Session};

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
    /// Threads running blocking applications for event-driven drivers (whose links bring
    /// no executor).
    pub offload_threads: usize,
    /// Longest an application request may run (`--request-timeout`).
    pub request_timeout: Option<Duration>,
    /// Whether a worker whose only thread is stuck in a timed-out request exits (serial
    /// workers under a master, fork children), to be replaced.
    pub exit_when_stuck: bool,
    /// Largest WebSocket message (and frame), after decompression (`--ws-max-message-size`;
    /// beyond: close 1009).
    pub ws_max_message_size: usize,
    /// Ping a silent WebSocket client after this long (`--ws-ping-interval`); `None`: never.
    pub ws_ping_interval: Option<Duration>,
    /// Close a WebSocket whose ping went unanswered this long (`--ws-ping-timeout`, 1011).
    pub ws_ping_timeout: Option<Duration>,
    /// How long a close frame of ours waits for the client's (`--ws-close-timeout`).
    pub ws_close_timeout: Duration,
    /// Request bodies up to this many bytes are read whole before a blocking application
    /// is called (`--buffer-request-body`, whose default the binary sets); 0: off (the
    /// default here: the body streams to the application as it arrives).
    pub buffer_body: u64,
    /// How much of a buffered body is kept in memory; the rest goes to an unlinked
    /// temporary file (`--buffer-request-body-memory`).
    pub buffer_body_memory: u64,
}

impl HttpSettings {
    /// The WebSocket engine's configuration.
    pub fn ws_config(&self) -> ironhorse_ws::Config {
        ironhorse_ws::Config {
            max_message_size: self.ws_max_message_size,
            max_frame_size: self.ws_max_message_size,
            ping_interval: self.ws_ping_interval,
            ping_timeout: self.ws_ping_timeout,
            ..ironhorse_ws::Config::default()
        }
    }
}

impl HttpSettings {
    /// Settings for tests and tools: a server takes every value from its own settings
    /// table (`ironhorse/src/settings.rs`), where each default is written once.
    pub fn for_tests() -> Self {
        HttpSettings {
            limits: Limits::default(),
            keepalive_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            offload_threads: 16,
            request_timeout: None,
            exit_when_stuck: false,
            ws_max_message_size: 16 << 20,
            ws_ping_interval: Some(Duration::from_secs(20)),
            ws_ping_timeout: Some(Duration::from_secs(20)),
            ws_close_timeout: Duration::from_secs(10),
            buffer_body: 0,
            buffer_body_memory: 64 * 1024,
        }
    }
}

/// The HTTP/1.1 protocol serving one application.
pub struct Http {
    service: Arc<dyn Service>,
    settings: HttpSettings,
    pool: Arc<OffloadPool>,
    access_log: Option<ironhorse_log::AccessLog>,
    upgrades: Arc<Upgrades>,
    forwarded: Option<Arc<Policy>>,
    /// One response per connection, never chunked (see `close_delimited`).
    close_delimited: bool,
    /// The application was given this process's loop-lag recorder (by the first session).
    lag_reported: std::sync::Once,
}

impl Http {
    pub fn new(service: Arc<dyn Service>, settings: HttpSettings) -> Http {
        let pool = Arc::new(OffloadPool::new(settings.offload_threads));
        Http {
            service,
            settings,
            pool,
            access_log: None,
            upgrades: Arc::default(),
            forwarded: None,
            close_delimited: false,
            lag_reported: std::sync::Once::new(),
        }
    }

    /// Answers one request per connection and ends each response with the connection, never
    /// chunked: for sessions behind a protocol whose peer reads a response until the
    /// connection ends (uwsgi: nginx's `uwsgi_pass` decodes no chunks).
    pub fn close_delimited(mut self) -> Http {
        self.close_delimited = true;
        self
    }

    /// Lets requests switch the connection to `protocol` with `Upgrade: TOKEN` (answered
    /// `101 Switching Protocols`; the bytes after the request head are the protocol's).
    pub fn with_upgrade(mut self, token: &str, protocol: Arc<dyn Protocol>) -> Http {
        Arc::make_mut(&mut self.upgrades).add(token, protocol);
        self
    }

    /// Hands connections that open with the HTTP/2 preface ([`H2_PREFACE`](super::H2_PREFACE)) to `protocol`.
    pub fn with_prior_knowledge(mut self, protocol: Arc<dyn Protocol>) -> Http {
        Arc::make_mut(&mut self.upgrades).set_prior_knowledge(protocol);
        self
    }

    /// Resolves the forwarding headers `policy` trusts once per request: the access log's
    /// client, and `ConnInfo::forwarded` for the application.
    pub fn with_forwarded(mut self, policy: Policy) -> Http {
        self.forwarded = Some(Arc::new(policy));
        self
    }

    /// Logs every answered request to `log`.
    pub fn with_access_log(mut self, log: ironhorse_log::AccessLog) -> Http {
        self.access_log = Some(log);
        self
    }
}

impl Protocol for Http {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
        let executor = match (&link.executor, &link.batch) {
            (Some(executor), _) => executor.clone(),
            (None, Some(batch)) => self.pool.batched(batch.clone()),
            (None, None) => self.pool.clone() as Arc<dyn Executor>,
        };
        let mut conn_state = ServerConn::new(self.settings.limits);
        conn_state.set_close_delimited(self.close_delimited);
        if let Some(meter) = link.hooks.meter() {
            // The meter is the serving process's, known once it serves: hand it to an
            // application with an event loop of its own on the first connection.
            self.lag_reported.call_once(|| {
                let meter = meter.clone();
                let sink = Arc::new(move |lag, next_in| meter.loop_probe(lag, next_in));
                self.service.report_loop_lag(sink);
            });
        }
        let recorder = Recorder::new(self.access_log.clone(), link.hooks.meter().cloned());
        Box::new(HttpSession {
            conn: conn_state,
            service: self.service.clone(),
            executor,
            waker: link.waker.clone(),
            link,
            upgrades: self.upgrades.clone(),
            fresh: true,
            next: None,
            info: conn,
            settings: self.settings,
            busy: Busy::Idle,
            on_loop: None,
            head_started: None,
            last_progress: Instant::now(),
            answered_any: false,
            recorder,
            forwarded: self.forwarded.clone(),
            timer: None,
            body_deadline: Default::default(),
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

    fn shutdown(&self) {
        self.service.shutdown();
    }

    fn turn(&self, work: &mut dyn FnMut()) {
        self.service.turn(work);
    }
}
