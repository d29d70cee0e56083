//! Mounting services under URL prefixes: `--static /static=./public` in front of an app.

use std::sync::Arc;

use crate::{
    AppExchange, ConnInfo, LagSink, Request, RequestHead, Response, Service, Wake, WsExchange,
};

/// Sends each request to the first service whose prefix matches its path, else to the
/// fallback.
pub struct Router {
    mounts: Vec<(String, Arc<dyn Service>)>,
    fallback: Arc<dyn Service>,
}

impl Router {
    pub fn new(fallback: Arc<dyn Service>) -> Router {
        Router {
            mounts: Vec::new(),
            fallback,
        }
    }

    /// Mounts `service` at `prefix` (`/static`; a trailing slash is ignored; `/` or empty
    /// takes every path).
    pub fn mount(mut self, prefix: &str, service: Arc<dyn Service>) -> Router {
        self.mounts
            .push((prefix.trim_end_matches('/').to_string(), service));
        self
    }

    fn route(&self, path: &str) -> &Arc<dyn Service> {
        self.mounts
            .iter()
            .find(|(prefix, _)| {
                path.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .map_or(&self.fallback, |(_, service)| service)
    }
}

impl Router {
    /// Each service once, however many prefixes it is mounted at.
    fn distinct(&self) -> Vec<&Arc<dyn Service>> {
        let mut distinct: Vec<&Arc<dyn Service>> = Vec::new();
        let services = std::iter::once(&self.fallback).chain(self.mounts.iter().map(|(_, s)| s));
        for service in services {
            if !distinct.iter().any(|a| Arc::ptr_eq(a, service)) {
                distinct.push(service);
            }
        }
        distinct
    }
}

fn nest_turns(services: &[&Arc<dyn Service>], work: &mut dyn FnMut()) {
    match services.split_first() {
        None => work(),
        Some((first, rest)) => first.turn(&mut || nest_turns(rest, work)),
    }
}

impl Service for Router {
    fn call(&self, req: Request<'_>) -> Response {
        self.route(req.head.path()).call(req)
    }

    fn may_block(&self) -> bool {
        self.fallback.may_block() || self.mounts.iter().any(|(_, s)| s.may_block())
    }

    fn may_block_for(&self, head: &RequestHead) -> bool {
        self.route(head.path()).may_block_for(head)
    }

    /// The router cannot tell which service runs on `thread`, so every distinct one is
    /// asked; a service not running there ignores it (WSGI's async exception targets a
    /// thread id, and static files have nothing to cancel).
    fn cancel(&self, thread: u64, still_running: &dyn Fn() -> bool) {
        for service in self.distinct() {
            service.cancel(thread, still_running);
        }
    }

    /// The turn of every distinct service, one inside the other.
    fn turn(&self, work: &mut dyn FnMut()) {
        nest_turns(&self.distinct(), work);
    }

    fn start_exchange(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        wake: Wake,
    ) -> Option<Box<dyn AppExchange>> {
        self.route(head.path()).start_exchange(head, conn, wake)
    }

    fn hosts_websockets(&self, head: &RequestHead) -> bool {
        self.route(head.path()).hosts_websockets(head)
    }

    fn start_websocket(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        subprotocols: &[String],
        wake: Wake,
    ) -> Option<Box<dyn WsExchange>> {
        self.route(head.path())
            .start_websocket(head, conn, subprotocols, wake)
    }

    fn report_loop_lag(&self, sink: LagSink) {
        self.fallback.report_loop_lag(sink);
    }

    fn shutdown(&self) {
        self.fallback.shutdown();
    }

    fn before_fork(&self) {
        self.fallback.before_fork();
    }

    fn after_fork_parent(&self) {
        self.fallback.after_fork_parent();
    }

    fn after_fork_child(&self) {
        self.fallback.after_fork_child();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, ConnInfo};

    struct Named(&'static str);

    impl Service for Named {
        fn call(&self, _req: Request<'_>) -> Response {
            Response::text(200, self.0)
        }
    }

    fn answer(router: &Router, target: &str) -> Vec<u8> {
        let mut conn = ironhorse_h1::ServerConn::new(Default::default());
        conn.feed(format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        let head = conn.next_request().unwrap().unwrap();
        let response = router.call(Request {
            head: &head,
            body: &mut std::io::empty(),
            conn: &ConnInfo::unix(),
            sink: None,
            body_length: None,
        });
        match response.body {
            Body::Bytes(b) => b,
            _ => panic!("expected bytes"),
        }
    }

    /// Counts the cancellations it is asked for.
    #[derive(Default)]
    struct Cancellable(std::sync::Mutex<Vec<u64>>);

    impl Service for Cancellable {
        fn call(&self, _req: Request<'_>) -> Response {
            Response::text(200, "app")
        }
        fn cancel(&self, thread: u64, still_running: &dyn Fn() -> bool) {
            if still_running() {
                self.0.lock().unwrap().push(thread);
            }
        }
    }

    /// Counts the turns it runs.
    #[derive(Default)]
    struct Turning(std::sync::atomic::AtomicUsize);

    impl Service for Turning {
        fn call(&self, _req: Request<'_>) -> Response {
            Response::text(200, "app")
        }
        fn turn(&self, work: &mut dyn FnMut()) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            work()
        }
    }

    #[test]
    fn a_turn_runs_its_work_once_inside_every_mounted_services_turn() {
        let app = Arc::new(Turning::default());
        let files = Arc::new(Turning::default());
        let router = Router::new(app.clone())
            .mount("/static", files.clone())
            .mount("/again", app.clone());
        let mut runs = 0;
        router.turn(&mut || runs += 1);
        assert_eq!(runs, 1);
        let turns = |s: &Turning| s.0.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!((turns(&app), turns(&files)), (1, 1));
    }

    #[test]
    fn cancel_reaches_every_mounted_service_once() {
        let app = Arc::new(Cancellable::default());
        let files = Arc::new(Cancellable::default());
        let router = Router::new(app.clone())
            .mount("/static", files.clone())
            .mount("/again", app.clone());
        router.cancel(42, &|| true);
        router.cancel(43, &|| false);
        assert_eq!(*app.0.lock().unwrap(), [42]);
        assert_eq!(*files.0.lock().unwrap(), [42]);
    }

    #[test]
    fn prefixes_match_whole_segments_only() {
        let router =
            Router::new(Arc::new(Named("app"))).mount("/static/", Arc::new(Named("files")));
        assert_eq!(answer(&router, "/static/a.css"), b"files");
        assert_eq!(answer(&router, "/static"), b"files");
        assert_eq!(answer(&router, "/staticky"), b"app");
        assert_eq!(answer(&router, "/"), b"app");
    }
}
