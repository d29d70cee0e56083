//! `--health-path`: a probe answered by the server itself, in front of the application
//! (which never sees the request, so a busy or stuck application cannot fail a liveness
//! probe by itself, and the answer costs no Python).
//!
//! What it can truthfully report: `200` while the process serves; `503` once it was asked to
//! stop (TERM, INT, QUIT), while it finishes the requests in flight. A stopping worker stops
//! accepting at once and closes idle keep-alive connections, so the `503` reaches probes
//! that arrive on connections still open (a proxy's keep-alive upstream); a new connection
//! is not accepted any more (it waits in the backlog, or is refused once the socket closes).
//! Readiness while the application loads needs no answer here: no worker accepts before its
//! application loaded.

use std::sync::Arc;

use ironhorse_app::{
    AppExchange, ConnInfo, LagSink, Request, RequestHead, Response, Service, Wake, WsExchange,
};

/// Whether the process still serves (false once it was asked to stop).
pub type Serving = Arc<dyn Fn() -> bool + Send + Sync>;

/// `inner`, with `path` answered by the server.
pub struct Health {
    path: String,
    inner: Arc<dyn Service>,
    serving: Serving,
}

impl Health {
    pub fn new(path: String, inner: Arc<dyn Service>, serving: Serving) -> Health {
        Health {
            path,
            inner,
            serving,
        }
    }

    fn is_probe(&self, head: &RequestHead) -> bool {
        head.path() == self.path
    }
}

impl Service for Health {
    fn call(&self, req: Request<'_>) -> Response {
        if !self.is_probe(req.head) {
            return self.inner.call(req);
        }
        let response = match req.head.method() {
            "GET" | "HEAD" if (self.serving)() => Response::text(200, "ok\n"),
            "GET" | "HEAD" => Response::text(503, "draining\n"),
            _ => Response::text(405, "method not allowed\n").with_header("Allow", "GET, HEAD"),
        };
        response.with_header("Cache-Control", "no-store")
    }

    fn may_block(&self) -> bool {
        self.inner.may_block()
    }

    fn may_block_for(&self, head: &RequestHead) -> bool {
        !self.is_probe(head) && self.inner.may_block_for(head)
    }

    fn cancel(&self, thread: u64, still_running: &dyn Fn() -> bool) {
        self.inner.cancel(thread, still_running);
    }

    fn turn(&self, work: &mut dyn FnMut()) {
        self.inner.turn(work);
    }

    fn start_exchange(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        wake: Wake,
    ) -> Option<Box<dyn AppExchange>> {
        if self.is_probe(head) {
            return None;
        }
        self.inner.start_exchange(head, conn, wake)
    }

    fn hosts_websockets(&self, head: &RequestHead) -> bool {
        !self.is_probe(head) && self.inner.hosts_websockets(head)
    }

    fn start_websocket(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        subprotocols: &[String],
        wake: Wake,
    ) -> Option<Box<dyn WsExchange>> {
        self.inner.start_websocket(head, conn, subprotocols, wake)
    }

    fn report_loop_lag(&self, sink: LagSink) {
        self.inner.report_loop_lag(sink);
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn before_fork(&self) {
        self.inner.before_fork();
    }

    fn after_fork_parent(&self) {
        self.inner.after_fork_parent();
    }

    fn after_fork_child(&self) {
        self.inner.after_fork_child();
    }
}
