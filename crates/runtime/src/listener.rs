//! Listening sockets and accepted streams, TCP or Unix-domain, behind one type each.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use ironhorse_app::ConnInfo;
use socket2::{Domain, SockAddr, Socket, Type};

/// Where to listen, as given to `-b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    Tcp(String),
    Unix(PathBuf),
    /// An inherited descriptor (`fd://N`).
    Fd(RawFd),
}

impl BindAddr {
    /// Parses `HOST:PORT`, `[v6]:PORT`, `:PORT`, `PORT`, `unix:PATH` or `fd://N`.
    pub fn parse(s: &str) -> Result<BindAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("bind address {s:?}: empty socket path"));
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = s.strip_prefix("fd://") {
            return fd
                .parse()
                .map(BindAddr::Fd)
                .map_err(|_| format!("bind address {s:?}: not a descriptor number"));
        }
        let full = if s.parse::<u16>().is_ok() {
            format!("127.0.0.1:{s}")
        } else if let Some(port) = s.strip_prefix(':') {
            format!("0.0.0.0:{port}")
        } else {
            s.to_string()
        };
        let (_, port) = full.rsplit_once(':').ok_or_else(|| {
            format!("bind address {s:?}: expected HOST:PORT, [V6]:PORT or unix:PATH")
        })?;
        port.parse::<u16>()
            .map_err(|_| format!("bind address {s:?}: bad port {port:?}"))?;
        Ok(BindAddr::Tcp(full))
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(a) => write!(f, "{a}"),
            BindAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            BindAddr::Fd(n) => write!(f, "fd://{n}"),
        }
    }
}

/// A bound, listening socket, TCP or Unix-domain alike: one socket type, whose kind matters
/// only where it shows (the accepted connection's `ConnInfo`, the address to print). Always
/// non-blocking: drivers wait for readiness themselves so that they can notice a stop
/// request.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    /// The socket file this process created (removed by [`unlink`](Self::unlink)); `None`
    /// for TCP and for an inherited descriptor, whose file belongs to whoever made it.
    created_file: Option<PathBuf>,
}

impl Listener {
    /// Binds and listens with `backlog`, `SO_REUSEADDR` (and `SO_REUSEPORT` when asked).
    pub fn bind(addr: &BindAddr, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        let listener = match addr {
            BindAddr::Tcp(spec) => {
                let sockaddr = spec.to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{spec}: no address"))
                })?;
                let socket = Socket::new(Domain::for_address(sockaddr), Type::STREAM, None)?;
                socket.set_reuse_address(true)?;
                if reuse_port {
                    socket.set_reuse_port(true)?;
                }
                if sockaddr.is_ipv6() {
                    socket.set_only_v6(true)?;
                }
                socket.bind(&sockaddr.into())?;
                socket.listen(backlog)?;
                Listener {
                    socket,
                    created_file: None,
                }
            }
            BindAddr::Unix(path) => {
                if std::fs::symlink_metadata(path).is_ok_and(|m| {
                    use std::os::unix::fs::FileTypeExt;
                    m.file_type().is_socket()
                }) {
                    // A stale socket from an earlier run; a live one would still refuse below.
                    if UnixStream::connect(path).is_err() {
                        std::fs::remove_file(path)?;
                    }
                }
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.bind(&SockAddr::unix(path)?)?;
                socket.listen(backlog)?;
                Listener {
                    socket,
                    created_file: Some(path.clone()),
                }
            }
            BindAddr::Fd(fd) => Listener {
                socket: Socket::from(ironhorse_sys::signals::adopt_fd(*fd)?),
                created_file: None,
            },
        };
        listener.socket.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Accepts one connection (non-blocking: `WouldBlock` when none is pending). The stream
    /// is returned in blocking mode (for the event loop: non-blocking, `blocking` false),
    /// with `TCP_NODELAY` set on TCP.
    pub fn accept(&self) -> io::Result<(Stream, ConnInfo)> {
        self.accept_as(true)
    }

    /// [`accept`](Self::accept), choosing the stream's mode.
    pub fn accept_as(&self, blocking: bool) -> io::Result<(Stream, ConnInfo)> {
        accept_on(&self.socket, blocking)
    }

    /// The listening socket itself (for a driver that registers it with its own reactor
    /// and accepts with [`accept_on`]).
    pub(crate) fn into_socket(self) -> Socket {
        self.socket
    }

    /// What to print so a user (or a test) can connect: `http://127.0.0.1:8000` or `unix:PATH`.
    pub fn display_addr(&self) -> String {
        let Ok(local) = self.socket.local_addr() else {
            return "?".into();
        };
        match (local.as_socket(), local.as_pathname()) {
            (Some(SocketAddr::V6(a)), _) => format!("http://[{}]:{}", a.ip(), a.port()),
            (Some(a), _) => format!("http://{a}"),
            (None, path) => format!("unix:{}", path.unwrap_or(Path::new("")).display()),
        }
    }

    /// Where a worker can bind its own `SO_REUSEPORT` socket next to this one (TCP only;
    /// port 0 resolved).
    pub fn rebind_addr(&self) -> Option<BindAddr> {
        let local = self.socket.local_addr().ok()?.as_socket()?;
        Some(BindAddr::Tcp(local.to_string()))
    }

    /// A copy sharing the same socket (for workers and threads).
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(Listener {
            socket: self.socket.try_clone()?,
            created_file: self.created_file.clone(),
        })
    }

    /// The socket file this process created, if any (removed by [`unlink`](Self::unlink)).
    pub fn created_file(&self) -> Option<&Path> {
        self.created_file.as_deref()
    }

    /// Removes the socket file of a Unix listener (at a clean shutdown of the master).
    pub fn unlink(&self) {
        if let Some(path) = &self.created_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Accepts one connection on a listening `socket`: [`Listener::accept_as`].
pub(crate) fn accept_on(socket: &Socket, blocking: bool) -> io::Result<(Stream, ConnInfo)> {
    let (socket, peer) = socket.accept()?;
    let info = match peer.as_socket() {
        Some(peer) => {
            socket.set_nodelay(true)?;
            let local = socket.local_addr().ok().and_then(|a| a.as_socket());
            crate::tcp_info(peer, local)
        }
        None => ConnInfo::unix(),
    };
    socket.set_nonblocking(!blocking)?;
    Ok((Stream(socket), info))
}

/// An accepted connection, TCP or Unix-domain alike: one socket type, whose kind matters
/// only when it is accepted (`TCP_NODELAY`, the peer's address).
#[derive(Debug)]
pub struct Stream(Socket);

impl Stream {
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.0.set_read_timeout(t)
    }
    pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.0.set_write_timeout(t)
    }
    /// Another descriptor for the same connection.
    pub fn try_clone(&self) -> io::Result<Stream> {
        self.0.try_clone().map(Stream)
    }
    /// The socket itself (for a driver that registers it with its own reactor).
    pub(crate) fn into_socket(self) -> Socket {
        self.0
    }
    /// One end of a socket pair, for tests.
    #[cfg(test)]
    pub(crate) fn from_unix(stream: UnixStream) -> Stream {
        Stream(Socket::from(stream))
    }
    /// Shuts the connection down both ways (wakes any thread blocked on it).
    pub fn shutdown_both(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads and writes go through a shared reference, as `&TcpStream`'s do: a connection's
/// socket is shared with the thread that sends its held responses ([`crate::held`]).
impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
