//! The `/metrics` listener: its own socket (`--metrics-bind`), served by a dedicated thread
//! of the supervising process.
//!
//! Why a thread rather than the master's loop: the same code then serves every model —
//! a master (prefork, hybrid, event/async with workers), the fork-per-connection parent,
//! and single processes, whose loops are the drivers' and cannot take another socket — and
//! scrapes are answered while the master's loop is busy (forking a worker that preloads, a
//! graceful stop's wait). The thread only reads the shared counters and the board's
//! ledger (a mutex the master holds for microseconds); it never touches Python or the
//! application. A master forks while it runs: the workers get none of its state and close
//! its socket (`MetricsListener::raw_fd`), and the lock it may hold at that instant is the
//! master's alone, never taken in a worker.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::board::Board;
use crate::encode::{Format, Scrape};

/// The longest request head a scraper may send.
const MAX_HEAD: usize = 8 * 1024;
/// A scraper silent this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more are closed at once (a scraper retries).
const MAX_CLIENTS: usize = 8;

/// Where `--metrics-bind` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl MetricsAddr {
    /// `HOST:PORT` (an IP address; IPv6 in brackets) or `unix:PATH`.
    pub fn parse(spec: &str) -> Result<MetricsAddr, String> {
        if let Some(path) = spec.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/run/ih-metrics.sock".into());
            }
            return Ok(MetricsAddr::Unix(PathBuf::from(path)));
        }
        spec.parse()
            .map(MetricsAddr::Tcp)
            .map_err(|_| format!("{spec:?} is not IP:PORT or unix:PATH (e.g. 127.0.0.1:9100)"))
    }

    /// Binds the socket (before any fork, so a port in use is reported up front).
    pub fn bind(&self) -> io::Result<MetricsListener> {
        let socket = match self {
            MetricsAddr::Tcp(addr) => Socket::Tcp(TcpListener::bind(addr)?),
            MetricsAddr::Unix(path) => {
                replace_stale_socket(path)?;
                Socket::Unix(UnixListener::bind(path)?, path.clone())
            }
        };
        Ok(MetricsListener::new(socket))
    }

    /// Takes over the socket a master upgrading itself (`USR2`) bound for this address.
    pub fn adopt(&self, fd: RawFd) -> io::Result<MetricsListener> {
        let fd = ironhorse_sys::signals::adopt_fd(fd)?;
        let socket = match self {
            MetricsAddr::Tcp(_) => Socket::Tcp(TcpListener::from(fd)),
            MetricsAddr::Unix(path) => Socket::Unix(UnixListener::from(fd), path.clone()),
        };
        Ok(MetricsListener::new(socket))
    }
}

/// A socket file left by a dead server is replaced; a live one, or a file that is not a
/// socket, is refused.
fn replace_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "a server already listens there",
        ));
    }
    std::fs::remove_file(path)
}

enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// The bound metrics socket.
pub struct MetricsListener {
    socket: Socket,
    /// Handed to a new master (`USR2`): its file is no longer this process's to remove.
    handed_over: AtomicBool,
}

impl MetricsListener {
    fn new(socket: Socket) -> MetricsListener {
        MetricsListener {
            socket,
            handed_over: AtomicBool::new(false),
        }
    }

    /// Where scrapes go, for the start-up line.
    pub fn url(&self) -> String {
        match &self.socket {
            Socket::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".into(), |a| format!("http://{a}/metrics")),
            Socket::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// The descriptor, for processes forked later to close.
    pub fn raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }

    /// The socket now also belongs to a new master (`USR2`).
    pub fn hand_over(&self) {
        self.handed_over.store(true, Ordering::Relaxed);
    }

    /// Removes a Unix socket's file (at stop), unless a new master serves it.
    pub fn unlink(&self) {
        if let Socket::Unix(_, path) = &self.socket {
            if !self.handed_over.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn accept(&self) -> io::Result<Box<dyn Stream>> {
        Ok(match &self.socket {
            Socket::Tcp(l) => Box::new(l.accept()?.0),
            Socket::Unix(l, _) => Box::new(l.accept()?.0),
        })
    }
}

impl AsFd for MetricsListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(l) => l.as_fd(),
            Socket::Unix(l, _) => l.as_fd(),
        }
    }
}

trait Stream: Read + Write + Send {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()>;
    /// Ends the connection for every holder of its descriptor: a worker forked while this
    /// thread held it has a copy, and dropping ours would not close it.
    fn shut_down(&self);
}

impl Stream for std::net::TcpStream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
    fn shut_down(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl Stream for UnixStream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
    fn shut_down(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

/// A listening socket of the server whose accept queue is reported.
pub struct Watched {
    pub name: String,
    pub fd: OwnedFd,
}

/// Serves `/metrics` from `board` on `listener` in a thread of this process, for as long as
/// the process lives.
pub fn spawn(
    listener: Arc<MetricsListener>,
    board: Arc<Board>,
    watched: Vec<Watched>,
) -> io::Result<()> {
    let shared = Arc::new((board, watched));
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("ih-metrics".into())
        .spawn(move || loop {
            let Ok(mut stream) = listener.accept() else {
                // Out of descriptors, or the like: the scraper retries.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
                clients.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            let (shared, done) = (shared.clone(), clients.clone());
            let spawned = std::thread::Builder::new()
                .name("ih-metrics-client".into())
                .spawn(move || {
                    let _ = answer(&mut *stream, &shared.0, &shared.1);
                    stream.shut_down();
                    done.fetch_sub(1, Ordering::Relaxed);
                });
            if spawned.is_err() {
                clients.fetch_sub(1, Ordering::Relaxed);
            }
        })
        .map(drop)
}

/// Reads one request and answers it; the connection then closes.
fn answer(stream: &mut dyn Stream, board: &Board, watched: &[Watched]) -> io::Result<()> {
    stream.set_timeouts(CLIENT_TIMEOUT)?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let (status, body, content_type, is_head) = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => break route(&request, board, watched),
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                break (431, "request head too large\n".into(), "text/plain", false)
            }
            Err(_) => break (400, "bad request\n".into(), "text/plain", false),
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !is_head {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response)?;
    stream.flush()
}

/// What a request gets: (status, body, content type, whether it was `HEAD`).
fn route(
    request: &httparse::Request<'_, '_>,
    board: &Board,
    watched: &[Watched],
) -> (u16, String, &'static str, bool) {
    let path = request.path.unwrap_or("").split('?').next().unwrap_or("");
    let method = request.method.unwrap_or("");
    if path != "/metrics" {
        return (
            404,
            "not found: scrape /metrics\n".into(),
            "text/plain",
            false,
        );
    }
    if method != "GET" && method != "HEAD" {
        return (405, "method not allowed\n".into(), "text/plain", false);
    }
    let accepts_openmetrics = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("accept")
            && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
    });
    let format = if accepts_openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    let queues = watched
        .iter()
        .filter_map(|w| {
            ironhorse_sys::listen_queue(w.fd.as_fd()).map(|(q, l)| (w.name.clone(), q, l))
        })
        .collect();
    match Scrape::new(board.snapshot(), queues).encode(format) {
        Ok(text) => (200, text, format.content_type(), method == "HEAD"),
        Err(_) => (500, "encoding failed\n".into(), "text/plain", false),
    }
}
