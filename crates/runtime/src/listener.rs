//! Listening sockets and accepted streams, TCP or Unix-domain, behind one type each.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use ironhorse_app::ConnInfo;
use socket2::Socket;

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

/// A bound, listening socket. Always non-blocking: drivers wait for readiness themselves so
/// that they can notice a stop request.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds and listens with `backlog`, `SO_REUSEADDR` (and `SO_REUSEPORT` when asked).
    pub fn bind(addr: &BindAddr, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        use socket2::{Domain, SockAddr, Socket, Type};
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
                Listener::Tcp(socket.into())
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
                Listener::Unix(socket.into(), path.clone())
            }
            BindAddr::Fd(fd) => {
                let owned = ironhorse_sys::signals::adopt_fd(*fd)?;
                let socket = Socket::from(owned);
                match socket.local_addr()?.as_socket() {
                    Some(_) => Listener::Tcp(socket.into()),
                    None => Listener::Unix(socket.into(), PathBuf::new()),
                }
            }
        };
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(on),
            Listener::Unix(l, _) => l.set_nonblocking(on),
        }
    }

    /// Accepts one connection (non-blocking: `WouldBlock` when none is pending). The stream
    /// is returned in blocking mode (for the event loop: non-blocking, `blocking` false),
    /// with `TCP_NODELAY` set on TCP.
    pub fn accept(&self) -> io::Result<(Stream, ConnInfo)> {
        self.accept_as(true)
    }

    /// [`accept`](Self::accept), choosing the stream's mode.
    pub fn accept_as(&self, blocking: bool) -> io::Result<(Stream, ConnInfo)> {
        let (socket, info) = match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                stream.set_nodelay(true)?;
                let local = stream.local_addr().ok();
                (Socket::from(stream), crate::tcp_info(peer, local))
            }
            Listener::Unix(l, _) => (Socket::from(l.accept()?.0), ConnInfo::unix()),
        };
        socket.set_nonblocking(!blocking)?;
        Ok((Stream(socket), info))
    }

    /// What to print so a user (or a test) can connect: `http://127.0.0.1:8000` or `unix:PATH`.
    pub fn display_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(SocketAddr::V6(a)) => format!("http://[{}]:{}", a.ip(), a.port()),
                Ok(a) => format!("http://{a}"),
                Err(_) => "http://?".into(),
            },
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    /// Where a worker can bind its own `SO_REUSEPORT` socket next to this one (TCP only;
    /// port 0 resolved).
    pub fn rebind_addr(&self) -> Option<BindAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| BindAddr::Tcp(a.to_string())),
            Listener::Unix(..) => None,
        }
    }

    /// A copy sharing the same socket (for workers and threads).
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l, p) => Listener::Unix(l.try_clone()?, p.clone()),
        })
    }

    /// Removes the socket file of a Unix listener (at a clean shutdown of the master).
    pub fn unlink(&self) {
        if let Listener::Unix(_, path) = self {
            if !path.as_os_str().is_empty() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }
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
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.0.set_nonblocking(on)
    }
    /// Another descriptor for the same connection.
    pub fn try_clone(&self) -> io::Result<Stream> {
        self.0.try_clone().map(Stream)
    }
    /// Shuts the connection down both ways (wakes any thread blocked on it).
    pub fn shutdown_both(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Write for Stream {
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
