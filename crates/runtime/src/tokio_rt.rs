//! Coroutines: a tokio runtime (`threads` worker threads; one means a current-thread
//! runtime on this thread), one task per connection over the same sans-IO sessions.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::Interest;
use tokio::sync::{Notify, Semaphore};

use super::connection::{self, accept_failed, AcceptFailure, Draining, Linger};
use super::{stopping, DriverConfig, STOP_CHECK};
use crate::listener::Listener;
use ironhorse_app::ConnInfo;
use ironhorse_protocol::hooks::Hooks;
use ironhorse_protocol::output::{Drained, Output};
use ironhorse_protocol::session::{Link, Protocol, Session, Step, Waker};

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Conn {
    async fn ready(&self, interest: Interest) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.ready(interest).await.map(|_| ()),
            Conn::Unix(s) => s.ready(interest).await.map(|_| ()),
        }
    }

    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self {
            Conn::Tcp(s) => s.try_io(interest, f),
            Conn::Unix(s) => s.try_io(interest, f),
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.try_read(buf),
            Conn::Unix(s) => s.try_read(buf),
        }
    }
}

/// Gives `Output` a `Write` over a tokio socket; used inside `try_io`, so `WouldBlock`
/// clears tokio's readiness and the task waits for the next writable edge.
struct TryWriter<'a>(&'a Conn);

impl io::Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0 {
            Conn::Tcp(s) => s.try_write(buf),
            Conn::Unix(s) => s.try_write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for TryWriter<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self.0 {
            Conn::Tcp(s) => s.as_fd(),
            Conn::Unix(s) => s.as_fd(),
        }
    }
}

thread_local! {
    /// The read buffer shared by the connections this runtime thread serves.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
}

/// Live connection count, for the cap and for waiting at shutdown.
struct Live {
    count: AtomicUsize,
    idle: Notify,
}

pub fn run(config: DriverConfig) -> io::Result<()> {
    let _ = ironhorse_sys::raise_nofile_limit();
    // Requests for the application threads leave in batches: held while tasks run, handed
    // over when a runtime thread runs out of work.
    use ironhorse_protocol::offload_pool::{hold_on_this_thread, release_held};
    let runtime = if config.threads <= 1 {
        hold_on_this_thread();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(release_held)
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("ih-tokio")
            .enable_all()
            .on_thread_start(hold_on_this_thread)
            .on_thread_park(release_held)
            .build()?
    };
    runtime.block_on(serve(config))
}

async fn serve(config: DriverConfig) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let live = Arc::new(Live {
        count: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let shared = Shared {
        protocol: config.protocol.clone(),
        hooks: config.hooks.clone(),
        permits,
        live: live.clone(),
    };
    let mut acceptors = Vec::new();
    for listener in config.listeners {
        acceptors.push(tokio::spawn(accept(listener, shared.clone())));
    }
    while !stopping() {
        config.hooks.beat();
        tokio::time::sleep(STOP_CHECK).await;
    }
    for acceptor in &acceptors {
        acceptor.abort();
    }
    let deadline = Draining::begin(config.graceful_timeout).deadline();
    while live.count.load(Ordering::SeqCst) > 0 {
        if tokio::time::timeout_at(deadline.into(), live.idle.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// What every acceptor and connection task shares.
#[derive(Clone)]
struct Shared {
    protocol: Arc<dyn Protocol>,
    hooks: Hooks,
    /// One per connection allowed at once (`max_connections`).
    permits: Arc<Semaphore>,
    live: Arc<Live>,
}

async fn accept(listener: Listener, shared: Shared) -> io::Result<()> {
    let Shared {
        protocol,
        hooks,
        permits,
        live,
    } = shared;
    enum Tokio {
        Tcp(tokio::net::TcpListener),
        Unix(tokio::net::UnixListener),
    }
    let listener = match listener {
        Listener::Tcp(l) => Tokio::Tcp(tokio::net::TcpListener::from_std(l)?),
        Listener::Unix(l, _) => Tokio::Unix(tokio::net::UnixListener::from_std(l)?),
    };
    loop {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let accepted = match &listener {
            Tokio::Tcp(l) => l.accept().await.map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let local = s.local_addr().ok();
                (Conn::Tcp(s), connection::tcp_info(peer, local))
            }),
            Tokio::Unix(l) => l
                .accept()
                .await
                .map(|(s, _)| (Conn::Unix(s), ConnInfo::unix())),
        };
        match accepted {
            Ok((conn, info)) => {
                let (protocol, hooks) = (protocol.clone(), hooks.clone());
                let live = live.clone();
                live.count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = serve_connection(conn, info, &*protocol, hooks).await;
                    drop(permit);
                    if live.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                        live.idle.notify_waiters();
                    }
                });
            }
            Err(e) => match accept_failed(&e, &*hooks) {
                AcceptFailure::Skip => {}
                AcceptFailure::BackOff => tokio::time::sleep(STOP_CHECK).await,
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
}

async fn serve_connection(
    conn: Conn,
    info: ConnInfo,
    protocol: &dyn Protocol,
    hooks: Hooks,
) -> io::Result<()> {
    let mut out = Output::default();
    let notify = Arc::new(Notify::new());
    let waker: Waker = {
        let notify = notify.clone();
        Arc::new(move || notify.notify_one())
    };
    let mut session = protocol.session(
        info,
        Link {
            waker,
            executor: None,
            hooks,
        },
    );
    loop {
        let step = session.advance(&mut out);
        flush(&conn, &mut out).await?;
        match step {
            Step::Flush => {}
            Step::WaitUntil(at) => tokio::time::sleep_until(at.into()).await,
            Step::Pending => notify.notified().await,
            Step::Close => {
                close(&conn).await;
                return Ok(());
            }
            // A wake-up while reading is a call to `advance` too (the session may have
            // work of its own: a response from its job, a body deadline it keeps).
            Step::Read => tokio::select! {
                read = read(&conn, session.as_mut()) => read?,
                () = notify.notified() => {}
            },
            Step::Upgrade => match session.hand_off() {
                Some(next) => session = next,
                None => {
                    close(&conn).await;
                    return Ok(());
                }
            },
        }
    }
}

async fn flush(conn: &Conn, out: &mut Output) -> io::Result<()> {
    while !out.is_empty() {
        conn.ready(Interest::WRITABLE).await?;
        let result = conn.try_io(Interest::WRITABLE, || {
            match out.drain_into(&mut TryWriter(conn))? {
                Drained::All => Ok(()),
                Drained::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
            }
        });
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes without losing the response ([`Linger`]).
async fn close(conn: &Conn) {
    let mut linger = Linger::start(&TryWriter(conn));
    loop {
        let until = linger.until().into();
        if tokio::time::timeout_at(until, conn.ready(Interest::READABLE))
            .await
            .is_err()
            || !linger.discard(|buf| conn.try_read(buf))
        {
            return;
        }
    }
}

async fn read(conn: &Conn, session: &mut dyn Session) -> io::Result<()> {
    loop {
        let now = Instant::now();
        let stop = stopping();
        if connection::is_expired(session, now, stop) {
            return Err(connection::expiry_error(session, stop));
        }
        let deadline = session.read_deadline();
        let wait = deadline.map_or(STOP_CHECK, |d| (d - now).min(STOP_CHECK));
        if tokio::time::timeout(wait, conn.ready(Interest::READABLE))
            .await
            .is_err()
        {
            // Idle for a while: keep no buffers meanwhile.
            session.release_idle_memory();
            continue;
        }
        // Read into this thread's shared buffer: idle connections own none.
        let read = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let n = conn.try_read(&mut scratch)?;
            if n == 0 {
                session.received(0);
            } else {
                session.receive(&scratch[..n]);
            }
            Ok::<(), io::Error>(())
        });
        match read {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}
