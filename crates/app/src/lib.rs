//! The application seam.
//!
//! An application (static files, a WSGI app) sees one request at a time and answers with a
//! [`Response`]. It never touches the socket: the server's drivers own I/O, framing and
//! keep-alive, so the same application runs unchanged under every concurrency model.
//!
//! Applications that may block (Python) say so with [`Service::may_block`]; event-loop drivers
//! then run them off the loop. Non-blocking applications (static files) run inline.
#![forbid(unsafe_code)]

use std::any::Any;
use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

mod nonblocking;
mod router;

pub use ironhorse_h1::{HeaderList, RequestHead, Version};
pub use nonblocking::{AppEvent, AppExchange, LagSink, Wake, WsAppEvent, WsExchange, WsMessage};
pub use router::Router;

/// Where a connection came from and arrived at.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer; `None` for Unix-domain sockets.
    pub peer: Option<SocketAddr>,
    /// The local address; `None` for Unix-domain sockets.
    pub local: Option<SocketAddr>,
    /// `http`, or `https` for a connection whose TLS ironhorse terminates itself.
    pub scheme: &'static str,
    /// What the request's trusted forwarding headers say (client, scheme, host), when the
    /// server resolved them: the HTTP session does, once per request, for the access log
    /// and the application alike. `None`: not resolved (headers that contradict each
    /// other, or no forwarding policy), so an application resolves them itself if it cares.
    pub forwarded: Option<ironhorse_wire::forwarded::Resolved>,
    /// The TLS facts of a connection whose TLS ironhorse terminates (`--certfile`).
    pub tls: Option<Arc<TlsInfo>>,
    /// The server's name and port as the front proxy named them (uwsgi's `SERVER_NAME` and
    /// `SERVER_PORT`, nginx's `$server_name` and `$server_port`): the application's server
    /// is that one, not the socket the proxy reached.
    pub server_name: Option<Arc<ServerName>>,
    /// What the application keeps for this connection between its requests.
    pub cache: ConnCache,
}

/// A server name and port given by a front proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    pub name: String,
    pub port: u16,
}

/// Values an application computes once per connection and keeps with it between requests
/// (WSGI: the environ entries every request on the connection shares), made on first use.
/// Clones share it (an offloaded request's copy of the `ConnInfo` fills the connection's
/// cache); whoever reads it checks that it was made for the connection it sees (a clone
/// whose addresses were then changed, as the PROXY header does, must not trust it).
/// Sessions drop it while their connection idles ([`ConnCache::clear`]).
#[derive(Clone, Default)]
pub struct ConnCache(Arc<OnceLock<Box<dyn Any + Send + Sync>>>);

impl ConnCache {
    /// The cached value if one of type `T` was made, else the one `make` makes (kept unless
    /// another thread's won the race, or a value of another type is there: then `make`'s is
    /// handed back unkept). `Err`: what `make` failed with.
    pub fn get_or_try_init<T: Any + Send + Sync, E>(
        &self,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Cached<'_, T>, E> {
        if let Some(value) = self.0.get().and_then(|b| b.downcast_ref::<T>()) {
            return Ok(Cached::Kept(value));
        }
        let value = make()?;
        if self.0.get().is_some() {
            return Ok(Cached::Unkept(value));
        }
        let _ = self.0.set(Box::new(value));
        match self.0.get().and_then(|b| b.downcast_ref::<T>()) {
            Some(value) => Ok(Cached::Kept(value)),
            None => unreachable!("a value of the type just set is there"),
        }
    }

    /// Drops what is cached (this connection's copy; clones keep theirs).
    pub fn clear(&mut self) {
        if self.0.get().is_some() {
            *self = ConnCache::default();
        }
    }
}

impl std::fmt::Debug for ConnCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0.get() {
            Some(_) => "ConnCache(filled)",
            None => "ConnCache(empty)",
        })
    }
}

/// A value from [`ConnCache::get_or_try_init`].
pub enum Cached<'a, T> {
    /// The connection's cached value.
    Kept(&'a T),
    /// Made for this call only.
    Unkept(T),
}

impl<T> std::ops::Deref for Cached<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Cached::Kept(value) => value,
            Cached::Unkept(value) => value,
        }
    }
}

/// What a TLS handshake settled, for applications (mod_ssl's `SSL_*` environ keys).
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The IANA name of the cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: String,
    /// The host name the client asked for (SNI), if it sent one.
    pub server_name: Option<String>,
    /// The client's certificate, verified against `--ca-certs`, if it sent one.
    pub client_cert: Option<ClientCert>,
    /// The protocol version's and the cipher suite's IANA numbers (`0x0304` for TLS 1.3),
    /// as the ASGI `tls` extension gives them.
    pub version_id: Option<u16>,
    pub cipher_id: Option<u16>,
}

/// A verified client certificate.
#[derive(Debug, Clone, Default)]
pub struct ClientCert {
    /// The subject's distinguished name, its attributes in the certificate's order
    /// (`CN=alice, O=Example`).
    pub subject: String,
    /// The issuer's distinguished name, written the same way.
    pub issuer: String,
    /// The serial number in hexadecimal.
    pub serial: String,
    /// The certificate in PEM.
    pub pem: String,
}

impl ConnInfo {
    /// Info for a Unix-domain socket connection.
    pub fn unix() -> Self {
        ConnInfo {
            peer: None,
            local: None,
            scheme: "http",
            forwarded: None,
            tls: None,
            server_name: None,
            cache: ConnCache::default(),
        }
    }
}

/// The request body, streamed. `read` returns `Ok(0)` at the end of the body and never blocks
/// past it. Reading the first byte sends `100 Continue` when the client asked for it.
pub trait BodyReader: io::Read + Send {}
impl<T: io::Read + Send> BodyReader for T {}

/// Where an application sends its response while it still runs (WSGI's `write()`): the
/// head once, then body bytes. Each call returns once the server sent the piece or queued it
/// in bounded room for sending (it blocks while that room is full), so a slow client slows
/// the application instead of growing memory. `Err`: the client is gone.
///
/// Once [`send_head`](Self::send_head) succeeded, the [`Response`] the application returns
/// only continues the body: its status and headers are ignored, and a [`Body::Stream`]
/// item that is an `Err` aborts the response (the connection closes).
pub trait ResponseSink: Send {
    /// Sends the head; `length` is the declared `Content-Length` (none: chunked).
    fn send_head(
        &mut self,
        status: u16,
        headers: HeaderList,
        length: Option<u64>,
    ) -> io::Result<()>;
    /// Sends body bytes after the head.
    fn send_body(&mut self, bytes: Vec<u8>) -> io::Result<()>;
}

/// One request as an application sees it.
pub struct Request<'a> {
    pub head: &'a RequestHead,
    pub body: &'a mut dyn BodyReader,
    pub conn: &'a ConnInfo,
    /// Where the response may start before `call` returns; `None` where the server does not
    /// offer it (applications then answer through the returned [`Response`] only).
    pub sink: Option<&'a mut dyn ResponseSink>,
    /// The body's exact length when the server read it whole before the call (a chunked
    /// body arrives de-chunked); `None`: what the head declares.
    pub body_length: Option<u64>,
}

/// A region of an open file, sent with `sendfile(2)` by the driver.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

/// A lazily produced body: each item is one chunk, flushed to the client as it comes.
/// Dropping the stream is the application's cue to release resources (WSGI `close()`).
pub type ChunkStream = Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send>;

/// The response body. The engine derives `Content-Length` or chunking from it.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    File(FileRegion),
    /// `length` is the declared `Content-Length`, if the application gave one.
    Stream {
        chunks: ChunkStream,
        length: Option<u64>,
    },
}

impl Body {
    /// The exact length, when known before sending.
    pub fn len_hint(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File(r) => Some(r.len),
            Body::Stream { length, .. } => *length,
        }
    }
}

/// A response. `headers` must not contain framing or connection headers (`Content-Length`,
/// `Transfer-Encoding`, `Connection`, `Date`, `Server`): the engine owns those.
pub struct Response {
    pub status: u16,
    pub headers: HeaderList,
    pub body: Body,
}

impl Response {
    /// A short plain-text response, e.g. for errors.
    pub fn text(status: u16, text: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![(
                Cow::Borrowed("Content-Type"),
                b"text/plain; charset=utf-8".to_vec(),
            )],
            body: Body::Bytes(text.into()),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((Cow::Borrowed(name), value.into()));
        self
    }
}

/// An application.
pub trait Service: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: Request<'_>) -> Response;

    /// Whether `call` (or iterating a returned stream) may block for long; event-loop drivers
    /// run such services on worker threads instead of the loop.
    fn may_block(&self) -> bool {
        false
    }

    /// Whether answering this particular request may block; a router mixing static files
    /// and an application answers per request. Defaults to [`may_block`](Self::may_block).
    fn may_block_for(&self, head: &RequestHead) -> bool {
        let _ = head;
        self.may_block()
    }

    /// Asks the application to abandon the request running on thread `thread` (a pthread
    /// id), which passed its deadline, if `still_running` still says so once the application
    /// can act (WSGI asks it with the GIL held, so a request that ended meanwhile is left
    /// alone). Best effort: WSGI raises `TimeoutError` in it.
    fn cancel(&self, thread: u64, still_running: &dyn Fn() -> bool) {
        let _ = (thread, still_running);
    }

    /// Runs one turn of an event loop that calls this service on its own thread
    /// (`--threads 0`). The service may keep what it takes per call across the turn's calls
    /// (WSGI keeps the GIL) and lets go when `work` returns; `work` waits for nothing but the
    /// loop's sockets.
    fn turn(&self, work: &mut dyn FnMut()) {
        work()
    }

    /// A non-blocking application (ASGI) starts its exchange for this request here, instead
    /// of being called; `wake` wakes the session when the exchange has news. `None` (the
    /// default): the request goes to [`call`](Self::call).
    fn start_exchange(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        wake: Wake,
    ) -> Option<Box<dyn AppExchange>> {
        let _ = (head, conn, wake);
        None
    }

    /// Whether this request's WebSocket handshake goes to [`start_websocket`]
    /// (Self::start_websocket): the server validates it first (bad ones get `400`/`426`).
    fn hosts_websockets(&self, head: &RequestHead) -> bool {
        let _ = head;
        false
    }

    /// Starts a WebSocket exchange for a valid handshake; `subprotocols` are the client's
    /// offers in order. `None`: answered as plain HTTP.
    fn start_websocket(
        &self,
        head: &RequestHead,
        conn: &ConnInfo,
        subprotocols: &[String],
        wake: Wake,
    ) -> Option<Box<dyn WsExchange>> {
        let _ = (head, conn, subprotocols, wake);
        None
    }

    /// Where an application running its own event loop (ASGI) reports how late that loop
    /// runs (the loop-lag metric). Given once per serving process, by its first connection.
    fn report_loop_lag(&self, sink: LagSink) {
        let _ = sink;
    }

    /// The server stops serving (after its graceful drain): a last word to the
    /// application (ASGI's lifespan shutdown). Called once, in each serving process.
    fn shutdown(&self) {}

    /// Called in the forking thread just before `fork()` (e.g. to take the GIL, so the child
    /// inherits a consistent interpreter). Exactly one of the two `after_fork_*` follows.
    fn before_fork(&self) {}

    /// Called in the parent right after `fork()`.
    fn after_fork_parent(&self) {}

    /// Called in the child right after `fork()`, before it serves anything.
    fn after_fork_child(&self) {}
}
